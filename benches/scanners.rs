//! Scan cost on one core: each scanner and the whole default input pipeline
//! (from the shipped config) on a 4 KB prompt of ordinary prose with a code
//! snippet, an e-mail address and a URL, no cache. Prints mean and p99 per
//! scan.
//!
//! `cargo bench --bench scanners` (or `bench/scanners.sh`).

// A benchmark that cannot set up should stop loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::{Duration, Instant};

use ollama_guard::config::{Config, load_from};
use ollama_guard::scan::classifier::Setup;
use ollama_guard::scan::registry::{Resources, build_pipeline};
use ollama_guard::scan::{Pipeline, ScannerSpec};
use support::percentile;

const PARAGRAPH: &str = "I am planning a two week trip through northern Italy in the spring and would like help with an itinerary. \
We will land in Milan, want to spend a few days around Lake Como, then continue to Verona, Venice and Bologna by train. \
My partner is vegetarian and we both enjoy long walks, small museums and local markets. Please suggest where to stay, \
how long to spend in each place, and which train tickets to book in advance. You can reach me at traveller.jane@example.com \
and the rail operator's site is https://www.trenitalia.com for reference. ";

fn prompt() -> String {
    let mut text = String::new();
    while text.len() < 3800 {
        text.push_str(PARAGRAPH);
    }
    text.push_str(
        "\n```python\nimport itertools\nfor city in ['Milan', 'Verona']:\n    print(city)\n```\n",
    );
    text.truncate(4096); // the prompt is ASCII, so any byte is a char boundary
    text
}

async fn time(pipeline: &Pipeline, text: &str, iterations: usize) -> Vec<Duration> {
    for _ in 0..50 {
        pipeline.scan(text).await.expect("scan");
    }
    let mut out = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let started = Instant::now();
        let scanned = pipeline.scan(text).await.expect("scan");
        out.push(started.elapsed());
        std::hint::black_box(scanned);
    }
    out
}

fn line(name: &str, times: &[Duration]) {
    let mean = times.iter().sum::<Duration>() / times.len() as u32;
    println!(
        "{name:<34} mean {:>8.1} µs   p99 {:>8.1} µs",
        mean.as_secs_f64() * 1e6,
        percentile(times, 0.99).as_secs_f64() * 1e6
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let text = prompt();
    let iterations = support::arg("--iterations", 2000);
    println!(
        "one core, a {}-byte prompt, {iterations} scans each, no cache",
        text.len()
    );
    let shipped = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.yaml"))
        .expect("config.yaml");
    let config: Config = load_from(&shipped, |_| None).expect("config");
    // The classifier on one core too; it costs milliseconds, so it runs a
    // hundredth as often (benches/classifier.rs measures it in detail).
    let models = Resources {
        models: Setup::new(concat!(env!("CARGO_MANIFEST_DIR"), "/models"), 1),
        ..config.scanner_resources()
    };
    let runs = |kind: &str| match kind {
        "prompt_injection" => (iterations / 100).max(5),
        _ => iterations,
    };
    for spec in &config.scanners.input {
        let p = build_pipeline("bench", std::slice::from_ref(spec), &models).expect("scanner");
        line(
            &format!("default input: {}", spec.kind()),
            &time(&p, &text, runs(spec.kind())).await,
        );
    }
    let all = build_pipeline("bench", &config.scanners.input, &models).expect("pipeline");
    line(
        "DEFAULT INPUT PIPELINE",
        &time(&all, &text, runs("prompt_injection")).await,
    );
    let others = "[{type: prompt_injection, use_model: false}, {type: toxicity}, {type: token_limit, max_tokens: 512}, {type: language}, {type: code}, {type: urls}, {type: ban_substrings, substrings: [a, b, c]}, {type: regex, patterns: ['\\d{3}-\\d{4}']}]";
    let specs: Vec<ScannerSpec> = serde_saphyr::from_str(others).expect("specs");
    for spec in &specs {
        let p = build_pipeline("bench", std::slice::from_ref(spec), &models).expect("scanner");
        line(
            &format!("optional: {}", spec.kind()),
            &time(&p, &text, iterations / 4).await,
        );
    }

    growth(&config.scanners.input, &specs, &models).await;
}

/// `text` repeated to `bytes` (cut on a char boundary).
fn sized(text: &str, bytes: usize) -> String {
    let mut out = text.repeat(bytes / text.len() + 1);
    let mut end = bytes;
    while !out.is_char_boundary(end) {
        end -= 1;
    }
    out.truncate(end);
    out
}

/// Each scanner's time at 1 KB, 100 KB and 5 MB, on prose and on the
/// worst case for span scanners (`a@b.co ` repeated: a match every 7 bytes),
/// so growth faster than linear shows. An error (`max_windows` passed) is
/// timed too: it is what such a text costs.
async fn growth(defaults: &[ScannerSpec], optional: &[ScannerSpec], models: &Resources) {
    println!("\ngrowth: one scan each (best of 3 at 1 KB and 100 KB, one at 5 MB), ms");
    println!(
        "{:<34} {:>9} {:>9} {:>9} {:>12} {:>12} {:>12}",
        "", "prose 1K", "100K", "5M", "a@b.co 1K", "100K", "5M"
    );
    for spec in defaults.iter().chain(optional) {
        let p = build_pipeline("bench", std::slice::from_ref(spec), models).expect("scanner");
        let mut cells = Vec::new();
        for base in [PARAGRAPH, "a@b.co "] {
            for bytes in [1 << 10, 100 << 10, 5 << 20] {
                let text = sized(base, bytes);
                let tries = if bytes > 1 << 20 { 1 } else { 3 };
                let mut best = Duration::MAX;
                let mut failed = false;
                for _ in 0..tries {
                    let started = Instant::now();
                    failed |= p.scan(&text).await.is_err();
                    best = best.min(started.elapsed());
                }
                let ms = best.as_secs_f64() * 1e3;
                cells.push(format!("{ms:.2}{}", if failed { " err" } else { "" }));
            }
        }
        let name = match spec {
            ScannerSpec::PromptInjection(c) if !c.use_model => "prompt_injection (rules)".into(),
            _ => spec.kind().to_string(),
        };
        println!(
            "{name:<34} {:>9} {:>9} {:>9} {:>12} {:>12} {:>12}",
            cells[0], cells[1], cells[2], cells[3], cells[4], cells[5]
        );
    }
}
