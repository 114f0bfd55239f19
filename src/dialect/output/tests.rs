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
        .map(|t| (t.text, t.field.map(Cow::into_owned)))
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
    let a = json!({"choices": [{"index": 1, "delta": {"content": "x"}, "finish_reason": null}]});
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
    let done = json!({"type": "response.output_text.done", "item_id": "msg_1", "text": "whole"});
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
    let err = texts_of(Route::Generate, &json!({"response": ["bad", "word"]})).expect_err("array");
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

#[test]
fn pointers_escape_tilde_and_slash_in_keys() {
    let doc = json!({"response": "", "a/b": {"c~d": ["x", {"plain": "y"}]}});
    let got: Vec<(String, String)> = texts_of(Route::Generate, &doc)
        .expect("well typed")
        .into_iter()
        .map(|t| (t.pointer.into_owned(), t.text))
        .collect();
    assert_eq!(
        got,
        vec![
            ("/a~1b".into(), "a/b".into()),
            ("/a~1b/c~0d".into(), "c~d".into()),
            ("/a~1b/c~0d/0".into(), "x".into()),
            ("/a~1b/c~0d/1/plain".into(), "plain".into()),
            ("/a~1b/c~0d/1/plain".into(), "y".into()),
        ]
    );
}

#[test]
fn static_pointers_are_the_built_ones() {
    use Step::Key;
    for path in [
        &[Key("response")][..],
        &[Key("thinking")],
        &[Key("message"), Key("content")],
        &[Key("message"), Key("thinking")],
    ] {
        assert!(matches!(pointer(path), Cow::Borrowed(_)), "{path:?}");
        assert_eq!(pointer(path), built(path), "{path:?}");
    }
    let other = [Key("message"), Key("tool_calls"), Step::Index(0)];
    assert_eq!(pointer(&other), "/message/tool_calls/0");
}
