//! A guarded request as the proxy reads it: parsed the way Ollama parses
//! it, every string to scan, and the texts a model is shown joined.
//!
//! Joined scanning: a phrase split across fields (`system: "kill all"`,
//! `prompt: "humans"`) is in no field alone, but the model reads the fields
//! together. Besides each field, the guard scans each *seam*: the last
//! [`SEAM_CONTEXT_BYTES`] before a boundary between two rendered texts and
//! the first ones after it, joined directly and with a newline. Seams are
//! small and stable, so a long conversation only scans the new ones. A
//! template (when allowed) is rendered and scanned whole.

use std::ops::Range;

use serde_json::Value;

use super::{Route, Segment, anthropic, gojson, responses, schema, template};

/// Bytes taken from each side of a seam: the longest phrase a split can
/// hide from the per-field scans.
pub const SEAM_CONTEXT_BYTES: usize = 256;

/// What a route may carry besides text (`guard.allow_*`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Allowed {
    /// `context` token arrays on `/api/generate`.
    pub context: bool,
    /// `template` on `/api/generate` and `/api/create`.
    pub templates: bool,
}

/// Why a body was refused.
#[derive(Debug, PartialEq)]
pub enum Refused {
    /// Not JSON as Ollama would read it.
    Json(String),
    /// JSON, but not a request the guard can vouch for.
    Shape(String),
}

/// A parsed request body.
#[derive(Debug)]
pub struct Request {
    pub json: Value,
    /// Every string to scan, keys included.
    pub segments: Vec<Segment>,
    pub stream: bool,
    /// The model named, echoed in inline replies.
    pub model: String,
}

/// A text a model is shown joined from several fields.
#[derive(Debug, PartialEq)]
pub struct Joined {
    pub text: String,
    /// For a seam, the bytes between its two sides (empty or a newline): a
    /// finding counts only if it spans this cut. `None`: the whole text is
    /// judged (a rendered template).
    pub cut: Option<Range<usize>>,
}

impl Route {
    /// Reads a request body as Ollama would, or says why it is refused.
    pub fn parse(self, bytes: &[u8], allowed: Allowed) -> Result<Request, Refused> {
        let json = gojson::parse(bytes).map_err(Refused::Json)?;
        if !json.is_object() {
            return Err(Refused::Shape("request body must be a JSON object".into()));
        }
        let segments = schema::segments(self.schema(), &json).map_err(Refused::Shape)?;
        self.check_allowed(&json, allowed).map_err(Refused::Shape)?;
        Ok(Request {
            stream: self.wants_stream(&json),
            model: json
                .get("model")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            json,
            segments,
        })
    }

    /// Refuses what the guard cannot scan unless the operator allowed it.
    fn check_allowed(self, json: &Value, allowed: Allowed) -> Result<(), String> {
        let template = json.get("template").and_then(Value::as_str).unwrap_or("");
        match self {
            Self::Generate => {
                let has_context = json
                    .get("context")
                    .is_some_and(|c| c.as_array().is_none_or(|a| !a.is_empty()));
                if has_context && !allowed.context {
                    return Err(
                        "`context` holds token ids that Ollama turns back into prompt \
                        text the guard cannot scan; send the conversation as text (/api/chat), \
                        or set guard.allow_context (GUARD_ALLOW_CONTEXT)"
                            .into(),
                    );
                }
                if !template.is_empty() {
                    refuse_template(allowed)?;
                    template::validate(template)?;
                }
                Ok(())
            }
            Self::Create if !template.is_empty() => refuse_template(allowed),
            Self::Create
            | Self::Chat
            | Self::Embed
            | Self::Embeddings
            | Self::OpenAiChat
            | Self::OpenAiCompletions
            | Self::OpenAiEmbeddings
            | Self::Responses
            | Self::AnthropicMessages => Ok(()),
        }
    }

    /// The texts rendered together, in order (empty ones left out).
    fn rendered(self, json: &Value) -> Vec<String> {
        let mut pieces = match self {
            Self::Generate => fields(json, &["system", "prompt", "suffix"]),
            Self::Chat | Self::OpenAiChat => message_texts(json, "messages"),
            Self::Create => {
                let mut out = fields(json, &["system"]);
                out.extend(message_texts(json, "messages"));
                out
            }
            Self::OpenAiCompletions => fields(json, &["prompt", "suffix"]),
            Self::Responses => responses::rendered(json),
            Self::AnthropicMessages => anthropic::rendered(json),
            Self::Embed | Self::Embeddings | Self::OpenAiEmbeddings => Vec::new(),
        };
        pieces.retain(|p| !p.is_empty());
        pieces
    }

    /// The joined texts to scan besides each field: every seam between
    /// rendered texts, and a rendered template. `json` is the body as it
    /// will be forwarded (after redaction).
    pub fn joined(self, json: &Value) -> Vec<Joined> {
        let mut out = seams(&self.rendered(json));
        let template = json.get("template").and_then(Value::as_str).unwrap_or("");
        if !template.is_empty() {
            let text = match self {
                Self::Generate => template::render(template, |f| {
                    json.get(f).and_then(Value::as_str).unwrap_or("")
                }),
                // A model template may use any action; what it says in plain
                // text, with actions and comments cut out, is scanned whole.
                _ => Ok(template::literal_text(template)),
            };
            // `parse` validated the template; an error here renders nothing.
            if let Ok(text) = text {
                out.push(Joined { text, cut: None });
            }
        }
        out
    }
}

fn refuse_template(allowed: Allowed) -> Result<(), String> {
    if allowed.templates {
        return Ok(());
    }
    Err(
        "`template` is a Go template, not text: it can build words no scanner sees; \
        refused unless guard.allow_templates (GUARD_ALLOW_TEMPLATES) is on"
            .into(),
    )
}

/// Every seam between consecutive `pieces`, joined directly and with a
/// newline (templates do both).
pub fn seams(pieces: &[String]) -> Vec<Joined> {
    let mut out = Vec::new();
    if pieces.len() < 2 {
        return out;
    }
    for sep in ["", "\n"] {
        let whole = pieces.join(sep);
        let mut at = 0;
        for piece in &pieces[..pieces.len() - 1] {
            at += piece.len();
            let start = floor_boundary(&whole, at.saturating_sub(SEAM_CONTEXT_BYTES));
            let end = ceil_boundary(&whole, at + sep.len() + SEAM_CONTEXT_BYTES);
            out.push(Joined {
                text: whole[start..end].to_string(),
                cut: Some(at - start..at - start + sep.len()),
            });
            at += sep.len();
        }
    }
    out
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_boundary(s: &str, i: usize) -> usize {
    let mut i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// The texts of a content value, each its own piece: a string, each part of
/// a list (`text`), or a block's nested `content`.
pub fn texts_of(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| texts_of(v, out)),
        Value::Object(map) => match map.get("text") {
            Some(Value::String(s)) => out.push(s.clone()),
            _ => map
                .get("content")
                .into_iter()
                .for_each(|v| texts_of(v, out)),
        },
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// The texts of each message's `content` in `json[key]`, in order.
pub fn message_texts(json: &Value, key: &str) -> Vec<String> {
    let mut out = Vec::new();
    for message in json
        .get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match message.get("content") {
            Some(content) => texts_of(content, &mut out),
            // A bare item (a Responses input given as a string or part).
            None => texts_of(message, &mut out),
        }
    }
    out
}

/// The named fields of `json`, in order.
pub fn fields(json: &Value, names: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for name in names {
        json.get(name)
            .into_iter()
            .for_each(|v| texts_of(v, &mut out));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seams_join_each_boundary_both_ways() {
        let pieces = vec!["kill all".to_string(), "humans".into(), "now".into()];
        let s = seams(&pieces);
        let texts: Vec<(&str, Option<Range<usize>>)> =
            s.iter().map(|j| (j.text.as_str(), j.cut.clone())).collect();
        assert_eq!(
            texts,
            vec![
                ("kill allhumansnow", Some(8..8)),
                ("kill allhumansnow", Some(14..14)),
                ("kill all\nhumans\nnow", Some(8..9)),
                ("kill all\nhumans\nnow", Some(15..16)),
            ]
        );
    }

    #[test]
    fn seams_keep_only_the_context_around_the_boundary() {
        let long = "é".repeat(SEAM_CONTEXT_BYTES);
        let s = seams(&[long.clone(), long]);
        assert_eq!(s[0].text.len(), 2 * SEAM_CONTEXT_BYTES);
        assert_eq!(s[0].cut, Some(SEAM_CONTEXT_BYTES..SEAM_CONTEXT_BYTES));
        assert!(seams(&["one".into()]).is_empty());
    }

    #[test]
    fn texts_of_reads_strings_parts_and_blocks_as_pieces() {
        let v = serde_json::json!([{"type": "text", "text": "a"}, "b",
            {"type": "tool_result", "content": [{"type": "text", "text": "c"}]}]);
        let mut out = Vec::new();
        texts_of(&v, &mut out);
        assert_eq!(out, vec!["a", "b", "c"]);
    }
}
