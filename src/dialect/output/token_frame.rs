//! The frames Ollama streams for each token, read without building a tree.
//!
//! Nearly every frame of an Ollama stream carries one token, and Go's
//! encoder writes it the same way byte for byte but for its strings:
//!
//! ```text
//! /api/chat:     {"model":"…","created_at":"…","message":{"role":"assistant","content":"…"},"done":false}
//! /api/generate: {"model":"…","created_at":"…","response":"…","done":false}
//! ```
//!
//! (a thinking model adds `"thinking":"…"` after the content or response).
//! `/api/chat`'s last frame, and its whole reply, end
//! `"done_reason":"…","done":true` and the counts instead.
//! [`token_frame`] reads exactly these shapes, and gives the texts that
//! [`super::texts`] gives for them: the content, response or thinking when
//! not empty; `model`, `created_at` and `done_reason` are never scanned,
//! `role` must be `assistant`. A frame one byte different (another key or
//! key order, whitespace, an escape or a character past ASCII in `model`,
//! a count that is not a plain integer, `/api/generate`'s `context`) is
//! `None`, and read the general way, with `Tree::parse`. The tests compare
//! the two on every frame they draw.

use std::borrow::Cow;

use super::OutText;
use super::keys::OLLAMA_COUNTS;
use crate::dialect::Route;

/// A frame read the quick way.
#[derive(Debug, PartialEq)]
pub struct TokenFrame {
    pub texts: Vec<OutText>,
    /// `done: true`: the last frame of a stream, or a whole reply.
    pub last: bool,
}

/// `data` read when it is a token frame of `route` (`/api/chat`,
/// `/api/generate`) as Ollama writes it, or `/api/chat`'s last frame or
/// whole reply (`"done_reason":…,"done":true` and the counts); `None` for
/// any other frame.
pub fn token_frame(route: Route, data: &[u8]) -> Option<TokenFrame> {
    // `Tree::parse` first requires the whole frame to be valid UTF-8. Here
    // it is checked piece by piece, each piece once: what is matched
    // literally and the counts are ASCII, `plain` takes ASCII only, and
    // `string` checks its text.
    let mut at = Cursor(data);
    at.literal("{\"model\":\"")?;
    at.plain()?;
    at.literal(",\"created_at\":\"")?;
    at.plain()?;
    let (text, pointer, field) = match route {
        Route::Chat => {
            at.literal(",\"message\":{\"role\":\"assistant\",\"content\":")?;
            (at.string()?, "/message/content", "content")
        }
        Route::Generate => {
            at.literal(",\"response\":")?;
            (at.string()?, "/response", "response")
        }
        _ => return None,
    };
    let mut texts = Vec::with_capacity(1);
    push(&mut texts, text, pointer, field);
    if at.literal(",\"thinking\":").is_some() {
        let pointer = match route {
            Route::Chat => "/message/thinking",
            _ => "/thinking",
        };
        push(&mut texts, at.string()?, pointer, "thinking");
    }
    if route == Route::Chat {
        at.literal("}")?;
    }
    let last = match at.literal(",\"done\":false}") {
        Some(()) => false,
        // Only /api/chat's: /api/generate's last frame carries `context`.
        None if route == Route::Chat => {
            at.literal(",\"done_reason\":\"")?;
            at.plain()?;
            at.literal(",\"done\":true")?;
            for key in OLLAMA_COUNTS {
                if at.key(key).is_some() {
                    at.count()?;
                }
            }
            at.literal("}")?;
            true
        }
        None => return None,
    };
    at.0.is_empty().then_some(TokenFrame { texts, last })
}

/// Adds a text as [`super::texts`] would: an empty string is no text.
fn push(texts: &mut Vec<OutText>, text: String, pointer: &'static str, field: &'static str) {
    if !text.is_empty() {
        texts.push(OutText {
            pointer: Cow::Borrowed(pointer),
            text,
            key: false,
            field: Some(Cow::Borrowed(field)),
        });
    }
}

/// What is left of the frame to read. Its cuts all fall next to an ASCII
/// quote, brace or digit, so never inside a character.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    /// Steps over `text`, if it comes next.
    fn literal(&mut self, text: &str) -> Option<()> {
        self.0 = self.0.strip_prefix(text.as_bytes())?;
        Some(())
    }

    /// Steps over `,"key":`, if it comes next.
    fn key(&mut self, key: &str) -> Option<()> {
        let rest = self.0.strip_prefix(b",\"")?.strip_prefix(key.as_bytes())?;
        self.0 = rest.strip_prefix(b"\":")?;
        Some(())
    }

    /// Steps over a count as Go writes one: 1 to 19 digits, no leading
    /// zero (so it fits a u64, as serde_json reads it).
    fn count(&mut self) -> Option<()> {
        let digits = self.0.iter().take_while(|b| b.is_ascii_digit()).count();
        let leading_zero = digits > 1 && self.0[0] == b'0';
        if digits == 0 || digits > 19 || leading_zero {
            return None;
        }
        self.0 = &self.0[digits..];
        Some(())
    }

    /// Steps over the rest of a string of printable ASCII that needs no
    /// decoding (no escape) and its closing quote. Anything else (a model
    /// name in another script too) is left to the general way.
    fn plain(&mut self) -> Option<()> {
        let end = memchr::memchr(b'"', self.0)?;
        let printable = |b: &u8| (0x20..0x80).contains(b) && *b != b'\\';
        if !self.0[..end].iter().all(printable) {
            return None;
        }
        self.0 = &self.0[end + 1..];
        Some(())
    }

    /// Reads a whole JSON string, its quotes included, decoded as
    /// serde_json decodes it (the reader `Tree::parse` uses): `None` where
    /// it would refuse it (invalid UTF-8, a control character, a lone
    /// surrogate...).
    fn string(&mut self) -> Option<String> {
        let body = self.0.strip_prefix(b"\"")?;
        let mut i = 0;
        let end = loop {
            i += memchr::memchr2(b'"', b'\\', &body[i..])?;
            match body[i] {
                b'"' => break i,
                // An escape: its next byte is never the closing quote.
                _ => i += 2,
            }
            if i >= body.len() {
                return None;
            }
        };
        let (quoted, rest) = self.0.split_at(end + 2);
        self.0 = rest;
        let quoted = std::str::from_utf8(quoted).ok()?;
        let raw = &quoted[1..end + 1];
        if !raw.contains('\\') {
            return match raw.bytes().any(|b| b < 0x20) {
                true => None,
                false => Some(raw.to_string()),
            };
        }
        serde_json::from_str(quoted).ok()
    }
}

#[cfg(test)]
#[path = "token_frame_tests.rs"]
mod tests;
