//! Model output read without copying it: a JSON tree whose strings point
//! into the frame's bytes (copied only when they hold escapes) and whose
//! objects are vectors in document order. A stream frame is read once, for
//! its texts, and dropped; only a frame that must be rewritten is parsed
//! again into a `serde_json::Value` ([`super::gojson::Doc`]).
//!
//! The refusals are [`Doc::parse`](super::gojson::Doc::parse)'s, through
//! the same serde_json reader: duplicate keys (compared after unescaping),
//! a byte-order mark, NaN, trailing bytes, nesting deeper than Go decodes.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Number;

use super::gojson::{SHALLOW, read_document};

/// One JSON value, borrowing its strings where it can.
#[derive(Debug, PartialEq)]
pub enum Node<'a> {
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'a, str>),
    Array(Vec<Node<'a>>),
    Object(Vec<(Cow<'a, str>, Node<'a>)>),
}

impl<'a> Node<'a> {
    /// The value under `key`, when this is an object that has it (keys are
    /// unique: the parse refused repeats).
    pub fn get(&self, key: &str) -> Option<&Node<'a>> {
        match self {
            Node::Object(pairs) => pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Item `i`, when this is an array that long.
    pub fn item(&self, i: usize) -> Option<&Node<'a>> {
        match self {
            Node::Array(items) => items.get(i),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Node::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The value as JSON text (a string quoted), as `Value::to_string` writes it.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A parsed frame: its root and, when it nests [`SHALLOW`] levels or more,
/// how deep.
#[derive(Debug)]
pub struct Tree<'a> {
    pub root: Node<'a>,
    /// The nesting depth of a deep tree; 0 for a shallow one (not counted).
    pub depth: usize,
}

impl<'a> Tree<'a> {
    /// Parses `bytes`, refusing what [`Doc::parse`](super::gojson::Doc::parse) refuses.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, String> {
        let (root, depth) =
            read_document(bytes, |de| de.deserialize_any(NodeVisitor { top: true }))?;
        Ok(Self { root, depth })
    }
}

impl Drop for Tree<'_> {
    /// Deep trees are taken apart without recursion.
    fn drop(&mut self) {
        if self.depth >= SHALLOW {
            let mut stack = vec![std::mem::replace(&mut self.root, Node::Null)];
            while let Some(node) = stack.pop() {
                match node {
                    Node::Array(items) => stack.extend(items),
                    Node::Object(pairs) => stack.extend(pairs.into_iter().map(|(_, v)| v)),
                    Node::Null | Node::Bool(_) | Node::Number(_) | Node::String(_) => {}
                }
            }
        }
    }
}

struct NodeVisitor {
    /// The document's root: its object is made room for eight members at
    /// once (an Ollama frame has four, its last ten; an OpenAI chunk six),
    /// where a vector grown from empty is allocated for four, then
    /// reallocated past them. Only the root: one per document, so a reply
    /// of many small objects costs no more memory.
    top: bool,
}

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Node<'de>, E> {
        Ok(Node::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Node<'de>, E> {
        Ok(Node::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Node<'de>, E> {
        Ok(Node::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node<'de>, E> {
        Number::from_f64(v)
            .map(Node::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Node<'de>, E> {
        Ok(Node::String(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Node<'de>, E> {
        Ok(Node::String(Cow::Owned(v.to_string())))
    }

    fn visit_string<E>(self, v: String) -> Result<Node<'de>, E> {
        Ok(Node::String(Cow::Owned(v)))
    }

    fn visit_unit<E>(self) -> Result<Node<'de>, E> {
        Ok(Node::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node<'de>, A::Error> {
        stacker::maybe_grow(64 * 1024, 1024 * 1024, || {
            let mut items = Vec::new();
            while let Some(item) = seq.next_element_seed(NodeSeed)? {
                items.push(item);
            }
            Ok(Node::Array(items))
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node<'de>, A::Error> {
        stacker::maybe_grow(64 * 1024, 1024 * 1024, || {
            let mut pairs: Vec<(Cow<'de, str>, Node<'de>)> =
                Vec::with_capacity(if self.top { 8 } else { 0 });
            // Small objects (every frame's) are checked for a repeated key
            // by comparing; past this many keys, through a set.
            const COMPARED: usize = 16;
            let mut seen: Option<HashSet<String>> = None;
            while let Some(Key(key)) = map.next_key_seed(KeySeed)? {
                let repeated = match &mut seen {
                    Some(set) => !set.insert(key.to_string()),
                    None => pairs.iter().any(|(k, _)| *k == key),
                };
                if repeated {
                    return Err(de::Error::custom(format!(
                        "duplicate key `{key}`: Ollama would read only the last one"
                    )));
                }
                if seen.is_none() && pairs.len() + 1 == COMPARED {
                    let mut set: HashSet<String> =
                        pairs.iter().map(|(k, _)| k.to_string()).collect();
                    set.insert(key.to_string());
                    seen = Some(set);
                }
                let value = map.next_value_seed(NodeSeed)?;
                pairs.push((key, value));
            }
            Ok(Node::Object(pairs))
        })
    }
}

struct NodeSeed;

impl<'de> DeserializeSeed<'de> for NodeSeed {
    type Value = Node<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Node<'de>, D::Error> {
        d.deserialize_any(NodeVisitor { top: false })
    }
}

/// An object key, borrowed when it has no escapes (serde's own `Cow<str>`
/// always copies).
struct Key<'de>(Cow<'de, str>);

struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key<'de>, D::Error> {
        d.deserialize_str(KeySeed)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Key<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Owned(v.to_string())))
    }

    fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Owned(v)))
    }
}

impl Serialize for Node<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Null => s.serialize_unit(),
            Node::Bool(b) => s.serialize_bool(*b),
            Node::Number(n) => n.serialize(s),
            Node::String(v) => s.serialize_str(v),
            Node::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Node::Object(pairs) => {
                let mut map = s.serialize_map(Some(pairs.len()))?;
                for (k, v) in pairs {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::gojson::{Doc, GO_MAX_DEPTH};

    #[test]
    fn strings_without_escapes_are_borrowed() {
        let text = br#"{"message":{"content":"plain","esc":"a\nb"},"k\u0065y":1}"#;
        let tree = Tree::parse(text).expect("parses");
        let message = tree.root.get("message").expect("message");
        assert!(matches!(
            message.get("content"),
            Some(Node::String(Cow::Borrowed("plain")))
        ));
        assert_eq!(message.get("esc").and_then(Node::as_str), Some("a\nb"));
        assert!(tree.root.get("key").is_some(), "keys are unescaped");
    }

    #[test]
    fn refuses_what_the_value_parse_refuses() {
        let cases: Vec<Vec<u8>> = vec![
            b"\xEF\xBB\xBF{}".to_vec(),
            b"{\"a\":NaN}".to_vec(),
            b"{\"a\":1,\"a\":2}".to_vec(),
            br#"{"p\u0072ompt":"a","prompt":"b"}"#.to_vec(),
            br#"{"m":[{"c":"a","c":"b"}]}"#.to_vec(),
            b"{} {}".to_vec(),
            b"{\"a\":1}\r{\"b\":2}".to_vec(),
            b"{\"a\":1e400}".to_vec(),
            b"{\"a\":\"\xff\"}".to_vec(),
            format!(
                "{}{}",
                "[".repeat(GO_MAX_DEPTH + 1),
                "]".repeat(GO_MAX_DEPTH + 1)
            )
            .into_bytes(),
        ];
        for bad in &cases {
            let shown = String::from_utf8_lossy(&bad[..bad.len().min(40)]).into_owned();
            assert!(Tree::parse(bad).is_err(), "{shown}");
            assert!(Doc::parse(bad).is_err(), "{shown}");
        }
        assert!(Tree::parse(b" {\"a\": [1, \"x\"]}\r\n").is_ok());
    }

    #[test]
    fn accepts_and_reads_exactly_what_the_value_parse_does() {
        // Frames of the four APIs, each cut short at every byte, with bytes
        // before and after it, and with every byte replaced by each of a
        // few that change JSON's meaning.
        let frames: [&[u8]; 4] = [
            br#"{"model":"m","created_at":"2026-01-01T00:00:00.1Z","message":{"role":"assistant","content":"caf\u00e9 \"x\""},"done":false}"#,
            br#"{"id":"c1","choices":[{"index":0,"delta":{"content":"hi","tool_calls":[{"index":1,"function":{"arguments":"{\"a\":1}"}}]},"finish_reason":null}],"usage":null}"#,
            br#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"x"},"n":-1.5e3,"t":true}"#,
            br#"[{"a":[],"b":{}},{"a\u0000":"\ud83d\ude00"},[1,2.0,-0,1e2]]"#,
        ];
        let swaps = b"\"\\{}[],:0u \xff\x00";
        let mut cases = 0;
        for frame in frames {
            let mut variants: Vec<Vec<u8>> =
                (0..=frame.len()).map(|n| frame[..n].to_vec()).collect();
            for tail in [&b" "[..], b"\r\n", b" x", b"{}", b"\xef\xbb\xbf"] {
                variants.push([frame, tail].concat());
                variants.push([tail, frame].concat());
            }
            for at in 0..frame.len() {
                for &b in swaps {
                    let mut v = frame.to_vec();
                    v[at] = b;
                    variants.push(v);
                }
            }
            for v in variants {
                let (tree, value) = (Tree::parse(&v), Doc::parse(&v));
                let shown = String::from_utf8_lossy(&v).into_owned();
                assert_eq!(tree.is_ok(), value.is_ok(), "{shown}");
                if let (Ok(tree), Ok(doc)) = (tree, value) {
                    assert_eq!(tree.root.to_json(), doc.value.to_string(), "{shown}");
                }
                cases += 1;
            }
        }
        assert!(cases > 5_000, "{cases}");
    }

    #[test]
    fn a_repeat_is_found_in_objects_of_any_size() {
        for n in [2, 15, 16, 17, 40] {
            let mut keys: Vec<String> = (0..n).map(|i| format!("\"k{i}\":{i}")).collect();
            let ok = format!("{{{}}}", keys.join(","));
            assert!(Tree::parse(ok.as_bytes()).is_ok(), "{n} distinct keys");
            keys.push("\"k0\":0".into());
            let bad = format!("{{{}}}", keys.join(","));
            let err = Tree::parse(bad.as_bytes()).expect_err("repeat");
            assert!(err.contains("duplicate key `k0`"), "{n}: {err}");
        }
    }

    #[test]
    fn reads_back_as_the_value_parse_reads() {
        let text = br#"{"a":[1,-2,3.5,true,null,"x\u00e9"],"b":{"c":"d"},"e":18446744073709551615,"f":{}}"#;
        let tree = Tree::parse(text).expect("parses");
        let value = Doc::parse(text).expect("parses");
        assert_eq!(tree.root.to_json(), value.value.to_string());
        assert_eq!(
            tree.root.get("e").map(Node::to_json).as_deref(),
            Some("18446744073709551615")
        );
    }

    #[test]
    fn trees_parse_at_every_depth_around_the_quick_limit() {
        for n in [1, 100, 119, 120, 126, 127, 128, 129, 130, 500] {
            let nested = format!("{}1{}", "[".repeat(n), "]".repeat(n));
            let tree = Tree::parse(nested.as_bytes()).unwrap_or_else(|e| panic!("{n}: {e}"));
            assert_eq!(tree.depth == 0, n < SHALLOW, "{n}: {}", tree.depth);
            let broken = format!("{}1{}", "[".repeat(n), "]".repeat(n - 1));
            assert!(Tree::parse(broken.as_bytes()).is_err(), "{n} unclosed");
        }
    }

    #[test]
    fn deep_trees_parse_and_drop_without_overflow() {
        let nested = format!(
            "{}\"x\"{}",
            "[".repeat(GO_MAX_DEPTH),
            "]".repeat(GO_MAX_DEPTH)
        );
        let tree = Tree::parse(nested.as_bytes()).expect("Go decodes 10000 levels");
        assert_eq!(tree.depth, GO_MAX_DEPTH);
        drop(tree);
    }
}
