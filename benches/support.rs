//! Load-generation helpers shared by the benchmarks: run a request closure
//! with N workers for a number of requests, collect latencies, print rows.
#![allow(dead_code)]

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Latencies of one measured run.
pub struct Sample {
    pub total: Vec<Duration>,
    pub first_byte: Vec<Duration>,
    pub wall: Duration,
    pub errors: usize,
}

/// Runs `requests` calls of `one` over `workers` concurrent tasks. `one`
/// returns (time to first byte, total time) or an error string.
pub async fn run<F, Fut>(workers: usize, requests: usize, one: F) -> Sample
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(Duration, Duration), String>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let one = Arc::new(one);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (next, one) = (next.clone(), one.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = (Vec::new(), Vec::new(), 0usize);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= requests {
                    break out;
                }
                match one(i).await {
                    Ok((fb, t)) => {
                        out.0.push(t);
                        out.1.push(fb);
                    }
                    Err(_) => out.2 += 1,
                }
            }
        }));
    }
    let mut sample = Sample {
        total: Vec::new(),
        first_byte: Vec::new(),
        wall: Duration::ZERO,
        errors: 0,
    };
    for t in tasks {
        if let Ok((total, fb, errors)) = t.await {
            sample.total.extend(total);
            sample.first_byte.extend(fb);
            sample.errors += errors;
        }
    }
    sample.wall = started.elapsed();
    sample
}

impl Sample {
    pub fn merge(&mut self, other: Sample) {
        self.total.extend(other.total);
        self.first_byte.extend(other.first_byte);
        self.wall += other.wall;
        self.errors += other.errors;
    }

    pub fn empty() -> Self {
        Sample {
            total: Vec::new(),
            first_byte: Vec::new(),
            wall: Duration::ZERO,
            errors: 0,
        }
    }

    pub fn rps(&self) -> f64 {
        self.total.len() as f64 / self.wall.as_secs_f64().max(1e-9)
    }
}

/// `--name N` from the command line, or `default`.
pub fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(default)
}

pub fn percentile(values: &[Duration], p: f64) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    let mut v = values.to_vec();
    v.sort();
    let idx = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[idx.min(v.len() - 1)]
}

pub fn us(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1e6)
}

pub fn header() {
    println!(
        "{:<34} {:>9} {:>9} {:>9} {:>10} {:>10} {:>7}",
        "scenario", "req/s", "p50 µs", "p99 µs", "ttfb p50", "ttfb p99", "errors"
    );
}

pub fn row(name: &str, s: &Sample) {
    println!(
        "{:<34} {:>9.0} {:>9} {:>9} {:>10} {:>10} {:>7}",
        name,
        s.rps(),
        us(percentile(&s.total, 0.5)),
        us(percentile(&s.total, 0.99)),
        us(percentile(&s.first_byte, 0.5)),
        us(percentile(&s.first_byte, 0.99)),
        s.errors
    );
}

/// An ollama-guard serving `config` in this process on a free port: its
/// URL and state.
#[allow(clippy::expect_used, reason = "a benchmark that cannot set up stops")]
pub async fn serve(config: ollama_guard::config::Config) -> (String, ollama_guard::AppState) {
    let state = ollama_guard::AppState::new(config).expect("state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(ollama_guard::run(
        listener,
        state.clone(),
        std::future::pending(),
    ));
    (url, state)
}

/// Config from YAML (scanners and more) with the verdicts shared through
/// the Redis at `redis_url` and `ollama.url` at `upstream`.
#[allow(clippy::expect_used, reason = "a benchmark that cannot set up stops")]
pub fn redis_config(redis_url: &str, upstream: &str, yaml: &str) -> ollama_guard::config::Config {
    let yaml = format!(
        "{yaml}\ncache: {{backend: redis}}\nredis: {{url: '{redis_url}', health_check_interval: 0.2}}\n"
    );
    let mut config = ollama_guard::config::load_from(&yaml, |k| {
        (k == "OLLAMA_URL").then(|| upstream.to_string())
    })
    .expect("config");
    // The benchmarks read where each verdict came from.
    config.guard.expose_cache_header = true;
    config
}

/// [`serve`], once the instance is connected to Redis.
#[allow(clippy::panic, reason = "a benchmark that cannot set up stops")]
pub async fn serve_with_l2(
    config: ollama_guard::config::Config,
) -> (String, ollama_guard::AppState) {
    let (url, state) = serve(config).await;
    wait_for_l2(&state.guard.cache).await;
    (url, state)
}

/// Waits (up to 5 s) until `cache` reaches Redis.
#[allow(clippy::panic, reason = "a benchmark that cannot set up stops")]
pub async fn wait_for_l2(cache: &ollama_guard::cache::VerdictCache) {
    for _ in 0..200 {
        if cache.redis().is_some_and(|l2| l2.is_available()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("Redis did not connect");
}

/// The cache key of the `i`th text of a lookup benchmark.
pub fn bench_key(i: usize) -> ollama_guard::cache::CacheKey {
    ollama_guard::cache::CacheKey::new(ollama_guard::cache::KeyParts {
        policy: "bench",
        direction: ollama_guard::scan::Direction::Input,
        prompt: None,
        text: &format!("text {i}"),
    })
}
