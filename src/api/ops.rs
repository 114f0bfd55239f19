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

use crate::AppState;
use crate::metrics::Metrics;

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

/// Counts requests by route template and status, and those in flight; a
/// streamed response stays in flight until its body ends.
pub async fn track(
    State(metrics): State<Arc<Metrics>>,
    matched: Option<MatchedPath>,
    req: Request,
    next: Next,
) -> Response {
    let route = matched
        .as_ref()
        .map_or("unmatched", MatchedPath::as_str)
        .to_string();
    metrics.in_flight.inc();
    let guard = InFlight(metrics.clone());
    let response = next.run(req).await;
    metrics
        .requests
        .with_label_values(&[route.as_str(), response.status().as_str()])
        .inc();
    super::held::hold(response, guard)
}

/// The cap on requests handled at once (`server.max_in_flight`).
#[derive(Clone)]
pub struct Admission {
    permits: Arc<tokio::sync::Semaphore>,
    limit: usize,
}

impl Admission {
    pub fn new(limit: usize) -> Self {
        Self {
            permits: Arc::new(tokio::sync::Semaphore::new(limit)),
            limit,
        }
    }
}

/// Sheds load: a request beyond `server.max_in_flight` gets 503 with
/// `Retry-After: 1` at once, in its route's error shape, instead of queueing
/// behind the others. A request counts until its response body ends (a
/// stream, until its last frame). `/health`, `/ready` and `/metrics` are
/// always answered.
pub async fn admit(State(admission): State<Admission>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if matches!(path, "/health" | "/ready" | "/metrics") {
        return next.run(req).await;
    }
    let Ok(permit) = admission.permits.clone().try_acquire_owned() else {
        let dialect = crate::dialect::Dialect::of_path(path);
        return crate::error::ProxyError::Busy {
            limit: admission.limit,
        }
        .in_dialect(dialect)
        .into_response();
    };
    let response = next.run(req).await;
    super::held::hold(response, permit)
}
