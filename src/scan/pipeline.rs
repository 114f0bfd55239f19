//! The pipeline: runs the configured scanners over one text, cheap ones first,
//! stops at the first block, and folds their matches into a [`Verdict`]
//! according to each scanner's mode.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Finding, Mode, Redaction, ScanError, Scanner, Turn, Verdict, merge_redactions};

/// A scanner as configured: the check itself plus what its findings do.
#[derive(Clone)]
pub struct Configured {
    /// Name shown in block responses, logs and metrics (the `type`, or the
    /// `name` the operator gave it).
    pub name: String,
    pub mode: Mode,
    /// Matches scoring below this are ignored.
    pub threshold: f32,
    pub scanner: Arc<dyn Scanner>,
}

/// One scanner's part in a scan: its best score (below threshold too) and
/// its time. Not cached: a cache hit runs no scanner.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Run {
    pub scanner: String,
    pub score: f32,
    /// Each part's best score, for scanners with several judges
    /// (`prompt_injection`: `rules`, `classifier`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub parts: BTreeMap<&'static str, f32>,
    #[serde(rename = "micros", serialize_with = "as_micros")]
    pub took: Duration,
}

fn as_micros<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_micros() as u64)
}

/// A verdict plus each scanner's score and time.
#[derive(Clone, Debug)]
pub struct Scanned {
    pub verdict: Verdict,
    pub runs: Vec<Run>,
}

/// An ordered list of scanners for one direction.
#[derive(Clone, Default)]
pub struct Pipeline {
    scanners: Vec<Configured>,
    /// Stop at the first block (off for seams, where a block that does not
    /// span the seam must not hide one that does).
    short_circuit: bool,
    /// What a scan by this pipeline has cost lately: the verdict cache
    /// skips a Redis read that would take longer.
    cost: CostMeter,
}

/// A moving average of scan times, in microseconds (0: none measured yet).
#[derive(Default)]
pub struct CostMeter(std::sync::atomic::AtomicU64);

impl Clone for CostMeter {
    fn clone(&self) -> Self {
        Self(self.get_micros().into())
    }
}

impl CostMeter {
    fn get_micros(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Folds in one sample: a quarter of it, three quarters of the past.
    pub fn observe(&self, took: Duration) {
        let sample = (took.as_micros() as u64).max(1);
        let old = self.get_micros();
        let new = match old {
            0 => sample,
            old => (old * 3 + sample) / 4,
        };
        self.0.store(new, std::sync::atomic::Ordering::Relaxed);
    }

    /// The average, once there is one.
    pub fn average(&self) -> Option<Duration> {
        Some(self.get_micros())
            .filter(|m| *m > 0)
            .map(Duration::from_micros)
    }
}

impl Pipeline {
    /// Orders scanners by cost, keeping the configured order among equals.
    pub fn new(mut scanners: Vec<Configured>) -> Self {
        scanners.sort_by_key(|c| c.scanner.cost());
        Self {
            scanners,
            short_circuit: true,
            cost: CostMeter::default(),
        }
    }

    /// What a scan by this pipeline has cost lately, once measured.
    pub fn expected_cost(&self) -> Option<Duration> {
        self.cost.average()
    }

    /// The scanners that can act on a seam between two fields: cheap ones
    /// that point at what they find and block or redact it. (Costly
    /// scanners, such as guard models, judge each field whole.) Runs every
    /// scanner.
    pub fn for_seams(&self) -> Self {
        Self {
            scanners: self
                .scanners
                .iter()
                .filter(|c| {
                    c.mode != Mode::Report
                        && c.scanner.can_redact()
                        && c.scanner.cost() == super::Cost::Cheap
                })
                .cloned()
                .collect(),
            short_circuit: false,
            cost: CostMeter::default(),
        }
    }

    /// The scanners a stream runs over each window: those that can stop or
    /// change the text, but the judges.
    pub fn for_windows(&self) -> Self {
        self.filtered(|c| !c.scanner.is_judge() && c.mode != Mode::Report)
    }

    /// The judges (guard models, the classifier) that can stop or change
    /// the text: a stream asks them about the reply so far at growing
    /// intervals, and the text waits for them (`guard::output`).
    pub fn judges(&self) -> Self {
        self.filtered(|c| c.scanner.is_judge() && c.mode != Mode::Report)
    }

    /// The scanners that only report: a stream asks them about each field
    /// once, whole, at the end of the reply, so a finding is counted once
    /// (not in every window that holds it) and no text waits for them.
    pub fn reporters(&self) -> Self {
        self.filtered(|c| c.mode == Mode::Report)
    }

    fn filtered(&self, keep: impl Fn(&Configured) -> bool) -> Self {
        Self {
            scanners: self.scanners.iter().filter(|c| keep(c)).cloned().collect(),
            short_circuit: self.short_circuit,
            cost: CostMeter::default(),
        }
    }

    /// Whether a reply's verdict depends on the prompt it answers.
    pub fn uses_prompt(&self) -> bool {
        self.scanners.iter().any(|c| c.scanner.uses_prompt())
    }

    pub fn is_empty(&self) -> bool {
        self.scanners.is_empty()
    }

    /// Trailing bytes of `text` a stream must hold back: the most any
    /// scanner that can change the output (not `report`) asks for. No
    /// finding can start in the first `settled` bytes (see
    /// [`Scanner::hold_back`]).
    pub fn hold_back(&self, text: &str, settled: usize) -> usize {
        self.scanners
            .iter()
            .filter(|c| c.mode != Mode::Report)
            .map(|c| c.scanner.hold_back(text, settled))
            .max()
            .unwrap_or(0)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.scanners.iter().map(|c| c.name.as_str())
    }

    /// Scans `text`. An error from any scanner is returned as is: whether that
    /// blocks or passes is the guard's fail policy, and it is never cached.
    pub async fn scan(&self, text: &str) -> Result<Scanned, ScanError> {
        self.scan_turn(text, &Turn::Prompt).await
    }

    /// Scans `text` as `turn` of a conversation (scanners that judge a
    /// reply in its conversation see the prompt too).
    pub async fn scan_turn(&self, text: &str, turn: &Turn) -> Result<Scanned, ScanError> {
        let mut findings = Vec::new();
        let mut redactions = Vec::new();
        let mut runs = Vec::with_capacity(self.scanners.len());
        let mut allowed = true;
        for c in &self.scanners {
            let started = Instant::now();
            let matches = c
                .scanner
                .scan_turn(text, turn)
                .await
                .map_err(|message| ScanError {
                    scanner: c.name.clone(),
                    message,
                })?;
            let best = matches.iter().map(|m| m.score).fold(0.0, f32::max);
            let mut parts = BTreeMap::new();
            for m in &matches {
                if let Some(part) = m.part {
                    let score = parts.entry(part).or_insert(0.0f32);
                    *score = score.max(m.score);
                }
            }
            runs.push(Run {
                scanner: c.name.clone(),
                score: best,
                parts,
                took: started.elapsed(),
            });
            for m in matches.into_iter().filter(|m| m.score >= c.threshold) {
                // A match may only weaken its scanner's mode (block >
                // redact > report), never strengthen it.
                let action = match m.report_only {
                    true => Mode::Report,
                    false => c.mode,
                };
                if let (Mode::Redact, Some(span)) = (action, &m.span) {
                    redactions.push(Redaction {
                        start: span.start,
                        end: span.end,
                        placeholder: m.placeholder.clone(),
                    });
                }
                allowed &= action != Mode::Block;
                findings.push(Finding {
                    scanner: c.name.clone(),
                    score: m.score,
                    reason: m.reason,
                    action,
                    span: m.span.map(|s| (s.start, s.end)),
                });
            }
            if !allowed && self.short_circuit {
                break;
            }
        }
        let verdict = Verdict {
            allowed,
            findings,
            redactions: merge_redactions(redactions),
        };
        self.cost.observe(runs.iter().map(|r| r.took).sum());
        Ok(Scanned { verdict, runs })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::{Cost, Match};
    use async_trait::async_trait;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Flags every occurrence of a word; counts its calls.
    struct Word(&'static str, Cost, AtomicUsize);

    #[async_trait]
    impl Scanner for Word {
        fn cost(&self) -> Cost {
            self.1
        }
        async fn scan(&self, text: &str) -> Result<Vec<Match>, String> {
            self.2.fetch_add(1, Ordering::SeqCst);
            Ok(text
                .match_indices(self.0)
                .map(|(i, w)| Match {
                    span: Some(i..i + w.len()),
                    score: 1.0,
                    reason: "word".into(),
                    placeholder: "[W]".into(),
                    part: None,
                    report_only: false,
                })
                .collect())
        }
    }

    fn configured(name: &str, mode: Mode, s: Arc<Word>) -> Configured {
        Configured {
            name: name.into(),
            mode,
            threshold: 0.5,
            scanner: s,
        }
    }

    #[tokio::test]
    async fn block_short_circuits_and_cheap_scanners_run_first() {
        let costly = Arc::new(Word("bad", Cost::Expensive, AtomicUsize::new(0)));
        let cheap = Arc::new(Word("bad", Cost::Cheap, AtomicUsize::new(0)));
        let p = Pipeline::new(vec![
            configured("costly", Mode::Block, costly.clone()),
            configured("cheap", Mode::Block, cheap.clone()),
        ]);
        let out = p.scan("a bad day").await.map(|s| s.verdict).ok();
        let v = out.unwrap_or_default();
        assert!(!v.allowed);
        assert_eq!(v.blocking_scanners(), vec!["cheap".to_string()]);
        assert_eq!(cheap.2.load(Ordering::SeqCst), 1);
        assert_eq!(
            costly.2.load(Ordering::SeqCst),
            0,
            "block stops the pipeline"
        );
    }

    #[tokio::test]
    async fn redact_and_report_modes_let_text_pass() {
        let a = Arc::new(Word("secret", Cost::Cheap, AtomicUsize::new(0)));
        let b = Arc::new(Word("day", Cost::Cheap, AtomicUsize::new(0)));
        let p = Pipeline::new(vec![
            configured("a", Mode::Redact, a),
            configured("b", Mode::Report, b),
        ]);
        let scanned = p.scan("my secret day").await;
        let v = scanned.map(|s| s.verdict).unwrap_or_default();
        assert!(v.allowed);
        assert_eq!(v.apply("my secret day"), "my [W] day");
        assert_eq!(v.findings.len(), 2);
        assert_eq!(v.findings[1].action, Mode::Report);
    }
}
