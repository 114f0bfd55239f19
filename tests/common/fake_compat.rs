//! The fake Ollama's newer compatibility routes, in the wire format of
//! Ollama's own converters (`openai/responses.go`, `anthropic/`): the OpenAI
//! Responses API and the Anthropic Messages API, whole or streamed as named
//! SSE events.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::fake_ollama::{Inner, Script, json_reply, streamed};

fn sse(kind: &str, data: Value) -> String {
    format!("event: {kind}\ndata: {data}\n\n")
}

fn response_object(model: &str, status: &str, text: &str) -> Value {
    json!({ "id": "resp_1", "object": "response", "created_at": 1735689600, "status": status,
            "model": model, "output": [{ "type": "message", "id": "msg_1", "status": status,
            "role": "assistant", "content": [{ "type": "output_text", "text": text, "annotations": [] }] }],
            "usage": { "input_tokens": 7, "output_tokens": 5, "total_tokens": 12 } })
}

/// `POST /v1/responses`.
pub fn responses(inner: &Arc<Inner>, model: &str, s: &Script, stream: bool) -> Response {
    let text = s.tokens.concat();
    if !stream {
        return json_reply(StatusCode::OK, response_object(model, "completed", &text));
    }
    let mut seq = 0;
    let mut ev = |kind: &str, mut data: Value| {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(seq);
        seq += 1;
        sse(kind, data)
    };
    let item = json!({ "item_id": "msg_1", "output_index": 0, "content_index": 0 });
    let with = |extra: Value| {
        let mut v = item.clone();
        for (k, x) in extra.as_object().into_iter().flatten() {
            v[k] = x.clone();
        }
        v
    };
    let mut frames = vec![
        ev(
            "response.created",
            json!({ "response": response_object(model, "in_progress", "") }),
        ),
        ev(
            "response.output_item.added",
            json!({ "output_index": 0,
            "item": { "type": "message", "id": "msg_1", "status": "in_progress", "role": "assistant", "content": [] } }),
        ),
    ];
    for t in &s.tokens {
        frames.push(ev(
            "response.output_text.delta",
            with(json!({ "delta": t })),
        ));
    }
    frames.push(ev(
        "response.output_text.done",
        with(json!({ "text": text })),
    ));
    frames.push(ev(
        "response.completed",
        json!({ "response": response_object(model, "completed", &text) }),
    ));
    streamed(inner, "text/event-stream", frames, s)
}

/// `POST /v1/messages`.
pub fn messages(inner: &Arc<Inner>, model: &str, s: &Script, stream: bool) -> Response {
    let text = s.tokens.concat();
    let message = |content: Value, stop: Value| {
        json!({ "id": "msg_1", "type": "message", "role": "assistant", "model": model,
                "content": content, "stop_reason": stop, "stop_sequence": null,
                "usage": { "input_tokens": 7, "output_tokens": 5 } })
    };
    if !stream {
        return json_reply(
            StatusCode::OK,
            message(json!([{ "type": "text", "text": text }]), json!("end_turn")),
        );
    }
    let mut frames = vec![
        sse(
            "message_start",
            json!({ "type": "message_start", "message": message(json!([]), Value::Null) }),
        ),
        sse(
            "content_block_start",
            json!({ "type": "content_block_start", "index": 0,
            "content_block": { "type": "text", "text": "" } }),
        ),
    ];
    for t in &s.tokens {
        frames.push(sse(
            "content_block_delta",
            json!({ "type": "content_block_delta", "index": 0,
            "delta": { "type": "text_delta", "text": t } }),
        ));
    }
    frames.push(sse(
        "content_block_stop",
        json!({ "type": "content_block_stop", "index": 0 }),
    ));
    frames.push(sse("message_delta", json!({ "type": "message_delta",
        "delta": { "stop_reason": "end_turn", "stop_sequence": null }, "usage": { "output_tokens": 5 } })));
    frames.push(sse("message_stop", json!({ "type": "message_stop" })));
    streamed(inner, "text/event-stream", frames, s)
}
