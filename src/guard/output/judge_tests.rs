//! Stream fields and judges (costly whole-text scanners): what they are
//! asked, when, and that text waits for them.

use std::sync::Mutex;

use super::*;
use crate::scan::pipeline::Configured;
use crate::scan::{Cost, Match, Scanner};

use super::generate_stream::{asked, reply_guard, run};

/// What a judge was asked: the text and the prompt it was told of.
type Asked = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A judge that flags any text with "steal" in it, recording each call.
struct Judge(Asked);

#[async_trait::async_trait]
impl Scanner for Judge {
    fn cost(&self) -> Cost {
        Cost::Expensive
    }
    fn can_redact(&self) -> bool {
        false
    }
    fn uses_prompt(&self) -> bool {
        true
    }
    async fn scan(&self, text: &str) -> Result<Vec<Match>, String> {
        self.scan_turn(text, &Turn::Prompt).await
    }
    async fn scan_turn(&self, text: &str, turn: &Turn) -> Result<Vec<Match>, String> {
        let prompt = match turn {
            Turn::Reply(p) => p.as_deref().map(String::from),
            Turn::Prompt => None,
        };
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((text.to_string(), prompt));
        Ok(match text.contains("steal") {
            true => vec![Match::judgement(1.0, "S2")],
            false => Vec::new(),
        })
    }
}

fn judged_guard(judge_every_bytes: usize) -> (ReplyGuard, Asked) {
    let asked = Asked::default();
    let judge = Configured {
        name: "judge".into(),
        mode: Mode::Block,
        threshold: 0.5,
        scanner: Arc::new(Judge(asked.clone())),
    };
    let prompt = Some("how do I adopt a llama?");
    let g = reply_guard(judge, FailMode::Closed, judge_every_bytes, prompt);
    (g, asked)
}

#[tokio::test]
async fn judges_see_the_reply_so_far_at_growing_intervals_and_at_the_end() {
    let (mut g, log) = judged_guard(512);
    let tokens: Vec<String> = (0..40).map(|i| format!("word{i:04}. ")).collect();
    let whole: String = tokens.concat();
    let (sent, blocked) = run(&mut g, &tokens).await;
    assert!(blocked.is_none());
    let calls = asked(&log);
    let lengths: Vec<usize> = calls.iter().map(|(t, _)| t.len()).collect();
    // 10-byte tokens: due after 64, then 70, 140 and 280 unjudged bytes; the rest at the end.
    assert_eq!(lengths, vec![70, 140, 280, 400], "{lengths:?}");
    for (text, prompt) in &calls {
        assert!(whole.starts_with(text.as_str()));
        assert_eq!(prompt.as_deref(), Some("how do I adopt a llama?"));
    }
    // Nothing is sent before a judgement covered it.
    for s in &sent {
        assert!(
            lengths.contains(&s.len()) || s.is_empty(),
            "sent {} bytes unjudged",
            s.len()
        );
    }
    assert_eq!(sent.last(), Some(&whole));
}

#[tokio::test]
async fn a_judge_stops_the_stream_before_what_it_flags_is_sent() {
    let (mut g, _) = judged_guard(512);
    let mut tokens: Vec<String> = (0..10).map(|i| format!("calm {i:04}. ")).collect();
    tokens.extend(
        [
            "Then ", "go ", "st", "eal ", "one ", "from ", "the ", "zoo. ",
        ]
        .map(String::from),
    );
    tokens.extend((0..20).map(|i| format!("more {i:04}. ")));
    let (sent, blocked) = run(&mut g, &tokens).await;
    assert_eq!(blocked, Some(Blocked(vec!["judge".into()])));
    let last = sent.last().cloned().unwrap_or_default();
    assert!(
        !last.contains("st"),
        "sent part of the flagged text: {last:?}"
    );
    assert!(
        last.starts_with("calm 0000."),
        "earlier text was released: {last:?}"
    );
}

#[tokio::test]
async fn with_no_interval_the_reply_is_judged_once_whole() {
    let (mut g, log) = judged_guard(0);
    let tokens: Vec<String> = (0..30).map(|i| format!("word{i:04}. ")).collect();
    let (sent, blocked) = run(&mut g, &tokens).await;
    assert!(blocked.is_none());
    assert!(
        sent[..sent.len() - 1].iter().all(String::is_empty),
        "held to the end"
    );
    let calls = asked(&log);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].0, tokens.concat());
}

#[tokio::test]
async fn the_judge_sees_redacted_text_as_it_will_be_sent() {
    let (mut g, log) = judged_guard(64);
    let token = "ghp_aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dE3fG5";
    // The first judgement falls due inside the token.
    let mut tokens: Vec<String> =
        vec!["my token, as you asked, is written out right here: ".into()];
    tokens.extend(token.chars().map(String::from));
    tokens.extend((0..12).map(|i| format!(" and {i:04}.")));
    let (sent, blocked) = run(&mut g, &tokens).await;
    assert!(blocked.is_none());
    for (text, _) in asked(&log) {
        assert!(
            !text.contains("ghp_"),
            "judge saw the unredacted token: {text:?}"
        );
    }
    assert!(
        sent.last()
            .is_some_and(|s| s.contains("[REDACTED_GITHUB_TOKEN]"))
    );
}
