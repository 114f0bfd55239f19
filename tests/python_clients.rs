//! The Python `ollama` and `openai` libraries reading replies the guard cut
//! short: a mid-stream block, a broken upstream, a filtered whole reply.
//! Each case checks what the application sees: the text it got (never a part
//! of the banned phrase), and an error or finish reason that says what
//! happened. The libraries are installed by `scripts/test.sh` into
//! `target/pyclients` (or set `GUARD_TEST_PYTHON`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::fake_ollama::{Raw, RawEnd};
use common::{FakeOllama, config, start_proxy};
use serde_json::{Value, json};

const SCANNERS: &str = "
scanners:
  output:
    - {type: ban_substrings, substrings: [badword]}
";

fn python() -> String {
    std::env::var("GUARD_TEST_PYTHON").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/target/pyclients/bin/python").to_string()
    })
}

fn ndjson(parts: &[&str], done: bool) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = parts
        .iter()
        .map(|p| {
            let f = json!({"model": "m", "created_at": "2025-01-01T00:00:00Z",
                "message": {"role": "assistant", "content": p}, "done": false});
            format!("{f}\n").into_bytes()
        })
        .collect();
    if done {
        let f = json!({"model": "m", "created_at": "2025-01-01T00:00:00Z",
            "message": {"role": "assistant", "content": ""}, "done": true, "done_reason": "stop"});
        out.push(format!("{f}\n").into_bytes());
    }
    out
}

fn sse(parts: &[&str], done: bool) -> Vec<Vec<u8>> {
    let chunk = |c: Option<&str>, finish: Option<&str>| {
        let f = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": c}, "finish_reason": finish}]});
        format!("data: {f}\n\n").into_bytes()
    };
    let mut out: Vec<Vec<u8>> = parts.iter().map(|p| chunk(Some(p), None)).collect();
    if done {
        out.push(chunk(None, Some("stop")));
        out.push(b"data: [DONE]\n\n".to_vec());
    }
    out
}

/// Runs `library` (`ollama` or `openai`) against a proxy whose upstream
/// answers `chunks`; what the application saw.
async fn read(library: &str, mode: &str, ctype: &str, chunks: Vec<Vec<u8>>, end: RawEnd) -> Value {
    let fake = FakeOllama::start().await;
    let proxy = start_proxy(config(&fake.url, SCANNERS)).await;
    fake.script(|s| {
        s.raw = Some(Raw {
            status: 200,
            headers: vec![("content-type".into(), ctype.into())],
            chunks,
            end,
        })
    });
    run_client(library, mode, &proxy.url, None).await
}

/// What `library` saw reading one chat reply from the proxy at `url`,
/// sending `key` as its API key.
async fn run_client(library: &str, mode: &str, url: &str, key: Option<&str>) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/read_reply.py");
    let mut args = vec![script, library, mode, url];
    args.extend(key);
    let out = tokio::process::Command::new(python())
        .args(args)
        .output()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e}; run ./scripts/test.sh to install the Python clients",
                python()
            )
        });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

const NDJSON: &str = "application/x-ndjson";
const SSE: &str = "text/event-stream";
const JSON: &str = "application/json";

#[tokio::test]
async fn ollama_python_raises_on_a_mid_stream_block_after_the_clean_text() {
    let seen = read(
        "ollama",
        "stream",
        NDJSON,
        ndjson(&["Hello ", "bad", "word"], true),
        RawEnd::Complete,
    )
    .await;
    assert_eq!(seen["text"], "Hello ", "{seen}");
    assert_eq!(seen["error_type"], "ResponseError", "{seen}");
    assert!(
        seen["error"]
            .as_str()
            .unwrap()
            .contains("output flagged by ban_substrings"),
        "{seen}"
    );
}

#[tokio::test]
async fn openai_python_sees_content_filter_on_a_mid_stream_block() {
    let seen = read(
        "openai",
        "stream",
        SSE,
        sse(&["Hello ", "bad", "word"], true),
        RawEnd::Complete,
    )
    .await;
    assert_eq!(seen["text"], "Hello ", "{seen}");
    assert_eq!(seen["finish"], "content_filter", "{seen}");
    assert!(seen["error"].is_null(), "{seen}");
}

#[tokio::test]
async fn both_libraries_raise_when_the_upstream_breaks_mid_stream() {
    let seen = read(
        "ollama",
        "stream",
        NDJSON,
        ndjson(&["Hello"], false),
        RawEnd::Reset,
    )
    .await;
    assert_eq!(seen["text"], "Hello", "{seen}");
    assert_eq!(seen["error_type"], "ResponseError", "{seen}");
    assert!(
        seen["error"]
            .as_str()
            .unwrap()
            .contains("upstream stream failed"),
        "{seen}"
    );
    let seen = read(
        "openai",
        "stream",
        SSE,
        sse(&["Hello"], false),
        RawEnd::Reset,
    )
    .await;
    assert_eq!(seen["text"], "Hello", "{seen}");
    assert_eq!(seen["error_type"], "APIError", "{seen}");
    assert!(
        seen["error"]
            .as_str()
            .unwrap()
            .contains("upstream stream failed"),
        "{seen}"
    );
}

#[tokio::test]
async fn whole_replies_filtered_the_way_each_library_reads_them() {
    let body = json!({"model": "m", "created_at": "t", "message": {"role": "assistant", "content": "badword"},
        "done": true, "done_reason": "stop"});
    let seen = read(
        "ollama",
        "whole",
        JSON,
        vec![body.to_string().into_bytes()],
        RawEnd::Complete,
    )
    .await;
    assert_eq!(seen["error_type"], "ResponseError", "{seen}");
    assert!(
        seen["error"]
            .as_str()
            .unwrap()
            .contains("(status code: 502)"),
        "{seen}"
    );
    let body = json!({"id": "c", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "badword"}, "finish_reason": "stop"}]});
    let seen = read(
        "openai",
        "whole",
        JSON,
        vec![body.to_string().into_bytes()],
        RawEnd::Complete,
    )
    .await;
    assert!(seen["error"].is_null(), "no exception: {seen}");
    assert_eq!(seen["finish"], "content_filter", "{seen}");
    assert_eq!(seen["text"], "", "{seen}");
}

#[tokio::test]
async fn both_libraries_send_their_key_and_read_refusals_as_their_own_errors() {
    let fake = FakeOllama::start().await;
    let yaml = "scanners: {input: [], output: []}\nauth:\n  keys:\n    - {key: team-key-0123456789abcdef, name: team, rate_limit: {requests_per_minute: 2}}\n";
    let proxy = start_proxy(config(&fake.url, yaml)).await;
    let key = Some("team-key-0123456789abcdef");
    for library in ["ollama", "openai"] {
        let seen = run_client(library, "whole", &proxy.url, Some("wrong-key-0123456789")).await;
        assert_eq!(seen["status"], 401, "{library}: {seen}");
        assert!(
            seen["error"].as_str().unwrap().contains("API key"),
            "{seen}"
        );
        let seen = run_client(library, "whole", &proxy.url, key).await;
        assert_eq!(seen["text"], "The sky is blue.", "{library}: {seen}");
    }
    // Two a minute: both were used above; the next is refused.
    let seen = run_client("openai", "whole", &proxy.url, key).await;
    assert_eq!(seen["error_type"], "RateLimitError", "{seen}");
    let seen = run_client("ollama", "stream", &proxy.url, key).await;
    assert_eq!(seen["status"], 429, "{seen}");
    assert!(
        seen["error"]
            .as_str()
            .unwrap()
            .contains("too many requests"),
        "{seen}"
    );
}
