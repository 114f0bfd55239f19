//! The Ollama API (`/api/*`): request schemas (from Ollama's
//! `api/types.go`), its text fields, and its error and block shapes.

use serde_json::{Value, json};

use super::Route;
use super::schema::Node;

/// Option names are parameters (`temperature`, `stop`), not text; their
/// string values (stop sequences) are scanned.
pub const OPTIONS: Node = Node::Values(&Node::Text);

/// Message roles. Ollama lowercases roles; anything else is scanned.
pub const ROLE: Node = Node::Name(&["system", "user", "assistant", "tool", "developer"]);

/// `api.Message`.
pub const MESSAGE: Node = Node::Struct(&[
    // Some templates (Phi) print the role verbatim: any but these is scanned.
    ("role", ROLE),
    ("content", Node::Str),
    ("thinking", Node::Str),
    // Skipped: base64 image bytes; the model sees pixels, not this text.
    ("images", Node::Skip),
    ("tool_calls", Node::List(&Node::Text)),
    ("tool_name", Node::Str),
    ("tool_call_id", Node::Str),
]);

/// `api.GenerateRequest`.
pub const GENERATE: Node = Node::Struct(&[
    // Skipped: names the model to load; never rendered into the prompt.
    ("model", Node::Skip),
    ("prompt", Node::Str),
    ("suffix", Node::Str),
    ("system", Node::Str),
    // Also checked as a template (`request.rs`).
    ("template", Node::Str),
    // Token ids (numbers): refused unless allowed (`request.rs`).
    ("context", Node::Text),
    ("stream", Node::Text),
    ("raw", Node::Text),
    ("format", Node::Text),
    // Skipped: a duration ("5m") for keeping the model loaded.
    ("keep_alive", Node::Skip),
    // Skipped: base64 image bytes.
    ("images", Node::Skip),
    ("options", OPTIONS),
    // Skipped: true/false or an effort level ("high"), a switch, not text.
    ("think", Node::Skip),
    ("truncate", Node::Text),
    ("shift", Node::Text),
    ("_debug_render_only", Node::Text),
    ("logprobs", Node::Text),
    ("top_logprobs", Node::Text),
]);

/// `api.ChatRequest`.
pub const CHAT: Node = Node::Struct(&[
    ("model", Node::Skip), // the model to load
    ("messages", Node::List(&MESSAGE)),
    ("stream", Node::Text),
    ("format", Node::Text),
    ("keep_alive", Node::Skip), // a duration
    // Tool names, descriptions and parameter schemas: templates render them.
    ("tools", Node::List(&Node::Text)),
    ("options", OPTIONS),
    ("think", Node::Skip), // a switch or an effort level
    ("truncate", Node::Text),
    ("shift", Node::Text),
    ("_debug_render_only", Node::Text),
    ("logprobs", Node::Text),
    ("top_logprobs", Node::Text),
]);

/// `api.EmbedRequest`.
pub const EMBED: Node = Node::Struct(&[
    ("model", Node::Skip), // the model to load
    ("input", Node::Text),
    ("keep_alive", Node::Skip), // a duration
    ("truncate", Node::Text),
    ("dimensions", Node::Text),
    ("options", OPTIONS),
]);

/// `api.EmbeddingRequest`.
pub const EMBEDDINGS: Node = Node::Struct(&[
    ("model", Node::Skip), // the model to load
    ("prompt", Node::Str),
    ("keep_alive", Node::Skip), // a duration
    ("options", OPTIONS),
]);

/// `api.CreateRequest`: what it plants in a model is scanned like a prompt.
pub const CREATE: Node = Node::Struct(&[
    // Skipped: names of models, files, quantizations, renderers and hosts,
    // and blob digests: what to build from, never shown to a model.
    ("model", Node::Skip),
    ("name", Node::Skip),
    ("from", Node::Skip),
    ("quantize", Node::Skip),
    ("draft_quantize", Node::Skip),
    ("quantization", Node::Skip),
    ("remote_host", Node::Skip),
    ("files", Node::Skip),
    ("draft_files", Node::Skip),
    ("adapters", Node::Skip),
    ("renderer", Node::Skip),
    ("parser", Node::Skip),
    ("requires", Node::Skip),
    // Skipped: the license is shown to people by `ollama show`, never
    // rendered into a prompt (and long legal text would only add noise).
    ("license", Node::Skip),
    ("stream", Node::Text),
    ("template", Node::Str),
    ("system", Node::Str),
    ("parameters", OPTIONS),
    ("messages", Node::List(&MESSAGE)),
    ("info", Node::Text),
]);

/// `{"error": "..."}`, what every Ollama client reads as an error.
pub fn error_body(message: &str) -> Value {
    json!({ "error": message })
}

/// A complete reply carrying `message`, for inline blocks; `done_reason`
/// says it was filtered.
pub fn inline_reply(route: Route, model: &str, message: &str) -> Value {
    let created_at = humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string();
    if route == Route::Chat {
        return json!({
            "model": model, "created_at": created_at,
            "message": { "role": "assistant", "content": message },
            "done": true, "done_reason": "content_filter",
        });
    }
    json!({
        "model": model, "created_at": created_at,
        "response": message, "done": true, "done_reason": "content_filter",
    })
}
