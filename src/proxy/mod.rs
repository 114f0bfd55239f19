//! Request handling: pass-through routes are relayed untouched; guarded
//! routes are read, scanned on the way in, forwarded, and scanned on the way
//! out (whole, or frame by frame for streams).

pub mod blocks;
mod stream;

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::Value;

use crate::AppState;
use crate::cache::Tier;
use crate::dialect::codec::Framing;
use crate::dialect::{Route, apply_rewrites};
use crate::error::{ApiError, ProxyError};
use crate::guard::Decision;
use crate::guard::output::OutputGuard;
use crate::scan::Direction;
use crate::upstream::{relay, strip_hop_headers};

pub const CACHE_HEADER: &str = "x-guard-cache";

/// Largest non-streamed model response read for scanning.
const MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;

fn path_and_query(req_uri: &axum::http::Uri) -> String {
    req_uri
        .path_and_query()
        .map_or_else(|| req_uri.path().to_string(), |pq| pq.as_str().to_string())
}

/// Forwards a request that carries no prompt (model management, listings,
/// blobs) as it is, streaming both bodies.
pub async fn passthrough(
    State(state): State<AppState>,
    req: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let is_blob = parts.uri.path().starts_with("/api/blobs/");
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    let limit = state.config.server.max_body_bytes;
    if !is_blob && declared.is_some_and(|n| n > limit) {
        return Err(ProxyError::TooLarge { limit }.into());
    }
    let mut headers = parts.headers.clone();
    if let Some(len) = declared {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    let body = reqwest::Body::wrap_stream(body.into_data_stream());
    let upstream = send_keep_length(
        &state,
        parts.method,
        &path_and_query(&parts.uri),
        headers,
        declared,
        body,
    )
    .await?;
    Ok(relay(upstream))
}

/// Sends with the client's `content-length` kept (blob uploads need it).
async fn send_keep_length(
    state: &AppState,
    method: axum::http::Method,
    pq: &str,
    mut headers: HeaderMap,
    declared: Option<usize>,
    body: reqwest::Body,
) -> Result<reqwest::Response, ProxyError> {
    let length = declared.map(HeaderValue::from);
    strip_hop_headers(&mut headers);
    if let Some(len) = length {
        headers.insert(header::CONTENT_LENGTH, len);
    }
    state.upstream.send(method, pq, headers, body).await
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
            tracing::info!(route = ?route, scanners = ?scanners, "input blocked");
            let reply = blocks::blocked(
                &state.config.guard,
                route,
                Direction::Input,
                &model,
                wants_stream,
                scanners,
            );
            return Ok(with_cache_header(reply, checked.tier));
        }
        Decision::Rewrite(rewrites) => {
            apply_rewrites(&mut json, &rewrites);
            Bytes::from(serde_json::to_vec(&json).map_err(|e| ProxyError::Internal(e.to_string()))?)
        }
        Decision::Allow => bytes,
    };
    let mut headers = parts.headers;
    // Identity bodies only: the output scan must read what Ollama sends.
    headers.remove(header::ACCEPT_ENCODING);
    let upstream = state
        .upstream
        .send(
            parts.method,
            &path_and_query(&parts.uri),
            headers,
            forward.into(),
        )
        .await?;
    let reply = if !upstream.status().is_success()
        || route.is_embedding()
        || state.guard.output.pipeline.is_empty()
    {
        relay(upstream)
    } else {
        guard_output(&state, route, model, wants_stream, upstream).await?
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

/// Scans a successful model response: frame by frame when streamed, whole
/// (through the verdict cache) otherwise.
async fn guard_output(
    state: &AppState,
    route: Route,
    model: String,
    wants_stream: bool,
    upstream: reqwest::Response,
) -> Result<Response, ProxyError> {
    let content_type = upstream
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if let Some(framing) = Framing::from_content_type(content_type) {
        let status = upstream.status();
        let mut headers = upstream.headers().clone();
        strip_hop_headers(&mut headers);
        let ctx = stream::StreamContext {
            route,
            framing,
            guard: OutputGuard::new(
                state.guard.output.pipeline.clone(),
                state.config.guard.stream.clone(),
                state.config.guard.fail_mode,
            ),
            config: Arc::new(state.config.guard.clone()),
            model,
        };
        let mut response = Response::new(Body::from_stream(stream::guard_stream(
            ctx,
            upstream.bytes_stream(),
        )));
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        return Ok(response);
    }
    let status = upstream.status();
    let mut headers = upstream.headers().clone();
    strip_hop_headers(&mut headers);
    let body = read_upstream(upstream).await?;
    let Ok(mut json) = serde_json::from_slice::<Value>(&body) else {
        tracing::warn!(route = ?route, "non-JSON success body from Ollama passed without output scan");
        return Ok((status, headers, body).into_response());
    };
    let checked = state
        .guard
        .check(Direction::Output, &route.output_segments(&json))
        .await;
    let body = match checked.decision {
        Decision::Block(scanners) => {
            tracing::info!(route = ?route, scanners = ?scanners, "output blocked");
            return Ok(blocks::blocked(
                &state.config.guard,
                route,
                Direction::Output,
                &model,
                wants_stream,
                scanners,
            ));
        }
        Decision::Rewrite(rewrites) => {
            apply_rewrites(&mut json, &rewrites);
            Bytes::from(serde_json::to_vec(&json).map_err(|e| ProxyError::Internal(e.to_string()))?)
        }
        Decision::Allow => body,
    };
    Ok((status, headers, body).into_response())
}

async fn read_upstream(upstream: reqwest::Response) -> Result<Bytes, ProxyError> {
    if upstream
        .content_length()
        .is_some_and(|n| n as usize > MAX_RESPONSE_BYTES)
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
