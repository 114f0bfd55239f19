//! Redis faults beyond "down" (that is `redis_fallback.rs`), each against a
//! real redis-server: a Redis slower than the scan it saves is not waited
//! on (a delaying relay in front of it), one faster is read; a Redis that
//! refuses writes is still read; a required Redis (`cache.backend: redis`)
//! fails `/ready`; `/cache/health` tells what its probe saw; L1 is dropped
//! after an outage that may have hidden a clear.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::slow_relay::SlowRelay;
use common::{FakeOllama, RedisServer, eventually, get_json, redis_config, start_proxy};
use serde_json::json;

const SLOW_REDIS: Duration = Duration::from_millis(150);

fn yaml(scan_millis: u64) -> String {
    format!(
        "guard: {{expose_cache_header: true}}\nscanners:\n  input: [{{type: delay, millis: {scan_millis}}}]\n  output: []\n"
    )
}

async fn tier(url: &str, text: &str) -> String {
    let body =
        json!({"model": "m", "stream": false, "messages": [{"role": "user", "content": text}]});
    let resp = common::post_json(url, "/api/chat", &body).await;
    assert_eq!(resp.status(), 200);
    resp.headers()["x-guard-cache"]
        .to_str()
        .unwrap()
        .to_string()
}

/// One instance on Redis directly, one behind the slow relay; `text` is
/// judged by the first (its verdict lands in Redis), then asked of the
/// second, which has learnt both costs from one earlier request.
async fn second_instance_tier(scan_millis: u64) -> (String, serde_json::Value) {
    let redis = RedisServer::start();
    let relay = SlowRelay::start(redis.port, SLOW_REDIS).await;
    let fake = FakeOllama::start().await;
    let fast = start_proxy(redis_config(&fake.url, &redis.url(), &yaml(scan_millis))).await;
    let mut cfg = redis_config(&fake.url, &relay.redis_url(), &yaml(scan_millis));
    cfg.redis.socket_timeout = 1.0;
    let slow = start_proxy(cfg).await;
    for p in [&fast, &slow] {
        assert!(common::redis_connected(&p.url).await);
    }
    assert_eq!(tier(&slow.url, "warm-up").await, "miss");
    assert_eq!(tier(&fast.url, "shared text").await, "miss");
    assert!(eventually(|| async { redis.dump().await.len() >= 2 }).await);
    let seen = tier(&slow.url, "shared text").await;
    let stats = get_json(&format!("{}/cache/stats", slow.url)).await;
    (seen, stats)
}

#[tokio::test]
async fn a_redis_slower_than_the_scan_is_not_waited_on() {
    let (seen, stats) = second_instance_tier(20).await;
    assert_eq!(
        seen, "miss",
        "scanned in 20 ms rather than read in 150: {stats}"
    );
    assert_eq!(stats["l2_skipped"], 1, "{stats}");
    assert!(stats["l2_latency_ms"].as_f64().unwrap() >= 100.0, "{stats}");
}

#[tokio::test]
async fn a_redis_faster_than_the_scan_is_read() {
    let (seen, stats) = second_instance_tier(400).await;
    assert_eq!(
        seen, "hit-l2",
        "read in 150 ms rather than scanned in 400: {stats}"
    );
    assert_eq!(stats["l2_skipped"], 0, "{stats}");
}

#[tokio::test]
async fn a_redis_that_refuses_writes_still_serves_reads_and_stays_in_use() {
    let redis = RedisServer::start();
    let fake = FakeOllama::start().await;
    let costly = yaml(200);
    let a = start_proxy(redis_config(&fake.url, &redis.url(), &costly)).await;
    let b = start_proxy(redis_config(&fake.url, &redis.url(), &costly)).await;
    for p in [&a, &b] {
        assert!(common::redis_connected(&p.url).await);
    }
    assert_eq!(tier(&a.url, "written before").await, "miss");
    assert!(eventually(|| async { !redis.dump().await.is_empty() }).await);
    // Out of memory under noeviction: every write is refused.
    let mut c = redis.connection().await;
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("1")
        .query_async::<()>(&mut c)
        .await
        .unwrap();
    for i in 0..5 {
        assert_eq!(tier(&b.url, &format!("new text {i}")).await, "miss");
    }
    let health = |url: String| async move { get_json(&format!("{url}/cache/health")).await };
    assert!(
        eventually(|| async { health(b.url.clone()).await["redis_writes"] == "refused" }).await
    );
    let h = health(b.url.clone()).await;
    assert_eq!(h["redis_connected"], true, "the breaker stays closed: {h}");
    assert_eq!(
        tier(&b.url, "written before").await,
        "hit-l2",
        "reads go on"
    );
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("0")
        .query_async::<()>(&mut c)
        .await
        .unwrap();
    assert_eq!(tier(&b.url, "after the memory came back").await, "miss");
    assert!(eventually(|| async { health(b.url.clone()).await["redis_writes"] == "ok" }).await);
}

#[tokio::test]
async fn a_required_redis_fails_readiness_and_an_optional_one_degrades_it() {
    let fake = FakeOllama::start().await;
    let gone = RedisServer::not_started();
    let required = start_proxy(redis_config(&fake.url, &gone.url(), "")).await;
    let optional = start_proxy(common::config(
        &fake.url,
        &format!(
            "cache: {{backend: auto}}\nredis: {{url: '{}'}}\n",
            gone.url()
        ),
    ))
    .await;
    let ready = |url: String| async move {
        let r = common::client()
            .get(format!("{url}/ready"))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (
            status,
            r.json::<serde_json::Value>().await.unwrap()["status"].clone(),
        )
    };
    assert_eq!(
        ready(required.url.clone()).await,
        (503, json!("unavailable"))
    );
    assert_eq!(ready(optional.url.clone()).await, (200, json!("degraded")));
}

#[tokio::test]
async fn health_reports_what_its_own_probe_saw() {
    let mut redis = RedisServer::start();
    let fake = FakeOllama::start().await;
    let mut cfg = redis_config(&fake.url, &redis.url(), &yaml(1));
    cfg.redis.health_check_interval = 30.0; // no background probe opens the breaker here
    let proxy = start_proxy(cfg).await;
    assert!(common::redis_connected(&proxy.url).await);
    redis.kill();
    let h = get_json(&format!("{}/cache/health", proxy.url)).await;
    assert_eq!(
        (h["status"].as_str(), h["redis_ping"].as_bool()),
        (Some("degraded"), Some(false)),
        "{h}"
    );
}

#[tokio::test]
async fn l1_is_dropped_after_an_outage_that_may_have_hidden_a_clear() {
    let mut redis = RedisServer::start();
    let fake = FakeOllama::start().await;
    let proxy = start_proxy(redis_config(&fake.url, &redis.url(), &yaml(1))).await;
    assert!(common::redis_connected(&proxy.url).await);
    assert_eq!(tier(&proxy.url, "kept in memory").await, "miss");
    assert_eq!(tier(&proxy.url, "kept in memory").await, "hit-l1");
    let stats = |url: String| async move { get_json(&format!("{url}/cache/stats")).await };
    redis.kill();
    let away = eventually(|| async {
        get_json(&format!("{}/cache/health", proxy.url)).await["redis_connected"] == false
    });
    assert!(away.await);
    assert!(
        stats(proxy.url.clone()).await["l1_size"].as_u64().unwrap() >= 1,
        "L1 serves while Redis is away"
    );
    redis.restart();
    assert!(common::redis_connected(&proxy.url).await);
    assert!(
        eventually(|| async { stats(proxy.url.clone()).await["l1_size"] == 0 }).await,
        "clears sent while this instance was cut off could not reach it"
    );
}

/// Instances subscribed to the clear channel of the Redis at `url`.
async fn listeners(redis: &RedisServer) -> u64 {
    let mut conn = redis.connection().await;
    let counts: Vec<(String, u64)> = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg("ollama-guard:clear")
        .query_async(&mut conn)
        .await
        .unwrap();
    counts[0].1
}

#[tokio::test]
async fn a_stopped_instance_leaves_redis() {
    let redis = RedisServer::start();
    let fake = FakeOllama::start().await;
    let cfg = || redis_config(&fake.url, &redis.url(), &yaml(1));
    let (staying, leaving) = (start_proxy(cfg()).await, start_proxy(cfg()).await);
    for p in [&staying, &leaving] {
        assert!(common::redis_connected(&p.url).await);
    }
    assert!(eventually(|| async { listeners(&redis).await == 2 }).await);
    drop(leaving);
    // Its supervisor and clear listener stop with the server: nothing of it
    // stays subscribed, nor comes back.
    assert!(
        eventually(|| async { listeners(&redis).await == 1 }).await,
        "the stopped instance still listens"
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(listeners(&redis).await, 1, "the stopped instance came back");
}
