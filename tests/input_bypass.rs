//! The input bypass corpus (`tests/corpus/input_bypass.jsonl`): paths, key
//! spellings, fields, templates, joined fields and hidden characters that
//! once got text to Ollama unscanned. Each case is sent as raw bytes over a
//! socket (so paths arrive exactly as written) to a proxy in front of a
//! recording fake Ollama. Whatever the outcome, no banned text may reach
//! Ollama in any spelling, and ordinary requests arrive byte for byte.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{FakeOllama, Proxy, config, start_proxy};
use ollama_guard::scan::normalize::fold;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CORPUS: &str = include_str!("corpus/input_bypass.jsonl");

/// Default-like scanners plus a banned-word list with look-alike matching
/// and a redacting key pattern.
const SCANNERS: &str = r#"
scanners:
  input:
    - {type: invisible_text}
    - {type: secrets, mode: redact}
    - {type: regex, mode: redact, patterns: ['sk-[A-Za-z0-9]{8,}'], placeholder: "[KEY]"}
    - {type: prompt_injection}
    - {type: ban_substrings, substrings: ["forbiddenword", "kill all humans"], confusables: true}
  output: []
"#;

/// What no recorded body may contain, folded (see `seen_in`).
const BANNED: [&str; 3] = [
    "forbiddenword",
    "killallhumans",
    "ignoreallpreviousinstructions",
];

struct Reply {
    status: u16,
    blocked: bool,
    body: String,
}

/// One HTTP/1.1 request, written byte for byte.
async fn send_raw(proxy: &Proxy, method: &str, path: &str, body: &[u8]) -> Reply {
    let mut tcp = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: guard\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(body).await.unwrap();
    let mut out = Vec::new();
    tcp.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    Reply {
        status: head[9..12].parse().unwrap(),
        blocked: head.to_lowercase().contains("\r\nx-guard-blocked:"),
        body: body.to_string(),
    }
}

/// Every string and key of a body, and the raw text, folded the way the
/// lexical scanners fold (look-alikes, leetspeak, invisibles, case), with
/// the spaces taken out.
fn seen_in(body: &[u8]) -> String {
    fn strings(v: &Value, out: &mut String) {
        match v {
            Value::String(s) => out.push_str(s),
            Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
            Value::Object(m) => m.iter().for_each(|(k, x)| {
                out.push_str(k);
                strings(x, out);
            }),
            _ => {}
        }
    }
    let mut all = String::from_utf8_lossy(body).into_owned();
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        strings(&v, &mut all);
    }
    fold(&all).replace(' ', "")
}

#[tokio::test]
async fn no_case_of_the_bypass_corpus_reaches_ollama_unscanned() {
    let fake = FakeOllama::start().await;
    let plain = start_proxy(config(&fake.url, SCANNERS)).await;
    let templates = start_proxy(config(
        &fake.url,
        &format!("{SCANNERS}\nguard:\n  allow_templates: true\n"),
    ))
    .await;
    let context = start_proxy(config(
        &fake.url,
        &format!("{SCANNERS}\nguard:\n  allow_context: true\n"),
    ))
    .await;
    let (mut passed, mut forwarded) = (0, 0);
    let mut failures = Vec::new();
    for line in CORPUS.lines().filter(|l| !l.trim().is_empty()) {
        let case: Value = serde_json::from_str(line).unwrap();
        let name = case["name"].as_str().unwrap();
        let body = match (&case["raw"], &case["body"]) {
            (Value::String(raw), _) => raw.clone().into_bytes(),
            (_, Value::Null) => Vec::new(),
            (_, body) => serde_json::to_vec(body).unwrap(),
        };
        let proxy = match case["allow"].as_str() {
            Some("templates") => &templates,
            Some("context") => &context,
            _ => &plain,
        };
        let calls_before = fake.call_count();
        let method = case["method"].as_str().unwrap();
        let reply = send_raw(proxy, method, case["path"].as_str().unwrap(), &body).await;
        let reached = fake.call_count() > calls_before;
        let expect = case["expect"].as_str().unwrap();
        let ok = match expect {
            "blocked" => reply.status == 400 && reply.blocked && !reached,
            "refused" | "bad_path" => {
                reply.status == 400 && !reply.blocked && !reached && reply.body.contains("error")
            }
            "not_found" => reply.status == 404 && !reached,
            "forwarded" => reply.status == 200 && reached,
            "forwarded_exact" => {
                reply.status == 200 && reached && fake.calls().last().unwrap().body[..] == body[..]
            }
            other => panic!("unknown expectation {other}"),
        };
        forwarded += usize::from(reached);
        if ok {
            passed += 1;
        } else {
            failures.push(format!(
                "{name}: expected {expect}, got {} {}",
                reply.status, reply.body
            ));
        }
    }
    let total = CORPUS.lines().filter(|l| !l.trim().is_empty()).count();
    println!("input bypass corpus: {passed}/{total} cases as expected");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(total >= 80, "the corpus lost cases: {total}");
    let calls = fake.calls();
    assert_eq!(calls.len(), forwarded);
    let routes = [
        "/api/generate",
        "/api/chat",
        "/api/create",
        "/v1/chat/completions",
        "/v1/responses",
        "/v1/messages",
    ];
    for call in &calls {
        assert!(
            routes.contains(&call.path.as_str()),
            "reached {}",
            call.path
        );
        let seen = seen_in(&call.body);
        for word in BANNED {
            assert!(
                !seen.contains(word),
                "{word} reached Ollama at {}",
                call.path
            );
        }
    }
}
