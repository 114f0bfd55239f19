//! L2 beyond one plain server, each against real processes: TLS with a
//! private CA and a client certificate (stunnel4 in front of redis-server),
//! Sentinel with a failover under load (redis-sentinel, master, replica),
//! and a three-node Redis Cluster. On each: a verdict one instance wrote is
//! read by another, and `POST /cache/clear` reaches the other's L1.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::redis_topologies::{Cluster, Load, Pki, Sentinel, TlsFront, master_and_replica};
use common::{FakeOllama, Proxy, RedisServer, config, eventually, get_json, start_proxy};
use serde_json::json;

/// A scanner that costs 30 ms, so a Redis read (well under) is worth it,
/// and an admin token for `/cache/clear`.
const SCANNED: &str = "guard: {expose_cache_header: true}\n\
scanners:\n  input: [{type: delay, millis: 30}]\n  output: []\n\
admin: {token: test-admin-token-0123}\ncache: {backend: redis}\n";

fn with_redis(upstream: &str, redis_yaml: &str) -> ollama_guard::config::Config {
    let yaml = format!("{SCANNED}redis:\n  health_check_interval: 0.1\n{redis_yaml}");
    config(upstream, &yaml)
}

/// Status and `X-Guard-Cache` of one chat.
async fn chat(url: &str, text: &str) -> (u16, String) {
    let body =
        json!({"model": "m", "stream": false, "messages": [{"role": "user", "content": text}]});
    let resp = common::post_json(url, "/api/chat", &body).await;
    let tier = resp
        .headers()
        .get("x-guard-cache")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (resp.status().as_u16(), tier)
}

async fn clear(url: &str) -> serde_json::Value {
    common::client()
        .post(format!("{url}/cache/clear"))
        .bearer_auth("test-admin-token-0123")
        .send()
        .await
        .expect("clear")
        .json()
        .await
        .expect("clear json")
}

/// Two instances on the same L2: a verdict `a` scanned is a hit for `b`;
/// a clear on `a` empties Redis and `b`'s L1.
async fn shared_and_cleared(a: &Proxy, b: &Proxy, text: &str) {
    for p in [a, b] {
        assert!(common::redis_connected(&p.url).await, "{}", p.url);
    }
    assert_eq!(chat(&a.url, text).await, (200, "miss".into()));
    let read = eventually(|| async { chat(&b.url, text).await.1 == "hit-l2" }).await;
    assert!(
        read,
        "the other instance did not read the verdict from Redis"
    );
    assert_eq!(chat(&b.url, text).await.1, "hit-l1");
    let cleared = clear(&a.url).await;
    assert_eq!(cleared["redis"]["cleared"], true, "{cleared}");
    assert!(
        cleared["redis"]["keys_deleted"].as_u64().unwrap() >= 1,
        "{cleared}"
    );
    assert_eq!(cleared["redis"]["instances_notified"], 2, "{cleared}");
    let dropped = eventually(|| async { chat(&b.url, text).await.1 == "miss" }).await;
    assert!(dropped, "the clear did not reach the other instance's L1");
}

/// Waits (up to 10 s) until a new verdict `a` writes is read by `b`: both
/// are back on the same L2.
async fn shared_again(a: &Proxy, b: &Proxy) -> bool {
    let n = AtomicUsize::new(0);
    eventually(|| async {
        let text = format!(
            "written after the switch {}",
            n.fetch_add(1, Ordering::Relaxed)
        );
        chat(&a.url, &text).await;
        chat(&b.url, &text).await.1 == "hit-l2"
    })
    .await
}

#[tokio::test]
async fn tls_with_a_private_ca_and_a_client_certificate() {
    let pki = Pki::new();
    let redis = RedisServer::start();
    let tls = TlsFront::start(&pki, redis.port);
    let fake = FakeOllama::start().await;
    let yaml = format!(
        "  url: rediss://127.0.0.1:{}/0\n  tls_ca_file: {}\n  tls_cert_file: {}\n  tls_key_file: {}\n",
        tls.port,
        pki.path("ca.pem"),
        pki.path("client.pem"),
        pki.path("client.key"),
    );
    let a = start_proxy(with_redis(&fake.url, &yaml)).await;
    let b = start_proxy(with_redis(&fake.url, &yaml)).await;
    shared_and_cleared(&a, &b, "over tls").await;
    assert_eq!(chat(&a.url, "stored through tls").await.1, "miss");
    let stored = eventually(|| async {
        redis
            .dump()
            .await
            .iter()
            .any(|(k, _)| k.starts_with("ollama-guard:verdict:"))
    })
    .await;
    assert!(
        stored,
        "the verdict did not reach the redis-server behind TLS"
    );

    // Without the CA the server's certificate is not trusted, and without a
    // client certificate stunnel refuses: either way L2 stays off and
    // requests are still answered from memory.
    let untrusted = format!("  url: rediss://127.0.0.1:{}/0\n", tls.port);
    let no_client_cert = format!("{untrusted}  tls_ca_file: {}\n", pki.path("ca.pem"));
    for yaml in [untrusted, no_client_cert] {
        let mut cfg = with_redis(&fake.url, &yaml);
        cfg.cache.backend = ollama_guard::config::CacheBackend::Auto;
        let c = start_proxy(cfg).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let health = get_json(&format!("{}/cache/health", c.url)).await;
        assert_eq!(health["redis_connected"], false, "{yaml}: {health}");
        assert_eq!(chat(&c.url, "served anyway").await, (200, "miss".into()));
    }
}

#[tokio::test]
async fn a_three_node_cluster_shares_verdicts_rate_limits_and_clears() {
    let cluster = Cluster::start(3);
    let fake = FakeOllama::start().await;
    let nodes = cluster.addrs().join(", ");
    let limits = "auth:\n  keys:\n    - {name: alice, key: sk-alice-0123456789, rate_limit: {requests_per_minute: 3, tokens_per_minute: 100000}}\n";
    let yaml = format!("  cluster_nodes: [{nodes}]\n{limits}");
    let a = start_proxy(with_redis(&fake.url, &yaml)).await;
    let b = start_proxy(with_redis(&fake.url, &yaml)).await;
    let keyed = |url: &str, text: &str| {
        let body =
            json!({"model": "m", "stream": false, "messages": [{"role": "user", "content": text}]});
        common::client()
            .post(format!("{url}/api/chat"))
            .bearer_auth("sk-alice-0123456789")
            .json(&body)
            .send()
    };
    // Verdicts land on the nodes their slots belong to, several of them.
    for p in [&a, &b] {
        assert!(common::redis_connected(&p.url).await);
    }
    // Three a minute between both instances: the buckets are shared.
    for (i, want) in [200, 200, 200, 429].into_iter().enumerate() {
        let url = if i % 2 == 0 { &a.url } else { &b.url };
        let resp = keyed(url, &format!("t{i}")).await.unwrap();
        assert_eq!(resp.status(), want, "request {i}");
    }
    let verdicts = eventually(|| async { cluster.keys("ollama-guard:verdict:*").len() >= 3 }).await;
    assert!(verdicts, "verdicts: {:?}", cluster.keys("ollama-guard:*"));
    let holders = cluster
        .nodes
        .iter()
        .filter(|n| {
            !n.cli(&["--scan", "--pattern", "ollama-guard:*"])
                .trim()
                .is_empty()
        })
        .count();
    assert!(
        holders >= 2,
        "every key on one node: {:?}",
        cluster.keys("*")
    );

    let (a2, b2) = (
        start_proxy(with_redis(
            &fake.url,
            &format!("  cluster_nodes: [{nodes}]\n"),
        ))
        .await,
        start_proxy(with_redis(
            &fake.url,
            &format!("  cluster_nodes: [{nodes}]\n"),
        ))
        .await,
    );
    drop((a, b));
    shared_and_cleared(&a2, &b2, "on the cluster").await;
    clear(&a2.url).await;
    assert!(
        cluster.keys("ollama-guard:verdict:*").is_empty(),
        "a clear leaves no verdict on any node"
    );
    let stats = get_json(&format!("{}/cache/stats", a2.url)).await;
    assert_eq!(stats["redis_info"]["nodes"], 3, "{stats}");
}

#[tokio::test]
async fn sentinel_failover_under_load_loses_no_request_and_l2_comes_back() {
    let (mut master, replica) = master_and_replica(Some("master-pw"));
    let sentinel = Sentinel::start(
        master.port,
        "mymaster",
        Some("master-pw"),
        Some("sentinel-pw"),
    );
    let fake = FakeOllama::start().await;
    // A sentinel that is down is skipped for the next one.
    let dead = common::redis_server::free_port();
    let yaml = format!(
        "  password: master-pw\n  sentinel:\n    master_name: mymaster\n    password: sentinel-pw\n    nodes: [127.0.0.1:{dead}, 127.0.0.1:{}]\n",
        sentinel.port
    );
    let a = start_proxy(with_redis(&fake.url, &yaml)).await;
    let b = start_proxy(with_redis(&fake.url, &yaml)).await;
    shared_and_cleared(&a, &b, "via sentinel").await;

    // Load on both instances, through the failover.
    let load = Load::start(&[&a.url, &b.url], 4);
    tokio::time::sleep(Duration::from_millis(500)).await;
    master.kill();
    let killed = Instant::now();
    let promoted =
        eventually(|| async { sentinel.master_port("mymaster") == Some(replica.port) }).await;
    assert!(promoted, "the sentinel did not promote the replica");
    // Back on L2: a verdict written by one instance after the failover is
    // read by the other.
    let back = shared_again(&a, &b).await;
    let recovered = killed.elapsed();
    let (sent, failed) = load.finish().await;
    assert!(back, "L2 did not come back after the failover");
    eprintln!(
        "failover: {sent} requests, {failed} failed, L2 back {:.1} s after the master was killed",
        recovered.as_secs_f64()
    );
    assert_eq!(failed, 0, "requests failed during the failover");
    assert!(sent > 20, "the load did not run");
    let keys = replica.dump().await;
    assert!(
        keys.iter()
            .any(|(k, _)| k.starts_with("ollama-guard:verdict:"))
    );
    // Clears reach the other instance through the new master too.
    shared_and_cleared(&a, &b, "after the failover").await;
}

#[tokio::test]
async fn a_manual_failover_moves_writes_to_the_new_master() {
    let (master, replica) = master_and_replica(None);
    let sentinel = Sentinel::start(master.port, "mymaster", None, None);
    let fake = FakeOllama::start().await;
    let yaml = format!("  sentinel: {{nodes: [\"127.0.0.1:{}\"]}}\n", sentinel.port);
    let a = start_proxy(with_redis(&fake.url, &yaml)).await;
    let b = start_proxy(with_redis(&fake.url, &yaml)).await;
    shared_and_cleared(&a, &b, "before").await;
    // The old master stays up, demoted to a replica (Sentinel closes its
    // clients' connections as it does so).
    let out = std::process::Command::new("redis-cli")
        .args([
            "-p",
            &sentinel.port.to_string(),
            "SENTINEL",
            "FAILOVER",
            "mymaster",
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("OK"));
    let promoted = eventually(|| async {
        sentinel.master_port("mymaster") == Some(replica.port)
            && master.cli(&["ROLE"]).starts_with("slave")
    })
    .await;
    assert!(promoted, "the failover did not happen");
    let moved = shared_again(&a, &b).await;
    assert!(moved, "the instances did not follow the new master");
    let written = replica.dump().await;
    assert!(
        written
            .iter()
            .any(|(k, _)| k.starts_with("ollama-guard:verdict:")),
        "new verdicts are written to the new master"
    );
    shared_and_cleared(&a, &b, "after the switch").await;
}
