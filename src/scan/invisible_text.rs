//! `invisible_text`: characters a person cannot see but a model reads: Unicode
//! tag characters (used to smuggle ASCII instructions), zero-width characters,
//! bidirectional controls (Trojan Source) and the variation-selector supplement
//! (used to hide bytes behind an emoji). Block, or strip them (`mode: redact`).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{Match, Mode, Scanner};

/// `{type: invisible_text, ...}`
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Name in block responses and metrics; defaults to the type.
    pub name: Option<String>,
    pub mode: Mode,
}

pub struct InvisibleText;

impl Config {
    pub fn build(&self) -> Result<InvisibleText, String> {
        Ok(InvisibleText)
    }
}

/// The class of an invisible character, named in findings.
pub fn classify(c: char) -> Option<&'static str> {
    match c {
        '\u{E0000}'..='\u{E007F}' => Some("tag"),
        '\u{E0100}'..='\u{E01EF}' => Some("variation selector"),
        '\u{200B}' | '\u{200C}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}' | '\u{180E}' => {
            Some("zero-width")
        }
        '\u{200E}'
        | '\u{200F}'
        | '\u{061C}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2066}'..='\u{2069}' => Some("bidi control"),
        _ => None,
    }
}

/// Emoji and pictographs, between which a zero-width joiner is ordinary
/// (e.g. family and profession emoji) and must not be flagged.
fn is_pictograph(c: char) -> bool {
    matches!(c, '\u{2600}'..='\u{27BF}' | '\u{1F000}'..='\u{1FAFF}' | '\u{FE0F}')
}

#[async_trait]
impl Scanner for InvisibleText {
    async fn scan(&self, text: &str) -> Result<Vec<Match>, String> {
        let mut found = Vec::new();
        let mut prev: Option<char> = None;
        let mut chars = text.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            let next = chars.peek().map(|&(_, n)| n);
            let class = match c {
                '\u{200D}'
                    if prev.is_some_and(is_pictograph) && next.is_some_and(is_pictograph) =>
                {
                    None
                }
                '\u{200D}' => Some("zero-width"),
                _ => classify(c),
            };
            if let Some(class) = class {
                found.push(Match {
                    span: Some(i..i + c.len_utf8()),
                    score: 1.0,
                    reason: format!("invisible {class} character U+{:04X}", c as u32),
                    placeholder: String::new(),
                });
            }
            prev = Some(c);
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::{Redaction, Verdict};

    async fn reasons(text: &str) -> Vec<String> {
        crate::scan::reasons(&InvisibleText, text).await
    }

    #[tokio::test]
    async fn flags_tag_characters_smuggling_ascii() {
        let hidden: String = "ignore"
            .chars()
            .map(|c| char::from_u32(0xE0000 + c as u32).unwrap_or(c))
            .collect();
        let found = reasons(&format!("hello{hidden}")).await;
        assert_eq!(found.len(), 6);
        assert!(found[0].contains("tag"));
    }

    #[tokio::test]
    async fn flags_zero_width_and_bidi_controls() {
        assert_eq!(reasons("pass\u{200B}word").await.len(), 1);
        assert!(reasons("abc\u{202E}cba").await[0].contains("bidi"));
        assert!(reasons("x\u{FEFF}").await[0].contains("zero-width"));
    }

    #[tokio::test]
    async fn plain_text_and_emoji_sequences_pass() {
        assert!(
            reasons("Plain text, accents: café, 日本語")
                .await
                .is_empty()
        );
        assert!(reasons("family: 👨\u{200D}👩\u{200D}👧").await.is_empty());
        assert_eq!(reasons("a\u{200D}b").await.len(), 1);
    }

    #[tokio::test]
    async fn strip_mode_removes_exactly_the_invisible_characters() {
        let text = "se\u{200B}cret\u{E0041}!";
        let found = InvisibleText.scan(text).await.expect("scan");
        let verdict = Verdict {
            allowed: true,
            findings: vec![],
            redactions: found
                .into_iter()
                .filter_map(|m| m.span)
                .map(|s| Redaction {
                    start: s.start,
                    end: s.end,
                    placeholder: String::new(),
                })
                .collect(),
        };
        assert_eq!(verdict.apply(text), "secret!");
    }
}
