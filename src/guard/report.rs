//! A scan report for one text, as `POST /scan` and `ollama-guard scan` give
//! it: the decision, the findings, the redactions (and the redacted text), and
//! each scanner's score and time when the scan ran now.

use serde::Serialize;

use std::sync::Arc;

use super::Guard;
use crate::cache::Tier;
use crate::scan::pipeline::Run;
use crate::scan::{Direction, Finding, Redaction, ScanError};

#[derive(Debug, Serialize)]
pub struct Report {
    pub direction: Direction,
    pub allowed: bool,
    /// Scanners whose findings blocked the text.
    pub blocked_by: Vec<String>,
    pub findings: Vec<Finding>,
    pub redactions: Vec<Redaction>,
    /// The text with redactions applied, when there are any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redacted_text: Option<String>,
    /// Each scanner's best score and time; empty when the verdict was cached.
    pub scanners: Vec<Run>,
    /// `hit-l1`, `hit-l2`, `miss` or `off`.
    pub cache: &'static str,
}

impl Guard {
    /// The report on `text`: through the verdict cache with `cached`, else
    /// scanned now whatever the cache holds (so the answer cannot tell
    /// whether someone else sent the text: `/scan` unless
    /// `guard.expose_cache_header`).
    pub async fn report(
        &self,
        direction: Direction,
        text: &str,
        cached: bool,
    ) -> Result<Report, ScanError> {
        let (verdict, tier, runs) = match cached {
            true => self.verdict_with_runs(direction, text).await,
            false => {
                let scanned = self.scan_now(direction, text).await;
                let runs = scanned.as_ref().ok().map(|s| s.runs.clone());
                (scanned.map(|s| Arc::new(s.verdict)), Tier::Off, runs)
            }
        };
        let verdict = verdict?;
        let redacted_text = (!verdict.redactions.is_empty()).then(|| verdict.apply(text));
        Ok(Report {
            direction,
            allowed: verdict.allowed,
            blocked_by: verdict.blocking_scanners(),
            findings: verdict.findings.clone(),
            redactions: verdict.redactions.clone(),
            redacted_text,
            scanners: runs.unwrap_or_default(),
            cache: tier.as_str(),
        })
    }
}
