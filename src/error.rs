//! The one error type of the request path, rendered in the route's own error
//! shape: Ollama's `{"error": "..."}` or OpenAI's `{"error": {...}}`.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::dialect::{Dialect, anthropic, ollama, openai};

pub const BLOCKED_HEADER: &str = "x-guard-blocked";

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("invalid JSON in request body: {0}")]
    BadJson(String),
    #[error("invalid request: {0}")]
    BadShape(String),
    #[error("request body is larger than the {limit}-byte limit (server.max_body_bytes)")]
    TooLarge { limit: usize },
    #[error("request has {count} {what}, over the limit of {limit} ({key})")]
    TooMuchText {
        count: usize,
        what: &'static str,
        limit: usize,
        key: &'static str,
    },
    #[error("could not read the request body")]
    BodyRead,
    #[error("the request body did not arrive within {secs} s (server.body_read_timeout_secs)")]
    BodyTimeout { secs: f64 },
    #[error(
        "ollama-guard is at its limit of {limit} requests at once (server.max_in_flight); retry shortly"
    )]
    Busy { limit: usize },
    #[error("upstream Ollama at {url} is unreachable")]
    Unreachable { url: String },
    #[error("upstream Ollama did not answer in time")]
    Timeout,
    #[error("upstream Ollama sent a response that could not be read")]
    BadUpstream,
    #[error("blocked by ollama-guard: {direction} flagged by {}", scanners.join(", "))]
    Blocked {
        direction: &'static str,
        scanners: Vec<String>,
        status: StatusCode,
    },
    #[error("unauthorized: a valid admin token is required")]
    Unauthorized,
    #[error("unauthorized: an API key is required (Authorization: Bearer <key>)")]
    MissingKey,
    #[error("unauthorized: the API key is not valid")]
    BadKey,
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("forbidden: requests from this address are not accepted")]
    NetworkDenied,
    #[error("too many requests: over this key's {what}; retry in {retry_after_secs} s")]
    RateLimited {
        what: &'static str,
        retry_after_secs: u64,
    },
    #[error("admin calls are disabled: set admin.token (ADMIN_TOKEN)")]
    AdminDisabled,
    #[error("not found")]
    NotFound,
    #[error("invalid path: {0}")]
    BadPath(String),
    #[error("internal error")]
    Internal(String),
}

impl ProxyError {
    pub fn status_code(&self) -> StatusCode {
        match self {
            Self::BadJson(_) | Self::BadShape(_) | Self::BadPath(_) | Self::BodyRead => {
                StatusCode::BAD_REQUEST
            }
            Self::TooLarge { .. } | Self::TooMuchText { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unreachable { .. } | Self::BadUpstream => StatusCode::BAD_GATEWAY,
            Self::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Self::Blocked { status, .. } => *status,
            Self::Unauthorized | Self::MissingKey | Self::BadKey => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) | Self::NetworkDenied => StatusCode::FORBIDDEN,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::AdminDisabled => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The OpenAI error `type` for this error.
    fn openai_type(&self) -> &'static str {
        match self.status_code().as_u16() {
            401 | 403 => "authentication_error",
            404 => "not_found_error",
            429 => "rate_limit_error",
            400..=499 => "invalid_request_error",
            _ => "api_error",
        }
    }

    pub fn in_dialect(self, dialect: Dialect) -> ApiError {
        ApiError {
            dialect,
            error: self,
        }
    }
}

/// A [`ProxyError`] together with the shape to render it in.
#[derive(Debug)]
pub struct ApiError {
    pub dialect: Dialect,
    pub error: ProxyError,
}

impl From<ProxyError> for ApiError {
    fn from(error: ProxyError) -> Self {
        Self {
            dialect: Dialect::Ollama,
            error,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.error.status_code();
        if let ProxyError::Internal(detail) = &self.error {
            tracing::error!(%detail, "internal error");
        }
        let message = self.error.to_string();
        let body = match self.dialect {
            Dialect::Ollama => ollama::error_body(&message),
            Dialect::OpenAi => {
                let code = match self.error {
                    ProxyError::Blocked { .. } => Some("content_blocked"),
                    ProxyError::MissingKey | ProxyError::BadKey => Some("invalid_api_key"),
                    ProxyError::RateLimited { .. } => Some("rate_limit_exceeded"),
                    _ => None,
                };
                openai::error_body(&message, self.error.openai_type(), code)
            }
            Dialect::Anthropic => anthropic::error_body(status.as_u16(), &message),
        };
        let mut response = (status, axum::Json(body)).into_response();
        if let ProxyError::Blocked { scanners, .. } = &self.error
            && let Ok(v) = HeaderValue::from_str(&scanners.join(","))
        {
            response.headers_mut().insert(BLOCKED_HEADER, v);
        }
        let retry_after = match &self.error {
            ProxyError::Busy { .. } => Some(1),
            ProxyError::RateLimited {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            _ => None,
        };
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
