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

/// A raw connection to the proxy.
async fn connect(url: &str) -> tokio::net::TcpStream {
    tokio::net::TcpStream::connect(url.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// Reads until the peer closes (0) or `limit` passes (None).
async fn read_to_close(conn: &mut tokio::net::TcpStream, limit: Duration) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    tokio::time::timeout(limit, conn.read_to_end(&mut got))
        .await
        .ok()
        .map(|_| String::from_utf8_lossy(&got).into_owned())
}

#[tokio::test]
async fn slow_or_silent_clients_are_cut_off() {
    use tokio::io::AsyncWriteExt;
    let (_fake, proxy) = stack(
        "server:\n  header_read_timeout_secs: 0.5\n  body_read_timeout_secs: 0.5\nscanners:\n  input: []\n  output: []\n",
    )
    .await;
    // Silent, and a head dribbled out and never finished: both closed. (The
    // 10 s bound only keeps a broken build from hanging the suite.)
    let mut silent = connect(&proxy.url).await;
    let mut dribble = connect(&proxy.url).await;
    dribble
        .write_all(b"POST /api/chat HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    assert!(
        read_to_close(&mut silent, Duration::from_secs(10))
            .await
            .is_some()
    );
    assert!(
        read_to_close(&mut dribble, Duration::from_secs(10))
            .await
            .is_some()
    );
    // A whole head but a body that stops short: 408 in the route's shape.
    let mut short = connect(&proxy.url).await;
    short
        .write_all(b"POST /api/chat HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{\"model\":")
        .await
        .unwrap();
    let reply = read_to_close(&mut short, Duration::from_secs(10))
        .await
        .unwrap_or_default();
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(reply.contains("server.body_read_timeout_secs"), "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_over_max_in_flight_get_503_with_retry_after() {
    let (_fake, proxy) = stack(
        "server:\n  max_in_flight: 2\nscanners:\n  input: [{type: delay, millis: 1500}]\n  output: []\n",
    )
    .await;
    let slow: Vec<_> = (0..2)
        .map(|i| {
            let url = proxy.url.clone();
            tokio::spawn(async move { chat(&url, &format!("slow {i}")).await.status() })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let shed = client()
        .post(format!("{}/v1/chat/completions", proxy.url))
        .json(&json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(shed.status(), 503);
    assert_eq!(shed.headers()["retry-after"], "1");
    let body: serde_json::Value = shed.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("server.max_in_flight"),
        "{body}"
    );
    let health = client()
        .get(format!("{}/health", proxy.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200, "/health is always answered");
    for s in slow {
        assert_eq!(s.await.unwrap(), 200);
    }
    assert_eq!(
        chat(&proxy.url, "after").await.status(),
        200,
        "permits come back"
    );
}

#[tokio::test]
async fn connections_over_max_connections_wait_for_one_to_close() {
    use tokio::io::AsyncWriteExt;
    let (_fake, proxy) =
        stack("server:\n  max_connections: 2\nscanners:\n  input: []\n  output: []\n").await;
    let first = connect(&proxy.url).await;
    let second = connect(&proxy.url).await;
    let mut third = connect(&proxy.url).await; // in the backlog, not served
    third
        .write_all(b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(
        read_to_close(&mut third, Duration::from_millis(500)).await,
        None,
        "served while two connections were open"
    );
    drop(first);
    let reply = read_to_close(&mut third, Duration::from_secs(10))
        .await
        .unwrap_or_default();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    drop(second);
}

#[tokio::test]
async fn too_many_texts_or_too_much_text_get_413_naming_the_limit() {
    let (fake, proxy) = stack(
        "server:\n  max_texts: 50\n  max_text_bytes: 2000\nscanners:\n  input: [{type: invisible_text}]\n  output: []\n",
    )
    .await;
    let messages = |n: usize, text: &str| -> Vec<serde_json::Value> {
        (0..n)
            .map(|_| json!({"role": "user", "content": text}))
            .collect()
    };
    let send = |messages: Vec<serde_json::Value>| {
        let url = proxy.url.clone();
        async move {
            let resp = client()
                .post(format!("{url}/api/chat"))
                .json(&json!({"model": "m", "stream": false, "messages": messages}))
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        }
    };
    let (status, body) = send(messages(51, "hi")).await;
    assert_eq!(status, 413, "{body}");
    assert!(
        body.contains("51 texts to scan, over the limit of 50 (server.max_texts)"),
        "{body}"
    );
    let (status, body) = send(messages(3, &"x".repeat(1000))).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("(server.max_text_bytes)"), "{body}");
    // A body of many tiny objects is refused before it is parsed.
    let (status, body) = send(messages(600, "")).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("JSON objects and arrays"), "{body}");
    let (status, _) = send(messages(10, "hello")).await;
    assert_eq!(status, 200);
    assert_eq!(fake.call_count(), 1);
}
