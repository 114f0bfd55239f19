use super::*;
use serde_json::json;

fn texts(segments: &[Segment]) -> Vec<(&str, &str)> {
    segments
        .iter()
        .map(|s| (s.pointer.as_str(), s.text.as_str()))
        .collect()
}

#[test]
fn generate_scans_prompt_system_suffix_and_template() {
    let body =
        json!({"model": "m", "prompt": "p", "system": "s", "suffix": "x", "images": ["AAAA"]});
    let segs = Route::Generate.input_segments(&body).expect("valid");
    assert_eq!(
        texts(&segs),
        vec![("/system", "s"), ("/prompt", "p"), ("/suffix", "x")]
    );
    let bad = json!({"model": "m", "prompt": ["p"]});
    assert_eq!(
        Route::Generate.input_segments(&bad).err().as_deref(),
        Some("`prompt` must be a string")
    );
}

#[test]
fn chat_scans_every_role_and_tool_call_arguments_but_not_images() {
    let body = json!({"model": "m", "messages": [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "hi", "images": ["AAAA"]},
        {"role": "assistant", "content": "", "tool_calls": [
            {"function": {"name": "f", "arguments": {"city": "Paris", "type": "t", "nested": ["deep"]}}}]},
        {"role": "tool", "content": "result", "tool_name": "f"},
    ]});
    let segs = Route::Chat.input_segments(&body).expect("valid");
    assert_eq!(
        texts(&segs),
        vec![
            ("/messages/0/content", "sys"),
            ("/messages/1/content", "hi"),
            ("/messages/2/tool_calls/0/function/name", "f"),
            ("/messages/2/tool_calls/0/function/arguments/city", "Paris"),
            ("/messages/2/tool_calls/0/function/arguments/type", "t"),
            (
                "/messages/2/tool_calls/0/function/arguments/nested/0",
                "deep"
            ),
            ("/messages/3/content", "result"),
            ("/messages/3/tool_name", "f"),
        ]
    );
}

#[test]
fn openai_chat_scans_string_and_array_content() {
    let body = json!({"model": "m", "messages": [
        {"role": "user", "content": [
            {"type": "text", "text": "part one"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            {"type": "text", "text": "part two"}]},
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"q\":\"x\"}"}}]},
    ]});
    let segs = Route::OpenAiChat.input_segments(&body).expect("valid");
    assert_eq!(
        texts(&segs),
        vec![
            ("/messages/0/content/0/text", "part one"),
            ("/messages/0/content/2/text", "part two"),
            ("/messages/1/tool_calls/0/function/name", "f"),
            (
                "/messages/1/tool_calls/0/function/arguments",
                "{\"q\":\"x\"}"
            ),
        ]
    );
}

#[test]
fn completions_prompt_may_be_a_list_but_not_tokens() {
    let body = json!({"prompt": ["a", "b"]});
    let segs = Route::OpenAiCompletions
        .input_segments(&body)
        .expect("valid");
    assert_eq!(texts(&segs), vec![("/prompt/0", "a"), ("/prompt/1", "b")]);
    assert!(
        Route::OpenAiCompletions
            .input_segments(&json!({"prompt": [1, 2]}))
            .is_err()
    );
}

#[test]
fn shapes_that_would_hide_text_are_rejected() {
    assert!(
        Route::Chat
            .input_segments(&json!({"messages": "hi"}))
            .is_err()
    );
    assert!(
        Route::Chat
            .input_segments(&json!({"messages": ["hi"]}))
            .is_err()
    );
    assert!(Route::Chat.input_segments(&json!(["hi"])).is_err());
    assert!(
        Route::Embed
            .input_segments(&json!({"input": {"a": "b"}}))
            .is_err()
    );
}

#[test]
fn output_text_covers_thinking_content_and_tool_arguments() {
    let chat = json!({"message": {"role": "assistant", "content": "c", "thinking": "t",
        "tool_calls": [{"function": {"name": "f", "arguments": {"a": "v"}}}]}, "done": true});
    let segs = Route::Chat.output_segments(&chat);
    assert_eq!(segs.len(), 4);
    let generate = json!({"response": "r", "thinking": "t", "done": false});
    assert_eq!(
        texts(&Route::Generate.frame_segments(&generate)),
        vec![("/thinking", "t"), ("/response", "r")]
    );
    let chunk = json!({"choices": [{"index": 0, "delta": {"role": "assistant", "content": "d"}, "finish_reason": null}]});
    assert_eq!(
        texts(&Route::OpenAiChat.frame_segments(&chunk)),
        vec![("/choices/0/delta/content", "d")]
    );
    assert!(!Route::OpenAiChat.is_final_frame(&chunk));
}

#[test]
fn rewrites_land_at_their_pointers() {
    let mut body = json!({"messages": [{"role": "user", "content": "my key sk-1"}]});
    apply_rewrites(
        &mut body,
        &[("/messages/0/content".into(), "my key [X]".into())],
    );
    assert_eq!(body["messages"][0]["content"], "my key [X]");
}

#[test]
fn stream_default_follows_each_api() {
    assert!(Route::Chat.wants_stream(&json!({})));
    assert!(!Route::Chat.wants_stream(&json!({"stream": false})));
    assert!(!Route::OpenAiChat.wants_stream(&json!({})));
}
