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

use serde_json::Value;

use super::tree::Node;
use super::{Dialect, Route};

/// One text of model output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutText {
    /// RFC 6901 pointer of the string (for a key: of the value under it).
    pub pointer: String,
    pub text: String,
    /// The text is an object key.
    pub key: bool,
    /// The stream field this piece continues; `None` for a whole text.
    pub field: Option<String>,
}

/// Values never scanned, by the key they sit under (outside tool-call
/// arguments, where every string is the model's). None of them is text the
/// model wrote:
/// - `model`, `id`, `object`, `created_at`, `system_fingerprint`,
///   `item_id`, `call_id`, `tool_call_id`, `previous_response_id`: names
///   and identifiers the server assigns;
/// - `type`, `role`, `status`, `done_reason`, `finish_reason`,
///   `stop_reason`, `service_tier`: enumerations;
/// - `stop_sequence`: one of the client's own stop strings;
/// - `signature`, `encrypted_content`: opaque tokens the client sends back
///   (base64; a secrets scanner would read them as keys);
/// - `images`: base64 media.
pub const SKIPPED_VALUES: &[&str] = &[
    "model",
    "id",
    "object",
    "created_at",
    "system_fingerprint",
    "item_id",
    "call_id",
    "tool_call_id",
    "previous_response_id",
    "type",
    "role",
    "status",
    "done_reason",
    "finish_reason",
    "stop_reason",
    "service_tier",
    "stop_sequence",
    "signature",
    "encrypted_content",
    "images",
];

/// Keys of the four APIs' responses: protocol, not data, so not scanned.
/// Any other key (an unknown field, a tool-call argument name) is.
const PROTOCOL_KEYS: &[&str] = &[
    // Ollama
    "model",
    "created_at",
    "response",
    "thinking",
    "message",
    "role",
    "content",
    "images",
    "tool_calls",
    "function",
    "name",
    "arguments",
    "index",
    "done",
    "done_reason",
    "context",
    "total_duration",
    "load_duration",
    "prompt_eval_count",
    "prompt_eval_duration",
    "eval_count",
    "eval_duration",
    "logprobs",
    "token",
    "logprob",
    "bytes",
    "top_logprobs",
    "tool_name",
    "id",
    "error",
    "remote_model",
    "remote_host",
    "_debug_info",
    // OpenAI chat and completions
    "object",
    "created",
    "system_fingerprint",
    "choices",
    "delta",
    "finish_reason",
    "usage",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "refusal",
    "reasoning",
    "reasoning_content",
    "type",
    "text",
    "tokens",
    "token_logprobs",
    "text_offset",
    "service_tier",
    "completion_tokens_details",
    "prompt_tokens_details",
    "reasoning_tokens",
    "cached_tokens",
    "annotations",
    "audio",
    "tool_call_id",
    // Responses
    "sequence_number",
    "output_index",
    "content_index",
    "item_id",
    "item",
    "part",
    "output",
    "status",
    "incomplete_details",
    "reason",
    "instructions",
    "input_tokens",
    "output_tokens",
    "input_tokens_details",
    "output_tokens_details",
    "summary",
    "call_id",
    "code",
    "param",
    "metadata",
    "tools",
    "tool_choice",
    "temperature",
    "top_p",
    "max_output_tokens",
    "previous_response_id",
    "parallel_tool_calls",
    "truncation",
    "user",
    "store",
    "effort",
    "format",
    "verbosity",
    "obfuscation",
    "background",
    "encrypted_content",
    "summary_index",
    // Anthropic
    "stop_reason",
    "stop_sequence",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "content_block",
    "signature",
    "partial_json",
    "input",
    "citations",
    "server_tool_use",
];

/// The two lists as sets: every key of every frame is looked up in them.
/// foldhash, because SipHash made these lookups a sixth of a stream's time
/// (the sets are fixed, so a fast hash risks no flooding).
mod lookup {
    use std::sync::LazyLock;

    use foldhash::HashSet;

    static PROTOCOL: LazyLock<HashSet<&str>> =
        LazyLock::new(|| super::PROTOCOL_KEYS.iter().copied().collect());
    static SKIPPED: LazyLock<HashSet<&str>> =
        LazyLock::new(|| super::SKIPPED_VALUES.iter().copied().collect());

    pub fn is_protocol_key(key: &str) -> bool {
        PROTOCOL.contains(key)
    }

    pub fn is_skipped_value(key: &str) -> bool {
        SKIPPED.contains(key)
    }
}

/// Every text of `doc` (a whole response or one stream frame) on `route`,
/// but those under the keys `withheld` removes; an error when a field the
/// client appends is not a string (a client would join or stringify it in
/// ways no scan saw).
pub fn texts(route: Route, doc: &Node, withheld: Withheld) -> Result<Vec<OutText>, String> {
    let mut out = Vec::new();
    let mut path = Vec::new();
    let mut wrong = None;
    let mut walker = Walker {
        route,
        doc,
        out: &mut out,
        wrong: &mut wrong,
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
    match wrong {
        Some(p) => Err(format!("`{p}` is not a string")),
        None => Ok(out),
    }
}

/// One step of a pointer: an object key (borrowed from the document) or
/// an array index.
#[derive(Clone, Copy, Debug)]
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// The RFC 6901 pointer of `path`, built in one buffer.
fn pointer(path: &[Step]) -> String {
    use std::fmt::Write;
    let mut p = String::with_capacity(path.len() * 8);
    for step in path {
        p.push('/');
        match step {
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
struct Walker<'d, 'o> {
    route: Route,
    doc: &'d Node<'d>,
    out: &'o mut Vec<OutText>,
    wrong: &'o mut Option<String>,
}

impl<'d> Walker<'d, '_> {
    fn walk(&mut self, value: &'d Node<'d>, path: &mut Vec<Step<'d>>, data: bool) {
        if matches!(value, Node::Array(_) | Node::Object(_))
            && field(self.route, self.doc, path).is_some()
        {
            *self.wrong = Some(pointer(path));
            return;
        }
        stacker::maybe_grow(64 * 1024, 1024 * 1024, || match value {
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
            Node::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    path.push(Step::Index(i));
                    self.walk(item, path, data);
                    path.pop();
                }
            }
            Node::Object(pairs) => {
                for (key, item) in pairs {
                    self.member(key, item, path, data);
                }
            }
            Node::Null | Node::Bool(_) | Node::Number(_) => {}
        });
    }

    /// One key of an object and the value under it.
    fn member(&mut self, key: &'d str, item: &'d Node<'d>, path: &mut Vec<Step<'d>>, data: bool) {
        path.push(Step::Key(key));
        if data || !lookup::is_protocol_key(key) {
            self.out.push(OutText {
                pointer: pointer(path),
                text: key.to_string(),
                key: true,
                field: None,
            });
        }
        if data || !lookup::is_skipped_value(key) {
            self.walk(item, path, data || is_data(key));
        }
        path.pop();
    }
}

/// The stream field a string at `path` continues, if any: the texts a
/// client appends piece by piece, keyed by what they belong to.
fn field(route: Route, doc: &Node, path: &[Step]) -> Option<String> {
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
        (Dialect::Ollama, _, [f @ ("response" | "thinking")]) => Some((*f).into()),
        (Dialect::Ollama, _, ["message", f @ ("content" | "thinking")]) => Some((*f).into()),
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
            Some(format!("{event}/{item}/{part}"))
        }
        (_, Route::Responses, ["logprobs", "*", "token"]) => {
            let item = doc.get("item_id").map(Node::to_json).unwrap_or_default();
            Some(format!("logprobs/{item}"))
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
        ) => Some(format!("{}/{f}", index_at(2))),
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
        ) => Some(format!("{}/tool/{}/arguments", index_at(2), index_at(5))),
        (Dialect::OpenAi, _, ["choices", "*", "text"]) => Some(format!("{}/text", index_at(2))),
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
        ) => Some(format!("{}/logprobs/{f}", index_at(2))),
        (Dialect::OpenAi, _, ["choices", "*", "logprobs", "tokens", "*"]) => {
            Some(format!("{}/logprobs", index_at(2)))
        }
        (Dialect::Anthropic, _, ["delta", f @ ("text" | "thinking" | "partial_json")])
            if kind("content_block_delta") =>
        {
            let block = doc.get("index").map(Node::to_json).unwrap_or_default();
            Some(format!("{block}/{f}"))
        }
        _ => None,
    }
}

/// Whether this frame ends the reply: Ollama's `done: true`, the Responses
/// API's terminal events, Anthropic's `message_stop`. (OpenAI's chat and
/// completions streams end with `data: [DONE]`: a `finish_reason` ends one
/// choice only.)
pub fn is_final_frame(route: Route, frame: &Node) -> bool {
    let kind = frame.get("type").and_then(Node::as_str);
    match (route.dialect(), route) {
        (Dialect::Ollama, _) => frame.get("done").and_then(Node::as_bool) == Some(true),
        (_, Route::Responses) => matches!(
            kind,
            Some("response.completed" | "response.failed" | "response.incomplete")
        ),
        (Dialect::OpenAi, _) => false,
        (Dialect::Anthropic, _) => kind == Some("message_stop"),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::tree::Tree;
    use serde_json::json;

    fn texts_of(route: Route, doc: &Value) -> Result<Vec<OutText>, String> {
        let raw = doc.to_string();
        let tree = Tree::parse(raw.as_bytes()).expect("json");
        texts(route, &tree.root, Withheld::default())
    }

    fn fields(route: Route, doc: Value) -> Vec<(String, Option<String>)> {
        texts_of(route, &doc)
            .expect("well typed")
            .into_iter()
            .map(|t| (t.text, t.field))
            .collect()
    }

    fn some(s: &str) -> Option<String> {
        Some(s.to_string())
    }

    #[test]
    fn ollama_fields_and_whole_texts() {
        let frame = json!({"model": "m", "created_at": "t", "response": "r", "thinking": "k",
            "logprobs": [{"token": "r", "logprob": -0.1, "top_logprobs": [{"token": "x"}]}], "done": false});
        assert_eq!(
            fields(Route::Generate, frame),
            vec![
                ("r".into(), some("response")),
                ("k".into(), some("thinking")),
                ("r".into(), some("logprobs")),
                ("x".into(), None),
            ]
        );
        let call = json!({"message": {"role": "assistant", "content": "",
            "tool_calls": [{"function": {"name": "f", "arguments": {"sk-key": "v", "type": "t"}}}]}});
        let got = fields(Route::Chat, call);
        assert_eq!(
            got,
            vec![
                ("f".into(), None),
                ("sk-key".into(), None),
                ("v".into(), None),
                ("type".into(), None),
                ("t".into(), None),
            ],
            "argument keys and values are scanned, `type` included"
        );
    }

    #[test]
    fn unknown_keys_and_their_values_are_scanned() {
        let got = fields(
            Route::Generate,
            json!({"response": "", "extra": {"note": "hi"}}),
        );
        assert_eq!(
            got,
            vec![
                ("extra".into(), None),
                ("note".into(), None),
                ("hi".into(), None)
            ]
        );
    }

    #[test]
    fn openai_fields_follow_the_declared_choice_index() {
        let a =
            json!({"choices": [{"index": 1, "delta": {"content": "x"}, "finish_reason": null}]});
        let b = json!({"choices": [{"index": 0, "delta": {"content": "y",
            "tool_calls": [{"index": 2, "function": {"arguments": "{\"a"}}]}}]});
        assert_eq!(
            fields(Route::OpenAiChat, a),
            vec![("x".into(), some("1/content"))]
        );
        assert_eq!(
            fields(Route::OpenAiChat, b),
            vec![
                ("y".into(), some("0/content")),
                ("{\"a".into(), some("0/tool/2/arguments"))
            ]
        );
        let lp = json!({"choices": [{"index": 0, "text": "t", "logprobs": {"tokens": ["t"], "top_logprobs": [{"t": -1.0}]}}]});
        assert_eq!(
            fields(Route::OpenAiCompletions, lp),
            vec![
                ("t".into(), some("0/text")),
                ("t".into(), some("0/logprobs")),
                ("t".into(), None),
            ],
            "a top-logprobs map's keys are tokens"
        );
    }

    #[test]
    fn responses_and_anthropic_deltas_are_keyed_by_item_and_block() {
        let ev = json!({"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 0, "content_index": 0, "delta": "y"});
        assert_eq!(
            fields(Route::Responses, ev),
            vec![("y".into(), some("response.output_text.delta/\"msg_1\"/0"))]
        );
        let done =
            json!({"type": "response.output_text.done", "item_id": "msg_1", "text": "whole"});
        assert_eq!(fields(Route::Responses, done), vec![("whole".into(), None)]);
        let d = json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"q"}});
        assert_eq!(
            fields(Route::AnthropicMessages, d),
            vec![("{\"q".into(), some("1/partial_json"))]
        );
        let sig = json!({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "EqQBCgIYAhIM"}});
        assert!(fields(Route::AnthropicMessages, sig).is_empty());
    }

    #[test]
    fn appended_fields_must_be_strings() {
        let err =
            texts_of(Route::Generate, &json!({"response": ["bad", "word"]})).expect_err("array");
        assert!(err.contains("/response"), "{err}");
        assert!(
            texts_of(
                Route::OpenAiChat,
                &json!({"choices": [{"delta": {"content": {"a": 1}}}]})
            )
            .is_err()
        );
        assert!(
            texts_of(
                Route::OpenAiChat,
                &json!({"choices": [{"delta": {"content": null}}]})
            )
            .is_ok()
        );
    }

    #[test]
    fn final_frames_per_route() {
        let fin = |route, v: Value| {
            let raw = v.to_string();
            let tree = Tree::parse(raw.as_bytes()).expect("json");
            is_final_frame(route, &tree.root)
        };
        assert!(fin(Route::Chat, json!({"done": true})));
        assert!(!fin(Route::Chat, json!({"done": false})));
        assert!(!fin(
            Route::OpenAiChat,
            json!({"choices": [{"finish_reason": "stop"}]})
        ));
        assert!(fin(Route::Responses, json!({"type": "response.completed"})));
        assert!(fin(
            Route::AnthropicMessages,
            json!({"type": "message_stop"})
        ));
    }

    #[test]
    fn context_and_debug_info_are_withheld_unless_allowed() {
        let frame = json!({"response": "", "done": true, "context": [1, 2], "_debug_info": {"rendered_template": "x"}});
        let raw = frame.to_string();
        let tree = Tree::parse(raw.as_bytes()).expect("json");
        let strict = Withheld::default();
        let open = Withheld {
            allow_context: true,
            allow_debug_info: true,
        };
        assert!(strict.finds(&tree.root) && !open.finds(&tree.root));
        assert!(
            texts(Route::Generate, &tree.root, strict)
                .expect("typed")
                .is_empty(),
            "what is removed is not scanned"
        );
        let seen = texts(Route::Generate, &tree.root, open).expect("typed");
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert!(seen.iter().any(|t| t.text == "x"));
        let mut a = frame.clone();
        assert!(strict.strip(&mut a));
        assert_eq!(a, json!({"response": "", "done": true}));
        let mut b = frame.clone();
        assert!(!open.strip(&mut b));
        assert_eq!(b, frame);
    }
}
