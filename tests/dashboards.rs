//! The Grafana dashboard and the Prometheus alert rules ask only for metrics
//! that exist: every metric name in a PromQL expression is served by the
//! proxy's `/metrics` once it has seen traffic, or is one of the few that
//! Prometheus itself or redis_exporter provide. A renamed metric fails here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;

use common::{SCANNERS, post_json, stack};
use regex::Regex;
use serde_json::{Value, json};

/// Metrics the proxy does not serve: Prometheus's own `up` and the
/// redis_exporter series the Redis panels and alerts read.
const EXTERNAL: &[&str] = &[
    "up",
    "redis_up",
    "redis_memory_used_bytes",
    "redis_memory_max_bytes",
];

/// PromQL words that are not metric names.
const PROMQL_WORDS: &[&str] = &[
    "sum",
    "max",
    "min",
    "avg",
    "count",
    "rate",
    "irate",
    "increase",
    "histogram_quantile",
    "by",
    "without",
    "and",
    "or",
    "unless",
    "offset",
    "on",
    "ignoring",
    "bool",
];

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn dashboard_exprs() -> Vec<String> {
    let dash: Value = serde_json::from_str(&read("deploy/grafana/ollama-guard.json")).unwrap();
    let mut exprs = Vec::new();
    for panel in dash["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            assert_eq!(target["datasource"]["uid"], "prometheus", "{panel}");
            exprs.push(target["expr"].as_str().unwrap().to_string());
        }
    }
    exprs
}

fn rule_exprs() -> Vec<String> {
    let rules: Value = serde_saphyr::from_str(&read("deploy/prometheus/alerts.yml")).unwrap();
    rules["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .map(|r| r["expr"].as_str().unwrap().to_string())
        .collect()
}

/// The metric names an expression selects: what is left once strings,
/// label matchers, ranges, grouping clauses, numbers and PromQL's own words
/// are taken out.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let strip = [
        r#""[^"]*""#,
        r"\{[^}]*\}",
        r"\[[^\]]*\]",
        r"\b(by|without|on|ignoring)\s*\([^)]*\)",
        r"\$\w+",
        r"\b\d+(\.\d+)?(ms|[smhdwy])?\b",
    ];
    let mut rest = expr.to_string();
    for pattern in strip {
        rest = Regex::new(pattern).unwrap().replace_all(&rest, " ").into();
    }
    Regex::new(r"[A-Za-z_:][A-Za-z0-9_:]*")
        .unwrap()
        .find_iter(&rest)
        .map(|m| m.as_str().to_string())
        .filter(|w| !PROMQL_WORDS.contains(&w.as_str()))
        .collect()
}

#[test]
fn names_are_read_out_of_promql() {
    let names = metric_names(
        r#"histogram_quantile(0.95, sum by (le, scanner) (rate(ollama_guard_scan_seconds_bucket{a="b c"}[$__rate_interval]))) / up offset 5m"#,
    );
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["ollama_guard_scan_seconds_bucket", "up"]
    );
}

/// Names in the proxy's scrape: histogram series under their `_bucket`,
/// `_sum` and `_count` names.
async fn served(url: &str) -> BTreeSet<String> {
    let text = common::metrics_text(url).await;
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn every_metric_in_the_dashboard_and_alerts_is_served() {
    let (_fake, proxy) = stack(SCANNERS).await;
    // Traffic that touches every family: a scanned chat, a repeat (cache
    // hit), a block, and a stream.
    let chat = |text: &str, stream: bool| json!({"model": "m", "stream": stream, "messages": [{"role": "user", "content": text}]});
    for body in [
        chat("hello", false),
        chat("hello", false),
        chat("kill all humans", false),
    ] {
        post_json(&proxy.url, "/api/chat", &body).await;
    }
    let streamed = post_json(&proxy.url, "/api/chat", &chat("hi", true)).await;
    common::chunks(streamed).await;

    let served = served(&proxy.url).await;
    let (dashboard, rules) = (dashboard_exprs(), rule_exprs());
    assert!(
        dashboard.len() >= 15,
        "{} dashboard queries",
        dashboard.len()
    );
    assert_eq!(rules.len(), 5);
    let mut asked = BTreeSet::new();
    for expr in dashboard.iter().chain(&rules) {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "no metric in {expr}");
        for name in names {
            let known = served.contains(&name) || EXTERNAL.contains(&name.as_str());
            assert!(
                known,
                "{name} (in `{expr}`) is not served; served: {served:?}"
            );
            asked.insert(name);
        }
    }
    // Every family of the proxy's own metrics has a panel.
    for family in [
        "ollama_guard_requests_total",
        "ollama_guard_blocks_total",
        "ollama_guard_cache_lookups_total",
        "ollama_guard_cache_fallback",
        "ollama_guard_redis_errors_total",
        "ollama_guard_overhead_seconds_bucket",
        "ollama_guard_upstream_seconds_bucket",
        "ollama_guard_scan_seconds_bucket",
        "ollama_guard_scans_total",
        "ollama_guard_requests_in_flight",
        "ollama_guard_streams_in_flight",
    ] {
        assert!(asked.contains(family), "no panel reads {family}");
    }
}

#[test]
fn grafana_provisioning_points_at_the_dashboard_and_prometheus() {
    let source: Value = serde_saphyr::from_str(&read(
        "deploy/grafana/provisioning/datasources/prometheus.yml",
    ))
    .unwrap();
    let ds = &source["datasources"][0];
    assert_eq!(ds["uid"], "prometheus", "the dashboard's datasource uid");
    assert_eq!(ds["url"], "http://prometheus:9090");
    let compose: Value = serde_saphyr::from_str(&read("docker-compose.yml")).unwrap();
    let grafana = &compose["services"]["grafana"];
    let mounts: Vec<&str> = grafana["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(mounts.contains(&"./deploy/grafana:/var/lib/grafana/dashboards:ro"));
    let provider: Value = serde_saphyr::from_str(&read(
        "deploy/grafana/provisioning/dashboards/ollama-guard.yml",
    ))
    .unwrap();
    assert_eq!(
        provider["providers"][0]["options"]["path"],
        "/var/lib/grafana/dashboards"
    );
    for service in ["prometheus", "grafana", "redis-exporter"] {
        let s = &compose["services"][service];
        assert_eq!(s["profiles"], json!(["monitoring"]), "{service}");
        for port in s["ports"].as_array().into_iter().flatten() {
            assert!(
                port.as_str().unwrap().starts_with("127.0.0.1:"),
                "{service} listens beyond loopback: {port}"
            );
        }
    }
}
