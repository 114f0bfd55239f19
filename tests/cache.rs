//! The verdict cache end to end: L1 and L2 hits, promotion, TTLs, policy
//! keys, single-flight, two instances sharing and clearing, and what Redis
//! holds. Real redis-server processes on free ports.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{
    FakeOllama, RedisServer, client, config, eventually, get_json, redis_config, start_proxy,
};
use serde_json::{Value, json};

/// One costly input scanner (a stand-in for a guard model) and a cheap one.
const COSTLY: &str = "guard:\n  expose_cache_header: true\nscanners:\n  input:\n    - {type: delay, millis: 200}\n    - {type: ban_substrings, substrings: [forbidden]}\n  output: []\n";

async fn chat(url: &str, text: &str) -> reqwest::Response {
    let body =
        json!({"model": "m", "stream": false, "messages": [{"role": "user", "content": text}]});
    common::post_json(url, "/api/chat", &body).await
}

async fn tier(url: &str, text: &str) -> String {
    let resp = chat(url, text).await;
    assert_eq!(resp.status(), 200);
    resp.headers()["x-guard-cache"]
        .to_str()
        .unwrap()
        .to_string()
}

async fn stat(url: &str, name: &str) -> u64 {
    get_json(&format!("{url}/cache/stats")).await[name]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn memory_cache_scans_once_then_hits() {
    let fake = FakeOllama::start().await;
    let proxy = start_proxy(config(&fake.url, COSTLY)).await;
    assert_eq!(tier(&proxy.url, "what is rust?").await, "miss");
    assert_eq!(tier(&proxy.url, "what is rust?").await, "hit-l1");
    assert_eq!(tier(&proxy.url, "what is go?").await, "miss");
    let stats = get_json(&format!("{}/cache/stats", proxy.url)).await;
    assert_eq!(
        (
            stats["scans"].as_u64(),
            stats["l1_hits"].as_u64(),
            stats["misses"].as_u64()
        ),
        (Some(2), Some(1), Some(2))
    );
    assert_eq!(stats["backend"], "memory");
    assert_eq!(stats["hit_rate"], 33.33);
}

#[tokio::test]
async fn a_growing_conversation_only_scans_its_new_turn() {
    let fake = FakeOllama::start().await;
    let proxy = start_proxy(config(&fake.url, COSTLY)).await;
    // Longer than a seam's context, so each seam holds two messages only.
    let long = |s: String| format!("{s} {}", "and so on ".repeat(30));
    let mut messages = vec![json!({"role": "user", "content": long("hello".into())})];
    let mut scans = Vec::new();
    for turn in 0..3 {
        let body = json!({"model": "m", "stream": false, "messages": messages});
        common::post_json(&proxy.url, "/api/chat", &body).await;
        scans.push(stat(&proxy.url, "scans").await);
        messages.push(json!({"role": "assistant", "content": long(format!("answer {turn}"))}));
        messages.push(json!({"role": "user", "content": long(format!("question {turn}"))}));
    }
    // Turn 1 scans its one message. Turns 2 and 3 scan their two new
    // messages and the two new seams before them, each joined two ways.
    assert_eq!(scans, vec![1, 1 + 2 + 4, 1 + 2 * (2 + 4)]);
}

#[tokio::test]
async fn fifty_concurrent_identical_requests_scan_once() {
    let fake = FakeOllama::start().await;
    let proxy = start_proxy(config(&fake.url, COSTLY)).await;
    let requests = (0..50).map(|_| chat(&proxy.url, "the same prompt"));
    let replies = futures_util::future::join_all(requests).await;
    assert!(replies.iter().all(|r| r.status() == 200));
    assert_eq!(stat(&proxy.url, "scans").await, 1);
    assert_eq!(fake.call_count(), 50);
}

#[tokio::test]
async fn blocks_are_cached_too_and_errors_are_not() {
    let fake = FakeOllama::start().await;
    let proxy = start_proxy(config(&fake.url, COSTLY)).await;
    for expected in ["miss", "hit-l1"] {
        let resp = chat(&proxy.url, "a forbidden word").await;
        assert_eq!(resp.status(), 400);
        assert_eq!(resp.headers()["x-guard-cache"], expected);
    }
    assert_eq!(fake.call_count(), 0);
}

#[tokio::test]
async fn disabled_cache_scans_every_time() {
    let fake = FakeOllama::start().await;
    let proxy = start_proxy(config(
        &fake.url,
        &format!("{COSTLY}cache:\n  enabled: false\n"),
    ))
    .await;
    for _ in 0..2 {
        assert_eq!(tier(&proxy.url, "same").await, "off");
    }
    assert_eq!(stat(&proxy.url, "scans").await, 2);
    assert_eq!(
        get_json(&format!("{}/cache/health", proxy.url)).await["status"],
        "disabled"
    );
}

#[tokio::test]
async fn l1_entries_expire_after_the_ttl() {
    let fake = FakeOllama::start().await;
    let proxy = start_proxy(config(
        &fake.url,
        &format!("{COSTLY}cache:\n  backend: memory\n  ttl: 1\n"),
    ))
    .await;
    assert_eq!(tier(&proxy.url, "short lived").await, "miss");
    assert_eq!(tier(&proxy.url, "short lived").await, "hit-l1");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(tier(&proxy.url, "short lived").await, "miss");
}

#[tokio::test]
async fn verdicts_are_shared_through_redis_and_promoted_to_l1() {
    let redis = RedisServer::start();
    let fake = FakeOllama::start().await;
    let a = start_proxy(redis_config(&fake.url, &redis.url(), COSTLY)).await;
    let b = start_proxy(redis_config(&fake.url, &redis.url(), COSTLY)).await;
    for p in [&a, &b] {
        assert!(common::redis_connected(&p.url).await);
    }
    assert_eq!(tier(&a.url, "shared prompt").await, "miss");
    assert!(
        eventually(|| async { redis.dump().await.len() == 1 }).await,
        "the verdict reaches Redis"
    );
    assert_eq!(tier(&b.url, "shared prompt").await, "hit-l2");
    assert_eq!(tier(&b.url, "shared prompt").await, "hit-l1");
    assert_eq!(stat(&b.url, "scans").await, 0, "B never paid for the scan");
    let stats = get_json(&format!("{}/cache/stats", b.url)).await;
    assert_eq!(stats["backend"], "redis");
    assert_eq!(stats["l2_hits"], 1);
    assert!(
        stats["redis_info"]["total_keys"].as_u64().unwrap() >= 1,
        "{stats}"
    );
    assert!(
        stats["redis_info"]["connected_clients"].as_u64().unwrap() >= 2,
        "{stats}"
    );
}

#[tokio::test]
async fn redis_holds_hashes_and_verdicts_never_text() {
    let redis = RedisServer::start();
    let fake = FakeOllama::start().await;
    let yaml = "scanners:\n  input:\n    - {type: regex, mode: redact, patterns: ['sk-[a-z0-9]{10}']}\n  output:\n    - {type: ban_substrings, substrings: [zebra]}\n";
    let proxy = start_proxy(redis_config(&fake.url, &redis.url(), yaml)).await;
    assert!(common::redis_connected(&proxy.url).await);
    let prompts = [
        "Tell me about Quetzalcoatlus northropi",
        "my key is sk-abcdef1234 keep it safe",
    ];
    for p in prompts {
        assert_eq!(chat(&proxy.url, p).await.status(), 200);
    }
    assert!(eventually(|| async { redis.dump().await.len() >= 3 }).await);
    let dump = redis.dump().await;
    let everything: String = dump
        .iter()
        .map(|(k, v)| format!("{k} {}", String::from_utf8_lossy(v)))
        .collect();
    for word in [
        "Quetzalcoatlus",
        "northropi",
        "sk-abcdef1234",
        "abcdef1234",
        "keep it safe",
        "The sky is blue",
    ] {
        assert!(
            !everything.contains(word),
            "{word:?} found in Redis: {everything}"
        );
    }
    for (k, v) in &dump {
        let hex = k
            .strip_prefix("ollama-guard:verdict:")
            .unwrap_or_else(|| panic!("unexpected key {k}"));
        assert!(
            hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()),
            "{k}"
        );
        let verdict: Value = serde_json::from_slice(v).unwrap();
        assert!(verdict["allowed"].is_boolean(), "{verdict}");
    }
}

#[tokio::test]
async fn redis_entries_carry_the_ttl_and_expire() {
    let redis = RedisServer::start();
    let fake = FakeOllama::start().await;
    let mut cfg = redis_config(&fake.url, &redis.url(), COSTLY);
    cfg.cache.ttl = 1;
    let proxy = start_proxy(cfg).await;
    assert!(common::redis_connected(&proxy.url).await);
    tier(&proxy.url, "expiring").await;
    assert!(eventually(|| async { redis.dump().await.len() == 1 }).await);
    let mut c = redis.connection().await;
    let key = redis.dump().await[0].0.clone();
    let pttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut c)
        .await
        .unwrap();
    assert!((1..=1000).contains(&pttl), "pttl {pttl}");
    assert!(
        eventually(|| async { redis.dump().await.is_empty() }).await,
        "Redis expired the key"
    );
}

#[tokio::test]
async fn a_policy_change_never_serves_an_old_verdict() {
    let redis = RedisServer::start();
    let fake = FakeOllama::start().await;
    let lenient = start_proxy(redis_config(
        &fake.url,
        &redis.url(),
        "scanners:\n  input:\n    - {type: ban_substrings, substrings: [apples]}\n  output: []\n",
    ))
    .await;
    let strict = start_proxy(redis_config(
        &fake.url,
        &redis.url(),
        "guard:\n  expose_cache_header: true\nscanners:\n  input:\n    - {type: ban_substrings, substrings: [pears]}\n  output: []\n",
    ))
    .await;
    for p in [&lenient, &strict] {
        assert!(common::redis_connected(&p.url).await);
    }
    assert_eq!(chat(&lenient.url, "I like pears").await.status(), 200);
    assert!(eventually(|| async { redis.dump().await.len() == 1 }).await);
    let resp = chat(&strict.url, "I like pears").await;
    assert_eq!(resp.status(), 400, "the other policy scanned for itself");
    assert_eq!(resp.headers()["x-guard-cache"], "miss");
}

#[tokio::test]
async fn clear_needs_the_admin_token_and_reaches_every_instance() {
    let redis = RedisServer::start();
    let fake = FakeOllama::start().await;
    let a = start_proxy(redis_config(&fake.url, &redis.url(), COSTLY)).await;
    let b = start_proxy(redis_config(&fake.url, &redis.url(), COSTLY)).await;
    for p in [&a, &b] {
        assert!(common::redis_connected(&p.url).await);
    }
    // Another deployment's key under another prefix must survive the clear.
    let mut c = redis.connection().await;
    redis::cmd("SET")
        .arg("other-app:verdict:1")
        .arg("x")
        .query_async::<()>(&mut c)
        .await
        .unwrap();
    tier(&a.url, "to be cleared").await;
    assert_eq!(tier(&b.url, "to be cleared").await, "hit-l2");
    assert_eq!(stat(&b.url, "l1_size").await, 1);

    let clear = |token: Option<&str>| {
        let mut req = client().post(format!("{}/cache/clear", a.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    assert_eq!(clear(None).await.unwrap().status(), 401);
    assert_eq!(
        clear(Some("wrong-token-wrong-token"))
            .await
            .unwrap()
            .status(),
        401
    );
    let resp = clear(Some("test-admin-token-0123")).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["redis"]["keys_deleted"], 1, "{body}");
    assert!(
        body["redis"]["instances_notified"].as_u64().unwrap() >= 2,
        "{body}"
    );

    let keys: Vec<String> = redis.dump().await.into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, vec!["other-app:verdict:1".to_string()]);
    assert!(
        eventually(|| async { stat(&b.url, "l1_size").await == 0 }).await,
        "B's memory was cleared over pub/sub"
    );
    assert_eq!(tier(&b.url, "to be cleared").await, "miss");
}

#[tokio::test]
async fn clear_is_refused_when_no_admin_token_is_configured() {
    let fake = FakeOllama::start().await;
    let proxy = start_proxy(config(&fake.url, COSTLY)).await;
    let resp = client()
        .post(format!("{}/cache/clear", proxy.url))
        .bearer_auth("anything-anything")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let err: Value = resp.json().await.unwrap();
    assert!(
        err["error"].as_str().unwrap().contains("ADMIN_TOKEN"),
        "{err}"
    );
}

#[tokio::test]
async fn health_and_stats_have_the_documented_shape() {
    let redis = RedisServer::start();
    let fake = FakeOllama::start().await;
    let proxy = start_proxy(redis_config(&fake.url, &redis.url(), COSTLY)).await;
    assert!(
        eventually(|| async {
            get_json(&format!("{}/cache/health", proxy.url)).await["status"] == "healthy"
        })
        .await
    );
    let health = get_json(&format!("{}/cache/health", proxy.url)).await;
    assert_eq!(health["backend"], "redis");
    assert_eq!(
        (
            health["redis_connected"].as_bool(),
            health["redis_ping"].as_bool()
        ),
        (Some(true), Some(true))
    );
    assert!(health["latency_ms"].as_f64().unwrap() >= 0.0);
    let stats = get_json(&format!("{}/cache/stats", proxy.url)).await;
    for key in [
        "backend",
        "hits",
        "misses",
        "hit_rate",
        "total_requests",
        "redis_info",
        "l1_hits",
        "l2_hits",
        "errors",
        "fallback_active",
        "l1_size",
        "ttl_seconds",
        "key_prefix",
    ] {
        assert!(stats.get(key).is_some(), "missing {key}: {stats}");
    }
    for key in ["connected_clients", "used_memory", "total_keys"] {
        assert!(
            stats["redis_info"].get(key).is_some(),
            "missing redis_info.{key}: {stats}"
        );
    }
    assert_eq!(
        (stats["ttl_seconds"].as_u64(), stats["key_prefix"].as_str()),
        (Some(3600), Some("ollama-guard:"))
    );
}
