//! A guard model's answer, read by its exact structure (never by looking
//! for a word somewhere in it): anything else is an error, which the guard's
//! `fail_mode` decides and the cache never keeps.
//!
//! - Llama Guard 3: `safe`, or `unsafe` and on the next line a comma list
//!   of its category codes (`S1`..`S14`).
//! - ShieldGemma, Granite Guardian 3.0/3.1: `Yes` (the text violates the
//!   policy) or `No`.
//! - Granite Guardian 3.2 and later: `<score> yes </score>` (or `no`),
//!   after an optional `<think>...</think>` trace.
//!
//! With logprobs (Ollama 0.12.11 and later) the score is the probability of
//! the positive answer at the token that decided it.

use serde::Deserialize;

/// The Llama Guard 3 hazard categories (MLCommons taxonomy; `S14` only in
/// the 8B model).
pub const LLAMA_GUARD_CATEGORIES: [&str; 14] = [
    "Violent Crimes",
    "Non-Violent Crimes",
    "Sex-Related Crimes",
    "Child Sexual Exploitation",
    "Defamation",
    "Specialized Advice",
    "Privacy",
    "Intellectual Property",
    "Indiscriminate Weapons",
    "Hate",
    "Suicide & Self-Harm",
    "Sexual Content",
    "Elections",
    "Code Interpreter Abuse",
];

/// `S2` → 2, for codes Llama Guard 3 has.
pub fn category_number(code: &str) -> Option<usize> {
    let n: usize = code.strip_prefix('S')?.parse().ok()?;
    let canonical = format!("S{n}") == code;
    (canonical && (1..=LLAMA_GUARD_CATEGORIES.len()).contains(&n)).then_some(n)
}

/// Llama Guard's verdict: `None` for safe, else the categories it named
/// (as numbers, in its order).
pub fn llama_guard(content: &str) -> Result<Option<Vec<usize>>, String> {
    let mut lines = content.trim().lines().map(str::trim);
    let first = lines.next().unwrap_or("");
    let second = lines.next();
    if lines.any(|l| !l.is_empty()) {
        return Err("answer has more than two lines".into());
    }
    match (first, second) {
        ("safe", None) => Ok(None),
        ("unsafe", Some(list)) => list
            .split(',')
            .map(|code| {
                category_number(code.trim())
                    .ok_or_else(|| "unsafe answer names an unknown category".to_string())
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        ("unsafe", None) => Err("unsafe answer names no category".into()),
        _ => Err("answer is neither safe nor unsafe".into()),
    }
}

/// ShieldGemma's verdict: whether the text violates its policy.
pub fn yes_no(content: &str) -> Result<bool, String> {
    match content.trim() {
        "Yes" => Ok(true),
        "No" => Ok(false),
        _ => Err("answer is neither Yes nor No".into()),
    }
}

/// Granite Guardian's verdict, in either of its answer forms.
pub fn granite(content: &str) -> Result<bool, String> {
    let mut rest = content.trim();
    if let Some(after) = rest.strip_prefix("<think>") {
        let (_, after) = after
            .split_once("</think>")
            .ok_or("unterminated <think> in answer")?;
        rest = after.trim();
    }
    if let Some(inner) = rest
        .strip_prefix("<score>")
        .and_then(|r| r.strip_suffix("</score>"))
    {
        return match inner.trim() {
            "yes" | "Yes" => Ok(true),
            "no" | "No" => Ok(false),
            _ => Err("<score> is neither yes nor no".into()),
        };
    }
    yes_no(rest).map_err(|_| "answer is neither Yes/No nor <score> yes|no </score>".into())
}

/// One generated token and its most likely alternatives, as Ollama's chat
/// response lists them (`logprobs`).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Logprob {
    #[serde(default)]
    pub token: String,
    #[serde(default)]
    pub logprob: f64,
    #[serde(default)]
    pub top_logprobs: Vec<Alternative>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct Alternative {
    #[serde(default)]
    pub token: String,
    #[serde(default)]
    pub logprob: f64,
}

/// The probability of `positive` at the first token that reads `positive`
/// or `negative` (trimmed, any case), from that position's alternatives:
/// normalised over the two when both are listed. `None` without logprobs.
pub fn score(logprobs: &[Logprob], positive: &str, negative: &str) -> Option<f32> {
    let reads = |token: &str, word: &str| token.trim().eq_ignore_ascii_case(word);
    let at = logprobs
        .iter()
        .find(|l| reads(&l.token, positive) || reads(&l.token, negative))?;
    let mut seen: Vec<&str> = Vec::new();
    let (mut pos, mut neg) = (0.0f64, 0.0f64);
    let chosen = std::iter::once((at.token.as_str(), at.logprob));
    let alternatives = at
        .top_logprobs
        .iter()
        .map(|a| (a.token.as_str(), a.logprob));
    for (token, logprob) in chosen.chain(alternatives) {
        if seen.contains(&token) || !logprob.is_finite() {
            continue;
        }
        seen.push(token);
        if reads(token, positive) {
            pos += logprob.exp();
        } else if reads(token, negative) {
            neg += logprob.exp();
        }
    }
    let p = match (pos > 0.0, neg > 0.0) {
        (true, true) => pos / (pos + neg),
        (true, false) => pos,
        (false, true) => 1.0 - neg,
        (false, false) => return None,
    };
    Some(p.clamp(0.0, 1.0) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama_guard_answers_are_read_by_structure() {
        assert_eq!(llama_guard("safe"), Ok(None));
        assert_eq!(llama_guard("\n\nsafe\n"), Ok(None));
        assert_eq!(llama_guard("unsafe\nS2"), Ok(Some(vec![2])));
        assert_eq!(
            llama_guard("unsafe\nS1,S10, S14"),
            Ok(Some(vec![1, 10, 14]))
        );
        for bad in [
            "",
            "Safe",
            "safe.",
            "the text is safe",
            "unsafe",
            "unsafe\nS15",
            "unsafe\nS0",
            "unsafe\nS02",
            "unsafe\nviolence",
            "unsafe\nS1,",
            "safe\nS1",
            "unsafe\nS1\nS2",
            "I cannot answer that. safe",
        ] {
            assert!(llama_guard(bad).is_err(), "{bad:?} must not be read");
        }
    }

    #[test]
    fn yes_no_answers_are_exact() {
        assert_eq!(yes_no("Yes"), Ok(true));
        assert_eq!(yes_no(" No\n"), Ok(false));
        for bad in ["yes", "Yes.", "Yes, it does", "Maybe", "", "No No"] {
            assert!(yes_no(bad).is_err(), "{bad:?} must not be read");
        }
    }

    #[test]
    fn granite_reads_both_answer_forms() {
        assert_eq!(granite("Yes"), Ok(true));
        assert_eq!(granite("<score> no </score>"), Ok(false));
        assert_eq!(
            granite("<think>The user asks about locks.</think>\n<score> yes </score>"),
            Ok(true)
        );
        for bad in [
            "<score> maybe </score>",
            "<think>no end <score> yes </score>",
            "<score> yes",
            "yes </score>",
            "The answer is <score> yes </score>",
        ] {
            assert!(granite(bad).is_err(), "{bad:?} must not be read");
        }
    }

    fn lp(token: &str, logprob: f64, top: &[(&str, f64)]) -> Logprob {
        Logprob {
            token: token.into(),
            logprob,
            top_logprobs: top
                .iter()
                .map(|(t, l)| Alternative {
                    token: (*t).into(),
                    logprob: *l,
                })
                .collect(),
        }
    }

    #[test]
    fn scores_come_from_the_deciding_tokens_alternatives() {
        let yes = (0.9f64).ln();
        let no = (0.05f64).ln();
        let answer = [lp("Yes", yes, &[("Yes", yes), ("No", no), ("The", -5.0)])];
        let p = score(&answer, "yes", "no").expect("score");
        assert!((p - 0.9 / 0.95).abs() < 1e-5, "{p}");
        // Leading blank tokens are skipped; one side alone is its probability.
        let answer = [
            lp("\n\n", -0.01, &[]),
            lp("unsafe", (0.8f64).ln(), &[("unsafe", (0.8f64).ln())]),
        ];
        let p = score(&answer, "unsafe", "safe").expect("score");
        assert!((p - 0.8).abs() < 1e-5, "{p}");
        let answer = [lp("safe", (0.7f64).ln(), &[])];
        let p = score(&answer, "unsafe", "safe").expect("score");
        assert!((p - 0.3).abs() < 1e-5, "{p}");
        assert_eq!(score(&[], "yes", "no"), None);
        assert_eq!(score(&[lp("<", -0.1, &[])], "yes", "no"), None);
    }
}
