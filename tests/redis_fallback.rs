//! Redis trouble never fails or stalls a request: absent at start, killed
//! under load, hung by SIGSTOP, restarted; L2 comes back by itself.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::{FakeOllama, RedisServer, client, eventually, get_json, redis_config, start_proxy};
use serde_json::json;

const SCANNERS: &str =
    "scanners:\n  input:\n    - {type: ban_substrings, substrings: [forbidden]}\n  output: []\n";

async fn chat(url: &str, text: &str) -> Result<u16, String> {
    let body =
        json!({"model": "m", "stream": false, "messages": [{"role": "user", "content": text}]});
    let resp = client()
        .post(format!("{url}/api/chat"))
        .json(&body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    Ok(resp.status().as_u16())
}

async fn health(url: &str, field: &str) -> serde_json::Value {
    get_json(&format!("{url}/cache/health")).await[field].clone()
}

/// Sends requests from 4 workers until `stop`; returns (ok, failed).
fn load(url: String, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<(usize, usize)> {
    tokio::spawn(async move {
        let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let workers = (0..4).map(|w| {
            let (url, stop, ok, failed) = (url.clone(), stop.clone(), ok.clone(), failed.clone());
            tokio::spawn(async move {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    match chat(&url, &format!("prompt {} from {w}", i % 7)).await {
                        Ok(200) => ok.fetch_add(1, Ordering::Relaxed),
                        _ => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        });
        futures_util::future::join_all(workers).await;
        (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed))
    })
}

#[tokio::test]
async fn redis_absent_at_start_then_started_brings_l2_back() {
    let mut redis = RedisServer::not_started();
    let fake = FakeOllama::start().await;
    let proxy = start_proxy(redis_config(&fake.url, &redis.url(), SCANNERS)).await;
    assert_eq!(chat(&proxy.url, "hello").await, Ok(200));
    assert_eq!(health(&proxy.url, "status").await, "degraded");
    assert_eq!(
        get_json(&format!("{}/cache/stats", proxy.url)).await["fallback_active"],
        true
    );

    redis.spawn();
    assert!(
        eventually(|| async { health(&proxy.url, "status").await == "healthy" }).await,
        "L2 reconnected by itself"
    );
    assert_eq!(chat(&proxy.url, "after redis came up").await, Ok(200));
    assert!(
        eventually(|| async { !redis.dump().await.is_empty() }).await,
        "new verdicts reach Redis"
    );
}

#[tokio::test]
async fn redis_killed_and_restarted_under_load_fails_no_request() {
    let mut redis = RedisServer::start();
    let fake = FakeOllama::start().await;
    let proxy = start_proxy(redis_config(&fake.url, &redis.url(), SCANNERS)).await;
    assert!(common::redis_connected(&proxy.url).await);
    let stop = Arc::new(AtomicBool::new(false));
    let running = load(proxy.url.clone(), stop.clone());

    tokio::time::sleep(Duration::from_millis(300)).await;
    redis.kill();
    assert!(eventually(|| async { health(&proxy.url, "status").await == "degraded" }).await);
    redis.spawn();
    assert!(
        eventually(|| async { health(&proxy.url, "status").await == "healthy" }).await,
        "L2 came back"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let (ok, failed) = running.await.unwrap();
    assert_eq!(failed, 0, "{ok} ok");
    assert!(ok > 20, "the load ran ({ok} requests)");
    // The load's prompts are all in L1 by now; a new one must reach Redis.
    assert_eq!(
        chat(&proxy.url, "a prompt never seen before").await,
        Ok(200)
    );
    assert!(
        eventually(|| async { !redis.dump().await.is_empty() }).await,
        "writes resumed on the new server"
    );
}

#[tokio::test]
async fn redis_hung_by_sigstop_opens_the_breaker_and_fails_no_request() {
    let redis = RedisServer::start();
    let fake = FakeOllama::start().await;
    let proxy = start_proxy(redis_config(&fake.url, &redis.url(), SCANNERS)).await;
    assert!(common::redis_connected(&proxy.url).await);
    let stop = Arc::new(AtomicBool::new(false));
    let running = load(proxy.url.clone(), stop.clone());

    tokio::time::sleep(Duration::from_millis(200)).await;
    redis.pause();
    assert!(
        eventually(|| async { health(&proxy.url, "status").await == "degraded" }).await,
        "breaker opened"
    );
    let errors = get_json(&format!("{}/cache/stats", proxy.url)).await["errors"]
        .as_u64()
        .unwrap();
    assert!(errors >= 3, "timeouts were counted: {errors}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    redis.resume();
    assert!(
        eventually(|| async { health(&proxy.url, "status").await == "healthy" }).await,
        "L2 came back after SIGCONT"
    );
    stop.store(true, Ordering::Relaxed);
    let (ok, failed) = running.await.unwrap();
    assert_eq!(failed, 0, "{ok} ok");
}

#[tokio::test]
async fn wrong_password_logs_clearly_and_serves_from_memory() {
    let redis = RedisServer::start_with_password("right-password");
    let fake = FakeOllama::start().await;
    let port = common::redis_server::free_port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_ollama-guard"))
        .env_clear()
        .env("PROXY_HOST", "127.0.0.1")
        .env("PROXY_PORT", port.to_string())
        .env("OLLAMA_URL", &fake.url)
        .env("CACHE_BACKEND", "redis")
        .env(
            "REDIS_URL",
            format!("redis://:wrong-password@127.0.0.1:{}/0", redis.port),
        )
        .env("REDIS_HEALTH_CHECK_INTERVAL", "0.1")
        .env("CONFIG_FILE", "/dev/null")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    assert!(
        eventually(|| async { client().get(format!("{url}/health")).send().await.is_ok() }).await
    );
    assert_eq!(chat(&url, "hello").await, Ok(200));
    assert_eq!(health(&url, "status").await, "degraded");
    tokio::time::sleep(Duration::from_millis(500)).await;
    child.start_kill().unwrap();
    let out = child.wait_with_output().await.unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("authentication failed"))
        .collect();
    assert_eq!(lines.len(), 1, "one clear line, not one per probe:\n{log}");
    assert!(
        lines[0].contains("REDIS_PASSWORD") && !lines[0].contains("wrong-password"),
        "{}",
        lines[0]
    );
}
