//! Ollama's OpenAI Responses API (`/v1/responses`): its request schema (from
//! Ollama's `openai/responses.go`), its text fields, and its block shapes.
//! Errors use the OpenAI shape; filtered output ends the response as
//! `incomplete` with `incomplete_details.reason: "content_filter"`.

use bytes::Bytes;
use serde_json::{Value, json};

use super::codec::Framing;
use super::request::{fields, message_texts, texts_of};
use super::schema::Node;
use super::{Segment, collect_text};

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

/// The text of a whole response: every output item.
pub fn output_segments(body: &Value) -> Vec<Segment> {
    let mut out = Vec::new();
    if let Some(output) = body.get("output") {
        collect_text(output, "/output", &mut out);
    }
    out
}

/// The text of one stream event: deltas, the `.done` events that repeat
/// them, items and parts, and the response object of the last event.
pub fn frame_segments(frame: &Value) -> Vec<Segment> {
    let mut out = Vec::new();
    for key in ["delta", "text", "arguments", "item", "part"] {
        if let Some(v) = frame.get(key) {
            collect_text(v, &format!("/{key}"), &mut out);
        }
    }
    if let Some(output) = frame.get("response").and_then(|r| r.get("output")) {
        collect_text(output, "/response/output", &mut out);
    }
    out
}

pub fn is_final_frame(frame: &Value) -> bool {
    matches!(
        frame.get("type").and_then(Value::as_str),
        Some("response.completed" | "response.failed" | "response.incomplete")
    )
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

/// The event that ends a stream whose output was blocked.
pub fn block_frames(model: &str) -> Vec<Bytes> {
    vec![event(
        "response.incomplete",
        json!({ "response": filtered(model, json!([])) }),
    )]
}
