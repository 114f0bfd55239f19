//! The cost of reading a request the way Ollama reads it, on `/api/chat`
//! with 1 and 50 messages, measured in one run, interleaved:
//! - before: a plain `serde_json::Value` parse and the message-string walk
//!   the proxy did until input integrity (kept here as the baseline);
//! - after: `Route::parse` (duplicate and folded keys refused, every string
//!   and data key collected by the schema) plus the joined texts (seams).
//!
//! Then the scan cost the seams add when nothing is cached: the default
//! input pipeline over each field, and the seam pipeline over each seam.
//!
//! `cargo bench --bench parse` (or `bench/parse.sh`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::{Duration, Instant};

use ollama_guard::config::Config;
use ollama_guard::dialect::Route;
use ollama_guard::dialect::request::Allowed;
use ollama_guard::scan::registry::build_pipeline;
use serde_json::{Value, json};
use support::percentile;

const ROUNDS: usize = 2_000;

fn body(messages: usize) -> Vec<u8> {
    let list: Vec<Value> = (0..messages)
        .map(|i| {
            let role = if i % 2 == 0 { "user" } else { "assistant" };
            json!({"role": role, "content": format!("Message {i}: could you explain how the borrow checker decides when a reference outlives its owner, with a short example?")})
        })
        .collect();
    serde_json::to_vec(&json!({"model": "llama3.2", "stream": true, "options": {"temperature": 0.2}, "messages": list})).unwrap()
}

/// The previous extraction: parse to a `Value`, collect every string of
/// every message except identifiers and images.
fn before(bytes: &[u8]) -> usize {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) if !s.is_empty() => out.push(s.clone()),
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            Value::Object(m) => m
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "role" | "images" | "id" | "type"))
                .for_each(|(_, x)| walk(x, out)),
            _ => {}
        }
    }
    let json: Value = serde_json::from_slice(bytes).unwrap();
    let mut out = Vec::new();
    for m in json["messages"].as_array().unwrap() {
        walk(m, &mut out);
    }
    out.len()
}

fn after(bytes: &[u8]) -> usize {
    let request = Route::Chat.parse(bytes, Allowed::default()).unwrap();
    request.segments.len() + Route::Chat.joined(&request.json).len()
}

fn stats(times: &mut [Duration]) -> (f64, f64) {
    let mean = times.iter().sum::<Duration>().as_secs_f64() / times.len() as f64;
    (mean * 1e6, percentile(times, 0.99).as_secs_f64() * 1e6)
}

fn main() {
    println!("request parsing, /api/chat, {ROUNDS} rounds interleaved (µs per request)");
    for n in [1, 50] {
        let bytes = body(n);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            let t = Instant::now();
            std::hint::black_box(before(&bytes));
            a.push(t.elapsed());
            let t = Instant::now();
            std::hint::black_box(after(&bytes));
            b.push(t.elapsed());
        }
        let ((am, ap), (bm, bp)) = (stats(&mut a), stats(&mut b));
        println!(
            "{n:>2} messages ({:>5} B): before mean {am:>7.1} p99 {ap:>7.1} | after mean {bm:>7.1} p99 {bp:>7.1} | added {:>+6.1} µs ({:.2}x)",
            bytes.len(),
            bm - am,
            bm / am
        );
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let config = Config::default();
    let pipeline = build_pipeline(
        "scanners.input",
        &config.scanners.input,
        &config.scanner_resources(),
    )
    .unwrap();
    let seams = pipeline.for_seams();
    // The first scan loads the injection model; keep that out of the figures.
    rt.block_on(pipeline.scan("warm up")).unwrap();
    println!("uncached scan cost, default input pipeline (µs per request)");
    for n in [1, 50] {
        let request = Route::Chat.parse(&body(n), Allowed::default()).unwrap();
        let joined = Route::Chat.joined(&request.json);
        let (mut fields, mut seam) = (Vec::new(), Vec::new());
        for _ in 0..20 {
            let t = Instant::now();
            for s in &request.segments {
                std::hint::black_box(rt.block_on(pipeline.scan(&s.text)).unwrap());
            }
            fields.push(t.elapsed());
            let t = Instant::now();
            for j in &joined {
                std::hint::black_box(rt.block_on(seams.scan(&j.text)).unwrap());
            }
            seam.push(t.elapsed());
        }
        let ((fm, _), (sm, _)) = (stats(&mut fields), stats(&mut seam));
        println!(
            "{n:>2} messages: {} fields {fm:>8.1} | {} seams {sm:>8.1} (+{:.0}% on a full miss; cached seams cost a lookup)",
            request.segments.len(),
            joined.len(),
            100.0 * sm / fm
        );
    }
}
