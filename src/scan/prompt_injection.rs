//! `prompt_injection`: instruction overrides, jailbreak personas ("DAN",
//! "developer mode"), system-prompt extraction, delimiter and chat-template
//! injection, and encoded payloads (base64, hex, rot13 runs that decode to
//! such text). The text is folded first (see `normalize.rs`) so leetspeak,
//! look-alike letters and spaced-out words do not evade the rules. The score
//! is the highest of the rule families and the learned model
//! (`injection_model.rs`); `threshold` decides what counts.

use std::sync::OnceLock;

use async_trait::async_trait;
use base64::Engine;
use regex::Regex;
use serde::{Deserialize, Serialize};

use super::injection_model::{FLAG_SCORE, Model, applies};
use super::normalize::fold;
use super::{Match, Mode, Scanner, builtin_regex, builtin_regex_set};

/// `{type: prompt_injection, threshold: 0.75}`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub name: Option<String>,
    pub mode: Mode,
    /// Score in [0, 1] from which a text is flagged. At the default 0.75 a
    /// text is flagged when a rule fires or the model crosses the point it
    /// was validated at (see the README's accuracy section).
    pub threshold: f32,
    /// Use the learned model besides the rules.
    pub use_model: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            name: None,
            mode: Mode::Block,
            threshold: FLAG_SCORE,
            use_model: true,
        }
    }
}

impl Config {
    pub fn build(&self) -> Result<PromptInjection, String> {
        if !(0.0..=1.0).contains(&self.threshold) {
            return Err(format!(
                "threshold must be within 0..1, got {}",
                self.threshold
            ));
        }
        Ok(PromptInjection {
            use_model: self.use_model,
        })
    }
}

/// One family of patterns over folded text (matched by [`family_set`]), and
/// the score a match gives.
struct Family {
    name: &'static str,
    score: f32,
}

/// (family, score, pattern over folded text).
const FAMILY_SPECS: &[(&str, f32, &str)] = &[
    (
        "instruction override",
        0.95,
        r"\b(ignore|disregard|forget|override|bypass|skip|drop|abandon|set aside|throw out|neglect)\b(\s\w+){0,4}?\s(previous|prior|above|earlier|preceding|former|original|initial|all|any|your|the|these|those|system)\b(\s\w+){0,3}?\s(instructions?|rules?|guidelines?|directives?|prompts?|commands?|constraints?|restrictions?|programming|training|policies|policy|guardrails?|filters?|safety)\b",
    ),
    (
        "instruction override",
        0.9,
        r"\b(new|updated|real|actual|revised) (instructions?|rules?|directives?|task)\s?(are|is|follow)?\b.*\b(from now on|instead|override)\b",
    ),
    (
        "instruction override",
        0.85,
        r"\bfrom now on\b.*\b(you (will|must|are|shall)|respond|answer|act)\b.*\b(without|no|ignore|never refuse|any restrictions?|unfiltered|uncensored)\b",
    ),
    (
        "jailbreak persona",
        0.95,
        r"\b(dan|do anything now|developer mode|dev mode|god mode|jailbreak\w*|jail broken|aim mode|stan|dude mode|evil (ai|assistant|bot|mode)|unfiltered (ai|mode|assistant)|uncensored (ai|mode|assistant|version)|unrestricted (ai|mode|assistant))\b",
    ),
    (
        "jailbreak persona",
        0.85,
        r"\b(pretend|act|behave|roleplay|role play|imagine|simulate)\b(\s\w+){0,6}?\s(no|without|free of|free from|ignoring)\s(\w+\s){0,2}(rules|restrictions|limits|limitations|filters|guidelines|ethics|morals|censorship|boundaries)\b",
    ),
    (
        "jailbreak persona",
        0.8,
        r"\b(you are|you re|youre) (now |no longer )?(free|liberated|unchained|unbound|not bound|no longer bound)\b",
    ),
    (
        "system prompt extraction",
        0.95,
        r"\b(reveal|show|print|display|repeat|output|tell|give|share|leak|dump|recite|write out|spell out|list)\b(\s\w+){0,5}?\s(system|initial|original|hidden|secret|internal|developer|pre ?prompt|starting|first)\s(prompt|instructions?|message|rules|guidelines|configuration|directives?)\b",
    ),
    (
        "system prompt extraction",
        0.85,
        r"\b(what (is|are|were)|repeat|print) (your|the) (instructions|system prompt|rules you were given|prompt above|text above|words above)\b",
    ),
    (
        "system prompt extraction",
        0.8,
        r"\b(everything|all|text|words) (above|before) (this|here)\b.*\b(repeat|print|output|verbatim|word for word)\b|\bverbatim\b.*\b(prompt|instructions)\b",
    ),
];

fn families() -> &'static [Family] {
    static FAMILIES: OnceLock<Vec<Family>> = OnceLock::new();
    FAMILIES.get_or_init(|| {
        FAMILY_SPECS
            .iter()
            .map(|(name, score, _)| Family {
                name,
                score: *score,
            })
            .collect()
    })
}

/// All families in one automaton: one pass tells which (if any) match.
fn family_set() -> &'static regex::RegexSet {
    static SET: OnceLock<regex::RegexSet> = OnceLock::new();
    SET.get_or_init(|| builtin_regex_set(FAMILY_SPECS.iter().map(|(_, _, p)| *p)))
}

/// Chat-template and role delimiters, matched on the raw text.
fn delimiters() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        builtin_regex(r"(?i)<\|(im_start|im_end|system|user|assistant|endoftext|eot_id|start_header_id)\|>|\[/?INST\]|<</?SYS>>|</?(system|instructions?)>|^\s*#{2,}\s*(system|instruction)s?\s*:?\s*$|\bEND OF (SYSTEM )?PROMPT\b|\bBEGIN (NEW )?INSTRUCTIONS\b")
    })
}

fn encoded_runs() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| builtin_regex(r"[A-Za-z0-9+/_-]{16,}={0,2}|(?:[0-9a-fA-F]{2}[\s:]?){12,}"))
}

pub struct PromptInjection {
    use_model: bool,
}

/// The best rule match over a folded text: (score, family).
fn rules(folded: &str) -> Option<(f32, &'static str)> {
    let list = families();
    family_set()
        .matches(folded)
        .iter()
        .map(|i| (list[i].score, list[i].name))
        .fold(None, |best: Option<(f32, &str)>, m| {
            if best.is_none_or(|b| m.0 > b.0) {
                Some(m)
            } else {
                best
            }
        })
}

/// Decodes a base64 or hex run into text, if it is mostly printable.
fn decode(run: &str) -> Option<String> {
    let hex: String = run.chars().filter(char::is_ascii_hexdigit).collect();
    let bytes = if hex.len()
        == run
            .chars()
            .filter(|c| !c.is_whitespace() && *c != ':')
            .count()
        && hex.len().is_multiple_of(2)
    {
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
            .collect::<Option<Vec<u8>>>()?
    } else {
        let engines = [
            &base64::engine::general_purpose::STANDARD,
            &base64::engine::general_purpose::URL_SAFE,
        ];
        let trimmed = run.trim_end_matches('=');
        engines.iter().find_map(|e| {
            e.decode(format!(
                "{trimmed}{}",
                "=".repeat((4 - trimmed.len() % 4) % 4)
            ))
            .ok()
        })?
    };
    let text = String::from_utf8(bytes).ok()?;
    let printable = text
        .chars()
        .filter(|c| c.is_alphanumeric() || c.is_whitespace() || c.is_ascii_punctuation())
        .count();
    (text.len() >= 8 && printable * 10 >= text.chars().count() * 9).then_some(text)
}

fn rot13(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            'a'..='z' => (((c as u8 - b'a') + 13) % 26 + b'a') as char,
            'A'..='Z' => (((c as u8 - b'A') + 13) % 26 + b'A') as char,
            _ => c,
        })
        .collect()
}

/// (score, why) for a text, with `model` if given: the highest of the rules
/// and the model's calibrated score.
pub fn judge(text: &str, model: Option<&Model>) -> (f32, String) {
    let folded = fold(text);
    let (score, why) = rule_score_folded(text, &folded);
    let model = model.filter(|_| applies(&folded));
    match model.map(|m| m.calibrated(m.score(&folded))) {
        Some(p) if p > score => (p, "learned model".into()),
        _ => (score, why),
    }
}

/// (score, why) from the rule families, the delimiter check and decoded
/// payloads alone; 0 when nothing fires.
pub fn rule_score(text: &str) -> (f32, String) {
    rule_score_folded(text, &fold(text))
}

/// [`rule_score`] with the text already folded.
fn rule_score_folded(text: &str, folded: &str) -> (f32, String) {
    let mut best = rules(folded).map_or((0.0, String::new()), |(s, n)| (s, n.to_string()));
    if delimiters().is_match(text) && best.0 < 0.8 {
        best = (0.8, "delimiter or chat-template injection".into());
    }
    for run in encoded_runs().find_iter(text) {
        if let Some((s, n)) = decode(run.as_str()).and_then(|t| rules(&fold(&t)))
            && s > best.0
        {
            best = (s, format!("encoded payload ({n})"));
        }
    }
    if let Some((s, n)) = rules(&fold(&rot13(text))).filter(|(s, _)| *s > best.0) {
        best = (s, format!("rot13 payload ({n})"));
    }
    best
}

#[async_trait]
impl Scanner for PromptInjection {
    fn can_redact(&self) -> bool {
        false
    }

    async fn scan(&self, text: &str) -> Result<Vec<Match>, String> {
        let (score, why) = judge(text, self.use_model.then(Model::embedded));
        if score <= 0.0 {
            return Ok(Vec::new());
        }
        Ok(vec![Match::judgement(score, why)])
    }
}

#[cfg(test)]
mod tests;
