//! Ollama's OpenAI Responses API (`/v1/responses`): its request schema (from
//! Ollama's `openai/responses.go`), its text fields, and its block shapes.
//! Errors use the OpenAI shape; filtered output ends the response as
//! `incomplete` with `incomplete_details.reason: "content_filter"`.

use bytes::Bytes;
use serde_json::{Value, json};

use super::codec::Framing;
use super::request::{fields, message_texts, texts_of};
use super::schema::Node;

/// An input item or content part. Decoded by exact key.
static ITEM: Node = Node::Object(&[
    (
        "type",
        Node::Name(&[
            "message",
            "input_text",
            "input_image",
            "output_text",
            "function_call",
            "function_call_output",
            "reasoning",
        ]),
    ),
    ("role", super::ollama::ROLE),
    ("content", Node::Content(&ITEM)),
    ("text", Node::Text),
    // Skipped: an image (a data: URL or a link); the model sees pixels.
    ("image_url", Node::Skip),
]);

/// `openai.ResponsesRequest`.
pub static REQUEST: Node = Node::Struct(&[
    ("model", Node::Skip), // the model to load
    ("background", Node::Text),
    ("conversation", Node::Text),
    ("include", Node::Text),
    ("input", Node::Content(&ITEM)),
    ("instructions", Node::Str),
    ("max_output_tokens", Node::Text),
    ("reasoning", Node::Text),
    ("temperature", Node::Text),
    ("text", Node::Text),
    ("top_p", Node::Text),
    ("truncation", Node::Text),
    ("tools", Node::Text),
    ("stream", Node::Text),
]);

/// Instructions, then each input item's text.
pub fn rendered(json: &Value) -> Vec<String> {
    let mut out = fields(json, &["instructions"]);
    match json.get("input") {
        Some(Value::Array(_)) => out.extend(message_texts(json, "input")),
        Some(other) => texts_of(other, &mut out),
        None => {}
    }
    out
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A response cut short by the guard, carrying `output` items.
fn filtered(model: &str, output: Value) -> Value {
    json!({
        "id": "resp_guard", "object": "response", "created_at": now_secs(),
        "status": "incomplete", "incomplete_details": { "reason": "content_filter" },
        "model": model, "output": output,
    })
}

fn message_item(message: &str) -> Value {
    json!({ "type": "message", "id": "msg_guard", "status": "completed", "role": "assistant",
            "content": [{ "type": "output_text", "text": message, "annotations": [] }] })
}

/// A whole response carrying `message`, for inline blocks.
pub fn inline_reply(model: &str, message: &str) -> Value {
    filtered(model, json!([message_item(message)]))
}

fn event(kind: &str, mut data: Value) -> Bytes {
    data["type"] = json!(kind);
    Framing::Sse.encode_event(Some(kind), &data)
}

/// The events of an inline reply in a stream.
pub fn inline_frames(model: &str, message: &str) -> Vec<Bytes> {
    vec![
        event(
            "response.output_text.delta",
            json!({ "item_id": "msg_guard", "output_index": 0, "content_index": 0, "delta": message }),
        ),
        event(
            "response.incomplete",
            json!({ "response": inline_reply(model, message) }),
        ),
    ]
}

/// A whole response whose output was filtered (no output items).
pub fn filtered_reply(model: &str) -> Value {
    filtered(model, json!([]))
}

/// The event that ends a started stream with an inline reply: the final
/// response carries it (a delta for an item the client never saw would
/// confuse its accumulator).
pub fn inline_end(model: &str, message: &str) -> Bytes {
    event(
        "response.incomplete",
        json!({ "response": inline_reply(model, message) }),
    )
}

/// An `error` event, as the Responses API sends when a stream fails.
pub fn error_event(message: &str) -> Bytes {
    event(
        "error",
        json!({ "code": "server_error", "message": message, "param": null }),
    )
}

/// The event that ends a stream whose output was blocked.
pub fn block_frames(model: &str) -> Vec<Bytes> {
    vec![event(
        "response.incomplete",
        json!({ "response": filtered(model, json!([])) }),
    )]
}
