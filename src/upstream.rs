//! The HTTP client to Ollama: forwards method, path, query, headers and
//! body, with connect, response and idle timeouts, and maps transport
//! failures to 502/504. One connection pool per server worker, so an
//! upstream connection is driven by the thread whose request uses it.

use std::cell::Cell;
use std::sync::Arc;
use std::time::Duration;

use std::str::FromStr;

use axum::body::Body;
use axum::http::uri::{PathAndQuery, Scheme};
use axum::http::{
    HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri, header,
};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use smallvec::SmallVec;
use tokio::time::Instant;

use crate::config::{OllamaConfig, secs};
use crate::error::ProxyError;

mod pool;
use pool::{Lease, Pool};

/// Headers that describe one hop, not the message (RFC 9110 §7.6.1), plus
/// `host`, which the client library sets itself. Names, not strings: a
/// string is parsed into a name on every removal.
const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::HOST,
];

/// Removes the hop-by-hop headers, and those the `Connection` header names
/// (they describe this hop only, RFC 9110 §7.6.1). One pass over the names
/// finds them: most messages have none but `Host`, and removing a name that
/// is not there still costs a lookup.
fn strip_hop_headers(headers: &mut HeaderMap) {
    let mut found: SmallVec<[HeaderName; 4]> = headers
        .keys()
        .filter(|name| HOP_BY_HOP.contains(name))
        .cloned()
        .collect();
    let listed = headers.get_all(header::CONNECTION).iter();
    for token in listed
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
    {
        let token = token.trim();
        // The usual values: an option, and a name removed above. Skipped,
        // not made into a name (an allocation) for every reply.
        if token.eq_ignore_ascii_case("keep-alive") || token.eq_ignore_ascii_case("close") {
            continue;
        }
        if let Ok(name) = HeaderName::from_bytes(token.as_bytes()) {
            found.push(name);
        }
    }
    for name in &found {
        headers.remove(name);
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

/// How long a kept-alive upstream connection may sit idle.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// The client: hyper's HTTP/1 connections, kept alive in a pool per worker
/// (`pool`), with TLS for `https://` upstreams. Not reqwest: its redirect
/// and retry layers parsed the URL twice per request (with an IDNA pass),
/// a tenth of the proxy's time.
pub struct Upstream {
    /// One pool per server worker; see [`enter_worker`].
    pools: Vec<Arc<Pool>>,
    /// Base URL without a trailing slash, for messages.
    base: String,
    /// The `Host` header every request gets, made once: hyper's client
    /// would otherwise format one for each request (2 k instructions).
    host: HeaderValue,
    /// The base URL's own path (Ollama behind a path prefix), no trailing
    /// slash; usually empty.
    prefix: String,
    response_timeout: Duration,
    /// Longest silence while reading a response body.
    idle_timeout: Duration,
}

/// An upstream response: its head, and its body read chunk by chunk, each
/// within `ollama.idle_timeout_secs`.
pub struct UpstreamResponse {
    head: axum::http::response::Parts,
    body: Returning,
    idle: Duration,
}

/// A response body and the connection it came on. The connection goes
/// back to the pool when the body is dropped after its end, however the
/// end was noticed:
/// - [`UpstreamResponse::chunks`] read it (a chunked body ends only so);
/// - all of its declared `Content-Length` arrived. hyper's server stops
///   polling a relayed body once it has written that many bytes and drops
///   it without asking for its end; an empty body (`HEAD`, 204, length 0)
///   is never polled at all.
///
/// Dropped before its end (a client that left, a stall, an error), the
/// body takes its connection with it: the rest of it would be read as the
/// next response.
struct Returning {
    body: Incoming,
    lease: Option<Lease>,
    /// `frame()` answered `None`.
    ended: bool,
}

impl Drop for Returning {
    fn drop(&mut self) {
        let at_end = self.ended || hyper::body::Body::is_end_stream(&self.body);
        if at_end && let Some(lease) = self.lease.take() {
            lease.give_back();
        }
    }
}

/// Why an upstream body stopped before its end.
#[derive(Debug)]
pub enum BodyError {
    /// Nothing arrived within `ollama.idle_timeout_secs`.
    Stalled,
    /// The connection failed or the body was malformed.
    Failed(hyper::Error),
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::Stalled => write!(f, "no data within ollama.idle_timeout_secs"),
            BodyError::Failed(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for BodyError {}

impl UpstreamResponse {
    pub fn status(&self) -> StatusCode {
        self.head.status
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.head.headers
    }

    /// The headers to pass on to the client: taken out instead of cloned
    /// ([`Self::headers`] is empty after), hop-by-hop ones removed.
    pub fn take_headers(&mut self) -> HeaderMap {
        let mut headers = std::mem::take(&mut self.head.headers);
        strip_hop_headers(&mut headers);
        headers
    }

    /// The declared `Content-Length`, if any.
    pub fn content_length(&self) -> Option<u64> {
        self.headers()
            .get(header::CONTENT_LENGTH)?
            .to_str()
            .ok()?
            .parse()
            .ok()
    }

    /// The body's data chunks (trailers skipped); ends after the first
    /// error. Read to its end, it gives the connection back to the pool.
    ///
    /// The idle timeout is one timer for the whole body, not one a chunk
    /// (each made, set and cancelled in the timer wheel: 1.2% of a
    /// streamed token's instructions). Each chunk notes when it came; when
    /// the timer fires, it is set again from that time, or the body has
    /// stalled.
    pub fn chunks(self) -> impl Stream<Item = Result<Bytes, BodyError>> + Send + 'static {
        let idle = self.idle;
        let timer = Box::pin(tokio::time::sleep(idle));
        let state = Some((self.body, timer, Instant::now()));
        futures_util::stream::unfold(state, move |state| async move {
            let (mut rest, mut timer, mut heard) = state?;
            loop {
                let frame = tokio::select! {
                    biased;
                    frame = rest.body.frame() => frame,
                    () = &mut timer => match heard + idle {
                        due if due <= Instant::now() => {
                            return Some((Err(BodyError::Stalled), None));
                        }
                        due => {
                            timer.as_mut().reset(due);
                            continue;
                        }
                    },
                };
                heard = Instant::now();
                return match frame {
                    None => {
                        rest.ended = true;
                        None
                    }
                    Some(Err(e)) => Some((Err(BodyError::Failed(e)), None)),
                    Some(Ok(frame)) => match frame.into_data() {
                        Ok(data) => Some((Ok(data), Some((rest, timer, heard)))),
                        Err(_trailers) => continue,
                    },
                };
            }
        })
    }
}

impl Upstream {
    pub fn new(config: &OllamaConfig, workers: usize) -> anyhow::Result<Self> {
        let base = config.url.trim_end_matches('/').to_string();
        let uri: Uri = base.parse()?;
        let prefix = uri.path().trim_end_matches('/').to_string();
        let (Some(scheme), Some(authority)) = (uri.scheme(), uri.authority()) else {
            anyhow::bail!("ollama.url: {base} has no scheme or host");
        };
        let host = host_header(&uri)?;
        let https = connector(secs(config.connect_timeout_secs))?;
        // Where connections go; requests carry only their path.
        let target = Uri::builder()
            .scheme(scheme.clone())
            .authority(authority.clone())
            .path_and_query("/")
            .build()?;
        Ok(Self {
            pools: (0..workers.max(1))
                .map(|_| Pool::new(https.clone(), target.clone(), IDLE_TIMEOUT))
                .collect(),
            base,
            host,
            prefix,
            response_timeout: secs(config.response_timeout_secs),
            idle_timeout: secs(config.idle_timeout_secs),
        })
    }

    /// This worker's pool.
    fn pool(&self) -> &Arc<Pool> {
        &self.pools[WORKER.get() % self.pools.len()]
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The request target of `path_and_query` (which starts with `/`) in
    /// origin form, as HTTP/1.1 sends it to a server: the base URL's path
    /// and the request's.
    fn uri(&self, path_and_query: &str) -> Result<Uri, ProxyError> {
        let pq = match self.prefix.is_empty() {
            true => PathAndQuery::from_str(path_and_query),
            false => PathAndQuery::from_str(&format!("{}{path_and_query}", self.prefix)),
        };
        let pq = pq.map_err(|e| ProxyError::BadPath(format!("{path_and_query:?}: {e}")))?;
        Ok(Uri::from(pq))
    }

    /// Sends a request and waits for the response headers.
    pub async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        mut headers: HeaderMap,
        body: Body,
    ) -> Result<UpstreamResponse, ProxyError> {
        strip_hop_headers(&mut headers);
        headers.insert(header::HOST, self.host.clone());
        let mut request = Request::new(body);
        *request.method_mut() = method;
        *request.uri_mut() = self.uri(path_and_query)?;
        *request.headers_mut() = headers;
        match tokio::time::timeout(self.response_timeout, self.pool().send(request)).await {
            Err(_) => Err(ProxyError::Timeout),
            Ok(Ok((response, lease))) => {
                let (head, body) = response.into_parts();
                let body = Returning {
                    body,
                    lease: Some(lease),
                    ended: false,
                };
                Ok(UpstreamResponse {
                    head,
                    body,
                    idle: self.idle_timeout,
                })
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, url = %self.base, "upstream request failed");
                Err(ProxyError::Unreachable {
                    url: self.base.clone(),
                })
            }
        }
    }

    /// A quick liveness probe of Ollama (`GET /api/version`).
    /// Its answer is read whole (a few bytes), so that its connection
    /// stays open for the next request.
    pub async fn probe(&self, timeout: Duration) -> bool {
        let get = async {
            let answer = self
                .send(Method::GET, "/api/version", HeaderMap::new(), Body::empty())
                .await
                .ok()?;
            let up = answer.status().is_success();
            let read = answer.chunks().all(|c| async move { c.is_ok() }).await;
            Some(up && read)
        };
        matches!(tokio::time::timeout(timeout, get).await, Ok(Some(true)))
    }
}

/// Plain TCP or TLS (`https://`, the platform's roots), with a connect
/// timeout; Nagle off (requests and their bodies are written at once).
fn connector(connect_timeout: Duration) -> anyhow::Result<HttpsConnector<HttpConnector>> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .try_with_platform_verifier()?
        .https_or_http()
        .enable_http1()
        .wrap_connector(http))
}

/// `Host` for `uri` as hyper's client writes it: the host, with the port
/// unless it is the scheme's default.
fn host_header(uri: &Uri) -> anyhow::Result<HeaderValue> {
    let host = uri.host().unwrap_or_default();
    let default = if uri.scheme() == Some(&Scheme::HTTPS) {
        443
    } else {
        80
    };
    let value = match uri.port_u16() {
        Some(port) if port != default => format!("{host}:{port}"),
        _ => host.to_string(),
    };
    Ok(HeaderValue::from_str(&value)?)
}

/// The upstream response as ours: same status and headers (hop-by-hop ones
/// removed), body streamed through chunk by chunk.
pub fn relay(mut upstream: UpstreamResponse) -> Response<Body> {
    let status = upstream.status();
    let headers = upstream.take_headers();
    response(status, headers, Body::from_stream(upstream.chunks()))
}

/// A response with these headers as they are. Built directly: axum's
/// `(status, headers, body)` inserts each header again into a new map.
pub fn response(status: StatusCode, headers: HeaderMap, body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
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
    fn requests_go_in_origin_form_under_the_base_path() {
        let plain = upstream("http://127.0.0.1:11434/");
        let uri = |u: &Upstream, pq: &str| u.uri(pq).expect("uri").to_string();
        assert_eq!(uri(&plain, "/api/chat"), "/api/chat");
        assert_eq!(uri(&plain, "/api/tags?x=1&y"), "/api/tags?x=1&y");
        let prefixed = upstream("https://gpu.example:8443/ollama/");
        assert_eq!(
            uri(&prefixed, "/api/blobs/sha256:ab?q"),
            "/ollama/api/blobs/sha256:ab?q"
        );
        assert_eq!(prefixed.base_url(), "https://gpu.example:8443/ollama");
        assert_eq!(
            prefixed.pool().target().to_string(),
            "https://gpu.example:8443/"
        );
    }

    /// A server answering one request: its head, then after each of `gaps`
    /// (milliseconds) a two-digit chunk (`00`, `01`...), then the end.
    async fn paced_server(gaps: &'static [u64]) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let (mut tcp, _) = listener.accept().await.expect("accept");
            let mut head = [0u8; 1024];
            let _ = tcp.read(&mut head).await;
            let mut out = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
            for (i, gap) in gaps.iter().enumerate() {
                tcp.write_all(&out).await.expect("write");
                tokio::time::sleep(Duration::from_millis(*gap)).await;
                out = format!("2\r\n{i:02}\r\n").into_bytes();
            }
            tcp.write_all(&out).await.expect("write");
            let _ = tcp.write_all(b"0\r\n\r\n").await;
        });
        format!("http://{addr}")
    }

    /// The chunks of a body read with a 250 ms idle timeout, and whether it
    /// stalled.
    async fn read_paced(gaps: &'static [u64]) -> (Vec<Bytes>, bool) {
        let config = OllamaConfig {
            url: paced_server(gaps).await,
            idle_timeout_secs: 0.25,
            ..OllamaConfig::default()
        };
        let upstream = Upstream::new(&config, 1).expect("upstream");
        let response = upstream
            .send(Method::GET, "/api/x", HeaderMap::new(), Body::empty())
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        let mut chunks = Box::pin(response.chunks());
        let (mut got, mut stalled) = (Vec::new(), false);
        while let Some(chunk) = chunks.next().await {
            match chunk {
                Ok(data) => got.push(data),
                Err(BodyError::Stalled) => stalled = true,
                Err(e) => panic!("{e}"),
            }
        }
        (got, stalled)
    }

    #[tokio::test]
    async fn a_body_slower_in_all_than_the_idle_timeout_is_read_whole() {
        // 150 ms gaps, 600 ms in all, against 250 ms of idle timeout.
        let (got, stalled) = read_paced(&[0, 150, 150, 150, 150]).await;
        assert!(!stalled);
        assert_eq!(got.concat(), b"0001020304".to_vec());
    }

    #[tokio::test]
    async fn a_silence_longer_than_the_idle_timeout_stalls_the_body() {
        // Two chunks 150 ms apart, then 600 ms of silence.
        let (got, stalled) = read_paced(&[0, 150, 600, 0]).await;
        assert!(stalled);
        assert_eq!(
            got.concat(),
            b"0001".to_vec(),
            "what came before the silence"
        );
    }

    #[tokio::test]
    async fn a_connect_that_times_out_is_a_bad_gateway() {
        // A listener that never accepts, its queue full: the kernel drops
        // the next connection's SYN, so the connect waits out its timeout.
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind("127.0.0.1:0".parse().expect("addr"))
            .expect("bind");
        let listener = socket.listen(1).expect("listen");
        let addr = listener.local_addr().expect("addr");
        let mut queued = Vec::new();
        for _ in 0..4 {
            let connect = tokio::net::TcpStream::connect(addr);
            if let Ok(Ok(tcp)) = tokio::time::timeout(Duration::from_millis(200), connect).await {
                queued.push(tcp);
            }
        }
        let config = OllamaConfig {
            url: format!("http://{addr}"),
            connect_timeout_secs: 0.3,
            ..OllamaConfig::default()
        };
        let upstream = Upstream::new(&config, 1).expect("upstream");
        let started = std::time::Instant::now();
        let sent = upstream
            .send(Method::GET, "/api/version", HeaderMap::new(), Body::empty())
            .await;
        let waited = started.elapsed();
        assert!(
            matches!(sent, Err(ProxyError::Unreachable { .. })),
            "{:?}",
            sent.err()
        );
        assert!(
            waited >= Duration::from_millis(250),
            "refused, not timed out: {waited:?}"
        );
        drop((listener, queued));
    }

    #[test]
    fn the_host_header_is_the_upstreams_with_a_port_unless_the_default() {
        for (url, host) in [
            ("http://127.0.0.1:11434/", "127.0.0.1:11434"),
            ("http://ollama", "ollama"),
            ("http://ollama:80", "ollama"),
            ("http://ollama:443", "ollama:443"),
            ("https://gpu.example:8443/ollama/", "gpu.example:8443"),
            ("https://gpu.example:443", "gpu.example"),
            ("https://gpu.example:80", "gpu.example:80"),
            ("http://[::1]:11434", "[::1]:11434"),
            ("http://user:secret@ollama:11434", "ollama:11434"),
        ] {
            assert_eq!(upstream(url).host, host, "{url}");
        }
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_removed_with_every_value() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("Host", "127.0.0.1:8080"),
            ("Content-Type", "application/json"),
            ("Connection", "keep-alive"),
            ("Keep-Alive", "timeout=5"),
            ("Proxy-Authorization", "Basic a"),
            ("Proxy-Authorization", "Basic b"),
            ("Transfer-Encoding", "chunked"),
            ("TE", "trailers"),
            ("X-Request-Id", "r1"),
            // Named by `Connection`: this hop's too.
            ("Connection", "X-Hop-A , close"),
            ("X-Hop-A", "a"),
            ("X-Hop-B", "b1"),
            ("X-Hop-B", "b2"),
            ("Connection", "x-hop-b"),
        ] {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).expect("name"),
                value.parse().expect("value"),
            );
        }
        strip_hop_headers(&mut headers);
        let mut left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        left.sort();
        assert_eq!(left, ["content-type", "x-request-id"]);
        assert_eq!(headers.len(), 2, "no value of a removed name is left");
    }
}
