//! What a block looks like on the wire, per route and per
//! `guard.block_response`: a native error, or (inline) a normal-looking
//! assistant reply, whole or streamed.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::Value;

use crate::config::{BlockResponse, GuardConfig};
use crate::dialect::codec::Framing;
use crate::dialect::{Dialect, Route, ollama, openai};
use crate::error::{BLOCKED_HEADER, ProxyError};
use crate::scan::Direction;

/// The model a request named, echoed in inline replies.
pub fn model_of(body: &Value) -> &str {
    body.get("model").and_then(Value::as_str).unwrap_or("")
}

/// The reply to a blocked request or a blocked whole (non-streamed) response.
pub fn blocked(
    config: &GuardConfig,
    route: Route,
    direction: Direction,
    model: &str,
    stream: bool,
    scanners: Vec<String>,
) -> Response {
    let names = scanners.join(",");
    let mut response = match config.block_response {
        BlockResponse::Error => ProxyError::Blocked {
            direction: direction.as_str(),
            scanners,
            status: StatusCode::from_u16(config.block_status).unwrap_or(StatusCode::BAD_REQUEST),
        }
        .in_dialect(route.dialect())
        .into_response(),
        BlockResponse::Inline if stream => {
            let framing = framing_of(route);
            let mut body = inline_frames(route, model, &config.inline_message).to_vec();
            body.extend(framing.done_frame());
            let bytes: Vec<u8> = body.concat();
            (
                [(header::CONTENT_TYPE, framing.content_type())],
                Body::from(bytes),
            )
                .into_response()
        }
        BlockResponse::Inline => {
            let reply = match route.dialect() {
                Dialect::Ollama => ollama::inline_reply(route, model, &config.inline_message),
                Dialect::OpenAi => openai::inline_reply(route, model, &config.inline_message),
            };
            axum::Json(reply).into_response()
        }
    };
    if let Ok(v) = HeaderValue::from_str(&names) {
        response.headers_mut().insert(BLOCKED_HEADER, v);
    }
    response
}

fn framing_of(route: Route) -> Framing {
    match route.dialect() {
        Dialect::Ollama => Framing::Ndjson,
        Dialect::OpenAi => Framing::Sse,
    }
}

/// The frame(s) carrying an inline reply in a stream (without `[DONE]`).
fn inline_frames(route: Route, model: &str, message: &str) -> [Bytes; 1] {
    match route.dialect() {
        Dialect::Ollama => [Framing::Ndjson.encode(&ollama::inline_reply(route, model, message))],
        Dialect::OpenAi => [Framing::Sse.encode(&openai::chunk(
            route,
            "chatcmpl-guard",
            model,
            Some(message),
            Some("content_filter"),
        ))],
    }
}

/// The frames that end a stream whose output was blocked mid-way: Ollama's
/// `{"error": ...}` line, or OpenAI's `finish_reason: "content_filter"` chunk
/// and `[DONE]` (inline mode: the inline reply instead).
pub fn stream_block_frames(
    config: &GuardConfig,
    route: Route,
    model: &str,
    id: &str,
    scanners: &[String],
) -> Bytes {
    let message = format!(
        "blocked by ollama-guard: output flagged by {}",
        scanners.join(", ")
    );
    let framing = framing_of(route);
    let mut frames: Vec<Bytes> = match (config.block_response, route.dialect()) {
        (BlockResponse::Inline, _) => inline_frames(route, model, &config.inline_message).to_vec(),
        (BlockResponse::Error, Dialect::Ollama) => {
            vec![framing.encode(&ollama::error_body(&message))]
        }
        (BlockResponse::Error, Dialect::OpenAi) => {
            vec![framing.encode(&openai::chunk(
                route,
                id,
                model,
                None,
                Some("content_filter"),
            ))]
        }
    };
    frames.extend(framing.done_frame());
    Bytes::from(frames.concat())
}
