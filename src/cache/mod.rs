//! The verdict cache: L1 in process memory, L2 in Redis (shared by every
//! instance), single-flight for concurrent misses. Keys are SHA-256 hashes;
//! values are verdicts only, never scanned text. Errors are never cached.
//!
//! Lookup: L1 → L2 (promoted to L1 on a hit) → scan once → write L1, and L2
//! in the background so the reply never waits for Redis. When Redis is away
//! the L2 step is skipped without waiting (see `redis/mod.rs`).
//!
//! **Never wait on a cache slower than the scan it saves.** Each lookup
//! knows what a scan by its scanners has cost lately; Redis reads have a
//! moving average too (GETs and the supervisor's PINGs). When a read costs
//! more than the scan, L2 is not read (the verdict is still written, for
//! instances that find it cheaper), and a read that runs past the scan's
//! cost is given up and the text scanned. Both count as `l2_skipped`.
//!
//! Files: `store.rs` is the interface every store answers to (`memory.rs`
//! L1, `redis/` L2, or none); `tiers.rs` is the lookup order over them;
//! `report.rs` builds what `/cache/stats`, `/cache/health` and
//! `/cache/clear` show (the HTTP layer only renders it).

mod flight;
pub mod key;
pub mod memory;
pub mod redis;
mod report;
pub mod signing;
pub mod store;
mod supervisor;
mod tiers;

use prometheus::IntCounter;

pub use key::{CacheKey, KeyParts, policy_fingerprint};
pub use tiers::VerdictCache;

use crate::metrics::Metrics;

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

/// Counters behind `/cache/stats`; the same counters `/metrics` exports.
pub struct Counters {
    pub l1_hits: IntCounter,
    pub l2_hits: IntCounter,
    pub misses: IntCounter,
    /// Scans actually run (misses minus those that joined a flight).
    pub scans: IntCounter,
    /// L2 reads not made, or given up, because the scan was cheaper.
    pub l2_skipped: IntCounter,
}

impl Counters {
    pub fn new(metrics: &Metrics) -> Self {
        let lookups = |result: &str| metrics.cache_lookups.with_label_values(&[result]);
        Self {
            l1_hits: lookups("l1_hit"),
            l2_hits: lookups("l2_hit"),
            misses: lookups("miss"),
            scans: metrics.scans.clone(),
            l2_skipped: metrics.l2_skipped.clone(),
        }
    }
}
