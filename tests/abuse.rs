//! One client cannot stall the proxy: big texts are scanned on threads of
//! their own, and a scan over its time budget is a scanner error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{client, stack};
use serde_json::json;

async fn chat(url: &str, text: &str) -> reqwest::Response {
    client()
        .post(format!("{url}/api/chat"))
        .json(&json!({"model": "m", "stream": false, "messages": [{"role": "user", "content": text}]}))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_answers_while_big_prompts_keep_the_scanners_busy() {
    let (_fake, proxy) =
        stack("scanners:\n  input: [{type: delay, millis: 1500, busy: true}]\n  output: []\n")
            .await;
    // 25 KB each: over the 16 KB scanned in place. Four of them keep every
    // scan thread of a 2-core machine busy for 3 s.
    let prompt = "word ".repeat(5000);
    let chats: Vec<_> = (0..4)
        .map(|i| {
            let (url, text) = (proxy.url.clone(), format!("{i} {prompt}"));
            tokio::spawn(async move { chat(&url, &text).await.status() })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let health = client()
        .get(format!("{}/health", proxy.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert!(
        chats.iter().all(|c| !c.is_finished()),
        "/health answered only once scans were done"
    );
    for c in chats {
        assert_eq!(c.await.unwrap(), 200);
    }
}

#[tokio::test]
async fn a_scan_over_its_budget_follows_fail_mode() {
    let slow = "scanners:\n  input: [{type: delay, millis: 5000}]\n  output: []\n";
    let (fake, closed) = stack(&format!("{slow}guard:\n  scan_timeout_secs: 0.2\n")).await;
    let resp = chat(&closed.url, "hello there").await;
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.headers()
            .get("x-guard-blocked")
            .and_then(|v| v.to_str().ok()),
        Some("scan_budget")
    );
    assert_eq!(fake.call_count(), 0);

    let (fake, open) = stack(&format!(
        "{slow}guard:\n  scan_timeout_secs: 0.2\n  fail_mode: open\n"
    ))
    .await;
    let resp = chat(&open.url, "hello there").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(fake.call_count(), 1);
}
