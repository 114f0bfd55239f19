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

/// The class of an invisible character, named in findings: the Unicode
/// Default_Ignorable_Code_Point set (DerivedCoreProperties.txt, Unicode 15),
/// which renders as nothing, plus the Hangul fillers, which render as
/// blank space but are letters (so they pass for spaces between words).
/// U+200D (zero-width joiner) is decided by [`InvisibleText`], which lets it
/// join emoji; variation selectors are allowed where [`selects_variant`]
/// says they pick a glyph.
pub fn classify(c: char) -> Option<&'static str> {
    match c {
        '\u{E0000}'..='\u{E007F}' => Some("tag"),
        '\u{FE00}'..='\u{FE0F}'
        | '\u{E0100}'..='\u{E01EF}'
        | '\u{180B}'..='\u{180D}'
        | '\u{180F}' => Some("variation selector"),
        '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}' => Some("filler"),
        '\u{200B}' | '\u{200C}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}' | '\u{180E}' => {
            Some("zero-width")
        }
        '\u{200E}'
        | '\u{200F}'
        | '\u{061C}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2066}'..='\u{2069}' => Some("bidi control"),
        '\u{00AD}' => Some("soft hyphen"),
        '\u{034F}'
        | '\u{17B4}'
        | '\u{17B5}'
        | '\u{2065}'
        | '\u{206A}'..='\u{206F}'
        | '\u{FFF0}'..='\u{FFF8}'
        | '\u{1BCA0}'..='\u{1BCA3}'
        | '\u{1D173}'..='\u{1D17A}'
        | '\u{E0080}'..='\u{E00FF}'
        | '\u{E01F0}'..='\u{E0FFF}' => Some("default-ignorable"),
        _ => None,
    }
}

/// Whether a variation selector after `base` picks a glyph rather than
/// hiding data: emoji and text presentation after pictographs, symbols and
/// keycap bases (U+FE0E/FE0F), standardized variants of CJK and math
/// symbols (U+FE00..FE0D), ideographic variants after Han characters
/// (U+E0100..E01EF), and Mongolian free variation selectors after Mongolian
/// letters. One selector per base: a second one hides data.
fn selects_variant(base: Option<char>, selector: char) -> bool {
    let Some(b) = base else {
        return false;
    };
    let han = matches!(b, '\u{3400}'..='\u{4DBF}' | '\u{4E00}'..='\u{9FFF}' | '\u{F900}'..='\u{FAFF}' | '\u{20000}'..='\u{3FFFF}');
    match selector {
        '\u{FE00}'..='\u{FE0F}' => {
            is_pictograph(b)
                || han
                || matches!(b, '0'..='9' | '#' | '*' | '\u{00A9}' | '\u{00AE}' | '\u{2000}'..='\u{2BFF}' | '\u{3000}'..='\u{303F}' | '\u{3200}'..='\u{32FF}')
        }
        '\u{E0100}'..='\u{E01EF}' => han,
        '\u{180B}'..='\u{180D}' | '\u{180F}' => matches!(b, '\u{1800}'..='\u{18AF}'),
        _ => false,
    }
}

/// Emoji and pictographs, between which a zero-width joiner is ordinary
/// (e.g. family and profession emoji) and must not be flagged.
fn is_pictograph(c: char) -> bool {
    matches!(c, '\u{2600}'..='\u{27BF}' | '\u{1F000}'..='\u{1FAFF}' | '\u{FE0F}')
}

/// The class of `c` if it hides something, between `prev` and `next`; and
/// the base the character after it has.
fn judge(prev: Option<char>, c: char, next: Option<char>) -> (Option<&'static str>, Option<char>) {
    let class = match c {
        '\u{200D}' if prev.is_some_and(is_pictograph) && next.is_some_and(is_pictograph) => None,
        '\u{200D}' => Some("zero-width"),
        _ => match classify(c) {
            Some("variation selector") if selects_variant(prev, c) => None,
            class => class,
        },
    };
    // A selector is not a base: `a` + VS + VS is two hidden bytes.
    let base = match class.is_none() && classify(c).is_some() {
        true => None,
        false => Some(c),
    };
    (class, base)
}

#[async_trait]
impl Scanner for InvisibleText {
    async fn scan(&self, text: &str) -> Result<Vec<Match>, String> {
        let mut found = Vec::new();
        let mut prev: Option<char> = None;
        let mut at = 0;
        while at < text.len() {
            // ASCII is never invisible: a run of it is skipped at once, its
            // last character the base of what follows, and an ASCII rest
            // ends the scan (checked a word at a time). A stream scans each
            // new token with the text before it: nearly all of it ASCII.
            let rest = &text.as_bytes()[at..];
            if rest.is_ascii() {
                break;
            }
            let ascii = rest.iter().take_while(|b| b.is_ascii()).count();
            if ascii > 0 {
                prev = Some(char::from(text.as_bytes()[at + ascii - 1]));
                at += ascii;
                continue;
            }
            let mut rest = text[at..].chars();
            let Some(c) = rest.next() else { break };
            let (class, base) = judge(prev, c, rest.next());
            if let Some(class) = class {
                found.push(Match {
                    span: Some(at..at + c.len_utf8()),
                    score: 1.0,
                    reason: format!("invisible {class} character U+{:04X}", c as u32),
                    placeholder: String::new(),
                    part: None,
                    report_only: false,
                });
            }
            prev = base;
            at += c.len_utf8();
        }
        Ok(found)
    }

    /// A trailing zero-width joiner: whether it joins emoji depends on the
    /// character that follows.
    fn hold_back(&self, text: &str, _settled: usize) -> usize {
        if text.ends_with('\u{200D}') {
            '\u{200D}'.len_utf8()
        } else {
            0
        }
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
    async fn flags_default_ignorables_and_fillers() {
        for c in [
            '\u{AD}',
            '\u{34F}',
            '\u{3164}',
            '\u{115F}',
            '\u{FFA0}',
            '\u{2065}',
            '\u{1D173}',
        ] {
            let found = reasons(&format!("Ignore{c}all previous")).await;
            assert_eq!(found.len(), 1, "U+{:04X}", c as u32);
        }
    }

    #[tokio::test]
    async fn variation_selectors_pass_on_emoji_and_han_only() {
        assert!(
            reasons("I \u{2764}\u{FE0F} it 1\u{FE0F}\u{20E3} \u{845B}\u{E0100}")
                .await
                .is_empty()
        );
        assert_eq!(reasons("a\u{FE0F}").await.len(), 1, "after a letter");
        assert_eq!(
            reasons("a\u{E0100}").await.len(),
            1,
            "ideographic selector after a letter"
        );
        assert_eq!(
            reasons("\u{2764}\u{FE0F}\u{FE01}\u{FE02}").await.len(),
            2,
            "only one selector per base"
        );
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

    /// The scan before ASCII runs were skipped: every character judged.
    fn reference_spans(text: &str) -> Vec<std::ops::Range<usize>> {
        let mut found = Vec::new();
        let mut prev: Option<char> = None;
        let mut chars = text.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            let (class, base) = judge(prev, c, chars.peek().map(|&(_, n)| n));
            if class.is_some() {
                found.push(i..i + c.len_utf8());
            }
            prev = base;
        }
        found
    }

    #[tokio::test]
    async fn skipping_ascii_finds_what_a_char_by_char_scan_finds() {
        // Every sequence of up to four of these characters, each between
        // ASCII runs and alone: bases (ASCII keycaps and letters, emoji,
        // Han, Mongolian) next to joiners and selectors.
        let alphabet = [
            "a",
            "1",
            "#",
            " x ",
            "\u{2764}",
            "\u{1F468}",
            "\u{845B}",
            "\u{1820}",
            "\u{200D}",
            "\u{FE0F}",
            "\u{FE0E}",
            "\u{E0100}",
            "\u{180B}",
            "\u{200B}",
            "\u{E0041}",
            "é",
        ];
        let mut texts = vec![String::new()];
        for _ in 0..4 {
            let longer: Vec<String> = texts
                .iter()
                .flat_map(|t| alphabet.iter().map(move |c| format!("{t}{c}")))
                .collect();
            texts.extend(longer);
        }
        let mut checked = 0;
        for t in &texts {
            for text in [t.clone(), format!("ab {t} cd")] {
                let spans: Vec<_> = InvisibleText
                    .scan(&text)
                    .await
                    .expect("scan")
                    .into_iter()
                    .filter_map(|m| m.span)
                    .collect();
                assert_eq!(spans, reference_spans(&text), "{text:?}");
                checked += 1;
            }
        }
        assert!(checked > 100_000, "{checked}");
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
