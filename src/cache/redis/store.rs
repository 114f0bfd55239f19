//! L2 as a [`VerdictStore`]: the Redis tier and the supervisor that keeps
//! it connected, stopped with the store.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;

use super::RedisTier;
use crate::cache::CacheKey;
use crate::cache::memory::MemoryCache;
use crate::cache::store::{Found, StoreFuture, StoreReport, VerdictStore};
use crate::cache::supervisor;
use crate::scan::Verdict;

pub struct RedisStore {
    tier: Arc<RedisTier>,
    supervisor: Mutex<Option<JoinHandle<()>>>,
}

impl RedisStore {
    /// Starts the supervisor (connects in the background; Redis need not
    /// be up), which drops `l1` whenever any instance clears the cache.
    pub fn start(tier: Arc<RedisTier>, l1: Arc<MemoryCache>, interval: Duration) -> Self {
        let supervisor = supervisor::spawn(tier.clone(), l1, interval);
        Self {
            tier,
            supervisor: Mutex::new(Some(supervisor)),
        }
    }
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        self.stop();
    }
}

impl VerdictStore for RedisStore {
    fn is_available(&self) -> bool {
        self.tier.is_available()
    }

    fn get<'a>(&'a self, key: &'a CacheKey) -> Found<'a> {
        Found::Later(Box::pin(async move {
            let (verdict, ttl) = self.tier.get(key).await?;
            Some((Arc::new(verdict), ttl))
        }))
    }

    fn put(&self, key: CacheKey, verdict: Arc<Verdict>, _ttl: Option<Duration>) {
        let tier = self.tier.clone();
        tokio::spawn(async move { tier.put(&key, &verdict).await });
    }

    fn clear(&self) -> StoreFuture<'_, Result<(u64, u64), String>> {
        Box::pin(self.tier.clear())
    }

    fn probe(&self) -> StoreFuture<'_, Option<Duration>> {
        Box::pin(async {
            match self.tier.is_available() {
                true => self.tier.ping().await,
                false => None,
            }
        })
    }

    fn report(&self, detail: bool) -> StoreFuture<'_, StoreReport> {
        Box::pin(async move {
            let available = self.tier.is_available();
            let info = match detail && available {
                true => self.tier.info().await,
                false => None,
            };
            StoreReport {
                available,
                entries: None,
                latency: self.tier.latency(),
                errors: self.tier.errors.get(),
                writes_refused: self.tier.writes_refused(),
                info,
            }
        })
    }

    fn read_cost(&self) -> Option<Duration> {
        self.tier.latency()
    }

    fn read_timeout(&self) -> Duration {
        self.tier.socket_timeout
    }

    fn note_slow_read(&self, waited: Duration) {
        self.tier.note_slow_read(waited);
    }

    fn stop(&self) {
        let handle = self
            .supervisor
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(handle) = handle {
            handle.abort();
        }
    }
}
