//! The HTTP surface: every Ollama route (guarded or passed through), the
//! OpenAI-compatible routes, and ollama-guard's own endpoints.
//!
//! Layer stack, outermost first (what a request meets in order):
//! 1. `request_id::RequestIdLayer`: gives every request an `x-request-id`
//!    (kept if the client sent one) and echoes it on the response.
//! 2. `TraceLayer`: one span per request (method, path, request id, status,
//!    latency); bodies are never logged.
//! 3. `CatchPanicLayer`: a panic becomes a generic 500, never a dropped
//!    connection.
//!
//! One route layer (matched routes only), `ops::gate`, in this order:
//! 1. sheds load past `server.max_in_flight` (503);
//! 2. `access::admit`: network rules, API keys, a key's concurrency slot
//!    and rate limit (401, 403, 429); see `access`;
//! 3. counts requests by route template and status and keeps the in-flight
//!    gauge (a stream stays in flight until its body ends).
//!
//! Body limits are enforced by the handlers (413 in the route's error shape);
//! admin calls check `admin.token` in their handler; routes that run a model
//! check the key's models and rate limit once the body is read.

mod admin;
pub(crate) mod held;
mod ops;
mod request_id;
mod scan;

use axum::extract::{Request, State};
use axum::http::{Request as HttpRequest, Uri};
use axum::routing::{any, get, post};
use axum::{Router, middleware};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

use crate::AppState;
use crate::dialect::{Dialect, Route};
use crate::error::{ApiError, ProxyError};
use crate::proxy::{guarded, passthrough};
use request_id::{REQUEST_ID, RequestIdLayer};

/// Ollama routes that carry no prompt: relayed as they are, any method, so
/// Ollama answers wrong methods itself.
const PASSTHROUGH: &[&str] = &[
    "/",
    "/api/tags",
    "/api/show",
    "/api/ps",
    "/api/version",
    "/api/pull",
    "/api/push",
    "/api/copy",
    "/api/delete",
    "/api/blobs/{digest}",
    "/v1/models",
    "/v1/models/{model}",
];

pub fn app(state: AppState) -> Router {
    let mut router = Router::new()
        .route("/health", get(ops::health))
        .route("/ready", get(ops::ready))
        .route("/metrics", get(ops::metrics))
        .route("/scan", post(scan::scan))
        .route("/cache/stats", get(admin::cache_stats))
        .route("/cache/health", get(admin::cache_health))
        .route("/cache/clear", post(admin::cache_clear));
    for path in PASSTHROUGH {
        router = router.route(path, any(passthrough));
    }
    // Routes whose bodies are scanned, each at its own path.
    for route in Route::ALL {
        router = router.route(
            route.path(),
            post(move |State(s): State<AppState>, req: Request| guarded(s, route, req)),
        );
    }
    let layers = ServiceBuilder::new()
        .layer(RequestIdLayer::default())
        .layer(TraceLayer::new_for_http().make_span_with(|req: &HttpRequest<_>| {
            // The id is looked up only for a span that will be logged.
            let span = tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = tracing::field::Empty);
            if !span.is_disabled()
                && let Some(id) = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok())
            {
                span.record("request_id", tracing::field::display(id));
            }
            span
        }))
        .layer(CatchPanicLayer::new());
    router
        .route_layer(middleware::from_fn_with_state(
            ops::Gate::new(state.clone()),
            ops::gate,
        ))
        .fallback(not_found)
        .layer(layers)
        .with_state(state)
}

/// Unknown paths: a JSON 404 (in OpenAI's shape under `/v1/`), counted
/// under the route `unmatched`. They never reach Ollama, so a route added
/// to Ollama cannot bypass the guard.
async fn not_found(State(state): State<AppState>, uri: Uri) -> ApiError {
    state
        .metrics
        .requests
        .with_label_values(&["unmatched", "404"])
        .inc();
    let dialect = if uri.path().starts_with("/v1/") {
        Dialect::OpenAi
    } else {
        Dialect::Ollama
    };
    ProxyError::NotFound.in_dialect(dialect)
}
