//! Proxy overhead: `/api/chat` straight to a fast fake Ollama vs through
//! ollama-guard (three scanners on input and output), non-streamed and
//! streamed, in one run with the two targets interleaved round by round so
//! machine noise hits both alike. Every prompt is unique, so each request
//! pays a real input scan (no cache hits).
//!
//! A second part measures what API keys and rate limits add: the same
//! proxy (no scanners) without keys, with a key and a rate limit shared
//! through a redis-server this benchmark starts, and with that Redis gone
//! (limits counted locally).
//!
//! `cargo bench --bench proxy` (or `bench/proxy.sh`); options:
//! `-- --requests N --workers N --rounds N`.

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
#[path = "../tests/common/redis_server.rs"]
#[allow(dead_code)]
mod redis_server;
mod support;

use std::time::{Duration, Instant};

use ollama_guard::config::load_from;
use serde_json::json;
use support::{Sample, arg, header, row};

const SCANNERS: &str = r#"
cache: {backend: memory}
scanners:
  input:
    - {type: invisible_text}
    - {type: ban_substrings, substrings: ["kill all humans", "ignore previous instructions", "developer mode"]}
    - {type: regex, mode: redact, patterns: ['sk-[A-Za-z0-9]{20,}', 'AKIA[0-9A-Z]{16}']}
  output:
    - {type: invisible_text, mode: redact}
    - {type: ban_substrings, substrings: ["kill all humans"]}
    - {type: regex, mode: redact, patterns: ['sk-[A-Za-z0-9]{20,}']}
"#;

/// One `/api/chat` (a new prompt each time), sending `key` as a bearer
/// token: (time to first byte, total).
async fn chat_as(
    client: reqwest::Client,
    url: String,
    i: usize,
    stream: bool,
    key: Option<&'static str>,
) -> Result<(Duration, Duration), String> {
    let body = json!({"model": "llama3.2", "stream": stream, "messages": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": format!("Question {i}: what colour is the sky on a clear day, and why?")}]});
    let started = Instant::now();
    let mut req = client.post(url).json(&body);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let mut resp = req.send().await.map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(resp.status().to_string());
    }
    let mut first = None;
    while let Some(_chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        first.get_or_insert_with(|| started.elapsed());
    }
    Ok((first.unwrap_or_default(), started.elapsed()))
}

const NO_SCANNERS: &str = "cache: {backend: memory}\nscanners: {input: [], output: []}\n";

/// An ollama-guard in this process, in front of `upstream`.
async fn start(yaml: &str, upstream: &str) -> String {
    let config =
        load_from(yaml, |k| (k == "OLLAMA_URL").then(|| upstream.to_string())).expect("config");
    support::serve(config).await.0
}

#[tokio::main]
async fn main() {
    let (requests, workers, rounds) = (
        arg("--requests", 2000),
        arg("--workers", 16),
        arg("--rounds", 4),
    );
    let fake = fake_ollama::FakeOllama::start().await;
    let proxy = start(SCANNERS, &fake.url).await;
    let bare = start(NO_SCANNERS, &fake.url).await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(64)
        .build()
        .expect("client");

    println!(
        "/api/chat, {requests} requests x {rounds} rounds per row, fake Ollama replying 5 tokens"
    );
    for (label, concurrency) in [("1 client", 1usize), ("concurrent", workers)] {
        println!("\n{label} ({concurrency} in flight):");
        header();
        for stream in [false, true] {
            let targets = [&fake.url, &bare, &proxy].map(|u| (u.clone(), None));
            let samples =
                interleaved(&client, &targets, concurrency, requests, rounds, stream).await;
            let [direct, hop, proxied] = &samples[..] else {
                unreachable!("three targets")
            };
            let kind = if stream { "streamed" } else { "non-streamed" };
            row(&format!("{kind} direct"), direct);
            row(&format!("{kind} via proxy, no scanners"), hop);
            row(&format!("{kind} via proxy, 3+3 scanners"), proxied);
            let added = support::percentile(&proxied.first_byte, 0.5)
                .saturating_sub(support::percentile(&direct.first_byte, 0.5));
            println!(
                "{:<34} added ttfb p50 {} µs, throughput ratio {:.2}",
                "",
                support::us(added),
                proxied.rps() / direct.rps()
            );
        }
    }
    access(&fake.url, &client, requests, workers, rounds).await;
}

/// Runs `/api/chat` against each target (base URL, key) in turn, `rounds`
/// times, so machine noise hits them alike: one sample per target. One
/// client sends a quarter of `requests` a round.
async fn interleaved(
    client: &reqwest::Client,
    targets: &[(String, Option<&'static str>)],
    concurrency: usize,
    requests: usize,
    rounds: usize,
    stream: bool,
) -> Vec<Sample> {
    let mut samples: Vec<Sample> = targets.iter().map(|_| Sample::empty()).collect();
    let n = if concurrency == 1 {
        requests / 4
    } else {
        requests
    };
    for _ in 0..rounds {
        for ((base, key), sample) in targets.iter().zip(samples.iter_mut()) {
            let (c, url, key) = (client.clone(), format!("{base}/api/chat"), *key);
            sample.merge(
                support::run(concurrency, n, move |i| {
                    chat_as(c.clone(), url.clone(), i, stream, key)
                })
                .await,
            );
        }
    }
    samples
}

const KEY: &str = "bench-key-0123456789abcdef";

/// What a key and its rate limit add: no keys vs a key whose limit (high
/// enough never to refuse) is one Redis step, vs the same with Redis gone.
async fn access(
    upstream: &str,
    client: &reqwest::Client,
    requests: usize,
    workers: usize,
    rounds: usize,
) {
    let redis = redis_server::RedisServer::start();
    let gone = redis_server::RedisServer::not_started();
    let keyed = |redis_url: String| {
        format!(
            "{NO_SCANNERS}auth:\n  keys: [{{key: {KEY}, name: bench, rate_limit: {{requests_per_minute: 1000000000, tokens_per_minute: 1000000000}}}}]\nredis: {{url: '{redis_url}', health_check_interval: 0.2}}\n"
        )
        .replace("cache: {backend: memory}", "cache: {backend: auto}")
    };
    let open = start(NO_SCANNERS, upstream).await;
    let shared = start(&keyed(redis.url()), upstream).await;
    let local = start(&keyed(gone.url()), upstream).await;
    // Let the first instance reach Redis before measuring.
    tokio::time::sleep(Duration::from_millis(500)).await;
    println!("\nAPI keys and rate limits, /api/chat non-streamed, no scanners:");
    header();
    for (label, concurrency) in [("1 client", 1usize), ("concurrent", workers)] {
        let targets: [(&str, &String, Option<&'static str>); 3] = [
            ("no keys", &open, None),
            ("key + limit, Redis up", &shared, Some(KEY)),
            ("key + limit, Redis down", &local, Some(KEY)),
        ];
        let urls = targets.map(|(_, base, key)| (base.clone(), key));
        let samples = interleaved(client, &urls, concurrency, requests, rounds, false).await;
        for ((name, _, _), sample) in targets.iter().zip(&samples) {
            row(&format!("{label}: {name}"), sample);
        }
        let p50 = |s: &Sample| support::percentile(&s.total, 0.5);
        println!(
            "{:<34} added p50: Redis up {} µs, Redis down {} µs",
            "",
            support::us(p50(&samples[1]).saturating_sub(p50(&samples[0]))),
            support::us(p50(&samples[2]).saturating_sub(p50(&samples[0])))
        );
    }
}
