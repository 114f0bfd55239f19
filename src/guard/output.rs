//! Streamed output scanning. Text deltas are appended as they arrive; once
//! `scan_interval_bytes` of unscanned text is held, the window (the last
//! `overlap_bytes` of scanned text plus everything unscanned) is scanned, so a
//! phrase split across chunks or windows is seen whole. The caller holds back
//! the frames carrying unscanned text and releases them after a clean scan.
//!
//! Offsets are absolute: byte positions in the whole reply so far. Only the
//! overlap is kept in memory, however long the reply grows.

use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{FailMode, StreamConfig};
use crate::metrics::Metrics;
use crate::scan::{Direction, Numbering, Pipeline, Redaction};

/// What a window scan decided.
#[derive(Debug, PartialEq)]
pub enum WindowVerdict {
    /// Clean; these redactions (absolute offsets) apply to the held text.
    Pass(Vec<Redaction>),
    /// Stop the stream; the names of the scanners that fired.
    Block(Vec<String>),
}

pub struct OutputGuard {
    pipeline: Arc<Pipeline>,
    config: StreamConfig,
    fail_mode: FailMode,
    /// The overlap and the unscanned tail; `text[0]` is at absolute `base`.
    text: String,
    base: usize,
    /// Absolute end of the scanned text.
    scanned_to: usize,
    /// Where scan timings, blocks and the request's overhead are recorded.
    report: Option<Report>,
}

/// Metrics for one streamed reply; the overhead (time before the upstream
/// call plus every scan) is recorded when the stream ends, however it ends.
struct Report {
    metrics: Arc<Metrics>,
    route: &'static str,
    overhead: Duration,
}

impl Drop for OutputGuard {
    fn drop(&mut self) {
        if let Some(r) = &self.report {
            r.metrics
                .overhead_seconds
                .with_label_values(&[r.route])
                .observe(r.overhead.as_secs_f64());
        }
    }
}

impl OutputGuard {
    pub fn new(pipeline: Arc<Pipeline>, config: StreamConfig, fail_mode: FailMode) -> Self {
        Self {
            pipeline,
            config,
            fail_mode,
            text: String::new(),
            base: 0,
            scanned_to: 0,
            report: None,
        }
    }

    /// Records metrics for the reply on `route`, which already spent
    /// `overhead` before the upstream call.
    pub fn with_metrics(
        mut self,
        metrics: Arc<Metrics>,
        route: &'static str,
        overhead: Duration,
    ) -> Self {
        self.report = Some(Report {
            metrics,
            route,
            overhead,
        });
        self
    }

    /// Appends a delta; returns its absolute range.
    pub fn push(&mut self, delta: &str) -> Range<usize> {
        let start = self.base + self.text.len();
        self.text.push_str(delta);
        start..start + delta.len()
    }

    fn end(&self) -> usize {
        self.base + self.text.len()
    }

    pub fn pending_bytes(&self) -> usize {
        self.end() - self.scanned_to
    }

    /// Whether enough text is held to scan now.
    pub fn due(&self) -> bool {
        self.pending_bytes() >= self.config.scan_interval_bytes
    }

    /// Scans the window over all unscanned text and keeps only the overlap.
    pub async fn scan(&mut self) -> WindowVerdict {
        if self.pending_bytes() == 0 || self.pipeline.is_empty() {
            self.scanned_to = self.end();
            return WindowVerdict::Pass(Vec::new());
        }
        let start = floor_char_boundary(
            &self.text,
            self.scanned_to
                .saturating_sub(self.config.overlap_bytes)
                .saturating_sub(self.base),
        );
        let window = &self.text[start..];
        let window_base = self.base + start;
        let started = Instant::now();
        let result = self.pipeline.scan(window).await;
        if let Some(r) = &mut self.report {
            r.overhead += started.elapsed();
            if let Ok(scanned) = &result {
                r.metrics.observe_scan(Direction::Output, &scanned.runs);
            }
        }
        let verdict = match result {
            Ok(scanned) => scanned.verdict,
            Err(e) if self.fail_mode == FailMode::Open => {
                tracing::warn!(scanner = %e.scanner, error = %e.message, "output scanner failed; passing (fail_mode: open)");
                self.advance();
                return WindowVerdict::Pass(Vec::new());
            }
            Err(e) => {
                tracing::warn!(scanner = %e.scanner, error = %e.message, "output scanner failed; blocking (fail_mode: closed)");
                return self.block(vec![e.scanner]);
            }
        };
        super::log_findings(Direction::Output, &verdict);
        if !verdict.allowed {
            return self.block(verdict.blocking_scanners());
        }
        let redactions = verdict
            .redactions
            .into_iter()
            .map(|r| Redaction {
                start: r.start + window_base,
                end: r.end + window_base,
                placeholder: r.placeholder,
            })
            .collect();
        self.advance();
        WindowVerdict::Pass(redactions)
    }

    fn block(&self, scanners: Vec<String>) -> WindowVerdict {
        if let Some(r) = &self.report {
            r.metrics.count_blocks(Direction::Output, &scanners);
        }
        WindowVerdict::Block(scanners)
    }

    /// Marks everything scanned and drops text older than the overlap.
    fn advance(&mut self) {
        self.scanned_to = self.end();
        let keep_from = floor_char_boundary(
            &self.text,
            self.text.len().saturating_sub(self.config.overlap_bytes),
        );
        self.text.drain(..keep_from);
        self.base += keep_from;
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// `original` (which sat at absolute `range`) with the parts of `redactions`
/// that fall inside it replaced. A placeholder is written where its span
/// starts (numbered by `numbering`, by the part of the value seen here); a
/// span that started in earlier text only removes its tail here.
pub fn redact_range(
    original: &str,
    range: &Range<usize>,
    redactions: &[Redaction],
    numbering: &mut Numbering,
) -> String {
    let mut out = String::with_capacity(original.len());
    let mut at = range.start;
    for r in redactions
        .iter()
        .filter(|r| r.start < range.end && r.end > range.start)
    {
        let cut_start = r.start.max(at);
        let cut_end = r.end.min(range.end);
        if cut_start < at || cut_end < cut_start {
            continue;
        }
        let (a, b) = (cut_start - range.start, cut_end - range.start);
        if !original.is_char_boundary(a) || !original.is_char_boundary(b) {
            continue;
        }
        out.push_str(&original[at - range.start..a]);
        if r.start >= range.start {
            out.push_str(&numbering.label(&r.placeholder, &original[a..b]));
        }
        at = cut_end;
    }
    out.push_str(&original[at - range.start..]);
    out
}

#[cfg(test)]
mod tests;
