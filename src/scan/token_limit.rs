//! `token_limit`: texts longer than `max_tokens` in a tiktoken encoding
//! (`cl100k_base` by default). Bounds decide most texts without counting: a
//! token is 1 to 128 bytes in every supported encoding, so a text of at most
//! `max_tokens` bytes is under the limit and one of more than 128 times that
//! is over it. Texts in between are counted in pieces of about 16 KB, split
//! at white space where there is some, stopping once the limit is passed:
//! the cost stays linear even for one giant word (BPE is quadratic in the
//! length of a piece), and a split inside a word can only add a token.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tiktoken_rs::CoreBPE;

use super::{Match, Mode, Scanner};

/// `{type: token_limit, max_tokens: 4096, encoding: cl100k_base}`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub name: Option<String>,
    pub mode: Mode,
    pub max_tokens: usize,
    /// `cl100k_base`, `o200k_base`, `p50k_base` or `r50k_base`.
    pub encoding: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            name: None,
            mode: Mode::Block,
            max_tokens: 4096,
            encoding: "cl100k_base".into(),
        }
    }
}

impl Config {
    pub fn build(&self) -> Result<TokenLimit, String> {
        if self.max_tokens == 0 {
            return Err("max_tokens must be >= 1".into());
        }
        let bpe = match self.encoding.as_str() {
            "cl100k_base" => tiktoken_rs::cl100k_base(),
            "o200k_base" => tiktoken_rs::o200k_base(),
            "p50k_base" => tiktoken_rs::p50k_base(),
            "r50k_base" => tiktoken_rs::r50k_base(),
            other => {
                return Err(format!(
                    "encoding {other:?} is not one of cl100k_base, o200k_base, p50k_base, r50k_base"
                ));
            }
        };
        Ok(TokenLimit {
            bpe: Arc::new(bpe.map_err(|e| e.to_string())?),
            max: self.max_tokens,
        })
    }
}

pub struct TokenLimit {
    bpe: Arc<CoreBPE>,
    max: usize,
}

/// The longest token of every supported encoding, in bytes.
const LONGEST_TOKEN: usize = 128;
/// Bytes counted at a time.
const PIECE: usize = 16 * 1024;

impl TokenLimit {
    /// Tokens in `text`, counted piece by piece until more than `self.max`;
    /// and whether all of it was counted.
    fn count_past_max(&self, text: &str) -> (usize, bool) {
        let mut n = 0;
        let mut counted = 0;
        for piece in pieces(text, PIECE) {
            n += self.bpe.encode_ordinary(piece).len();
            counted += piece.len();
            if n > self.max {
                break;
            }
        }
        (n, counted == text.len())
    }
}

/// `text` in pieces of at most about `size` bytes, each ending before a
/// white-space run when one starts in its last quarter.
fn pieces(text: &str, size: usize) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut end = rest.len().min(size);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        if end < rest.len() {
            let mut start = end - end / 4;
            while !rest.is_char_boundary(start) {
                start += 1;
            }
            let window = &rest[start..end];
            // The last white-space run's start, found from the end.
            if let Some((at, _)) = window.char_indices().rev().find(|&(i, c)| {
                c.is_whitespace() && i > 0 && !window[..i].ends_with(char::is_whitespace)
            }) {
                end = start + at;
            }
        }
        let (piece, tail) = rest.split_at(end.max(1));
        rest = tail;
        Some(piece)
    })
}

#[async_trait]
impl Scanner for TokenLimit {
    fn can_redact(&self) -> bool {
        false
    }

    async fn scan(&self, text: &str) -> Result<Vec<Match>, String> {
        if text.len() <= self.max {
            return Ok(Vec::new());
        }
        let reason = if text.len() > self.max.saturating_mul(LONGEST_TOKEN) {
            format!(
                "at least {} tokens, over the {} limit",
                text.len().div_ceil(LONGEST_TOKEN),
                self.max
            )
        } else {
            match self.count_past_max(text) {
                (n, true) if n > self.max => format!("{n} tokens, over the {} limit", self.max),
                (n, false) => format!("{n}+ tokens, over the {} limit", self.max),
                _ => return Ok(Vec::new()),
            }
        };
        Ok(vec![Match::judgement(1.0, reason)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_tokens_against_the_limit() {
        let t = Config {
            max_tokens: 10,
            ..Config::default()
        }
        .build()
        .expect("config");
        assert!(t.scan("short text").await.expect("scan").is_empty());
        let long = "hello world ".repeat(10);
        let found = t.scan(&long).await.expect("scan");
        assert_eq!(found.len(), 1);
        assert!(
            found[0].reason.starts_with("21 tokens"),
            "{}",
            found[0].reason
        );
        assert!(t.scan(&"x".repeat(11)).await.expect("scan").len() <= 1);
    }

    #[tokio::test]
    async fn counting_in_pieces_agrees_with_counting_whole() {
        let t = Config {
            max_tokens: 1_000_000,
            ..Config::default()
        }
        .build()
        .expect("config");
        let prose =
            "The quick brown fox jumps over the lazy dog, twice.  Then   it rests.\n".repeat(2000);
        let whole = t.bpe.encode_ordinary(&prose).len();
        assert_eq!(t.count_past_max(&prose), (whole, true));
        // Pieces cover the text exactly, on char boundaries.
        let joined: String = pieces(&prose, PIECE).collect();
        assert_eq!(joined, prose);
        let wide = "ü€😀".repeat(10_000);
        assert_eq!(pieces(&wide, 1000).collect::<String>(), wide);
        assert!(pieces(&wide, 1000).all(|p| p.len() <= 1000));
    }

    #[tokio::test]
    async fn far_over_the_limit_is_decided_without_counting() {
        let t = Config {
            max_tokens: 10,
            ..Config::default()
        }
        .build()
        .expect("config");
        let found = t.scan(&"a".repeat(2000)).await.expect("scan");
        assert_eq!(found.len(), 1);
        assert!(
            found[0].reason.starts_with("at least 16 tokens"),
            "{}",
            found[0].reason
        );
        // Just over max_tokens bytes but few tokens: counted, passes.
        assert!(t.scan("aaaaaaaaaaaa").await.expect("scan").is_empty());
    }

    #[test]
    fn unknown_encodings_are_config_errors() {
        assert!(
            Config {
                encoding: "gpt9".into(),
                ..Config::default()
            }
            .build()
            .is_err()
        );
    }
}
