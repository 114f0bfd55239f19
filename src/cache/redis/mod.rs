//! L2: verdicts in Redis, shared by every instance: one server, the master
//! Sentinel names, or a Cluster (`topology.rs`). Every command is bounded
//! by `redis.socket_timeout`; after [`FAILURES_TO_OPEN`] failures in a row the
//! breaker opens and lookups skip Redis with no wait at all until the
//! supervisor (see `supervisor.rs`) has reconnected.
//!
//! Keys: `{key_prefix}verdict:{sha256 hex}`. Values: the verdict as JSON
//! (findings, redaction offsets), never the scanned text.

mod admin;
pub mod store;
pub mod topology;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use prometheus::IntCounter;
use redis::{AsyncConnectionConfig, Client, RedisError};

use super::CacheKey;
use super::signing::{self, Checked, Signer};
use crate::config::{RedisConfig, secs};
use crate::scan::Verdict;
use crate::scan::pipeline::CostMeter;
use topology::{Conn, Topology};

/// Consecutive command failures that open the breaker.
pub const FAILURES_TO_OPEN: u32 = 3;

pub struct RedisTier {
    topology: Topology,
    /// Where Redis is, with any password masked, for logs.
    pub display_url: String,
    /// Open connections (requests are multiplexed over them); empty while
    /// Redis is away.
    conns: RwLock<Vec<Conn>>,
    /// The client the clear listener subscribes with (the node connected
    /// to last), and how many times this tier has connected: a listener
    /// of an older connection is replaced.
    pubsub: RwLock<Option<(Client, u64)>>,
    generation: AtomicU64,
    next: AtomicUsize,
    failures: AtomicU32,
    /// Errors talking to Redis (timeouts, refused connections, bad replies).
    pub errors: IntCounter,
    /// The last problem logged, so each state change is logged once.
    last_logged: Mutex<Option<String>>,
    pub prefix: String,
    ttl_secs: u64,
    pub socket_timeout: Duration,
    connect_timeout: Duration,
    max_connections: usize,
    /// Signs what is written and checks what is read (`cache.signing_key`).
    signer: Option<Signer>,
    /// Values that failed the signature check.
    rejected: Option<IntCounter>,
    /// Round trips of reads and probes lately (see `latency`).
    latency: CostMeter,
    /// Redis answers but refuses writes (out of memory, a read-only
    /// replica): reads go on, the breaker stays closed.
    writes_refused: AtomicBool,
}

/// An answer from a Redis that is up but will not store anything now:
/// out of memory under `noeviction`, or a read-only replica.
fn refuses_writes(e: &RedisError) -> bool {
    matches!(e.code(), Some("OOM" | "READONLY"))
}

/// The URL to connect to: `redis.url` if set (with `redis.password` and
/// `redis.username` filled in when the URL has none), else one built from
/// host, port, db, username, password and ssl.
pub fn connection_url(cfg: &RedisConfig) -> Result<reqwest::Url, String> {
    let mut url = match &cfg.url {
        Some(u) => reqwest::Url::parse(u).map_err(|e| format!("redis.url: {e}"))?,
        None => {
            let scheme = if cfg.ssl { "rediss" } else { "redis" };
            reqwest::Url::parse(&format!("{scheme}://{}:{}/{}", cfg.host, cfg.port, cfg.db))
                .map_err(|e| format!("redis.host: {e}"))?
        }
    };
    if url.username().is_empty()
        && let Some(user) = &cfg.username
    {
        url.set_username(user)
            .map_err(|()| "redis.username cannot be used in a URL".to_string())?;
    }
    if url.password().is_none()
        && let Some(pass) = &cfg.password
    {
        url.set_password(Some(pass))
            .map_err(|()| "redis.password cannot be used in a URL".to_string())?;
    }
    Ok(url)
}

/// `tier`, signing what it writes when `cache.signing_key` is set.
pub fn signing_for(
    tier: RedisTier,
    config: &crate::config::Config,
    metrics: &crate::metrics::Metrics,
) -> RedisTier {
    match &config.cache.signing_key {
        Some(key) => tier.signed(Signer::new(key), metrics.verdicts_rejected.clone()),
        None => tier,
    }
}

impl RedisTier {
    pub fn new(cfg: &RedisConfig, ttl_secs: u64, errors: IntCounter) -> Result<Self, String> {
        let url = connection_url(cfg)?;
        Ok(Self {
            topology: Topology::from_config(cfg, &url)?,
            display_url: Topology::describe(cfg, &url),
            conns: RwLock::new(Vec::new()),
            pubsub: RwLock::new(None),
            generation: AtomicU64::new(0),
            next: AtomicUsize::new(0),
            failures: AtomicU32::new(0),
            errors,
            last_logged: Mutex::new(None),
            prefix: cfg.key_prefix.clone(),
            ttl_secs,
            socket_timeout: secs(cfg.socket_timeout),
            connect_timeout: secs(cfg.socket_connect_timeout),
            max_connections: cfg.max_connections,
            signer: None,
            rejected: None,
            latency: CostMeter::default(),
            writes_refused: AtomicBool::new(false),
        })
    }

    /// This tier, signing verdicts with `signer`; values failing the check
    /// are counted in `rejected` and rescanned.
    pub fn signed(self, signer: Signer, rejected: IntCounter) -> Self {
        Self {
            signer: Some(signer),
            rejected: Some(rejected),
            ..self
        }
    }

    /// The client to subscribe with, and which connect it came from (a
    /// count): a listener subscribed under an older connect may be on a
    /// node that is no longer the master, and is replaced.
    pub fn pubsub(&self) -> Option<(Client, u64)> {
        self.pubsub
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn key(&self, key: &CacheKey) -> String {
        format!("{}verdict:{}", self.prefix, key.0)
    }

    /// The pub/sub channel that carries "clear your L1" to every instance.
    pub fn clear_channel(&self) -> String {
        format!("{}clear", self.prefix)
    }

    /// Whether lookups go to Redis now (connected, breaker closed).
    pub fn is_available(&self) -> bool {
        !self
            .conns
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }

    fn conn(&self) -> Option<Conn> {
        let conns = self.conns.read().unwrap_or_else(|p| p.into_inner());
        if conns.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % conns.len();
        Some(conns[i].clone())
    }

    /// Runs one command against an open connection within the socket
    /// timeout; `None` when Redis is unavailable or the command failed.
    async fn run<T, F, Fut>(&self, timeout: Duration, what: &str, f: F) -> Option<T>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        let conn = self.conn()?;
        match tokio::time::timeout(timeout, f(conn)).await {
            Ok(Ok(v)) => {
                self.failures.store(0, Ordering::Relaxed);
                Some(v)
            }
            // Under Sentinel, READONLY means the master was demoted (and
            // Sentinel did not close our connections, as it usually does):
            // drop them now, since reads there still succeed and failures
            // would never add up, and let the supervisor ask the sentinels.
            Ok(Err(e)) if self.is_moved_master(&e) => {
                self.errors.inc();
                if self.disconnect() {
                    self.log_problem("the Redis master was demoted (READONLY); asking the sentinels for the new one, serving verdicts from memory meanwhile");
                }
                None
            }
            Ok(Err(e)) if refuses_writes(&e) => {
                // Redis is there and answering: not a reason to stop reading.
                self.errors.inc();
                if !self.writes_refused.swap(true, Ordering::Relaxed) {
                    self.log_problem(&format!(
                        "Redis refuses writes ({}); verdicts are still read from it, new ones stay in this instance's memory",
                        e.code().unwrap_or("refused")
                    ));
                }
                None
            }
            Ok(Err(e)) => {
                self.record_failure(&format!("{what}: {e}"));
                None
            }
            Err(_) => {
                self.record_failure(&format!("{what}: no answer within {timeout:?}"));
                None
            }
        }
    }

    fn is_moved_master(&self, e: &RedisError) -> bool {
        e.code() == Some("READONLY") && self.topology.follows_failover()
    }

    /// Counts a failure; opens the breaker after enough in a row.
    pub fn record_failure(&self, problem: &str) {
        self.errors.inc();
        let n = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::debug!(problem, failures = n, "redis command failed");
        if n >= FAILURES_TO_OPEN && self.disconnect() {
            self.log_problem(&format!(
                "Redis unavailable ({problem}); serving verdicts from memory until it is back"
            ));
        }
    }

    /// Drops the connections; true if there were any (a state change).
    fn disconnect(&self) -> bool {
        let mut conns = self.conns.write().unwrap_or_else(|p| p.into_inner());
        let had = !conns.is_empty();
        conns.clear();
        had
    }

    /// Logs a problem at warn level unless it is the one logged last.
    pub fn log_problem(&self, message: &str) {
        let mut last = self.last_logged.lock().unwrap_or_else(|p| p.into_inner());
        if last.as_deref() != Some(message) {
            tracing::warn!(redis = %self.display_url, "{message}");
            *last = Some(message.to_string());
        }
    }

    /// Opens `max_connections` connections (asking the sentinels where
    /// the master is, or the cluster for its nodes) and checks them with
    /// PING. Returns where it connected, for the log.
    pub async fn connect(&self) -> Result<String, String> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.socket_timeout));
        // Each connection gets the connect and command timeouts; a
        // sentinel's or cluster's discovery counts as one more.
        let n = self.max_connections;
        let limit = (self.connect_timeout + self.socket_timeout) * (n as u32 + 1);
        let connected = match tokio::time::timeout(limit, self.topology.connect(&config, n)).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(describe(&e)),
            Err(_) => return Err(format!("no answer within {limit:?}")),
        };
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        *self.conns.write().unwrap_or_else(|p| p.into_inner()) = connected.conns;
        *self.pubsub.write().unwrap_or_else(|p| p.into_inner()) =
            Some((connected.pubsub, generation));
        self.failures.store(0, Ordering::Relaxed);
        *self.last_logged.lock().unwrap_or_else(|p| p.into_inner()) = None;
        Ok(connected.at)
    }

    /// Whether Redis refused the last write (out of memory, read-only).
    pub fn writes_refused(&self) -> bool {
        self.writes_refused.load(Ordering::Relaxed)
    }

    /// What a read has cost lately (GETs and the supervisor's PINGs), once
    /// measured.
    pub fn latency(&self) -> Option<Duration> {
        self.latency.average()
    }

    /// Counts a read given up after `waited` as a sample of at least that.
    pub fn note_slow_read(&self, waited: Duration) {
        self.latency.observe(waited);
    }

    /// The stored verdict and its remaining lifetime.
    pub async fn get(&self, key: &CacheKey) -> Option<(Verdict, Option<Duration>)> {
        let k = self.key(key);
        let at = k.clone();
        let started = Instant::now();
        let (raw, pttl): (Option<Vec<u8>>, i64) = self
            .run(self.socket_timeout, "GET", |mut c| async move {
                redis::pipe()
                    .get(&at)
                    .cmd("PTTL")
                    .arg(&at)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        self.latency.observe(started.elapsed());
        let raw = raw?;
        let json = match signing::check(self.signer.as_ref(), &k, &raw) {
            Checked::Good(json) => json,
            Checked::Forged => {
                if let Some(c) = &self.rejected {
                    c.inc();
                }
                self.log_problem("a verdict in Redis failed its signature check (cache.signing_key); ignoring it and scanning again");
                return None;
            }
        };
        let verdict = match serde_json::from_slice(json) {
            Ok(v) => v,
            Err(e) => {
                self.errors.inc();
                tracing::warn!(error = %e, "unreadable verdict in Redis; scanning again");
                return None;
            }
        };
        let ttl = u64::try_from(pttl).ok().map(Duration::from_millis);
        Some((verdict, ttl))
    }

    /// Stores a verdict with the cache TTL.
    pub async fn put(&self, key: &CacheKey, verdict: &Verdict) {
        let Ok(value) = serde_json::to_vec(verdict) else {
            return;
        };
        let (k, ttl) = (self.key(key), self.ttl_secs);
        let value = match &self.signer {
            Some(s) => s.sign(&k, value),
            None => value,
        };
        let written = self
            .run(self.socket_timeout, "SET", |mut c| async move {
                redis::cmd("SET")
                    .arg(&k)
                    .arg(value)
                    .arg("EX")
                    .arg(ttl)
                    .query_async::<()>(&mut c)
                    .await
            })
            .await;
        if written.is_some() && self.writes_refused.swap(false, Ordering::Relaxed) {
            *self.last_logged.lock().unwrap_or_else(|p| p.into_inner()) = None;
            tracing::info!(redis = %self.display_url, "Redis accepts writes again");
        }
    }

    /// Runs a Lua script (EVALSHA, loading it first where Redis lacks it)
    /// within the socket timeout; `None` when Redis is unavailable or the
    /// call failed (a failure counts toward the breaker).
    pub async fn invoke<T: redis::FromRedisValue>(
        &self,
        script: &redis::Script,
        keys: &[String],
        args: &[u64],
    ) -> Option<T> {
        self.run(self.socket_timeout, "EVALSHA", |mut c| async move {
            let mut call = script.prepare_invoke();
            for k in keys {
                call.key(k);
            }
            for a in args {
                call.arg(*a);
            }
            call.invoke_async(&mut c).await
        })
        .await
    }

    /// Round-trip time of a PING, or `None`.
    pub async fn ping(&self) -> Option<Duration> {
        let started = Instant::now();
        self.run(self.socket_timeout, "PING", |mut c| async move {
            redis::cmd("PING").query_async::<()>(&mut c).await
        })
        .await?;
        self.latency.observe(started.elapsed());
        Some(started.elapsed())
    }
}

/// A connection error in words an operator can act on.
pub fn describe(e: &RedisError) -> String {
    let text = e.to_string();
    let lower = text.to_lowercase();
    if lower.contains("wrongpass")
        || lower.contains("noauth")
        || lower.contains("authentication")
        || lower.contains("invalid password")
    {
        format!(
            "authentication failed: check redis.password / REDIS_PASSWORD (and redis.username) ({text})"
        )
    } else if e.is_connection_refusal() {
        format!("connection refused ({text})")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_is_built_from_parts_or_taken_whole() {
        let mut cfg = RedisConfig {
            host: "cache".into(),
            port: 6380,
            db: 2,
            password: Some("p@ss".into()),
            ..RedisConfig::default()
        };
        assert_eq!(
            connection_url(&cfg).expect("url").as_str(),
            "redis://:p%40ss@cache:6380/2"
        );
        cfg.ssl = true;
        cfg.username = Some("app".into());
        assert_eq!(
            connection_url(&cfg).expect("url").as_str(),
            "rediss://app:p%40ss@cache:6380/2"
        );
        cfg.url = Some("redis://other:1/3".into());
        assert_eq!(
            connection_url(&cfg).expect("url").as_str(),
            "redis://app:p%40ss@other:1/3",
            "URL wins, secrets fill in"
        );
        cfg.url = Some("redis://u:inurl@other:1/3".into());
        assert_eq!(
            connection_url(&cfg).expect("url").as_str(),
            "redis://u:inurl@other:1/3"
        );
    }
}
