//! The accept loop: HTTP/1.1 connections served by hyper with the limits
//! `axum::serve` has no knob for, on one thread per core.
//!
//! One loop accepts and hands each connection to the worker serving the
//! fewest; each worker thread runs a single-threaded Tokio runtime, and a
//! connection, the tasks it spawns and its upstream connections (one client
//! per worker, see [`crate::upstream`]) stay on that thread. A request then
//! never wakes another thread: under load, the cross-thread wake-ups of a
//! work-stealing runtime cost a fifth of the proxy's CPU (issue 11's
//! profile; nginx and Envoy are built the same way). Scans of big texts and
//! the classifier still run on threads of their own (`scan::pool`,
//! `scan::classifier`), big bodies are parsed on the blocking pool.
//!
//! A connection that has not sent a whole request head within
//! `server.header_read_timeout_secs` is closed (this also ends idle
//! keep-alive connections after that long), and at most
//! `server.max_connections` are open at once: the next one waits in the
//! kernel's backlog until one closes. On shutdown the loop stops accepting,
//! every connection is asked to finish its request in flight, and `serve`
//! returns when all have closed.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};
use tower::ServiceExt;

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
    /// Worker threads, each with its own runtime (at least one).
    pub workers: usize,
}

/// An accepted connection on its way to a worker.
struct Accepted {
    tcp: std::net::TcpStream,
    permit: OwnedSemaphorePermit,
}

/// The accept loop's handle on one worker.
struct Worker {
    inbox: mpsc::UnboundedSender<Accepted>,
    /// Connections the worker serves now.
    open: Arc<AtomicUsize>,
    ended: oneshot::Receiver<()>,
}

/// Serves `app` until `shutdown` completes and every connection has closed.
/// Dropping the returned future stops the workers the same way.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let workers = (0..limits.workers.max(1))
        .map(|i| start_worker(i, app.clone(), limits, stop_rx.clone()))
        .collect::<std::io::Result<Vec<_>>>()?;
    let open = Arc::new(Semaphore::new(limits.max_connections));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = open.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    // Out of file descriptors and the like: wait, not spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(least) = workers
            .iter()
            .min_by_key(|w| w.open.load(Ordering::Relaxed))
        else {
            break;
        };
        // A tokio stream belongs to the runtime that registered it: the
        // worker registers it again with its own.
        match tcp.into_std() {
            Ok(tcp) => {
                least.open.fetch_add(1, Ordering::Relaxed);
                if least.inbox.send(Accepted { tcp, permit }).is_err() {
                    least.open.fetch_sub(1, Ordering::Relaxed);
                }
            }
            Err(e) => tracing::debug!(error = %e, "could not hand a connection over"),
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    for worker in workers {
        drop(worker.inbox);
        let _ = worker.ended.await;
    }
    Ok(())
}

fn start_worker(
    index: usize,
    app: Router,
    limits: Limits,
    stop: watch::Receiver<bool>,
) -> std::io::Result<Worker> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (inbox, connections) = mpsc::unbounded_channel();
    let (ended_tx, ended) = oneshot::channel::<()>();
    let open = Arc::new(AtomicUsize::new(0));
    let count = open.clone();
    std::thread::Builder::new()
        .name(format!("guard-worker-{index}"))
        .spawn(move || {
            crate::upstream::enter_worker(index);
            runtime.block_on(work(connections, app, limits, count, stop));
            drop(ended_tx);
        })?;
    Ok(Worker { inbox, open, ended })
}

/// One worker: serves the connections handed to it until the accept loop
/// is gone, then waits for them to close.
async fn work(
    mut connections: mpsc::UnboundedReceiver<Accepted>,
    app: Router,
    limits: Limits,
    open: Arc<AtomicUsize>,
    stop: watch::Receiver<bool>,
) {
    let heartbeat = tokio::spawn(heartbeat());
    // Each connection task holds a receiver; closed() says all are gone.
    let (done_tx, done_rx) = watch::channel(());
    while let Some(Accepted { tcp, permit }) = connections.recv().await {
        let tcp = match TcpStream::from_std(tcp) {
            Ok(tcp) => tcp,
            Err(e) => {
                tracing::debug!(error = %e, "could not register a connection");
                open.fetch_sub(1, Ordering::Relaxed);
                continue;
            }
        };
        let (stop, done, open) = (stop.clone(), done_rx.clone(), open.clone());
        tokio::spawn(connection(tcp, app.clone(), limits, stop, move || {
            open.fetch_sub(1, Ordering::Relaxed);
            drop((permit, done));
        }));
    }
    drop(done_rx);
    done_tx.closed().await;
    heartbeat.abort();
}

/// How often a worker's timer wheel wakes on its own (see [`heartbeat`]).
const HEARTBEAT: Duration = Duration::from_secs(1);

/// Keeps a timer no more than [`HEARTBEAT`] away in the worker's wheel,
/// so that arming a longer one does not wake the worker's own event loop.
///
/// Tokio's timer driver writes to the runtime's eventfd whenever a timer is
/// set to fire before every other one (tokio#5207): needed when the driver
/// sleeps on another thread, but on a worker it is the thread that sets the
/// timer, awake. Every request sets such timers (the request head's read
/// timeout, the upstream's), so every request paid a `write` and one more
/// `epoll_wait`, returning at once. With this timer pending, none of ours
/// is the earliest: the wheel wakes once a second instead.
async fn heartbeat() {
    loop {
        tokio::time::sleep(HEARTBEAT).await;
    }
}

/// Serves one connection; `closed` runs when it is over.
async fn connection(
    tcp: TcpStream,
    app: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
    closed: impl FnOnce(),
) {
    // Streams are many small writes: without TCP_NODELAY each token frame
    // can wait out the peer's delayed ACK (40 ms on Linux). Ollama (Go) sets
    // it by default; so must a drop-in replacement.
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "could not set TCP_NODELAY");
    }
    // The peer's address, for the network rules (`access::net`).
    let peer = tcp.peer_addr().ok().map(axum::extract::ConnectInfo);
    let service = TowerToHyperService::new(
        app.map_request(move |req: hyper::Request<Incoming>| {
            let mut req = req.map(Body::new);
            if let Some(peer) = peer {
                req.extensions_mut().insert(peer);
            }
            req
        })
        .map_err(|e: Infallible| match e {}),
    );
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .serve_connection(TokioIo::new(tcp), service)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        }
        _ = async { stop.wait_for(|s| *s).await.map(|_| ()) } => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
    closed();
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use super::*;

    /// Write calls this thread has made (`syscw` of /proc/thread-self/io:
    /// Linux, as the proxy is built for).
    fn writes() -> u64 {
        let io = std::fs::read_to_string("/proc/thread-self/io").expect("/proc/thread-self/io");
        io.lines()
            .find_map(|l| l.strip_prefix("syscw: "))
            .and_then(|n| n.trim().parse().ok())
            .expect("syscw")
    }

    /// Write calls made by arming ten 30-second timers on a worker's kind
    /// of runtime, after it has slept once (so its wheel knows its next
    /// wake), with or without the heartbeat.
    fn writes_arming_timers(with_heartbeat: bool) -> u64 {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            if with_heartbeat {
                tokio::spawn(heartbeat());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
            let before = writes();
            for _ in 0..10 {
                let mut timer = pin!(tokio::time::sleep(Duration::from_secs(30)));
                // One poll arms it, as a request's read timeout is armed.
                let pending = timer.as_mut().poll(&mut Context::from_waker(Waker::noop()));
                assert_eq!(pending, Poll::Pending);
            }
            writes() - before
        })
    }

    #[test]
    fn with_the_heartbeat_arming_a_timer_writes_nothing() {
        // Without it, tokio wakes its own event loop for each timer (if
        // this ever fails, tokio#5207 is fixed and the heartbeat can go).
        assert!(writes_arming_timers(false) >= 10);
        assert_eq!(writes_arming_timers(true), 0);
    }
}
