//! Kept-alive connections to Ollama, one pool per server worker.
//!
//! hyper's own connection API (`client::conn::http1`) with a list of idle
//! connections. hyper-util's pooled client did the same for any number of
//! hosts: each request hashed its scheme and authority (SipHash) to find a
//! pool, built an absolute URI to turn back into origin form, and checked
//! its connection out through a future of its own. Here there is one host,
//! so a request takes the newest idle connection, and its response body
//! gives the connection back when it has been read to its end (5% of a
//! whole request's instructions; see the README's Benchmarks).
//!
//! - A connection goes back only after its response body was read whole;
//!   one whose body was dropped half-read is closed by hyper.
//! - A connection idle for `idle_timeout` is closed: by a sweep every
//!   `idle_timeout` while anything is idle (so within twice that), or
//!   sooner when a checkout meets it.
//! - A request that a kept-alive connection could not even start sending
//!   (it closed in between) is sent again on another: it never reached
//!   Ollama. Once a request is written it is never sent twice.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use tower::ServiceExt;

/// Why a request got no response.
#[derive(Debug)]
pub enum SendError {
    /// No connection could be made (refused, DNS, TLS, connect timeout).
    Connect(Box<dyn std::error::Error + Send + Sync>),
    /// The connection failed during the exchange.
    Exchange(hyper::Error),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Connect(e) => write!(f, "connect: {e}"),
            SendError::Exchange(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for SendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SendError::Connect(e) => Some(e.as_ref()),
            SendError::Exchange(e) => Some(e),
        }
    }
}

pub struct Pool {
    connector: HttpsConnector<HttpConnector>,
    /// Where connections go (scheme and authority; the path is unused).
    target: Uri,
    idle: Mutex<Vec<Idle>>,
    idle_timeout: Duration,
    /// A sweep task is waiting (one at a time).
    sweeping: AtomicBool,
}

struct Idle {
    sender: SendRequest<Body>,
    since: Instant,
}

impl Idle {
    /// Closed by the server, or idle for `timeout` by `now`: to be dropped.
    fn stale(&self, now: Instant, timeout: Duration) -> bool {
        self.sender.is_closed() || now - self.since >= timeout
    }
}

/// A connection lent to one request, given back by [`Lease::give_back`]
/// when its response has been read whole; dropped otherwise.
pub struct Lease {
    sender: SendRequest<Body>,
    pool: Weak<Pool>,
}

impl Lease {
    pub fn give_back(self) {
        if let Some(pool) = self.pool.upgrade() {
            pool.check_in(self.sender);
        }
    }
}

impl Pool {
    pub fn new(
        connector: HttpsConnector<HttpConnector>,
        target: Uri,
        idle_timeout: Duration,
    ) -> Arc<Self> {
        Arc::new(Self {
            connector,
            target,
            idle: Mutex::new(Vec::new()),
            idle_timeout,
            sweeping: AtomicBool::new(false),
        })
    }

    /// Sends `request` (origin-form URI, `Host` set) and waits for the
    /// response head.
    pub async fn send(
        self: &Arc<Self>,
        mut request: Request<Body>,
    ) -> Result<(Response<Incoming>, Lease), SendError> {
        loop {
            let (mut sender, reused) = match self.check_out() {
                Some(sender) => (sender, true),
                // Boxed: a connect future is large (DNS, TCP, TLS, the
                // handshake), and every request's future would carry its
                // room and be copied with it, for a call that is rare.
                None => (Box::pin(self.connect()).await?, false),
            };
            match sender.try_send_request(request).await {
                Ok(response) => {
                    let lease = Lease {
                        sender,
                        pool: Arc::downgrade(self),
                    };
                    return Ok((response, lease));
                }
                Err(mut e) => match e.take_message() {
                    // Not a byte of it was written: the kept-alive
                    // connection closed first. Again, on another one.
                    Some(unsent) if reused => request = unsent,
                    _ => return Err(SendError::Exchange(e.into_error())),
                },
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Idle>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The most recently used idle connection that can take a request,
    /// looked for from the newest; closed and expired ones met on the way
    /// are dropped. Usually the newest is taken at once, however many
    /// are idle after a burst: the sweep clears the rest.
    fn check_out(&self) -> Option<SendRequest<Body>> {
        let mut idle = self.lock();
        let now = Instant::now();
        let mut at = idle.len();
        while at > 0 {
            at -= 1;
            let c = &idle[at];
            if c.stale(now, self.idle_timeout) {
                idle.remove(at);
            } else if c.sender.is_ready() {
                return Some(idle.remove(at).sender);
            }
        }
        None
    }

    fn check_in(self: &Arc<Self>, sender: SendRequest<Body>) {
        if sender.is_closed() {
            return;
        }
        let since = Instant::now();
        self.lock().push(Idle { sender, since });
        self.sweep_later();
    }

    fn drop_stale(&self, idle: &mut Vec<Idle>, now: Instant) {
        idle.retain(|c| !c.stale(now, self.idle_timeout));
    }

    /// Closes what is still idle after `idle_timeout`, and again while
    /// anything is idle: without traffic nobody checks out.
    fn sweep_later(self: &Arc<Self>) {
        if tokio::runtime::Handle::try_current().is_err()
            || self.sweeping.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let pool = Arc::downgrade(self);
        let every = self.idle_timeout;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(pool) = pool.upgrade() else { return };
                let mut idle = pool.lock();
                pool.drop_stale(&mut idle, Instant::now());
                if idle.is_empty() {
                    // Under the lock: a check-in after this starts a sweep.
                    pool.sweeping.store(false, Ordering::Release);
                    return;
                }
            }
        });
    }

    /// A new connection, driven by a task on this thread's runtime.
    async fn connect(&self) -> Result<SendRequest<Body>, SendError> {
        let io = self
            .connector
            .clone()
            .oneshot(self.target.clone())
            .await
            .map_err(SendError::Connect)?;
        let (sender, connection) = http1::handshake(io).await.map_err(SendError::Exchange)?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "upstream connection ended");
            }
        });
        Ok(sender)
    }

    /// Where its connections go (tests).
    #[cfg(test)]
    pub fn target(&self) -> &Uri {
        &self.target
    }

    /// Idle connections now (tests).
    #[cfg(test)]
    pub fn idle_count(&self) -> usize {
        let mut idle = self.lock();
        self.drop_stale(&mut idle, Instant::now());
        idle.len()
    }
}

#[cfg(test)]
#[path = "pool_tests.rs"]
mod tests;
