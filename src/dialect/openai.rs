//! Ollama's OpenAI-compatible API (`/v1/*`): its text fields, its error shape
//! and its block shapes (`finish_reason: "content_filter"`).

use serde_json::{Value, json};

use super::Route;
use super::schema::Node;

/// A content part. Ollama decodes parts as maps, so keys match exactly.
pub const PART: Node = Node::Object(&[
    ("type", Node::Name(&["text", "image_url"])),
    ("text", Node::Text),
    // Skipped: an image (a data: URL or a link); the model sees pixels.
    ("image_url", Node::Skip),
]);

/// `openai.Message`: `content` is a string or a list of parts.
const MESSAGE: Node = Node::Struct(&[
    ("role", super::ollama::ROLE),
    ("content", Node::Content(&PART)),
    ("reasoning", Node::Str),
    ("tool_calls", Node::List(&Node::Text)),
    ("name", Node::Str),
    ("tool_call_id", Node::Str),
]);

/// `openai.ChatCompletionRequest`.
pub const CHAT: Node = Node::Struct(&[
    ("model", Node::Skip), // the model to load
    ("messages", Node::List(&MESSAGE)),
    ("stream", Node::Text),
    ("stream_options", Node::Text),
    ("max_tokens", Node::Text),
    ("seed", Node::Text),
    ("stop", Node::Text),
    ("temperature", Node::Text),
    ("frequency_penalty", Node::Text),
    ("presence_penalty", Node::Text),
    ("top_p", Node::Text),
    ("response_format", Node::Text),
    ("tools", Node::List(&Node::Text)),
    ("reasoning", Node::Text),
    ("reasoning_effort", Node::Skip), // an effort level, a switch
    ("logprobs", Node::Text),
    ("top_logprobs", Node::Text),
    ("_debug_render_only", Node::Text),
]);

/// `openai.CompletionRequest`.
pub const COMPLETIONS: Node = Node::Struct(&[
    ("model", Node::Skip), // the model to load
    ("prompt", Node::Str),
    ("suffix", Node::Str),
    ("frequency_penalty", Node::Text),
    ("max_tokens", Node::Text),
    ("presence_penalty", Node::Text),
    ("seed", Node::Text),
    ("stop", Node::Text),
    ("stream", Node::Text),
    ("stream_options", Node::Text),
    ("temperature", Node::Text),
    ("top_p", Node::Text),
    ("logprobs", Node::Text),
    ("_debug_render_only", Node::Text),
]);

/// `openai.EmbedRequest`.
pub const EMBEDDINGS: Node = Node::Struct(&[
    ("model", Node::Skip), // the model to load
    ("input", Node::Text),
    ("dimensions", Node::Text),
    ("encoding_format", Node::Text),
]);

/// `{"error": {"message", "type", "param", "code"}}`, as the OpenAI SDKs read it.
pub fn error_body(message: &str, kind: &str, code: Option<&str>) -> Value {
    json!({ "error": { "message": message, "type": kind, "param": null, "code": code } })
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A whole response carrying `message`, for inline blocks.
pub fn inline_reply(route: Route, model: &str, message: &str) -> Value {
    let created = now_secs();
    if route == Route::OpenAiCompletions {
        return json!({
            "id": "cmpl-guard", "object": "text_completion", "created": created, "model": model,
            "choices": [{ "index": 0, "text": message, "finish_reason": "content_filter" }],
        });
    }
    json!({
        "id": "chatcmpl-guard", "object": "chat.completion", "created": created, "model": model,
        "choices": [{ "index": 0, "message": { "role": "assistant", "content": message },
                      "finish_reason": "content_filter" }],
    })
}

/// A whole response whose output was filtered: empty text,
/// `finish_reason: "content_filter"` (OpenAI's own convention).
pub fn filtered_reply(route: Route, model: &str) -> Value {
    let mut reply = inline_reply(route, model, "");
    reply["id"] = json!(if route == Route::OpenAiCompletions {
        "cmpl-guard"
    } else {
        "chatcmpl-guard"
    });
    reply
}

/// The usage chunk of a stream (`stream_options.include_usage`).
pub fn usage_chunk(route: Route, id: &str, model: &str, completion_tokens: usize) -> Value {
    let object = if route == Route::OpenAiCompletions {
        "text_completion"
    } else {
        "chat.completion.chunk"
    };
    json!({
        "id": id, "object": object, "created": now_secs(), "model": model, "choices": [],
        "usage": { "prompt_tokens": 0, "completion_tokens": completion_tokens, "total_tokens": completion_tokens },
    })
}

/// One stream chunk: `content` as the delta (or text), with `finish_reason`.
pub fn chunk(
    route: Route,
    id: &str,
    model: &str,
    content: Option<&str>,
    finish: Option<&str>,
) -> Value {
    let created = now_secs();
    if route == Route::OpenAiCompletions {
        return json!({
            "id": id, "object": "text_completion", "created": created, "model": model,
            "choices": [{ "index": 0, "text": content.unwrap_or(""), "finish_reason": finish }],
        });
    }
    let delta = match content {
        Some(c) => json!({ "role": "assistant", "content": c }),
        None => json!({}),
    };
    json!({
        "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
        "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }],
    })
}
