//! The verdict cache, measured in one run against a redis-server this
//! benchmark starts on a free port:
//! 1. lookup time of an L1 hit and of an L2 hit (Redis GET + PTTL);
//! 2. end-to-end `/api/chat` latency when the verdict is a miss (a 200 ms
//!    scanner runs; then the prompt_injection classifier), an L1 hit, and an
//!    L2 hit (scanned by another instance);
//! 3. requests per second with Redis up, then while Redis is SIGSTOPped;
//! 4. `/api/chat` latency of new prompts (L1 misses) with the default input
//!    scanners: no Redis, a Redis answering in 150 ms (a delaying relay),
//!    and a plain Redis, interleaved.
//!
//! `cargo bench --bench cache` (or `bench/cache.sh`); `-- --requests N` sets
//! the requests per throughput round (default 10000).

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
#[path = "../tests/common/slow_relay.rs"]
#[allow(dead_code)]
mod slow_relay;
mod support;

use std::time::{Duration, Instant};

use ollama_guard::cache::VerdictCache;
use ollama_guard::scan::Verdict;
use serde_json::json;
use support::{Sample, bench_key as key, percentile, us};
use support::{redis_config as config, serve_with_l2 as start, wait_for_l2};

fn stats(name: &str, mut v: Vec<Duration>) {
    v.sort();
    let mean = v.iter().sum::<Duration>() / v.len().max(1) as u32;
    println!(
        "{name:<40} mean {:>8} µs   p50 {:>8} µs   p99 {:>8} µs   (n={})",
        format!("{:.2}", mean.as_secs_f64() * 1e6),
        format!("{:.2}", percentile(&v, 0.5).as_secs_f64() * 1e6),
        format!("{:.2}", percentile(&v, 0.99).as_secs_f64() * 1e6),
        v.len()
    );
}

async fn lookups(redis_url: &str, upstream: &str) {
    let cfg = config(redis_url, upstream, "");
    let metrics = ollama_guard::metrics::Metrics::new().expect("metrics");
    let cache = VerdictCache::from_config(&cfg, &metrics).expect("cache");
    wait_for_l2(&cache).await;
    let l2 = cache.redis().expect("l2");
    let verdict = Verdict {
        allowed: true,
        ..Verdict::default()
    };
    for i in 0..2000 {
        l2.put(&key(i), &verdict).await;
    }
    let (_, _) = cache
        .get_or_scan(key(0), || async { Ok(Verdict::default()) })
        .await;
    let mut l1 = Vec::new();
    for _ in 0..20_000 {
        let started = Instant::now();
        let (v, _) = cache
            .get_or_scan(key(0), || async { Ok(Verdict::default()) })
            .await;
        l1.push(started.elapsed());
        assert!(v.is_ok());
    }
    let mut l2_times = Vec::new();
    for i in 0..2000 {
        let started = Instant::now();
        assert!(l2.get(&key(i)).await.is_some());
        l2_times.push(started.elapsed());
    }
    println!("1. lookups");
    stats("L1 hit (VerdictCache::get_or_scan)", l1);
    stats("L2 hit (Redis GET+PTTL over loopback)", l2_times);
}

async fn chat(client: &reqwest::Client, url: &str, text: &str) -> (Duration, String) {
    let body =
        json!({"model": "m", "stream": false, "messages": [{"role": "user", "content": text}]});
    let started = Instant::now();
    let resp = client
        .post(format!("{url}/api/chat"))
        .json(&body)
        .send()
        .await
        .expect("send");
    let tier = resp
        .headers()
        .get("x-guard-cache")
        .map(|v| v.to_str().unwrap_or("").to_string())
        .unwrap_or_default();
    let _ = resp.bytes().await.expect("body");
    (started.elapsed(), tier)
}

async fn end_to_end(
    redis_url: &str,
    upstream: &str,
    client: &reqwest::Client,
    (title, scanner, prompt): (&str, &str, &str),
) {
    let costly = format!("scanners:\n  input: [{scanner}]\n  output: []\n");
    let (a, _) = start(config(redis_url, upstream, &costly)).await;
    let (b, _) = start(config(redis_url, upstream, &costly)).await;
    let (mut miss, mut l1, mut l2) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..30 {
        let (t, tier) = chat(client, &a, &format!("{prompt} ({i})")).await;
        assert_eq!(tier, "miss");
        miss.push(t);
    }
    for _ in 0..2000 {
        let (t, tier) = chat(client, &a, &format!("{prompt} (0)")).await;
        assert_eq!(tier, "hit-l1");
        l1.push(t);
    }
    tokio::time::sleep(Duration::from_millis(200)).await; // background L2 writes land
    for i in 0..30 {
        let (t, tier) = chat(client, &b, &format!("{prompt} ({i})")).await;
        assert_eq!(tier, "hit-l2");
        l2.push(t);
    }
    println!("\n2. end to end, /api/chat non-streamed, one client, {title}");
    stats("miss (scanner runs)", miss);
    stats("L1 hit", l1);
    stats("L2 hit (scanned by the other instance)", l2);
}

async fn throughput(
    redis: &redis_server::RedisServer,
    upstream: &str,
    client: &reqwest::Client,
    requests: usize,
) {
    let cheap =
        "scanners:\n  input: [{type: ban_substrings, substrings: [forbidden]}]\n  output: []\n";
    let (url, _) = start(config(&redis.url(), upstream, cheap)).await;
    // Half the prompts repeat (hits), half are new (miss: L2 GET, scan, SET).
    let one = move |c: reqwest::Client, url: String, round: usize| {
        move |i: usize| {
            let (c, url) = (c.clone(), url.clone());
            async move {
                let text = if i.is_multiple_of(2) {
                    format!("repeat {}", i % 50)
                } else {
                    format!("new {round}-{i}")
                };
                let (t, _) = chat(&c, &url, &text).await;
                Ok::<_, String>((t, t))
            }
        }
    };
    let mut up = Sample::empty();
    let mut stopped = Sample::empty();
    for round in 0..3 {
        up.merge(support::run(16, requests, one(client.clone(), url.clone(), round * 2)).await);
        redis.pause();
        stopped.merge(
            support::run(
                16,
                requests,
                one(client.clone(), url.clone(), round * 2 + 1),
            )
            .await,
        );
        redis.resume();
        tokio::time::sleep(Duration::from_millis(500)).await; // the probe reconnects
    }
    println!(
        "\n3. throughput, 16 clients, half repeated prompts, Redis up vs SIGSTOPped (3 alternating rounds)"
    );
    support::header();
    support::row("Redis up", &up);
    support::row("Redis SIGSTOPped", &stopped);
    println!(
        "{:<34} ratio stopped/up {:.2}; slowest request while stopped {} µs (socket_timeout 250 ms)",
        "",
        stopped.rps() / up.rps(),
        us(percentile(&stopped.total, 1.0))
    );
}

/// New prompts through the default input scanners: no Redis, a Redis that
/// answers in 150 ms, and a plain Redis, interleaved.
async fn slow_redis(redis: &redis_server::RedisServer, upstream: &str, client: &reqwest::Client) {
    let relay = slow_relay::SlowRelay::start(redis.port, Duration::from_millis(150)).await;
    let defaults = "scanners: {output: []}\n";
    let mut memory = config(&redis.url(), upstream, defaults);
    memory.cache.backend = ollama_guard::config::CacheBackend::Memory;
    let (none, _) = support::serve(memory).await;
    let mut slow_cfg = config(&relay.redis_url(), upstream, defaults);
    slow_cfg.redis.socket_timeout = 1.0;
    let (slow, slow_state) = start(slow_cfg).await;
    let (plain, _) = start(config(&redis.url(), upstream, defaults)).await;
    let mut rows: Vec<(&str, &String, Vec<Duration>)> = vec![
        ("no Redis (memory only)", &none, vec![]),
        ("Redis answering in 150 ms", &slow, vec![]),
        ("Redis on loopback", &plain, vec![]),
    ];
    let question = "How far is the moon from the earth, and does the distance change over a month";
    for i in 0..60 {
        for (name, url, times) in rows.iter_mut() {
            let (t, _) = chat(client, url, &format!("{question} ({name} {i})?")).await;
            times.push(t);
        }
    }
    println!("\n4. /api/chat, a new prompt each time (L1 miss), default input scanners");
    for (name, _, times) in rows {
        stats(name, times);
    }
    let c = slow_state.guard.cache.counters();
    println!(
        "{:<40} L2 reads skipped by the 150 ms instance: {} of {} lookups",
        "",
        c.l2_skipped.get(),
        c.misses.get() + c.l2_hits.get()
    );
}

#[tokio::main]
async fn main() {
    let redis = redis_server::RedisServer::start();
    let fake = fake_ollama::FakeOllama::start().await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    lookups(&redis.url(), &fake.url).await;
    end_to_end(
        &redis.url(),
        &fake.url,
        &client,
        (
            "a 200 ms input scanner",
            "{type: delay, millis: 200}",
            "miss",
        ),
    )
    .await;
    // The shipped classifier (needs ./scripts/fetch-models.sh): what a miss
    // costs with it, and what the cache saves.
    let question = "Could you explain, in a few paragraphs, how the tides depend on the moon and \
                    the sun, why there are two high tides a day in most places, and why some \
                    harbours see much larger tidal ranges than others?";
    end_to_end(
        &redis.url(),
        &fake.url,
        &client,
        (
            "prompt_injection with its classifier, a 240-character question",
            "{type: prompt_injection}",
            question,
        ),
    )
    .await;
    throughput(
        &redis,
        &fake.url,
        &client,
        support::arg("--requests", 10_000),
    )
    .await;
    slow_redis(&redis, &fake.url, &client).await;
}
