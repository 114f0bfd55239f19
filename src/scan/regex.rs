//! `regex`: operator-written patterns, each matched over the whole text; block
//! on a match, or redact it with a placeholder.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::tail::Viable;
use super::{Match, Mode, Scanner};

/// `{type: regex, patterns: [...], ...}`
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Name in block responses and metrics; defaults to the type.
    pub name: Option<String>,
    pub mode: Mode,
    /// Rust `regex` syntax; `(?i)` makes one case-insensitive.
    pub patterns: Vec<String>,
    /// Text put in place of a match in `redact` mode.
    pub placeholder: Option<String>,
}

pub struct RegexScanner {
    /// Cheap "does anything match" test before finding spans.
    any: ::regex::RegexSet,
    each: Vec<::regex::Regex>,
    placeholder: String,
    tails: Viable,
}

impl Config {
    pub fn build(&self) -> Result<RegexScanner, String> {
        if self.patterns.is_empty() {
            return Err("patterns must be a non-empty list".into());
        }
        let mut each = Vec::with_capacity(self.patterns.len());
        let mut problems = Vec::new();
        for (i, p) in self.patterns.iter().enumerate() {
            match ::regex::Regex::new(p) {
                Ok(re) if re.is_match("") => {
                    problems.push(format!("patterns[{i}] matches the empty string"))
                }
                Ok(re) => each.push(re),
                Err(e) => problems.push(format!("patterns[{i}]: {e}")),
            }
        }
        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
        let any = ::regex::RegexSet::new(&self.patterns).map_err(|e| e.to_string())?;
        Ok(RegexScanner {
            tails: Viable::new(&self.patterns)?,
            any,
            each,
            placeholder: self
                .placeholder
                .clone()
                .unwrap_or_else(|| "[REDACTED]".into()),
        })
    }
}

#[async_trait]
impl Scanner for RegexScanner {
    async fn scan(&self, text: &str) -> Result<Vec<Match>, String> {
        let mut found = Vec::new();
        for i in self.any.matches(text).iter() {
            for m in self.each[i].find_iter(text) {
                found.push(Match {
                    span: Some(m.range()),
                    score: 1.0,
                    reason: format!("pattern #{} matched", i + 1),
                    placeholder: self.placeholder.clone(),
                    part: None,
                    report_only: false,
                });
            }
        }
        Ok(found)
    }

    fn hold_back(&self, text: &str, settled: usize) -> usize {
        self.tails.tail(text, settled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scanner(patterns: &[&str]) -> RegexScanner {
        Config {
            patterns: patterns.iter().map(|s| s.to_string()).collect(),
            ..Config::default()
        }
        .build()
        .expect("valid config")
    }

    #[tokio::test]
    async fn finds_every_match_of_every_pattern() {
        let s = scanner(&[r"\b\d{3}-\d{4}\b", r"(?i)project\s+x"]);
        let found = s
            .scan("call 555-1234 about PROJECT  X or 555-9876")
            .await
            .expect("scan");
        let spans: Vec<_> = found.iter().filter_map(|m| m.span.clone()).collect();
        assert_eq!(spans, vec![5..13, 34..42, 20..30]);
        assert_eq!(found[2].reason, "pattern #2 matched");
    }

    #[tokio::test]
    async fn clean_text_has_no_matches() {
        let s = scanner(&[r"sk-[a-z0-9]{20}"]);
        assert!(s.scan("nothing to see").await.expect("scan").is_empty());
    }

    #[test]
    fn bad_and_empty_matching_patterns_are_all_reported() {
        let err = Config {
            patterns: vec!["(".into(), "ok".into(), "a*".into()],
            ..Config::default()
        }
        .build()
        .err()
        .unwrap_or_default();
        assert!(err.contains("patterns[0]"), "{err}");
        assert!(
            err.contains("patterns[2] matches the empty string"),
            "{err}"
        );
    }
}
