//! Upstream paths for pass-through routes, built from the route the request
//! matched and its validated parameters, never from the raw request path: a
//! path such as `/api/blobs/..\generate` must not reach another Ollama route
//! (URL parsers resolve `\` and `..`). Parameters are checked against the
//! grammar Ollama itself accepts, and anything else is refused, not
//! normalised.

use crate::error::ProxyError;

/// The path to forward for `template` (an axum route such as
/// `/api/blobs/{digest}`) with its captured `params`.
pub fn upstream_path(template: &str, params: &[(String, String)]) -> Result<String, ProxyError> {
    let mut path = template.to_string();
    for (name, value) in params {
        let valid = match name.as_str() {
            "digest" => is_digest(value),
            "model" => is_model_name(value),
            _ => false,
        };
        if !valid {
            return Err(ProxyError::BadPath(format!(
                "`{name}` is not a valid {name}"
            )));
        }
        path = path.replace(&format!("{{{name}}}"), value);
    }
    if path.contains(['{', '}']) {
        return Err(ProxyError::Internal(format!("unfilled route {template}")));
    }
    Ok(path)
}

/// Ollama's blob digest: `sha256:` or `sha256-` and 64 hex digits.
fn is_digest(s: &str) -> bool {
    let Some(hex) = s
        .strip_prefix("sha256:")
        .or_else(|| s.strip_prefix("sha256-"))
    else {
        return false;
    };
    hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// One path segment of Ollama's model name grammar: `model[:tag]`, each
/// part 1 to 80 of letters, digits, `_`, `-`, `.`, starting with a letter,
/// digit or `_` (namespaces need a `/`, which one segment cannot hold).
fn is_model_name(s: &str) -> bool {
    let part = |p: &str| {
        let mut bytes = p.bytes();
        (1..=80).contains(&p.len())
            && bytes
                .next()
                .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
            && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    };
    match s.split_once(':') {
        Some((model, tag)) => part(model) && part(tag),
        None => part(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(template: &str, name: &str, value: &str) -> Result<String, String> {
        upstream_path(template, &[(name.into(), value.into())]).map_err(|e| e.to_string())
    }

    #[test]
    fn valid_parameters_fill_the_route() {
        let digest = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            path("/api/blobs/{digest}", "digest", &digest),
            Ok(format!("/api/blobs/{digest}"))
        );
        assert_eq!(
            path("/v1/models/{model}", "model", "llama3.2:3b-instruct_q4.K"),
            Ok("/v1/models/llama3.2:3b-instruct_q4.K".into())
        );
        assert_eq!(
            upstream_path("/api/tags", &[]).ok().as_deref(),
            Some("/api/tags")
        );
    }

    #[test]
    fn traversal_and_odd_characters_are_refused() {
        for digest in [
            "..\\generate",
            "..",
            "%2e%2e",
            "sha256:abc",
            &format!("sha256:{}/..", "a".repeat(64)),
            &format!("sha256:{}", "g".repeat(64)),
        ] {
            assert!(
                path("/api/blobs/{digest}", "digest", digest).is_err(),
                "{digest}"
            );
        }
        for model in [
            "..\\chat\\completions",
            "..",
            ".hidden",
            "a:b:c",
            "a b",
            "",
            "m?x",
        ] {
            assert!(
                path("/v1/models/{model}", "model", model).is_err(),
                "{model}"
            );
        }
    }
}
