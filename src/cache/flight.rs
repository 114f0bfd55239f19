//! Single-flight: concurrent lookups of the same missing key share one scan.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};

use super::CacheKey;

/// Concurrent lookups in progress, by key; `T` is what a flight yields.
pub struct Flights<T: Clone> {
    in_flight: Mutex<HashMap<CacheKey, Shared<BoxFuture<'static, T>>>>,
}

impl<T: Clone> Default for Flights<T> {
    fn default() -> Self {
        Self {
            in_flight: Mutex::default(),
        }
    }
}

impl<T: Clone + Send + Sync + 'static> Flights<T> {
    /// Runs `work` unless a flight for `key` is already under way, in which
    /// case waits for that one. The bool says whether this call led the flight.
    /// The flight finishes even if its leader is cancelled, as long as anyone
    /// still waits on it.
    pub async fn run<F>(self: &Arc<Self>, key: CacheKey, work: F) -> (T, bool)
    where
        F: Future<Output = T> + Send + 'static,
    {
        let (flight, leader) = {
            let mut map = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
            match map.get(&key) {
                Some(f) => (f.clone(), false),
                None => {
                    let flights = Arc::clone(self);
                    let k = key.clone();
                    let f = async move {
                        let out = work.await;
                        flights
                            .in_flight
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .remove(&k);
                        out
                    }
                    .boxed()
                    .shared();
                    map.insert(key, f.clone());
                    (f, true)
                }
            }
        };
        (flight.await, leader)
    }
}
