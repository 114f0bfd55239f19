//! The Ollama API (`/api/*`): its text fields and its error and block shapes.

use serde_json::{Value, json};

use super::{Route, Segment, collect_text, messages_field, string_field, string_or_list_field};

pub fn input_segments(route: Route, body: &Value) -> Result<Vec<Segment>, String> {
    let mut out = Vec::new();
    match route {
        Route::Generate => {
            for key in ["system", "prompt", "suffix", "template"] {
                string_field(body, key, &mut out)?;
            }
        }
        Route::Chat => messages_field(body, &mut out)?,
        Route::Embed => string_or_list_field(body, "input", &mut out)?,
        Route::Embeddings => string_field(body, "prompt", &mut out)?,
        _ => {}
    }
    Ok(out)
}

/// Text of a whole response, or of one stream frame (same shape in Ollama).
pub fn output_segments(route: Route, body: &Value) -> Vec<Segment> {
    let mut out = Vec::new();
    match route {
        Route::Generate => {
            for key in ["thinking", "response"] {
                let _ = string_field(body, key, &mut out);
            }
        }
        Route::Chat => {
            if let Some(message) = body.get("message") {
                collect_text(message, "/message", &mut out);
            }
        }
        _ => {}
    }
    out
}

/// `{"error": "..."}`, what every Ollama client reads as an error.
pub fn error_body(message: &str) -> Value {
    json!({ "error": message })
}

/// A complete, successful-looking reply carrying `message`, for inline blocks.
pub fn inline_reply(route: Route, model: &str, message: &str) -> Value {
    let created_at = humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string();
    match route {
        Route::Chat => json!({
            "model": model, "created_at": created_at,
            "message": { "role": "assistant", "content": message },
            "done": true, "done_reason": "stop",
        }),
        _ => json!({
            "model": model, "created_at": created_at,
            "response": message, "done": true, "done_reason": "stop",
        }),
    }
}
