//! Prompts are scanned before Ollama sees them: blocks answer in the route's
//! own shape and never reach Ollama; redactions are what Ollama receives.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{FakeOllama, SCANNERS, client, config, frames, post_json as post, stack, start_proxy};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BANNED: &str = "Please KILL ALL HUMANS now";

#[tokio::test]
async fn blocked_prompt_never_reaches_ollama_on_any_route() {
    let (fake, proxy) = stack(SCANNERS).await;
    let user = json!([{"role": "user", "content": BANNED}]);
    let cases = [
        ("/api/generate", json!({"model": "m", "prompt": BANNED})),
        (
            "/api/generate",
            json!({"model": "m", "prompt": "hi", "system": BANNED}),
        ),
        ("/api/chat", json!({"model": "m", "messages": user})),
        (
            "/api/chat",
            json!({"model": "m", "messages": [{"role": "system", "content": BANNED}, {"role": "user", "content": "hi"}]}),
        ),
        (
            "/api/chat",
            json!({"model": "m", "messages": [{"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "f", "arguments": {"q": BANNED}}}]}]}),
        ),
        (
            "/v1/chat/completions",
            json!({"model": "m", "messages": user}),
        ),
        (
            "/v1/chat/completions",
            json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "ok"}, {"type": "text", "text": BANNED}]}]}),
        ),
        (
            "/v1/completions",
            json!({"model": "m", "prompt": BANNED, "suffix": "fine"}),
        ),
    ];
    for (path, body) in cases {
        let resp = post(&proxy.url, path, &body).await;
        assert_eq!(resp.status(), 400, "{path} {body}");
        assert_eq!(resp.headers()["x-guard-blocked"], "ban_substrings");
        let err: Value = resp.json().await.unwrap();
        let message = if path.starts_with("/v1") {
            assert_eq!(err["error"]["type"], "invalid_request_error");
            assert_eq!(err["error"]["code"], "content_blocked");
            err["error"]["message"].as_str().unwrap().to_string()
        } else {
            err["error"].as_str().unwrap().to_string()
        };
        assert!(message.contains("ban_substrings"), "{message}");
        assert!(
            !message.to_lowercase().contains("kill"),
            "the matched text is never echoed: {message}"
        );
    }
    assert_eq!(fake.call_count(), 0);
}

#[tokio::test]
async fn invisible_characters_block_and_clean_prompts_pass() {
    let (fake, proxy) = stack(SCANNERS).await;
    let hidden = json!({"model": "m", "prompt": "hello\u{E0069}\u{E0067}", "stream": false});
    let resp = post(&proxy.url, "/api/generate", &hidden).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.headers()["x-guard-blocked"], "invisible_text");
    let clean = json!({"model": "m", "prompt": "What colour is the sky?", "stream": false});
    let resp = post(&proxy.url, "/api/generate", &clean).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(fake.call_count(), 1);
}

#[tokio::test]
async fn block_status_is_configurable() {
    let fake = FakeOllama::start().await;
    let proxy = start_proxy(config(
        &fake.url,
        &format!("{SCANNERS}\nguard:\n  block_status: 451\n"),
    ))
    .await;
    let resp = post(
        &proxy.url,
        "/api/generate",
        &json!({"model": "m", "prompt": BANNED}),
    )
    .await;
    assert_eq!(resp.status(), 451);
}

#[tokio::test]
async fn redacted_text_is_what_ollama_receives_in_every_dialect() {
    let (fake, proxy) = stack(SCANNERS).await;
    let secret = "use key sk-ABCDEF123456 please";
    let cases = [
        (
            "/api/generate",
            json!({"model": "m", "prompt": secret, "stream": false}),
            "/prompt",
        ),
        (
            "/api/chat",
            json!({"model": "m", "messages": [{"role": "user", "content": secret}], "stream": false}),
            "/messages/0/content",
        ),
        (
            "/v1/chat/completions",
            json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": secret}]}]}),
            "/messages/0/content/0/text",
        ),
        (
            "/v1/completions",
            json!({"model": "m", "prompt": secret}),
            "/prompt",
        ),
    ];
    for (i, (path, body, pointer)) in cases.into_iter().enumerate() {
        let resp = post(&proxy.url, path, &body).await;
        assert_eq!(resp.status(), 200, "{path}");
        let received = fake.calls()[i].json();
        assert_eq!(
            received.pointer(pointer).unwrap(),
            "use key [REDACTED_KEY] please",
            "{path}"
        );
        assert!(
            !String::from_utf8_lossy(&fake.calls()[i].body).contains("sk-ABCDEF"),
            "{path}"
        );
        assert_eq!(received["model"], "m", "the rest of the body is kept");
    }
}

#[tokio::test]
async fn untouched_bodies_reach_ollama_byte_exact() {
    let (fake, proxy) = stack(SCANNERS).await;
    let raw =
        r#"{ "model":"m",  "prompt":"hi", "options": {"temperature": 0.1}, "stream": false }"#;
    client()
        .post(format!("{}/api/generate", proxy.url))
        .body(raw)
        .send()
        .await
        .unwrap();
    assert_eq!(fake.calls()[0].body, raw.as_bytes());
}

#[tokio::test]
async fn inline_mode_answers_200_in_the_routes_own_shape() {
    let fake = FakeOllama::start().await;
    let yaml =
        format!("{SCANNERS}\nguard:\n  block_response: inline\n  inline_message: Sorry, no.\n");
    let proxy = start_proxy(config(&fake.url, &yaml)).await;
    let user = json!([{"role": "user", "content": BANNED}]);

    let resp = post(
        &proxy.url,
        "/api/chat",
        &json!({"model": "m", "messages": user, "stream": false}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-guard-blocked"], "ban_substrings");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["message"]["content"], "Sorry, no.");
    assert_eq!(body["done"], true);

    let resp = post(
        &proxy.url,
        "/api/generate",
        &json!({"model": "m", "prompt": BANNED}),
    )
    .await;
    assert_eq!(resp.headers()["content-type"], "application/x-ndjson");
    let lines = frames(&resp.text().await.unwrap());
    assert_eq!(
        (
            lines.len(),
            lines[0]["response"].as_str(),
            lines[0]["done"].as_bool()
        ),
        (1, Some("Sorry, no."), Some(true))
    );

    let resp = post(
        &proxy.url,
        "/v1/chat/completions",
        &json!({"model": "m", "messages": user, "stream": true}),
    )
    .await;
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let text = resp.text().await.unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"));
    let chunks = frames(&text);
    assert_eq!(chunks[0]["choices"][0]["delta"]["content"], "Sorry, no.");
    assert_eq!(chunks[0]["choices"][0]["finish_reason"], "content_filter");

    let resp = post(
        &proxy.url,
        "/v1/chat/completions",
        &json!({"model": "m", "messages": user}),
    )
    .await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["message"]["content"], "Sorry, no.");
    assert_eq!(fake.call_count(), 0);
}

#[tokio::test]
async fn embeddings_are_scanned_only_when_asked() {
    let (fake, proxy) = stack(SCANNERS).await;
    let body = json!({"model": "m", "input": BANNED});
    assert_eq!(post(&proxy.url, "/api/embed", &body).await.status(), 200);
    let fake2 = FakeOllama::start().await;
    let strict = start_proxy(config(
        &fake2.url,
        &format!("{SCANNERS}\nguard:\n  scan_embeddings: true\n"),
    ))
    .await;
    for (path, body) in [
        ("/api/embed", json!({"model": "m", "input": ["ok", BANNED]})),
        ("/api/embeddings", json!({"model": "m", "prompt": BANNED})),
        ("/v1/embeddings", json!({"model": "m", "input": BANNED})),
    ] {
        assert_eq!(post(&strict.url, path, &body).await.status(), 400, "{path}");
    }
    assert_eq!((fake.call_count(), fake2.call_count()), (1, 0));
}

#[tokio::test]
async fn malformed_bodies_get_clear_400s_in_the_routes_shape() {
    let (fake, proxy) = stack(SCANNERS).await;
    let send = |path: &'static str, body: &'static str| {
        let url = format!("{}{path}", proxy.url);
        async move { client().post(url).body(body).send().await.unwrap() }
    };
    let resp = send("/api/chat", "{not json").await;
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await.unwrap();
    assert!(
        err["error"].as_str().unwrap().starts_with("invalid JSON"),
        "{err}"
    );

    let resp = send("/v1/chat/completions", r#"{"model":"m","messages":"hi"}"#).await;
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(
        err["error"]["message"],
        "invalid request: `messages` must be a list"
    );

    for (path, body) in [
        ("/api/generate", r#"{"model":"m","prompt":42}"#),
        ("/api/chat", r#"[1,2]"#),
        ("/v1/completions", r#"{"prompt":[1,2,3]}"#),
        ("/api/chat", ""),
    ] {
        assert_eq!(send(path, body).await.status(), 400, "{path} {body}");
    }
    assert_eq!(fake.call_count(), 0);
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let fake = FakeOllama::start().await;
    let proxy = start_proxy(config(
        &fake.url,
        &format!("{SCANNERS}\nserver:\n  max_body_bytes: 1000\n"),
    ))
    .await;
    let big = json!({"model": "m", "prompt": "x".repeat(2000)});
    let resp = post(&proxy.url, "/api/generate", &big).await;
    assert_eq!(resp.status(), 413);
    let err: Value = resp.json().await.unwrap();
    assert!(
        err["error"].as_str().unwrap().contains("1000-byte limit"),
        "{err}"
    );
    let resp = post(&proxy.url, "/api/create", &big).await;
    assert_eq!(
        resp.status(),
        413,
        "pass-through routes with a declared length are limited too"
    );
    let resp = client()
        .post(format!("{}/api/blobs/sha256:{}", proxy.url, "a".repeat(64)))
        .body(vec![0u8; 5000])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "blob uploads are not limited");
    assert_eq!(fake.call_count(), 1);

    // A declared length over the limit is answered before the body comes: the
    // client sends headers and 10 bytes, and keeps the connection open.
    for path in ["/api/chat", "/v1/chat/completions", "/api/create"] {
        let addr = proxy.url.trim_start_matches("http://");
        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 50000000\r\n\r\n{{\"model\":"
        );
        conn.write_all(head.as_bytes()).await.unwrap();
        let mut reply = vec![0u8; 1024];
        // Not a timing check: without the early answer this would wait for
        // 50 MB that never come, and the 10 s bound would fail the test.
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), conn.read(&mut reply))
            .await
            .unwrap_or_else(|_| panic!("{path}: no answer before the body"))
            .unwrap();
        let text = String::from_utf8_lossy(&reply[..n]);
        assert!(text.starts_with("HTTP/1.1 413"), "{path}: {text}");
        assert!(text.contains("1000-byte limit"), "{path}: {text}");
    }
    assert_eq!(fake.call_count(), 1);
}
