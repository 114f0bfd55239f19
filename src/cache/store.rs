//! The one interface every place verdicts are kept answers to: the L1 in
//! process memory (`memory.rs`), the L2 in Redis (`redis/store.rs`), and
//! [`NoStore`] when caching is off. The tiering (`tiers.rs`) and the
//! operator's reports (`report.rs`) see stores only through it, so a new
//! kind of store touches `cache/` and its config, nothing else.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use super::CacheKey;
use crate::scan::Verdict;

pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A stored verdict and what is left of its lifetime, when known.
pub type Stored = (Arc<Verdict>, Option<Duration>);

/// The answer to a read: at once from memory (no allocation on the hot
/// path), or later from over the network.
pub enum Found<'a> {
    Now(Option<Stored>),
    Later(StoreFuture<'a, Option<Stored>>),
}

/// What `/cache/stats` and `/cache/health` show of one store.
#[derive(Debug, Default)]
pub struct StoreReport {
    /// Whether reads and writes go to it now.
    pub available: bool,
    /// Verdicts held, where counting them is cheap.
    pub entries: Option<u64>,
    /// What a read has cost lately (stores across a network).
    pub latency: Option<Duration>,
    /// Failed commands since start.
    pub errors: u64,
    /// It answers reads but refuses writes (out of memory, a replica).
    pub writes_refused: bool,
    /// The server's own figures (Redis INFO), asked for by `stats`.
    pub info: Option<serde_json::Value>,
}

pub trait VerdictStore: Send + Sync {
    /// Whether lookups go to this store now (a remote one may be away).
    fn is_available(&self) -> bool {
        true
    }

    fn get<'a>(&'a self, key: &'a CacheKey) -> Found<'a>;

    /// Keeps `verdict` for at most `ttl` (else the cache TTL). A remote
    /// store writes in the background: the reply never waits for it.
    fn put(&self, key: CacheKey, verdict: Arc<Verdict>, ttl: Option<Duration>);

    /// Removes this deployment's verdicts; for a shared store also tells
    /// every instance to drop its L1. Returns (verdicts removed,
    /// instances told).
    fn clear(&self) -> StoreFuture<'_, Result<(u64, u64), String>>;

    /// A round trip now (PING), `None` if it failed; at once in memory.
    fn probe(&self) -> StoreFuture<'_, Option<Duration>>;

    /// The store's figures; `detail` asks the server for its own (slower).
    fn report(&self, detail: bool) -> StoreFuture<'_, StoreReport>;

    /// What a read has cost lately; `None` for memory (free) or unknown.
    fn read_cost(&self) -> Option<Duration> {
        None
    }

    /// The longest a read may take before it counts as failed.
    fn read_timeout(&self) -> Duration {
        Duration::MAX
    }

    /// A read given up after `waited` (the scan was cheaper).
    fn note_slow_read(&self, _waited: Duration) {}

    /// Stops background work (reconnects, listeners) at shutdown.
    fn stop(&self) {}
}

/// The store of a disabled cache: keeps nothing, so every lookup scans.
pub struct NoStore;

impl VerdictStore for NoStore {
    fn get<'a>(&'a self, _key: &'a CacheKey) -> Found<'a> {
        Found::Now(None)
    }

    fn put(&self, _key: CacheKey, _verdict: Arc<Verdict>, _ttl: Option<Duration>) {}

    fn clear(&self) -> StoreFuture<'_, Result<(u64, u64), String>> {
        Box::pin(async { Ok((0, 0)) })
    }

    fn probe(&self) -> StoreFuture<'_, Option<Duration>> {
        Box::pin(async { Some(Duration::ZERO) })
    }

    fn report(&self, _detail: bool) -> StoreFuture<'_, StoreReport> {
        Box::pin(async {
            StoreReport {
                available: true,
                entries: Some(0),
                ..StoreReport::default()
            }
        })
    }
}
