use super::*;
use crate::dialect::output::keys::OLLAMA_COUNTS;
use crate::dialect::output::{Withheld, is_final_frame, texts};
use crate::dialect::tree::{Node, Tree};

/// What the stream reads of a frame the general way, when the fast way may
/// stand for it: parsed, nothing withheld, no `id` or `type` (the stream
/// notes those); then its texts and whether it is the last. `None`
/// otherwise.
fn general(route: Route, data: &[u8]) -> Option<TokenFrame> {
    let doc = Tree::parse(data).ok()?;
    let root = &doc.root;
    let plain = !Withheld::default().finds(root)
        && root.get("id").is_none()
        && root.get("type").and_then(Node::as_str).is_none();
    let texts = texts(route, root, Withheld::default()).ok()?;
    plain.then(|| TokenFrame {
        texts,
        last: is_final_frame(route, root),
    })
}

/// A fixed LCG: the same draws on every run.
struct Draw(u64);

impl Draw {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// Pieces of JSON string bodies (between the quotes).
const VALID: &[&[u8]] = &[
    b"a",
    b" ",
    b"Hello",
    b"\\\"",
    b"\\\\",
    b"\\n",
    b"\\u003c",
    b"\\ud83d\\ude00",
    "\u{e9}".as_bytes(),
    "\u{2028}".as_bytes(),
    "\u{200b}".as_bytes(),
    b"sk-",
    b"}",
];

/// Pieces no JSON string may hold as they are.
const BROKEN: &[&[u8]] = &[
    b"\\ud800",
    b"\\x",
    b"\\",
    b"\"",
    b"\t",
    b"\x01",
    b"\xff",
    b"\xc3",
    b",\"done\":true",
];

/// Up to three pieces, one in eight of them broken.
fn body(draw: &mut Draw) -> Vec<u8> {
    let mut s = Vec::new();
    for _ in 0..draw.below(4) {
        let pieces = if draw.below(8) == 0 { BROKEN } else { VALID };
        s.extend_from_slice(draw.pick(pieces));
    }
    s
}

/// Counts, as Go writes them and not.
const COUNTS: &[&[u8]] = &[
    b"0",
    b"7",
    b"1234567890",
    b"9999999999999999999",
    b"18446744073709551616",
    b"012",
    b"-1",
    b"1.5",
    b"1e3",
    b"",
];

/// A frame in Ollama's shape for `route`, with drawn strings; with `last`
/// (for /api/chat), its last frame, with drawn counts.
fn frame(draw: &mut Draw, route: Route, thinking: bool, last: bool) -> Vec<u8> {
    let mut f = b"{\"model\":\"".to_vec();
    const MODELS: &[&[u8]] = &[b"llama3.2", b"qwen3:8b", b"m\\u0041", b""];
    f.extend_from_slice(draw.pick(MODELS));
    f.extend_from_slice(b"\",\"created_at\":\"2026-12-07T00:00:00.123456789Z\",");
    let (text, end): (&[u8], &[u8]) = match route {
        Route::Chat => (b"\"message\":{\"role\":\"assistant\",\"content\":\"", b"}"),
        _ => (b"\"response\":\"", b""),
    };
    f.extend_from_slice(text);
    f.extend(body(draw));
    f.push(b'"');
    if thinking {
        f.extend_from_slice(b",\"thinking\":\"");
        f.extend(body(draw));
        f.push(b'"');
    }
    f.extend_from_slice(end);
    if !last {
        f.extend_from_slice(b",\"done\":false}");
        return f;
    }
    f.extend_from_slice(b",\"done_reason\":\"stop\",\"done\":true");
    for key in OLLAMA_COUNTS {
        if draw.below(3) > 0 {
            f.extend_from_slice(format!(",\"{key}\":").as_bytes());
            // Mostly counts as Go writes them.
            let count = match draw.below(4) {
                0 => draw.pick(COUNTS),
                _ => draw.pick(&COUNTS[..4]),
            };
            f.extend_from_slice(count);
        }
    }
    f.push(b'}');
    f
}

/// Changes one byte: removes it, or puts another before it or in its place.
fn mutate(draw: &mut Draw, f: &mut Vec<u8>) {
    const BYTES: &[u8] = b"\"\\ {},:aA0e\n\xff\xc3";
    let at = draw.below(f.len());
    let byte = draw.pick(BYTES);
    match draw.below(3) {
        0 => {
            f.remove(at);
        }
        1 => f.insert(at, byte),
        _ => f[at] = byte,
    }
}

#[test]
fn every_frame_read_the_fast_way_reads_the_same_the_general_way() {
    let mut draw = Draw(7);
    // Frames read the fast way: unchanged, mutated, and last frames.
    let (mut fast, mut fast_mutated, mut fast_last) = (0, 0, 0);
    for route in [Route::Chat, Route::Generate] {
        for n in 0..40_000 {
            let last = route == Route::Chat && (n / 4) % 2 == 1;
            let mut f = frame(&mut draw, route, n % 3 == 0, last);
            for _ in 0..(n % 4) {
                mutate(&mut draw, &mut f);
            }
            let Some(read) = token_frame(route, &f) else {
                continue;
            };
            match (n % 4, read.last) {
                (_, true) => fast_last += 1,
                (0, false) => fast += 1,
                _ => fast_mutated += 1,
            }
            assert_eq!(
                Some(read),
                general(route, &f),
                "{route:?} {}",
                String::from_utf8_lossy(&f)
            );
        }
    }
    // Every kind was compared, not only declined.
    assert!(
        fast > 5_000 && fast_mutated > 1_000 && fast_last > 1_000,
        "{fast} {fast_mutated} {fast_last}"
    );
}

#[test]
fn ollamas_token_frames_are_read_the_fast_way() {
    let chat = br#"{"model":"llama3.2","created_at":"2026-12-07T00:00:00.1Z","message":{"role":"assistant","content":"Hi \u003cb\u003e"},"done":false}"#;
    let read = token_frame(Route::Chat, chat).expect("a chat token");
    assert_eq!(Some(&read), general(Route::Chat, chat).as_ref());
    assert_eq!(read.texts[0].text, "Hi <b>");
    assert_eq!(read.texts[0].field.as_deref(), Some("content"));
    assert!(!read.last);

    let thinking = br#"{"model":"m","created_at":"t","response":"","thinking":"Hmm","done":false}"#;
    let read = token_frame(Route::Generate, thinking).expect("a thinking token");
    assert_eq!(Some(&read), general(Route::Generate, thinking).as_ref());
    assert_eq!(
        (read.texts.len(), read.texts[0].pointer.as_ref()),
        (1, "/thinking"),
        "the empty response is no text"
    );

    let last = br#"{"model":"m","created_at":"t","message":{"role":"assistant","content":"Bye"},"done_reason":"stop","done":true,"total_duration":5,"eval_count":3,"eval_duration":0}"#;
    let read = token_frame(Route::Chat, last).expect("a whole reply");
    assert_eq!(Some(&read), general(Route::Chat, last).as_ref());
    assert!(read.last);
    assert_eq!(read.texts[0].text, "Bye");
}

#[test]
fn other_frames_are_read_the_general_way() {
    for (route, data) in [
        // Last frames: without done_reason, a count written as a float,
        // the counts out of Go's order, /api/generate's (with `context`).
        (
            Route::Chat,
            &br#"{"model":"m","created_at":"t","message":{"role":"assistant","content":""},"done":true,"eval_count":3}"#[..],
        ),
        (
            Route::Chat,
            br#"{"model":"m","created_at":"t","message":{"role":"assistant","content":""},"done_reason":"stop","done":true,"eval_count":3.0}"#,
        ),
        (
            Route::Chat,
            br#"{"model":"m","created_at":"t","message":{"role":"assistant","content":""},"done_reason":"stop","done":true,"eval_count":3,"total_duration":5}"#,
        ),
        (
            Route::Generate,
            br#"{"model":"m","created_at":"t","response":"","done":true,"done_reason":"stop","context":[1,2]}"#,
        ),
        // A key in another case, which Go would read.
        (
            Route::Chat,
            br#"{"model":"m","created_at":"t","message":{"role":"assistant","Content":"x"},"done":false}"#,
        ),
        // Another role, a tool call, whitespace, an extra key, a repeated key.
        (
            Route::Chat,
            br#"{"model":"m","created_at":"t","message":{"role":"user","content":"x"},"done":false}"#,
        ),
        (
            Route::Chat,
            br#"{"model":"m","created_at":"t","message":{"role":"assistant","content":"","tool_calls":[]},"done":false}"#,
        ),
        (
            Route::Generate,
            br#"{"model":"m", "created_at":"t","response":"x","done":false}"#,
        ),
        (
            Route::Generate,
            br#"{"model":"m","created_at":"t","response":"x","done":false,"context":[1]}"#,
        ),
        (
            Route::Generate,
            br#"{"model":"m","created_at":"t","response":"x","response":"y","done":false}"#,
        ),
        // The same frame on a route that is not Ollama's.
        (
            Route::OpenAiChat,
            br#"{"model":"m","created_at":"t","response":"x","done":false}"#,
        ),
    ] {
        assert_eq!(token_frame(route, data), None, "{}", String::from_utf8_lossy(data));
    }
    // A count too long for a u64, which serde_json would refuse at 400
    // digits (out of an f64's range): read the general way, and refused.
    let huge = format!(
        r#"{{"model":"m","created_at":"t","message":{{"role":"assistant","content":"x"}},"done_reason":"stop","done":true,"eval_count":1{}}}"#,
        "0".repeat(400)
    );
    assert_eq!(token_frame(Route::Chat, huge.as_bytes()), None);
    assert!(Tree::parse(huge.as_bytes()).is_err());
}
