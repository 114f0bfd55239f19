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

/// Every text of `doc` (a whole response or one stream frame) on `route`;
/// an error when a field the client appends is not a string (a client
/// would join or stringify it in ways no scan saw).
pub fn texts(route: Route, doc: &Value) -> Result<Vec<OutText>, String> {
    let mut out = Vec::new();
    let mut path = Vec::new();
    let mut wrong = None;
    walk(route, doc, doc, &mut path, false, &mut out, &mut wrong);
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

fn walk<'a>(
    route: Route,
    doc: &Value,
    value: &'a Value,
    path: &mut Vec<Step<'a>>,
    data: bool,
    out: &mut Vec<OutText>,
    wrong: &mut Option<String>,
) {
    if matches!(value, Value::Array(_) | Value::Object(_)) && field(route, doc, path).is_some() {
        *wrong = Some(pointer(path));
        return;
    }
    stacker::maybe_grow(64 * 1024, 1024 * 1024, || match value {
        Value::String(s) => {
            if !s.is_empty() {
                out.push(OutText {
                    pointer: pointer(path),
                    text: s.clone(),
                    key: false,
                    field: field(route, doc, path),
                });
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(Step::Index(i));
                walk(route, doc, item, path, data, out, wrong);
                path.pop();
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                path.push(Step::Key(key));
                if data || !PROTOCOL_KEYS.contains(&key.as_str()) {
                    out.push(OutText {
                        pointer: pointer(path),
                        text: key.clone(),
                        key: true,
                        field: None,
                    });
                }
                if data || !SKIPPED_VALUES.contains(&key.as_str()) {
                    walk(route, doc, item, path, data || is_data(key), out, wrong);
                }
                path.pop();
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    });
}

/// The stream field a string at `path` continues, if any: the texts a
/// client appends piece by piece, keyed by what they belong to.
fn field(route: Route, doc: &Value, path: &[Step]) -> Option<String> {
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
        let mut node = doc;
        for step in &path[..depth] {
            node = match step {
                Key(k) => &node[*k],
                Index(i) => &node[*i],
            };
        }
        match (node.get("index"), &path[depth - 1]) {
            (Some(Value::Number(n)), _) => n.to_string(),
            (_, Index(i)) => i.to_string(),
            (_, Key(k)) => k.to_string(),
        }
    };
    let kind = |v: &str| doc.get("type").and_then(Value::as_str) == Some(v);
    match (route.dialect(), route, keys) {
        (Dialect::Ollama, _, [f @ ("response" | "thinking")]) => Some((*f).into()),
        (Dialect::Ollama, _, ["message", f @ ("content" | "thinking")]) => Some((*f).into()),
        (Dialect::Ollama, _, ["logprobs", "*", "token"]) => Some("logprobs".into()),
        (_, Route::Responses, ["delta"]) => {
            let event = doc.get("type").and_then(Value::as_str)?;
            let item = doc
                .get("item_id")
                .or_else(|| doc.get("output_index"))
                .map(Value::to_string)
                .unwrap_or_default();
            let part = doc
                .get("content_index")
                .or_else(|| doc.get("summary_index"))
                .map(Value::to_string)
                .unwrap_or_default();
            Some(format!("{event}/{item}/{part}"))
        }
        (_, Route::Responses, ["logprobs", "*", "token"]) => {
            let item = doc.get("item_id").map(Value::to_string).unwrap_or_default();
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
            let block = doc.get("index").map(Value::to_string).unwrap_or_default();
            Some(format!("{block}/{f}"))
        }
        _ => None,
    }
}

/// Whether this frame ends the reply: Ollama's `done: true`, the Responses
/// API's terminal events, Anthropic's `message_stop`. (OpenAI's chat and
/// completions streams end with `data: [DONE]`: a `finish_reason` ends one
/// choice only.)
pub fn is_final_frame(route: Route, frame: &Value) -> bool {
    let kind = frame.get("type").and_then(Value::as_str);
    match (route.dialect(), route) {
        (Dialect::Ollama, _) => frame.get("done").and_then(Value::as_bool) == Some(true),
        (_, Route::Responses) => matches!(
            kind,
            Some("response.completed" | "response.failed" | "response.incomplete")
        ),
        (Dialect::OpenAi, _) => false,
        (Dialect::Anthropic, _) => kind == Some("message_stop"),
    }
}

/// Removes what the client gets only when the operator allows it: Ollama's
/// output `context` (token ids that encode the reply, so they would carry
/// it past the scan; kept with `guard.allow_context`) and `_debug_info`
/// (the rendered prompt of `_debug_render_only`; kept with
/// `guard.allow_debug_info`, and then scanned like all output). True when
/// something was removed.
pub fn strip(doc: &mut Value, allow_context: bool, allow_debug_info: bool) -> bool {
    let Some(map) = doc.as_object_mut() else {
        return false;
    };
    let context = !allow_context && map.shift_remove("context").is_some();
    let debug = !allow_debug_info && map.shift_remove("_debug_info").is_some();
    context || debug
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(route: Route, doc: Value) -> Vec<(String, Option<String>)> {
        texts(route, &doc)
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
        let err = texts(Route::Generate, &json!({"response": ["bad", "word"]})).expect_err("array");
        assert!(err.contains("/response"), "{err}");
        assert!(
            texts(
                Route::OpenAiChat,
                &json!({"choices": [{"delta": {"content": {"a": 1}}}]})
            )
            .is_err()
        );
        assert!(
            texts(
                Route::OpenAiChat,
                &json!({"choices": [{"delta": {"content": null}}]})
            )
            .is_ok()
        );
    }

    #[test]
    fn final_frames_per_route() {
        assert!(is_final_frame(Route::Chat, &json!({"done": true})));
        assert!(!is_final_frame(
            Route::OpenAiChat,
            &json!({"choices": [{"finish_reason": "stop"}]})
        ));
        assert!(is_final_frame(
            Route::Responses,
            &json!({"type": "response.completed"})
        ));
        assert!(is_final_frame(
            Route::AnthropicMessages,
            &json!({"type": "message_stop"})
        ));
    }

    #[test]
    fn context_and_debug_info_are_stripped_unless_allowed() {
        let frame = json!({"response": "", "done": true, "context": [1, 2], "_debug_info": {"rendered_template": "x"}});
        let mut a = frame.clone();
        assert!(strip(&mut a, false, false));
        assert_eq!(a, json!({"response": "", "done": true}));
        let mut b = frame.clone();
        assert!(!strip(&mut b, true, true));
        assert_eq!(b, frame);
    }
}
