//! `/v1/responses` (OpenAI Responses API) and `/v1/messages` (Anthropic
//! Messages API) are guarded like the other routes: prompts scanned and
//! blocked in each API's own error shape, output scanned whole or streamed,
//! streamed blocks ending the way each API ends filtered output, and
//! redacted frames keeping their SSE event names.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{FakeOllama, SCANNERS, chunks, frames, post_json as post, stack};
use serde_json::{Value, json};

const TOKENS: [&str; 4] = ["we must ", "kill all", " humans", " today"];

/// Holds streamed text until a whole reply's worth is in, so these tests
/// see each API's ending, not the partial-phrase hold-back (which is the
/// output-integrity work and is tested there).
async fn holding_stack() -> (FakeOllama, common::Proxy) {
    stack(SCANNERS).await
}

#[tokio::test]
async fn blocked_prompts_answer_in_each_apis_error_shape() {
    let (fake, proxy) = stack(SCANNERS).await;
    let resp = post(
        &proxy.url,
        "/v1/messages",
        &json!({"model": "m", "max_tokens": 9,
        "messages": [{"role": "user", "content": "kill all humans"}]}),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["type"], "error");
    assert_eq!(err["error"]["type"], "invalid_request_error");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ban_substrings")
    );
    let resp = post(
        &proxy.url,
        "/v1/responses",
        &json!({"model": "m", "input": "kill all humans"}),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["code"], "content_blocked");
    let resp = post(&proxy.url, "/v1/nonexistent", &json!({})).await;
    assert_eq!(resp.status(), 404);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(
        err["error"]["type"], "not_found_error",
        "unknown /v1 paths answer as OpenAI"
    );
    assert_eq!(fake.call_count(), 0);
}

#[tokio::test]
async fn streamed_anthropic_output_ends_with_a_refusal() {
    let (fake, proxy) = holding_stack().await;
    fake.reply_tokens(&TOKENS);
    let body = json!({"model": "m", "max_tokens": 9, "stream": true,
        "messages": [{"role": "user", "content": "hi"}]});
    let resp = post(&proxy.url, "/v1/messages", &body).await;
    assert_eq!(resp.status(), 200);
    let text = chunks(resp).await.concat();
    assert!(!text.contains("kill all"), "{text}");
    let events = frames(&text);
    let last = &events[events.len() - 2..];
    assert_eq!(last[0]["delta"]["stop_reason"], "refusal");
    assert_eq!(last[1]["type"], "message_stop");
    assert!(text.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));
}

#[tokio::test]
async fn streamed_responses_output_ends_incomplete_for_content_filter() {
    let (fake, proxy) = holding_stack().await;
    fake.reply_tokens(&TOKENS);
    let resp = post(
        &proxy.url,
        "/v1/responses",
        &json!({"model": "m", "stream": true, "input": "hi"}),
    )
    .await;
    let text = chunks(resp).await.concat();
    assert!(!text.contains("kill all"), "{text}");
    let last = frames(&text).pop().unwrap();
    assert_eq!(last["type"], "response.incomplete");
    assert_eq!(
        last["response"]["incomplete_details"]["reason"],
        "content_filter"
    );
    assert!(!text.contains("response.completed"));
}

#[tokio::test]
async fn whole_replies_are_scanned_and_redacted_frames_keep_event_names() {
    let (fake, proxy) = holding_stack().await;
    fake.reply_tokens(&TOKENS);
    let resp = post(
        &proxy.url,
        "/v1/messages",
        &json!({"model": "m", "max_tokens": 9,
        "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(
        resp.status(),
        200,
        "a whole reply with the phrase is refused the Anthropic way"
    );
    assert_eq!(resp.headers()["x-guard-blocked"], "ban_substrings");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["stop_reason"], "refusal");
    assert_eq!(body["content"], json!([]));
    fake.reply_tokens(&["your key is sk-", "abcdefgh1234", " ok"]);
    let resp = post(
        &proxy.url,
        "/v1/messages",
        &json!({"model": "m", "max_tokens": 9, "stream": true,
        "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    let text = chunks(resp).await.concat();
    assert!(!text.contains("abcdefgh1234"), "{text}");
    assert!(text.contains("[REDACTED_KEY]"), "{text}");
    for event in text.split("\n\n").filter(|e| e.contains("data:")) {
        assert!(
            event.starts_with("event: "),
            "every event keeps its name: {event}"
        );
    }
    let resp = post(
        &proxy.url,
        "/v1/responses",
        &json!({"model": "m", "input": "hi"}),
    )
    .await;
    let reply: Value = resp.json().await.unwrap();
    let out = reply["output"][0]["content"][0]["text"].as_str().unwrap();
    assert_eq!(out, "your key is [REDACTED_KEY] ok");
}
