//! `POST /scan`: the proxy's scanners as an API, through the verdict cache.
//!
//! - `{"direction": "input", "text": "..."}` → one report;
//! - `{"direction": "input", "messages": [...]}` → a report per text in the
//!   messages (found as for `/api/chat`), with its JSON pointer;
//! - `{"batch": [ ...either form... ]}` → `{"results": [...]}`, in order.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::dialect::{Route, schema};
use crate::error::{ApiError, ProxyError};
use crate::scan::Direction;

/// Most items one batch may hold.
const MAX_BATCH: usize = 256;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Item {
    #[serde(default = "input")]
    direction: Direction,
    text: Option<String>,
    messages: Option<Value>,
}

fn input() -> Direction {
    Direction::Input
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Body {
    Batch { batch: Vec<Value> },
    One(Value),
}

pub async fn scan(
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let body: Body =
        serde_json::from_slice(&body).map_err(|e| ProxyError::BadJson(e.to_string()))?;
    match body {
        Body::One(item) => Ok(Json(one(&state, item).await?).into_response()),
        Body::Batch { batch } if batch.len() > MAX_BATCH => {
            Err(ProxyError::BadShape(format!("a batch holds at most {MAX_BATCH} items")).into())
        }
        Body::Batch { batch } => {
            let mut results = Vec::with_capacity(batch.len());
            for (i, item) in batch.into_iter().enumerate() {
                let r = one(&state, item)
                    .await
                    .map_err(|e| ProxyError::BadShape(format!("batch[{i}]: {}", e.error)))?;
                results.push(r);
            }
            Ok(Json(json!({ "results": results })).into_response())
        }
    }
}

async fn one(state: &AppState, item: Value) -> Result<Value, ApiError> {
    let item: Item =
        serde_json::from_value(item).map_err(|e| ProxyError::BadShape(e.to_string()))?;
    let report = |text: String| async move {
        state
            .guard
            .report(
                item.direction,
                &text,
                state.config.guard.expose_cache_header,
            )
            .await
            .map_err(|e| ProxyError::Internal(e.to_string()))
    };
    match (item.text, item.messages) {
        (Some(text), None) => Ok(serde_json::to_value(report(text).await?).unwrap_or_default()),
        (None, Some(messages)) => {
            let segments = schema::segments(Route::Chat.schema(), &json!({ "messages": messages }))
                .map_err(ProxyError::BadShape)?;
            let mut reports = Vec::with_capacity(segments.len());
            for s in segments {
                let mut r = serde_json::to_value(report(s.text).await?).unwrap_or_default();
                r["pointer"] = s.pointer.into();
                reports.push(r);
            }
            let allowed = reports.iter().all(|r| r["allowed"] == true);
            Ok(json!({ "direction": item.direction, "allowed": allowed, "segments": reports }))
        }
        _ => Err(ProxyError::BadShape("give either `text` or `messages`".into()).into()),
    }
}
