//! What the cache tells operators: the bodies of `/cache/stats`,
//! `/cache/health` and `POST /cache/clear`, and the Redis part of
//! `/ready`. Built here from the stores' own reports; the HTTP layer only
//! renders them.

use std::time::Duration;

use serde_json::{Value, json};

use super::VerdictCache;

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e5).round() / 100.0
}

impl VerdictCache {
    /// The store serving verdicts now: `redis`, `memory` or `disabled`.
    fn effective_backend(&self) -> &'static str {
        match (&self.shared, self.enabled()) {
            (_, false) => "disabled",
            (Some(s), true) if s.is_available() => "redis",
            _ => "memory",
        }
    }

    /// `/cache/stats`: lookups by tier, scans, and each store's figures.
    pub async fn stats(&self) -> Value {
        let c = &self.counters;
        let (l1, l2, misses) = (c.l1_hits.get(), c.l2_hits.get(), c.misses.get());
        let total = l1 + l2 + misses;
        let hit_rate = match total {
            0 => 0.0,
            _ => ((l1 + l2) as f64 * 10_000.0 / total as f64).round() / 100.0,
        };
        let local = self.local.report(false).await;
        let shared = match &self.shared {
            Some(s) => Some(s.report(true).await),
            None => None,
        };
        let shared = shared.unwrap_or_default();
        json!({
            "backend": self.effective_backend(),
            "configured_backend": self.backend,
            "hits": l1 + l2,
            "misses": misses,
            "hit_rate": hit_rate,
            "total_requests": total,
            "l1_hits": l1,
            "l2_hits": l2,
            "scans": c.scans.get(),
            "l2_skipped": c.l2_skipped.get(),
            "l2_latency_ms": shared.latency.map(millis),
            "errors": shared.errors,
            "fallback_active": self.fallback_active(),
            "l1_size": local.entries.unwrap_or(0),
            "ttl_seconds": self.ttl.as_secs(),
            "key_prefix": self.key_prefix,
            "redis_info": shared.info,
        })
    }

    /// `/cache/health`: healthy only on this probe's answer, so a Redis
    /// just gone (the breaker not open yet) or just back (not re-probed)
    /// is not reported as up.
    pub async fn health(&self) -> Value {
        let (ping, report) = match &self.shared {
            Some(s) => (s.probe().await, s.report(false).await),
            None => (None, Default::default()),
        };
        let status = if !self.enabled() {
            "disabled"
        } else if self.shared.is_some() && ping.is_none() {
            "degraded"
        } else {
            "healthy"
        };
        json!({
            "status": status,
            "backend": self.effective_backend(),
            "redis_configured": self.shared.is_some(),
            "redis_connected": report.available,
            "redis_ping": ping.is_some(),
            // Reads go on when Redis refuses writes (out of memory, replica).
            "redis_writes": if report.writes_refused { "refused" } else { "ok" },
            "latency_ms": ping.map(millis),
        })
    }

    /// Whether the shared store answers a probe within `timeout`; `None`
    /// when there is none.
    pub async fn probe_shared(&self, timeout: Duration) -> Option<bool> {
        let shared = self.shared.as_ref()?;
        let answered = tokio::time::timeout(timeout, shared.probe()).await;
        Some(answered.ok().flatten().is_some())
    }

    /// `POST /cache/clear`: this instance's L1 now; the shared store's
    /// verdicts, and every other instance's L1 over pub/sub.
    pub async fn clear(&self) -> Value {
        let l1_entries = self.local.clear().await.map_or(0, |(n, _)| n);
        let redis = match &self.shared {
            Some(s) if s.is_available() => match s.clear().await {
                Ok((keys, told)) => {
                    json!({ "cleared": true, "keys_deleted": keys, "instances_notified": told })
                }
                Err(e) => json!({ "cleared": false, "error": e }),
            },
            Some(_) => {
                json!({ "cleared": false, "error": "Redis is not connected; only this instance's memory was cleared" })
            }
            None => Value::Null,
        };
        tracing::info!(l1_entries, "cache cleared by admin call");
        json!({ "status": "ok", "l1_entries_cleared": l1_entries, "redis": redis })
    }
}
