//! The way out: a successful model response is scanned frame by frame when
//! streamed (see `stream.rs`), or whole, through the verdict cache, before
//! any of it is sent.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::Value;

use super::{blocks, stream};
use crate::AppState;
use crate::dialect::codec::Framing;
use crate::dialect::{Route, apply_rewrites};
use crate::error::ProxyError;
use crate::guard::Decision;
use crate::guard::output::OutputGuard;
use crate::scan::Direction;
use crate::upstream::strip_hop_headers;

/// Largest non-streamed model response read for scanning.
const MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;

/// What the output side needs to know about the request.
pub struct Reply {
    pub route: Route,
    pub model: String,
    pub wants_stream: bool,
    /// Proxy time spent before the upstream call, for the overhead metric.
    pub overhead_so_far: Duration,
}

pub async fn guard(
    state: &AppState,
    reply: Reply,
    upstream: reqwest::Response,
) -> Result<Response, ProxyError> {
    let content_type = upstream
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let status = upstream.status();
    let mut headers = upstream.headers().clone();
    strip_hop_headers(&mut headers);
    headers.remove(header::CONTENT_LENGTH);
    let route = reply.route;
    if let Some(framing) = Framing::from_content_type(content_type) {
        let g = &state.config.guard;
        let guard = OutputGuard::new(
            state.guard.output.pipeline.clone(),
            g.stream.clone(),
            g.fail_mode,
        )
        .with_metrics(state.metrics.clone(), route.path(), reply.overhead_so_far);
        let ctx = stream::StreamContext {
            route,
            framing,
            guard,
            config: state.config.clone(),
            model: reply.model,
        };
        let mut response = Response::new(Body::from_stream(stream::guard_stream(
            ctx,
            upstream.bytes_stream(),
        )));
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        return Ok(response);
    }
    let body = read_upstream(upstream).await?;
    let started = Instant::now();
    let outcome = scan_whole(state, &reply, body).await;
    let overhead = reply.overhead_so_far + started.elapsed();
    state
        .metrics
        .overhead_seconds
        .with_label_values(&[route.path()])
        .observe(overhead.as_secs_f64());
    match outcome? {
        Whole::Send(body) => Ok((status, headers, body).into_response()),
        Whole::Blocked(response) => Ok(response),
    }
}

enum Whole {
    Send(Bytes),
    Blocked(Response),
}

async fn scan_whole(state: &AppState, reply: &Reply, body: Bytes) -> Result<Whole, ProxyError> {
    let route = reply.route;
    let Ok(mut json) = serde_json::from_slice::<Value>(&body) else {
        tracing::warn!(
            route = route.path(),
            "non-JSON success body from Ollama passed without output scan"
        );
        return Ok(Whole::Send(body));
    };
    let checked = state
        .guard
        .check(Direction::Output, &route.output_segments(&json))
        .await;
    match checked.decision {
        Decision::Block(scanners) => {
            tracing::info!(route = route.path(), scanners = ?scanners, "output blocked");
            let g = &state.config.guard;
            Ok(Whole::Blocked(blocks::blocked(
                g,
                route,
                Direction::Output,
                &reply.model,
                reply.wants_stream,
                scanners,
            )))
        }
        Decision::Rewrite(rewrites) => {
            apply_rewrites(&mut json, &rewrites).map_err(ProxyError::Internal)?;
            let bytes =
                serde_json::to_vec(&json).map_err(|e| ProxyError::Internal(e.to_string()))?;
            Ok(Whole::Send(Bytes::from(bytes)))
        }
        Decision::Allow => Ok(Whole::Send(body)),
    }
}

async fn read_upstream(upstream: reqwest::Response) -> Result<Bytes, ProxyError> {
    if upstream
        .content_length()
        .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
    {
        return Err(ProxyError::BadUpstream);
    }
    upstream.bytes().await.map_err(|e| {
        tracing::warn!(error = %e, "reading upstream body failed");
        if e.is_timeout() {
            ProxyError::Timeout
        } else {
            ProxyError::BadUpstream
        }
    })
}
