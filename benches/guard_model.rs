//! `guard_model` with a guard that takes 300 ms (the fake Ollama answering
//! as Llama Guard 3 after a sleep), measured in one run against a
//! redis-server this benchmark starts on a free port:
//! 1. `/api/generate` latency when the verdict is a miss (the guard is
//!    asked), an L1 hit, and an L2 hit (judged by another instance);
//! 2. a ten-turn chat replayed the way clients send it (every turn resends
//!    the history), input and output guarded: guard calls and wall time
//!    with the cache and without it;
//! 3. a streamed reply (100 frames, 20 ms apart) judged by the guard on the
//!    way out: time to first byte and to the end, direct vs through the
//!    proxy, at the default judge interval and with `judge_every_bytes: 0`.
//!
//! `cargo bench --bench guard_model` (or `bench/guard_model.sh`).

// A benchmark that cannot set up should stop loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/common/fake_compat.rs"]
#[allow(dead_code)]
mod fake_compat;
#[path = "../tests/common/fake_guard.rs"]
#[allow(dead_code)]
mod fake_guard;
#[path = "../tests/common/fake_ollama.rs"]
#[allow(dead_code)]
mod fake_ollama;
#[path = "../tests/common/redis_server.rs"]
#[allow(dead_code)]
mod redis_server;
mod support;

use std::time::{Duration, Instant};

use fake_guard::{Family, GuardScript};
use fake_ollama::FakeOllama;
use ollama_guard::config::Config;
use serde_json::{Value, json};
use support::{percentile, redis_config, us};

const GUARD: &str = "llama-guard3:1b";
const GUARD_MILLIS: u64 = 300;

/// An instance sharing verdicts through Redis, once connected: its URL.
async fn start(config: Config) -> String {
    support::serve_with_l2(config).await.0
}

fn line(name: &str, v: &[Duration]) {
    println!(
        "{name:<44} p50 {:>9} µs   p99 {:>9} µs   (n={})",
        us(percentile(v, 0.5)),
        us(percentile(v, 0.99)),
        v.len()
    );
}

async fn generate(client: &reqwest::Client, url: &str, prompt: &str) -> (Duration, String) {
    let body = json!({"model": "llama3.2", "prompt": prompt, "stream": false});
    let started = Instant::now();
    let resp = client
        .post(format!("{url}/api/generate"))
        .json(&body)
        .send()
        .await
        .expect("send");
    let tier = resp
        .headers()
        .get("x-guard-cache")
        .map(|v| v.to_str().unwrap_or("").to_string());
    assert_eq!(resp.status(), 200);
    let _ = resp.bytes().await.expect("body");
    (started.elapsed(), tier.unwrap_or_default())
}

async fn tiers(fake: &FakeOllama, redis_url: &str, client: &reqwest::Client) {
    let yaml = "scanners:\n  input: [{type: guard_model}]\n  output: []\n";
    let a = start(redis_config(redis_url, &fake.url, yaml)).await;
    let b = start(redis_config(redis_url, &fake.url, yaml)).await;
    let (mut miss, mut l1, mut l2) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..20 {
        let (t, tier) = generate(client, &a, &format!("Tell me about llamas ({i})")).await;
        assert_eq!(tier, "miss");
        miss.push(t);
    }
    for _ in 0..1000 {
        let (t, tier) = generate(client, &a, "Tell me about llamas (0)").await;
        assert_eq!(tier, "hit-l1");
        l1.push(t);
    }
    tokio::time::sleep(Duration::from_millis(200)).await; // background L2 writes land
    for i in 0..20 {
        let (t, tier) = generate(client, &b, &format!("Tell me about llamas ({i})")).await;
        assert_eq!(tier, "hit-l2");
        l2.push(t);
    }
    println!("1. /api/generate, one client, input judged by a {GUARD_MILLIS} ms guard model");
    line("miss (the guard is asked)", &miss);
    line("L1 hit", &l1);
    line("L2 hit (judged by the other instance)", &l2);
}

/// Replays a ten-turn chat; returns (guard calls, wall time).
async fn replay(
    fake: &FakeOllama,
    url: &str,
    client: &reqwest::Client,
    tag: &str,
) -> (usize, Duration) {
    let before = fake.guard_calls(GUARD).len();
    let started = Instant::now();
    let mut messages = vec![json!({"role": "system", "content": "You are a patient tutor."})];
    for turn in 1..=10 {
        fake.reply_tokens(&[&format!("Here is answer {turn} ({tag}), "), "about tides."]);
        messages.push(json!({"role": "user", "content": format!("Question {turn} ({tag}): why are there tides?")}));
        let body = json!({"model": "llama3.2", "stream": false, "messages": messages});
        let resp = client
            .post(format!("{url}/api/chat"))
            .json(&body)
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), 200);
        let reply: Value = resp.json().await.expect("json");
        messages.push(reply["message"].clone());
    }
    (fake.guard_calls(GUARD).len() - before, started.elapsed())
}

async fn chat_replay(fake: &FakeOllama, redis_url: &str, client: &reqwest::Client) {
    let yaml = "scanners:\n  input: [{type: guard_model}]\n  output: [{type: guard_model}]\n";
    let cached = start(redis_config(redis_url, &fake.url, yaml)).await;
    let (with, with_time) = replay(fake, &cached, client, "cached").await;
    let mut uncached = redis_config(redis_url, &fake.url, yaml);
    uncached.cache.enabled = false;
    let (url, _) = support::serve(uncached).await;
    let (without, without_time) = replay(fake, &url, client, "uncached").await;
    println!("\n2. a ten-turn chat, each turn resending the history, input and output judged");
    println!(
        "{:<44} {with:>4} guard calls, {:>6.2} s",
        "with the verdict cache",
        with_time.as_secs_f64()
    );
    println!(
        "{:<44} {without:>4} guard calls, {:>6.2} s   ({:.0}% of calls saved)",
        "without (cache.enabled: false)",
        without_time.as_secs_f64(),
        100.0 * (1.0 - with as f64 / without as f64)
    );
}

/// Time to the first content and to the end of one streamed chat.
async fn stream_once(client: &reqwest::Client, url: &str, prompt: &str) -> (Duration, Duration) {
    let body = json!({"model": "llama3.2", "messages": [{"role": "user", "content": prompt}]});
    let started = Instant::now();
    let mut resp = client
        .post(format!("{url}/api/chat"))
        .json(&body)
        .send()
        .await
        .expect("send");
    let mut first = None;
    let mut text = String::new();
    while let Some(chunk) = resp.chunk().await.expect("chunk") {
        text.push_str(&String::from_utf8_lossy(&chunk));
        if first.is_none() && text.contains("Tide") {
            first = Some(started.elapsed());
        }
    }
    assert!(text.contains("\"done\":true"), "stream ended early");
    (first.unwrap_or_default(), started.elapsed())
}

async fn streams(fake: &FakeOllama, redis_url: &str, client: &reqwest::Client) {
    let tokens: Vec<String> = (0..100).map(|i| format!("Tide {i:03}. ")).collect();
    let refs: Vec<&str> = tokens.iter().map(String::as_str).collect();
    fake.reply_tokens(&refs);
    fake.script(|s| s.token_delay = Duration::from_millis(20));
    let guarded = "scanners:\n  input: []\n  output: [{type: guard_model}]\n";
    let at_end = format!("guard:\n  stream:\n    judge_every_bytes: 0\n{guarded}");
    let interval = start(redis_config(redis_url, &fake.url, guarded)).await;
    let end_only = start(redis_config(redis_url, &fake.url, &at_end)).await;
    let mut rows: Vec<(&str, Vec<Duration>, Vec<Duration>)> = vec![
        ("direct to the fake Ollama", vec![], vec![]),
        ("proxy, judge_every_bytes 512 (default)", vec![], vec![]),
        ("proxy, judge_every_bytes 0 (end only)", vec![], vec![]),
    ];
    for round in 0..5 {
        for (i, url) in [&fake.url, &interval, &end_only].into_iter().enumerate() {
            let (first, total) =
                stream_once(client, url, &format!("Sing of tides {round} {i}")).await;
            rows[i].1.push(first);
            rows[i].2.push(total);
        }
    }
    fake.script(|s| s.token_delay = Duration::ZERO);
    println!(
        "\n3. a streamed reply of 100 frames (1,000 bytes) 20 ms apart, output judged by the {GUARD_MILLIS} ms guard; p50 of 5"
    );
    for (name, first, total) in rows {
        println!(
            "{name:<44} first text {:>6} ms   end {:>6} ms",
            percentile(&first, 0.5).as_millis(),
            percentile(&total, 0.5).as_millis()
        );
    }
}

#[tokio::main]
async fn main() {
    let redis = redis_server::RedisServer::start();
    let fake = FakeOllama::start().await;
    let mut script = GuardScript::new(Family::LlamaGuard);
    script.delay = Duration::from_millis(GUARD_MILLIS);
    fake.guard(GUARD, script);
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    tiers(&fake, &redis.url(), &client).await;
    chat_replay(&fake, &redis.url(), &client).await;
    streams(&fake, &redis.url(), &client).await;
}
