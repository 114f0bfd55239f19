//! Where scans run. A text of more than [`INLINE_BYTES`] is scanned on a
//! runtime of its own (`guard-scan` threads, one per core), so however much
//! one client sends, the workers that accept connections, answer `/health`
//! and relay other clients' streams stay free. Smaller texts are scanned in
//! place: every built-in scanner takes well under a millisecond on 16 KB
//! (`bench/scanners.sh`), less than the hop to another thread would cost a
//! stream chunk.
//!
//! Every scan has a time budget (`guard.scan_timeout_secs`); over it is a
//! scanner error named `scan_budget`, so `guard.fail_mode` decides, never a
//! stall. A scan nobody waits for any more (the client left) is dropped at
//! its next await; CPU work already running finishes on the scan threads.

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::runtime::Runtime;

use super::pipeline::{Pipeline, Scanned};
use super::{ScanError, Turn};

/// Texts up to this size are scanned on the calling task.
pub const INLINE_BYTES: usize = 16 * 1024;

/// The name scan errors carry when the budget ran out.
pub const BUDGET: &str = "scan_budget";

#[derive(Clone, Debug)]
pub struct ScanPool {
    budget: Duration,
}

impl ScanPool {
    pub fn new(budget: Duration) -> Self {
        Self { budget }
    }

    /// Scans `text` with `pipeline` within the budget: in place when the
    /// text is small, on the scan threads otherwise.
    pub async fn scan(&self, pipeline: &Arc<Pipeline>, text: &str) -> Result<Scanned, ScanError> {
        self.scan_turn(pipeline, text, &Turn::Prompt).await
    }

    /// [`ScanPool::scan`] for `text` as `turn` of a conversation.
    pub async fn scan_turn(
        &self,
        pipeline: &Arc<Pipeline>,
        text: &str,
        turn: &Turn,
    ) -> Result<Scanned, ScanError> {
        if text.len() <= INLINE_BYTES {
            return self.within(pipeline.scan_turn(text, turn)).await;
        }
        let (pipeline, text, turn) = (pipeline.clone(), text.to_owned(), turn.clone());
        self.off_thread(async move { pipeline.scan_turn(&text, &turn).await })
            .await
    }

    fn over(&self) -> ScanError {
        ScanError {
            scanner: BUDGET.into(),
            message: format!(
                "scanning took longer than guard.scan_timeout_secs ({} s)",
                self.budget.as_secs_f64()
            ),
        }
    }

    async fn within<F, T>(&self, scan: F) -> Result<T, ScanError>
    where
        F: Future<Output = Result<T, ScanError>>,
    {
        tokio::time::timeout(self.budget, scan)
            .await
            .unwrap_or_else(|_| Err(self.over()))
    }

    async fn off_thread<F, T>(&self, scan: F) -> Result<T, ScanError>
    where
        F: Future<Output = Result<T, ScanError>> + Send + 'static,
        T: Send + 'static,
    {
        let task = runtime()?.spawn(scan);
        let _abort = AbortOnDrop(task.abort_handle());
        match tokio::time::timeout(self.budget, task).await {
            Ok(Ok(result)) => result,
            Ok(Err(e)) => Err(ScanError {
                scanner: BUDGET.into(),
                message: format!("scan task failed: {e}"),
            }),
            Err(_) => Err(self.over()),
        }
    }
}

/// Cancels the scan task when its caller stops waiting.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The scan runtime, started on first use and kept for the process.
fn runtime() -> Result<&'static Runtime, ScanError> {
    static RT: OnceLock<Result<Runtime, String>> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(std::thread::available_parallelism().map_or(1, |n| n.get()))
            .thread_name("guard-scan")
            // I/O too: a guard model's scan is an HTTP call.
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the scan threads: {e}"))
    })
    .as_ref()
    .map_err(|e| ScanError {
        scanner: BUDGET.into(),
        message: e.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn big_texts_are_scanned_off_the_calling_thread() {
        let pool = ScanPool::new(Duration::from_secs(10));
        let caller = std::thread::current().id();
        let small = pool
            .within(async move { Ok(std::thread::current().id()) })
            .await
            .expect("scans");
        assert_eq!(small, caller);
        let big = pool
            .off_thread(async move { Ok(std::thread::current().id()) })
            .await
            .expect("scans");
        assert_ne!(big, caller);
        // And the size decides which: a real pipeline over both sizes.
        let p = Arc::new(Pipeline::new(Vec::new()));
        assert!(pool.scan(&p, &"x".repeat(INLINE_BYTES + 1)).await.is_ok());
    }

    #[tokio::test]
    async fn over_budget_is_a_scan_error() {
        let pool = ScanPool::new(Duration::from_millis(50));
        let err = pool
            .off_thread(async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok(())
            })
            .await
            .expect_err("over budget");
        assert_eq!(err.scanner, BUDGET);
        assert!(err.message.contains("scan_timeout_secs"), "{}", err.message);
        let err = pool
            .within(async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok(())
            })
            .await
            .expect_err("over budget inline too");
        assert_eq!(err.scanner, BUDGET);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_busy_scan_leaves_the_caller_runtime_free() {
        // The caller's runtime has one thread; a scan spinning for 300 ms on
        // the scan threads must not keep a second task there from running.
        let pool = ScanPool::new(Duration::from_secs(10));
        let spin = crate::scan::delay::Config {
            millis: 300,
            busy: true,
            ..Default::default()
        }
        .build()
        .expect("delay");
        let scan = tokio::spawn(async move {
            pool.off_thread(async move {
                crate::scan::Scanner::scan(&spin, "x")
                    .await
                    .map_err(|message| ScanError {
                        scanner: "delay".into(),
                        message,
                    })
            })
            .await
        });
        let ticked = tokio::spawn(async { 1 }).await.expect("ran");
        assert_eq!(ticked, 1);
        assert!(
            !scan.is_finished(),
            "the other task ran while the scan was busy"
        );
        scan.await.expect("joined").expect("scanned");
    }

    #[tokio::test]
    async fn a_scan_nobody_waits_for_is_cancelled() {
        let pool = ScanPool::new(Duration::from_secs(10));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let waiting = pool.off_thread(async move {
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(tx);
            Ok(())
        });
        // Given up at once: the task is aborted, so its sender is dropped
        // without the 30 s sleep.
        let _ = tokio::time::timeout(Duration::from_millis(20), waiting).await;
        let dropped = tokio::time::timeout(Duration::from_secs(5), rx).await;
        assert!(
            matches!(dropped, Ok(Err(_))),
            "the scan task was not aborted"
        );
    }
}
