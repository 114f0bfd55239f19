//! Scanners: the `Scanner` trait every check implements, the verdict types a
//! scan produces, the registry that turns `{type: NAME, ...}` config into
//! scanners, and the pipeline that runs them in order.
//!
//! A scanner only *finds* things (spans, scores, reasons); what happens next is
//! decided by its configured [`Mode`] in the pipeline, so every scanner gets
//! block, redact and report behaviour without writing it again.

mod ban_substrings;
pub mod classifier;
mod code;
mod delay;
pub mod guard_model;
pub mod invisible_text;
mod language;
mod no_refusal;
pub mod normalize;
mod pii;
pub mod pipeline;
pub mod pool;
pub mod prompt_injection;
mod regex;
pub mod registry;
mod secrets;
pub mod tail;
mod token_limit;
mod toxicity;
mod urls;

use std::ops::Range;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use pipeline::{Pipeline, Scanned};
pub use registry::ScannerSpec;

/// Which way the scanned text travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Client to model: prompts, messages, tool results.
    Input,
    /// Model to client: responses, thinking, tool-call arguments.
    Output,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Input => "input",
            Direction::Output => "output",
        }
    }
}

/// Which turn of a conversation a scanned text is: guard models judge a
/// prompt alone and a reply together with the prompt it answers.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Turn {
    /// Client to model (every input text).
    #[default]
    Prompt,
    /// Model to client, with the prompt it answers when the policy judges
    /// replies in context and the request had one.
    Reply(Option<std::sync::Arc<str>>),
}

/// What a scanner's findings do to the request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Stop the request (input) or the response (output).
    #[default]
    Block,
    /// Replace the matched spans and let the rewritten text through.
    Redact,
    /// Log and count the finding; the text passes unchanged.
    Report,
}

/// How expensive a scanner is; the pipeline runs cheap ones first so a block
/// found by a regex never pays for a model call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cost {
    Cheap,
    Expensive,
}

/// One thing a scanner found in a text.
#[derive(Clone, Debug, PartialEq)]
pub struct Match {
    /// Byte range in the scanned text, for scanners that can point at it
    /// (needed for redaction); `None` for whole-text judgements.
    pub span: Option<Range<usize>>,
    /// Confidence in [0, 1].
    pub score: f32,
    /// Why it fired, in words that never quote the scanned text.
    pub reason: String,
    /// Replacement used when this match is redacted.
    pub placeholder: String,
    /// Which of a scanner's judges this is, when it has several (e.g.
    /// `rules` and `classifier`): reports give each part's best score.
    pub part: Option<&'static str>,
    /// Reported even when the scanner's mode blocks (a guard model's
    /// categories outside the ones it blocks on).
    pub report_only: bool,
}

impl Match {
    /// A judgement of the whole text (no span, so it cannot be redacted).
    pub fn judgement(score: f32, reason: impl Into<String>) -> Self {
        Self {
            span: None,
            score,
            reason: reason.into(),
            placeholder: String::new(),
            part: None,
            report_only: false,
        }
    }

    /// This match, as the judgement of part `name`.
    pub fn part(self, name: &'static str) -> Self {
        Self {
            part: Some(name),
            ..self
        }
    }

    /// This match, reported whatever the scanner's mode.
    pub fn reported(self) -> Self {
        Self {
            report_only: true,
            ..self
        }
    }
}

/// A scanner failed to produce an answer (e.g. a guard model timed out).
#[derive(Debug, Clone, thiserror::Error)]
#[error("scanner {scanner} failed: {message}")]
pub struct ScanError {
    pub scanner: String,
    pub message: String,
}

/// A check over one text. Implementations are pure functions of their config
/// and the text, which is what makes their verdicts cacheable.
#[async_trait]
pub trait Scanner: Send + Sync {
    /// Whether a scan costs microseconds or a network call.
    fn cost(&self) -> Cost {
        Cost::Cheap
    }
    /// Whether matches carry spans, so `mode: redact` makes sense.
    fn can_redact(&self) -> bool {
        true
    }
    async fn scan(&self, text: &str) -> Result<Vec<Match>, String>;
    /// Whether a reply is judged together with the prompt it answers (a
    /// guard model classifies a response in its conversation). Output
    /// verdicts of a pipeline with such a scanner are keyed by the prompt.
    fn uses_prompt(&self) -> bool {
        false
    }
    /// Scans `text` knowing which turn of a conversation it is (a prompt,
    /// or a reply and what it answers). Most scanners judge the text alone.
    async fn scan_turn(&self, text: &str, _turn: &Turn) -> Result<Vec<Match>, String> {
        self.scan(text).await
    }
    /// A costly whole-text judgement (a model call), not a finder of spans:
    /// a stream asks it about the reply so far at growing intervals rather
    /// than about every window (see `guard::output`).
    fn is_judge(&self) -> bool {
        self.cost() == Cost::Expensive && !self.can_redact()
    }
    /// How many trailing bytes of `text` could still become (part of) a
    /// finding when more text is appended: a stream holds them back. Zero
    /// for scanners that judge a text whole rather than point at spans.
    /// No finding can start in the first `settled` bytes (a stream found
    /// them unable to when it sent them, and has only appended since): a
    /// scanner may skip them, or ignore the hint.
    fn hold_back(&self, _text: &str, _settled: usize) -> usize {
        0
    }
}

/// A finding as recorded in a verdict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub scanner: String,
    pub score: f32,
    pub reason: String,
    pub action: Mode,
    /// Byte range in the scanned text, when the scanner can point at it
    /// (joined scanning asks whether a finding spans a seam).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span: Option<(usize, usize)>,
}

/// A byte range of the scanned text to replace, and what to put there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redaction {
    pub start: usize,
    pub end: usize,
    pub placeholder: String,
}

/// The outcome of scanning one text: the unit the verdict cache stores. It
/// holds no scanned text, only offsets and scanner-written reasons.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub allowed: bool,
    pub findings: Vec<Finding>,
    pub redactions: Vec<Redaction>,
}

impl Verdict {
    /// Names of the scanners whose findings blocked the text.
    pub fn blocking_scanners(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .findings
            .iter()
            .filter(|f| f.action == Mode::Block)
            .map(|f| f.scanner.clone())
            .collect();
        names.dedup();
        names
    }

    /// The text with every redaction applied (placeholders numbered afresh).
    pub fn apply(&self, text: &str) -> String {
        self.apply_numbered(text, &mut Numbering::default())
    }

    /// The text with every redaction applied, numbering `#` placeholders
    /// with `numbering` (shared by the texts of one request). Spans are
    /// sorted and merged by the pipeline, and any that do not fit `text` (a
    /// verdict for other text) are skipped rather than panicking.
    pub fn apply_numbered(&self, text: &str, numbering: &mut Numbering) -> String {
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for r in &self.redactions {
            let fits = r.start >= at && r.end <= text.len();
            if !fits || !text.is_char_boundary(r.start) || !text.is_char_boundary(r.end) {
                continue;
            }
            out.push_str(&text[at..r.start]);
            out.push_str(&numbering.label(&r.placeholder, &text[r.start..r.end]));
            at = r.end;
        }
        out.push_str(&text[at..]);
        out
    }
}

/// The reasons of a scanner's findings on `text` (for the scanners' tests).
#[cfg(test)]
pub(crate) async fn reasons(scanner: &dyn Scanner, text: &str) -> Vec<String> {
    let found = scanner
        .scan(text)
        .await
        .unwrap_or_else(|e| panic!("scan failed: {e}"));
    found.into_iter().map(|m| m.reason).collect()
}

/// Data compiled into the scanners (word lists): the policy fingerprint
/// covers its bytes, so a build with other data never reuses a verdict.
/// (The classifier's files are covered by `classifier::identity`.)
pub fn embedded_data() -> [&'static str; 2] {
    [toxicity::PROFANITY, toxicity::SLURS]
}

/// Compiles one of the scanners' built-in patterns. They are constants
/// exercised by the unit tests, so a failure is a programming error.
#[expect(
    clippy::expect_used,
    reason = "constant patterns, compiled by every scanner's tests"
)]
pub(crate) fn builtin_regex(pattern: &str) -> ::regex::Regex {
    ::regex::Regex::new(pattern).expect("built-in pattern compiles")
}

/// [`builtin_regex`] for a set of patterns matched in one pass.
#[expect(
    clippy::expect_used,
    reason = "constant patterns, compiled by every scanner's tests"
)]
pub(crate) fn builtin_regex_set<'a>(
    patterns: impl IntoIterator<Item = &'a str>,
) -> ::regex::RegexSet {
    ::regex::RegexSet::new(patterns).expect("built-in patterns compile")
}

/// Numbers placeholders that contain `#` (`[EMAIL_#]` → `[EMAIL_1]`): the
/// same value gets the same number, a new value the next one. Lives for one
/// request; the values never leave it.
#[derive(Default)]
pub struct Numbering {
    seen: std::collections::HashMap<(String, String), usize>,
    next: std::collections::HashMap<String, usize>,
}

impl Numbering {
    pub fn label(&mut self, placeholder: &str, value: &str) -> String {
        if !placeholder.contains('#') {
            return placeholder.to_string();
        }
        let key = (placeholder.to_string(), value.to_string());
        let n = match self.seen.get(&key) {
            Some(n) => *n,
            None => {
                let n = self.next.entry(placeholder.to_string()).or_insert(0);
                *n += 1;
                self.seen.insert(key, *n);
                *n
            }
        };
        placeholder.replace('#', &n.to_string())
    }
}

/// Sorts spans and merges overlapping ones, keeping the first placeholder, so
/// that two scanners redacting the same secret produce one replacement.
pub fn merge_redactions(mut spans: Vec<Redaction>) -> Vec<Redaction> {
    spans.sort_by_key(|r| (r.start, std::cmp::Reverse(r.end)));
    let mut merged: Vec<Redaction> = Vec::with_capacity(spans.len());
    for r in spans {
        match merged.last_mut() {
            Some(last) if r.start < last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn red(start: usize, end: usize, p: &str) -> Redaction {
        Redaction {
            start,
            end,
            placeholder: p.into(),
        }
    }

    #[test]
    fn overlapping_redactions_merge_into_one() {
        let merged = merge_redactions(vec![red(6, 10, "[B]"), red(0, 3, "[A]"), red(4, 8, "[C]")]);
        assert_eq!(merged, vec![red(0, 3, "[A]"), red(4, 10, "[C]")]);
    }

    #[test]
    fn apply_replaces_spans_and_keeps_the_rest() {
        let v = Verdict {
            allowed: true,
            findings: vec![],
            redactions: vec![red(4, 7, "[X]"), red(12, 15, "[Y]")],
        };
        assert_eq!(v.apply("key abc and def!"), "key [X] and [Y]!");
    }

    #[test]
    fn numbered_placeholders_repeat_for_the_same_value_across_texts() {
        let v = Verdict {
            allowed: true,
            findings: vec![],
            redactions: vec![red(0, 3, "[E_#]"), red(4, 7, "[E_#]"), red(8, 11, "[E_#]")],
        };
        let mut n = Numbering::default();
        assert_eq!(v.apply_numbered("aaa bbb aaa", &mut n), "[E_1] [E_2] [E_1]");
        assert_eq!(
            v.apply_numbered("bbb ccc aaa", &mut n),
            "[E_2] [E_3] [E_1]",
            "numbering spans the request"
        );
    }

    #[test]
    fn apply_skips_spans_that_do_not_fit_the_text() {
        let v = Verdict {
            allowed: true,
            findings: vec![],
            redactions: vec![red(1, 99, "[X]"), red(0, 2, "[Y]")],
        };
        assert_eq!(v.apply("héllo"), "héllo");
    }
}
