//! `token_limit`: texts longer than `max_tokens` in a tiktoken encoding
//! (`cl100k_base` by default). A text of at most `max_tokens` bytes cannot
//! exceed the limit (a token is at least one byte), so short texts are never
//! tokenized.

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

#[async_trait]
impl Scanner for TokenLimit {
    fn can_redact(&self) -> bool {
        false
    }

    async fn scan(&self, text: &str) -> Result<Vec<Match>, String> {
        if text.len() <= self.max {
            return Ok(Vec::new());
        }
        let n = self.bpe.encode_ordinary(text).len();
        Ok((n > self.max)
            .then(|| Match::judgement(1.0, format!("{n} tokens, over the {} limit", self.max)))
            .into_iter()
            .collect())
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
