//! `prompt_injection`: instruction overrides, jailbreak personas ("DAN",
//! "developer mode"), system-prompt extraction, delimiter and chat-template
//! injection, and encoded payloads (base64, hex, rot13 runs that decode to
//! such text). The text is folded first (see `normalize.rs`) so leetspeak,
//! look-alike letters and spaced-out words do not evade the rules. The score
//! is the higher of the rule families and the transformer classifier
//! (`classifier/`), whose probability is scaled so that its validated
//! threshold lands on [`FLAG_SCORE`]; `threshold` decides what counts.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use base64::Engine;
use regex::Regex;
use serde::{Deserialize, Serialize};

use super::classifier::{Classifier, Setup};
use super::normalize::fold;
use super::{Cost, Match, Mode, Scanner, builtin_regex, builtin_regex_set};

/// The score at which `prompt_injection` flags by default: rule matches
/// score at least this, and so does the classifier at its validated
/// threshold.
pub const FLAG_SCORE: f32 = 0.75;

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
    /// Use the transformer classifier besides the rules (false: rules
    /// alone, microseconds per text).
    pub use_model: bool,
    /// Longest text the classifier reads, in windows of 126 word pieces
    /// (256: about 25,000 pieces, 100 KB of English). A longer text is a
    /// scanner error, so `guard.fail_mode` decides; it is never cut short.
    pub max_windows: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            name: None,
            mode: Mode::Block,
            threshold: FLAG_SCORE,
            use_model: true,
            max_windows: 256,
        }
    }
}

impl Config {
    pub fn build(&self, models: &Setup) -> Result<PromptInjection, String> {
        if !(0.0..=1.0).contains(&self.threshold) {
            return Err(format!(
                "threshold must be within 0..1, got {}",
                self.threshold
            ));
        }
        if self.max_windows == 0 {
            return Err("max_windows must be at least 1".into());
        }
        let classifier = match self.use_model {
            true => Some(Classifier::shared(models)?),
            false => None,
        };
        Ok(PromptInjection {
            classifier,
            max_windows: self.max_windows,
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
        r"\b(do anything now|developer mode|dev mode|god mode|jailbreak\w*|jail broken|aim mode|(dan|stan|dude) (mode|prompt)|evil (ai|assistant|bot|mode)|unfiltered (ai|mode|assistant)|uncensored (ai|mode|assistant|version)|unrestricted (ai|mode|assistant))\b",
    ),
    // DAN, STAN and DUDE as personas, not as people called Dan or Stan.
    (
        "jailbreak persona",
        0.95,
        r"\b(you are|you re|youre|act as|acting as|pretend to be|become|play|answer as|respond as|stay)( now| a| an| in character as)? (dan|stan|dude)\b|\b(dan|stan|dude)( mode)? (enabled|activated|jailbreak)\b|\bas (dan|stan|dude)[,:]",
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
        r"\b(reveal|show|print|display|repeat|output|tell|give|share|leak|dump|recite|write out|spell out|list)\b(\s\w+){0,5}?\s((system|hidden|secret|internal|developer|pre ?prompt)\s(prompt|instructions?|message|rules|guidelines|configuration|directives?)|(initial|original|starting|first)\s(prompt|instructions?|directives?))\b",
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
    classifier: Option<Arc<Classifier>>,
    max_windows: usize,
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

/// The classifier's probability on the flagging scale: its validated
/// `threshold` maps to [`FLAG_SCORE`], 0 and 1 stay put, linear between.
pub fn calibrated(p: f32, threshold: f32) -> f32 {
    let p = p.clamp(0.0, 1.0);
    if p < threshold {
        p / threshold * FLAG_SCORE
    } else {
        FLAG_SCORE + (p - threshold) / (1.0 - threshold).max(f32::EPSILON) * (1.0 - FLAG_SCORE)
    }
}

/// (score, why) from the rule families, the delimiter check and decoded
/// payloads alone; 0 when nothing fires.
pub fn rule_score(text: &str) -> (f32, String) {
    let mut best = rules(&fold(text)).map_or((0.0, String::new()), |(s, n)| (s, n.to_string()));
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
    fn cost(&self) -> Cost {
        match self.classifier {
            Some(_) => Cost::Expensive,
            None => Cost::Cheap,
        }
    }

    fn can_redact(&self) -> bool {
        false
    }

    /// The rules' judgement (part `rules`, when one fires) and the
    /// classifier's (part `classifier`, on every text long enough for it,
    /// so reports show its score).
    async fn scan(&self, text: &str) -> Result<Vec<Match>, String> {
        let (score, why) = rule_score(text);
        let mut found = Vec::with_capacity(2);
        if score > 0.0 {
            found.push(Match::judgement(score, why).part("rules"));
        }
        if let Some(c) = &self.classifier
            && let Some(p) = c.probability(text, self.max_windows).await?
        {
            let reason = format!("classifier (probability {p:.4})");
            found.push(Match::judgement(calibrated(p, c.threshold()), reason).part("classifier"));
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests;
