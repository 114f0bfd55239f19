//! `guard_model`: asks a guard model served by Ollama (Llama Guard 3,
//! ShieldGemma, Granite Guardian) whether a text is safe.
//!
//! - The text goes to `/api/chat` as a conversation turn, never pasted into
//!   an instruction: the model's own template (as its card specifies) puts
//!   it in the classifier prompt, so the text cannot rewrite the
//!   classifier's instructions. A prompt is a user turn; a reply is an
//!   assistant turn after the prompt it answers (`with_prompt`).
//! - The answer is read by its exact structure (`answer.rs`); anything else
//!   is a scanner error (`fail_mode` decides; errors are never cached).
//! - Each scanner has its own connection pool, a bound on calls in flight
//!   (`max_concurrency`) and a timeout (`timeout_ms`) covering the wait for
//!   a slot and the call. Its calls go straight to `url`, never through the
//!   guard.
//! - Verdicts are cached like every other scanner's (the policy
//!   fingerprint covers every option here), and single-flight makes a
//!   burst of identical texts one call.

mod answer;
mod call;

use std::time::Duration;

use async_trait::async_trait;
use futures_util::future::join_all;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Cost, Match, Mode, Scanner, Turn};
use answer::{LLAMA_GUARD_CATEGORIES, category_number};
use call::Answer;

/// Default model: the smallest Llama Guard 3 (`ollama pull llama-guard3:1b`).
pub const DEFAULT_MODEL: &str = "llama-guard3:1b";
/// Default time for one judgement, the wait for a slot included.
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;
/// Default calls in flight per scanner.
pub const DEFAULT_MAX_CONCURRENCY: usize = 4;
/// Most of a prompt sent along with a reply (its end, nearest the reply).
pub const PROMPT_CONTEXT_BYTES: usize = 32 * 1024;
/// Granite Guardian's risks that judge a prompt or a reply on its own
/// (the RAG and function-call ones need context this scanner does not have).
pub const GRANITE_RISKS: [&str; 7] = [
    "harm",
    "social_bias",
    "jailbreak",
    "violence",
    "profanity",
    "sexual_content",
    "unethical_behavior",
];

/// The answer format and conversation a guard model expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Family {
    #[serde(rename = "llama_guard")]
    LlamaGuard,
    #[serde(rename = "shieldgemma")]
    ShieldGemma,
    #[serde(rename = "granite_guardian")]
    GraniteGuardian,
}

impl Family {
    /// The family a model name belongs to, for names that say it.
    fn of_model(model: &str) -> Option<Self> {
        let m = model.to_ascii_lowercase();
        if m.contains("llama-guard") || m.contains("llama_guard") || m.contains("llamaguard") {
            Some(Self::LlamaGuard)
        } else if m.contains("shieldgemma") {
            Some(Self::ShieldGemma)
        } else if m.contains("granite") && m.contains("guardian") {
            Some(Self::GraniteGuardian)
        } else {
            None
        }
    }
}

/// `{type: guard_model, model: "llama-guard3:1b", categories: [S1, S10]}`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Name in logs and metrics; defaults to the type.
    pub name: Option<String>,
    /// `block` or `report` (a judgement has no span to redact).
    pub mode: Mode,
    /// The guard model, as Ollama names it.
    pub model: String,
    /// Where it is served; `ollama.url` when unset.
    pub url: Option<String>,
    /// Answer format; read off the model name when unset.
    pub family: Option<Family>,
    /// Llama Guard: the categories that block (`S1`..`S14`; the others are
    /// reported; empty: all block). Granite Guardian: the risks to check,
    /// one call each (default `[harm]`). ShieldGemma: none (its template
    /// judges its four policies together).
    pub categories: Vec<String>,
    /// A text is flagged when its score reaches this (the probability of
    /// the unsafe answer with logprobs, else 1 for unsafe and 0 for safe).
    pub threshold: f32,
    pub timeout_ms: u64,
    pub max_concurrency: usize,
    /// Judge a reply together with the prompt it answers (response
    /// classification); off: the reply alone.
    pub with_prompt: bool,
    /// Ask for logprobs, for a score between 0 and 1 (older Ollama
    /// versions ignore the request).
    pub logprobs: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            name: None,
            mode: Mode::Block,
            model: DEFAULT_MODEL.into(),
            url: None,
            family: None,
            categories: Vec::new(),
            threshold: 0.5,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            max_concurrency: DEFAULT_MAX_CONCURRENCY,
            with_prompt: true,
            logprobs: true,
        }
    }
}

pub struct GuardModel {
    client: reqwest::Client,
    /// `{url}/api/chat`.
    endpoint: reqwest::Url,
    model: String,
    family: Family,
    /// Llama Guard categories that block (empty: all).
    blocking: Vec<usize>,
    /// Granite Guardian risks, one call each.
    risks: Vec<String>,
    with_prompt: bool,
    logprobs: bool,
    timeout: Duration,
    slots: tokio::sync::Semaphore,
}

impl Config {
    /// Builds the scanner; `ollama_url` serves the model unless `url` is set.
    pub fn build(&self, ollama_url: &str) -> Result<GuardModel, String> {
        if self.model.trim().is_empty() {
            return Err(format!(
                "model: name the guard model (e.g. {DEFAULT_MODEL})"
            ));
        }
        let family = self.family.or_else(|| Family::of_model(&self.model)).ok_or_else(|| {
            format!(
                "family: cannot tell from model {:?}; set llama_guard, shieldgemma or granite_guardian",
                self.model
            )
        })?;
        let (blocking, risks) = self.categories(family)?;
        if !(self.threshold > 0.0 && self.threshold <= 1.0) {
            return Err("threshold: must be within (0, 1]".into());
        }
        if !(1..=600_000).contains(&self.timeout_ms) {
            return Err("timeout_ms: must be within 1..=600000".into());
        }
        if !(1..=1024).contains(&self.max_concurrency) {
            return Err("max_concurrency: must be within 1..=1024".into());
        }
        let base = self
            .url
            .as_deref()
            .unwrap_or(ollama_url)
            .trim_end_matches('/');
        let endpoint = reqwest::Url::parse(&format!("{base}/api/chat"))
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| format!("url: {base:?} is not an http:// or https:// URL"))?;
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(self.timeout_ms.min(5_000)))
            .pool_idle_timeout(Duration::from_secs(90))
            .no_proxy()
            .build()
            .map_err(|e| format!("building its HTTP client: {e}"))?;
        Ok(GuardModel {
            client,
            endpoint,
            model: self.model.clone(),
            family,
            blocking,
            risks,
            with_prompt: self.with_prompt,
            logprobs: self.logprobs,
            timeout: Duration::from_millis(self.timeout_ms),
            slots: tokio::sync::Semaphore::new(self.max_concurrency),
        })
    }

    /// The blocking Llama Guard categories, or the Granite risks to check.
    fn categories(&self, family: Family) -> Result<(Vec<usize>, Vec<String>), String> {
        let list = &self.categories;
        match family {
            Family::LlamaGuard => list
                .iter()
                .map(|c| {
                    category_number(c).ok_or_else(|| {
                        format!("categories: {c:?} is not a Llama Guard 3 code (S1..S14)")
                    })
                })
                .collect::<Result<_, _>>()
                .map(|blocking| (blocking, Vec::new())),
            Family::ShieldGemma if list.is_empty() => Ok((Vec::new(), Vec::new())),
            Family::ShieldGemma => Err(
                "categories: shieldgemma judges its four policies together; remove categories"
                    .into(),
            ),
            Family::GraniteGuardian => {
                if let Some(bad) = list.iter().find(|r| !GRANITE_RISKS.contains(&r.as_str())) {
                    return Err(format!(
                        "categories: {bad:?} is not a Granite Guardian risk ({})",
                        GRANITE_RISKS.join(", ")
                    ));
                }
                let risks = match list.is_empty() {
                    true => vec!["harm".to_string()],
                    false => list.clone(),
                };
                Ok((Vec::new(), risks))
            }
        }
    }
}

impl GuardModel {
    /// The conversation to judge: the text as a user turn (a prompt) or as
    /// the assistant turn after the prompt it answers (a reply).
    fn messages(&self, text: &str, turn: &Turn, system: Option<&str>) -> Vec<Value> {
        let mut messages = Vec::with_capacity(3);
        if let Some(system) = system {
            messages.push(json!({"role": "system", "content": system}));
        }
        match turn {
            Turn::Prompt => messages.push(json!({"role": "user", "content": text})),
            Turn::Reply(prompt) => {
                let prompt = prompt
                    .as_deref()
                    .filter(|p| self.with_prompt && !p.is_empty());
                if let Some(prompt) = prompt {
                    let prompt = tail(prompt, PROMPT_CONTEXT_BYTES);
                    messages.push(json!({"role": "user", "content": prompt}));
                }
                messages.push(json!({"role": "assistant", "content": text}));
            }
        }
        messages
    }

    /// Llama Guard: a match per category named (reported only, when it is
    /// not one that blocks), or the score alone for a safe answer.
    fn llama_guard(&self, answer: &Answer) -> Result<Vec<Match>, String> {
        let named = answer::llama_guard(&answer.content).map_err(|e| self.unreadable(e))?;
        let score = answer::score(&answer.logprobs, "unsafe", "safe");
        let Some(codes) = named else {
            return Ok(score
                .map(|p| vec![Match::judgement(p, "safe")])
                .unwrap_or_default());
        };
        let score = score.unwrap_or(1.0);
        Ok(codes
            .into_iter()
            .map(|n| {
                let m = Match::judgement(score, format!("S{n} {}", LLAMA_GUARD_CATEGORIES[n - 1]));
                match self.blocking.is_empty() || self.blocking.contains(&n) {
                    true => m,
                    false => m.reported(),
                }
            })
            .collect())
    }

    /// ShieldGemma, Granite Guardian: one judgement, scored by P(Yes).
    fn yes_no(&self, answer: &Answer, what: &str) -> Result<Vec<Match>, String> {
        let yes = match self.family {
            Family::GraniteGuardian => answer::granite(&answer.content),
            _ => answer::yes_no(&answer.content),
        }
        .map_err(|e| self.unreadable(e))?;
        let score = answer::score(&answer.logprobs, "yes", "no");
        Ok(match (yes, score) {
            (true, p) => vec![Match::judgement(p.unwrap_or(1.0), what.to_string())],
            (false, Some(p)) => vec![Match::judgement(p, format!("{what}: no"))],
            (false, None) => Vec::new(),
        })
    }

    fn unreadable(&self, why: String) -> String {
        format!("{} answered in an unexpected form ({why})", self.model)
    }
}

#[async_trait]
impl Scanner for GuardModel {
    fn cost(&self) -> Cost {
        Cost::Expensive
    }

    fn can_redact(&self) -> bool {
        false
    }

    fn uses_prompt(&self) -> bool {
        self.with_prompt
    }

    async fn scan(&self, text: &str) -> Result<Vec<Match>, String> {
        self.scan_turn(text, &Turn::Prompt).await
    }

    async fn scan_turn(&self, text: &str, turn: &Turn) -> Result<Vec<Match>, String> {
        match self.family {
            Family::LlamaGuard => {
                let answer = self.ask(self.messages(text, turn, None)).await?;
                self.llama_guard(&answer)
            }
            Family::ShieldGemma => {
                let answer = self.ask(self.messages(text, turn, None)).await?;
                self.yes_no(&answer, "violates its safety policies")
            }
            Family::GraniteGuardian => {
                let calls = self.risks.iter().map(|risk| async move {
                    let answer = self.ask(self.messages(text, turn, Some(risk))).await?;
                    self.yes_no(&answer, risk)
                });
                let mut found = Vec::new();
                for matches in join_all(calls).await {
                    found.extend(matches?);
                }
                Ok(found)
            }
        }
    }
}

/// The last `max` bytes of `text`, cut at a character boundary.
fn tail(text: &str, max: usize) -> &str {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

#[cfg(test)]
mod tests;
