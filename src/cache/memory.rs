//! L1: verdicts in process memory, an LRU bounded by `cache.max_size`, each
//! entry expiring after `cache.ttl`.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lru::LruCache;

use super::CacheKey;
use super::store::{Found, StoreFuture, StoreReport, VerdictStore};
use crate::scan::Verdict;

pub struct MemoryCache {
    /// A short critical section per lookup; LRU reads reorder, so they write.
    entries: Mutex<LruCache<CacheKey, (Instant, Arc<Verdict>)>>,
    ttl: Duration,
}

impl MemoryCache {
    pub fn new(max_size: usize, ttl: Duration) -> Self {
        let cap = NonZeroUsize::new(max_size).unwrap_or(NonZeroUsize::MIN);
        Self {
            entries: Mutex::new(LruCache::new(cap)),
            ttl,
        }
    }

    pub fn get(&self, key: &CacheKey) -> Option<Arc<Verdict>> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match entries.get(key) {
            Some((expires, v)) if *expires > Instant::now() => Some(v.clone()),
            Some(_) => {
                entries.pop(key);
                None
            }
            None => None,
        }
    }

    /// Stores a verdict; `ttl` (e.g. what Redis has left) caps the lifetime.
    pub fn put(&self, key: CacheKey, verdict: Arc<Verdict>, ttl: Option<Duration>) {
        let ttl = ttl.map_or(self.ttl, |t| t.min(self.ttl));
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.put(key, (Instant::now() + ttl, verdict));
    }

    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

impl VerdictStore for MemoryCache {
    fn get<'a>(&'a self, key: &'a CacheKey) -> Found<'a> {
        Found::Now(MemoryCache::get(self, key).map(|v| (v, None)))
    }

    fn put(&self, key: CacheKey, verdict: Arc<Verdict>, ttl: Option<Duration>) {
        MemoryCache::put(self, key, verdict, ttl);
    }

    fn clear(&self) -> StoreFuture<'_, Result<(u64, u64), String>> {
        let held = self.len() as u64;
        MemoryCache::clear(self);
        Box::pin(async move { Ok((held, 0)) })
    }

    fn probe(&self) -> StoreFuture<'_, Option<Duration>> {
        Box::pin(async { Some(Duration::ZERO) })
    }

    fn report(&self, _detail: bool) -> StoreFuture<'_, StoreReport> {
        let entries = Some(self.len() as u64);
        Box::pin(async move {
            StoreReport {
                available: true,
                entries,
                ..StoreReport::default()
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> CacheKey {
        CacheKey(s.into())
    }

    #[test]
    fn least_recently_used_entry_is_evicted_at_capacity() {
        let c = MemoryCache::new(2, Duration::from_secs(60));
        let v = Arc::new(Verdict::default());
        c.put(key("a"), v.clone(), None);
        c.put(key("b"), v.clone(), None);
        assert!(c.get(&key("a")).is_some());
        c.put(key("c"), v, None);
        assert!(c.get(&key("b")).is_none(), "b was least recently used");
        assert!(c.get(&key("a")).is_some());
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn entries_expire_after_their_ttl() {
        let c = MemoryCache::new(10, Duration::from_millis(30));
        c.put(key("a"), Arc::new(Verdict::default()), None);
        c.put(
            key("b"),
            Arc::new(Verdict::default()),
            Some(Duration::from_millis(0)),
        );
        assert!(c.get(&key("a")).is_some());
        assert!(c.get(&key("b")).is_none(), "a shorter remaining ttl wins");
        std::thread::sleep(Duration::from_millis(40));
        assert!(c.get(&key("a")).is_none());
    }
}
