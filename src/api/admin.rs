//! The verdict cache's endpoints: `/cache/stats`, `/cache/health`, and the
//! admin call `POST /cache/clear`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::cache::VerdictCache;
use crate::error::ProxyError;

/// The tier serving verdicts now: `redis`, `memory` or `disabled`.
fn effective_backend(cache: &VerdictCache) -> &'static str {
    match (&cache.l2, cache.enabled()) {
        (_, false) => "disabled",
        (Some(l2), true) if l2.is_available() => "redis",
        _ => "memory",
    }
}

/// Whether Redis is configured but away, so verdicts are not shared now.
fn fallback_active(cache: &VerdictCache) -> bool {
    cache.l2.as_ref().is_some_and(|l2| !l2.is_available())
}

pub async fn cache_stats(State(state): State<AppState>) -> Json<Value> {
    let cache = &state.guard.cache;
    let c = &cache.counters;
    let (l1, l2, misses) = (c.l1_hits.get(), c.l2_hits.get(), c.misses.get());
    let total = l1 + l2 + misses;
    let hit_rate = if total == 0 {
        0.0
    } else {
        ((l1 + l2) as f64 * 10_000.0 / total as f64).round() / 100.0
    };
    let redis_info = match &cache.l2 {
        Some(l2) if l2.is_available() => l2.info().await,
        _ => None,
    };
    Json(json!({
        "backend": effective_backend(cache),
        "configured_backend": cache.backend,
        "hits": l1 + l2,
        "misses": misses,
        "hit_rate": hit_rate,
        "total_requests": total,
        "l1_hits": l1,
        "l2_hits": l2,
        "scans": c.scans.get(),
        "l2_skipped": c.l2_skipped.get(),
        "l2_latency_ms": cache.l2.as_ref().and_then(|l2| l2.latency()).map(|d| (d.as_secs_f64() * 1e5).round() / 100.0),
        "errors": cache.l2.as_ref().map_or(0, |t| t.errors.get()),
        "fallback_active": fallback_active(cache),
        "l1_size": cache.l1_len(),
        "ttl_seconds": cache.ttl.as_secs(),
        "key_prefix": state.config.redis.key_prefix,
        "redis_info": redis_info,
    }))
}

/// 200 while requests are served; `status` says how well.
pub async fn cache_health(State(state): State<AppState>) -> Json<Value> {
    let cache = &state.guard.cache;
    let ping = match &cache.l2 {
        Some(l2) if l2.is_available() => l2.ping().await,
        _ => None,
    };
    // Healthy only on this probe's answer: a Redis just gone (the breaker
    // not open yet) or just back (not yet re-probed) is not reported as up.
    let status = if !cache.enabled() {
        "disabled"
    } else if cache.l2.is_some() && ping.is_none() {
        "degraded"
    } else {
        "healthy"
    };
    Json(json!({
        "status": status,
        "backend": effective_backend(cache),
        "redis_configured": cache.l2.is_some(),
        "redis_connected": cache.l2.as_ref().is_some_and(|l2| l2.is_available()),
        "redis_ping": ping.is_some(),
        // Reads go on when Redis refuses writes (out of memory, replica).
        "redis_writes": match cache.l2.as_ref().is_some_and(|l2| l2.writes_refused()) {
            true => "refused",
            false => "ok",
        },
        "latency_ms": ping.map(|d| (d.as_secs_f64() * 1e5).round() / 100.0),
        // Per-key rate limits: shared through Redis, or counted by this
        // instance alone while Redis is away.
        "rate_limits": match state.access.limiter.is_local() {
            true => "local",
            false => "redis",
        },
    }))
}

/// Checks the admin token from `Authorization: Bearer …` or `X-Admin-Token`.
fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), ProxyError> {
    let Some(expected) = state.config.admin.token.as_deref() else {
        return Err(ProxyError::AdminDisabled);
    };
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let given = bearer
        .or_else(|| headers.get("x-admin-token").and_then(|v| v.to_str().ok()))
        .unwrap_or("");
    if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
        Ok(())
    } else {
        Err(ProxyError::Unauthorized)
    }
}

/// Removes this deployment's verdicts from Redis (by key prefix) and clears
/// the L1 of every instance (this one directly, the others over pub/sub).
pub async fn cache_clear(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, crate::error::ApiError> {
    authorize(&state, &headers)?;
    let cache = &state.guard.cache;
    let l1_entries = cache.l1_len();
    cache.clear_local();
    let redis = match &cache.l2 {
        Some(l2) if l2.is_available() => match l2.clear().await {
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
    Ok(Json(
        json!({ "status": "ok", "l1_entries_cleared": l1_entries, "redis": redis }),
    ))
}
