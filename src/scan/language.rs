//! `language`: texts not written in an allowed language (detected with
//! `whatlang`, ISO 639-3 codes such as `eng`, `fra`, `deu`). Short texts are
//! not judged: detection is unreliable on a few words.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use whatlang::Lang;

use super::{Match, Mode, Scanner};

/// `{type: language, allowed: [eng], min_chars: 40}`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub name: Option<String>,
    pub mode: Mode,
    pub allowed: Vec<String>,
    /// Texts shorter than this pass unjudged.
    pub min_chars: usize,
    /// Detections less confident than this pass.
    pub min_confidence: f64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            name: None,
            mode: Mode::Block,
            allowed: vec!["eng".into()],
            min_chars: 40,
            min_confidence: 0.5,
        }
    }
}

impl Config {
    pub fn build(&self) -> Result<Language, String> {
        let allowed = self
            .allowed
            .iter()
            .map(|c| {
                Lang::from_code(c).ok_or_else(|| {
                    format!(
                        "{c:?} is not an ISO 639-3 code whatlang knows (e.g. eng, fra, deu, spa)"
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if allowed.is_empty() {
            return Err("allowed must list at least one language".into());
        }
        Ok(Language {
            allowed,
            min_chars: self.min_chars,
            min_confidence: self.min_confidence,
        })
    }
}

pub struct Language {
    allowed: Vec<Lang>,
    min_chars: usize,
    min_confidence: f64,
}

#[async_trait]
impl Scanner for Language {
    fn can_redact(&self) -> bool {
        false
    }

    async fn scan(&self, text: &str) -> Result<Vec<Match>, String> {
        if text.chars().filter(|c| c.is_alphabetic()).count() < self.min_chars {
            return Ok(Vec::new());
        }
        let Some(info) = whatlang::detect(text) else {
            return Ok(Vec::new());
        };
        if self.allowed.contains(&info.lang()) || info.confidence() < self.min_confidence {
            return Ok(Vec::new());
        }
        Ok(vec![Match::judgement(
            info.confidence() as f32,
            format!("language {} is not allowed", info.lang().code()),
        )])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn other_languages_are_flagged_and_short_texts_pass() {
        let l = Config::default().build().expect("config");
        let french = "Bonjour, je voudrais savoir comment fonctionne le système de réservation de votre hôtel.";
        let found = l.scan(french).await.expect("scan");
        assert_eq!(found.len(), 1);
        assert!(found[0].reason.contains("fra"));
        assert!(
            l.scan("The quick brown fox jumps over the lazy dog near the river bank today.")
                .await
                .expect("scan")
                .is_empty()
        );
        assert!(l.scan("Bonjour!").await.expect("scan").is_empty());
    }

    #[test]
    fn unknown_codes_are_config_errors() {
        assert!(
            Config {
                allowed: vec!["english".into()],
                ..Config::default()
            }
            .build()
            .is_err()
        );
    }
}
