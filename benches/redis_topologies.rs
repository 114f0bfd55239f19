//! L2 on every Redis topology, measured in one run against real processes
//! this benchmark starts on free ports:
//! 1. the time of an L2 read (GET + PTTL of a stored verdict) on one
//!    redis-server, the same behind TLS (stunnel4, a private CA, a client
//!    certificate), the master found through redis-sentinel, and a
//!    three-node Redis Cluster, interleaved round by round;
//! 2. a Sentinel failover under load: two instances, eight clients, the
//!    master killed; failed requests, and seconds until a verdict written
//!    by one instance is read by the other again.
//!
//! `cargo bench --bench redis_topologies` (or `bench/redis_topologies.sh`);
//! `-- --reads N` sets the reads per topology (default 4000).

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
#[path = "../tests/common/redis_topologies.rs"]
#[allow(dead_code)]
mod redis_topologies;
mod support;

use std::time::{Duration, Instant};

use ollama_guard::cache::VerdictCache;
use ollama_guard::config::Config;
use ollama_guard::scan::Verdict;
use redis_server::RedisServer;
use redis_topologies::{Cluster, Load, Pki, Sentinel, TlsFront, master_and_replica};
use serde_json::json;
use support::{bench_key as key, percentile, us};

fn config(upstream: &str, redis_yaml: &str) -> Config {
    let yaml = format!(
        "guard: {{expose_cache_header: true}}\n\
         scanners:\n  input: [{{type: delay, millis: 30}}]\n  output: []\n\
         cache: {{backend: redis}}\nredis:\n  health_check_interval: 0.1\n{redis_yaml}"
    );
    ollama_guard::config::load_from(&yaml, |k| (k == "OLLAMA_URL").then(|| upstream.to_string()))
        .expect("config")
}

/// A cache on `cfg`'s Redis with `n` verdicts stored.
async fn filled(cfg: &Config, n: usize) -> VerdictCache {
    let metrics = ollama_guard::metrics::Metrics::new().expect("metrics");
    let cache = VerdictCache::from_config(cfg, &metrics).expect("cache");
    support::wait_for_l2(&cache).await;
    let l2 = cache.redis().expect("l2");
    for i in 0..n {
        l2.put(&key(i), &Verdict::default()).await;
    }
    cache
}

async fn read_latency(upstream: &str, reads: usize) {
    let pki = Pki::new();
    let single = RedisServer::start();
    let behind_tls = RedisServer::start();
    let tls = TlsFront::start(&pki, behind_tls.port);
    let (master, _replica) = master_and_replica(None);
    let sentinel = Sentinel::start(master.port, "mymaster", None, None);
    let cluster = Cluster::start(3);
    let topologies = [
        ("one redis-server", format!("  url: {}\n", single.url())),
        (
            "TLS (stunnel4, client certificate)",
            format!(
                "  url: rediss://127.0.0.1:{}/0\n  tls_ca_file: {}\n  tls_cert_file: {}\n  tls_key_file: {}\n",
                tls.port,
                pki.path("ca.pem"),
                pki.path("client.pem"),
                pki.path("client.key")
            ),
        ),
        (
            "Sentinel (master found through it)",
            format!("  sentinel: {{nodes: [\"127.0.0.1:{}\"]}}\n", sentinel.port),
        ),
        (
            "Cluster, 3 primaries",
            format!("  cluster_nodes: [{}]\n", cluster.addrs().join(", ")),
        ),
    ];
    let stored = 1000;
    let mut caches = Vec::new();
    for (_, yaml) in &topologies {
        caches.push(filled(&config(upstream, yaml), stored).await);
    }
    let mut times = vec![Vec::with_capacity(reads); topologies.len()];
    let rounds = 20;
    for round in 0..rounds {
        for (t, cache) in caches.iter().enumerate() {
            let l2 = cache.redis().expect("l2");
            for i in 0..reads / rounds {
                let started = Instant::now();
                assert!(l2.get(&key((round * 7 + i) % stored)).await.is_some());
                times[t].push(started.elapsed());
            }
        }
    }
    println!("1. an L2 read (GET + PTTL of a stored verdict), {reads} per topology, interleaved");
    for ((name, _), v) in topologies.iter().zip(times) {
        println!(
            "{name:<40} p50 {:>8} µs   p99 {:>8} µs",
            us(percentile(&v, 0.5)),
            us(percentile(&v, 0.99))
        );
    }
    for cache in &caches {
        cache.stop();
    }
}

async fn chat(client: &reqwest::Client, url: &str, text: &str) -> (u16, String) {
    let body =
        json!({"model": "m", "stream": false, "messages": [{"role": "user", "content": text}]});
    let resp = client
        .post(format!("{url}/api/chat"))
        .json(&body)
        .send()
        .await;
    match resp {
        Ok(r) => {
            let tier = r
                .headers()
                .get("x-guard-cache")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            (r.status().as_u16(), tier)
        }
        Err(_) => (0, String::new()),
    }
}

async fn failover(upstream: &str, client: &reqwest::Client) {
    let (mut master, replica) = master_and_replica(None);
    let sentinel = Sentinel::start(master.port, "mymaster", None, None);
    let yaml = format!("  sentinel: {{nodes: [\"127.0.0.1:{}\"]}}\n", sentinel.port);
    let (a, _sa) = support::serve_with_l2(config(upstream, &yaml)).await;
    let (b, _sb) = support::serve_with_l2(config(upstream, &yaml)).await;
    let load = Load::start(&[&a, &b], 8);
    tokio::time::sleep(Duration::from_secs(1)).await;
    master.kill();
    let killed = Instant::now();
    let mut promoted = None;
    let mut n = 0;
    let back = loop {
        if promoted.is_none() && sentinel.master_port("mymaster") == Some(replica.port) {
            promoted = Some(killed.elapsed());
        }
        n += 1;
        let text = format!("after failover {n}");
        chat(client, &a, &text).await;
        if chat(client, &b, &text).await.1 == "hit-l2" {
            break killed.elapsed();
        }
        assert!(
            killed.elapsed() < Duration::from_secs(60),
            "L2 never came back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (sent, failed) = load.finish().await;
    println!("\n2. Sentinel failover under load (8 clients on 2 instances, master killed)");
    println!(
        "requests {sent}   failed {failed}   replica promoted after {:.2} s   L2 back after {:.2} s",
        promoted.map_or(f64::NAN, |d| d.as_secs_f64()),
        back.as_secs_f64()
    );
}

#[tokio::main]
async fn main() {
    let fake = fake_ollama::FakeOllama::start().await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    read_latency(&fake.url, support::arg("--reads", 4000)).await;
    failover(&fake.url, &client).await;
}
