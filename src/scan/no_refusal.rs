//! `no_refusal` (output): model replies that refuse ("I can't help with
//! that", "As an AI language model, I cannot…"). Reported by default, so
//! operators can count refusals; `mode: block` turns them into errors.

use std::sync::OnceLock;

use async_trait::async_trait;
use regex::Regex;
use serde::{Deserialize, Serialize};

use super::normalize::fold;
use super::{Match, Mode, Scanner, builtin_regex};

/// `{type: no_refusal}`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub name: Option<String>,
    pub mode: Mode,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            name: None,
            mode: Mode::Report,
        }
    }
}

impl Config {
    pub fn build(&self) -> Result<NoRefusal, String> {
        Ok(NoRefusal)
    }
}

fn refusals() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        builtin_regex(r"\b(i|we) (can ?not|can t|won t|will not|am not able to|m not able to|am unable to|m unable to|must decline to|have to decline to|cannot and will not) (help|assist|provide|comply|fulfil+|do that|answer|create|generate|write|support|engage)|\b(i m|i am) sorry,? (but )?(i|that i) (can ?not|can t|won t|am not able)|\bas an ai (language model|assistant|model),? i (can ?not|can t|don t|am not able|am unable)|\bi (must|have to) (respectfully )?decline\b|\bthat (request )?(goes against|violates) (my|the) (guidelines|policies|usage policies)")
    })
}

pub struct NoRefusal;

#[async_trait]
impl Scanner for NoRefusal {
    fn can_redact(&self) -> bool {
        false
    }

    async fn scan(&self, text: &str) -> Result<Vec<Match>, String> {
        Ok(refusals()
            .is_match(&fold(text))
            .then(|| Match::judgement(0.9, "refusal"))
            .into_iter()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refusals_are_found_and_answers_pass() {
        for text in [
            "I'm sorry, but I can't help with that.",
            "As an AI language model, I cannot provide that.",
            "I must decline.",
            "I won't assist with creating malware.",
        ] {
            assert_eq!(NoRefusal.scan(text).await.expect("scan").len(), 1, "{text}");
        }
        for text in [
            "Sure! Here is the recipe.",
            "You can't divide by zero, so the function returns an error.",
            "I can help with that.",
        ] {
            assert!(
                NoRefusal.scan(text).await.expect("scan").is_empty(),
                "{text}"
            );
        }
    }
}
