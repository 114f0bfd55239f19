//! Keeps L2 alive in the background: connects at start without holding up
//! start-up, probes with PING every `redis.health_check_interval`, reconnects
//! after the breaker opened, and keeps a pub/sub listener that clears this
//! instance's L1 when any instance calls `POST /cache/clear`.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::task::JoinHandle;

use super::memory::MemoryCache;
use super::redis::{RedisTier, describe};

pub fn spawn(tier: Arc<RedisTier>, l1: Arc<MemoryCache>, interval: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut listener: Option<JoinHandle<()>> = None;
        loop {
            if tier.is_available() {
                if tier.ping().await.is_none() {
                    tracing::debug!("redis probe failed");
                }
            } else {
                match tier.connect().await {
                    Ok(()) => tracing::info!(redis = %tier.display_url, "Redis connected; verdicts are shared (L2 on)"),
                    Err(e) => tier.log_problem(&format!("Redis not reachable ({e}); verdicts are cached in memory only, retrying every {interval:?}")),
                }
            }
            if tier.is_available() && listener.as_ref().is_none_or(|h| h.is_finished()) {
                // A listener that ended may have missed clears sent in the
                // meantime: the new one drops this instance's L1 first.
                let missed = listener.is_some();
                listener = Some(tokio::spawn(listen_for_clears(
                    tier.clone(),
                    l1.clone(),
                    missed,
                )));
            }
            tokio::time::sleep(interval).await;
        }
    })
}

/// Clears L1 on every message on the clear channel; ends when the
/// connection does (the supervisor starts a new one once Redis is back).
/// With `missed`, clears may have been sent while no one listened: L1 is
/// dropped once subscribed, so no cleared verdict survives an outage.
async fn listen_for_clears(tier: Arc<RedisTier>, l1: Arc<MemoryCache>, missed: bool) {
    let subscribe = async {
        let mut pubsub = tier.client().get_async_pubsub().await?;
        pubsub.subscribe(tier.clear_channel()).await?;
        Ok::<_, redis::RedisError>(pubsub)
    };
    let pubsub = match tokio::time::timeout(tier.connect_timeout + tier.socket_timeout, subscribe)
        .await
    {
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
