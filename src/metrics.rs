//! Prometheus metrics, served at `/metrics` in the text format. Labels are
//! low-cardinality by construction: route templates, status codes, scanner
//! names from the config, directions and cache tiers; never model names or
//! anything derived from a prompt.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder, exponential_buckets,
};

use crate::scan::Direction;
use crate::scan::pipeline::Run;

pub struct Metrics {
    registry: Registry,
    /// Requests by route template and status.
    pub requests: IntCounterVec,
    /// Requests being handled; streams count until their body ends.
    pub in_flight: IntGauge,
    /// Guarded model streams being relayed (a subset of `in_flight`).
    pub streams_in_flight: IntGauge,
    /// Time until Ollama's response headers, by route.
    pub upstream_seconds: HistogramVec,
    /// Time spent outside the upstream call (reading, scanning, rewriting).
    pub overhead_seconds: HistogramVec,
    /// Time of each scanner run, by scanner and direction (cache hits run none).
    pub scan_seconds: HistogramVec,
    /// Blocked requests and responses, by scanner and direction.
    pub blocks: IntCounterVec,
    /// Verdict lookups by result: `l1_hit`, `l2_hit`, `miss`.
    pub cache_lookups: IntCounterVec,
    /// Scans actually run (a miss that joined a scan in flight runs none).
    pub scans: IntCounter,
    /// Failed Redis commands (timeouts, refused connections, bad replies).
    pub redis_errors: IntCounter,
    /// 1 while Redis is configured but away and verdicts stay in memory.
    pub cache_fallback: IntGauge,
    /// Requests refused before any work, by reason (`missing_key`,
    /// `bad_key`, `forbidden`, `network`, `rate_limited`, `concurrency`).
    pub denied: IntCounterVec,
    /// 1 while rate limits are counted in this instance only (Redis away).
    pub rate_limit_local: IntGauge,
    /// Verdicts read from Redis that failed their signature check.
    pub verdicts_rejected: IntCounter,
    /// Redis reads not made, or given up, because scanning was cheaper.
    pub l2_skipped: IntCounter,
}

fn histogram(name: &str, help: &str, labels: &[&str]) -> prometheus::Result<HistogramVec> {
    // 50 µs .. ~52 s, doubling.
    let opts = HistogramOpts::new(name, help).buckets(exponential_buckets(0.000_05, 2.0, 21)?);
    HistogramVec::new(opts, labels)
}

impl Metrics {
    pub fn new() -> prometheus::Result<Self> {
        let m = Self {
            registry: Registry::new(),
            requests: IntCounterVec::new(
                Opts::new(
                    "ollama_guard_requests_total",
                    "Requests by route and status",
                ),
                &["route", "status"],
            )?,
            in_flight: IntGauge::new("ollama_guard_requests_in_flight", "Requests being handled")?,
            streams_in_flight: IntGauge::new(
                "ollama_guard_streams_in_flight",
                "Guarded model streams being relayed",
            )?,
            upstream_seconds: histogram(
                "ollama_guard_upstream_seconds",
                "Time until Ollama's response headers",
                &["route"],
            )?,
            overhead_seconds: histogram(
                "ollama_guard_overhead_seconds",
                "Time spent by the proxy outside the upstream call",
                &["route"],
            )?,
            scan_seconds: histogram(
                "ollama_guard_scan_seconds",
                "Time of one scanner run",
                &["scanner", "direction"],
            )?,
            blocks: IntCounterVec::new(
                Opts::new(
                    "ollama_guard_blocks_total",
                    "Blocks by scanner and direction",
                ),
                &["scanner", "direction"],
            )?,
            cache_lookups: IntCounterVec::new(
                Opts::new(
                    "ollama_guard_cache_lookups_total",
                    "Verdict lookups by result",
                ),
                &["result"],
            )?,
            scans: IntCounter::new("ollama_guard_scans_total", "Scans actually run")?,
            redis_errors: IntCounter::new(
                "ollama_guard_redis_errors_total",
                "Failed Redis commands",
            )?,
            cache_fallback: IntGauge::new(
                "ollama_guard_cache_fallback",
                "1 while Redis is configured but away (memory only)",
            )?,
            denied: IntCounterVec::new(
                Opts::new(
                    "ollama_guard_access_denied_total",
                    "Requests refused by API key, network or rate rules, by reason",
                ),
                &["reason"],
            )?,
            rate_limit_local: IntGauge::new(
                "ollama_guard_rate_limit_local",
                "1 while rate limits are counted per instance (Redis away)",
            )?,
            verdicts_rejected: IntCounter::new(
                "ollama_guard_cache_rejected_total",
                "Verdicts in Redis that failed their signature check (rescanned)",
            )?,
            l2_skipped: IntCounter::new(
                "ollama_guard_cache_l2_skipped_total",
                "Redis reads not made, or given up, because scanning cost less",
            )?,
        };
        let r = &m.registry;
        r.register(Box::new(m.requests.clone()))?;
        r.register(Box::new(m.in_flight.clone()))?;
        r.register(Box::new(m.streams_in_flight.clone()))?;
        r.register(Box::new(m.upstream_seconds.clone()))?;
        r.register(Box::new(m.overhead_seconds.clone()))?;
        r.register(Box::new(m.scan_seconds.clone()))?;
        r.register(Box::new(m.blocks.clone()))?;
        r.register(Box::new(m.cache_lookups.clone()))?;
        r.register(Box::new(m.scans.clone()))?;
        r.register(Box::new(m.redis_errors.clone()))?;
        r.register(Box::new(m.cache_fallback.clone()))?;
        r.register(Box::new(m.denied.clone()))?;
        r.register(Box::new(m.rate_limit_local.clone()))?;
        r.register(Box::new(m.verdicts_rejected.clone()))?;
        r.register(Box::new(m.l2_skipped.clone()))?;
        Ok(m)
    }

    /// Records each scanner's time from one pipeline run.
    pub fn observe_scan(&self, direction: Direction, runs: &[Run]) {
        for run in runs {
            self.scan_seconds
                .with_label_values(&[run.scanner.as_str(), direction.as_str()])
                .observe(run.took.as_secs_f64());
        }
    }

    pub fn count_blocks(&self, direction: Direction, scanners: &[String]) {
        for s in scanners {
            self.blocks
                .with_label_values(&[s.as_str(), direction.as_str()])
                .inc();
        }
    }

    /// The proxy's own time on a request to `route`, `spent` so far; see
    /// [`Overhead`].
    pub fn overhead(&self, route: &str, spent: std::time::Duration) -> Overhead {
        Overhead {
            histogram: self.overhead_seconds.with_label_values(&[route]),
            spent,
        }
    }

    /// Counts a stream as live until the returned value is dropped.
    pub fn stream_started(&self) -> LiveStream {
        self.streams_in_flight.inc();
        LiveStream(self.streams_in_flight.clone())
    }

    /// The registry in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// The proxy's own time on one request: everything but waiting for
/// Ollama's response headers, output scanning included. It travels with
/// the request (into the output guard when the reply is scanned) and is
/// observed once, the one place `ollama_guard_overhead_seconds` is
/// recorded, when its last work is done: on drop.
pub struct Overhead {
    histogram: prometheus::Histogram,
    spent: std::time::Duration,
}

impl Overhead {
    pub fn add(&mut self, more: std::time::Duration) {
        self.spent += more;
    }
}

impl Drop for Overhead {
    fn drop(&mut self) {
        self.histogram.observe(self.spent.as_secs_f64());
    }
}

/// A guarded stream being relayed; see [`Metrics::stream_started`].
pub struct LiveStream(IntGauge);

impl Drop for LiveStream {
    fn drop(&mut self) {
        self.0.dec();
    }
}
