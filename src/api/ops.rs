//! Operational endpoints: liveness, readiness, Prometheus metrics, and the
//! middleware that counts requests.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::metrics::Metrics;
use crate::{AppState, access};

/// How long `/ready` waits for Ollama and for Redis.
const READY_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Liveness: the process serves requests. Says nothing of Ollama or Redis.
pub async fn health() -> Json<Value> {
    Json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

/// Readiness: probes Ollama and Redis at once. 503 when Ollama cannot be
/// reached, or Redis when `cache.backend: redis` requires it; 200
/// otherwise, `degraded` when an optional Redis (`auto`) is away (verdicts
/// are then cached in this instance's memory only).
pub async fn ready(State(state): State<AppState>) -> Response {
    let redis = state.guard.cache.probe_shared(READY_PROBE_TIMEOUT);
    let (ollama_up, redis_up) = tokio::join!(state.upstream.probe(READY_PROBE_TIMEOUT), redis);
    // `cache.backend: redis` makes Redis required; `auto`, optional.
    let required = state.config.cache.backend == crate::config::CacheBackend::Redis;
    let (code, status) = match (ollama_up, redis_up) {
        (false, _) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        (true, Some(false)) if required => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        (true, Some(false)) => (StatusCode::OK, "degraded"),
        _ => (StatusCode::OK, "ready"),
    };
    let body = json!({
        "status": status,
        "ollama": { "url": state.upstream.base_url(), "reachable": ollama_up },
        "redis": match redis_up {
            None => json!({ "configured": false }),
            Some(up) => json!({ "configured": true, "connected": up }),
        },
    });
    (code, Json(body)).into_response()
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    let fallback = state.guard.cache.fallback_active();
    state.metrics.cache_fallback.set(i64::from(fallback));
    let text = state.metrics.encode();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// Decrements the in-flight gauge when the response body is done (or dropped).
struct InFlight(Arc<Metrics>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.dec();
    }
}

/// What [`gate`] needs: the cap on requests handled at once
/// (`server.max_in_flight`), and the state (its metrics, `access`).
#[derive(Clone)]
pub struct Gate {
    permits: Arc<tokio::sync::Semaphore>,
    limit: usize,
    state: AppState,
}

impl Gate {
    pub fn new(state: AppState) -> Self {
        let limit = state.config.server.max_in_flight;
        Self {
            permits: Arc::new(tokio::sync::Semaphore::new(limit)),
            limit,
            state,
        }
    }
}

/// Sheds load, admits the caller, then counts what it let in. One layer
/// for all three: each `from_fn` layer clones and boxes its inner service
/// for every request (two layers cost 2 k instructions more a request).
/// - A request beyond `server.max_in_flight` gets 503 with `Retry-After: 1`
///   at once, in its route's error shape, instead of queueing behind the
///   others (it is not counted below). `/health`, `/ready` and `/metrics`
///   are always answered.
/// - [`access::admit`]: network rules, API keys, a key's slot and rate
///   limit; a refusal is the response.
/// - Requests are counted by route template and status, and those in
///   flight.
///
/// A request holds its place (and its key's slot) and stays in flight until
/// its response body ends (a stream, until its last frame).
pub async fn gate(
    State(gate): State<Gate>,
    matched: Option<MatchedPath>,
    mut req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path();
    let permit = if matches!(path, "/health" | "/ready" | "/metrics") {
        None
    } else {
        let Ok(permit) = gate.permits.clone().try_acquire_owned() else {
            let dialect = crate::dialect::Dialect::of_path(path);
            return crate::error::ProxyError::Busy { limit: gate.limit }
                .in_dialect(dialect)
                .into_response();
        };
        Some(permit)
    };
    let route = matched.as_ref().map_or("unmatched", MatchedPath::as_str);
    let metrics = &gate.state.metrics;
    metrics.in_flight.inc();
    let in_flight = InFlight(metrics.clone());
    let (response, slot) = match access::admit(&gate.state, &mut req).await {
        Ok(slot) => (next.run(req).await, slot),
        Err(refused) => (refused, None),
    };
    metrics
        .requests
        .with_label_values(&[route, response.status().as_str()])
        .inc();
    super::held::hold(response, (in_flight, permit, slot))
}
