//! The accept loop: HTTP/1.1 connections served by hyper with the limits
//! `axum::serve` has no knob for, on one thread per core.
//!
//! Each worker thread runs a single-threaded Tokio runtime and accepts from
//! the same listening socket; a connection, the tasks it spawns and its
//! upstream connections (one client per worker, see [`crate::upstream`])
//! stay on the thread that accepted it. A request then never wakes another
//! thread: under load, the cross-thread wake-ups of a work-stealing runtime
//! cost a fifth of the proxy's CPU (issue 11's profile; nginx and Envoy are
//! built the same way). Scans of big texts and the classifier still run on
//! threads of their own (`scan::pool`, `scan::classifier`).
//!
//! A connection that has not sent a whole request head within
//! `server.header_read_timeout_secs` is closed (this also ends idle
//! keep-alive connections after that long), and at most
//! `server.max_connections` are open at once over all workers: the next one
//! waits in the kernel's backlog until one closes. On shutdown every worker
//! stops accepting, asks each of its connections to finish its request in
//! flight, and ends when all have closed.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot, watch};
use tower::ServiceExt;

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
    /// Worker threads, each with its own runtime (at least one).
    pub workers: usize,
}

/// Serves `app` until `shutdown` completes and every connection has closed.
/// Dropping the returned future stops the workers the same way.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let listener = listener.into_std()?;
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut ended = Vec::new();
    for worker in 0..limits.workers.max(1) {
        let (listener, app, open, stop) = (
            listener.try_clone()?,
            app.clone(),
            open.clone(),
            stop_rx.clone(),
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (ended_tx, ended_rx) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name(format!("guard-worker-{worker}"))
            .spawn(move || {
                crate::upstream::enter_worker(worker);
                runtime.block_on(async move {
                    match TcpListener::from_std(listener) {
                        Ok(listener) => accept_loop(listener, app, limits, open, stop).await,
                        Err(e) => tracing::error!(error = %e, worker, "worker cannot listen"),
                    }
                });
                drop(ended_tx);
            })?;
        ended.push(ended_rx);
    }
    drop(listener);
    shutdown.await;
    let _ = stop_tx.send(true);
    for worker in ended {
        let _ = worker.await;
    }
    Ok(())
}

/// One worker's loop: accepts until told to stop (or the stop sender is
/// gone), then waits for its connections to close.
async fn accept_loop(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    open: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
) {
    // Each connection task holds a receiver; closed() says all are gone.
    let (done_tx, done_rx) = watch::channel(());
    let told = stop.clone();
    let stopped = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    tokio::pin!(stopped);
    loop {
        let permit = tokio::select! {
            permit = open.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut stopped => break,
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
            () = &mut stopped => break,
        };
        // Streams are many small writes: without TCP_NODELAY each token
        // frame can wait out the peer's delayed ACK (40 ms on Linux). Ollama
        // (Go) sets it by default; so must a drop-in replacement.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        let service = TowerToHyperService::new(
            app.clone()
                .map_request(|req: hyper::Request<Incoming>| req.map(Body::new))
                .map_err(|e: Infallible| match e {}),
        );
        let (mut stop, done) = (told.clone(), done_rx.clone());
        tokio::spawn(async move {
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
            drop((permit, done));
        });
    }
    drop(listener);
    drop(done_rx);
    done_tx.closed().await;
}
