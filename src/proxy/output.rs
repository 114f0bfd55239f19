//! The way out: a successful model response is scanned before any of it is
//! sent, frame by frame when streamed (`stream.rs`), whole otherwise. Output
//! that cannot be read (not JSON, compressed, too deep, too large) is a
//! scanner error: `fail_mode` decides, and closed blocks.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use super::{blocks, stream};
use crate::AppState;
use crate::config::FailMode;
use crate::dialect::Route;
use crate::dialect::codec::Framing;
use crate::dialect::output::{self, Withheld};
use crate::dialect::tree::Tree;
use crate::error::ProxyError;
use crate::guard::output::{Blocked, Options, ReplyGuard};
use crate::upstream::{BodyError, UpstreamResponse, response};

/// Largest non-streamed model response read for scanning (bytes read, not
/// the declared length).
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// What the output side needs to know about the request.
pub struct Reply {
    pub route: Route,
    pub model: String,
    /// `stream_options.include_usage` (OpenAI streams).
    pub include_usage: bool,
    /// Proxy time spent before the upstream call; the output guard adds
    /// its own and records it.
    pub overhead: Option<crate::metrics::Overhead>,
    /// The request's last user turn, when replies are judged with it.
    pub prompt: Option<Arc<str>>,
}

pub async fn guard(
    state: &AppState,
    mut reply: Reply,
    mut upstream: UpstreamResponse,
) -> Result<Response, ProxyError> {
    let headers = upstream.headers();
    let framing = Framing::from_content_type(
        headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or(""),
    );
    let encoded = headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"));
    let route = reply.route;
    let g = &state.config.guard;
    let reply_guard = ReplyGuard::new(
        state.guard.clone(),
        route,
        framing.unwrap_or(Framing::Ndjson),
        Options {
            overlap_bytes: g.stream.overlap_bytes,
            withheld: Withheld {
                allow_context: g.allow_context,
                allow_debug_info: g.allow_debug_info,
            },
            judge_every_bytes: g.stream.judge_every_bytes,
        },
        reply.overhead.take(),
        reply.prompt.clone(),
    );
    if encoded {
        // The request asked for no encoding; an upstream that encodes
        // anyway sends bytes no scanner can read.
        return unreadable(
            state,
            &reply,
            reply_guard,
            upstream,
            "a compressed response",
        )
        .await;
    }
    let status = upstream.status();
    let declared = upstream.content_length();
    let mut headers = upstream.take_headers();
    headers.remove(header::CONTENT_LENGTH);
    if let Some(framing) = framing {
        let ctx = stream::StreamContext {
            route,
            framing,
            guard: reply_guard,
            config: state.config.clone(),
            model: reply.model,
            include_usage: reply.include_usage,
            closing: state.closing.subscribe(),
        };
        let live = state.metrics.stream_started();
        let frames = stream::guard_stream(ctx, upstream.chunks()).map(move |frame| {
            let _live = &live;
            frame
        });
        return Ok(response(status, headers, Body::from_stream(frames)));
    }
    let body = read_upstream(upstream, declared).await?;
    whole(state, &reply, reply_guard, status, headers, body).await
}

async fn whole(
    state: &AppState,
    reply: &Reply,
    mut guard: ReplyGuard,
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ProxyError> {
    // An /api/chat reply in Ollama's own shape is read without a tree.
    let pushed = match output::token_frame(reply.route, &body) {
        Some(frame) => Ok(guard.push_token(body.clone(), frame)),
        None => Tree::parse(&body).and_then(|doc| guard.push(body.clone(), &doc)),
    };
    if let Err(e) = pushed {
        return unreadable_body(state, reply, guard, status, headers, body, &e);
    }
    match guard.settle(true).await {
        Ok(bytes) => Ok(response(status, headers, Body::from(bytes))),
        Err(Blocked(scanners)) => {
            tracing::info!(route = reply.route.path(), scanners = ?scanners, "output blocked");
            let g = &state.config.guard;
            Ok(blocks::output_blocked(
                g,
                reply.route,
                &reply.model,
                scanners,
            ))
        }
    }
}

/// A whole body that is not one JSON document: passed unscanned only with
/// `fail_mode: open`.
fn unreadable_body(
    state: &AppState,
    reply: &Reply,
    guard: ReplyGuard,
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    why: &str,
) -> Result<Response, ProxyError> {
    if guard.fail_mode() == FailMode::Open {
        tracing::warn!(route = reply.route.path(), error = %why, "unreadable model response passed unscanned (fail_mode: open)");
        return Ok(response(status, headers, Body::from(body)));
    }
    tracing::warn!(route = reply.route.path(), error = %why, "unreadable model response; blocking (fail_mode: closed)");
    guard.count_block("unreadable_output");
    let g = &state.config.guard;
    Ok(blocks::output_blocked(
        g,
        reply.route,
        &reply.model,
        vec!["unreadable_output".into()],
    ))
}

/// A response whose encoding no scanner can read.
async fn unreadable(
    state: &AppState,
    reply: &Reply,
    guard: ReplyGuard,
    mut upstream: UpstreamResponse,
    what: &str,
) -> Result<Response, ProxyError> {
    if guard.fail_mode() == FailMode::Open {
        tracing::warn!(
            route = reply.route.path(),
            "{what} passed unscanned (fail_mode: open)"
        );
        return Ok(crate::upstream::relay(upstream));
    }
    let status = upstream.status();
    let mut headers = upstream.take_headers();
    headers.remove(header::CONTENT_LENGTH);
    unreadable_body(state, reply, guard, status, headers, Bytes::new(), what)
}

/// The whole body, counting the bytes actually read against the limit
/// (`declared`: its `Content-Length`, refused at once when over).
async fn read_upstream(
    upstream: UpstreamResponse,
    declared: Option<u64>,
) -> Result<Bytes, ProxyError> {
    if declared.is_some_and(|n| n > MAX_RESPONSE_BYTES as u64) {
        return Err(ProxyError::BadUpstream);
    }
    let mut body = BytesMut::new();
    let chunks = upstream.chunks();
    futures_util::pin_mut!(chunks);
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| {
            tracing::warn!(error = %e, "reading upstream body failed");
            match e {
                BodyError::Stalled => ProxyError::Timeout,
                BodyError::Failed(_) => ProxyError::BadUpstream,
            }
        })?;
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            tracing::warn!(
                limit = MAX_RESPONSE_BYTES,
                "model response too large to scan"
            );
            return Err(ProxyError::BadUpstream);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}
