//! The one HTTP client to Ollama: forwards method, path, query, headers and
//! body, with connect, response and idle timeouts, and maps transport
//! failures to 502/504.

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

pub struct Upstream {
    client: reqwest::Client,
    /// Base URL without a trailing slash.
    base: String,
    response_timeout: Duration,
}

impl Upstream {
    pub fn new(config: &OllamaConfig) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(secs(config.connect_timeout_secs))
            .read_timeout(secs(config.idle_timeout_secs))
            .pool_idle_timeout(Duration::from_secs(90))
            .no_proxy()
            .build()?;
        Ok(Self {
            client,
            base: config.url.trim_end_matches('/').to_string(),
            response_timeout: secs(config.response_timeout_secs),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
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
            .client
            .request(method, format!("{}{path_and_query}", self.base))
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
            .client
            .get(format!("{}/api/version", self.base))
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
