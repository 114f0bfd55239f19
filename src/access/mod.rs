//! Who may use the proxy, and how much. [`admit`] runs before any other
//! work on a matched route:
//!
//! 1. **Network**: `auth.deny_cidrs`, then `auth.allow_cidrs`, on the
//!    client's address (`X-Forwarded-For` only from `server.trusted_proxies`).
//! 2. **Key**: with keys configured (`auth.keys`, `auth.keys_file`), every
//!    route but `/health` and `/ready` needs `Authorization: Bearer <key>`
//!    (or `x-api-key`, which Anthropic clients send) or the admin token;
//!    management routes need `allow_management`, `/scan` needs
//!    `allow_scan`. With none, the proxy is open, as Ollama is.
//!    `admin.protect_ops` puts `/metrics` and `/cache/*` behind the admin
//!    token. CORS preflights (`OPTIONS`) carry no credentials by design and
//!    pass to Ollama, which answers them.
//! 3. **Limits**: a slot of the key's `max_concurrent` (held until the
//!    response body ends, a stream included), and its rate limits
//!    (`limits.rs`). Routes that run a model are rate-limited by their
//!    handler, once the prompt's size is known (tokens); the model a key
//!    may run is checked there too ([`Caller::may_run`]).
//!
//! Refusals answer in the route's own error shape: 401, 403, 429 with
//! `Retry-After`.

pub mod keys;
pub mod limits;
pub mod net;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderMap, HeaderName, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::OwnedSemaphorePermit;

use crate::AppState;
use crate::cache::redis::RedisTier;
use crate::config::Config;
use crate::dialect::{Dialect, Route};
use crate::error::ProxyError;
use crate::metrics::Metrics;
use keys::{Client, KeyRing, is_admin};
use limits::Limiter;
use net::NetRules;

pub struct Access {
    keys: KeyRing,
    admin_token: Option<String>,
    net: NetRules,
    pub limiter: Limiter,
    protect_ops: bool,
    metrics: Arc<Metrics>,
}

/// Who sent a request (a request extension set by [`admit`]).
#[derive(Clone, Debug)]
pub enum Caller {
    /// No keys are configured: anyone who reaches the proxy.
    Anyone,
    /// The admin token.
    Admin,
    Key(Arc<Client>),
}

impl Caller {
    /// Whether this caller may run `model`.
    pub fn may_run(&self, model: &str) -> bool {
        match self {
            Self::Key(c) => c.may_run(model),
            Self::Anyone | Self::Admin => true,
        }
    }
}

/// What a path asks of its caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Need {
    /// Liveness and readiness: always answered.
    Nothing,
    /// `/metrics`, `/cache/stats`, `/cache/health`.
    Ops,
    /// `/cache/clear`: its handler checks the admin token.
    AdminCall,
    Scan,
    Management,
    /// Everything else: a key, when keys are configured.
    Key,
}

fn need(path: &str) -> Need {
    match path {
        "/health" | "/ready" => Need::Nothing,
        "/metrics" | "/cache/stats" | "/cache/health" => Need::Ops,
        "/cache/clear" => Need::AdminCall,
        "/scan" => Need::Scan,
        "/api/pull" | "/api/push" | "/api/create" | "/api/copy" | "/api/delete" => Need::Management,
        p if p.starts_with("/api/blobs/") => Need::Management,
        _ => Need::Key,
    }
}

/// A name, not a string: a string is parsed into a name on every lookup
/// (every request reads this header).
const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");

/// The token a client sent: `Authorization: Bearer …`, else `x-api-key`.
fn token(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    bearer.or_else(|| headers.get(&X_API_KEY).and_then(|v| v.to_str().ok()))
}

impl Access {
    /// Reads the keys (and `auth.keys_file`) and the network rules; rate
    /// limits go through the verdict cache's Redis when it has one.
    pub fn new(
        config: &Config,
        redis: Option<Arc<RedisTier>>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, Vec<String>> {
        let auth = &config.auth;
        let keys = KeyRing::load(auth);
        let net = NetRules::new(
            &auth.allow_cidrs,
            &auth.deny_cidrs,
            &config.server.trusted_proxies,
        );
        let (keys, net) = match (keys, net) {
            (Ok(k), Ok(n)) => (k, n),
            (k, n) => {
                return Err([k.err(), n.err()].into_iter().flatten().flatten().collect());
            }
        };
        Ok(Self {
            keys,
            admin_token: config.admin.token.clone(),
            net,
            limiter: Limiter::new(redis, metrics.clone()),
            protect_ops: config.admin.protect_ops,
            metrics,
        })
    }

    /// No keys: anyone who reaches the proxy may use it.
    pub fn is_open(&self) -> bool {
        self.keys.is_empty()
    }

    fn denied(&self, reason: &str, error: ProxyError, dialect: Dialect) -> Response {
        self.metrics.denied.with_label_values(&[reason]).inc();
        error.in_dialect(dialect).into_response()
    }

    /// Who `token` is, or why it is refused.
    fn identify(&self, token: Option<&str>) -> Result<Caller, (&'static str, ProxyError)> {
        if let Some(t) = token
            && is_admin(self.admin_token.as_deref(), t)
        {
            return Ok(Caller::Admin);
        }
        if self.is_open() {
            // Clients send whatever their SDK needs ("ollama"): ignored.
            return Ok(Caller::Anyone);
        }
        match token.map(|t| self.keys.get(t)) {
            None => Err(("missing_key", ProxyError::MissingKey)),
            Some(None) => Err(("bad_key", ProxyError::BadKey)),
            Some(Some(c)) => Ok(Caller::Key(c.clone())),
        }
    }

    /// Takes one request (and `tokens`) from a key's rate limits; 429 when
    /// over. Callers other than keys are not limited.
    pub async fn charge(&self, caller: Option<&Caller>, tokens: u64) -> Result<(), ProxyError> {
        let Some(Caller::Key(client)) = caller else {
            return Ok(());
        };
        self.limiter.admit(client, tokens).await.map_err(|wait| {
            self.metrics
                .denied
                .with_label_values(&["rate_limited"])
                .inc();
            ProxyError::RateLimited {
                what: "rate limit",
                retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
            }
        })
    }
}

/// Network rules, the caller, its concurrency slot, and the rate limit of
/// routes that run no model (see the module doc), before the handler runs
/// (in `api::ops::gate`'s layer). `Ok`: the request may go on, with the
/// key's slot to hold until its response body ends; `Err`: the refusal.
pub async fn admit(
    state: &AppState,
    req: &mut Request,
) -> Result<Option<OwnedSemaphorePermit>, Response> {
    let access = &state.access;
    let path = req.uri().path();
    let need = need(path);
    if need == Need::Nothing {
        return Ok(None);
    }
    let route = Route::at(path);
    let (dialect, guarded) = (Dialect::of(route, path), route.is_some());
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if !access.net.admits(access.net.client(peer, req.headers())) {
        return Err(access.denied("network", ProxyError::NetworkDenied, dialect));
    }
    // CORS preflights carry no credentials by design; Ollama answers them.
    let preflight = req.method() == axum::http::Method::OPTIONS;
    if preflight || need == Need::AdminCall || (need == Need::Ops && !access.protect_ops) {
        return Ok(None);
    }
    let caller = match access.identify(token(req.headers())) {
        Ok(c) => c,
        Err((reason, e)) if need != Need::Ops => return Err(access.denied(reason, e, dialect)),
        Err(_) => Caller::Anyone,
    };
    let refusal = match (&caller, need) {
        (Caller::Admin, _) => None,
        (_, Need::Ops) => Some(match access.admin_token {
            Some(_) => ProxyError::Unauthorized,
            None => ProxyError::AdminDisabled,
        }),
        (Caller::Key(c), Need::Scan) if !c.allow_scan => Some(ProxyError::Forbidden(
            "this key may not call /scan (allow_scan)".into(),
        )),
        (Caller::Key(c), Need::Management) if !c.allow_management => Some(ProxyError::Forbidden(
            "this key may not manage models (allow_management)".into(),
        )),
        _ => None,
    };
    if let Some(e) = refusal {
        return Err(access.denied("forbidden", e, dialect));
    }
    let slot = match &caller {
        Caller::Key(c) => match c.slots.as_ref().map(|s| s.clone().try_acquire_owned()) {
            Some(Err(_)) => {
                let e = ProxyError::RateLimited {
                    what: "limit of requests at once",
                    retry_after_secs: 1,
                };
                return Err(access.denied("concurrency", e, dialect));
            }
            Some(Ok(permit)) => Some(permit),
            None => None,
        },
        _ => None,
    };
    if !guarded && let Err(e) = access.charge(Some(&caller), 0).await {
        return Err(e.in_dialect(dialect).into_response());
    }
    req.extensions_mut().insert(caller);
    Ok(slot)
}
