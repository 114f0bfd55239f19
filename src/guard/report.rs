//! A scan report for one text, as `POST /scan` and `ollama-guard scan` give
//! it: the decision, the findings, the redactions (and the redacted text), and
//! each scanner's score and time when the scan ran now.

use serde::Serialize;

use super::Guard;
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
    pub async fn report(&self, direction: Direction, text: &str) -> Result<Report, ScanError> {
        let (verdict, tier, runs) = self.verdict_with_runs(direction, text).await;
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
