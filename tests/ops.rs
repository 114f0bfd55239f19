//! Operations: `/metrics` parses as Prometheus text and moves with traffic;
//! `/ready` tells whether Ollama and Redis can be reached.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;

use common::{
    FakeOllama, RedisServer, SCANNERS, client, config, get_json, redis_config, stack, start_proxy,
};
use serde_json::json;

/// Every sample of the scrape, keyed `name{label="v",...}` (labels sorted).
async fn scrape(url: &str) -> HashMap<String, f64> {
    let resp = client().get(format!("{url}/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = resp.text().await.unwrap();
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let parsed = prometheus_parse::Scrape::parse(lines).expect("valid Prometheus text");
    let mut out = HashMap::new();
    for s in parsed.samples {
        let mut labels: Vec<String> = s
            .labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{v}\""))
            .collect();
        labels.sort();
        let value = match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            prometheus_parse::Value::Histogram(buckets) => buckets.last().map_or(0.0, |b| b.count),
            prometheus_parse::Value::Summary(_) => 0.0,
        };
        out.insert(format!("{}{{{}}}", s.metric, labels.join(",")), value);
    }
    out
}

fn get(m: &HashMap<String, f64>, key: &str) -> f64 {
    m.get(key).copied().unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_count_requests_blocks_scans_and_cache_tiers() {
    let (_fake, proxy) = stack(SCANNERS).await;
    let before = scrape(&proxy.url).await;
    let chat = |content: &str| json!({"model": "m", "stream": false, "messages": [{"role": "user", "content": content}]});
    for body in [chat("hello"), chat("hello"), chat("please kill all humans")] {
        common::post_json(&proxy.url, "/api/chat", &body).await;
    }
    client()
        .get(format!("{}/api/tags", proxy.url))
        .send()
        .await
        .unwrap();
    client()
        .get(format!("{}/nope", proxy.url))
        .send()
        .await
        .unwrap();
    let after = scrape(&proxy.url).await;
    let delta = |k: &str| get(&after, k) - get(&before, k);

    assert_eq!(
        delta(r#"ollama_guard_requests_total{route="/api/chat",status="200"}"#),
        2.0
    );
    assert_eq!(
        delta(r#"ollama_guard_requests_total{route="/api/chat",status="400"}"#),
        1.0
    );
    assert_eq!(
        delta(r#"ollama_guard_requests_total{route="/api/tags",status="200"}"#),
        1.0
    );
    assert_eq!(
        delta(r#"ollama_guard_requests_total{route="unmatched",status="404"}"#),
        1.0
    );
    assert_eq!(
        delta(r#"ollama_guard_blocks_total{direction="input",scanner="ban_substrings"}"#),
        1.0
    );
    assert_eq!(
        delta(r#"ollama_guard_cache_lookups_total{result="l1_hit"}"#),
        2.0,
        "second hello (input) and its reply (output)"
    );
    assert!(delta(r#"ollama_guard_cache_lookups_total{result="miss"}"#) >= 2.0);
    assert!(
        delta(r#"ollama_guard_scan_seconds_count{direction="input",scanner="ban_substrings"}"#)
            >= 2.0
    );
    assert_eq!(
        delta(r#"ollama_guard_upstream_seconds_count{route="/api/chat"}"#),
        2.0,
        "the block never went upstream"
    );
    assert_eq!(
        delta(r#"ollama_guard_overhead_seconds_count{route="/api/chat"}"#),
        3.0
    );
    assert_eq!(
        get(&after, "ollama_guard_requests_in_flight{}"),
        1.0,
        "only the scrape itself"
    );
    assert_eq!(get(&after, "ollama_guard_cache_fallback{}"), 0.0);
}

#[tokio::test]
async fn streams_stay_in_flight_until_their_body_ends() {
    let (fake, proxy) = stack(SCANNERS).await;
    let gate = std::sync::Arc::new(tokio::sync::Notify::new());
    fake.script(|s| s.gate = Some(gate.clone()));
    let body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
    let mut resp = common::post_json(&proxy.url, "/api/chat", &body).await;
    resp.chunk().await.unwrap();
    let during = scrape(&proxy.url).await;
    assert_eq!(get(&during, "ollama_guard_requests_in_flight{}"), 2.0);
    assert_eq!(get(&during, "ollama_guard_streams_in_flight{}"), 1.0);
    gate.notify_one();
    while resp.chunk().await.unwrap().is_some() {}
    assert!(
        common::eventually(|| async {
            get(
                &scrape(&proxy.url).await,
                "ollama_guard_requests_in_flight{}",
            ) == 1.0
        })
        .await
    );
    let m = scrape(&proxy.url).await;
    assert_eq!(get(&m, "ollama_guard_streams_in_flight{}"), 0.0);
    assert_eq!(
        get(
            &m,
            r#"ollama_guard_overhead_seconds_count{route="/api/chat"}"#
        ),
        1.0,
        "recorded when the stream ended"
    );
}

#[tokio::test]
async fn model_names_never_become_labels() {
    let (_fake, proxy) = stack(SCANNERS).await;
    for i in 0..5 {
        let body = json!({"model": format!("model-{i}"), "prompt": "hi", "stream": false});
        common::post_json(&proxy.url, "/api/generate", &body).await;
    }
    let text = common::metrics_text(&proxy.url).await;
    assert!(!text.contains("model-"), "{text}");
}

#[tokio::test]
async fn ready_is_503_when_ollama_is_down() {
    let port = common::redis_server::free_port();
    let proxy = start_proxy(config(&format!("http://127.0.0.1:{port}"), SCANNERS)).await;
    let resp = client()
        .get(format!("{}/ready", proxy.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        (
            body["status"].as_str(),
            body["ollama"]["reachable"].as_bool()
        ),
        (Some("unavailable"), Some(false))
    );
}

#[tokio::test]
async fn ready_is_200_degraded_when_only_an_optional_redis_is_down() {
    let fake = FakeOllama::start().await;
    let redis = RedisServer::not_started();
    // `auto`: Redis optional (`redis` makes it required: tests/redis_faults.rs).
    let yaml = format!(
        "{SCANNERS}\ncache: {{backend: auto}}\nredis: {{url: '{}', health_check_interval: 0.1}}\n",
        redis.url()
    );
    let proxy = start_proxy(common::config(&fake.url, &yaml)).await;
    let resp = client()
        .get(format!("{}/ready", proxy.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["redis"]["connected"], false);
    assert_eq!(
        get(&scrape(&proxy.url).await, "ollama_guard_cache_fallback{}"),
        1.0
    );
}

#[tokio::test]
async fn ready_is_200_ready_with_ollama_and_redis_up() {
    let fake = FakeOllama::start().await;
    let redis = RedisServer::start();
    let proxy = start_proxy(redis_config(&fake.url, &redis.url(), SCANNERS)).await;
    assert!(
        common::eventually(|| async {
            get_json(&format!("{}/ready", proxy.url)).await["status"] == "ready"
        })
        .await
    );
    let body = get_json(&format!("{}/ready", proxy.url)).await;
    assert_eq!(
        (
            body["ollama"]["reachable"].as_bool(),
            body["redis"]["connected"].as_bool()
        ),
        (Some(true), Some(true))
    );
}
