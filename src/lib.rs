//! ollama-guard: a drop-in guardrail proxy for Ollama.
//!
//! Clients talk to it as if it were Ollama. Prompts are scanned on the way in,
//! model text on the way out (whole or streamed), and every verdict is cached
//! under a SHA-256 key in process memory and in Redis.
//!
//! Layout, one line per module:
//! - [`config`]: `Config` from defaults < `config.yaml` < environment; `validate()`.
//! - [`access`]: API keys, network rules and per-key rate limits (shared
//!   through Redis), checked before any other work.
//! - [`api`]: routes and the tower layer stack; `/health`, `/cache/*`.
//! - [`proxy`]: one handler per route kind; ties dialect, guard and upstream.
//! - [`dialect`]: Ollama, OpenAI (chat, completions, Responses) and Anthropic shapes:
//!   bodies parsed as Ollama parses them, per-route schemas (scan by default, skip
//!   by exception), joined texts, rewrites, blocks, stream framing; Ollama's
//!   token frames read without a tree (`dialect::output::token_frame`).
//! - [`guard`]: segments to a decision (allow, rewrite, block); `guard::output`
//!   guards one reply (a window per field, hold-back, rescans of redacted text,
//!   judges asked about each stream field so far at growing intervals).
//! - [`scan`]: the `Scanner` trait, the registry, the pipeline, one file per scanner;
//!   `scan::classifier` runs `prompt_injection`'s transformer (ONNX Runtime) on a
//!   thread of its own; `scan::guard_model` asks a guard model served by
//!   Ollama (a prompt alone, a reply with its prompt: `scan::Turn`);
//!   `scan::pool` runs big texts' scans off the serving threads, within a
//!   time budget.
//! - [`server`]: the accept loop (header read timeout, connection cap, graceful
//!   shutdown), one thread per core with a heartbeat timer each (so a
//!   request's timers do not wake its own event loop); `api::ops::gate` sheds
//!   load past `server.max_in_flight`.
//! - [`cache`]: keys, the `VerdictStore` interface and its stores (in-process
//!   LRU, Redis on one server, Sentinel or Cluster, none), the tiering with
//!   single-flight, and the reports behind `/cache/*`.
//! - [`upstream`]: the one HTTP client to Ollama.
//! - [`error`]: the request-path error type and its native error shapes.
//! - [`allocator`]: mimalloc as the binary's allocator.
//!
//! Request flow: `api` → `proxy::guarded(route)` → `Route::parse` (refuses
//! what Ollama would read differently) → `Guard::check(Input)` (each segment
//! through the cache) → `Guard::check_joined` (seams, rendered templates) →
//! block, or forward the original bytes or the rewritten document to the
//! route's own path with `Upstream::send` → every string of the reply scanned by a
//! `ReplyGuard`, whole (`proxy::output`) or frame by frame (`proxy::stream`),
//! frames sent up to what could still become a match, every early end closed
//! with the protocol's own frames (`proxy::blocks::Ending`).

pub mod access;
pub mod allocator;
pub mod api;
pub mod cache;
pub mod config;
pub mod dialect;
pub mod error;
pub mod guard;
pub mod metrics;
pub mod proxy;
pub mod scan;
pub mod scan_cli;
pub mod server;
pub mod upstream;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;

use cache::VerdictCache;
use config::Config;
use guard::Guard;
use metrics::Metrics;
use upstream::Upstream;

/// How long streams in flight may run on after a shutdown signal.
pub const SHUTDOWN_GRACE_SECS: u64 = 30;

/// Everything a request needs. One `Arc`: the state is cloned into every
/// middleware and handler of every request, and a clone of six `Arc`s (six
/// atomic increments, six decrements on drop) showed in the profile.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] holds; each part is an `Arc` of its own, for the
/// tasks and guards that keep one part alone.
pub struct Shared {
    pub config: Arc<Config>,
    pub upstream: Arc<Upstream>,
    pub guard: Arc<Guard>,
    pub metrics: Arc<Metrics>,
    /// Who may use the proxy, and how much.
    pub access: Arc<access::Access>,
    /// Set when the shutdown grace period is over: streams still open end
    /// with their protocol's closing frames before the server stops.
    pub closing: Arc<tokio::sync::watch::Sender<bool>>,
}

impl AppState {
    /// Builds the state from a validated config. Needs a Tokio runtime: the
    /// Redis supervisor starts in the background (Redis need not be up).
    pub fn new(config: Config) -> anyhow::Result<Self> {
        if config.guard.stream.scan_interval_bytes.is_some() {
            tracing::warn!(
                "guard.stream.scan_interval_bytes is retired and ignored: streams hold back only what could still become a match"
            );
        }
        let metrics = Arc::new(Metrics::new().context("registering metrics")?);
        let cache = VerdictCache::from_config(&config, &metrics).map_err(anyhow::Error::msg)?;
        let guard = Guard::new(&config, Arc::new(cache), metrics.clone())
            .map_err(|p| anyhow::anyhow!(p.join("; ")))?;
        let upstream = Upstream::new(&config.ollama, config.server.worker_count())
            .context("building the HTTP client")?;
        let access = access::Access::new(&config, guard.cache.redis(), metrics.clone())
            .map_err(|p| anyhow::anyhow!(p.join("; ")))?;
        warn_if_exposed(&config, &access, guard.cache.is_shared());
        Ok(Self(Arc::new(Shared {
            access: Arc::new(access),
            config: Arc::new(config),
            upstream: Arc::new(upstream),
            guard: Arc::new(guard),
            metrics,
            closing: Arc::new(tokio::sync::watch::channel(false).0),
        })))
    }
}

/// One warning each for a start that leaves the proxy open or its Redis
/// verdicts unsigned.
fn warn_if_exposed(config: &Config, access: &access::Access, redis: bool) {
    let host = config
        .server
        .host
        .trim_start_matches('[')
        .trim_end_matches(']');
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if access.is_open() && !loopback {
        tracing::warn!(
            host = %config.server.host,
            "listening beyond this machine with no API keys (auth.keys): anyone who reaches the port can use every model and route"
        );
    }
    if redis && config.cache.signing_key.is_none() {
        tracing::warn!(
            "verdicts in Redis are not signed (cache.signing_key): anyone who can write to Redis can mark a text as allowed"
        );
    }
}

/// Runs its closure when dropped: on every way out of [`run`].
struct StopOnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for StopOnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

/// Serves until `shutdown` completes, then lets requests in flight finish for
/// up to [`SHUTDOWN_GRACE_SECS`] before returning.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let signalled = async move {
        shutdown.await;
        let _ = tx.send(true);
    };
    let mut rx_grace = rx.clone();
    let closing = state.closing.clone();
    // Background work outlives no server: the Redis supervisor stops here.
    let cache = state.guard.cache.clone();
    let _stop_cache = StopOnDrop(move || cache.stop());
    let limits = server::Limits {
        header_read_timeout: Duration::from_secs_f64(state.config.server.header_read_timeout_secs),
        max_connections: state.config.server.max_connections,
        workers: state.config.server.worker_count(),
    };
    let server = server::serve(listener, api::app(state), limits, async move {
        signalled.await;
        drop(rx);
    });
    let grace = async move {
        let _ = rx_grace.wait_for(|s| *s).await;
        tokio::time::sleep(Duration::from_secs(SHUTDOWN_GRACE_SECS)).await;
    };
    tokio::pin!(server);
    tokio::select! {
        served = &mut server => return served,
        () = grace => {}
    }
    tracing::warn!("shutdown grace period over; ending the streams still open");
    closing.send_replace(true);
    // Their closing frames are small: give them a moment to be written.
    let _ = tokio::time::timeout(Duration::from_secs(1), server).await;
    Ok(())
}
