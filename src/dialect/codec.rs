//! Stream framing: NDJSON (`/api/*`: one JSON object a line) and server-sent
//! events (`/v1/*`: `data: {json}` events ended by a blank line, then
//! `data: [DONE]`). Frames are cut from the byte stream as they complete and
//! kept byte-exact, so what passes the guard reaches the client unchanged.
//!
//! Hand-written because the SSE crates decode into events and drop the raw
//! bytes, which a pass-through proxy must keep.

use std::borrow::Cow;

use bytes::{Bytes, BytesMut};
use serde_json::Value;

/// Longest frame (NDJSON line, SSE event) read; a longer one is an error,
/// not a buffer that grows without bound.
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    Ndjson,
    Sse,
}

/// What one frame holds.
#[derive(Debug, PartialEq)]
pub enum Payload<'a> {
    /// A JSON document's bytes (borrowed from the frame unless an SSE event
    /// splits it over several `data:` lines), to be parsed.
    Json(Cow<'a, [u8]>),
    /// SSE `data: [DONE]`.
    Done,
    /// Blank lines, or SSE events without data (comments, `retry:`).
    Empty,
}

impl Framing {
    /// The framing of a streamed response, from its content type.
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let mime = content_type.split(';').next().unwrap_or("").trim();
        match mime {
            "application/x-ndjson" | "application/jsonl" => Some(Self::Ndjson),
            "text/event-stream" => Some(Self::Sse),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Ndjson => "application/x-ndjson",
            Self::Sse => "text/event-stream",
        }
    }

    /// One frame holding `value`.
    pub fn encode(self, value: &Value) -> Bytes {
        self.encode_event(None, value)
    }

    /// One frame holding `value`, with an SSE `event:` name (the Responses
    /// and Anthropic streams name every event; NDJSON has no names).
    pub fn encode_event(self, event: Option<&str>, value: &Value) -> Bytes {
        let json = value.to_string();
        match (self, event) {
            (Self::Ndjson, _) => Bytes::from(format!("{json}\n")),
            (Self::Sse, None) => Bytes::from(format!("data: {json}\n\n")),
            (Self::Sse, Some(name)) => Bytes::from(format!("event: {name}\ndata: {json}\n\n")),
        }
    }

    /// `raw` with its payload replaced by `value`, keeping an SSE event's
    /// other lines (`event:`, `id:`), so a rewritten frame keeps its name.
    pub fn reencode(self, raw: &[u8], value: &Value) -> Bytes {
        match self {
            Self::Ndjson => self.encode(value),
            Self::Sse => {
                let mut out = Vec::with_capacity(raw.len());
                for line in raw.split(|&b| b == b'\n') {
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    if !line.is_empty() && !line.starts_with(b"data:") {
                        out.extend_from_slice(line);
                        out.push(b'\n');
                    }
                }
                out.extend_from_slice(&self.encode(value));
                Bytes::from(out)
            }
        }
    }

    /// The frame that closes a stream, where the framing has one.
    pub fn done_frame(self) -> Option<Bytes> {
        match self {
            Self::Ndjson => None,
            Self::Sse => Some(Bytes::from_static(b"data: [DONE]\n\n")),
        }
    }

    /// The payload of one raw frame.
    pub fn payload(self, raw: &[u8]) -> Payload<'_> {
        let data = match self {
            Self::Ndjson => Cow::Borrowed(raw.trim_ascii()),
            Self::Sse => match sse_data(raw) {
                Some(data) => data,
                None => return Payload::Empty,
            },
        };
        match &*data {
            b"" if self == Self::Ndjson => Payload::Empty,
            b"[DONE]" if self == Self::Sse => Payload::Done,
            _ => Payload::Json(data),
        }
    }
}

/// The `data:` lines of one event, joined (the SSE rule: one optional
/// space after the colon, lines joined with `\n`); `None` without any. One
/// line (every event the four APIs send) is borrowed.
fn sse_data(raw: &[u8]) -> Option<Cow<'_, [u8]>> {
    let mut lines = raw.split(|&b| b == b'\n').filter_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let rest = line.strip_prefix(b"data:")?;
        Some(rest.strip_prefix(b" ").unwrap_or(rest))
    });
    let first = lines.next()?;
    let Some(second) = lines.next() else {
        return Some(Cow::Borrowed(first));
    };
    let mut data = [first, second].join(&b'\n');
    for line in lines {
        data.push(b'\n');
        data.extend_from_slice(line);
    }
    Some(Cow::Owned(data))
}

/// Cuts complete frames out of a byte stream.
pub struct Framer {
    framing: Framing,
    /// The start of a frame whose end has not come yet.
    buf: BytesMut,
    /// Where in `buf` a delimiter may still begin, so a long frame arriving
    /// in many small chunks is not searched from its start each time.
    searched: usize,
}

impl Framer {
    pub fn new(framing: Framing) -> Self {
        Self {
            framing,
            buf: BytesMut::new(),
            searched: 0,
        }
    }

    /// Adds a chunk; returns the frames it completes, delimiters included,
    /// or an error once an unfinished frame exceeds [`MAX_FRAME_BYTES`].
    /// Frames wholly inside the chunk are slices of it, not copies: only a
    /// frame begun in an earlier chunk, or left unfinished, is copied.
    pub fn push(&mut self, chunk: Bytes) -> Result<Vec<Bytes>, String> {
        let mut frames = Vec::new();
        let mut rest = chunk;
        // Finish the frame begun earlier, a line at a time: every delimiter
        // ends with a newline, so its end can only be the last byte added.
        while !self.buf.is_empty() && !rest.is_empty() {
            let line = memchr::memchr(b'\n', &rest).map_or(rest.len(), |i| i + 1);
            self.buf.extend_from_slice(&rest.split_to(line));
            if self.frame_end(&self.buf[self.searched..]).is_some() {
                frames.push(self.buf.split().freeze());
            }
            self.searched = self.resume_from(&self.buf);
        }
        while let Some(end) = self.frame_end(&rest) {
            frames.push(rest.split_to(end));
        }
        if !rest.is_empty() {
            self.buf.extend_from_slice(&rest);
            self.searched = self.resume_from(&self.buf);
        }
        if self.buf.len() > MAX_FRAME_BYTES {
            return Err(format!("a stream frame exceeds {MAX_FRAME_BYTES} bytes"));
        }
        Ok(frames)
    }

    /// Whatever is left when the stream ends (a last line without newline).
    pub fn finish(&mut self) -> Option<Bytes> {
        (!self.buf.is_empty()).then(|| self.buf.split().freeze())
    }

    /// End (exclusive) of the first complete frame in `hay`.
    fn frame_end(&self, hay: &[u8]) -> Option<usize> {
        match self.framing {
            Framing::Ndjson => memchr::memchr(b'\n', hay).map(|i| i + 1),
            Framing::Sse => find_blank_line(hay),
        }
    }

    /// Where, in an unfinished frame, a delimiter completed by the next
    /// bytes could begin: nowhere for NDJSON (its delimiter is one byte);
    /// for SSE, at a trailing newline followed by nothing but carriage
    /// returns.
    fn resume_from(&self, unfinished: &[u8]) -> usize {
        let len = unfinished.len();
        if self.framing == Framing::Ndjson {
            return len;
        }
        let returns = unfinished.iter().rev().take_while(|b| **b == b'\r').count();
        match unfinished[..len - returns].last() {
            Some(b'\n') => len - returns - 1,
            _ => len,
        }
    }
}

/// End of the first blank line (`\n\n` or `\r\n\r\n`, or mixed): a
/// newline, any carriage returns, then a newline.
fn find_blank_line(hay: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(at) = memchr::memchr(b'\n', &hay[from..]) {
        let mut i = from + at + 1;
        while hay.get(i) == Some(&b'\r') {
            i += 1;
        }
        if hay.get(i)? == &b'\n' {
            return Some(i + 1);
        }
        from = i;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::tree::Tree;
    use serde_json::json;

    fn cut(framing: Framing, chunks: &[&str]) -> Vec<String> {
        let mut f = Framer::new(framing);
        let mut out: Vec<String> = Vec::new();
        for c in chunks {
            out.extend(
                f.push(Bytes::copy_from_slice(c.as_bytes()))
                    .expect("small frames")
                    .iter()
                    .map(|b| String::from_utf8_lossy(b).into_owned()),
            );
        }
        out.extend(f.finish().map(|b| String::from_utf8_lossy(&b).into_owned()));
        out
    }

    #[test]
    fn ndjson_lines_are_cut_across_chunk_boundaries() {
        let frames = cut(
            Framing::Ndjson,
            &["{\"a\":", "1}\n{\"b\"", ":2}\n{\"c\":3}"],
        );
        assert_eq!(frames, vec!["{\"a\":1}\n", "{\"b\":2}\n", "{\"c\":3}"]);
    }

    #[test]
    fn a_blank_line_is_a_newline_carriage_returns_and_a_newline() {
        assert_eq!(find_blank_line(b"a\n\r\r\nb"), Some(5));
        assert_eq!(find_blank_line(b"a\n\rb\n\n"), Some(6));
        assert_eq!(find_blank_line(b"a\nb\r\n\r\n"), Some(7));
        assert_eq!(find_blank_line(b"\n\n"), Some(2));
        for open in [&b""[..], b"\n", b"a\n\r", b"a\r\r\n", b"a\nb\n"] {
            assert_eq!(find_blank_line(open), None, "{open:?}");
        }
    }

    #[test]
    fn sse_events_are_cut_at_blank_lines_in_either_newline_style() {
        let frames = cut(
            Framing::Sse,
            &[
                "data: {\"a\":1}\n",
                "\ndata: {\"b\":2}\r\n\r",
                "\ndata: [DONE]\n\n",
            ],
        );
        assert_eq!(
            frames,
            vec![
                "data: {\"a\":1}\n\n",
                "data: {\"b\":2}\r\n\r\n",
                "data: [DONE]\n\n"
            ]
        );
    }

    /// Streams cut into chunks at every place (two chunks, and three at
    /// every second place) give the frames that one chunk gives: frames
    /// inside a chunk are sliced out of it, those across chunks copied.
    #[test]
    fn frames_do_not_depend_on_where_chunks_end() {
        let cases = [
            (Framing::Ndjson, &b"{\"a\":1}\n{\"b\":2}\n\n{\"c\":3}"[..]),
            (Framing::Ndjson, b"\n\n{}\n"),
            (
                Framing::Sse,
                b"data: {\"a\":1}\n\ndata: {\"b\":2}\r\n\r\nevent: e\ndata: x\n\n",
            ),
            (
                Framing::Sse,
                b"data: a\n\r\r\r\ndata: b\r\n\r\n: c\n\n\ndata: [DONE]\n\n",
            ),
            (Framing::Sse, b"data: a\n\r\rb\n\ndata: c"),
        ];
        let frames = |framing, chunks: &[&[u8]]| {
            let mut f = Framer::new(framing);
            let mut out = Vec::new();
            for c in chunks {
                out.extend(f.push(Bytes::copy_from_slice(c)).expect("small frames"));
            }
            out.extend(f.finish());
            out
        };
        for (framing, stream) in cases {
            let whole = frames(framing, &[stream]);
            assert!(whole.len() >= 2, "{whole:?}");
            assert_eq!(whole.concat(), stream, "nothing lost or added");
            for i in 0..=stream.len() {
                let (a, b) = stream.split_at(i);
                assert_eq!(frames(framing, &[a, b]), whole, "cut at {i}");
                for j in (i..=stream.len()).step_by(2) {
                    let (b1, b2) = b.split_at(j - i);
                    assert_eq!(frames(framing, &[a, b1, b2]), whole, "cut at {i} and {j}");
                }
            }
        }
    }

    /// The frame's JSON document as the stream reads it.
    fn json(framing: Framing, raw: &[u8]) -> Result<Value, String> {
        match framing.payload(raw) {
            Payload::Json(data) => {
                let tree = Tree::parse(&data)?;
                serde_json::to_value(&tree.root).map_err(|e| e.to_string())
            }
            other => panic!("not JSON: {other:?}"),
        }
    }

    #[test]
    fn payloads_per_framing() {
        assert_eq!(
            json(Framing::Sse, b"data: {\"a\":1}\n\n"),
            Ok(json!({"a": 1}))
        );
        assert!(matches!(
            Framing::Sse.payload(b"data: {\"a\":1}\r\n\r\n"),
            Payload::Json(Cow::Borrowed(b"{\"a\":1}"))
        ));
        assert_eq!(Framing::Sse.payload(b"data:[DONE]\n\n"), Payload::Done);
        assert_eq!(Framing::Sse.payload(b": keep-alive\n\n"), Payload::Empty);
        assert_eq!(Framing::Ndjson.payload(b"\r\n"), Payload::Empty);
        assert_eq!(
            json(Framing::Ndjson, b"{\"done\":true}\n"),
            Ok(json!({"done": true}))
        );
        assert_eq!(
            json(Framing::Sse, b"data: {\"a\":\ndata: 1}\n\n"),
            Ok(json!({"a": 1}))
        );
        assert_eq!(
            json(Framing::Sse, b"data: {\"a\":\r\ndata:\r\ndata: 1}\n\n"),
            Ok(json!({"a": 1})),
            "three data lines, one empty"
        );
    }

    #[test]
    fn what_is_not_one_json_document_is_an_error() {
        for bad in [
            &b"not json\n"[..],
            b"{\"a\":1}\r{\"b\":2}\n",
            b"\xEF\xBB\xBF{\"a\":1}\n",
            b"{\"a\":1,\"a\":2}\n",
        ] {
            assert!(json(Framing::Ndjson, bad).is_err(), "{bad:?}");
        }
        assert!(json(Framing::Sse, b"data: {\"a\":NaN}\n\n").is_err());
        assert!(json(Framing::Sse, b"event: x\ndata: text\n\n").is_err());
    }

    #[test]
    fn a_frame_without_an_end_is_bounded() {
        let mut f = Framer::new(Framing::Ndjson);
        let big = vec![b'a'; MAX_FRAME_BYTES / 2 + 1];
        assert!(f.push(Bytes::from(big.clone())).is_ok());
        assert!(f.push(Bytes::from(big)).is_err());
    }

    #[test]
    fn reencoded_sse_frames_keep_their_event_name() {
        let raw = b"event: content_block_delta\r\ndata: {\"a\":1}\r\n\r\n";
        assert_eq!(
            &Framing::Sse.reencode(raw, &json!({"a": 2}))[..],
            b"event: content_block_delta\ndata: {\"a\":2}\n\n"
        );
        assert_eq!(
            &Framing::Ndjson.reencode(b"{\"a\":1}\n", &json!({"a": 2}))[..],
            b"{\"a\":2}\n"
        );
    }

    #[test]
    fn content_types_pick_the_framing() {
        assert_eq!(
            Framing::from_content_type("application/x-ndjson"),
            Some(Framing::Ndjson)
        );
        assert_eq!(
            Framing::from_content_type("text/event-stream; charset=utf-8"),
            Some(Framing::Sse)
        );
        assert_eq!(
            Framing::from_content_type("application/json; charset=utf-8"),
            None
        );
    }
}
