//! The verdict cache's endpoints: `/cache/stats`, `/cache/health`, and the
//! admin call `POST /cache/clear`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use serde_json::Value;
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::error::ProxyError;

/// `/cache/stats`, as the cache reports it.
pub async fn cache_stats(State(state): State<AppState>) -> Json<Value> {
    Json(state.guard.cache.stats().await)
}

/// 200 while requests are served; `status` says how well.
pub async fn cache_health(State(state): State<AppState>) -> Json<Value> {
    let mut health = state.guard.cache.health().await;
    // Per-key rate limits: shared through Redis, or counted by this
    // instance alone while Redis is away.
    health["rate_limits"] = match state.access.limiter.is_local() {
        true => "local",
        false => "redis",
    }
    .into();
    Json(health)
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
    Ok(Json(state.guard.cache.clear().await))
}
