//! Stream fields and reporters (scanners in `mode: report`): asked once per
//! field, whole, at the end of the reply; counted once; never waited for
//! before the end; their errors decided by `fail_mode`.

use std::sync::Mutex;

use super::*;
use crate::scan::pipeline::Configured;
use crate::scan::{Match, Scanner};

use super::generate_stream::{asked, push, reply_guard, response_text, run};

/// The texts a reporter was asked about.
type Asked = Arc<Mutex<Vec<String>>>;

/// Reports any text with "sorry" in it (or fails, when `fails`), recording
/// each call.
struct Reporter {
    asked: Asked,
    fails: bool,
}

#[async_trait::async_trait]
impl Scanner for Reporter {
    async fn scan(&self, text: &str) -> Result<Vec<Match>, String> {
        self.asked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(text.to_string());
        if self.fails {
            return Err("the reporter is down".into());
        }
        Ok(match text.contains("sorry") {
            true => vec![Match::judgement(1.0, "refusal")],
            false => Vec::new(),
        })
    }
}

/// A reply guard with `secrets` (redact) and the reporter (report).
fn reporting_guard(fails: bool, fail_mode: FailMode) -> (ReplyGuard, Asked) {
    let asked = Asked::default();
    let reporter = Configured {
        name: "reporter".into(),
        mode: Mode::Report,
        threshold: 0.5,
        scanner: Arc::new(Reporter {
            asked: asked.clone(),
            fails,
        }),
    };
    let g = reply_guard(reporter, fail_mode, 512, None);
    (g, asked)
}

/// How many findings of `scanner` the reply's tally holds.
fn tallied(g: &ReplyGuard, scanner: &str) -> usize {
    let tally = g.tally.lock().unwrap_or_else(|p| p.into_inner());
    tally
        .0
        .iter()
        .filter(|((s, _), _)| s == scanner)
        .map(|(_, n)| n)
        .sum()
}

/// A refusal, a token to redact, and far more text than one window holds.
fn refusal_tokens() -> Vec<String> {
    let mut tokens: Vec<String> = ["I'm ", "so", "rry, ", "but ", "my ", "key ", "is "]
        .map(String::from)
        .to_vec();
    tokens.push("ghp_aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dE3fG5".into());
    tokens.extend((0..60).map(|i| format!(" word{i:04}.")));
    tokens.push(String::new());
    tokens
}

#[tokio::test]
async fn reporters_see_each_field_once_whole_as_sent_and_count_it_once() {
    let (mut g, log) = reporting_guard(false, FailMode::Closed);
    let tokens = refusal_tokens();
    let (sent, blocked) = run(&mut g, &tokens).await;
    assert!(blocked.is_none(), "{blocked:?}");
    let whole = sent.last().cloned().unwrap_or_default();
    assert!(whole.starts_with("I'm sorry, but my key is [REDACTED_GITHUB_TOKEN] word0000."));
    assert!(whole.len() > 600, "more than two windows: {}", whole.len());
    assert_eq!(
        asked(&log),
        vec![whole],
        "asked once, about the field as sent"
    );
    assert_eq!(tallied(&g, "reporter"), 1, "one refusal, counted once");
}

#[tokio::test]
async fn text_never_waits_for_reporters() {
    let (mut g, log) = reporting_guard(false, FailMode::Closed);
    let tokens = refusal_tokens();
    let mut all = Vec::new();
    for t in &tokens[..tokens.len() - 1] {
        push(&mut g, t, false);
        all.extend_from_slice(&g.settle(false).await.expect("clean"));
    }
    // Before the end the reporter was not asked, and the text went out as
    // the secrets scanner allowed: all of it, but for a held tail at most.
    assert!(asked(&log).is_empty());
    let sent = response_text(&all);
    assert!(sent.starts_with("I'm sorry, but my key is [REDACTED_GITHUB_TOKEN] word0000."));
    assert!(sent.len() + 16 > tokens.concat().len() - 17, "{sent:?}");
    push(&mut g, "", true);
    g.settle(true).await.expect("clean");
    assert_eq!(asked(&log).len(), 1);
}

#[tokio::test]
async fn a_field_sent_whole_at_the_end_is_reported_once() {
    let (mut g, log) = reporting_guard(false, FailMode::Closed);
    let tokens = vec!["I'm sorry, I cannot help.".to_string()];
    let (sent, blocked) = run(&mut g, &tokens).await;
    assert!(blocked.is_none());
    assert_eq!(sent, vec!["I'm sorry, I cannot help.".to_string()]);
    assert_eq!(asked(&log).len(), 1);
    assert_eq!(tallied(&g, "reporter"), 1);
}

#[tokio::test]
async fn a_reporters_error_is_decided_by_fail_mode() {
    let tokens = refusal_tokens();
    let (mut closed, _) = reporting_guard(true, FailMode::Closed);
    let (sent, blocked) = run(&mut closed, &tokens).await;
    assert_eq!(blocked, Some(Blocked(vec!["reporter".into()])));
    assert_eq!(sent.len(), tokens.len() - 1, "stopped at the end");
    let (mut open, _) = reporting_guard(true, FailMode::Open);
    let (sent, blocked) = run(&mut open, &tokens).await;
    assert!(blocked.is_none(), "{blocked:?}");
    assert!(sent.last().is_some_and(|s| s.ends_with("word0059.")));
}

#[tokio::test]
async fn a_long_field_is_reported_in_pieces_and_what_is_kept_stays_bounded() {
    let (mut g, log) = reporting_guard(false, FailMode::Closed);
    let mut tokens = vec!["I'm sorry, but here it is anyway. ".to_string()];
    tokens.extend((0..200).map(|i| format!("{i:04} {} ", "lorem ipsum ".repeat(85))));
    tokens.push(String::new());
    let mut kept = 0;
    for (i, t) in tokens.iter().enumerate() {
        let end = i + 1 == tokens.len();
        push(&mut g, t, end);
        g.settle(end).await.expect("clean");
        kept = kept.max(
            g.windows
                .values()
                .map(|w| w.released.len())
                .max()
                .unwrap_or(0),
        );
    }
    let longest = tokens.iter().map(String::len).max().unwrap_or(0);
    assert!(kept < REPORT_PIECE_BYTES + longest, "kept {kept} bytes");
    let calls = asked(&log);
    assert!(calls.len() >= 3, "{} pieces", calls.len());
    // Each piece starts with the last 256 bytes of the one before, and
    // together they are the whole field.
    let mut joined = calls[0].clone();
    for pair in calls.windows(2) {
        let tail = &pair[0][pair[0].len() - 256..];
        assert!(pair[1].starts_with(tail));
        assert!(pair[1].len() <= REPORT_PIECE_BYTES + 256 + longest);
        joined.push_str(&pair[1][256..]);
    }
    assert_eq!(joined, tokens.concat());
    assert_eq!(
        tallied(&g, "reporter"),
        1,
        "the refusal is in the first piece only"
    );
}

#[tokio::test]
async fn a_reply_that_ends_early_reports_what_was_sent() {
    let (mut g, log) = reporting_guard(false, FailMode::Closed);
    let tokens = refusal_tokens();
    let mut all = Vec::new();
    for t in &tokens[..20] {
        push(&mut g, t, false);
        all.extend_from_slice(&g.settle(false).await.expect("clean"));
    }
    assert!(asked(&log).is_empty());
    g.report_sent().await;
    g.report_sent().await;
    assert_eq!(
        asked(&log),
        vec![response_text(&all)],
        "once, what was sent"
    );
    assert_eq!(tallied(&g, "reporter"), 1);
}
