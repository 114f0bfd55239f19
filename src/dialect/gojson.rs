//! Reading request bodies the way Ollama reads them.
//!
//! Ollama decodes with Go's `encoding/json`, which differs from a plain
//! `serde_json::Value` parse in two ways that matter to a guard:
//! - struct fields match keys case-insensitively with simple Unicode folding
//!   (`Prompt`, `PROMPT`, `ſystem` with U+017F and `K` with U+212A all name a
//!   field), and
//! - when several keys name the same field, the last one wins.
//!
//! Instead of re-implementing Go's merge rules, the proxy refuses what could be
//! read two ways: [`parse`] rejects duplicate keys anywhere in the document,
//! and [`folds_to`] lets the schema walk reject a key that Ollama would read as
//! a known field without it being spelled exactly. What is left has one
//! reading, the same in Go and here, so forwarding the original bytes forwards
//! exactly what was scanned. Real clients never send either shape.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Parses a JSON document, refusing duplicate object keys (with the path of
/// the object that repeats one). Nesting deeper than serde_json's limit (128)
/// is an error too: refused, never passed.
pub fn parse(bytes: &[u8]) -> Result<Value, String> {
    serde_json::from_str::<Strict>(utf8(bytes)?)
        .map(|s| s.0)
        .map_err(|e| e.to_string())
}

/// `bytes` as text, checked once: serde_json then reads it as a `str` and
/// does not check every string it meets again (from a slice it does, and
/// that was 8% of a stream frame's cost). The same documents are refused:
/// outside strings, a byte that is not ASCII is a syntax error anyway.
fn utf8(bytes: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(bytes).map_err(|e| {
        format!(
            "invalid UTF-8 at byte {} (JSON text must be UTF-8)",
            e.valid_up_to()
        )
    })
}

/// True when Go's `encoding/json` would decode `key` into the struct field
/// `field` (an ASCII field name): equal under simple Unicode case folding.
/// Besides ASCII case, the only characters that fold to ASCII letters are
/// U+017F (long s, to `s`) and U+212A (Kelvin sign, to `k`).
pub fn folds_to(key: &str, field: &str) -> bool {
    let mut want = field.chars();
    for c in key.chars() {
        let Some(f) = want.next() else {
            return false;
        };
        let same = match c {
            '\u{017F}' => f.eq_ignore_ascii_case(&'s'),
            '\u{212A}' => f.eq_ignore_ascii_case(&'k'),
            _ => c.eq_ignore_ascii_case(&f),
        };
        if !same {
            return false;
        }
    }
    want.next().is_none()
}

/// Deepest nesting Go's `encoding/json` decodes (its `maxNestingDepth`).
pub const GO_MAX_DEPTH: usize = 10_000;

/// Nesting shallower than this is parsed, walked and dropped on the
/// caller's stack; deeper documents get stack as they need it.
pub(crate) const SHALLOW: usize = 128;

/// A document as a `Value`, to be rewritten (a redacted model frame; model
/// output is read through [`super::tree::Tree`]): any JSON Go would decode
/// (nesting to [`GO_MAX_DEPTH`]), refusing duplicate keys, a byte-order mark,
/// NaN and trailing bytes. Deep documents are dropped without recursion.
#[derive(Debug)]
pub struct Doc {
    pub value: Value,
    pub depth: usize,
}

impl Doc {
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let (value, depth) = read_document(bytes, |de| Strict::deserialize(de).map(|s| s.0))?;
        Ok(Self { value, depth })
    }

    /// The document as JSON bytes.
    pub fn to_vec(&self) -> Vec<u8> {
        deep(self.depth, || serde_json::to_vec(&self.value)).unwrap_or_default()
    }
}

impl Drop for Doc {
    fn drop(&mut self) {
        if self.depth >= SHALLOW {
            let mut stack = vec![std::mem::take(&mut self.value)];
            while let Some(v) = stack.pop() {
                match v {
                    Value::Array(items) => stack.extend(items),
                    Value::Object(map) => stack.extend(map.into_iter().map(|(_, v)| v)),
                    _ => {}
                }
            }
        }
    }
}

type StrDeserializer<'a> = serde_json::Deserializer<serde_json::de::StrRead<'a>>;

/// Reads `bytes` as one JSON document with `read`, nesting up to
/// [`GO_MAX_DEPTH`], nothing after it; with its nesting depth when that is
/// [`SHALLOW`] or more (0 for a shallow one: not counted).
///
/// Nearly every document nests far less than serde_json's own limit (128
/// levels): it is read at once. Only one that fails is measured, and read
/// again with stack to spare if it was too deep for that.
pub(crate) fn read_document<'a, T>(
    bytes: &'a [u8],
    read: impl Fn(&mut StrDeserializer<'a>) -> serde_json::Result<T>,
) -> Result<(T, usize), String> {
    let text = utf8(bytes)?;
    let whole = |de: &mut StrDeserializer<'a>| {
        let value = read(de)?;
        de.end().map(|()| value)
    };
    let e = match whole(&mut serde_json::Deserializer::from_str(text)) {
        Ok(value) => return Ok((value, 0)),
        Err(e) => e,
    };
    let depth = shape(bytes).depth;
    if depth > GO_MAX_DEPTH {
        return Err(format!("nested deeper than {GO_MAX_DEPTH} levels"));
    }
    // Well under serde_json's limit, the error is the document's own (the
    // margin: serde_json and `shape` need not count alike).
    if depth < SHALLOW - 8 {
        return Err(e.to_string());
    }
    let parse = || {
        let mut de = serde_json::Deserializer::from_str(text);
        de.disable_recursion_limit();
        whole(&mut de)
    };
    let value = deep(depth, parse).map_err(|e| e.to_string())?;
    Ok((value, depth))
}

/// Runs `f` with room for `depth` levels of recursion.
pub fn deep<R>(depth: usize, f: impl FnOnce() -> R) -> R {
    if depth < SHALLOW {
        f()
    } else {
        stacker::grow(256 * 1024 + depth * 2048, f)
    }
}

/// Arrays and objects in a JSON text, counted without parsing it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// The deepest nesting.
    pub depth: usize,
    /// How many there are: a request with too many is refused before a
    /// tree of them is built.
    pub containers: usize,
}

/// The [`Shape`] of `bytes`, strings skipped. A string is crossed with
/// `memchr` to its next quote or backslash: prompts are mostly string, and
/// a byte-at-a-time walk showed at 9% of a stream's time.
pub fn shape(bytes: &[u8]) -> Shape {
    let (mut depth, mut deepest, mut containers) = (0usize, 0, 0);
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => match string_end(bytes, i + 1) {
                Some(end) => i = end,
                // Unterminated: the rest is string.
                None => break,
            },
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
                containers += 1;
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Shape {
        depth: deepest,
        containers,
    }
}

/// Where the string whose text starts at `from` ends (its closing quote).
fn string_end(bytes: &[u8], mut from: usize) -> Option<usize> {
    loop {
        let at = from + memchr::memchr2(b'"', b'\\', bytes.get(from..)?)?;
        if bytes[at] == b'"' {
            return Some(at);
        }
        // A backslash escapes the byte after it.
        from = at + 2;
    }
}

/// A `Value` whose objects had no repeated key.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Value, A::Error> {
        stacker::maybe_grow(64 * 1024, 1024 * 1024, || self.seq(seq))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Value, A::Error> {
        stacker::maybe_grow(64 * 1024, 1024 * 1024, || self.map(map))
    }
}

impl StrictVisitor {
    fn seq<'de, A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(Strict(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn map<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            // One hash per key: the slot found free is the one filled.
            match out.entry(key) {
                serde_json::map::Entry::Occupied(taken) => {
                    return Err(de::Error::custom(format!(
                        "duplicate key `{}`: Ollama would read only the last one",
                        taken.key()
                    )));
                }
                serde_json::map::Entry::Vacant(slot) => {
                    let Strict(v) = map.next_value()?;
                    slot.insert(v);
                }
            }
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn docs_parse_as_deep_as_go_allows_and_no_deeper() {
        let nested = |n: usize| format!("{}\"x\"{}", "[".repeat(n), "]".repeat(n));
        let doc = Doc::parse(nested(GO_MAX_DEPTH).as_bytes()).expect("Go decodes 10000 levels");
        assert_eq!(doc.depth, GO_MAX_DEPTH);
        assert!(doc.to_vec().len() == 2 * GO_MAX_DEPTH + 3);
        drop(doc);
        let err = Doc::parse(nested(GO_MAX_DEPTH + 1).as_bytes()).expect_err("too deep");
        assert!(err.contains("10000"), "{err}");
        assert_eq!(shape(br#"{"a":"[[[{{","b":[1]}"#).depth, 2);
        assert_eq!(
            shape(br#"{"a":"[[[{{\"{","b":[1,{}]}"#),
            Shape {
                depth: 3,
                containers: 3
            }
        );
    }

    /// The byte-at-a-time walk `shape` replaced, kept as its reference.
    fn shape_by_bytes(bytes: &[u8]) -> Shape {
        let (mut depth, mut deepest, mut containers) = (0usize, 0, 0);
        let (mut in_string, mut escaped) = (false, false);
        for &b in bytes {
            if in_string {
                match (escaped, b) {
                    (true, _) => escaped = false,
                    (false, b'\\') => escaped = true,
                    (false, b'"') => in_string = false,
                    (false, _) => {}
                }
                continue;
            }
            match b {
                b'"' => in_string = true,
                b'[' | b'{' => {
                    depth += 1;
                    deepest = deepest.max(depth);
                    containers += 1;
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        Shape {
            depth: deepest,
            containers,
        }
    }

    #[test]
    fn shape_agrees_with_a_byte_by_byte_walk() {
        let fixed: [&[u8]; 9] = [
            br#"{"a":"[[[{{","b":[1]}"#,
            br#"{"a":"x\\","b":[{}]}"#,
            br#"{"a":"\"[","b":[1]}"#,
            b"\"unterminated [[",
            b"\"ends in a backslash\\",
            b"\"\\",
            b"[\"\\\\\"]",
            b"",
            b"]]]{",
        ];
        for bytes in fixed {
            assert_eq!(shape(bytes), shape_by_bytes(bytes), "{bytes:?}");
        }
        // Every string of up to 7 bytes over the characters that matter.
        let alphabet = b"[]{}\"\\a";
        let mut text = Vec::new();
        for n in 0..=7u32 {
            for mut code in 0..alphabet.len().pow(n) {
                text.clear();
                for _ in 0..n {
                    text.push(alphabet[code % alphabet.len()]);
                    code /= alphabet.len();
                }
                assert_eq!(shape(&text), shape_by_bytes(&text), "{text:?}");
            }
        }
    }

    #[test]
    fn docs_refuse_what_go_or_clients_would_read_differently() {
        for bad in [
            &b"\xEF\xBB\xBF{}"[..],
            b"{\"a\":NaN}",
            b"{\"a\":1,\"a\":2}",
            b"{} {}",
            b"{\"a\":1}\r{\"b\":2}",
        ] {
            assert!(Doc::parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        assert!(Doc::parse(b" {\"a\": [1, \"x\"]}\r\n").is_ok());
    }

    #[test]
    fn text_that_is_not_utf8_is_refused_wherever_it_is() {
        // Checked once for the whole text, before serde_json reads it.
        for bad in [
            &b"{\"a\":\"\xff\"}"[..],
            b"{\"\xc3\":1}",
            b"{\"a\":\"\xed\xa0\x80\"}",
            b"{\"a\":1}\xff",
            b"[\xe2\x82]",
        ] {
            let shown = String::from_utf8_lossy(bad);
            let err = parse(bad).expect_err(&shown);
            assert!(err.starts_with("invalid UTF-8 at byte "), "{err}");
            assert!(Doc::parse(bad).is_err(), "{shown}");
        }
        // A lone surrogate written as an escape is ASCII, so it passes the
        // check; serde_json refuses it.
        assert!(parse(br#"{"a":"\ud800"}"#).is_err());
        let good = "{\"caf\u{e9}\":\"\u{1F999} \u{2028}\"}";
        assert_eq!(
            parse(good.as_bytes()),
            Ok(serde_json::json!({"caf\u{e9}": "\u{1F999} \u{2028}"}))
        );
    }

    #[test]
    fn ordinary_documents_parse_like_serde_json() {
        let text = br#"{"a":[1,-2,3.5,true,null,"x"],"b":{"c":"d"},"e":18446744073709551615}"#;
        assert_eq!(
            parse(text),
            Ok(serde_json::from_slice::<Value>(text).unwrap_or_default())
        );
    }

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        for text in [
            r#"{"prompt":"a","prompt":"b"}"#,
            r#"{"messages":[{"content":"a","content":"b"}]}"#,
            r#"{"p\u0072ompt":"a","prompt":"b"}"#,
        ] {
            let err = parse(text.as_bytes()).expect_err(text);
            assert!(err.contains("duplicate key"), "{err}");
        }
        assert!(parse(br#"{"a":{"x":1},"b":{"x":1}}"#).is_ok());
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_pass() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(parse(deep.as_bytes()).is_err());
        assert_eq!(parse(b"[[1]]"), Ok(json!([[1]])));
    }

    #[test]
    fn go_folding_matches_case_long_s_and_kelvin() {
        for key in ["prompt", "Prompt", "PROMPT", "pRoMpT"] {
            assert!(folds_to(key, "prompt"), "{key}");
        }
        assert!(folds_to("\u{17F}y\u{17F}tem", "system"));
        assert!(folds_to("\u{212A}eep_alive", "keep_alive"));
        assert!(folds_to("_DEBUG_RENDER_ONLY", "_debug_render_only"));
        for key in ["prompts", "promp", "pr0mpt", "prómpt", "", "systеm"] {
            assert!(
                !folds_to(key, "prompt") && !folds_to(key, "system"),
                "{key}"
            );
        }
    }
}
