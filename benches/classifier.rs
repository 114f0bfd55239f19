//! The prompt-injection classifier (all-MiniLM-L6-v2 + head, ONNX Runtime):
//! 1. latency on one core (one inference thread), ~100 and ~2,000 characters;
//! 2. throughput on every core with 16 concurrent callers, batched (up to 32
//!    windows per call) and one window per call, in one run;
//! 3. resident memory the model adds.
//!
//! `cargo bench --bench classifier` (or `bench/classifier.sh`); needs the
//! model files (`./scripts/fetch-models.sh`). `-- --iterations N` sets the
//! latency samples (default 300).

// A benchmark that cannot set up should stop loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ollama_guard::scan::classifier::{Classifier, Setup};
use support::percentile;

const MODELS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/models");

/// Ordinary English of about `chars` characters (varied per `i`, so no two
/// texts are the same).
fn text(chars: usize, i: usize) -> String {
    let words = [
        "the", "river", "ran", "past", "an", "old", "mill", "where", "children", "played", "every",
        "summer", "and", "their", "parents", "watched", "from", "benches", "under", "tall",
        "trees", "while", "boats", "drifted", "slowly", "towards", "town",
    ];
    let mut out = format!("Story {i}:");
    let mut k = i;
    while out.len() < chars {
        k = k.wrapping_mul(31).wrapping_add(7);
        out.push(' ');
        out.push_str(words[k % words.len()]);
    }
    out.truncate(chars);
    out
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

async fn latency(c: &Classifier, chars: usize, iterations: usize) {
    for i in 0..5 {
        c.probability(&text(chars, i), 256).await.unwrap();
    }
    let mut times = Vec::with_capacity(iterations);
    for i in 0..iterations {
        let t = text(chars, 1000 + i);
        let started = Instant::now();
        c.probability(&t, 256).await.unwrap();
        times.push(started.elapsed());
    }
    times.sort();
    println!(
        "{:>5} characters   p50 {:>7.2} ms   p99 {:>7.2} ms   (n={iterations})",
        chars,
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        percentile(&times, 0.99).as_secs_f64() * 1e3,
    );
}

async fn throughput(c: Arc<Classifier>, chars: usize, texts: usize) -> f64 {
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for _ in 0..16 {
        let (c, next) = (c.clone(), next.clone());
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= texts {
                    break;
                }
                c.probability(&text(chars, 50_000 + i), 256).await.unwrap();
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    texts as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let iterations = support::arg("--iterations", 300);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let before = rss_kib();
    let one = Classifier::shared(&Setup::new(MODELS, 1)).expect("model files");
    one.probability("warm up", 256).await.unwrap();
    let loaded = rss_kib();

    println!("1. latency, one core, one caller");
    latency(&one, 100, iterations).await;
    latency(&one, 2000, iterations / 5).await;
    let after = rss_kib();

    println!("\n2. throughput, {cores} cores, 16 concurrent callers (texts/s)");
    let batched = Classifier::shared(&Setup::new(MODELS, 0)).expect("model files");
    let single = Classifier::shared(&Setup {
        batch: 1,
        ..Setup::new(MODELS, 0)
    })
    .expect("model files");
    for (chars, texts) in [(100, 3000), (2000, 150)] {
        let (mut b, mut s) = (0.0, 0.0);
        // Alternate rounds so both see the same machine.
        for _ in 0..3 {
            b += throughput(batched.clone(), chars, texts).await / 3.0;
            s += throughput(single.clone(), chars, texts).await / 3.0;
        }
        println!(
            "{chars:>5} characters   batched {b:>8.1}   one window per call {s:>8.1}   ratio {:.2}",
            b / s
        );
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    println!(
        "\n3. resident memory: {:.0} MiB before loading, +{:.0} MiB once loaded and warm, +{:.0} MiB after the latency runs (one session); {:.0} MiB with three sessions",
        before as f64 / 1024.0,
        (loaded - before) as f64 / 1024.0,
        (after - before) as f64 / 1024.0,
        rss_kib() as f64 / 1024.0
    );
}
