//! A Redis that answers slowly but within its timeouts (a delaying relay in
//! front of a real redis-server) must cost nothing: when a read would take
//! longer than the scan it saves, the text is scanned instead (and the
//! verdict still written); when the scan costs more, Redis is read.
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
