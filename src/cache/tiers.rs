//! The lookup order: the local store (L1, or no store when caching is
//! off), then the shared one (L2) when it is worth reading, then one scan
//! per key however many callers ask at once. See the module docs of
//! `cache` for the cost rule.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;

use super::flight::Flights;
use super::memory::MemoryCache;
use super::redis::store::RedisStore;
use super::redis::{RedisTier, signing_for};
use super::store::{Found, NoStore, VerdictStore};
use super::{CacheKey, Counters, Tier};
use crate::config::{CacheBackend, Config, secs};
use crate::metrics::Metrics;
use crate::scan::{ScanError, Verdict};

/// The least an L2 read is given once started: below it, scheduling noise
/// would give up reads that were about to answer.
const MIN_READ_BUDGET: Duration = Duration::from_millis(1);

type Flight = Result<(Arc<Verdict>, Tier), ScanError>;

pub struct VerdictCache {
    /// L1: this instance's memory, or [`NoStore`] when caching is off.
    pub(super) local: Arc<dyn VerdictStore>,
    /// L2: shared by every instance (Redis), when configured.
    pub(super) shared: Option<Arc<dyn VerdictStore>>,
    /// The Redis connection behind `shared`, which the rate limiter uses
    /// too (it keeps no verdicts).
    redis: Option<Arc<RedisTier>>,
    enabled: bool,
    flights: Arc<Flights<Flight>>,
    pub(super) counters: Arc<Counters>,
    pub(super) ttl: Duration,
    pub(super) backend: CacheBackend,
    pub(super) key_prefix: String,
}

impl VerdictCache {
    /// The null cache: scans every time.
    pub fn disabled(metrics: &Metrics) -> Self {
        Self {
            local: Arc::new(NoStore),
            shared: None,
            redis: None,
            enabled: false,
            flights: Arc::default(),
            counters: Arc::new(Counters::new(metrics)),
            ttl: Duration::ZERO,
            backend: CacheBackend::Memory,
            key_prefix: String::new(),
        }
    }

    /// The cache the config asks for. With Redis configured this starts
    /// the background supervisor and returns at once: Redis being down at
    /// start-up is normal, lookups simply skip L2 until it connects.
    pub fn from_config(config: &Config, metrics: &Metrics) -> Result<Self, String> {
        if !config.cache.enabled {
            return Ok(Self::disabled(metrics));
        }
        let ttl = secs(config.cache.ttl as f64);
        let l1 = Arc::new(MemoryCache::new(config.cache.max_size, ttl));
        let use_redis = config.redis.enabled && config.cache.backend != CacheBackend::Memory;
        let mut redis = None;
        let mut shared: Option<Arc<dyn VerdictStore>> = None;
        if use_redis {
            let tier = RedisTier::new(
                &config.redis,
                config.cache.ttl,
                metrics.redis_errors.clone(),
            )?;
            let tier = Arc::new(signing_for(tier, config, metrics));
            let interval = secs(config.redis.health_check_interval);
            shared = Some(Arc::new(RedisStore::start(
                tier.clone(),
                l1.clone(),
                interval,
            )));
            redis = Some(tier);
        }
        Ok(Self {
            local: l1,
            shared,
            redis,
            enabled: true,
            flights: Arc::default(),
            counters: Arc::new(Counters::new(metrics)),
            ttl,
            backend: config.cache.backend,
            key_prefix: config.redis.key_prefix.clone(),
        })
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Lookups by outcome, scans, reads skipped.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The Redis connection, for the rate limiter's scripts.
    pub fn redis(&self) -> Option<Arc<RedisTier>> {
        self.redis.clone()
    }

    /// Whether a shared store is configured.
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// Whether a shared store is configured but away, so verdicts are not
    /// shared now.
    pub fn fallback_active(&self) -> bool {
        self.shared.as_ref().is_some_and(|s| !s.is_available())
    }

    /// Stops background work (the Redis supervisor and its listener).
    pub fn stop(&self) {
        self.local.stop();
        if let Some(shared) = &self.shared {
            shared.stop();
        }
    }

    /// The verdict for `key`, from a tier or by running the scan `make_scan`
    /// makes (once, however many callers ask for the same key at the same
    /// time).
    pub async fn get_or_scan<M, F>(
        &self,
        key: CacheKey,
        make_scan: M,
    ) -> (Result<Arc<Verdict>, ScanError>, Tier)
    where
        M: FnOnce() -> F,
        F: Future<Output = Result<Verdict, ScanError>> + Send + 'static,
    {
        self.get_or_scan_costing(key, None, make_scan).await
    }

    /// [`VerdictCache::get_or_scan`], knowing what the scan has cost
    /// lately: the shared store is not waited on for longer.
    ///
    /// The scan is made only on a miss, and the miss's work (store reads,
    /// the scan) is boxed there: a scan future is kilobytes, and held
    /// inline it made every request's future as big (a guarded request's
    /// was 14.7 KB, now 6.0 KB), copied whole each time a layer moved it.
    pub async fn get_or_scan_costing<M, F>(
        &self,
        key: CacheKey,
        scan_cost: Option<Duration>,
        make_scan: M,
    ) -> (Result<Arc<Verdict>, ScanError>, Tier)
    where
        M: FnOnce() -> F,
        F: Future<Output = Result<Verdict, ScanError>> + Send + 'static,
    {
        if !self.enabled {
            self.counters.scans.inc();
            let scan: BoxFuture<'static, _> = make_scan().boxed();
            return (scan.await.map(Arc::new), Tier::Off);
        }
        // The hit path: memory answers at once, nothing is allocated.
        if let Found::Now(Some((v, _))) = self.local.get(&key) {
            self.counters.l1_hits.inc();
            return (Ok(v), Tier::L1);
        }
        let work = fill(
            (self.local.clone(), self.shared.clone()),
            self.counters.clone(),
            (key.clone(), scan_cost),
            make_scan(),
        )
        .boxed();
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
}

/// Whether a shared read is worth making, and how long to wait for it,
/// when a scan costs `scan` (unknown before the first).
fn read_budget(shared: &dyn VerdictStore, scan: Option<Duration>) -> Option<Duration> {
    match (scan, shared.read_cost()) {
        (None, _) | (Some(_), None) => Some(shared.read_timeout()),
        (Some(scan), Some(read)) if read > scan => None,
        (Some(scan), Some(_)) => Some(scan.max(MIN_READ_BUDGET).min(shared.read_timeout())),
    }
}

/// One flight: the shared store (when worth it), else scan; fills the
/// local store and (in the background) the shared one.
async fn fill<F>(
    (local, shared): (Arc<dyn VerdictStore>, Option<Arc<dyn VerdictStore>>),
    counters: Arc<Counters>,
    (key, scan_cost): (CacheKey, Option<Duration>),
    scan: F,
) -> Flight
where
    F: Future<Output = Result<Verdict, ScanError>> + Send + 'static,
{
    let shared = shared.filter(|s| s.is_available());
    if let Some(store) = &shared {
        let found = match read_budget(store.as_ref(), scan_cost) {
            None => None,
            Some(budget) => {
                let read = async {
                    match store.get(&key) {
                        Found::Now(v) => v,
                        Found::Later(f) => f.await,
                    }
                };
                match tokio::time::timeout(budget, read).await {
                    Ok(found) => Some(found),
                    Err(_) => {
                        store.note_slow_read(budget);
                        None
                    }
                }
            }
        };
        match found {
            Some(Some((verdict, remaining))) => {
                local.put(key, verdict.clone(), remaining);
                return Ok((verdict, Tier::L2));
            }
            Some(None) => {}
            None => counters.l2_skipped.inc(),
        }
    }
    counters.scans.inc();
    let verdict = Arc::new(scan.await?);
    local.put(key.clone(), verdict.clone(), None);
    if let Some(store) = shared {
        store.put(key, verdict.clone(), None);
    }
    Ok((verdict, Tier::Miss))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A scan maker that counts how often it is called.
    fn counted(
        made: &AtomicUsize,
    ) -> impl FnOnce() -> std::future::Ready<Result<Verdict, ScanError>> {
        move || {
            made.fetch_add(1, Ordering::Relaxed);
            std::future::ready(Ok(Verdict::default()))
        }
    }

    #[tokio::test]
    async fn the_scan_is_made_only_on_a_miss() {
        let metrics = Metrics::new().expect("metrics");
        let mut config = Config::default();
        config.cache.backend = CacheBackend::Memory;
        let cache = VerdictCache::from_config(&config, &metrics).expect("cache");
        let made = AtomicUsize::new(0);
        let key = CacheKey("k".into());
        let (_, tier) = cache.get_or_scan(key.clone(), counted(&made)).await;
        assert_eq!((tier, made.load(Ordering::Relaxed)), (Tier::Miss, 1));
        let (_, tier) = cache.get_or_scan(key, counted(&made)).await;
        assert_eq!((tier, made.load(Ordering::Relaxed)), (Tier::L1, 1));

        let off = VerdictCache::disabled(&metrics);
        for _ in 0..2 {
            let (_, tier) = off.get_or_scan(CacheKey("k".into()), counted(&made)).await;
            assert_eq!(tier, Tier::Off);
        }
        assert_eq!(made.load(Ordering::Relaxed), 3);
    }
}
