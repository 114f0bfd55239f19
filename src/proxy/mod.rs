//! Request handling: pass-through routes are relayed untouched; guarded
//! routes are read, scanned on the way in, forwarded, and scanned on the way
//! out (`output.rs`: whole, or frame by frame in `stream.rs`).

pub mod blocks;
mod output;
mod stream;

use std::time::{Duration, Instant};

use axum::body::{Body, to_bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Uri, header};
use axum::response::Response;
use bytes::Bytes;
use serde_json::Value;

use crate::AppState;
use crate::cache::Tier;
use crate::dialect::{Route, apply_rewrites};
use crate::error::{ApiError, ProxyError};
use crate::guard::Decision;
use crate::scan::Direction;
use crate::upstream::relay;

pub const CACHE_HEADER: &str = "x-guard-cache";

fn path_and_query(uri: &Uri) -> String {
    uri.path_and_query()
        .map_or_else(|| uri.path().to_string(), |pq| pq.as_str().to_string())
}

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

    /// Time spent so far outside the upstream call.
    fn overhead(&self) -> Duration {
        self.started.elapsed().saturating_sub(self.upstream)
    }

    fn record(&self, state: &AppState, route: &str) {
        state
            .metrics
            .overhead_seconds
            .with_label_values(&[route])
            .observe(self.overhead().as_secs_f64());
    }
}

/// Forwards a request that carries no prompt (model management, listings,
/// blobs) as it is, streaming both bodies. Only blob uploads may exceed
/// `server.max_body_bytes`.
pub async fn passthrough(
    State(state): State<AppState>,
    matched: Option<MatchedPath>,
    req: Request,
) -> Result<Response, ApiError> {
    let route = matched.as_ref().map_or("unmatched", MatchedPath::as_str);
    let mut timer = Timer::start();
    let (parts, body) = req.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    let limit = state.config.server.max_body_bytes;
    if !parts.uri.path().starts_with("/api/blobs/") && declared.is_some_and(|n| n > limit) {
        return Err(ProxyError::TooLarge { limit }.into());
    }
    let body = reqwest::Body::wrap_stream(body.into_data_stream());
    let pq = path_and_query(&parts.uri);
    let send = state.upstream.send(parts.method, &pq, parts.headers, body);
    let upstream = timer.upstream(&state, route, send).await?;
    timer.record(&state, route);
    Ok(relay(upstream))
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
    let bytes = read_body(body, state.config.server.max_body_bytes).await?;
    let mut json: Value =
        serde_json::from_slice(&bytes).map_err(|e| ProxyError::BadJson(e.to_string()))?;
    let scan_input = !route.is_embedding() || state.config.guard.scan_embeddings;
    let segments = if scan_input {
        route.input_segments(&json).map_err(ProxyError::BadShape)?
    } else {
        Vec::new()
    };
    let checked = state.guard.check(Direction::Input, &segments).await;
    let model = blocks::model_of(&json).to_string();
    let wants_stream = route.wants_stream(&json);
    let forward = match checked.decision {
        Decision::Block(scanners) => {
            tracing::info!(route = route.path(), scanners = ?scanners, "input blocked");
            let reply = blocks::blocked(
                &state.config.guard,
                route,
                Direction::Input,
                &model,
                wants_stream,
                scanners,
            );
            timer.record(&state, route.path());
            return Ok(with_cache_header(reply, checked.tier));
        }
        Decision::Rewrite(rewrites) => {
            apply_rewrites(&mut json, &rewrites);
            Bytes::from(serde_json::to_vec(&json).map_err(|e| ProxyError::Internal(e.to_string()))?)
        }
        Decision::Allow => bytes,
    };
    let mut headers = parts.headers;
    // The body may have been rewritten, and the output scan needs identity
    // bodies: let the client library set the length, ask for no encoding.
    headers.remove(header::CONTENT_LENGTH);
    headers.remove(header::ACCEPT_ENCODING);
    let pq = path_and_query(&parts.uri);
    let send = state
        .upstream
        .send(parts.method, &pq, headers, forward.into());
    let upstream = timer.upstream(&state, route.path(), send).await?;
    let scan_output = upstream.status().is_success()
        && !route.is_embedding()
        && !state.guard.output.pipeline.is_empty();
    let reply = if scan_output {
        let out = output::Reply {
            route,
            model,
            wants_stream,
            overhead_so_far: timer.overhead(),
        };
        output::guard(&state, out, upstream).await?
    } else {
        timer.record(&state, route.path());
        relay(upstream)
    };
    Ok(with_cache_header(reply, checked.tier))
}

fn with_cache_header(mut response: Response, tier: Option<Tier>) -> Response {
    if let Some(tier) = tier {
        response
            .headers_mut()
            .insert(CACHE_HEADER, HeaderValue::from_static(tier.as_str()));
    }
    response
}
