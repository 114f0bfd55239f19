//! The HTTP client to Ollama: forwards method, path, query, headers and
//! body, with connect, response and idle timeouts, and maps transport
//! failures to 502/504. One connection pool per server worker, so an
//! upstream connection is driven by the thread whose request uses it.

use std::cell::Cell;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Response};
use futures_util::TryStreamExt;

use crate::config::{OllamaConfig, secs};
use crate::error::ProxyError;

/// Headers that describe one hop, not the message (RFC 9110 §7.6.1), plus
/// `host`, which the client library sets itself.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
];

pub fn strip_hop_headers(headers: &mut HeaderMap) {
    for h in HOP_BY_HOP {
        headers.remove(h);
    }
}

thread_local! {
    /// The server worker this thread is (0 off the workers: tests, probes).
    static WORKER: Cell<usize> = const { Cell::new(0) };
}

/// Marks this thread as server worker `index`: its requests use pool `index`.
pub fn enter_worker(index: usize) {
    WORKER.set(index);
}

pub struct Upstream {
    /// One client (pool) per server worker; see [`enter_worker`].
    clients: Vec<reqwest::Client>,
    /// Base URL without a trailing slash, for messages.
    base: String,
    /// `base` parsed once: each request only sets its path and query, so
    /// the host is never parsed (nor IDNA-mapped) again.
    url: reqwest::Url,
    /// The base URL's own path (Ollama behind a path prefix), no trailing
    /// slash; usually empty.
    prefix: String,
    response_timeout: Duration,
}

impl Upstream {
    pub fn new(config: &OllamaConfig, workers: usize) -> anyhow::Result<Self> {
        let base = config.url.trim_end_matches('/').to_string();
        let url = reqwest::Url::parse(&base)?;
        let prefix = url.path().trim_end_matches('/').to_string();
        let client = || -> reqwest::Result<reqwest::Client> {
            reqwest::Client::builder()
                .connect_timeout(secs(config.connect_timeout_secs))
                .read_timeout(secs(config.idle_timeout_secs))
                .pool_idle_timeout(Duration::from_secs(90))
                .no_proxy()
                .build()
        };
        Ok(Self {
            clients: (0..workers.max(1))
                .map(|_| client())
                .collect::<Result<_, _>>()?,
            base,
            url,
            prefix,
            response_timeout: secs(config.response_timeout_secs),
        })
    }

    /// This worker's client.
    fn client(&self) -> &reqwest::Client {
        &self.clients[WORKER.get() % self.clients.len()]
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The upstream URL of `path_and_query` (which starts with `/`).
    fn url(&self, path_and_query: &str) -> reqwest::Url {
        let (path, query) = match path_and_query.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (path_and_query, None),
        };
        let mut url = self.url.clone();
        if self.prefix.is_empty() {
            url.set_path(path);
        } else {
            url.set_path(&format!("{}{path}", self.prefix));
        }
        url.set_query(query);
        url
    }

    /// Sends a request and waits for the response headers.
    pub async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        mut headers: HeaderMap,
        body: reqwest::Body,
    ) -> Result<reqwest::Response, ProxyError> {
        strip_hop_headers(&mut headers);
        let request = self
            .client()
            .request(method, self.url(path_and_query))
            .headers(headers)
            .body(body);
        match tokio::time::timeout(self.response_timeout, request.send()).await {
            Err(_) => Err(ProxyError::Timeout),
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) if e.is_timeout() => Err(ProxyError::Timeout),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, url = %self.base, "upstream request failed");
                Err(ProxyError::Unreachable {
                    url: self.base.clone(),
                })
            }
        }
    }

    /// A quick liveness probe of Ollama (`GET /api/version`).
    pub async fn probe(&self, timeout: Duration) -> bool {
        let request = self
            .client()
            .get(self.url("/api/version"))
            .timeout(timeout)
            .send();
        matches!(request.await, Ok(r) if r.status().is_success())
    }
}

/// The upstream response as ours: same status and headers, body streamed
/// through chunk by chunk.
pub fn relay(response: reqwest::Response) -> Response<Body> {
    let status = response.status();
    let mut headers = response.headers().clone();
    strip_hop_headers(&mut headers);
    let body = Body::from_stream(response.bytes_stream().map_err(std::io::Error::other));
    let mut out = Response::new(body);
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(url: &str) -> Upstream {
        let config = OllamaConfig {
            url: url.into(),
            ..OllamaConfig::default()
        };
        Upstream::new(&config, 2).expect("valid url")
    }

    #[test]
    fn urls_keep_the_base_and_its_prefix() {
        let plain = upstream("http://127.0.0.1:11434/");
        assert_eq!(
            plain.url("/api/chat").as_str(),
            "http://127.0.0.1:11434/api/chat"
        );
        assert_eq!(
            plain.url("/api/tags?x=1&y").as_str(),
            "http://127.0.0.1:11434/api/tags?x=1&y"
        );
        let prefixed = upstream("https://gpu.example:8443/ollama/");
        assert_eq!(
            prefixed.url("/api/blobs/sha256:ab?q").as_str(),
            "https://gpu.example:8443/ollama/api/blobs/sha256:ab?q"
        );
        assert_eq!(prefixed.base_url(), "https://gpu.example:8443/ollama");
    }
}
