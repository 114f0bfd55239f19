//! `toxicity`: profanity and slurs from a word list (data/toxicity, MIT, from
//! better_profanity) and threats from phrase patterns, matched on folded text
//! (see `normalize.rs`: leetspeak, look-alikes and spacing do not hide a
//! word) and on whole words only, so `class` never matches `ass`. Findings
//! name the category; matching is on folded text, so it blocks or reports
//! but cannot redact.

use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, MatchKind};
use async_trait::async_trait;
use regex::Regex;
use serde::{Deserialize, Serialize};

use super::normalize::fold;
use super::{Match, Mode, Scanner};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Profanity,
    Slurs,
    Threats,
}

impl Category {
    fn score(self) -> f32 {
        match self {
            Category::Slurs => 1.0,
            Category::Threats => 0.95,
            Category::Profanity => 0.8,
        }
    }
}

/// `{type: toxicity, categories: [slurs, threats]}`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub name: Option<String>,
    pub mode: Mode,
    pub categories: Vec<Category>,
    /// Scores below this are ignored (profanity 0.8, threats 0.95, slurs 1.0).
    pub threshold: f32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            name: None,
            mode: Mode::Block,
            categories: vec![Category::Profanity, Category::Slurs, Category::Threats],
            threshold: 0.5,
        }
    }
}

impl Config {
    pub fn build(&self) -> Result<Toxicity, String> {
        if self.categories.is_empty() {
            return Err("categories must list at least one of profanity, slurs, threats".into());
        }
        lexicon()?;
        Ok(Toxicity {
            categories: self.categories.clone(),
        })
    }
}

struct Lexicon {
    words: AhoCorasick,
    category: Vec<Category>,
    threats: Vec<Regex>,
}

/// The word lists, compiled in (and so in every policy fingerprint).
pub(crate) const PROFANITY: &str = include_str!("../../data/toxicity/profanity.txt");
pub(crate) const SLURS: &str = include_str!("../../data/toxicity/slurs.txt");

fn lexicon() -> Result<&'static Lexicon, String> {
    static L: OnceLock<Result<Lexicon, String>> = OnceLock::new();
    L.get_or_init(|| {
        let mut words = Vec::new();
        let mut category = Vec::new();
        for (file, cat) in [(PROFANITY, Category::Profanity), (SLURS, Category::Slurs)] {
            for w in file.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
                words.push(format!(" {} ", fold(w)));
                category.push(cat);
            }
        }
        let ac = AhoCorasick::builder().match_kind(MatchKind::LeftmostLongest).build(&words).map_err(|e| e.to_string())?;
        let threats = [
            r"\b(i|we)( will|ll| m| am| re| are)?( going to| gonna| about to)? (kill|murder|shoot|stab|rape|strangle|choke|behead|bomb|hunt down|beat|hurt|burn) (you|u|ya|your (family|kids|children|wife|husband|mom|mother))\b",
            r"\b(you|u)( re| are)( so| gonna be| going to be)? (dead|a dead (man|woman))\b",
            r"\b(you|u) (will|ll|are going to|re going to|re gonna) (die|regret this|pay for this)\b",
            r"\bi know where (you|u) live\b",
            r"\b(kill|hang|shoot) (yourself|urself|yourselves)\b",
            r"\bwatch your back\b",
        ];
        let threats = threats.iter().map(|p| Regex::new(p).map_err(|e| e.to_string())).collect::<Result<_, _>>()?;
        Ok(Lexicon { words: ac, category, threats })
    })
    .as_ref()
    .map_err(Clone::clone)
}

pub struct Toxicity {
    categories: Vec<Category>,
}

#[async_trait]
impl Scanner for Toxicity {
    fn can_redact(&self) -> bool {
        false
    }

    async fn scan(&self, text: &str) -> Result<Vec<Match>, String> {
        let lex = lexicon()?;
        let folded = format!(" {} ", fold(text));
        let mut found: Vec<Category> = Vec::new();
        for m in lex.words.find_iter(&folded) {
            let cat = lex.category[m.pattern().as_usize()];
            if self.categories.contains(&cat) && !found.contains(&cat) {
                found.push(cat);
            }
        }
        if self.categories.contains(&Category::Threats)
            && lex.threats.iter().any(|r| r.is_match(&folded))
        {
            found.push(Category::Threats);
        }
        Ok(found
            .into_iter()
            .map(|c| Match::judgement(c.score(), format!("{c:?}").to_lowercase()))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn categories(text: &str) -> Vec<String> {
        let t = Config::default().build().expect("config");
        crate::scan::reasons(&t, text).await
    }

    #[tokio::test]
    async fn finds_each_category_and_obfuscated_words() {
        assert_eq!(categories("what the fuck").await, vec!["profanity"]);
        assert_eq!(categories("sh1t, that hurt").await, vec!["profanity"]);
        assert_eq!(categories("f.u.c.k this").await, vec!["profanity"]);
        assert_eq!(categories("I'm going to kill you").await, vec!["threats"]);
        assert_eq!(categories("I know where you live.").await, vec!["threats"]);
        assert_eq!(categories("you f@gg0t").await, vec!["slurs"]);
    }

    #[tokio::test]
    async fn clean_text_and_words_inside_words_pass() {
        for text in [
            "The class assessment is on Monday",
            "Scunthorpe United won",
            "I will kill the process with SIGTERM",
            "Shiitake mushrooms",
            "assistant",
            "Homo sapiens evolved in Africa",
            "My gay and lesbian friends visited Lesbos",
            "HIV research and ovary health",
        ] {
            assert!(
                categories(text).await.is_empty(),
                "{text}: {:?}",
                categories(text).await
            );
        }
    }

    #[tokio::test]
    async fn categories_can_be_limited() {
        let t = Config {
            categories: vec![Category::Threats],
            ..Config::default()
        }
        .build()
        .expect("config");
        assert!(t.scan("what the fuck").await.expect("scan").is_empty());
    }
}
