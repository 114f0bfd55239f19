//! The verdict cache: L1 in process memory, L2 in Redis (shared by every
//! instance), single-flight for concurrent misses. Keys are SHA-256 hashes;
//! values are verdicts only, never scanned text. Errors are never cached.
//!
//! Lookup: L1 → L2 (promoted to L1 on a hit) → scan once → write L1, and L2
//! in the background so the reply never waits for Redis. When Redis is away
//! the L2 step is skipped without waiting (see `redis.rs`).
//!
//! **Never wait on a cache slower than the scan it saves.** Each lookup
//! knows what a scan by its scanners has cost lately; Redis reads have a
//! moving average too (GETs and the supervisor's PINGs). When a read costs
//! more than the scan, L2 is not read (the verdict is still written, for
//! instances that find it cheaper), and a read that runs past the scan's
//! cost is given up and the text scanned. Both count as `l2_skipped`.

mod flight;
pub mod key;
pub mod memory;
pub mod redis;
pub mod signing;
mod supervisor;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use prometheus::IntCounter;

pub use key::{CacheKey, KeyParts, policy_fingerprint};

use crate::config::{CacheBackend, Config, secs};
use crate::metrics::Metrics;
use crate::scan::{ScanError, Verdict};
use flight::Flights;
use memory::MemoryCache;
use redis::RedisTier;

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

/// Whether an L2 read is worth making, and how long to wait for it, when
/// a scan costs `scan` (unknown before the first).
fn read_budget(l2: &RedisTier, scan: Option<Duration>) -> Option<Duration> {
    match (scan, l2.latency()) {
        (None, _) | (Some(_), None) => Some(l2.socket_timeout),
        (Some(scan), Some(read)) if read > scan => None,
        (Some(scan), Some(_)) => Some(scan.max(MIN_READ_BUDGET).min(l2.socket_timeout)),
    }
}

/// The least an L2 read is given once started: below it, scheduling noise
/// would give up reads that were about to answer.
const MIN_READ_BUDGET: Duration = Duration::from_millis(1);

type Flight = Result<(Arc<Verdict>, Tier), ScanError>;

pub struct VerdictCache {
    /// `None` when `cache.enabled` is false: every lookup scans.
    l1: Option<Arc<MemoryCache>>,
    /// `None` for the memory backend (or `redis.enabled: false`).
    pub l2: Option<Arc<RedisTier>>,
    flights: Arc<Flights<Flight>>,
    pub counters: Arc<Counters>,
    pub ttl: Duration,
    pub backend: CacheBackend,
}

impl VerdictCache {
    /// The null cache: scans every time.
    pub fn disabled(metrics: &Metrics) -> Self {
        Self {
            l1: None,
            l2: None,
            flights: Arc::default(),
            counters: Arc::new(Counters::new(metrics)),
            ttl: Duration::ZERO,
            backend: CacheBackend::Memory,
        }
    }

    /// The cache the config asks for. With Redis configured this spawns the
    /// background supervisor and returns at once: Redis being down at
    /// start-up is normal, lookups simply skip L2 until it connects.
    pub fn from_config(config: &Config, metrics: &Metrics) -> Result<Self, String> {
        if !config.cache.enabled {
            return Ok(Self::disabled(metrics));
        }
        let ttl = secs(config.cache.ttl as f64);
        let l1 = Arc::new(MemoryCache::new(config.cache.max_size, ttl));
        let use_redis = config.redis.enabled && config.cache.backend != CacheBackend::Memory;
        let l2 = if use_redis {
            let mut tier = RedisTier::new(
                &config.redis,
                config.cache.ttl,
                metrics.redis_errors.clone(),
            )?;
            if let Some(key) = &config.cache.signing_key {
                let rejected = metrics.verdicts_rejected.clone();
                tier = tier.signed(signing::Signer::new(key), rejected);
            }
            let tier = Arc::new(tier);
            supervisor::spawn(
                tier.clone(),
                l1.clone(),
                secs(config.redis.health_check_interval),
            );
            Some(tier)
        } else {
            None
        };
        Ok(Self {
            l1: Some(l1),
            l2,
            flights: Arc::default(),
            counters: Arc::new(Counters::new(metrics)),
            ttl,
            backend: config.cache.backend,
        })
    }

    pub fn enabled(&self) -> bool {
        self.l1.is_some()
    }

    pub fn l1_len(&self) -> usize {
        self.l1.as_ref().map_or(0, |l1| l1.len())
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
        self.get_or_scan_costing(key, None, scan).await
    }

    /// [`VerdictCache::get_or_scan`], knowing what `scan` has cost lately:
    /// Redis is not waited on for longer.
    pub async fn get_or_scan_costing<F>(
        &self,
        key: CacheKey,
        scan_cost: Option<Duration>,
        scan: F,
    ) -> (Result<Arc<Verdict>, ScanError>, Tier)
    where
        F: Future<Output = Result<Verdict, ScanError>> + Send + 'static,
    {
        let Some(l1) = &self.l1 else {
            self.counters.scans.inc();
            return (scan.await.map(Arc::new), Tier::Off);
        };
        if let Some(v) = l1.get(&key) {
            self.counters.l1_hits.inc();
            return (Ok(v), Tier::L1);
        }
        let work = Self::fill(
            self.l2.clone(),
            l1.clone(),
            self.counters.clone(),
            (key.clone(), scan_cost),
            scan,
        );
        let (result, _leader) = self.flights.run(key, work).await;
        let counter = match &result {
            Ok((_, Tier::L2)) => &self.counters.l2_hits,
            _ => &self.counters.misses,
        };
        counter.inc();
        match result {
            Ok((v, tier)) => (Ok(v), tier),
            Err(e) => (Err(e), Tier::Miss),
        }
    }

    /// One flight: L2 (when worth it), else scan; fills L1 and (in the
    /// background) L2.
    async fn fill<F>(
        l2: Option<Arc<RedisTier>>,
        l1: Arc<MemoryCache>,
        counters: Arc<Counters>,
        (key, scan_cost): (CacheKey, Option<Duration>),
        scan: F,
    ) -> Flight
    where
        F: Future<Output = Result<Verdict, ScanError>> + Send + 'static,
    {
        if let Some(l2) = l2.as_ref().filter(|t| t.is_available()) {
            let found = match read_budget(l2, scan_cost) {
                None => None,
                Some(budget) => match tokio::time::timeout(budget, l2.get(&key)).await {
                    Ok(found) => Some(found),
                    Err(_) => {
                        l2.note_slow_read(budget);
                        None
                    }
                },
            };
            match found {
                Some(Some((verdict, remaining))) => {
                    let verdict = Arc::new(verdict);
                    l1.put(key, verdict.clone(), remaining);
                    return Ok((verdict, Tier::L2));
                }
                Some(None) => {}
                None => counters.l2_skipped.inc(),
            }
        }
        counters.scans.inc();
        let verdict = Arc::new(scan.await?);
        l1.put(key.clone(), verdict.clone(), None);
        if let Some(l2) = l2.filter(|t| t.is_available()) {
            let v = verdict.clone();
            tokio::spawn(async move { l2.put(&key, &v).await });
        }
        Ok((verdict, Tier::Miss))
    }

    /// Clears this instance's L1.
    pub fn clear_local(&self) {
        if let Some(l1) = &self.l1 {
            l1.clear();
        }
    }
}
