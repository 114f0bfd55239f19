//! Request handling: pass-through routes are relayed untouched; guarded
//! routes are read, scanned on the way in, forwarded, and scanned on the way
//! out (`output.rs`: whole, or frame by frame in `stream.rs`).

pub mod blocks;
mod output;
mod paths;
mod stream;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, to_bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{MatchedPath, Path, Request, State};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use bytes::Bytes;

use crate::AppState;
use crate::access::Caller;
use crate::cache::Tier;
use crate::dialect::request::{Allowed, Refused, Request as ParsedRequest};
use crate::dialect::{Route, apply_rewrites, gojson};
use crate::error::{ApiError, ProxyError};
use crate::guard::Decision;
use crate::scan::Direction;
use crate::upstream::relay;

pub const CACHE_HEADER: &str = "x-guard-cache";

/// Times the upstream call and everything around it, per route.
struct Timer {
    started: Instant,
    upstream: Duration,
}

impl Timer {
    fn start() -> Self {
        Self {
            started: Instant::now(),
            upstream: Duration::ZERO,
        }
    }

    /// Runs the upstream call, recording its time to response headers.
    async fn upstream<T>(
        &mut self,
        state: &AppState,
        route: &str,
        call: impl Future<Output = T>,
    ) -> T {
        let sent = Instant::now();
        let out = call.await;
        self.upstream = sent.elapsed();
        state
            .metrics
            .upstream_seconds
            .with_label_values(&[route])
            .observe(self.upstream.as_secs_f64());
        out
    }

    /// The time spent so far outside the upstream call, as the request's
    /// [`Overhead`](crate::metrics::Overhead): recorded when dropped, or
    /// handed on to the output guard, which adds its scans first.
    fn overhead(&self, state: &AppState, route: &str) -> crate::metrics::Overhead {
        let spent = self.started.elapsed().saturating_sub(self.upstream);
        state.metrics.overhead(route, spent)
    }
}

/// Forwards a request that carries no prompt (model management, listings,
/// blobs) as it is, streaming both bodies. Only blob uploads may exceed
/// `server.max_body_bytes`.
pub async fn passthrough(
    State(state): State<AppState>,
    matched: Option<MatchedPath>,
    params: Result<Path<Vec<(String, String)>>, PathRejection>,
    req: Request,
) -> Result<Response, ApiError> {
    let route = matched.as_ref().map_or("unmatched", MatchedPath::as_str);
    let params = params.map_err(|e| ProxyError::BadPath(e.body_text()))?;
    let path = paths::upstream_path(route, &params)?;
    let mut timer = Timer::start();
    let (parts, body) = req.into_parts();
    let limit = state.config.server.max_body_bytes;
    if !parts.uri.path().starts_with("/api/blobs/") && declared_len(&parts.headers) > Some(limit) {
        return Err(ProxyError::TooLarge { limit }.into());
    }
    let pq = match parts.uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    let send = state.upstream.send(parts.method, &pq, parts.headers, body);
    let upstream = timer.upstream(&state, route, send).await?;
    drop(timer.overhead(&state, route));
    Ok(relay(upstream))
}

/// The body length the client declared (`Content-Length`), if it did.
fn declared_len(headers: &axum::http::HeaderMap) -> Option<usize> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
}

async fn read_body(body: Body, limit: usize) -> Result<Bytes, ProxyError> {
    to_bytes(body, limit).await.map_err(|e| {
        let too_large = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if too_large {
            ProxyError::TooLarge { limit }
        } else {
            ProxyError::BodyRead
        }
    })
}

/// A route whose request and response carry text to scan.
pub async fn guarded(state: AppState, route: Route, req: Request) -> Result<Response, ApiError> {
    let dialect = route.dialect();
    handle_guarded(state, route, req)
        .await
        .map_err(|e| e.in_dialect(dialect))
}

async fn handle_guarded(
    state: AppState,
    route: Route,
    req: Request,
) -> Result<Response, ProxyError> {
    let mut timer = Timer::start();
    let (parts, body) = req.into_parts();
    let limit = state.config.server.max_body_bytes;
    // Refused at once, not after reading (and waiting for) the body.
    if declared_len(&parts.headers) > Some(limit) {
        return Err(ProxyError::TooLarge { limit });
    }
    let secs = state.config.server.body_read_timeout_secs;
    let bytes = tokio::time::timeout(Duration::from_secs_f64(secs), read_body(body, limit))
        .await
        .map_err(|_| ProxyError::BodyTimeout { secs })??;
    let guard_config = &state.config.guard;
    let server = &state.config.server;
    let (allowed, max_texts) = (guard_config.allowed(), server.max_texts);
    let mut request = if bytes.len() <= PARSE_INLINE_BYTES {
        parse_request(route, &bytes, allowed, max_texts)?
    } else {
        // Tens of megabytes (a vision request) take a worker's thread for
        // a tenth of a second or more: every other connection on that
        // worker would wait. Big bodies are parsed on the blocking pool.
        let body = bytes.clone();
        tokio::task::spawn_blocking(move || parse_request(route, &body, allowed, max_texts))
            .await
            .map_err(|e| ProxyError::Internal(e.to_string()))??
    };
    let scan_input = !route.is_embedding() || guard_config.scan_embeddings;
    if !scan_input {
        request.segments.clear();
    }
    let text_bytes: usize = request.segments.iter().map(|s| s.text.len()).sum();
    for (count, what, limit, key) in [
        (
            request.segments.len(),
            "texts to scan",
            server.max_texts,
            "server.max_texts",
        ),
        (
            text_bytes,
            "bytes of text to scan",
            server.max_text_bytes,
            "server.max_text_bytes",
        ),
    ] {
        if count > limit {
            return Err(ProxyError::TooMuchText {
                count,
                what,
                limit,
                key,
            });
        }
    }
    // The key's models and rate limit, now that the model and the size of
    // the prompt are known (a token is about 4 bytes).
    let caller = parts.extensions.get::<Caller>();
    if caller.is_some_and(|c| !c.may_run(&request.model)) {
        return Err(ProxyError::Forbidden(format!(
            "this key may not use model {:?}",
            request.model
        )));
    }
    let tokens = text_bytes.div_ceil(4) as u64;
    state.access.charge(caller, tokens).await?;
    let checked = state.guard.check(Direction::Input, &request.segments).await;
    let expose = state.config.guard.expose_cache_header;
    let with_cache_header = |reply, tier| match expose {
        true => with_cache_header(reply, tier),
        false => reply,
    };
    let (model, stream) = (std::mem::take(&mut request.model), request.stream);
    let include_usage = request
        .json
        .pointer("/stream_options/include_usage")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    let block = |scanners: Vec<String>| {
        tracing::info!(route = route.path(), scanners = ?scanners, "input blocked");
        let reply = blocks::blocked(
            guard_config,
            route,
            Direction::Input,
            &model,
            stream,
            scanners,
        );
        drop(timer.overhead(&state, route.path()));
        Ok(with_cache_header(reply, checked.tier))
    };
    let rewritten = match &checked.decision {
        Decision::Block(scanners) => return block(scanners.clone()),
        Decision::Rewrite(rewrites) => {
            apply_rewrites(&mut request.json, rewrites).map_err(ProxyError::BadShape)?;
            true
        }
        Decision::Allow => false,
    };
    if scan_input {
        // Joined texts are taken from what will be forwarded.
        let joined = route.joined(&request.json);
        if let Some(scanners) = state.guard.check_joined(Direction::Input, &joined).await {
            return block(scanners);
        }
    }
    // What is forwarded is what was scanned: the original bytes when nothing
    // was rewritten (the parse refused anything Ollama could read another
    // way), else the rewritten document.
    let forward = if rewritten {
        Bytes::from(
            serde_json::to_vec(&request.json).map_err(|e| ProxyError::Internal(e.to_string()))?,
        )
    } else {
        bytes
    };
    // The prompt the reply answers, as forwarded (redactions applied).
    let prompt = match state.guard.judges_replies_with_prompt() {
        true => route.prompt(&request.json).map(Arc::<str>::from),
        false => None,
    };
    let mut headers = parts.headers;
    // The body may have been rewritten, and the output scan needs identity
    // bodies: let the client library set the length, ask for no encoding.
    headers.remove(header::CONTENT_LENGTH);
    headers.remove(header::ACCEPT_ENCODING);
    // The upstream path is the route's own, never the request's.
    let send = state
        .upstream
        .send(parts.method, route.path(), headers, Body::from(forward));
    let upstream = timer.upstream(&state, route.path(), send).await?;
    let scan_output = upstream.status().is_success()
        && route.has_model_output()
        && !state.guard.output.pipeline.is_empty();
    let reply = if scan_output {
        let out = output::Reply {
            route,
            model,
            include_usage,
            overhead: Some(timer.overhead(&state, route.path())),
            prompt,
        };
        output::guard(&state, out, upstream).await?
    } else {
        drop(timer.overhead(&state, route.path()));
        relay(upstream)
    };
    Ok(with_cache_header(reply, checked.tier))
}

/// Bodies up to this size are parsed on the worker serving the connection;
/// bigger ones off it (see `handle_guarded`).
const PARSE_INLINE_BYTES: usize = 256 * 1024;

/// Reads a body the way Ollama reads it, after refusing a tree of more
/// containers than `10 x max_texts` before building it (a tree of a million
/// tiny objects costs fifty times its bytes).
fn parse_request(
    route: Route,
    bytes: &[u8],
    allowed: Allowed,
    max_texts: usize,
) -> Result<ParsedRequest, ProxyError> {
    let containers = gojson::shape(bytes).containers;
    if containers > max_texts.saturating_mul(10) {
        return Err(ProxyError::TooMuchText {
            count: containers,
            what: "JSON objects and arrays",
            limit: max_texts.saturating_mul(10),
            key: "10 x server.max_texts",
        });
    }
    route
        .parse(bytes, allowed)
        .map_err(|refused| match refused {
            Refused::Json(e) => ProxyError::BadJson(e),
            Refused::Shape(e) => ProxyError::BadShape(e),
        })
}

fn with_cache_header(mut response: Response, tier: Option<Tier>) -> Response {
    if let Some(tier) = tier {
        response
            .headers_mut()
            .insert(CACHE_HEADER, HeaderValue::from_static(tier.as_str()));
    }
    response
}
