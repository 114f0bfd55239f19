//! Keeps L2 alive in the background: connects at start without holding up
//! start-up, probes with PING every `redis.health_check_interval`, reconnects
//! after the breaker opened, and keeps a pub/sub listener that clears this
//! instance's L1 when any instance calls `POST /cache/clear`. The listener
//! is replaced whenever the tier connects anew (a Sentinel failover moves
//! the master; a cluster node may be gone).

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::task::JoinHandle;

use super::memory::MemoryCache;
use super::redis::{RedisTier, describe};

/// Time to open the pub/sub connection and subscribe.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(5);

pub fn spawn(tier: Arc<RedisTier>, l1: Arc<MemoryCache>, interval: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut listener: Option<Listener> = None;
        loop {
            if tier.is_available() {
                if tier.ping().await.is_none() {
                    tracing::debug!("redis probe failed");
                }
            } else {
                match tier.connect().await {
                    Ok(at) => tracing::info!(redis = %tier.display_url, at, "Redis connected; verdicts are shared (L2 on)"),
                    Err(e) => tier.log_problem(&format!("Redis not reachable ({e}); verdicts are cached in memory only, retrying every {interval:?}")),
                }
            }
            let current = tier.pubsub().filter(|_| tier.is_available());
            let stale = listener.as_ref().is_none_or(|l| {
                l.task.is_finished() || current.as_ref().is_some_and(|c| c.1 != l.generation)
            });
            if let Some((client, generation)) = current.filter(|_| stale) {
                // A listener that ended (or was on an older connection) may
                // have missed clears: the new one drops this L1 first.
                let missed = listener.take().is_some();
                let channel = tier.clear_channel();
                let task = tokio::spawn(listen_for_clears(client, channel, l1.clone(), missed));
                listener = Some(Listener { task, generation });
            }
            tokio::time::sleep(interval).await;
        }
    })
}

/// The clear listener, and the connection generation it subscribed under.
/// Dropped (a newer connection, or the supervisor stopped) it stops.
struct Listener {
    task: JoinHandle<()>,
    generation: u64,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Clears L1 on every message on the clear channel; ends when the
/// connection does (the supervisor starts a new one once Redis is back).
/// With `missed`, clears may have been sent while no one listened: L1 is
/// dropped once subscribed, so no cleared verdict survives an outage.
async fn listen_for_clears(
    client: redis::Client,
    channel: String,
    l1: Arc<MemoryCache>,
    missed: bool,
) {
    let subscribe = async {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(channel).await?;
        Ok::<_, redis::RedisError>(pubsub)
    };
    let pubsub = match tokio::time::timeout(SUBSCRIBE_TIMEOUT, subscribe).await {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => {
            return tracing::debug!(error = %describe(&e), "cache-clear listener could not subscribe");
        }
        Err(_) => return tracing::debug!("cache-clear listener timed out subscribing"),
    };
    if missed {
        l1.clear();
        tracing::info!(
            "in-memory verdicts dropped: cache clears may have been missed while Redis was away"
        );
    }
    let mut messages = pubsub.into_on_message();
    while messages.next().await.is_some() {
        l1.clear();
        tracing::info!("in-memory verdicts cleared (POST /cache/clear on an instance)");
    }
}
