//! `ban_substrings`: a list of phrases that must not appear, matched in one
//! pass with Aho-Corasick however long the list is.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{Match, Mode, Scanner};

/// `{type: ban_substrings, substrings: [...], ...}`
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Name in block responses and metrics; defaults to the type.
    pub name: Option<String>,
    pub mode: Mode,
    /// The phrases to look for.
    pub substrings: Vec<String>,
    /// Match letters exactly as written (default: ASCII case is ignored).
    pub case_sensitive: bool,
    /// Only match whole words, so `ass` does not fire inside `class`.
    pub whole_words: bool,
    /// Text put in place of a match in `redact` mode.
    pub placeholder: Option<String>,
}

pub struct BanSubstrings {
    matcher: AhoCorasick,
    whole_words: bool,
    placeholder: String,
}

impl Config {
    pub fn build(&self) -> Result<BanSubstrings, String> {
        let patterns: Vec<&str> = self.substrings.iter().map(|s| s.trim()).collect();
        if patterns.is_empty() || patterns.iter().any(|p| p.is_empty()) {
            return Err("substrings must be a non-empty list of non-empty strings".into());
        }
        let matcher = AhoCorasickBuilder::new()
            .ascii_case_insensitive(!self.case_sensitive)
            .match_kind(MatchKind::Standard)
            .build(&patterns)
            .map_err(|e| format!("substrings: {e}"))?;
        Ok(BanSubstrings {
            matcher,
            whole_words: self.whole_words,
            placeholder: self
                .placeholder
                .clone()
                .unwrap_or_else(|| "[REDACTED]".into()),
        })
    }
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// True when `start..end` of `text` does not continue a word on either side.
fn on_word_boundaries(text: &str, start: usize, end: usize) -> bool {
    let before = text[..start].chars().next_back();
    let first = text[start..end].chars().next();
    let last = text[start..end].chars().next_back();
    let after = text[end..].chars().next();
    let joins = |a: Option<char>, b: Option<char>| matches!((a, b), (Some(a), Some(b)) if is_word_char(a) && is_word_char(b));
    !joins(before, first) && !joins(last, after)
}

#[async_trait]
impl Scanner for BanSubstrings {
    async fn scan(&self, text: &str) -> Result<Vec<Match>, String> {
        // Overlapping search, so a phrase rejected by the word-boundary check
        // cannot hide another that starts inside it.
        let found = self
            .matcher
            .find_overlapping_iter(text)
            .filter(|m| !self.whole_words || on_word_boundaries(text, m.start(), m.end()))
            .map(|m| Match {
                span: Some(m.start()..m.end()),
                score: 1.0,
                reason: format!("banned substring #{}", m.pattern().as_usize() + 1),
                placeholder: self.placeholder.clone(),
            })
            .collect();
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scanner(words: &[&str], case_sensitive: bool, whole_words: bool) -> BanSubstrings {
        Config {
            substrings: words.iter().map(|s| s.to_string()).collect(),
            case_sensitive,
            whole_words,
            ..Config::default()
        }
        .build()
        .expect("valid config")
    }

    async fn spans(s: &BanSubstrings, text: &str) -> Vec<std::ops::Range<usize>> {
        let found = s.scan(text).await.expect("scan");
        found.into_iter().filter_map(|m| m.span).collect()
    }

    #[tokio::test]
    async fn finds_phrases_ignoring_ascii_case_by_default() {
        let s = scanner(&["kill all humans"], false, false);
        assert_eq!(spans(&s, "Now KILL ALL Humans!").await, vec![4..19]);
        assert!(spans(&s, "kill some humans").await.is_empty());
    }

    #[tokio::test]
    async fn case_sensitive_option_is_exact() {
        let s = scanner(&["Secret"], true, false);
        assert!(spans(&s, "a secret").await.is_empty());
        assert_eq!(spans(&s, "a Secret").await, vec![2..8]);
    }

    #[tokio::test]
    async fn whole_words_skip_matches_inside_words() {
        let s = scanner(&["ass"], false, true);
        assert!(spans(&s, "first class passage").await.is_empty());
        assert_eq!(spans(&s, "you ass.").await, vec![4..7]);
        assert_eq!(spans(&s, "ass").await, vec![0..3]);
    }

    #[tokio::test]
    async fn whole_words_still_find_a_match_overlapping_a_rejected_one() {
        let s = scanner(&["cat", "at home"], false, true);
        assert_eq!(spans(&s, "cat home").await, vec![0..3]);
        assert_eq!(spans(&s, "wildcat home; at home").await, vec![14..21]);
    }

    #[tokio::test]
    async fn reasons_never_quote_the_text() {
        let s = scanner(&["password"], false, false);
        let found = s.scan("my PASSWORD is").await.expect("scan");
        assert_eq!(found.len(), 1);
        assert!(!found[0].reason.to_lowercase().contains("password"));
    }

    #[test]
    fn empty_lists_and_empty_phrases_are_config_errors() {
        assert!(Config::default().build().is_err());
        let blank = Config {
            substrings: vec!["ok".into(), "  ".into()],
            ..Config::default()
        };
        assert!(blank.build().is_err());
    }
}
