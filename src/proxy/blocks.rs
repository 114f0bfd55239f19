//! What a block looks like on the wire, per route and per
//! `guard.block_response`: a native error, or (inline) a normal-looking
//! assistant reply, whole or streamed.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::config::{BlockResponse, GuardConfig};
use crate::dialect::codec::Framing;
use crate::dialect::{Dialect, Route, anthropic, ollama, openai, responses};
use crate::error::{BLOCKED_HEADER, ProxyError};
use crate::scan::Direction;

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
            let mut body = inline_frames(route, model, &config.inline_message);
            body.extend(done_frame(route));
            (
                [(header::CONTENT_TYPE, framing_of(route).content_type())],
                Body::from(body.concat()),
            )
                .into_response()
        }
        BlockResponse::Inline => {
            let message = &config.inline_message;
            let reply = match (route.dialect(), route) {
                (_, Route::Responses) => responses::inline_reply(model, message),
                (Dialect::Ollama, _) => ollama::inline_reply(route, model, message),
                (Dialect::OpenAi, _) => openai::inline_reply(route, model, message),
                (Dialect::Anthropic, _) => anthropic::inline_reply(model, message),
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
        Dialect::OpenAi | Dialect::Anthropic => Framing::Sse,
    }
}

/// `data: [DONE]`, which only the chat and completions streams send.
fn done_frame(route: Route) -> Option<Bytes> {
    matches!(route, Route::OpenAiChat | Route::OpenAiCompletions)
        .then(|| Bytes::from_static(b"data: [DONE]\n\n"))
}

/// The frames carrying an inline reply in a stream (without `[DONE]`).
fn inline_frames(route: Route, model: &str, message: &str) -> Vec<Bytes> {
    match (route.dialect(), route) {
        (_, Route::Responses) => responses::inline_frames(model, message),
        (Dialect::Ollama, _) => {
            vec![Framing::Ndjson.encode(&ollama::inline_reply(route, model, message))]
        }
        (Dialect::OpenAi, _) => vec![Framing::Sse.encode(&openai::chunk(
            route,
            "chatcmpl-guard",
            model,
            Some(message),
            Some("content_filter"),
        ))],
        (Dialect::Anthropic, _) => anthropic::inline_frames(model, message),
    }
}

/// The frames that end a stream whose output was blocked mid-way: Ollama's
/// `{"error": ...}` line; OpenAI's `finish_reason: "content_filter"` chunk
/// and `[DONE]`; a Responses `response.incomplete` event (reason
/// `content_filter`); Anthropic's `stop_reason: "refusal"` and
/// `message_stop` (inline mode: the inline reply instead).
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
    let mut frames: Vec<Bytes> =
        match (config.block_response, route.dialect(), route) {
            (BlockResponse::Inline, _, _) => inline_frames(route, model, &config.inline_message),
            (BlockResponse::Error, _, Route::Responses) => responses::block_frames(model),
            (BlockResponse::Error, Dialect::Ollama, _) => {
                vec![Framing::Ndjson.encode(&ollama::error_body(&message))]
            }
            (BlockResponse::Error, Dialect::OpenAi, _) => vec![Framing::Sse.encode(
                &openai::chunk(route, id, model, None, Some("content_filter")),
            )],
            (BlockResponse::Error, Dialect::Anthropic, _) => anthropic::block_frames(),
        };
    frames.extend(done_frame(route));
    Bytes::from(frames.concat())
}
