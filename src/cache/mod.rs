//! The verdict cache: L1 in process memory, L2 in Redis (shared by every
//! instance), single-flight for concurrent misses. Keys are SHA-256 hashes;
//! values are verdicts only, never scanned text. Errors are never cached.
//!
//! Lookup: L1 → L2 (promoted to L1 on a hit) → scan once → write L1, and L2
//! in the background so the reply never waits for Redis.

mod flight;
pub mod key;
pub mod memory;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use key::{CacheKey, KeyParts, policy_fingerprint};

use crate::scan::{ScanError, Verdict};
use flight::Flights;
use memory::MemoryCache;

/// Where a verdict came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tier {
    L1,
    L2,
    /// Scanned now (this request led the scan, or waited on one in flight).
    Miss,
    /// Caching is off.
    Off,
}

impl Tier {
    /// Value of the `X-Guard-Cache` header.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::L1 => "hit-l1",
            Tier::L2 => "hit-l2",
            Tier::Miss => "miss",
            Tier::Off => "off",
        }
    }
}

/// Counters behind `/cache/stats`.
#[derive(Default)]
pub struct Counters {
    pub l1_hits: AtomicU64,
    pub l2_hits: AtomicU64,
    pub misses: AtomicU64,
    /// Scans actually run (misses minus those that joined a flight).
    pub scans: AtomicU64,
}

pub struct VerdictCache {
    /// `None` when `cache.enabled` is false: every lookup scans.
    l1: Option<MemoryCache>,
    flights: Arc<Flights>,
    pub counters: Counters,
}

impl VerdictCache {
    /// The null cache: scans every time.
    pub fn disabled() -> Self {
        Self {
            l1: None,
            flights: Arc::default(),
            counters: Counters::default(),
        }
    }

    pub fn memory(max_size: usize, ttl: Duration) -> Self {
        Self {
            l1: Some(MemoryCache::new(max_size, ttl)),
            flights: Arc::default(),
            counters: Counters::default(),
        }
    }

    pub fn l1_len(&self) -> usize {
        self.l1.as_ref().map_or(0, MemoryCache::len)
    }

    /// The verdict for `key`, from a tier or by running `scan` (once, however
    /// many callers ask for the same key at the same time).
    pub async fn get_or_scan<F>(
        &self,
        key: CacheKey,
        scan: F,
    ) -> (Result<Arc<Verdict>, ScanError>, Tier)
    where
        F: Future<Output = Result<Verdict, ScanError>> + Send + 'static,
    {
        let Some(l1) = &self.l1 else {
            self.counters.scans.fetch_add(1, Ordering::Relaxed);
            return (scan.await.map(Arc::new), Tier::Off);
        };
        if let Some(v) = l1.get(&key) {
            self.counters.l1_hits.fetch_add(1, Ordering::Relaxed);
            return (Ok(v), Tier::L1);
        }
        self.counters.misses.fetch_add(1, Ordering::Relaxed);
        let (result, leader) = self
            .flights
            .run(key.clone(), async move { scan.await.map(Arc::new) })
            .await;
        if leader {
            self.counters.scans.fetch_add(1, Ordering::Relaxed);
            if let Ok(v) = &result {
                l1.put(key, v.clone(), None);
            }
        }
        (result, Tier::Miss)
    }

    pub fn clear_local(&self) {
        if let Some(l1) = &self.l1 {
            l1.clear();
        }
    }
}
