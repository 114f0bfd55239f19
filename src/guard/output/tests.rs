use super::*;
use crate::cache::VerdictCache;
use crate::config::Config;
use crate::metrics::Metrics;
use serde_json::{Value, json};

fn guard_with(yaml: &str, route: Route) -> ReplyGuard {
    let mut config = Config::default();
    config.cache.enabled = false;
    config.scanners.output = serde_saphyr::from_str(yaml).expect("yaml");
    let metrics = Arc::new(Metrics::new().expect("metrics"));
    let cache = VerdictCache::from_config(&config, &metrics).expect("cache");
    let guard = Guard::new(&config, Arc::new(cache), metrics).expect("guard");
    let options = Options {
        overlap_bytes: 256,
        withheld: Withheld::default(),
        judge_every_bytes: 512,
    };
    ReplyGuard::new(Arc::new(guard), route, Framing::Ndjson, options, None, None)
}

const SCANNERS: &str = "
- {type: secrets, mode: redact}
- {type: ban_substrings, substrings: [kill all humans, badword]}
";

/// An NDJSON frame of `v`.
fn frame(v: Value) -> Bytes {
    Bytes::from(format!("{v}\n"))
}

/// Reads `raw` and pushes it, as the stream does.
fn push(g: &mut ReplyGuard, raw: Bytes) -> Result<bool, String> {
    let doc = Tree::parse(&raw)?;
    g.push(raw.clone(), &doc)
}

/// The `field` texts of the NDJSON frames in `bytes`, joined.
fn joined(bytes: &[u8], field: &str) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v.get(field).and_then(Value::as_str).map(String::from))
        .collect()
}

/// Streams `parts` as generate frames; returns what was sent after each
/// one (and the final settle), or the block.
async fn stream(g: &mut ReplyGuard, parts: &[&str]) -> Result<Vec<String>, Blocked> {
    let mut sent = Vec::new();
    let mut all = Vec::new();
    for p in parts {
        let raw = frame(json!({"model": "m", "response": p, "done": false}));
        push(g, raw).expect("well typed");
        all.extend_from_slice(&g.settle(false).await?);
        sent.push(joined(&all, "response"));
    }
    let raw = frame(json!({"model": "m", "response": "", "done": true}));
    push(g, raw).expect("well typed");
    all.extend_from_slice(&g.settle(true).await?);
    sent.push(joined(&all, "response"));
    Ok(sent)
}

#[tokio::test]
async fn a_streamed_token_is_never_sent_in_part() {
    let token = "ghp_aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dE3fG5";
    let mut parts = vec!["my token is "];
    let chunks: Vec<String> = token.chars().map(String::from).collect();
    parts.extend(chunks.iter().map(String::as_str));
    parts.push(" ok");
    let mut g = guard_with(SCANNERS, Route::Generate);
    let sent = stream(&mut g, &parts).await.expect("redacted, not blocked");
    for s in &sent {
        assert!(!s.contains("ghp"), "sent a part of the token: {s:?}");
    }
    assert_eq!(
        sent.last().map(String::as_str),
        Some("my token is [REDACTED_GITHUB_TOKEN] ok")
    );
    assert_eq!(sent[0], "my token is ", "prose before it flows at once");
}

#[tokio::test]
async fn a_banned_phrase_is_never_sent_in_part() {
    let mut g = guard_with(SCANNERS, Route::Generate);
    let mut sent = Vec::new();
    let mut all = Vec::new();
    for p in ["we met a ", "bad", "w", "ord"] {
        let raw = frame(json!({"response": p, "done": false}));
        push(&mut g, raw).expect("well typed");
        match g.settle(false).await {
            Ok(b) => {
                all.extend_from_slice(&b);
                sent.push(joined(&all, "response"));
            }
            Err(Blocked(names)) => {
                assert_eq!(names, vec!["ban_substrings".to_string()]);
                assert_eq!(sent, vec!["we met a "; 3], "no part of it left");
                return;
            }
        }
    }
    panic!("never blocked: {sent:?}");
}

#[tokio::test]
async fn fields_have_windows_of_their_own() {
    let mut g = guard_with(SCANNERS, Route::Generate);
    for (r, t) in [("bad", "x"), ("word", "y")] {
        let raw = frame(json!({"response": r, "thinking": t, "done": false}));
        push(&mut g, raw).expect("well typed");
        if let Err(Blocked(names)) = g.settle(false).await {
            assert_eq!(names, vec!["ban_substrings".to_string()]);
            return;
        }
    }
    panic!("`bad` + `word` in one field was not seen whole");
}

#[tokio::test]
async fn interleaved_choices_keep_their_own_text() {
    let mut g = guard_with(SCANNERS, Route::OpenAiChat);
    let chunk = |i: u64, c: &str| {
        frame(json!({"choices": [{"index": i, "delta": {"content": c}, "finish_reason": null}]}))
    };
    for (i, c) in [(0, "bad"), (1, "xx"), (0, "word")] {
        let raw = chunk(i, c);
        push(&mut g, raw).expect("well typed");
        if let Err(Blocked(names)) = g.settle(false).await {
            assert_eq!(names, vec!["ban_substrings".to_string()]);
            return;
        }
    }
    panic!("choice 0's `badword` was missed");
}

#[tokio::test]
async fn redacted_text_is_scanned_again() {
    let mut g = guard_with(
        "- {type: regex, mode: redact, patterns: ['#'], placeholder: ''}\n- {type: ban_substrings, substrings: [badword]}\n",
        Route::Generate,
    );
    let raw = frame(json!({"response": "a bad#word", "done": true}));
    push(&mut g, raw).expect("well typed");
    assert_eq!(
        g.settle(true).await,
        Err(Blocked(vec!["ban_substrings".into()])),
        "removing `#` made `badword`"
    );
}

#[tokio::test]
async fn redaction_that_never_settles_blocks() {
    let mut g = guard_with(
        "- {type: regex, mode: redact, patterns: ['X+'], placeholder: 'XX'}\n",
        Route::Generate,
    );
    let raw = frame(json!({"response": "aXb", "done": true}));
    push(&mut g, raw).expect("well typed");
    assert_eq!(g.settle(true).await, Err(Blocked(vec!["regex".into()])));
}

#[tokio::test]
async fn tool_call_argument_keys_and_log_probs_are_scanned() {
    let mut g = guard_with(SCANNERS, Route::Chat);
    let key = "ghp_aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dE3fG5";
    let raw = frame(json!({"message": {"role": "assistant", "content": "",
        "tool_calls": [{"function": {"name": "f", "arguments": {key: "v"}}}]}, "done": true}));
    push(&mut g, raw).expect("well typed");
    let out = String::from_utf8(g.settle(true).await.expect("redacts").to_vec()).expect("utf8");
    assert!(!out.contains(key), "{out}");
    assert!(out.contains("[REDACTED_GITHUB_TOKEN]"), "{out}");

    let mut g = guard_with(SCANNERS, Route::Generate);
    let raw = frame(json!({"response": "", "done": false,
        "logprobs": [{"token": "bad"}, {"token": "word"}]}));
    push(&mut g, raw).expect("well typed");
    assert_eq!(
        g.settle(true).await,
        Err(Blocked(vec!["ban_substrings".into()])),
        "the chosen tokens are joined as the client would"
    );
}

#[tokio::test]
async fn context_is_stripped_from_the_final_frame() {
    let mut g = guard_with(SCANNERS, Route::Generate);
    let raw = frame(json!({"response": "", "done": true, "context": [1, 2, 3]}));
    push(&mut g, raw).expect("well typed");
    let out = g.settle(true).await.expect("passes");
    assert_eq!(&out[..], b"{\"response\":\"\",\"done\":true}\n");
}

#[tokio::test]
async fn clean_frames_go_out_as_received_and_rewritten_ones_are_read_again() {
    // Spacing, key order and escapes the proxy would never write itself.
    let odd: &[u8] =
        b"{ \"done\" : false ,\"response\":\"caf\\u00e9 \\\"ok\\\"\",\"model\":\"m\"}\r\n";
    let mut g = guard_with(SCANNERS, Route::Generate);
    push(&mut g, Bytes::from_static(odd)).expect("well typed");
    push(&mut g, frame(json!({"response": "", "done": true}))).expect("well typed");
    let out = g.settle(true).await.expect("clean");
    assert_eq!(&out[..odd.len()], odd, "byte for byte");

    let key = "ghp_aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dE3fG5";
    let escaped = format!(
        "{{\"model\":\"m\",\"r\\u0065sponse\":\"k\\u00e9y {key}\",\"done\":true,\"context\":[1]}}\n"
    );
    let mut g = guard_with(SCANNERS, Route::Generate);
    push(&mut g, Bytes::from(escaped)).expect("well typed");
    let out = g.settle(true).await.expect("redacts");
    let sent: Value = serde_json::from_slice(&out).expect("one JSON frame");
    assert_eq!(
        sent,
        json!({"model": "m", "response": "k\u{e9}y [REDACTED_GITHUB_TOKEN]", "done": true}),
        "redacted under its unescaped key, `context` removed"
    );
    assert!(
        out.starts_with(b"{\"model\":\"m\",\"response\":"),
        "key order kept: {}",
        String::from_utf8_lossy(&out)
    );
}

#[tokio::test]
async fn one_frame_released_alone_is_not_copied_and_several_go_out_in_order() {
    let mut g = guard_with(SCANNERS, Route::Generate);
    let token = frame(json!({"model": "m", "response": "Hello there. ", "done": false}));
    push(&mut g, token.clone()).expect("well typed");
    let out = g.settle(false).await.expect("clean");
    assert_eq!(out, token);
    assert_eq!(
        out.as_ptr(),
        token.as_ptr(),
        "the frame's own bytes, not a copy"
    );

    let frames = [
        frame(json!({"model": "m", "response": "How ", "done": false})),
        frame(json!({"model": "m", "response": "are you?", "done": false})),
        frame(json!({"model": "m", "response": "", "done": true})),
    ];
    for f in &frames {
        push(&mut g, f.clone()).expect("well typed");
    }
    let out = g.settle(true).await.expect("clean");
    assert_eq!(out, frames.concat(), "all three, in order, byte for byte");
}

#[test]
fn redact_range_splits_a_span_across_frames() {
    let spans = vec![Redaction {
        start: 4,
        end: 10,
        placeholder: "[X]".into(),
    }];
    // Pieces "abc sk" (0..6), "-123" (6..10), " ok" (10..13).
    let n = &mut Numbering::default();
    assert_eq!(redact_range("abc sk", &(0..6), &spans, n), "abc [X]");
    assert_eq!(redact_range("-123", &(6..10), &spans, n), "");
    assert_eq!(redact_range(" ok", &(10..13), &spans, n), " ok");
}
