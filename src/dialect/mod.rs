//! Dialects: where the text is in each API's requests, responses and stream
//! frames, how to put redacted text back, and what a block looks like in
//! each API's own shape. No network here.
//!
//! Text is found by walking JSON, not by reading a fixed list of fields: every
//! string inside a message is scanned except identifiers and images, so text
//! cannot slip past by moving to a field or shape we did not think of.

pub mod codec;
pub mod ollama;
pub mod openai;

use serde_json::Value;

/// Which API family a route belongs to: decides error and block shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Ollama,
    OpenAi,
}

/// The routes whose bodies carry text to scan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    Generate,
    Chat,
    Embed,
    Embeddings,
    OpenAiChat,
    OpenAiCompletions,
    OpenAiEmbeddings,
}

/// One piece of text to scan, and where it sits in its JSON document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// RFC 6901 pointer, e.g. `/messages/2/content`.
    pub pointer: String,
    pub text: String,
}

impl Route {
    pub fn dialect(self) -> Dialect {
        match self {
            Self::Generate | Self::Chat | Self::Embed | Self::Embeddings => Dialect::Ollama,
            Self::OpenAiChat | Self::OpenAiCompletions | Self::OpenAiEmbeddings => Dialect::OpenAi,
        }
    }

    /// The route's path, also its metrics label.
    pub fn path(self) -> &'static str {
        match self {
            Self::Generate => "/api/generate",
            Self::Chat => "/api/chat",
            Self::Embed => "/api/embed",
            Self::Embeddings => "/api/embeddings",
            Self::OpenAiChat => "/v1/chat/completions",
            Self::OpenAiCompletions => "/v1/completions",
            Self::OpenAiEmbeddings => "/v1/embeddings",
        }
    }

    pub fn is_embedding(self) -> bool {
        matches!(
            self,
            Self::Embed | Self::Embeddings | Self::OpenAiEmbeddings
        )
    }

    /// Whether the client asked for a stream (Ollama streams unless told not
    /// to; the OpenAI API streams only when asked).
    pub fn wants_stream(self, body: &Value) -> bool {
        let default = matches!(self, Self::Generate | Self::Chat);
        body.get("stream")
            .and_then(Value::as_bool)
            .unwrap_or(default)
    }

    /// The text a client sends, or what is wrong with the body's shape.
    pub fn input_segments(self, body: &Value) -> Result<Vec<Segment>, String> {
        if !body.is_object() {
            return Err("request body must be a JSON object".into());
        }
        match self.dialect() {
            Dialect::Ollama => ollama::input_segments(self, body),
            Dialect::OpenAi => openai::input_segments(self, body),
        }
    }

    /// The text of a whole (non-streamed) model response.
    pub fn output_segments(self, body: &Value) -> Vec<Segment> {
        match self.dialect() {
            Dialect::Ollama => ollama::output_segments(self, body),
            Dialect::OpenAi => openai::output_segments(self, body),
        }
    }

    /// The text carried by one stream frame (a delta).
    pub fn frame_segments(self, frame: &Value) -> Vec<Segment> {
        match self.dialect() {
            Dialect::Ollama => ollama::output_segments(self, frame),
            Dialect::OpenAi => openai::frame_segments(self, frame),
        }
    }

    /// Whether this frame ends the reply (`done: true`, a `finish_reason`).
    pub fn is_final_frame(self, frame: &Value) -> bool {
        match self.dialect() {
            Dialect::Ollama => frame.get("done").and_then(Value::as_bool).unwrap_or(false),
            Dialect::OpenAi => openai::has_finish_reason(frame),
        }
    }
}

/// Escapes one key for a JSON pointer (RFC 6901).
fn pointer_key(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Keys inside messages that hold identifiers or media, never prose.
fn is_non_text_key(key: &str) -> bool {
    matches!(
        key,
        "role" | "images" | "image_url" | "id" | "type" | "tool_call_id" | "index"
    )
}

/// Collects every string under `value`. Keys for identifiers and images are
/// skipped, except inside tool-call `arguments`, where every string is text.
pub fn collect_text(value: &Value, pointer: &str, out: &mut Vec<Segment>) {
    walk(value, pointer, true, out);
}

fn walk(value: &Value, pointer: &str, skip_ids: bool, out: &mut Vec<Segment>) {
    match value {
        Value::String(s) if !s.is_empty() => out.push(Segment {
            pointer: pointer.to_string(),
            text: s.clone(),
        }),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(item, &format!("{pointer}/{i}"), skip_ids, out);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                if skip_ids && is_non_text_key(key) {
                    continue;
                }
                let inside_args = key == "arguments";
                walk(
                    item,
                    &format!("{pointer}/{}", pointer_key(key)),
                    skip_ids && !inside_args,
                    out,
                );
            }
        }
        _ => {}
    }
}

/// Reads an optional field that must be a string when present.
fn string_field(body: &Value, key: &str, out: &mut Vec<Segment>) -> Result<(), String> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) => {
            if !s.is_empty() {
                out.push(Segment {
                    pointer: format!("/{key}"),
                    text: s.clone(),
                });
            }
            Ok(())
        }
        Some(_) => Err(format!("`{key}` must be a string")),
    }
}

/// Reads an optional field that must be a string or a list of strings.
fn string_or_list_field(body: &Value, key: &str, out: &mut Vec<Segment>) -> Result<(), String> {
    match body.get(key) {
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let Value::String(s) = item else {
                    return Err(format!("`{key}` must be a string or a list of strings"));
                };
                out.push(Segment {
                    pointer: format!("/{key}/{i}"),
                    text: s.clone(),
                });
            }
            Ok(())
        }
        _ => string_field(body, key, out)
            .map_err(|_| format!("`{key}` must be a string or a list of strings")),
    }
}

/// Reads `messages`: a list of objects whose strings are all scanned.
fn messages_field(body: &Value, out: &mut Vec<Segment>) -> Result<(), String> {
    match body.get("messages") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Array(messages)) => {
            for (i, m) in messages.iter().enumerate() {
                if !m.is_object() {
                    return Err(format!("`messages[{i}]` must be an object"));
                }
                collect_text(m, &format!("/messages/{i}"), out);
            }
            Ok(())
        }
        Some(_) => Err("`messages` must be a list".into()),
    }
}

/// Writes rewritten strings back at their pointers. Pointers come from the
/// same document, so a missing one means nothing to write.
pub fn apply_rewrites(body: &mut Value, rewrites: &[(String, String)]) {
    for (pointer, text) in rewrites {
        if let Some(slot) = body.pointer_mut(pointer) {
            *slot = Value::String(text.clone());
        }
    }
}

#[cfg(test)]
mod tests;
