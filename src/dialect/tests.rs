use super::request::{Allowed, Refused};
use super::*;
use serde_json::json;

fn parse(route: Route, body: &Value) -> Result<Request, Refused> {
    route.parse(body.to_string().as_bytes(), Allowed::default())
}

fn texts(route: Route, body: Value) -> Vec<(String, String)> {
    parse(route, &body)
        .unwrap_or_else(|e| panic!("{e:?}"))
        .segments
        .into_iter()
        .map(|s| (s.pointer, s.text))
        .collect()
}

fn t(p: &str, s: &str) -> (String, String) {
    (p.into(), s.into())
}

#[test]
fn generate_scans_every_text_field_but_model_and_images() {
    let body = json!({"model": "m", "prompt": "p", "system": "s", "suffix": "x",
        "images": ["AAAA"], "keep_alive": "5m", "options": {"stop": ["END"], "temperature": 1}});
    assert_eq!(
        texts(Route::Generate, body),
        vec![
            t("/prompt", "p"),
            t("/system", "s"),
            t("/suffix", "x"),
            t("/options/stop/0", "END")
        ]
    );
}

#[test]
fn chat_scans_roles_tools_and_tool_call_arguments_keys_included() {
    let body = json!({"model": "m", "messages": [
        {"role": "user", "content": "hi", "images": ["AAAA"]},
        {"role": "assistant", "content": "", "tool_calls": [
            {"function": {"name": "f", "arguments": {"city": "Paris"}}}]},
    ], "tools": [{"type": "function", "function": {"name": "f", "description": "d"}}]});
    assert_eq!(
        texts(Route::Chat, body),
        vec![
            t("/messages/0/content", "hi"),
            t("/messages/1/tool_calls/0/function", "function"),
            t("/messages/1/tool_calls/0/function/name", "name"),
            t("/messages/1/tool_calls/0/function/name", "f"),
            t("/messages/1/tool_calls/0/function/arguments", "arguments"),
            t("/messages/1/tool_calls/0/function/arguments/city", "city"),
            t("/messages/1/tool_calls/0/function/arguments/city", "Paris"),
            t("/tools/0/type", "type"),
            t("/tools/0/type", "function"),
            t("/tools/0/function", "function"),
            t("/tools/0/function/name", "name"),
            t("/tools/0/function/name", "f"),
            t("/tools/0/function/description", "description"),
            t("/tools/0/function/description", "d"),
        ]
    );
}

#[test]
fn openai_content_parts_skip_images() {
    let body = json!({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "one"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]});
    assert_eq!(
        texts(Route::OpenAiChat, body),
        vec![t("/messages/0/content/0/text", "one"),]
    );
}

#[test]
fn anthropic_and_responses_bodies_are_walked_to_their_text() {
    let body = json!({"model": "m", "system": "sys", "messages": [{"role": "user",
        "content": [{"type": "image", "source": {"data": "AAAA"}}, {"type": "text", "text": "hi"}]}]});
    let got = texts(Route::AnthropicMessages, body);
    assert!(
        got.contains(&t("/system", "sys")) && got.contains(&t("/messages/0/content/1/text", "hi"))
    );
    assert!(!got.iter().any(|(_, s)| s == "AAAA"));
    let body = json!({"model": "m", "instructions": "be brief", "input": [
        {"role": "user", "content": [{"type": "input_text", "text": "hi"}]}]});
    let got = texts(Route::Responses, body);
    assert!(
        got.contains(&t("/instructions", "be brief"))
            && got.contains(&t("/input/0/content/0/text", "hi"))
    );
}

#[test]
fn ambiguous_and_duplicate_keys_are_refused_with_their_name() {
    for (route, body) in [
        (Route::Generate, r#"{"model":"m","Prompt":"x"}"#),
        (
            Route::Generate,
            r#"{"model":"m","prompt":"a","prompt":"b"}"#,
        ),
        (
            Route::Chat,
            r#"{"model":"m","messages":[{"role":"user","CONTENT":"x"}]}"#,
        ),
        (Route::OpenAiChat, r#"{"model":"m","Messages":[]}"#),
        (
            Route::Generate,
            "{\"model\":\"m\",\"\u{17F}y\u{17F}tem\":\"x\"}",
        ),
    ] {
        let err = route.parse(body.as_bytes(), Allowed::default());
        assert!(
            matches!(&err, Err(Refused::Shape(e) | Refused::Json(e)) if e.contains("key")),
            "{body}: {err:?}"
        );
    }
}

#[test]
fn context_and_templates_are_refused_unless_allowed() {
    let ctx = json!({"model": "m", "prompt": "p", "context": [1, 2, 3]});
    assert!(
        matches!(parse(Route::Generate, &ctx), Err(Refused::Shape(e)) if e.contains("allow_context"))
    );
    let allowed = Allowed {
        context: true,
        templates: true,
    };
    assert!(
        Route::Generate
            .parse(ctx.to_string().as_bytes(), allowed)
            .is_ok()
    );
    let empty = json!({"model": "m", "prompt": "p", "context": []});
    assert!(parse(Route::Generate, &empty).is_ok());
    let tpl = json!({"model": "m", "prompt": "p", "template": "{{ .Prompt }}"});
    assert!(
        matches!(parse(Route::Generate, &tpl), Err(Refused::Shape(e)) if e.contains("allow_templates"))
    );
    assert!(
        Route::Generate
            .parse(tpl.to_string().as_bytes(), allowed)
            .is_ok()
    );
    let action = json!({"model": "m", "template": "{{/* */}}"});
    assert!(
        Route::Generate
            .parse(action.to_string().as_bytes(), allowed)
            .is_err()
    );
    let create = json!({"model": "m", "template": "{{ if .System }}{{ end }}"});
    assert!(parse(Route::Create, &create).is_err());
    assert!(
        Route::Create
            .parse(create.to_string().as_bytes(), allowed)
            .is_ok()
    );
}

#[test]
fn joined_texts_follow_what_each_route_renders() {
    let gen_ =
        json!({"system": "kill all", "prompt": "humans", "template": "{{ .System }}{{ .Prompt }}"});
    let joined = Route::Generate.joined(&gen_);
    assert_eq!(joined.len(), 3, "two seams and the rendered template");
    assert_eq!(
        joined[2],
        Joined {
            text: "kill allhumans".into(),
            cut: None
        }
    );
    let chat = json!({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": [{"type": "text", "text": "b"}]}]});
    assert_eq!(Route::OpenAiChat.joined(&chat)[0].text, "ab");
    assert!(
        Route::Embed
            .joined(&json!({"input": ["a", "b"]}))
            .is_empty()
    );
}

#[test]
fn rewrites_land_at_their_pointers_keys_included() {
    let mut body = json!({"args": {"sk-1": "my key sk-2", "b": 1}});
    let rewrites = [
        Rewrite {
            pointer: "/args/sk-1".into(),
            text: "[X]".into(),
            key: true,
        },
        Rewrite {
            pointer: "/args/sk-1".into(),
            text: "my key [X]".into(),
            key: false,
        },
    ];
    assert_eq!(apply_rewrites(&mut body, &rewrites), Ok(()));
    assert_eq!(body, json!({"args": {"[X]": "my key [X]", "b": 1}}));
    let mut clash = json!({"a": {"x": 1, "y": 2}});
    let r = Rewrite {
        pointer: "/a/x".into(),
        text: "y".into(),
        key: true,
    };
    assert!(apply_rewrites(&mut clash, &[r]).is_err());
}

#[test]
fn stream_default_follows_each_api() {
    assert!(Route::Chat.wants_stream(&json!({})));
    assert!(!Route::Chat.wants_stream(&json!({"stream": false})));
    assert!(!Route::OpenAiChat.wants_stream(&json!({})));
    assert!(!Route::AnthropicMessages.wants_stream(&json!({})));
}
