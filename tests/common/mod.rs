//! Helpers shared by the integration tests: the fake Ollama, a proxy on a
//! real socket, and config from YAML.
#![allow(
    dead_code,
    unused_imports,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

pub mod fake_compat;
pub mod fake_guard;
pub mod fake_ollama;
pub mod redis_server;
pub mod redis_topologies;
pub mod slow_relay;

use std::net::SocketAddr;

use ollama_guard::config::{Config, load_from};
use ollama_guard::{AppState, run};
use tokio::sync::oneshot;

pub use fake_guard::{Family, GuardScript};
pub use fake_ollama::{FakeOllama, Recorded, Script, StreamEnd};
pub use redis_server::RedisServer;

/// A running ollama-guard on 127.0.0.1:0; stopped on drop.
pub struct Proxy {
    pub addr: SocketAddr,
    pub url: String,
    pub state: AppState,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// Config from YAML with `ollama.url` pointed at `upstream`; caching in
/// memory unless the YAML says otherwise.
pub fn config(upstream: &str, yaml: &str) -> Config {
    let env = |k: &str| match k {
        "OLLAMA_URL" => Some(upstream.to_string()),
        _ => None,
    };
    let yaml = if yaml.contains("cache:") {
        yaml.to_string()
    } else {
        format!("{yaml}\ncache:\n  backend: memory\n")
    };
    load_from(&yaml, env).unwrap_or_else(|e| panic!("test config invalid: {e}"))
}

pub async fn start_proxy(config: Config) -> Proxy {
    let state = AppState::new(config).expect("state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind proxy");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = oneshot::channel::<()>();
    let served = state.clone();
    tokio::spawn(async move {
        run(listener, served, async {
            let _ = rx.await;
        })
        .await
    });
    Proxy {
        addr,
        url: format!("http://{addr}"),
        state,
        stop: Some(tx),
    }
}

/// A fake Ollama and a proxy in front of it, with the given scanner YAML.
pub async fn stack(yaml: &str) -> (FakeOllama, Proxy) {
    let fake = FakeOllama::start().await;
    let proxy = start_proxy(config(&fake.url, yaml)).await;
    (fake, proxy)
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

/// Config for a proxy sharing verdicts through the Redis at `redis_url`,
/// probing every 100 ms so recovery tests run quickly.
pub fn redis_config(upstream: &str, redis_url: &str, yaml: &str) -> Config {
    let yaml = format!(
        "{yaml}\ncache:\n  backend: redis\nredis:\n  url: {redis_url}\n  health_check_interval: 0.1\nadmin:\n  token: test-admin-token-0123\n"
    );
    config(upstream, &yaml)
}

/// The proxy's `/metrics` text.
pub async fn metrics_text(url: &str) -> String {
    client()
        .get(format!("{url}/metrics"))
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("scrape body")
}

/// GETs a JSON endpoint of the proxy.
pub async fn get_json(url: &str) -> serde_json::Value {
    client()
        .get(url)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json")
}

/// POSTs a JSON body to a path of a server.
pub async fn post_json(url: &str, path: &str, body: &serde_json::Value) -> reqwest::Response {
    client()
        .post(format!("{url}{path}"))
        .json(body)
        .send()
        .await
        .expect("post")
}

/// Waits (up to 10 s) until the proxy at `url` reports Redis connected.
pub async fn redis_connected(url: &str) -> bool {
    eventually(|| async {
        get_json(&format!("{url}/cache/health")).await["redis_connected"] == true
    })
    .await
}

/// Polls `check` every 20 ms for up to 10 s; true once it holds.
pub async fn eventually<F, Fut>(mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..500 {
        if check().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    false
}

/// Reads a streamed body chunk by chunk, as the client received it.
pub async fn chunks(mut response: reqwest::Response) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(c) = response.chunk().await.expect("chunk") {
        out.push(String::from_utf8_lossy(&c).into_owned());
    }
    out
}

/// The JSON frames of an NDJSON or SSE body (SSE event names dropped).
pub fn frames(body: &str) -> Vec<serde_json::Value> {
    body.lines()
        .map(|l| l.strip_prefix("data: ").unwrap_or(l))
        .filter(|l| !l.trim().is_empty() && *l != "[DONE]" && !l.starts_with("event:"))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad frame {l:?}: {e}")))
        .collect()
}

/// The scanner set most tests use: a banned phrase, a redacting regex,
/// invisible text.
pub const SCANNERS: &str = r#"
scanners:
  input:
    - {type: invisible_text}
    - {type: ban_substrings, substrings: ["kill all humans", "ignore previous instructions"]}
    - {type: regex, mode: redact, patterns: ['sk-[A-Za-z0-9]{8,}'], placeholder: "[REDACTED_KEY]"}
  output:
    - {type: ban_substrings, substrings: ["kill all humans"]}
    - {type: regex, mode: redact, patterns: ['sk-[A-Za-z0-9]{8,}'], placeholder: "[REDACTED_KEY]"}
"#;
