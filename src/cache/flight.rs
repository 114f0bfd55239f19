//! Single-flight: concurrent lookups of the same missing key share one scan.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};

use super::CacheKey;
use crate::scan::{ScanError, Verdict};

type Flight = Shared<BoxFuture<'static, Result<Arc<Verdict>, ScanError>>>;

#[derive(Default)]
pub struct Flights {
    in_flight: Mutex<HashMap<CacheKey, Flight>>,
}

impl Flights {
    /// Runs `work` unless a flight for `key` is already under way, in which
    /// case waits for that one. The bool says whether this call led the flight.
    /// The flight finishes even if its leader is cancelled, as long as anyone
    /// still waits on it.
    pub async fn run<F>(
        self: &Arc<Self>,
        key: CacheKey,
        work: F,
    ) -> (Result<Arc<Verdict>, ScanError>, bool)
    where
        F: Future<Output = Result<Arc<Verdict>, ScanError>> + Send + 'static,
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
