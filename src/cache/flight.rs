//! Single-flight: concurrent lookups of the same missing key share one scan.
//! The map holds flights weakly: a flight lives as long as someone waits on
//! it, and when the last waiter gives up (the client left) the scan is
//! dropped with it, which cancels its task on the scan threads.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared, WeakShared};

use super::CacheKey;

type Flight<T> = Shared<BoxFuture<'static, T>>;
/// A flight as the map holds it: its number, and a weak handle.
type Entry<T> = (u64, WeakShared<BoxFuture<'static, T>>);

/// Concurrent lookups in progress, by key; `T` is what a flight yields.
pub struct Flights<T: Clone> {
    /// Key -> (flight number, the flight).
    in_flight: Mutex<HashMap<CacheKey, Entry<T>>>,
    numbers: AtomicU64,
}

impl<T: Clone> Default for Flights<T> {
    fn default() -> Self {
        Self {
            in_flight: Mutex::default(),
            numbers: AtomicU64::new(0),
        }
    }
}

/// Takes a flight's entry out of the map when the flight ends, finished or
/// dropped; only its own entry (a newer flight may have the key by then).
struct Landing<T: Clone> {
    flights: Arc<Flights<T>>,
    key: CacheKey,
    number: u64,
}

impl<T: Clone> Drop for Landing<T> {
    fn drop(&mut self) {
        let mut map = self
            .flights
            .in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if map.get(&self.key).is_some_and(|(n, _)| *n == self.number) {
            map.remove(&self.key);
        }
    }
}

impl<T: Clone + Send + Sync + 'static> Flights<T> {
    /// Runs `work` unless a flight for `key` is already under way, in which
    /// case waits for that one. The bool says whether this call led the flight.
    /// The flight finishes even if its leader is cancelled, as long as anyone
    /// still waits on it; with no one waiting, it is dropped.
    pub async fn run<F>(self: &Arc<Self>, key: CacheKey, work: F) -> (T, bool)
    where
        F: Future<Output = T> + Send + 'static,
    {
        let (flight, leader): (Flight<T>, bool) = {
            let mut map = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
            match map.get(&key).and_then(|(_, weak)| weak.upgrade()) {
                Some(f) => (f, false),
                None => {
                    let number = self.numbers.fetch_add(1, Ordering::Relaxed);
                    let landing = Landing {
                        flights: Arc::clone(self),
                        key: key.clone(),
                        number,
                    };
                    let f = async move {
                        let _landing = landing;
                        work.await
                    }
                    .boxed()
                    .shared();
                    if let Some(weak) = f.downgrade() {
                        map.insert(key, (number, weak));
                    }
                    (f, true)
                }
            }
        };
        (flight.await, leader)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn key(s: &str) -> CacheKey {
        CacheKey(s.to_string())
    }

    #[tokio::test]
    async fn concurrent_lookups_share_one_flight_and_leave_no_entry() {
        let flights: Arc<Flights<u32>> = Arc::default();
        let runs = Arc::new(AtomicU64::new(0));
        let work = |runs: Arc<AtomicU64>| async move {
            runs.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(50)).await;
            7
        };
        let (a, b) = tokio::join!(
            flights.run(key("k"), work(runs.clone())),
            flights.run(key("k"), work(runs.clone()))
        );
        assert_eq!((a.0, b.0), (7, 7));
        assert_ne!(a.1, b.1, "one leads, one follows");
        assert_eq!(runs.load(Ordering::Relaxed), 1);
        assert_eq!(flights.len(), 0);
    }

    #[tokio::test]
    async fn a_flight_nobody_waits_for_is_dropped() {
        let flights: Arc<Flights<u32>> = Arc::default();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let work = async move {
            let _held = tx;
            tokio::time::sleep(Duration::from_secs(30)).await;
            1
        };
        let gave_up = tokio::time::timeout(Duration::from_millis(20), flights.run(key("k"), work));
        assert!(gave_up.await.is_err());
        // The work (and what it held) is gone, and so is its entry.
        let dropped = tokio::time::timeout(Duration::from_secs(5), rx).await;
        assert!(
            matches!(dropped, Ok(Err(_))),
            "the abandoned work is still alive"
        );
        assert_eq!(flights.len(), 0);
        let (v, leader) = flights.run(key("k"), async { 2 }).await;
        assert_eq!((v, leader), (2, true), "a new flight starts");
    }
}
