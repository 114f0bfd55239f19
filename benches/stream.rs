//! A 200-chunk streamed reply of ordinary prose, straight from a fake Ollama
//! and through ollama-guard with the default scanners, interleaved in one
//! run: time to first byte and chunks per second, per request. Then how many
//! bytes the default output scanners hold back, on average, after each
//! chunk of the same prose.
//!
//! `cargo bench --bench stream` (or `bench/stream.sh`); `-- --requests N`.

// A benchmark that cannot set up should stop loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/common/fake_compat.rs"]
#[allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod fake_compat;
#[path = "../tests/common/fake_guard.rs"]
#[allow(dead_code)]
mod fake_guard;
#[path = "../tests/common/fake_ollama.rs"]
#[allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod fake_ollama;
mod support;

use std::time::{Duration, Instant};

use ollama_guard::AppState;
use ollama_guard::config::load_from;
use serde_json::json;

const PROSE: &str = "The sky looks blue on a clear day because air scatters short \
wavelengths of sunlight more than long ones. This is called Rayleigh scattering, \
after the physicist who described it in 1871. At sunrise and sunset the light \
crosses more air, so most of the blue is scattered away and the reds and oranges \
remain. Clouds look white because their droplets scatter all colours about equally. \
On Mars the sky is butterscotch by day and blue at sunset, because its dust scatters \
light differently from the gases of our atmosphere. ";

/// Ordinary prose cut as a tokenizer would: words with their leading space.
fn tokens(n: usize) -> Vec<String> {
    let words: Vec<String> = PROSE
        .split_inclusive(' ')
        .map(|w| format!(" {}", w.trim_end()))
        .collect();
    words.iter().cycle().take(n).cloned().collect()
}

async fn start(upstream: &str) -> (String, AppState) {
    let yaml = "cache: {backend: memory}\n";
    let config =
        load_from(yaml, |k| (k == "OLLAMA_URL").then(|| upstream.to_string())).expect("config");
    support::serve(config).await
}

/// Time to the first chunk, and text frames per second over the stream.
async fn one(client: &reqwest::Client, url: &str, i: usize) -> (Duration, f64, usize) {
    let body = json!({"model": "m", "stream": true,
        "messages": [{"role": "user", "content": format!("Question {i}: why is the sky blue?")}]});
    let started = Instant::now();
    let mut resp = client.post(url).json(&body).send().await.expect("send");
    assert!(resp.status().is_success());
    let mut first = None;
    let mut text = Vec::new();
    while let Some(chunk) = resp.chunk().await.expect("chunk") {
        first.get_or_insert_with(|| started.elapsed());
        text.extend_from_slice(&chunk);
    }
    let frames = text.iter().filter(|&&b| b == b'\n').count();
    let first = first.unwrap_or_default();
    let streaming = started
        .elapsed()
        .saturating_sub(first)
        .as_secs_f64()
        .max(1e-9);
    (first, frames as f64 / streaming, frames)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let requests: usize = std::env::args()
        .skip_while(|a| a != "--requests")
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let fake = fake_ollama::FakeOllama::start().await;
    let tokens = tokens(200);
    let refs: Vec<&str> = tokens.iter().map(String::as_str).collect();
    fake.reply_tokens(&refs);
    let (proxy, state) = start(&fake.url).await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let (mut ttfb, mut rate) = ([Vec::new(), Vec::new()], [Vec::new(), Vec::new()]);
    let mut frames = [0, 0];
    for i in 0..requests {
        for (t, base) in [&fake.url, &proxy].into_iter().enumerate() {
            let (first, per_sec, n) = one(&client, &format!("{base}/api/chat"), i).await;
            ttfb[t].push(first.as_secs_f64() * 1e6);
            rate[t].push(per_sec);
            frames[t] = n;
        }
    }
    println!(
        "/api/chat, a 200-chunk streamed reply of prose, {requests} requests each, interleaved"
    );
    println!(
        "default scanners (output: invisible_text redact, secrets redact, no_refusal report)\n"
    );
    println!(
        "{:<12} {:>14} {:>16} {:>8}",
        "target", "ttfb p50 µs", "chunks/s p50", "frames"
    );
    for (t, name) in ["direct", "via proxy"].iter().enumerate() {
        println!(
            "{:<12} {:>14.0} {:>16.0} {:>8}",
            name,
            median(ttfb[t].clone()),
            median(rate[t].clone()),
            frames[t]
        );
    }
    println!(
        "ratio        {:>14.2} {:>16.2}",
        median(ttfb[1].clone()) / median(ttfb[0].clone()),
        median(rate[1].clone()) / median(rate[0].clone())
    );

    // Bytes held back after each chunk of the same prose (the window's
    // tail that could still become a finding).
    let pipeline = state.guard.output.pipeline.clone();
    let mut text = String::new();
    let (mut held, mut nonzero) = (0usize, 0usize);
    for t in &tokens {
        text.push_str(t);
        let h = pipeline.hold_back(&text, 0);
        held += h;
        nonzero += usize::from(h > 0);
    }
    println!(
        "\nheld back after each of {} chunks of prose: {:.2} bytes on average, {} chunks held anything",
        tokens.len(),
        held as f64 / tokens.len() as f64,
        nonzero
    );
}
