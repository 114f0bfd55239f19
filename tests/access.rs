//! Who may use the proxy, and how much: API keys (401/403 in each route's
//! shape), models and management per key, rate limits shared by two
//! instances through a real redis-server (and kept while it is killed),
//! concurrency held for a stream's life, network rules, protected ops, the
//! cache header, and signed verdicts against a forged allow in Redis.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::{FakeOllama, RedisServer, client, config, eventually, redis_config, start_proxy};
use serde_json::{Value, json};

const ALICE: &str = "alice-0123456789abcdef";
const BOB: &str = "bob-0123456789abcdef00";
const ADMIN: &str = "admin-token-0123456789";

/// Two keys (`extra` adds to alice's entry); no admin section, which
/// `redis_config` writes itself.
fn keys(extra: &str) -> String {
    format!(
        "scanners: {{input: [], output: []}}\nauth:\n  keys:\n    - {{key: {ALICE}, name: alice, models: ['llama3.2*'] {extra}}}\n    - {{key: {BOB}, name: bob, allow_management: true, allow_scan: true}}\n"
    )
}

/// [`keys`] plus the admin token.
fn keys_and_admin(extra: &str) -> String {
    format!("{}admin: {{token: {ADMIN}}}\n", keys(extra))
}

async fn post(url: &str, path: &str, key: Option<&str>, body: &Value) -> reqwest::Response {
    let mut req = client().post(format!("{url}{path}")).json(body);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    req.send().await.expect("send")
}

fn chat(model: &str) -> Value {
    json!({"model": model, "stream": false, "messages": [{"role": "user", "content": "hi"}]})
}

#[tokio::test]
async fn without_keys_the_proxy_is_open_and_tokens_are_ignored() {
    let fake = FakeOllama::start().await;
    let proxy = start_proxy(config(&fake.url, "scanners: {input: [], output: []}\n")).await;
    for key in [None, Some("ollama")] {
        let resp = post(&proxy.url, "/api/chat", key, &chat("m")).await;
        assert_eq!(resp.status(), 200);
        assert!(
            resp.headers().get("x-guard-cache").is_none(),
            "no cache oracle by default"
        );
    }
}

#[tokio::test]
async fn a_missing_or_wrong_key_is_401_in_each_routes_shape() {
    let fake = FakeOllama::start().await;
    let proxy = start_proxy(config(&fake.url, &keys_and_admin(""))).await;
    for key in [None, Some("not-a-key-0123456789")] {
        let resp = post(&proxy.url, "/api/chat", key, &chat("llama3.2")).await;
        assert_eq!(resp.status(), 401);
        let err: Value = resp.json().await.unwrap();
        assert!(
            err["error"].as_str().unwrap().starts_with("unauthorized"),
            "{err}"
        );
        let resp = post(&proxy.url, "/v1/chat/completions", key, &chat("llama3.2")).await;
        assert_eq!(resp.status(), 401);
        let err: Value = resp.json().await.unwrap();
        assert_eq!(err["error"]["type"], "authentication_error");
        assert_eq!(err["error"]["code"], "invalid_api_key");
        let resp = client()
            .get(format!("{}/api/tags", proxy.url))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "listings need a key too");
    }
    let resp = post(&proxy.url, "/v1/messages", None, &json!({"model": "llama3.2", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})).await;
    assert_eq!(resp.status(), 401);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["type"], "error", "Anthropic's shape: {err}");
    assert_eq!(fake.call_count(), 0, "nothing reached Ollama");
    assert_eq!(
        post(&proxy.url, "/api/chat", Some(ALICE), &chat("llama3.2"))
            .await
            .status(),
        200
    );
    let anthropic = client()
        .post(format!("{}/api/chat", proxy.url))
        .header("x-api-key", ALICE)
        .json(&chat("llama3.2"))
        .send()
        .await
        .unwrap();
    assert_eq!(anthropic.status(), 200, "x-api-key is a key too");
    let health = client()
        .get(format!("{}/health", proxy.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200, "liveness needs no key");
}

#[tokio::test]
async fn models_management_and_scan_are_per_key() {
    let fake = FakeOllama::start().await;
    let proxy = start_proxy(config(&fake.url, &keys_and_admin(""))).await;
    assert_eq!(
        post(&proxy.url, "/api/chat", Some(ALICE), &chat("llama3.2:1b"))
            .await
            .status(),
        200
    );
    let resp = post(&proxy.url, "/api/chat", Some(ALICE), &chat("mistral")).await;
    assert_eq!(resp.status(), 403);
    let err: Value = resp.json().await.unwrap();
    assert!(err["error"].as_str().unwrap().contains("mistral"), "{err}");
    assert_eq!(
        post(&proxy.url, "/api/chat", Some(BOB), &chat("mistral"))
            .await
            .status(),
        200
    );
    let pull = json!({"model": "llama3.2", "stream": false});
    assert_eq!(
        post(&proxy.url, "/api/pull", Some(ALICE), &pull)
            .await
            .status(),
        403
    );
    assert_eq!(
        post(&proxy.url, "/api/pull", Some(BOB), &pull)
            .await
            .status(),
        200
    );
    assert_eq!(
        post(&proxy.url, "/api/pull", Some(ADMIN), &pull)
            .await
            .status(),
        200
    );
    let del = client()
        .delete(format!("{}/api/delete", proxy.url))
        .bearer_auth(ALICE)
        .json(&pull)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 403);
    let scan = json!({"text": "hello"});
    assert_eq!(
        post(&proxy.url, "/scan", Some(ALICE), &scan).await.status(),
        403
    );
    assert_eq!(
        post(&proxy.url, "/scan", Some(BOB), &scan).await.status(),
        200
    );
    assert_eq!(
        post(&proxy.url, "/scan", Some(ADMIN), &scan).await.status(),
        200
    );
    assert_eq!(post(&proxy.url, "/scan", None, &scan).await.status(), 401);
}

#[tokio::test]
async fn two_instances_share_one_limit_through_redis() {
    let redis = RedisServer::start();
    let fake = FakeOllama::start().await;
    let yaml = keys(", rate_limit: {requests_per_minute: 5}");
    let a = start_proxy(redis_config(&fake.url, &redis.url(), &yaml)).await;
    let b = start_proxy(redis_config(&fake.url, &redis.url(), &yaml)).await;
    for p in [&a, &b] {
        assert!(common::redis_connected(&p.url).await);
    }
    let mut statuses = Vec::new();
    for i in 0..8 {
        let url = if i % 2 == 0 { &a.url } else { &b.url };
        statuses.push(
            post(url, "/api/chat", Some(ALICE), &chat("llama3.2"))
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(
        statuses,
        vec![200, 200, 200, 200, 200, 429, 429, 429],
        "one limit for both"
    );
    let resp = post(
        &b.url,
        "/v1/chat/completions",
        Some(ALICE),
        &chat("llama3.2"),
    )
    .await;
    assert_eq!(resp.status(), 429);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=12).contains(&retry), "{retry}");
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["type"], "rate_limit_error");
    assert_eq!(err["error"]["code"], "rate_limit_exceeded");
    let resp = post(&a.url, "/api/chat", Some(ALICE), &chat("llama3.2")).await;
    let err: Value = resp.json().await.unwrap();
    assert!(
        err["error"]
            .as_str()
            .unwrap()
            .starts_with("too many requests"),
        "{err}"
    );
    // Another key has a bucket of its own, kept by name, never by key.
    assert_eq!(
        post(&a.url, "/api/chat", Some(BOB), &chat("llama3.2"))
            .await
            .status(),
        200
    );
    let stored: Vec<String> = redis.dump().await.into_iter().map(|(k, _)| k).collect();
    assert!(
        stored.iter().any(|k| k.ends_with("rate:{alice}:requests")),
        "{stored:?}"
    );
    assert!(stored.iter().all(|k| !k.contains(ALICE)));
    let health = common::get_json(&format!("{}/cache/health", a.url)).await;
    assert_eq!(health["rate_limits"], "redis");
}

#[tokio::test]
async fn with_redis_killed_mid_burst_limits_still_hold_and_nothing_fails() {
    let mut redis = RedisServer::start();
    let fake = FakeOllama::start().await;
    let yaml = keys(", rate_limit: {requests_per_minute: 10}");
    let proxy = start_proxy(redis_config(&fake.url, &redis.url(), &yaml)).await;
    assert!(common::redis_connected(&proxy.url).await);
    let body = chat("llama3.2");
    let send = || post(&proxy.url, "/api/chat", Some(ALICE), &body);
    let mut ok = 0;
    for _ in 0..3 {
        ok += usize::from(send().await.status() == 200);
    }
    redis.kill();
    let mut statuses = Vec::new();
    for _ in 0..30 {
        statuses.push(send().await.status().as_u16());
    }
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 429),
        "no 5xx: {statuses:?}"
    );
    ok += statuses.iter().filter(|s| **s == 200).count();
    // Redis's 3 plus at most this instance's own 10.
    assert!(ok <= 13, "{ok} passed: {statuses:?}");
    assert!(statuses.ends_with(&[429, 429, 429]), "{statuses:?}");
    let health = common::get_json(&format!("{}/cache/health", proxy.url)).await;
    assert_eq!(health["rate_limits"], "local");
    assert!(
        common::metrics_text(&proxy.url)
            .await
            .contains("ollama_guard_rate_limit_local 1")
    );
}

#[tokio::test]
async fn a_keys_concurrency_is_held_for_a_streams_life() {
    let fake = FakeOllama::start().await;
    let gate = Arc::new(tokio::sync::Notify::new());
    fake.script(|s| s.gate = Some(gate.clone()));
    let proxy = start_proxy(config(
        &fake.url,
        &keys(", rate_limit: {max_concurrent: 1}"),
    ))
    .await;
    let body = json!({"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}]});
    let mut stream = post(&proxy.url, "/api/chat", Some(ALICE), &body).await;
    assert_eq!(stream.status(), 200);
    let _first = stream.chunk().await.unwrap();
    let second = post(&proxy.url, "/api/chat", Some(ALICE), &chat("llama3.2")).await;
    assert_eq!(second.status(), 429, "the stream holds the key's one slot");
    assert_eq!(
        post(&proxy.url, "/api/chat", Some(BOB), &chat("llama3.2"))
            .await
            .status(),
        200
    );
    gate.notify_one();
    while stream.chunk().await.unwrap().is_some() {}
    assert!(
        eventually(|| async {
            post(&proxy.url, "/api/chat", Some(ALICE), &chat("llama3.2"))
                .await
                .status()
                == 200
        })
        .await
    );
}

#[tokio::test]
async fn network_rules_and_forwarded_for_from_trusted_proxies_only() {
    let fake = FakeOllama::start().await;
    let base = "scanners: {input: [], output: []}\n";
    let allow = format!("{base}auth: {{allow_cidrs: [10.0.0.0/8]}}\n");
    let proxy = start_proxy(config(&fake.url, &allow)).await;
    let from = |xff: Option<&'static str>| {
        let mut req = client()
            .post(format!("{}/api/chat", proxy.url))
            .json(&chat("m"));
        if let Some(x) = xff {
            req = req.header("x-forwarded-for", x);
        }
        req.send()
    };
    assert_eq!(
        from(None).await.unwrap().status(),
        403,
        "127.0.0.1 is not allowed"
    );
    assert_eq!(
        from(Some("10.1.2.3")).await.unwrap().status(),
        403,
        "XFF not believed"
    );
    let health = client()
        .get(format!("{}/health", proxy.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let trusted = format!("{allow}server: {{trusted_proxies: [127.0.0.1]}}\n");
    let proxy = start_proxy(config(&fake.url, &trusted)).await;
    let via = |xff: &'static str| {
        client()
            .post(format!("{}/api/chat", proxy.url))
            .header("x-forwarded-for", xff)
            .json(&chat("m"))
            .send()
    };
    assert_eq!(via("10.1.2.3").await.unwrap().status(), 200);
    assert_eq!(
        via("10.1.2.3, 192.0.2.1").await.unwrap().status(),
        403,
        "the nearest untrusted hop counts"
    );
    let deny = format!("{base}auth: {{deny_cidrs: ['127.0.0.0/8', '::1/128']}}\n");
    let proxy = start_proxy(config(&fake.url, &deny)).await;
    let resp = client()
        .get(format!("{}/v1/models", proxy.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(
        err["error"]["type"], "authentication_error",
        "OpenAI's shape under /v1"
    );
}

#[tokio::test]
async fn protected_ops_need_the_admin_token() {
    let fake = FakeOllama::start().await;
    let yaml = format!(
        "scanners: {{input: [], output: []}}\nadmin: {{token: {ADMIN}, protect_ops: true}}\n"
    );
    let proxy = start_proxy(config(&fake.url, &yaml)).await;
    for path in ["/metrics", "/cache/stats", "/cache/health"] {
        let url = format!("{}{path}", proxy.url);
        assert_eq!(
            client().get(&url).send().await.unwrap().status(),
            401,
            "{path}"
        );
        let ok = client().get(&url).bearer_auth(ADMIN).send().await.unwrap();
        assert_eq!(ok.status(), 200, "{path}");
    }
    let ready = client()
        .get(format!("{}/ready", proxy.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200, "probes stay open");
}

/// Sends a banned prompt through one instance (its block verdict lands in
/// Redis), overwrites every verdict in Redis with an allow, and sends the
/// prompt through a second instance: its status, and its metrics.
async fn forged_allow(signing_key: Option<&str>) -> (u16, String) {
    let redis = RedisServer::start();
    let fake = FakeOllama::start().await;
    let yaml =
        "scanners:\n  input: [{type: ban_substrings, substrings: [forbidden]}]\n  output: []\n";
    let mut cfg = redis_config(&fake.url, &redis.url(), yaml);
    cfg.cache.signing_key = signing_key.map(String::from);
    let first = start_proxy(cfg.clone()).await;
    assert!(common::redis_connected(&first.url).await);
    let body = json!({"model": "m", "stream": false, "messages": [{"role": "user", "content": "say forbidden"}]});
    assert_eq!(
        post(&first.url, "/api/chat", None, &body).await.status(),
        400
    );
    assert!(eventually(|| async { !redis.dump().await.is_empty() }).await);
    let mut c = redis.connection().await;
    for (key, _) in redis.dump().await {
        let allow = br#"{"allowed":true,"findings":[],"redactions":[]}"#.to_vec();
        redis::cmd("SET")
            .arg(&key)
            .arg(allow)
            .query_async::<()>(&mut c)
            .await
            .unwrap();
    }
    let second = start_proxy(cfg).await;
    assert!(common::redis_connected(&second.url).await);
    let status = post(&second.url, "/api/chat", None, &body)
        .await
        .status()
        .as_u16();
    (status, common::metrics_text(&second.url).await)
}

#[tokio::test]
async fn a_forged_allow_verdict_in_redis_is_rejected_when_verdicts_are_signed() {
    let (status, _) = forged_allow(None).await;
    assert_eq!(
        status, 200,
        "unsigned, the forgery works: the attack this stops"
    );
    let (status, metrics) = forged_allow(Some("a-shared-signing-key-0123")).await;
    assert_eq!(
        status, 400,
        "signed, the forged verdict is ignored and the text rescanned"
    );
    assert!(
        metrics.contains("ollama_guard_cache_rejected_total 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn bad_access_config_is_refused_naming_the_keys() {
    let yaml = "auth:\n  keys: [{key: short, name: a}]\n  allow_cidrs: [10.0.0.0/33]\nserver: {trusted_proxies: [nope]}\ncache: {signing_key: tiny}\n";
    let err = ollama_guard::config::load_from(yaml, |_| None)
        .err()
        .unwrap();
    let text = err.to_string();
    for key in [
        "auth.keys[0].key",
        "auth.allow_cidrs",
        "server.trusted_proxies",
        "cache.signing_key",
    ] {
        assert!(text.contains(key), "{key} not named: {text}");
    }
}

#[test]
fn keys_and_the_signing_key_are_masked_in_the_printed_config() {
    let yaml = format!(
        "{}cache: {{signing_key: a-shared-signing-key-0123}}\n",
        keys("")
    );
    let cfg = ollama_guard::config::load_from(&yaml, |_| None).unwrap();
    let printed = ollama_guard::config::masked_yaml(&cfg);
    for secret in [ALICE, BOB, "a-shared-signing-key-0123"] {
        assert!(!printed.contains(secret), "{secret} printed: {printed}");
    }
    assert!(printed.contains("name: alice"), "{printed}");
}

#[tokio::test]
async fn keys_can_come_from_a_file_and_a_bad_file_stops_the_start() {
    let dir = std::env::temp_dir().join(format!("guard-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("keys.yaml");
    std::fs::write(&file, "- {key: carol-0123456789abcdef, name: carol}\n").unwrap();
    let fake = FakeOllama::start().await;
    let yaml = format!("{}  keys_file: {}\n", keys(""), file.display());
    let proxy = start_proxy(config(&fake.url, &yaml)).await;
    let ok = post(
        &proxy.url,
        "/api/chat",
        Some("carol-0123456789abcdef"),
        &chat("m"),
    )
    .await;
    assert_eq!(ok.status(), 200);
    assert_eq!(
        post(&proxy.url, "/api/chat", Some(ALICE), &chat("llama3.2"))
            .await
            .status(),
        200
    );
    std::fs::write(&file, "- {key: short, name: dave}\n").unwrap();
    let err = ollama_guard::AppState::new(config(&fake.url, &yaml))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("auth.keys_file") && err.contains(".key"),
        "{err}"
    );
    std::fs::remove_file(&file).unwrap();
    let err = ollama_guard::AppState::new(config(&fake.url, &yaml))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("cannot read"), "{err}");
}

#[tokio::test]
async fn cors_preflights_pass_without_a_key_but_not_past_the_network_rules() {
    let fake = FakeOllama::start().await;
    let proxy = start_proxy(config(&fake.url, &keys(""))).await;
    let preflight = client()
        .request(reqwest::Method::OPTIONS, format!("{}/api/tags", proxy.url))
        .header("origin", "http://localhost:3000")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert_ne!(preflight.status(), 401, "a preflight carries no key");
    assert_eq!(
        fake.calls().last().map(|c| c.method.as_str().to_string()),
        Some("OPTIONS".into())
    );
    let denied = format!("{}  deny_cidrs: ['127.0.0.0/8', '::1/128']\n", keys(""));
    let proxy = start_proxy(config(&fake.url, &denied)).await;
    let preflight = client()
        .request(reqwest::Method::OPTIONS, format!("{}/api/tags", proxy.url))
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 403);
}
