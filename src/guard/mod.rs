//! The guard: scans segments through the verdict cache and turns verdicts
//! into a decision (allow, rewrite, block), applying the fail policy when a
//! scanner errors. Knows nothing of HTTP.

pub mod output;
pub mod report;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;

use crate::cache::{CacheKey, KeyParts, Tier, VerdictCache, policy_fingerprint};
use crate::config::{Config, FailMode};
use crate::dialect::{Joined, Rewrite, Segment};
use crate::metrics::Metrics;
use crate::scan::pipeline::Run;
use crate::scan::pool::ScanPool;
use crate::scan::registry::build_pipeline;
use crate::scan::{Direction, Mode, Numbering, Pipeline, ScanError, Turn, Verdict};

/// Which output scanners judge a reply's text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Judged {
    /// All of them (a whole text).
    ByAll,
    /// The judges alone (a stream field so far; see `guard::output`).
    ByJudges,
}

/// What to do with a request or response.
#[derive(Debug, PartialEq)]
pub enum Decision {
    Allow,
    /// Replace the text at these pointers, then let it through.
    Rewrite(Vec<Rewrite>),
    /// Stop it; the names of the scanners that fired.
    Block(Vec<String>),
}

/// A decision and where its verdicts came from.
#[derive(Debug)]
pub struct Checked {
    pub decision: Decision,
    /// The slowest tier any segment needed (a miss beats an L2 hit).
    pub tier: Option<Tier>,
}

/// One direction's scanners and the fingerprint that keys their verdicts.
pub struct Policy {
    pub direction: Direction,
    pub pipeline: Arc<Pipeline>,
    pub fingerprint: String,
    /// The scanners run over seams between fields, and their own key space.
    seams: Arc<Pipeline>,
    seam_fingerprint: String,
    /// What a stream runs over each window: every scanner but the judges
    /// and those that only report.
    pub windows: Arc<Pipeline>,
    /// The judges (guard models, the classifier), which a stream asks about
    /// the reply so far at growing intervals, and their own key space.
    pub judges: Arc<Pipeline>,
    judge_fingerprint: String,
    /// The scanners that only report, which a stream asks about each field
    /// once, at its end (not through the cache).
    pub reporters: Arc<Pipeline>,
    /// Replies are judged with their prompt, so keyed by it too.
    uses_prompt: bool,
}

pub struct Guard {
    pub input: Policy,
    pub output: Policy,
    pub cache: Arc<VerdictCache>,
    pub metrics: Arc<Metrics>,
    /// Where and within what time scans run.
    pub pool: ScanPool,
    fail_mode: FailMode,
}

impl Guard {
    /// Builds both pipelines; the config was validated, so errors here are
    /// reported the same way again rather than assumed away.
    pub fn new(
        config: &Config,
        cache: Arc<VerdictCache>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, Vec<String>> {
        let policy = |direction, list: &str, specs| -> Result<Policy, Vec<String>> {
            let pipeline = build_pipeline(list, specs, &config.scanner_resources())?;
            let fingerprint = policy_fingerprint(specs);
            Ok(Policy {
                direction,
                seams: Arc::new(pipeline.for_seams()),
                seam_fingerprint: format!("{fingerprint}:seam"),
                windows: Arc::new(pipeline.for_windows()),
                judges: Arc::new(pipeline.judges()),
                judge_fingerprint: format!("{fingerprint}:judges"),
                reporters: Arc::new(pipeline.reporters()),
                uses_prompt: direction == Direction::Output && pipeline.uses_prompt(),
                pipeline: Arc::new(pipeline),
                fingerprint,
            })
        };
        Ok(Self {
            input: policy(Direction::Input, "scanners.input", &config.scanners.input)?,
            output: policy(
                Direction::Output,
                "scanners.output",
                &config.scanners.output,
            )?,
            cache,
            metrics,
            pool: ScanPool::new(Duration::from_secs_f64(config.guard.scan_timeout_secs)),
            fail_mode: config.guard.fail_mode,
        })
    }

    pub fn fail_mode(&self) -> FailMode {
        self.fail_mode
    }

    /// Whether replies are judged together with their prompt (so the
    /// proxy must find it).
    pub fn judges_replies_with_prompt(&self) -> bool {
        self.output.uses_prompt
    }

    pub fn policy(&self, direction: Direction) -> &Policy {
        match direction {
            Direction::Input => &self.input,
            Direction::Output => &self.output,
        }
    }

    /// The cached (or fresh) verdict for one text.
    pub async fn verdict(
        &self,
        direction: Direction,
        text: &str,
    ) -> (Result<Arc<Verdict>, ScanError>, Tier) {
        let (result, tier, _) = self.verdict_with_runs(direction, text).await;
        (result, tier)
    }

    /// Like [`Guard::verdict`], plus each scanner's score and time when this
    /// call ran the scan itself (`None` on a cache hit or a shared flight).
    pub async fn verdict_with_runs(
        &self,
        direction: Direction,
        text: &str,
    ) -> (Result<Arc<Verdict>, ScanError>, Tier, Option<Vec<Run>>) {
        let policy = self.policy(direction);
        self.scan_cached(direction, &policy.pipeline, &policy.fingerprint, text, None)
            .await
    }

    /// One text scanned now by all of `direction`'s scanners, the cache
    /// neither read nor written.
    pub async fn scan_now(
        &self,
        direction: Direction,
        text: &str,
    ) -> Result<crate::scan::Scanned, ScanError> {
        let turn = match direction {
            Direction::Input => Turn::Prompt,
            Direction::Output => Turn::Reply(None),
        };
        let scanned = self
            .pool
            .scan_turn(&self.policy(direction).pipeline, text, &turn)
            .await;
        if let Ok(s) = &scanned {
            self.metrics.observe_scan(direction, &s.runs);
        }
        scanned
    }

    /// The cached (or fresh) verdict on one text of a reply to `prompt`, by
    /// all the output scanners or by the judges alone.
    pub async fn reply_verdict(
        &self,
        by: Judged,
        text: &str,
        prompt: Option<&Arc<str>>,
    ) -> Result<Arc<Verdict>, ScanError> {
        let policy = &self.output;
        let (pipeline, fingerprint) = match by {
            Judged::ByAll => (&policy.pipeline, &policy.fingerprint),
            Judged::ByJudges => (&policy.judges, &policy.judge_fingerprint),
        };
        let direction = Direction::Output;
        (self
            .scan_cached(direction, pipeline, fingerprint, text, prompt)
            .await)
            .0
    }

    /// One text through the cache with the given scanners; `prompt` counts
    /// (in the key and the scan) only where the policy judges replies in
    /// their conversation.
    async fn scan_cached(
        &self,
        direction: Direction,
        pipeline: &Arc<Pipeline>,
        fingerprint: &str,
        text: &str,
        prompt: Option<&Arc<str>>,
    ) -> (Result<Arc<Verdict>, ScanError>, Tier, Option<Vec<Run>>) {
        let uses_prompt = self.policy(direction).uses_prompt;
        let prompt = prompt.filter(|_| uses_prompt);
        let key = CacheKey::new(KeyParts {
            policy: fingerprint,
            direction,
            prompt: uses_prompt.then(|| prompt.map_or("", |p| &**p)),
            text,
        });
        let turn = match direction {
            Direction::Input => Turn::Prompt,
            Direction::Output => Turn::Reply(prompt.cloned()),
        };
        let cost = pipeline.expected_cost();
        let runs: Arc<std::sync::Mutex<Option<Vec<Run>>>> = Arc::default();
        // Made only on a miss: a hit copies neither the text nor the handles.
        let make_scan = || {
            let (pipeline, metrics, pool) =
                (pipeline.clone(), self.metrics.clone(), self.pool.clone());
            let (owned, slot) = (text.to_string(), runs.clone());
            async move {
                let scanned = pool.scan_turn(&pipeline, &owned, &turn).await?;
                metrics.observe_scan(direction, &scanned.runs);
                *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(scanned.runs);
                Ok(scanned.verdict)
            }
        };
        let (result, tier) = self.cache.get_or_scan_costing(key, cost, make_scan).await;
        let runs = runs.lock().unwrap_or_else(|p| p.into_inner()).take();
        (result, tier, runs)
    }

    /// Scans every segment (concurrently, each through the cache) and decides.
    pub async fn check(&self, direction: Direction, segments: &[Segment]) -> Checked {
        if segments.is_empty() || self.policy(direction).pipeline.is_empty() {
            return Checked {
                decision: Decision::Allow,
                tier: None,
            };
        }
        let results = join_all(segments.iter().map(|s| self.verdict(direction, &s.text))).await;
        let tier = results.iter().map(|(_, t)| *t).max();
        let mut blockers: Vec<String> = Vec::new();
        let mut rewrites = Vec::new();
        let mut numbering = Numbering::default();
        let mut tally = Tally::default();
        for (segment, (result, _)) in segments.iter().zip(results) {
            let Some(verdict) = self.or_fail_mode(direction, result, &mut blockers) else {
                continue;
            };
            tally.add(&verdict);
            if !verdict.allowed {
                blockers.extend(verdict.blocking_scanners());
            } else if !verdict.redactions.is_empty() {
                rewrites.push(Rewrite {
                    pointer: segment.pointer.clone(),
                    text: verdict.apply_numbered(&segment.text, &mut numbering),
                    key: segment.key,
                });
            }
        }
        tally.log(direction);
        let decision = if !blockers.is_empty() {
            Decision::Block(self.blocked(direction, blockers))
        } else if !rewrites.is_empty() {
            Decision::Rewrite(rewrites)
        } else {
            Decision::Allow
        };
        Checked { decision, tier }
    }

    /// Scans texts a model is shown joined from several fields (see
    /// `dialect::request`); the names of the scanners that block, if any.
    /// A seam counts a finding (block or redact: a seam cannot be redacted)
    /// only when it spans the seam's cut: what lies on one side was judged
    /// with its own field. A whole joined text (a rendered template) counts
    /// every block and redaction.
    pub async fn check_joined(
        &self,
        direction: Direction,
        joined: &[Joined],
    ) -> Option<Vec<String>> {
        let policy = self.policy(direction);
        if joined.is_empty() || policy.pipeline.is_empty() {
            return None;
        }
        let results = join_all(joined.iter().map(|j| {
            let (pipeline, fingerprint) = match j.cut {
                Some(_) => (&policy.seams, &policy.seam_fingerprint),
                None => (&policy.pipeline, &policy.fingerprint),
            };
            self.scan_cached(direction, pipeline, fingerprint, &j.text, None)
        }))
        .await;
        let mut blockers = Vec::new();
        for (j, (result, _, _)) in joined.iter().zip(results) {
            let Some(verdict) = self.or_fail_mode(direction, result, &mut blockers) else {
                continue;
            };
            let spans_cut = |f: &crate::scan::Finding| match (&j.cut, f.span) {
                (None, _) => true,
                (Some(cut), Some((start, end))) => start < cut.start && end > cut.end,
                (Some(_), None) => false,
            };
            blockers.extend(
                verdict
                    .findings
                    .iter()
                    .filter(|f| f.action != Mode::Report && spans_cut(f))
                    .map(|f| f.scanner.clone()),
            );
        }
        (!blockers.is_empty()).then(|| self.blocked(direction, blockers))
    }

    /// The verdict, or, for a scanner error, what `fail_mode` says: closed
    /// adds the scanner to `blockers`, open lets the text pass.
    pub(crate) fn or_fail_mode(
        &self,
        direction: Direction,
        result: Result<Arc<Verdict>, ScanError>,
        blockers: &mut Vec<String>,
    ) -> Option<Arc<Verdict>> {
        match (result, self.fail_mode) {
            (Ok(v), _) => Some(v),
            (Err(e), FailMode::Closed) => {
                tracing::warn!(scanner = %e.scanner, error = %e.message, %direction, "scanner failed; blocking (fail_mode: closed)");
                blockers.push(e.scanner);
                None
            }
            (Err(e), FailMode::Open) => {
                tracing::warn!(scanner = %e.scanner, error = %e.message, %direction, "scanner failed; passing (fail_mode: open)");
                None
            }
        }
    }

    /// Sorted, deduplicated blockers, counted in the metrics.
    fn blocked(&self, direction: Direction, mut blockers: Vec<String>) -> Vec<String> {
        blockers.sort();
        blockers.dedup();
        self.metrics.count_blocks(direction, &blockers);
        blockers
    }
}

/// The findings of one request (or one reply), counted by scanner and
/// action, and logged once: a prompt with 10,000 e-mail addresses is one
/// line, not 10,000. Never the text.
#[derive(Debug, Default)]
pub struct Tally(BTreeMap<(String, Mode), usize>);

impl Tally {
    pub fn add(&mut self, verdict: &Verdict) {
        for f in &verdict.findings {
            *self.0.entry((f.scanner.clone(), f.action)).or_default() += 1;
        }
    }

    /// `pii report: 3, secrets redact: 1`
    fn summary(&self) -> String {
        self.0
            .iter()
            .map(|((scanner, action), n)| format!("{scanner} {action:?}: {n}").to_lowercase())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// One line: `info` when something was only reported (blocks and
    /// redactions have their own lines and metrics), `debug` otherwise.
    pub fn log(&self, direction: Direction) {
        if self.0.is_empty() {
            return;
        }
        let summary = self.summary();
        if self.0.keys().any(|(_, action)| *action == Mode::Report) {
            tracing::info!(%direction, findings = %summary, "findings reported");
        } else {
            tracing::debug!(%direction, findings = %summary, "findings");
        }
    }
}

impl std::fmt::Display for Direction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::request::seams;
    use crate::scan::pipeline::Configured;
    use crate::scan::{Match, Scanner};

    #[test]
    fn findings_are_counted_per_scanner_and_action_not_listed() {
        let finding = |scanner: &str, action| crate::scan::Finding {
            scanner: scanner.into(),
            score: 1.0,
            reason: "x".into(),
            action,
            span: None,
        };
        let many = Verdict {
            findings: (0..10_000).map(|_| finding("pii", Mode::Report)).collect(),
            ..Verdict::default()
        };
        let other = Verdict {
            findings: vec![
                finding("secrets", Mode::Redact),
                finding("pii", Mode::Report),
            ],
            ..Verdict::default()
        };
        let mut tally = Tally::default();
        tally.add(&many);
        tally.add(&other);
        assert_eq!(tally.summary(), "pii report: 10001, secrets redact: 1");
    }

    /// A scanner that always fails, as a guard model that timed out would.
    struct Broken;

    #[async_trait::async_trait]
    impl Scanner for Broken {
        async fn scan(&self, _text: &str) -> Result<Vec<Match>, String> {
            Err("timed out".into())
        }
    }

    fn guard(fail_mode: FailMode) -> Guard {
        let mut config = Config::default();
        config.cache.enabled = false;
        let metrics = Arc::new(Metrics::new().unwrap_or_else(|e| panic!("{e}")));
        let cache = VerdictCache::from_config(&config, &metrics).unwrap_or_else(|e| panic!("{e}"));
        let mut guard =
            Guard::new(&config, Arc::new(cache), metrics).unwrap_or_else(|e| panic!("{e:?}"));
        let broken = Pipeline::new(vec![Configured {
            name: "broken".into(),
            mode: Mode::Block,
            threshold: 0.5,
            scanner: Arc::new(Broken),
        }]);
        guard.input.seams = Arc::new(broken.for_seams());
        guard.input.pipeline = Arc::new(broken);
        guard.fail_mode = fail_mode;
        guard
    }

    fn segment(text: &str) -> Segment {
        Segment {
            pointer: "/prompt".into(),
            text: text.into(),
            key: false,
        }
    }

    #[tokio::test]
    async fn fail_closed_blocks_on_a_scanner_error_and_fail_open_passes() {
        let text = [segment("hi")];
        let closed = guard(FailMode::Closed);
        assert_eq!(
            closed.check(Direction::Input, &text).await.decision,
            Decision::Block(vec!["broken".into()])
        );
        let open = guard(FailMode::Open);
        assert_eq!(
            open.check(Direction::Input, &text).await.decision,
            Decision::Allow
        );
    }

    #[tokio::test]
    async fn joined_texts_follow_the_fail_mode_too() {
        let joined = seams(&["a".into(), "b".into()]);
        let closed = guard(FailMode::Closed);
        assert_eq!(
            closed.check_joined(Direction::Input, &joined).await,
            Some(vec!["broken".to_string()])
        );
        let open = guard(FailMode::Open);
        assert_eq!(open.check_joined(Direction::Input, &joined).await, None);
    }
}
