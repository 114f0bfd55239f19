//! Model output, read the way the input is: scan by default, skip by
//! exception. Every string of a response or stream frame is scanned, and
//! every object key that is data, except the values listed in
//! [`SKIPPED_VALUES`] (identifiers, enums, timestamps: each says why).
//!
//! A stream delivers some texts in pieces the client appends (the reply,
//! thinking, tool-call arguments, log-prob tokens). Those pieces carry the
//! *field* they continue, keyed by the choice/block/item they belong to, so
//! each field is scanned in its own window and two fields never mix. Every
//! other string is a whole text, scanned on its own.

use std::borrow::Cow;

use serde_json::Value;
use smallvec::SmallVec;

use super::tree::Node;
use super::{Dialect, Route};

mod keys;
#[cfg(test)]
mod tests;
mod token_frame;

pub use keys::SKIPPED_VALUES;
use keys::{KeyKind, kind};
pub use token_frame::{TokenFrame, token_frame};

/// One text of model output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutText {
    /// RFC 6901 pointer of the string (for a key: of the value under it).
    /// The few fixed paths of Ollama's appended texts are not built for
    /// every frame.
    pub pointer: Cow<'static, str>,
    pub text: String,
    /// The text is an object key.
    pub key: bool,
    /// The stream field this piece continues; `None` for a whole text.
    /// Ollama's fields are fixed names, not copied for every frame.
    pub field: Option<Cow<'static, str>>,
}

/// Every text of `doc` (a whole response or one stream frame) on `route`,
/// but those under the keys `withheld` removes; an error when a field the
/// client appends is not a string (a client would join or stringify it in
/// ways no scan saw).
pub fn texts(route: Route, doc: &Node, withheld: Withheld) -> Result<Vec<OutText>, String> {
    let mut path = Path::new();
    let mut walker = Walker {
        route,
        doc,
        out: Vec::new(),
        wrong: None,
    };
    match doc {
        // The top level by hand, to leave out what is withheld.
        Node::Object(pairs) => {
            for (key, item) in pairs.iter().filter(|(k, _)| !withheld.removes(k)) {
                walker.member(key, item, &mut path, false);
            }
        }
        _ => walker.walk(doc, &mut path, false),
    }
    match walker.wrong {
        Some(p) => Err(format!("`{p}` is not a string")),
        None => Ok(walker.out),
    }
}

/// One step of a pointer: an object key (borrowed from the document) or
/// an array index.
#[derive(Clone, Copy, Debug)]
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// Where the walk is: on the stack up to 8 steps (every field is at most
/// that deep), so a frame's walk allocates none.
type Path<'a> = SmallVec<[Step<'a>; 8]>;

/// The RFC 6901 pointer of `path`; the fixed paths a stream repeats in
/// every frame are static.
fn pointer(path: &[Step]) -> Cow<'static, str> {
    use Step::Key;
    match path {
        [Key("response")] => "/response".into(),
        [Key("thinking")] => "/thinking".into(),
        [Key("message"), Key("content")] => "/message/content".into(),
        [Key("message"), Key("thinking")] => "/message/thinking".into(),
        _ => built(path).into(),
    }
}

/// The RFC 6901 pointer of `path`, built in one buffer.
fn built(path: &[Step]) -> String {
    use std::fmt::Write;
    let mut p = String::with_capacity(path.len() * 8);
    for step in path {
        p.push('/');
        match step {
            // Nearly every key needs no escape: copied whole.
            Step::Key(k) if memchr::memchr2(b'~', b'/', k.as_bytes()).is_none() => p.push_str(k),
            Step::Key(k) => {
                for c in k.chars() {
                    match c {
                        '~' => p.push_str("~0"),
                        '/' => p.push_str("~1"),
                        c => p.push(c),
                    }
                }
            }
            Step::Index(i) => {
                let _ = write!(p, "{i}");
            }
        }
    }
    p
}

/// Inside these, every string and key is the model's (tool-call arguments,
/// Anthropic tool input).
fn is_data(key: &str) -> bool {
    matches!(key, "arguments" | "input")
}

/// The walk over one document: where texts go, and the first appended
/// field found with the wrong type.
struct Walker<'d> {
    route: Route,
    doc: &'d Node<'d>,
    out: Vec<OutText>,
    wrong: Option<String>,
}

impl<'d> Walker<'d> {
    fn walk(&mut self, value: &'d Node<'d>, path: &mut Path<'d>, data: bool) {
        match value {
            Node::String(s) => {
                if !s.is_empty() {
                    self.out.push(OutText {
                        pointer: pointer(path),
                        text: s.to_string(),
                        key: false,
                        field: field(self.route, self.doc, path),
                    });
                }
            }
            Node::Array(_) | Node::Object(_) if field(self.route, self.doc, path).is_some() => {
                self.wrong = Some(pointer(path).into_owned());
            }
            // Only containers recurse: the stack is checked there.
            Node::Array(items) => stacker::maybe_grow(64 * 1024, 1024 * 1024, || {
                for (i, item) in items.iter().enumerate() {
                    path.push(Step::Index(i));
                    self.walk(item, path, data);
                    path.pop();
                }
            }),
            Node::Object(pairs) => stacker::maybe_grow(64 * 1024, 1024 * 1024, || {
                for (key, item) in pairs {
                    self.member(key, item, path, data);
                }
            }),
            Node::Null | Node::Bool(_) | Node::Number(_) => {}
        }
    }

    /// One key of an object and the value under it.
    fn member(&mut self, key: &'d str, item: &'d Node<'d>, path: &mut Path<'d>, data: bool) {
        path.push(Step::Key(key));
        // Inside tool-call arguments every key and value is the model's.
        let kind = if data { KeyKind::default() } else { kind(key) };
        if !kind.protocol {
            self.out.push(OutText {
                pointer: pointer(path),
                text: key.to_string(),
                key: true,
                field: None,
            });
        }
        if !kind.skipped {
            self.walk(item, path, data || is_data(key));
        }
        path.pop();
    }
}

/// The stream field a string at `path` continues, if any: the texts a
/// client appends piece by piece, keyed by what they belong to.
fn field(route: Route, doc: &Node, path: &[Step]) -> Option<Cow<'static, str>> {
    use Step::{Index, Key};
    // No field is deeper than this: longer paths are whole texts.
    const DEEPEST: usize = 8;
    if path.len() > DEEPEST {
        return None;
    }
    let mut names = [""; DEEPEST];
    for (name, step) in names.iter_mut().zip(path) {
        *name = match step {
            Key(k) => k,
            Index(_) => "*",
        };
    }
    let keys = &names[..path.len()];
    // The `index` a choice, tool call or block declares (its position in the
    // array otherwise): interleaved choices keep their own fields.
    let index_at = |depth: usize| -> String {
        let mut node = Some(doc);
        for step in &path[..depth] {
            node = match step {
                Key(k) => node.and_then(|n| n.get(k)),
                Index(i) => node.and_then(|n| n.item(*i)),
            };
        }
        match (node.and_then(|n| n.get("index")), &path[depth - 1]) {
            (Some(Node::Number(n)), _) => n.to_string(),
            (_, Index(i)) => i.to_string(),
            (_, Key(k)) => k.to_string(),
        }
    };
    let kind = |v: &str| doc.get("type").and_then(Node::as_str) == Some(v);
    match (route.dialect(), route, keys) {
        (Dialect::Ollama, _, ["response"]) => Some("response".into()),
        (Dialect::Ollama, _, ["thinking"] | ["message", "thinking"]) => Some("thinking".into()),
        (Dialect::Ollama, _, ["message", "content"]) => Some("content".into()),
        (Dialect::Ollama, _, ["logprobs", "*", "token"]) => Some("logprobs".into()),
        (_, Route::Responses, ["delta"]) => {
            let event = doc.get("type").and_then(Node::as_str)?;
            let item = doc
                .get("item_id")
                .or_else(|| doc.get("output_index"))
                .map(Node::to_json)
                .unwrap_or_default();
            let part = doc
                .get("content_index")
                .or_else(|| doc.get("summary_index"))
                .map(Node::to_json)
                .unwrap_or_default();
            Some(format!("{event}/{item}/{part}").into())
        }
        (_, Route::Responses, ["logprobs", "*", "token"]) => {
            let item = doc.get("item_id").map(Node::to_json).unwrap_or_default();
            Some(format!("logprobs/{item}").into())
        }
        (
            Dialect::OpenAi,
            _,
            [
                "choices",
                "*",
                "delta",
                f @ ("content" | "reasoning" | "reasoning_content" | "refusal"),
            ],
        ) => Some(format!("{}/{f}", index_at(2)).into()),
        (
            Dialect::OpenAi,
            _,
            [
                "choices",
                "*",
                "delta",
                "tool_calls",
                "*",
                "function",
                "arguments",
            ],
        ) => Some(format!("{}/tool/{}/arguments", index_at(2), index_at(5)).into()),
        (Dialect::OpenAi, _, ["choices", "*", "text"]) => {
            Some(format!("{}/text", index_at(2)).into())
        }
        (
            Dialect::OpenAi,
            _,
            [
                "choices",
                "*",
                "logprobs",
                f @ ("content" | "refusal"),
                "*",
                "token",
            ],
        ) => Some(format!("{}/logprobs/{f}", index_at(2)).into()),
        (Dialect::OpenAi, _, ["choices", "*", "logprobs", "tokens", "*"]) => {
            Some(format!("{}/logprobs", index_at(2)).into())
        }
        (Dialect::Anthropic, _, ["delta", f @ ("text" | "thinking" | "partial_json")])
            if kind("content_block_delta") =>
        {
            let block = doc.get("index").map(Node::to_json).unwrap_or_default();
            Some(format!("{block}/{f}").into())
        }
        _ => None,
    }
}

/// Whether this frame ends the reply: Ollama's `done: true`, the Responses
/// API's terminal events, Anthropic's `message_stop`. (OpenAI's chat and
/// completions streams end with `data: [DONE]`: a `finish_reason` ends one
/// choice only.)
pub fn is_final_frame(route: Route, frame: &Node) -> bool {
    let kind = || frame.get("type").and_then(Node::as_str);
    match (route.dialect(), route) {
        (Dialect::Ollama, _) => frame.get("done").and_then(Node::as_bool) == Some(true),
        (_, Route::Responses) => matches!(
            kind(),
            Some("response.completed" | "response.failed" | "response.incomplete")
        ),
        (Dialect::OpenAi, _) => false,
        (Dialect::Anthropic, _) => kind() == Some("message_stop"),
    }
}

/// What the client gets only when the operator allows it: Ollama's output
/// `context` (token ids that encode the reply, so they would carry it past
/// the scan; kept with `guard.allow_context`) and `_debug_info` (the
/// rendered prompt of `_debug_render_only`; kept with
/// `guard.allow_debug_info`, and then scanned like all output).
#[derive(Clone, Copy, Debug, Default)]
pub struct Withheld {
    pub allow_context: bool,
    pub allow_debug_info: bool,
}

impl Withheld {
    /// Whether the top-level `key` is removed.
    pub fn removes(self, key: &str) -> bool {
        match key {
            "context" => !self.allow_context,
            "_debug_info" => !self.allow_debug_info,
            _ => false,
        }
    }

    /// Whether `doc` has something to remove.
    pub fn finds(self, doc: &Node) -> bool {
        matches!(doc, Node::Object(pairs) if pairs.iter().any(|(k, _)| self.removes(k)))
    }

    /// Removes it; true when something was removed.
    pub fn strip(self, doc: &mut Value) -> bool {
        let Some(map) = doc.as_object_mut() else {
            return false;
        };
        let before = map.len();
        map.retain(|k, _| !self.removes(k));
        map.len() != before
    }
}
