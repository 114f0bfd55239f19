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

/// What a stream's ending needs to know about the stream so far.
pub struct Ending<'a> {
    pub config: &'a GuardConfig,
    pub route: Route,
    pub model: &'a str,
    /// The id of the upstream's chunks (OpenAI), so the last one matches.
    pub id: &'a str,
    /// Frames were sent already (the reply has started).
    pub started: bool,
    /// `stream_options.include_usage` was asked for (OpenAI).
    pub include_usage: bool,
    /// JSON frames seen from upstream (about one token each in Ollama).
    pub chunks: usize,
    /// Anthropic content blocks opened so far (the next block's index).
    pub blocks: u64,
}

impl Ending<'_> {
    /// The frames that end a stream whose output was blocked: Ollama's
    /// `{"error": ...}` line; OpenAI's `finish_reason: "content_filter"`
    /// chunk, the usage chunk if asked for, and `[DONE]`; a Responses
    /// `response.incomplete` event (reason `content_filter`); Anthropic's
    /// `stop_reason: "refusal"` and `message_stop`. Inline mode ends the
    /// reply with the inline message as a frame of its own and a finish
    /// reason that says it was filtered.
    pub fn blocked(&self, scanners: &[String]) -> Bytes {
        let message = format!(
            "blocked by ollama-guard: output flagged by {}",
            scanners.join(", ")
        );
        let inline = &self.config.inline_message;
        let (route, model) = (self.route, self.model);
        let mut frames: Vec<Bytes> = match (self.config.block_response, route.dialect(), route) {
            (BlockResponse::Inline, _, _) if !self.started => inline_frames(route, model, inline),
            (BlockResponse::Inline, _, Route::Responses) => {
                vec![responses::inline_end(model, inline)]
            }
            (BlockResponse::Inline, Dialect::Ollama, _) => {
                let text = format!("\n\n{inline}");
                vec![Framing::Ndjson.encode(&ollama::inline_reply(route, model, &text))]
            }
            (BlockResponse::Inline, Dialect::OpenAi, _) => {
                let text = format!("\n\n{inline}");
                vec![Framing::Sse.encode(&openai::chunk(
                    route,
                    self.id,
                    model,
                    Some(&text),
                    Some("content_filter"),
                ))]
            }
            (BlockResponse::Inline, Dialect::Anthropic, _) => {
                anthropic::inline_block_frames(self.blocks, &format!("\n\n{inline}"))
            }
            (BlockResponse::Error, _, Route::Responses) => responses::block_frames(model),
            (BlockResponse::Error, Dialect::Ollama, _) => {
                vec![Framing::Ndjson.encode(&ollama::error_body(&message))]
            }
            (BlockResponse::Error, Dialect::OpenAi, _) => vec![Framing::Sse.encode(
                &openai::chunk(route, self.id, model, None, Some("content_filter")),
            )],
            (BlockResponse::Error, Dialect::Anthropic, _) => anthropic::block_frames(),
        };
        frames.extend(self.usage());
        frames.extend(done_frame(route));
        Bytes::from(frames.concat())
    }

    /// The frames that end a stream cut short by anything but a block (the
    /// upstream failed, stalled or closed early; the proxy is shutting
    /// down): Ollama's `{"error": ...}` line; an SSE `error` event (OpenAI's
    /// `{"error": {...}}` data, then `[DONE]`).
    pub fn failed(&self, message: &str) -> Bytes {
        let message = format!("ollama-guard: {message}");
        let frames = match (self.route.dialect(), self.route) {
            (Dialect::Ollama, _) => vec![Framing::Ndjson.encode(&ollama::error_body(&message))],
            (_, Route::Responses) => vec![responses::error_event(&message)],
            (Dialect::OpenAi, _) => vec![
                Framing::Sse.encode(&openai::error_body(&message, "server_error", None)),
                Bytes::from_static(b"data: [DONE]\n\n"),
            ],
            (Dialect::Anthropic, _) => vec![
                Framing::Sse.encode_event(Some("error"), &anthropic::error_body(500, &message)),
            ],
        };
        Bytes::from(frames.concat())
    }

    /// OpenAI's usage chunk, when the client asked for one: the stream was
    /// cut before Ollama reported its counts, so `completion_tokens` counts
    /// the chunks seen and the prompt's count is unknown (0).
    fn usage(&self) -> Option<Bytes> {
        let openai = matches!(self.route, Route::OpenAiChat | Route::OpenAiCompletions);
        (openai && self.include_usage).then(|| {
            Framing::Sse.encode(&openai::usage_chunk(
                self.route,
                self.id,
                self.model,
                self.chunks,
            ))
        })
    }
}

/// The reply to a whole (non-streamed) response whose output was blocked.
/// The APIs that have a way to say "filtered" answer 200 with it, as OpenAI
/// does: `finish_reason: "content_filter"` (chat, completions), status
/// `incomplete` with reason `content_filter` (Responses), `stop_reason:
/// "refusal"` (Anthropic). Ollama's API has none: `{"error": ...}` with 502,
/// because the request was fine (a 4xx would blame it) and it is the
/// upstream's answer the proxy refuses to relay. Inline mode: the inline
/// reply.
pub fn output_blocked(
    config: &GuardConfig,
    route: Route,
    model: &str,
    scanners: Vec<String>,
) -> Response {
    let names = scanners.join(",");
    let mut response = match (config.block_response, route.dialect(), route) {
        (BlockResponse::Inline, _, _) => {
            return blocked(config, route, Direction::Output, model, false, scanners);
        }
        (BlockResponse::Error, Dialect::Ollama, _) => ProxyError::Blocked {
            direction: Direction::Output.as_str(),
            scanners,
            status: StatusCode::BAD_GATEWAY,
        }
        .in_dialect(Dialect::Ollama)
        .into_response(),
        (BlockResponse::Error, _, Route::Responses) => {
            axum::Json(responses::filtered_reply(model)).into_response()
        }
        (BlockResponse::Error, Dialect::OpenAi, _) => {
            axum::Json(openai::filtered_reply(route, model)).into_response()
        }
        (BlockResponse::Error, Dialect::Anthropic, _) => {
            axum::Json(anthropic::refusal_reply(model)).into_response()
        }
    };
    if let Ok(v) = HeaderValue::from_str(&names) {
        response.headers_mut().insert(BLOCKED_HEADER, v);
    }
    response
}
