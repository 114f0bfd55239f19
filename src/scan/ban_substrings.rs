//! `ban_substrings`: a list of phrases that must not appear, matched in one
//! pass with Aho-Corasick however long the list is.
//!
//! Text and phrases are compared in a matching form: invisible characters
//! (`invisible_text::classify`) removed, fillers read as spaces, full
//! Unicode case folding (`ß` = `ss`, `Σ` = `σ`), white-space runs as one
//! space, NFKC (fullwidth and styled
//! letters are plain letters), and with `confusables: on`
//! each character's Unicode TR39 skeleton, so look-alike letters from other
//! scripts and fullwidth forms match the Latin phrase. Spans point back into
//! the original text, so redaction still works.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use unicode_normalization::UnicodeNormalization;
use unicode_security::confusable_detection::skeleton;

use super::invisible_text::classify;
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
    /// Match letters exactly as written (default: case is ignored, with
    /// full Unicode case folding).
    pub case_sensitive: bool,
    /// Also match look-alikes: compare Unicode TR39 confusable skeletons
    /// (`раураl` in Cyrillic matches `paypal`; digits such as `0` and `1`
    /// count as the letters they resemble).
    pub confusables: bool,
    /// Only match whole words, so `ass` does not fire inside `class`.
    pub whole_words: bool,
    /// Text put in place of a match in `redact` mode.
    pub placeholder: Option<String>,
}

pub struct BanSubstrings {
    /// Over the phrases in matching form.
    matcher: AhoCorasick,
    /// The phrases in matching form, for [`Scanner::hold_back`].
    phrases: Vec<String>,
    form: Form,
    whole_words: bool,
    placeholder: String,
}

/// How text is brought into matching form.
#[derive(Clone, Copy)]
struct Form {
    fold_case: bool,
    confusables: bool,
}

impl Config {
    pub fn build(&self) -> Result<BanSubstrings, String> {
        let form = Form {
            fold_case: !self.case_sensitive,
            confusables: self.confusables,
        };
        let patterns: Vec<String> = self
            .substrings
            .iter()
            .map(|s| form.apply(s.trim()).0.trim().to_string())
            .collect();
        if patterns.is_empty() || patterns.iter().any(|p| p.is_empty()) {
            return Err("substrings must be a non-empty list of non-empty strings".into());
        }
        let matcher = AhoCorasickBuilder::new()
            .match_kind(MatchKind::Standard)
            .build(&patterns)
            .map_err(|e| format!("substrings: {e}"))?;
        Ok(BanSubstrings {
            matcher,
            phrases: patterns,
            form,
            whole_words: self.whole_words,
            placeholder: self
                .placeholder
                .clone()
                .unwrap_or_else(|| "[REDACTED]".into()),
        })
    }
}

impl Form {
    /// `text` in matching form, and for each of its bytes the byte range of
    /// the original character it came from (`None` when the form is the
    /// text lower-cased byte for byte: ASCII without confusables).
    fn apply(self, text: &str) -> (String, Option<Vec<(usize, usize)>>) {
        let plain_spaces =
            !text.contains("  ") && !text.bytes().any(|b| b.is_ascii_whitespace() && b != b' ');
        if text.is_ascii() && !self.confusables && plain_spaces {
            let out = if self.fold_case {
                text.to_ascii_lowercase()
            } else {
                text.to_string()
            };
            return (out, None);
        }
        let mut out = String::with_capacity(text.len());
        let mut origin: Vec<(usize, usize)> = Vec::with_capacity(text.len());
        let mut buf = [0u8; 4];
        for (i, c) in text.char_indices() {
            let span = (i, i + c.len_utf8());
            let mapped: String = match classify(c) {
                Some("filler") => " ".into(),
                Some(_) => continue,
                None if c.is_whitespace() => " ".into(),
                None => {
                    let c = c.encode_utf8(&mut buf);
                    let compat: String = c.nfkc().collect();
                    let folded = if self.fold_case {
                        caseless::default_case_fold_str(&compat)
                    } else {
                        compat
                    };
                    if self.confusables {
                        skeleton(&folded).collect()
                    } else {
                        folded
                    }
                }
            };
            // Runs of white space (and fillers) read as one space.
            if mapped == " " && out.ends_with(' ') {
                if let Some(last) = origin.last_mut() {
                    last.1 = span.1;
                }
                continue;
            }
            out.push_str(&mapped);
            origin.extend(std::iter::repeat_n(span, mapped.len()));
        }
        (out, Some(origin))
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
        let (form, origin) = self.form.apply(text);
        // Back to the original text: the characters the first and last
        // matched bytes came from.
        let original = |start: usize, end: usize| match &origin {
            None => start..end,
            Some(o) => o[start].0..o[end - 1].1,
        };
        // Overlapping search, so a phrase rejected by the word-boundary check
        // cannot hide another that starts inside it.
        let found = self
            .matcher
            .find_overlapping_iter(&form)
            .filter(|m| !self.whole_words || on_word_boundaries(&form, m.start(), m.end()))
            .map(|m| Match {
                span: Some(original(m.start(), m.end())),
                score: 1.0,
                reason: format!("banned substring #{}", m.pattern().as_usize() + 1),
                placeholder: self.placeholder.clone(),
                part: None,
                report_only: false,
            })
            .collect();
        Ok(found)
    }

    /// The longest tail that is the start of a phrase (in matching form,
    /// mapped back to the original bytes).
    fn hold_back(&self, text: &str, _settled: usize) -> usize {
        // Only the last phrase-length of text can start a phrase; a few
        // bytes more cover characters the form removes or expands.
        let longest = self.phrases.iter().map(String::len).max().unwrap_or(0);
        let mut from = text.len().saturating_sub(4 * longest + 16);
        while !text.is_char_boundary(from) {
            from -= 1;
        }
        let tail = &text[from..];
        let (form, origin) = self.form.apply(tail);
        let held = super::tail::phrase_tail(&form, &self.phrases);
        if held == 0 {
            return 0;
        }
        let start = match &origin {
            None => form.len() - held,
            Some(o) => o[form.len() - held].0,
        };
        tail.len() - start
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

    fn confusable(words: &[&str]) -> BanSubstrings {
        Config {
            substrings: words.iter().map(|s| s.to_string()).collect(),
            confusables: true,
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
    async fn hidden_characters_and_unicode_case_do_not_split_a_phrase() {
        let s = scanner(&["forbiddenword", "straße"], false, false);
        let text = "x FORBID\u{AD}DEN\u{34F}WO\u{200B}RD y";
        assert_eq!(spans(&s, text).await, vec![2..text.len() - 2]);
        assert_eq!(spans(&s, "STRASSE").await, vec![0..7]);
        assert_eq!(
            spans(&s, "ΣTRASSE").await,
            Vec::<std::ops::Range<usize>>::new()
        );
        let spaced = scanner(&["kill all"], false, false);
        assert_eq!(spans(&spaced, "kill\u{3164}all").await, vec![0..10]);
        assert_eq!(spans(&spaced, "kill \n\t all").await, vec![0..11]);
        assert_eq!(spans(&spaced, "KILL\n ALL").await, vec![0..9]);
    }

    #[tokio::test]
    async fn confusables_match_look_alikes_and_fullwidth_letters() {
        let plain = scanner(&["paypal"], false, false);
        let look = confusable(&["paypal"]);
        for text in ["раураl", "ｐａｙｐａｌ", "PAYPAL"] {
            assert_eq!(spans(&look, text).await, vec![0..text.len()], "{text}");
        }
        assert!(spans(&plain, "раураl").await.is_empty());
        assert_eq!(
            spans(&plain, "ｐａｙｐａｌ").await,
            vec![0..18],
            "NFKC without confusables"
        );
        assert!(spans(&look, "pay pal").await.is_empty());
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
