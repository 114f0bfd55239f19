//! How much of a streamed text to hold back: the trailing bytes that could
//! still grow into a finding once more text arrives. A stream releases text
//! only up to there, so a secret or a banned phrase is never sent in part,
//! and ordinary text flows at once.
//!
//! Regex scanners answer with [`Viable`]: a lazy DFA over their patterns,
//! started (anchored) at each of the last [`MAX_TAIL_BYTES`] positions; the
//! earliest start from which the DFA is still alive at the end of the text
//! is where holding starts. `\b` is read as an ASCII word boundary here (the
//! lazy DFA cannot look at Unicode word boundaries): that can only hold more,
//! since a non-ASCII letter then never joins a word.

use std::sync::Mutex;

use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::{Anchored, Input};

/// Most bytes a regex tail can hold back. A match longer than this is found
/// (and redacted or blocked) while it is still being written; the stream
/// then blocks rather than redact text it already sent.
pub const MAX_TAIL_BYTES: usize = 256;

/// A set of patterns that can say whether a text's tail might become a match.
pub struct Viable {
    dfa: DFA,
    cache: Mutex<Cache>,
}

impl Viable {
    pub fn new<P: AsRef<str>>(patterns: &[P]) -> Result<Self, String> {
        let ascii: Vec<String> = patterns
            .iter()
            .map(|p| ascii_boundaries(p.as_ref()))
            .collect();
        let dfa = DFA::builder()
            .configure(DFA::config().cache_capacity(2 * 1024 * 1024))
            .build_many(&ascii)
            .map_err(|e| e.to_string())?;
        let cache = Mutex::new(dfa.create_cache());
        Ok(Self { dfa, cache })
    }

    /// Bytes at the end of `text` that could be the start of a match not
    /// complete yet (at most [`MAX_TAIL_BYTES`], on a char boundary). No
    /// match starts in the first `settled` bytes: they are not tried. (A
    /// stream passes the text it sent, found dead then: a start the DFA
    /// found dead stays dead whatever is appended. Each token then tries
    /// a few starts, not the last 256.)
    pub fn tail(&self, text: &str, settled: usize) -> usize {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let from = text
            .len()
            .saturating_sub(MAX_TAIL_BYTES)
            .max(settled.min(text.len()));
        (from..text.len())
            .filter(|&s| text.is_char_boundary(s))
            .find(|&s| self.alive_to_end(&mut cache, text, s))
            .map_or(0, |s| text.len() - s)
    }

    fn alive_to_end(&self, cache: &mut Cache, text: &str, start: usize) -> bool {
        let input = Input::new(text).range(start..).anchored(Anchored::Yes);
        let Ok(mut state) = self.dfa.start_state_forward(cache, &input) else {
            return true; // could not tell: hold
        };
        for &b in &text.as_bytes()[start..] {
            match self.dfa.next_state(cache, state, b) {
                Ok(next) if next.is_dead() => return false,
                Ok(next) if next.is_quit() => return true,
                Ok(next) => state = next,
                Err(_) => return true,
            }
        }
        true
    }
}

/// `pattern` with every `\b` and `\B` made ASCII (`(?-u:\b)`).
fn ascii_boundaries(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(b @ ('b' | 'B')) => {
                out.push_str("(?-u:\\");
                out.push(b);
                out.push(')');
            }
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Bytes at the end of `text` that are a proper prefix of one of
/// `phrases` (the longest such suffix).
pub fn phrase_tail<P: AsRef<str>>(text: &str, phrases: &[P]) -> usize {
    let mut best = 0;
    for p in phrases {
        let p = p.as_ref();
        let longest = (p.len().saturating_sub(1)).min(text.len());
        for k in (best + 1..=longest).rev() {
            if p.is_char_boundary(k) && text.ends_with(&p[..k]) {
                best = k;
                break;
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_prefix_is_held_and_prose_is_not() {
        let v = Viable::new(&[r"\b(ghp_[A-Za-z0-9]{36})\b"]).expect("builds");
        assert_eq!(v.tail("my token is ghp_ab", 0), 6);
        assert_eq!(v.tail("my token is g", 0), 1);
        assert_eq!(v.tail("the sky is blue", 0), 0);
        assert_eq!(v.tail("not a token: xghp_ab", 0), 0, "\\b before ghp_");
    }

    #[test]
    fn non_ascii_text_is_not_held_whole() {
        let v = Viable::new(&[r"\bsk-[A-Za-z0-9]{8,}\b"]).expect("builds");
        assert_eq!(v.tail("日本語のテキストです", 0), 0);
        assert_eq!(v.tail("日本語 sk-12", 0), 5);
    }

    #[test]
    fn tails_are_bounded() {
        let v = Viable::new(&["[a-z]{1000}"]).expect("builds");
        assert_eq!(v.tail(&"a".repeat(5000), 0), MAX_TAIL_BYTES);
    }

    #[test]
    fn settled_bytes_are_not_tried() {
        let v = Viable::new(&[r"\b(ghp_[A-Za-z0-9]{36})\b"]).expect("builds");
        assert_eq!(v.tail("my token is ghp_ab", 12), 6);
        assert_eq!(v.tail("my token is ghp_ab", 13), 0);
        assert_eq!(v.tail("ghp_ab", 100), 0);
    }

    #[test]
    fn a_stream_that_skips_what_it_sent_holds_what_a_full_check_holds() {
        // A start found dead stays dead whatever is appended: tokens are
        // appended one at a time, and each check skips what the previous
        // one released. Tokens mix word and non-word bytes, pattern
        // prefixes and their continuations.
        let v = Viable::new(&[
            r"\b(ghp_[A-Za-z0-9]{36})\b",
            r"\bsk-[A-Za-z0-9]{20,}\b",
            r"AKIA[0-9A-Z]{16}",
            r"(?i)password\s*[:=]\s*\S{8,}",
        ])
        .expect("builds");
        let tokens = [
            "g", "hp_", "ab", "sk", "-", "AK", "IA", "Q7", " ", "x", "pass", "word", ": ", "=",
            "é", "0", "__", "\n",
        ];
        // 20,000 sequences of 10 tokens, drawn by a fixed LCG.
        let mut seed: u64 = 7;
        let mut checked = 0;
        for _ in 0..20_000 {
            let (mut text, mut released) = (String::new(), 0);
            for _ in 0..10 {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                text.push_str(tokens[(seed >> 33) as usize % tokens.len()]);
                let full = v.tail(&text, 0);
                assert_eq!(v.tail(&text, released), full, "{text:?} after {released}");
                released = text.len() - full;
                checked += 1;
            }
        }
        assert_eq!(checked, 200_000);
    }

    #[test]
    fn escaped_backslashes_are_left_alone() {
        assert_eq!(ascii_boundaries(r"\\b\bx\B"), r"\\b(?-u:\b)x(?-u:\B)");
    }

    #[test]
    fn phrase_tails_are_the_longest_proper_prefix() {
        let phrases = ["kill all humans", "badword"];
        assert_eq!(phrase_tail("we must kill all hu", &phrases), 11);
        assert_eq!(phrase_tail("a bad", &phrases), 3);
        assert_eq!(phrase_tail("nothing here", &phrases), 0);
        assert_eq!(
            phrase_tail("kill all humans", &phrases),
            0,
            "complete: found"
        );
    }
}
