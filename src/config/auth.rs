//! Who may use the proxy, and how much (`auth.*`); see `access/` for how it
//! is enforced.

use serde::{Deserialize, Serialize};

/// API keys and network rules.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Clients and their keys. With none (here and in `keys_file`) the
    /// proxy is open to whoever reaches it, as Ollama is.
    pub keys: Vec<KeyConfig>,
    /// A YAML file with more entries of the same form, so secrets can stay
    /// out of `config.yaml`; read at start.
    pub keys_file: Option<String>,
    /// Only clients from these networks are served (empty: any).
    pub allow_cidrs: Vec<String>,
    /// Clients from these networks are refused (checked first).
    pub deny_cidrs: Vec<String>,
}

/// One client.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeyConfig {
    /// The secret the client sends as `Authorization: Bearer <key>`.
    pub key: String,
    /// Who it is, in logs, metrics and rate-limit keys (never the key).
    pub name: String,
    pub rate_limit: RateLimitConfig,
    /// May pull, push, create, copy and delete models and upload blobs.
    pub allow_management: bool,
    /// May call `POST /scan`.
    pub allow_scan: bool,
    /// Models this key may run (`*` matches any run of characters); empty:
    /// any model.
    pub models: Vec<String>,
}

/// Limits of one key; 0 means no limit.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    pub requests_per_minute: u64,
    /// Prompt tokens a minute, estimated from the text to scan (4 bytes a
    /// token) when a request is admitted.
    pub tokens_per_minute: u64,
    /// Requests of this key in flight at once on one instance (a stream
    /// counts until it ends).
    pub max_concurrent: usize,
}
