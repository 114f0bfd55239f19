//! API keys: who a bearer token is. Keys are kept only as SHA-256 digests
//! and looked up by digest, so the secret is never compared byte by byte,
//! logged or written anywhere; a client is known by its `name`.

use std::collections::HashMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::config::{AuthConfig, KeyConfig, RateLimitConfig};

/// Shortest key accepted (a guessable key is no key).
pub const MIN_KEY_CHARS: usize = 16;

/// One client, as configured.
#[derive(Debug)]
pub struct Client {
    pub name: String,
    pub limits: RateLimitConfig,
    pub allow_management: bool,
    pub allow_scan: bool,
    /// Models it may run; empty: any.
    models: Vec<String>,
    /// Its requests in flight on this instance (`max_concurrent`).
    pub slots: Option<Arc<tokio::sync::Semaphore>>,
}

impl Client {
    /// Whether this key may run `model` (`*` matches any run of characters;
    /// a name without a tag also matches `:latest`).
    pub fn may_run(&self, model: &str) -> bool {
        let bare = model.strip_suffix(":latest").unwrap_or(model);
        self.models.is_empty()
            || self.models.iter().any(|p| {
                glob(p.as_bytes(), model.as_bytes()) || glob(p.as_bytes(), bare.as_bytes())
            })
    }
}

/// `*` matches any run of bytes; everything else matches itself.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|i| glob(rest, &text[i..])),
        Some((c, rest)) => text
            .split_first()
            .is_some_and(|(t, tail)| t == c && glob(rest, tail)),
    }
}

/// Every key, by digest.
#[derive(Debug, Default)]
pub struct KeyRing {
    by_digest: HashMap<[u8; 32], Arc<Client>>,
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl KeyRing {
    /// The keys of `auth.keys` and `auth.keys_file` (read now), or every
    /// problem with them.
    pub fn load(auth: &AuthConfig) -> Result<Self, Vec<String>> {
        let mut entries: Vec<(String, KeyConfig)> = auth
            .keys
            .iter()
            .enumerate()
            .map(|(i, k)| (format!("auth.keys[{i}]"), k.clone()))
            .collect();
        if let Some(path) = &auth.keys_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| vec![format!("auth.keys_file: cannot read {path}: {e}")])?;
            let file: Vec<KeyConfig> = serde_saphyr::from_str(&text).map_err(|e| {
                vec![format!(
                    "auth.keys_file: {path} is not a list of {{key, name, ...}} entries: {e}"
                )]
            })?;
            entries.extend(
                file.into_iter()
                    .enumerate()
                    .map(|(i, k)| (format!("auth.keys_file {path} [{i}]"), k)),
            );
        }
        let mut ring = Self::default();
        let mut names = std::collections::HashSet::new();
        let mut problems = Vec::new();
        for (at, k) in entries {
            if k.key.chars().count() < MIN_KEY_CHARS {
                problems.push(format!(
                    "{at}.key: must be at least {MIN_KEY_CHARS} characters"
                ));
            }
            if k.name.trim().is_empty() {
                problems.push(format!("{at}.name: every key needs a name"));
            } else if !names.insert(k.name.clone()) {
                problems.push(format!("{at}.name: {:?} is used twice", k.name));
            }
            if k.models.iter().any(|m| m.trim().is_empty()) {
                problems.push(format!("{at}.models: empty pattern"));
            }
            let client = Client {
                slots: (k.rate_limit.max_concurrent > 0)
                    .then(|| Arc::new(tokio::sync::Semaphore::new(k.rate_limit.max_concurrent))),
                name: k.name,
                limits: k.rate_limit,
                allow_management: k.allow_management,
                allow_scan: k.allow_scan,
                models: k.models,
            };
            if ring
                .by_digest
                .insert(digest(&k.key), Arc::new(client))
                .is_some()
            {
                problems.push(format!("{at}.key: the same key is given twice"));
            }
        }
        match problems.is_empty() {
            true => Ok(ring),
            false => Err(problems),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }

    pub fn get(&self, token: &str) -> Option<&Arc<Client>> {
        self.by_digest.get(&digest(token))
    }
}

/// Whether `token` is the admin token (compared by digest).
pub fn is_admin(admin: Option<&str>, token: &str) -> bool {
    admin.is_some_and(|a| digest(a) == digest(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(yaml: &str) -> Result<KeyRing, Vec<String>> {
        let auth: AuthConfig = serde_saphyr::from_str(yaml).expect("auth yaml");
        KeyRing::load(&auth)
    }

    #[test]
    fn keys_are_found_by_their_secret_and_known_by_name() {
        let r = ring("keys: [{key: alice-0123456789abcdef, name: alice}]").expect("valid");
        assert_eq!(
            r.get("alice-0123456789abcdef").map(|c| c.name.as_str()),
            Some("alice")
        );
        assert!(r.get("alice-0123456789abcdeF").is_none());
        assert!(r.get("").is_none());
    }

    #[test]
    fn bad_keys_are_all_named() {
        let problems = ring(
            "keys: [{key: short, name: a}, {key: same-key-0123456789, name: a}, {key: same-key-0123456789, name: ''}]",
        )
        .err()
        .unwrap_or_default();
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems[0].starts_with("auth.keys[0].key"));
    }

    #[test]
    fn model_patterns() {
        let r = ring("keys: [{key: k-0123456789abcdef, name: k, models: ['llama3.2*', qwen3:8b]}]")
            .expect("valid");
        let c = r.get("k-0123456789abcdef").expect("key");
        assert!(c.may_run("llama3.2"));
        assert!(c.may_run("llama3.2:1b"));
        assert!(c.may_run("qwen3:8b"));
        assert!(!c.may_run("qwen3:32b"));
        assert!(!c.may_run("mistral"));
        let any = ring("keys: [{key: k-0123456789abcdef, name: k}]").expect("valid");
        assert!(
            any.get("k-0123456789abcdef")
                .expect("key")
                .may_run("anything")
        );
    }
}
