//! Configuration: defaults < `config.yaml` < environment variables.
//!
//! [`load`] parses, then [`Config::validate`] checks meaning; both report every
//! problem at once, naming the key. Every key has an environment name derived
//! from its path (see [`env`]): `server.port` is `PROXY_PORT`, `cache.ttl` is
//! `CACHE_TTL`, `redis.host` is `REDIS_HOST`, `guard.stream.overlap_bytes` is
//! `GUARD_STREAM_OVERLAP_BYTES`.

mod auth;
pub mod env;
mod load;
mod validate;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::scan::ScannerSpec;

pub use auth::{AuthConfig, KeyConfig, RateLimitConfig};
pub use load::{ConfigError, load, load_from, load_unchecked};

pub const DEFAULT_PROXY_PORT: u16 = 8080;
pub const DEFAULT_OLLAMA_URL: &str = "http://127.0.0.1:11434";
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024 * 1024;
pub const DEFAULT_CACHE_TTL_SECS: u64 = 3600;
pub const DEFAULT_CACHE_MAX_SIZE: usize = 10_000;

/// The whole effective configuration.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub ollama: OllamaConfig,
    pub guard: GuardConfig,
    pub scanners: ScannersConfig,
    pub cache: CacheConfig,
    pub redis: RedisConfig,
    pub admin: AdminConfig,
    pub auth: AuthConfig,
}

/// Where ollama-guard listens and how much it accepts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Interface to bind. `127.0.0.1` (Ollama's own default) serves this
    /// machine only; `0.0.0.0` serves other machines and containers.
    pub host: String,
    pub port: u16,
    /// Largest request body; bigger ones get 413 (blob uploads aside).
    /// Images count here, and only here.
    pub max_body_bytes: usize,
    /// Most text one request may have scanned, all fields together; more
    /// gets 413.
    pub max_text_bytes: usize,
    /// Most texts (fields) one request may have scanned; more gets 413, and
    /// so does a body of more than ten times as many JSON objects and
    /// arrays, before it is parsed.
    pub max_texts: usize,
    /// `text` for people, `json` for log shippers.
    pub log_format: LogFormat,
    /// A connection that has not sent a whole request head by then is
    /// closed (idle keep-alive connections too).
    pub header_read_timeout_secs: f64,
    /// A body to scan that has not fully arrived by then gets 408.
    pub body_read_timeout_secs: f64,
    /// Connections open at once; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// Requests handled at once (`/health` and `/metrics` aside); more get
    /// 503 with `Retry-After`.
    pub max_in_flight: usize,
    /// Threads serving connections, each with its own runtime and upstream
    /// pool; 0 means one per core.
    pub workers: usize,
    /// Peers (addresses or CIDRs) whose `X-Forwarded-For` is believed for
    /// the client's address; empty: never.
    pub trusted_proxies: Vec<String>,
}

impl ServerConfig {
    /// `workers`, with 0 resolved to the number of cores.
    pub fn worker_count(&self) -> usize {
        match self.workers {
            0 => std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            n => n,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: DEFAULT_PROXY_PORT,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_text_bytes: 10 * 1024 * 1024,
            max_texts: 10_000,
            log_format: LogFormat::Text,
            header_read_timeout_secs: 30.0,
            body_read_timeout_secs: 30.0,
            max_connections: 4096,
            max_in_flight: 1024,
            workers: 0,
            trusted_proxies: Vec::new(),
        }
    }
}

/// The Ollama server being guarded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OllamaConfig {
    pub url: String,
    /// Seconds to open a connection; past it the client gets 502.
    pub connect_timeout_secs: f64,
    /// Seconds until Ollama sends response headers (loading a model counts);
    /// past it the client gets 504.
    pub response_timeout_secs: f64,
    /// Seconds a streamed response may go silent before it is cut.
    pub idle_timeout_secs: f64,
}

impl Default for OllamaConfig {
    fn default() -> Self {
        Self {
            url: DEFAULT_OLLAMA_URL.into(),
            connect_timeout_secs: 5.0,
            response_timeout_secs: 600.0,
            idle_timeout_secs: 300.0,
        }
    }
}

/// What the guard does with findings and failures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GuardConfig {
    /// HTTP status of a blocked request (`block_response: error`).
    pub block_status: u16,
    /// `error`: native error shape with `block_status`; `inline`: 200 with an
    /// assistant message, for chat UIs that hide errors.
    pub block_response: BlockResponse,
    /// The assistant message sent in `inline` mode.
    pub inline_message: String,
    /// What a scanner error does: `closed` blocks, `open` lets the text pass.
    pub fail_mode: FailMode,
    /// Scan embedding inputs too (off: embeddings are not shown to a person).
    pub scan_embeddings: bool,
    /// Accept `context` token arrays on `/api/generate`, and send Ollama's
    /// `context` back in generate replies. Ollama turns them back into text
    /// that no scanner sees, so they are refused and stripped.
    pub allow_context: bool,
    /// Accept `template` on `/api/generate` (only literal text and field
    /// references, rendered and scanned) and on `/api/create` (its plain
    /// text scanned). Templates can build text no scanner sees.
    pub allow_templates: bool,
    /// Send `_debug_info` (the rendered prompt of `_debug_render_only`)
    /// back to the client, scanned like all output; stripped otherwise.
    pub allow_debug_info: bool,
    /// Tell clients where a verdict came from (`x-guard-cache`). Off: it
    /// would let a client learn whether someone else sent a text.
    pub expose_cache_header: bool,
    /// Where `scripts/fetch-models.sh` put the model files (relative paths
    /// start at the working directory).
    pub models_dir: String,
    /// Cores one classifier inference may use; 0: all of them.
    pub model_threads: usize,
    /// Longest a text's scan may take; over it is a scanner error
    /// (`fail_mode` decides).
    pub scan_timeout_secs: f64,
    pub stream: StreamConfig,
}

impl Config {
    /// What the scanners need from the rest of the configuration.
    pub fn scanner_resources(&self) -> crate::scan::registry::Resources {
        crate::scan::registry::Resources {
            models: self.guard.models(),
            ollama_url: self.ollama.url.clone(),
        }
    }
}

impl GuardConfig {
    /// Where model-running scanners find their files.
    pub fn models(&self) -> crate::scan::classifier::Setup {
        crate::scan::classifier::Setup::new(&self.models_dir, self.model_threads)
    }

    /// What requests may carry besides text.
    pub fn allowed(&self) -> crate::dialect::request::Allowed {
        crate::dialect::request::Allowed {
            context: self.allow_context,
            templates: self.allow_templates,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockResponse {
    Error,
    Inline,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailMode {
    Closed,
    Open,
}

impl Default for GuardConfig {
    fn default() -> Self {
        Self {
            block_status: 400,
            block_response: BlockResponse::Error,
            inline_message: "I can't help with that request.".into(),
            fail_mode: FailMode::Closed,
            scan_embeddings: false,
            allow_context: false,
            allow_templates: false,
            allow_debug_info: false,
            expose_cache_header: false,
            models_dir: "models".into(),
            model_threads: 0,
            scan_timeout_secs: 30.0,
            stream: StreamConfig::default(),
        }
    }
}

/// Scanning of streamed model output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamConfig {
    /// Retired: streams are scanned at every chunk and hold back only what
    /// could still become a match. Accepted so old configs load; ignored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scan_interval_bytes: Option<usize>,
    /// Bytes of already-sent text scanned again with the new text, so a
    /// phrase split across chunks is still seen whole.
    pub overlap_bytes: usize,
    /// Judges (guard models, the classifier) see a stream field whole each
    /// time this much new text has come (after a first 64 bytes, doubling
    /// up to it), and at the end; the text waits for them. 0: only at the
    /// end (the whole reply is held).
    pub judge_every_bytes: usize,
}

/// Default largest interval between judgements of a stream field.
pub const DEFAULT_JUDGE_EVERY_BYTES: usize = 512;

impl Default for StreamConfig {
    fn default() -> Self {
        Self {
            judge_every_bytes: DEFAULT_JUDGE_EVERY_BYTES,
            scan_interval_bytes: None,
            overlap_bytes: 256,
        }
    }
}

/// The scanner lists, run in order (cheap scanners first).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScannersConfig {
    pub input: Vec<ScannerSpec>,
    pub output: Vec<ScannerSpec>,
}

/// The shipped scanner set: cheap, high-precision checks whose false-positive
/// rates were measured (README, "Accuracy"). Blocks what is unambiguous
/// (smuggled characters, injection), redacts credentials, and only reports
/// PII and refusals, which ordinary use contains.
const DEFAULT_SCANNERS: &str = "
input:
  - {type: invisible_text, mode: block}
  - {type: secrets, mode: redact}
  - {type: prompt_injection, mode: block, threshold: 0.75}
  - {type: pii, mode: report}
output:
  - {type: invisible_text, mode: redact}
  - {type: secrets, mode: redact}
  - {type: no_refusal, mode: report}
";

impl Default for ScannersConfig {
    #[expect(clippy::expect_used, reason = "a constant, parsed by the config tests")]
    fn default() -> Self {
        // Not `ScannersConfig` itself: its `#[serde(default)]` would call this.
        #[derive(Deserialize)]
        struct Lists {
            input: Vec<ScannerSpec>,
            output: Vec<ScannerSpec>,
        }
        let lists: Lists =
            serde_saphyr::from_str(DEFAULT_SCANNERS).expect("the default scanner set parses");
        Self {
            input: lists.input,
            output: lists.output,
        }
    }
}

/// The verdict cache.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    pub enabled: bool,
    /// `auto`: Redis when reachable, memory otherwise; `redis`; `memory`.
    pub backend: CacheBackend,
    /// Seconds a verdict stays valid, in memory and in Redis.
    pub ttl: u64,
    /// Verdicts kept in process memory (LRU).
    pub max_size: usize,
    /// HMAC-SHA256 key signing every verdict written to Redis (all
    /// instances share it); a value that fails the check is rescanned.
    pub signing_key: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheBackend {
    Auto,
    Redis,
    Memory,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            backend: CacheBackend::Auto,
            ttl: DEFAULT_CACHE_TTL_SECS,
            max_size: DEFAULT_CACHE_MAX_SIZE,
            signing_key: None,
        }
    }
}

/// The shared Redis behind the cache.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    pub enabled: bool,
    /// `redis://[user:password@]host:port/db`, `rediss://` for TLS; wins over
    /// host, port, db, username, password and ssl.
    pub url: Option<String>,
    pub host: String,
    pub port: u16,
    pub db: i64,
    /// ACL user; `None` authenticates as `default`.
    pub username: Option<String>,
    pub password: Option<String>,
    /// Connect with TLS.
    pub ssl: bool,
    /// Connections opened to Redis (requests are multiplexed over them).
    pub max_connections: usize,
    /// Seconds to connect before giving up for now.
    pub socket_connect_timeout: f64,
    /// Seconds one command may take before it counts as a failure.
    pub socket_timeout: f64,
    /// Prefix of every key this service writes; `/cache/clear` removes only it.
    pub key_prefix: String,
    /// Seconds between reconnection probes while Redis is away.
    pub health_check_interval: f64,
    /// Find the master through Redis Sentinel (when `nodes` is set); host,
    /// port and url are then not used.
    pub sentinel: SentinelConfig,
    /// Redis Cluster seed nodes, `host:port`; when set, host, port and url
    /// are not used (a cluster has database 0 only).
    pub cluster_nodes: Vec<String>,
    /// PEM file of the CA that signed the server's certificate (TLS);
    /// unset trusts the system's roots.
    pub tls_ca_file: Option<String>,
    /// PEM client certificate and key, for servers that ask for one.
    pub tls_cert_file: Option<String>,
    pub tls_key_file: Option<String>,
}

/// Redis Sentinel: the sentinels to ask and the master's name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SentinelConfig {
    /// The name the sentinels monitor the master under.
    pub master_name: String,
    /// Sentinels, `host:port`; empty = no Sentinel.
    pub nodes: Vec<String>,
    /// The sentinels' own ACL user and password (`redis.username` and
    /// `redis.password` are for the master).
    pub username: Option<String>,
    pub password: Option<String>,
}

impl Default for SentinelConfig {
    fn default() -> Self {
        Self {
            master_name: "mymaster".into(),
            nodes: Vec::new(),
            username: None,
            password: None,
        }
    }
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            url: None,
            host: "127.0.0.1".into(),
            port: 6379,
            db: 0,
            username: None,
            password: None,
            ssl: false,
            max_connections: 4,
            socket_connect_timeout: 1.0,
            socket_timeout: 0.25,
            key_prefix: "ollama-guard:".into(),
            health_check_interval: 5.0,
            sentinel: SentinelConfig::default(),
            cluster_nodes: Vec::new(),
            tls_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
        }
    }
}

/// Administration.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Bearer token for `POST /cache/clear`; unset disables admin calls.
    /// With API keys, it also opens `/scan` and the management routes.
    pub token: Option<String>,
    /// `/metrics`, `/cache/stats` and `/cache/health` need the admin token.
    pub protect_ops: bool,
}

/// Seconds from config as a `Duration` (validated to be finite and > 0).
pub fn secs(value: f64) -> Duration {
    Duration::try_from_secs_f64(value).unwrap_or(Duration::ZERO)
}

/// The config as YAML with secrets (`redis.password`, `admin.token`, a
/// password inside `redis.url`) replaced by `"***"`.
pub fn masked_yaml(config: &Config) -> String {
    let mut tree = serde_json::to_value(config).unwrap_or_default();
    let keys = config.auth.keys.len();
    let key_pointers = (0..keys).map(|i| format!("/auth/keys/{i}/key"));
    let fixed = [
        "/redis/password",
        "/redis/sentinel/password",
        "/admin/token",
        "/cache/signing_key",
    ]
    .map(String::from);
    for pointer in fixed.into_iter().chain(key_pointers) {
        if let Some(v) = tree.pointer_mut(&pointer).filter(|v| !v.is_null()) {
            *v = "***".into();
        }
    }
    if let Some(serde_json::Value::String(url)) = tree.pointer_mut("/redis/url") {
        *url = mask_url_password(url);
    }
    serde_saphyr::to_string(&tree).unwrap_or_else(|e| format!("# cannot print config: {e}\n"))
}

/// `redis://user:secret@host` → `redis://user:***@host`.
pub fn mask_url_password(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}
