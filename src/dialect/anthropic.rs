//! Ollama's Anthropic-compatible Messages API (`/v1/messages`): its request
//! schema (from Ollama's `anthropic/anthropic.go`), its text fields, and its
//! error and block shapes. Filtered output ends with `stop_reason:
//! "refusal"`, as Anthropic's own streaming classifiers do.

use bytes::Bytes;
use serde_json::{Value, json};

use super::codec::Framing;
use super::request::{fields, message_texts};
use super::schema::Node;

/// `anthropic.ContentBlock`; plain strings stand for one text block.
static BLOCK: Node = Node::Struct(&[
    (
        "type",
        Node::Name(&[
            "text",
            "image",
            "document",
            "tool_use",
            "tool_result",
            "thinking",
            "redacted_thinking",
            "server_tool_use",
            "web_search_tool_result",
        ]),
    ),
    ("text", Node::Str),
    ("citations", Node::Text),
    // Skipped: image bytes (base64) or an image URL; the model sees pixels.
    ("source", Node::Skip),
    ("id", Node::Text),
    ("name", Node::Text),
    ("input", Node::Text),
    ("tool_use_id", Node::Text),
    ("content", Node::Content(&BLOCK)),
    ("is_error", Node::Text),
    ("thinking", Node::Str),
    ("signature", Node::Text),
]);

/// `anthropic.MessageParam`.
static MESSAGE: Node = Node::Struct(&[
    ("role", super::ollama::ROLE),
    ("content", Node::Content(&BLOCK)),
]);

/// `anthropic.MessagesRequest`.
pub static REQUEST: Node = Node::Struct(&[
    ("model", Node::Skip), // the model to load
    ("max_tokens", Node::Text),
    ("messages", Node::List(&MESSAGE)),
    ("system", Node::Content(&BLOCK)),
    ("stream", Node::Text),
    ("temperature", Node::Text),
    ("top_p", Node::Text),
    ("top_k", Node::Text),
    ("stop_sequences", Node::Text),
    ("tools", Node::Text),
    ("tool_choice", Node::Text),
    ("thinking", Node::Text),
    ("metadata", Node::Text),
    ("output_config", Node::Text),
]);

/// The system prompt, then each message's text.
pub fn rendered(json: &Value) -> Vec<String> {
    let mut out = fields(json, &["system"]);
    out.extend(message_texts(json, "messages"));
    out
}

/// `{"type": "error", "error": {"type", "message"}}`, as the Anthropic SDKs
/// read it; the error type follows the status as Anthropic's API does.
pub fn error_body(status: u16, message: &str) -> Value {
    let kind = match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    };
    json!({ "type": "error", "error": { "type": kind, "message": message } })
}

/// A whole reply carrying `message`, for inline blocks.
pub fn inline_reply(model: &str, message: &str) -> Value {
    json!({
        "id": "msg_guard", "type": "message", "role": "assistant", "model": model,
        "content": [{ "type": "text", "text": message }],
        "stop_reason": "refusal", "stop_sequence": null,
        "usage": { "input_tokens": 0, "output_tokens": 0 },
    })
}

fn event(kind: &str, data: Value) -> Bytes {
    Framing::Sse.encode_event(Some(kind), &data)
}

/// The closing events: `stop_reason: "refusal"`, then `message_stop`.
fn refusal_end() -> Vec<Bytes> {
    vec![
        event(
            "message_delta",
            json!({ "type": "message_delta", "delta": { "stop_reason": "refusal", "stop_sequence": null },
                    "usage": { "output_tokens": 0 } }),
        ),
        event("message_stop", json!({ "type": "message_stop" })),
    ]
}

/// The events of an inline reply in a stream.
pub fn inline_frames(model: &str, message: &str) -> Vec<Bytes> {
    let mut start = inline_reply(model, "");
    start["content"] = json!([]);
    start["stop_reason"] = Value::Null;
    let mut out = vec![
        event(
            "message_start",
            json!({ "type": "message_start", "message": start }),
        ),
        event(
            "content_block_start",
            json!({ "type": "content_block_start", "index": 0, "content_block": { "type": "text", "text": "" } }),
        ),
        event(
            "content_block_delta",
            json!({ "type": "content_block_delta", "index": 0, "delta": { "type": "text_delta", "text": message } }),
        ),
        event(
            "content_block_stop",
            json!({ "type": "content_block_stop", "index": 0 }),
        ),
    ];
    out.extend(refusal_end());
    out
}

/// A whole reply whose output was refused: no content, `stop_reason:
/// "refusal"`.
pub fn refusal_reply(model: &str) -> Value {
    let mut reply = inline_reply(model, "");
    reply["content"] = json!([]);
    reply
}

/// The events that end a started stream with an inline reply: a text block
/// of its own (at `index`, after the blocks already opened), then the
/// refusal.
pub fn inline_block_frames(index: u64, message: &str) -> Vec<Bytes> {
    let mut out = vec![
        event(
            "content_block_start",
            json!({ "type": "content_block_start", "index": index, "content_block": { "type": "text", "text": "" } }),
        ),
        event(
            "content_block_delta",
            json!({ "type": "content_block_delta", "index": index, "delta": { "type": "text_delta", "text": message } }),
        ),
        event(
            "content_block_stop",
            json!({ "type": "content_block_stop", "index": index }),
        ),
    ];
    out.extend(refusal_end());
    out
}

/// The events that end a stream whose output was blocked.
pub fn block_frames() -> Vec<Bytes> {
    refusal_end()
}
