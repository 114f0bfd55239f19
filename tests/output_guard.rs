//! Model text is scanned on the way out: whole replies before they are sent,
//! streams window by window with the final frame held until the final scan.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{
    FakeOllama, SCANNERS, StreamEnd, chunks, config, frames, post_json as post, stack, start_proxy,
};
use serde_json::{Value, json};

const SPLIT: [&str; 4] = ["Sure. We must kill", " all hu", "mans", " today."];

fn chat(stream: bool) -> Value {
    json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": stream})
}

#[tokio::test]
async fn phrase_split_over_three_ndjson_chunks_is_caught() {
    let (fake, proxy) = stack(SCANNERS).await;
    fake.reply_tokens(&SPLIT);
    let body = post(&proxy.url, "/api/chat", &chat(true))
        .await
        .text()
        .await
        .unwrap();
    let lines = frames(&body);
    let last = lines.last().unwrap();
    assert_eq!(
        last["error"],
        "blocked by ollama-guard: output flagged by ban_substrings"
    );
    let shown: String = lines
        .iter()
        .filter_map(|l| l["message"]["content"].as_str())
        .collect();
    assert!(
        !shown.contains("mans"),
        "the completing chunk is never sent: {shown:?}"
    );
    assert!(
        lines.iter().all(|l| l["done"] != true),
        "no done frame after a block"
    );
}

#[tokio::test]
async fn phrase_split_over_three_sse_chunks_is_caught() {
    let (fake, proxy) = stack(SCANNERS).await;
    fake.reply_tokens(&SPLIT);
    for path in ["/v1/chat/completions", "/v1/completions"] {
        let body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "prompt": "hi", "stream": true});
        let text = post(&proxy.url, path, &body).await.text().await.unwrap();
        assert!(text.ends_with("data: [DONE]\n\n"), "{path}: {text}");
        let chunks = frames(&text);
        let last = chunks.last().unwrap();
        assert_eq!(
            last["choices"][0]["finish_reason"], "content_filter",
            "{path}"
        );
        assert_eq!(
            last["id"], "chatcmpl-123",
            "the block chunk continues the stream's id"
        );
        assert!(!text.contains("mans"), "{path}: {text}");
        assert!(
            !text.contains("\"stop\""),
            "{path}: the upstream finish chunk is never sent"
        );
    }
}

#[tokio::test]
async fn generate_stream_block_covers_thinking_too() {
    let (fake, proxy) = stack(SCANNERS).await;
    fake.script(|s| s.thinking = vec!["I should kill all".into(), " humans".into()]);
    let text = post(
        &proxy.url,
        "/api/generate",
        &json!({"model": "m", "prompt": "hi"}),
    )
    .await
    .text()
    .await
    .unwrap();
    let lines = frames(&text);
    assert!(lines.last().unwrap()["error"].is_string(), "{text}");
    assert!(!text.contains("The sky"), "generation is cut at the block");
}

#[tokio::test]
async fn done_frame_is_never_sent_before_the_final_scan() {
    // Text that cannot start the phrase flows; the start of the phrase is
    // held, and the done frame never follows a block.
    let (fake, proxy) = stack(SCANNERS).await;
    fake.reply_tokens(&["fine ", "words ", "kill all ", "humans"]);
    let lines = frames(
        &post(&proxy.url, "/api/chat", &chat(true))
            .await
            .text()
            .await
            .unwrap(),
    );
    let shown: Vec<&str> = lines
        .iter()
        .filter_map(|l| l["message"]["content"].as_str())
        .collect();
    assert_eq!(
        shown,
        vec!["fine ", "words "],
        "the phrase's start was held: {lines:?}"
    );
    assert!(lines.last().unwrap()["error"].is_string());
    assert!(lines.iter().all(|l| l["done"] != true));

    fake.reply_tokens(&["all ", "good"]);
    let got = chunks(post(&proxy.url, "/api/chat", &chat(true)).await).await;
    let lines = frames(&got.concat());
    assert_eq!(lines.last().unwrap()["done"], true);
    assert_eq!(
        lines.last().unwrap()["eval_count"],
        5,
        "usage fields pass untouched"
    );
    let done_chunk = got
        .iter()
        .position(|c| c.contains("\"done\":true"))
        .unwrap();
    assert!(
        got[..done_chunk]
            .iter()
            .all(|c| !c.contains("\"done\":true"))
    );
}

#[tokio::test]
async fn clean_streams_pass_byte_exact() {
    let (fake, proxy) = stack(SCANNERS).await;
    for (path, body) in [
        ("/api/chat", chat(true)),
        ("/api/generate", json!({"model": "m", "prompt": "hi"})),
        ("/v1/chat/completions", chat(true)),
    ] {
        let direct = post(&fake.url, path, &body).await.text().await.unwrap();
        let proxied = post(&proxy.url, path, &body).await.text().await.unwrap();
        assert_eq!(direct, proxied, "{path}");
    }
}

#[tokio::test]
async fn secrets_in_streamed_output_are_redacted_across_chunks() {
    let fake = FakeOllama::start().await;
    fake.reply_tokens(&["your key is sk-ABCD", "EFGH1234", " ok"]);
    let shown = |text: &str| -> String {
        frames(text)
            .iter()
            .filter_map(|l| l["message"]["content"].as_str())
            .collect()
    };

    // The start of a key is held until it is known whole: no part leaks.
    let proxy = start_proxy(config(&fake.url, SCANNERS)).await;
    let got = chunks(post(&proxy.url, "/api/chat", &chat(true)).await).await;
    assert!(got.iter().all(|c| !c.contains("sk-")), "{got:?}");
    let text = got.concat();
    assert_eq!(shown(&text), "your key is [REDACTED_KEY] ok");
    assert_eq!(frames(&text).last().unwrap()["done"], true);
}

#[tokio::test]
async fn whole_replies_are_blocked_or_redacted_before_sending() {
    let (fake, proxy) = stack(SCANNERS).await;
    fake.reply_tokens(&["we will kill all humans"]);
    let resp = post(&proxy.url, "/api/chat", &chat(false)).await;
    assert_eq!(resp.status(), 502, "the request was fine: not a 4xx");
    assert_eq!(resp.headers()["x-guard-blocked"], "ban_substrings");
    assert!(
        resp.json::<Value>().await.unwrap()["error"]
            .as_str()
            .unwrap()
            .contains("output flagged")
    );

    fake.reply_tokens(&["key: sk-ABCDEFGH1234"]);
    for (path, pointer) in [
        ("/api/chat", "/message/content"),
        ("/v1/chat/completions", "/choices/0/message/content"),
    ] {
        let body: Value = post(&proxy.url, path, &chat(false))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            body.pointer(pointer).unwrap(),
            "key: [REDACTED_KEY]",
            "{path}"
        );
    }
    let body: Value = post(
        &proxy.url,
        "/api/generate",
        &json!({"model": "m", "prompt": "x", "stream": false}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(body["response"], "key: [REDACTED_KEY]");
    assert_eq!(body["eval_count"], 5);
}

#[tokio::test]
async fn a_block_mid_stream_cancels_the_upstream_generation() {
    let (fake, proxy) = stack(SCANNERS).await;
    let mut tokens = vec!["kill all humans"];
    tokens.extend(std::iter::repeat_n(" and more", 50));
    fake.reply_tokens(&tokens);
    fake.script(|s| s.token_delay = Duration::from_millis(20));
    let text = post(&proxy.url, "/api/chat", &chat(true))
        .await
        .text()
        .await
        .unwrap();
    assert!(frames(&text).last().unwrap()["error"].is_string());
    match fake.stream_end().await {
        Some(StreamEnd::Dropped { sent }) => assert!(sent < 52, "sent {sent}"),
        other => panic!("the upstream stream should have been dropped, got {other:?}"),
    }
}

#[tokio::test]
async fn a_whole_reply_keeps_a_content_length_as_ollama_sends_it() {
    // Ollama answers a non-streamed request with Content-Length; the
    // scanned reply is the same bytes, so it says its length too (a
    // wrapping middleware once turned it chunked).
    let (fake, proxy) = stack(SCANNERS).await;
    fake.reply_tokens(&["A plain ", "answer."]);
    let resp = post(&proxy.url, "/api/chat", &chat(false)).await;
    assert_eq!(resp.status(), 200);
    let declared: usize = resp.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(resp.headers().get("transfer-encoding").is_none());
    let body = resp.bytes().await.unwrap();
    assert_eq!(declared, body.len());
    let reply: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(reply["message"]["content"], "A plain answer.");
}

#[tokio::test]
async fn a_whole_reply_keeps_the_upstreams_headers_but_hop_by_hop_ones() {
    // The scanned reply carries Ollama's own headers, as they were sent:
    // its content type exactly, any other header, and not the headers
    // that describe only the upstream hop.
    let (fake, proxy) = stack(SCANNERS).await;
    let reply = json!({"model": "m", "created_at": "t", "done": true,
        "message": {"role": "assistant", "content": "A plain answer."}});
    fake.script(|s| {
        s.raw = Some(common::fake_ollama::Raw {
            status: 200,
            headers: [
                ("content-type", "application/json; charset=utf-8"),
                ("x-ollama-note", "kept"),
                ("keep-alive", "timeout=5"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .to_vec(),
            chunks: vec![reply.to_string().into_bytes()],
            end: common::fake_ollama::RawEnd::Complete,
        })
    });
    let resp = post(&proxy.url, "/api/chat", &chat(false)).await;
    assert_eq!(resp.status(), 200);
    let headers = resp.headers().clone();
    assert_eq!(headers["content-type"], "application/json; charset=utf-8");
    assert_eq!(headers["x-ollama-note"], "kept");
    assert!(headers.get("keep-alive").is_none());
    let body = resp.bytes().await.unwrap();
    assert_eq!(headers["content-length"], body.len().to_string().as_str());
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap(), reply);
}
