//! ollama-guard's own endpoints: liveness and the cache's state.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::AppState;

/// Liveness: the process serves requests. Says nothing of Ollama or Redis.
pub async fn health() -> Json<Value> {
    Json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

pub async fn cache_stats(State(state): State<AppState>) -> Json<Value> {
    let c = &state.guard.cache.counters;
    let l1 = c.l1_hits.load(Ordering::Relaxed);
    let l2 = c.l2_hits.load(Ordering::Relaxed);
    let misses = c.misses.load(Ordering::Relaxed);
    let total = l1 + l2 + misses;
    let hit_rate = if total == 0 {
        0.0
    } else {
        (l1 + l2) as f64 * 100.0 / total as f64
    };
    Json(json!({
        "backend": "memory",
        "hits": l1 + l2,
        "misses": misses,
        "hit_rate": (hit_rate * 100.0).round() / 100.0,
        "total_requests": total,
        "l1_hits": l1,
        "l2_hits": l2,
        "l1_size": state.guard.cache.l1_len(),
    }))
}
