//! Cache keys: SHA-256 over a version tag, the policy fingerprint, the
//! direction and the text, `\0`-separated, as lowercase hex. The text itself
//! never leaves this function.

use sha2::{Digest, Sha256};

use crate::scan::{Direction, ScannerSpec};

/// Bumped when the key layout or the verdict encoding changes.
const KEY_VERSION: &str = "v2";

/// What a verdict depends on. Built by destructuring, so adding a field here
/// without hashing it fails to compile.
pub struct KeyParts<'a> {
    pub policy: &'a str,
    pub direction: Direction,
    /// The prompt a reply answers, for policies whose scanners judge a
    /// reply in its conversation (`Some("")` when there is none); `None`
    /// for every other policy. Hashed first, so its length is fixed.
    pub prompt: Option<&'a str>,
    pub text: &'a str,
}

/// A hex SHA-256 verdict key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CacheKey(pub String);

impl CacheKey {
    pub fn new(parts: KeyParts<'_>) -> Self {
        let KeyParts {
            policy,
            direction,
            prompt,
            text,
        } = parts;
        let prompt = prompt.map(|p| format!("prompt:{}", lower_hex(&Sha256::digest(p))));
        let mut h = Sha256::new();
        let parts = [KEY_VERSION, policy, direction.as_str()];
        for part in parts.into_iter().chain(prompt.as_deref()).chain([text]) {
            h.update(part.as_bytes());
            h.update([0u8]);
        }
        Self(lower_hex(&h.finalize()))
    }
}

/// Lowercase hex through `hex`'s table: `hex::encode` builds its string a
/// `char` at a time, which cost more than the SHA-256 before it (2 k
/// instructions a key).
pub fn lower_hex(bytes: &[u8]) -> String {
    let mut out = vec![0; bytes.len() * 2];
    // Cannot fail: `out` is exactly twice as long as `bytes`.
    let _ = hex::encode_to_slice(bytes, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// A hash of everything that can change a verdict: the scanner list with all
/// its options, the crate version (a new release may scan differently), the
/// data compiled into the scanners and, when the classifier runs, its model
/// and head.
pub fn policy_fingerprint(specs: &[ScannerSpec]) -> String {
    let canonical = serde_json::to_string(specs).unwrap_or_default();
    let mut h = Sha256::new();
    h.update(env!("CARGO_PKG_VERSION").as_bytes());
    h.update([0u8]);
    h.update(canonical.as_bytes());
    for data in crate::scan::embedded_data() {
        h.update([0u8]);
        h.update(Sha256::digest(data));
    }
    // A policy that runs the classifier changes with its model and head too.
    if specs
        .iter()
        .any(|s| matches!(s, ScannerSpec::PromptInjection(c) if c.use_model))
    {
        h.update([0u8]);
        h.update(crate::scan::classifier::identity().as_bytes());
    }
    hex::encode(&h.finalize()[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_policies_running_the_classifier_depend_on_its_model() {
        let spec =
            |yaml: &str| -> Vec<ScannerSpec> { serde_saphyr::from_str(yaml).expect("specs") };
        let with = policy_fingerprint(&spec("[{type: prompt_injection}]"));
        let without = policy_fingerprint(&spec("[{type: prompt_injection, use_model: false}]"));
        assert_ne!(with, without);
        let mut h = Sha256::new();
        h.update(env!("CARGO_PKG_VERSION").as_bytes());
        h.update([0u8]);
        h.update(
            serde_json::to_string(&spec("[{type: secrets}]"))
                .unwrap_or_default()
                .as_bytes(),
        );
        for data in crate::scan::embedded_data() {
            h.update([0u8]);
            h.update(Sha256::digest(data));
        }
        assert_eq!(
            policy_fingerprint(&spec("[{type: secrets}]")),
            hex::encode(&h.finalize()[..16])
        );
    }

    fn key(policy: &str, direction: Direction, text: &str) -> String {
        CacheKey::new(KeyParts {
            policy,
            direction,
            prompt: None,
            text,
        })
        .0
    }

    fn reply_key(prompt: &str, text: &str) -> String {
        CacheKey::new(KeyParts {
            policy: "p",
            direction: Direction::Output,
            prompt: Some(prompt),
            text,
        })
        .0
    }

    #[test]
    fn a_reply_judged_in_context_is_keyed_by_its_prompt() {
        let base = reply_key("how do I adopt a llama?", "go to the zoo");
        assert_ne!(base, reply_key("how do I feed a llama?", "go to the zoo"));
        assert_ne!(base, reply_key("how do I adopt a llama?", "go to the farm"));
        assert_ne!(base, key("p", Direction::Output, "go to the zoo"));
        assert_ne!(reply_key("", "x"), key("p", Direction::Output, "x"));
    }

    #[test]
    fn keys_are_hex_sha256_and_depend_on_every_part() {
        let base = key("p", Direction::Input, "hello");
        assert_eq!(base.len(), 64);
        assert!(base.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(base, key("p", Direction::Input, "hello"));
        assert_ne!(base, key("q", Direction::Input, "hello"));
        assert_ne!(base, key("p", Direction::Output, "hello"));
        assert_ne!(base, key("p", Direction::Input, "hello!"));
    }

    #[test]
    fn keys_are_the_hex_digest_of_their_parts() {
        // The layout keys in Redis were written with: a change here orphans
        // every shared verdict (bump KEY_VERSION instead).
        let digest = Sha256::digest(b"v2\0p\0input\0hello\0");
        assert_eq!(key("p", Direction::Input, "hello"), hex::encode(digest));
        let every_byte: Vec<u8> = (0..=255).collect();
        assert_eq!(lower_hex(&every_byte), hex::encode(&every_byte));
        assert_eq!(lower_hex(&[]), "");
    }

    #[test]
    fn separators_keep_parts_from_sliding_into_each_other() {
        assert_ne!(
            key("ab", Direction::Input, "c"),
            key("a", Direction::Input, "bc")
        );
    }

    #[test]
    fn any_scanner_option_changes_the_policy() {
        let a: Vec<ScannerSpec> =
            serde_saphyr::from_str("- {type: ban_substrings, substrings: [foo]}\n").expect("yaml");
        let b: Vec<ScannerSpec> =
            serde_saphyr::from_str("- {type: ban_substrings, substrings: [bar]}\n").expect("yaml");
        assert_eq!(policy_fingerprint(&a), policy_fingerprint(&a.clone()));
        assert_ne!(policy_fingerprint(&a), policy_fingerprint(&b));
        assert_ne!(policy_fingerprint(&a), policy_fingerprint(&[]));
    }
}
