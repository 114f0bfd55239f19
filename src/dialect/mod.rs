//! Dialects: how each API's requests are read (the way Ollama reads them),
//! where the text is in its responses and stream frames, how to put redacted
//! text back, and what errors and blocks look like in its own shape. No
//! network here.
//!
//! - `gojson.rs`: parsing as Go's `encoding/json` does, refusing what it
//!   would read differently (duplicate keys, folded key spellings).
//! - `schema.rs`: scan by default, skip by exception; each route's schema
//!   lives in its dialect's file.
//! - `request.rs`: a parsed request: its segments, and the texts that are
//!   rendered together (joined scanning).
//! - `template.rs`: the Go-template subset `template` may use.
//! - `ollama.rs`, `openai.rs`, `responses.rs`, `anthropic.rs`: the APIs.
//! - `output.rs`: the texts of model output, and the stream fields they
//!   continue.
//! - `codec.rs`: NDJSON and SSE framing.
//! - `tree.rs`: model output read without copying it (borrowed strings),
//!   with the refusals of `gojson`.
//! - `prompt.rs`: a request's last user turn, which guard models judge a
//!   reply with.

pub mod anthropic;
pub mod codec;
pub mod gojson;
pub mod ollama;
pub mod openai;
pub mod output;
pub mod prompt;
pub mod request;
pub mod responses;
pub mod schema;
pub mod template;
pub mod tree;

use serde_json::Value;

pub use request::{Joined, Request};

/// Which API family a route belongs to: decides error and block shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Ollama,
    OpenAi,
    Anthropic,
}

/// The routes whose bodies carry text to scan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    Generate,
    Chat,
    Embed,
    Embeddings,
    /// `/api/create`: its system prompt, messages and template are planted
    /// in a model, so they are scanned like prompts; its reply is progress.
    Create,
    OpenAiChat,
    OpenAiCompletions,
    OpenAiEmbeddings,
    /// `/v1/responses`, the OpenAI Responses API.
    Responses,
    /// `/v1/messages`, the Anthropic Messages API.
    AnthropicMessages,
}

/// One piece of text to scan, and where it sits in its JSON document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// RFC 6901 pointer, e.g. `/messages/2/content` (for a key: the pointer
    /// of the value under that key).
    pub pointer: String,
    pub text: String,
    /// The text is an object key, not a string value.
    pub key: bool,
}

impl Dialect {
    /// The dialect errors take at `path`: a guarded route's own, else
    /// OpenAI's under `/v1/`, else Ollama's.
    pub fn of_path(path: &str) -> Self {
        Self::of(Route::at(path), path)
    }

    /// [`Dialect::of_path`] when the route at `path` is already known.
    pub fn of(route: Option<Route>, path: &str) -> Self {
        match route {
            Some(route) => route.dialect(),
            None if path.starts_with("/v1/") => Self::OpenAi,
            None => Self::Ollama,
        }
    }
}

impl Route {
    /// The guarded route served at `path`, if any.
    pub fn at(path: &str) -> Option<Route> {
        Self::ALL.into_iter().find(|r| r.path() == path)
    }
    pub const ALL: [Route; 10] = [
        Self::Generate,
        Self::Chat,
        Self::Embed,
        Self::Embeddings,
        Self::Create,
        Self::OpenAiChat,
        Self::OpenAiCompletions,
        Self::OpenAiEmbeddings,
        Self::Responses,
        Self::AnthropicMessages,
    ];

    pub fn dialect(self) -> Dialect {
        match self {
            Self::Generate | Self::Chat | Self::Embed | Self::Embeddings | Self::Create => {
                Dialect::Ollama
            }
            Self::OpenAiChat
            | Self::OpenAiCompletions
            | Self::OpenAiEmbeddings
            | Self::Responses => Dialect::OpenAi,
            Self::AnthropicMessages => Dialect::Anthropic,
        }
    }

    /// The route's path: where it is served, where it is forwarded, and its
    /// metrics label.
    pub fn path(self) -> &'static str {
        match self {
            Self::Generate => "/api/generate",
            Self::Chat => "/api/chat",
            Self::Embed => "/api/embed",
            Self::Embeddings => "/api/embeddings",
            Self::Create => "/api/create",
            Self::OpenAiChat => "/v1/chat/completions",
            Self::OpenAiCompletions => "/v1/completions",
            Self::OpenAiEmbeddings => "/v1/embeddings",
            Self::Responses => "/v1/responses",
            Self::AnthropicMessages => "/v1/messages",
        }
    }

    /// Embedding inputs are scanned only when `guard.scan_embeddings` is on:
    /// they are never shown to a generative model.
    pub fn is_embedding(self) -> bool {
        matches!(
            self,
            Self::Embed | Self::Embeddings | Self::OpenAiEmbeddings
        )
    }

    /// Whether the reply carries model text to scan.
    pub fn has_model_output(self) -> bool {
        match self {
            Self::Generate
            | Self::Chat
            | Self::OpenAiChat
            | Self::OpenAiCompletions
            | Self::Responses
            | Self::AnthropicMessages => true,
            Self::Embed | Self::Embeddings | Self::OpenAiEmbeddings | Self::Create => false,
        }
    }

    /// The body's schema: what is scanned, what is skipped and why.
    pub fn schema(self) -> &'static schema::Node {
        match self {
            Self::Generate => &ollama::GENERATE,
            Self::Chat => &ollama::CHAT,
            Self::Embed => &ollama::EMBED,
            Self::Embeddings => &ollama::EMBEDDINGS,
            Self::Create => &ollama::CREATE,
            Self::OpenAiChat => &openai::CHAT,
            Self::OpenAiCompletions => &openai::COMPLETIONS,
            Self::OpenAiEmbeddings => &openai::EMBEDDINGS,
            Self::Responses => &responses::REQUEST,
            Self::AnthropicMessages => &anthropic::REQUEST,
        }
    }

    /// Whether the client asked for a stream (Ollama streams unless told not
    /// to; the other APIs stream only when asked).
    pub fn wants_stream(self, body: &Value) -> bool {
        let default = match self.dialect() {
            Dialect::Ollama => true,
            Dialect::OpenAi | Dialect::Anthropic => false,
        };
        body.get("stream")
            .and_then(Value::as_bool)
            .unwrap_or(default)
    }
}

/// Writes rewritten text back: string values at their pointers, and keys
/// renamed in place (keeping their order). Pointers come from the same
/// document, so a missing one means nothing to write. Fails only when a
/// renamed key would collide with another key of its object.
pub fn apply_rewrites(body: &mut Value, rewrites: &[Rewrite]) -> Result<(), String> {
    // Values first: their pointers still name the old keys.
    for r in rewrites.iter().filter(|r| !r.key) {
        if let Some(slot) = body.pointer_mut(&r.pointer) {
            *slot = Value::String(r.text.clone());
        }
    }
    let mut keys: Vec<&Rewrite> = rewrites.iter().filter(|r| r.key).collect();
    // Deepest first, so a parent's rename does not move a child's pointer.
    keys.sort_by_key(|r| std::cmp::Reverse(r.pointer.matches('/').count()));
    for r in keys {
        rename_key(body, &r.pointer, &r.text)?;
    }
    Ok(())
}

/// A rewritten segment: the redacted text for a value or a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rewrite {
    pub pointer: String,
    pub text: String,
    pub key: bool,
}

fn rename_key(body: &mut Value, pointer: &str, new: &str) -> Result<(), String> {
    let Some((parent, token)) = pointer.rsplit_once('/') else {
        return Ok(());
    };
    let old = token.replace("~1", "/").replace("~0", "~");
    let Some(Value::Object(map)) = body.pointer_mut(parent) else {
        return Ok(());
    };
    if old == new || !map.contains_key(&old) {
        return Ok(());
    }
    if map.contains_key(new) {
        return Err("two redacted keys of one object became the same key".into());
    }
    let renamed = std::mem::take(map)
        .into_iter()
        .map(|(k, v)| {
            if k == old {
                (new.to_string(), v)
            } else {
                (k, v)
            }
        })
        .collect();
    *map = renamed;
    Ok(())
}

#[cfg(test)]
mod tests;
