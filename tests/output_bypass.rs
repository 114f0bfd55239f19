//! The output bypass corpus (`tests/corpus/output_bypass.jsonl`): upstream
//! replies, byte for byte, that once got model output to the client
//! unscanned or half-scanned (streamed secrets and phrases, unscanned fields,
//! unreadable bodies, redactions that create a match, mixed windows, bad
//! endings). A scripted fake Ollama sends each reply; the test reads what a
//! client sees, as a client rebuilds it (each stream field joined), and
//! checks the status, what must be absent and present, and how it ends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;

use common::fake_ollama::{Raw, RawEnd};
use common::{FakeOllama, config, start_proxy};
use serde_json::{Value, json};

const CORPUS: &str = include_str!("corpus/output_bypass.jsonl");

/// The default output scanners plus a banned-word list.
const SCANNERS: &str = "
scanners:
  output:
    - {type: invisible_text, mode: redact}
    - {type: secrets, mode: redact}
    - {type: ban_substrings, substrings: [badword, kill all humans]}
";

fn request(route: &str, stream: bool) -> Value {
    let messages = json!([{"role": "user", "content": "hi"}]);
    match route {
        "/api/generate" => json!({"model": "m", "prompt": "hi", "stream": stream}),
        _ => json!({"model": "m", "messages": messages, "stream": stream}),
    }
}

/// The JSON payloads of a body: NDJSON lines or SSE `data:` fields.
fn payloads(body: &str) -> Vec<Value> {
    body.lines()
        .map(|l| l.strip_prefix("data:").map_or(l, str::trim_start))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The body plus each stream field joined as a client joins it: strings
/// grouped by pointer, with a choice's or block's declared `index` in
/// place of its array position.
fn client_view(body: &str) -> String {
    let mut fields: BTreeMap<String, String> = BTreeMap::new();
    for frame in payloads(body) {
        let block = frame.get("index").map(Value::to_string).unwrap_or_default();
        strings(&frame, &format!("{block}#"), &mut fields);
    }
    let joined: Vec<String> = fields.into_values().collect();
    format!("{body}\n{}", joined.join("\n"))
}

fn strings(v: &Value, at: &str, out: &mut BTreeMap<String, String>) {
    match v {
        Value::String(s) => out.entry(at.to_string()).or_default().push_str(s),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let i = item.get("index").map_or(i.to_string(), Value::to_string);
                strings(item, &format!("{at}/{i}"), out);
            }
        }
        Value::Object(map) => {
            for (k, item) in map {
                strings(item, &format!("{at}/{k}"), out);
            }
        }
        _ => {}
    }
}

struct Seen {
    status: u16,
    body: String,
}

async fn replay(case: &Value) -> Seen {
    let yaml = case["yaml"].as_str().unwrap_or("");
    let yaml = if yaml.contains("scanners:") {
        yaml.to_string()
    } else {
        format!("{SCANNERS}\n{yaml}")
    };
    let fake = FakeOllama::start().await;
    let proxy = start_proxy(config(&fake.url, &yaml)).await;
    let reply = &case["reply"];
    let mut headers = vec![(
        "content-type".to_string(),
        reply["content_type"].as_str().unwrap().to_string(),
    )];
    if let Some(h) = reply["headers"].as_object() {
        headers.extend(
            h.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string())),
        );
    }
    let raw = Raw {
        status: reply["status"].as_u64().unwrap() as u16,
        headers,
        chunks: reply["chunks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().as_bytes().to_vec())
            .collect(),
        end: match reply["end"].as_str().unwrap() {
            "reset" => RawEnd::Reset,
            "stall" => RawEnd::Stall,
            _ => RawEnd::Complete,
        },
    };
    fake.script(|s| s.raw = Some(raw));
    let route = case["route"].as_str().unwrap();
    let body = match case.get("request") {
        Some(r) => r.clone(),
        None => request(route, case["stream"].as_bool().unwrap()),
    };
    let resp = common::post_json(&proxy.url, route, &body).await;
    let status = resp.status().as_u16();
    let body = String::from_utf8_lossy(&resp.bytes().await.unwrap()).into_owned();
    Seen { status, body }
}

fn check(case: &Value, seen: &Seen) -> Vec<String> {
    let id = case["id"].as_str().unwrap();
    let expect = &case["expect"];
    let view = client_view(&seen.body);
    let mut problems = Vec::new();
    if seen.status as u64 != expect["status"].as_u64().unwrap() {
        problems.push(format!("{id}: status {} ({})", seen.status, seen.body));
    }
    for s in expect["absent"].as_array().into_iter().flatten() {
        let s = s.as_str().unwrap();
        if view.contains(s) {
            problems.push(format!("{id}: the client saw {s:?}: {}", seen.body));
        }
    }
    for s in expect["present"].as_array().into_iter().flatten() {
        let s = s.as_str().unwrap();
        if !view.contains(s) {
            problems.push(format!("{id}: missing {s:?}: {}", seen.body));
        }
    }
    let frames = payloads(&seen.body);
    let last = frames.last().cloned().unwrap_or(Value::Null);
    let ends_right = match expect["last"].as_str() {
        None => true,
        Some("error") => last["error"].is_string(),
        Some("done") => last["done"] == true,
        Some("done_marker") => seen.body.ends_with("data: [DONE]\n\n"),
        Some(other) => panic!("{id}: unknown ending {other}"),
    };
    if !ends_right {
        problems.push(format!("{id}: wrong ending: {}", seen.body));
    }
    problems
}

#[tokio::test]
async fn no_case_of_the_output_corpus_gets_past_the_guard() {
    let cases: Vec<Value> = CORPUS
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(cases.len() >= 30, "corpus has {} cases", cases.len());
    let mut problems = Vec::new();
    for case in &cases {
        let seen = replay(case).await;
        problems.extend(check(case, &seen));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A reply of `chunks` on `route`, through the default-like scanners.
async fn replay_bytes(route: &str, ctype: &str, chunks: Vec<Vec<u8>>, yaml: &str) -> Seen {
    let case = json!({
        "id": "generated", "route": route, "stream": ctype != "application/json", "yaml": yaml,
        "reply": {"status": 200, "content_type": ctype, "end": "complete",
                  "chunks": chunks.iter().map(|c| String::from_utf8_lossy(c)).collect::<Vec<_>>()},
    });
    replay(&case).await
}

#[tokio::test]
async fn nesting_deeper_than_go_allows_is_unreadable_and_closed_blocks_it() {
    let deep = |n: usize| {
        format!(
            "{{\"response\":\"ok\",\"done\":true,\"x\":{}\"badword\"{}}}",
            "[".repeat(n),
            "]".repeat(n)
        )
    };
    let seen = replay_bytes(
        "/api/generate",
        "application/json",
        vec![deep(10_001).into_bytes()],
        "",
    )
    .await;
    assert_eq!(
        seen.status,
        502,
        "{}",
        &seen.body[..seen.body.len().min(300)]
    );
    assert!(seen.body.contains("unreadable_output"));
    // As deep as Go decodes: read and scanned.
    let seen = replay_bytes(
        "/api/generate",
        "application/json",
        vec![deep(9_000).into_bytes()],
        "",
    )
    .await;
    assert_eq!(seen.status, 502);
    assert!(
        seen.body.contains("output flagged by ban_substrings"),
        "{}",
        seen.body
    );
}

#[tokio::test]
async fn a_line_without_an_end_is_bounded() {
    let mut line = b"{\"response\":\"".to_vec();
    line.extend(std::iter::repeat_n(b'a', 17 * 1024 * 1024));
    let seen = replay_bytes("/api/generate", "application/x-ndjson", vec![line], "").await;
    let last = payloads(&seen.body).pop().unwrap_or(Value::Null);
    let error = last["error"].as_str().unwrap_or("");
    assert!(
        error.contains("exceeds 16777216 bytes"),
        "{}",
        &seen.body[..seen.body.len().min(300)]
    );
}
