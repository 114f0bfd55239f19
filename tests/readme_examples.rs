//! Every `curl` example in the README runs against a live stack (fake
//! Ollama, a real Redis, the proxy configured as the README says), and its
//! output still matches the sample printed under it: the status line, the
//! JSON keys, the metric names. An example that rots fails here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{FakeOllama, RedisServer, eventually, get_json, redis_config, start_proxy};

const ADMIN_TOKEN: &str = "readme-admin-token-0123";

/// A command from the README and the sample output commented under it.
#[derive(Debug)]
struct Example {
    command: String,
    sample: Vec<String>,
}

/// Commands of `sh` blocks, continuation lines and multi-line quotes joined.
fn examples(readme: &str) -> Vec<Example> {
    let mut out: Vec<Example> = Vec::new();
    let mut in_sh = false;
    let mut pending: Option<String> = None;
    for line in readme.lines() {
        if line.starts_with("```") {
            in_sh = line == "```sh";
            continue;
        }
        if !in_sh {
            continue;
        }
        if let Some(cmd) = pending.as_mut() {
            cmd.push('\n');
            cmd.push_str(line);
        } else if let Some(sample) = line.strip_prefix('#').filter(|_| !out.is_empty()) {
            out.last_mut()
                .unwrap()
                .sample
                .push(sample.strip_prefix(' ').unwrap_or(sample).to_string());
            continue;
        } else {
            pending = Some(line.to_string());
        }
        let cmd = pending.as_ref().unwrap();
        let open_quote = cmd.matches('\'').count() % 2 == 1;
        if !open_quote && !cmd.ends_with('\\') {
            out.push(Example {
                command: pending.take().unwrap(),
                sample: Vec::new(),
            });
        }
    }
    out.into_iter()
        .filter(|e| e.command.trim_start().starts_with("curl "))
        .collect()
}

/// The scanner list the walk-through starts the proxy with.
fn walkthrough_scanners(readme: &str) -> String {
    let start = readme.find("SCANNERS_INPUT='").unwrap() + "SCANNERS_INPUT='".len();
    let end = start + readme[start..].find('\'').unwrap();
    readme[start..end].to_string()
}

fn run(command: &str, proxy: &str) -> String {
    let command = command.replace("localhost:8080", proxy);
    let out = std::process::Command::new("sh")
        .args(["-c", &command])
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{command}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Checks that what the sample shows is in the output: the status line, each
/// JSON key, each metric name.
fn matches_sample(example: &Example, output: &str) {
    let sample = example.sample.join("\n");
    if let Some(status) = example
        .sample
        .first()
        .filter(|l| l.starts_with("HTTP/1.1 "))
    {
        let want = &status["HTTP/1.1 ".len().."HTTP/1.1 ".len() + 3];
        assert!(
            output.starts_with(&format!("HTTP/1.1 {want}")),
            "{}\nexpected {status}, got:\n{output}",
            example.command
        );
        for header in example
            .sample
            .iter()
            .skip(1)
            .filter_map(|l| l.split_once(": "))
        {
            if !header.0.contains(' ') && !header.0.starts_with('{') {
                assert!(
                    output
                        .to_lowercase()
                        .contains(&format!("{}: {}", header.0, header.1)),
                    "{}: missing header {header:?}",
                    example.command
                );
            }
        }
    }
    for key in sample
        .split('"')
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|w| w[1].starts_with(':'))
        .map(|w| w[0])
    {
        assert!(
            output.contains(&format!("\"{key}\":")),
            "{}: key {key:?} of the sample is missing from:\n{output}",
            example.command
        );
    }
    for line in example
        .sample
        .iter()
        .filter(|l| l.starts_with("ollama_guard_"))
    {
        let name = line.split(['{', ' ']).next().unwrap();
        assert!(
            output.lines().any(|l| l.starts_with(name)),
            "{}: metric {name} missing",
            example.command
        );
    }
}

#[tokio::test]
async fn readme_curl_examples_run_and_match_their_samples() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let redis = RedisServer::start();
    let fake = FakeOllama::start().await;
    let yaml = format!("scanners:\n  input: {}\n", walkthrough_scanners(&readme));
    let mut cfg = redis_config(&fake.url, &redis.url(), &yaml);
    cfg.admin.token = Some(ADMIN_TOKEN.into());
    let proxy = start_proxy(cfg).await;
    assert!(common::redis_connected(&proxy.url).await);
    let host = proxy.url.trim_start_matches("http://").to_string();

    let found = examples(&readme);
    assert!(found.len() >= 8, "found only {} curl examples", found.len());
    for example in &found {
        let command = example.command.clone();
        let host = host.clone();
        let output = tokio::task::spawn_blocking(move || run(&command, &host))
            .await
            .unwrap();
        matches_sample(example, &output);
    }
}

#[tokio::test]
async fn the_acl_user_from_the_readme_is_enough() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme.find("`ACL SETUSER ").unwrap() + 1;
    let acl = &readme[start..start + readme[start..].find('`').unwrap()];
    let redis = RedisServer::start();
    let mut c = redis.connection().await;
    let mut cmd = redis::cmd("ACL");
    for word in acl.split_whitespace().skip(1) {
        cmd.arg(word);
    }
    cmd.query_async::<()>(&mut c).await.unwrap();

    let fake = FakeOllama::start().await;
    let url = format!("redis://guard:secret@127.0.0.1:{}/0", redis.port);
    let make = || {
        let mut cfg = redis_config(&fake.url, &url, "");
        cfg.admin.token = Some(ADMIN_TOKEN.into());
        cfg.guard.expose_cache_header = true;
        cfg
    };
    let (a, b) = (start_proxy(make()).await, start_proxy(make()).await);
    for p in [&a, &b] {
        assert!(
            eventually(|| async {
                get_json(&format!("{}/cache/health", p.url)).await["status"] == "healthy"
            })
            .await,
            "ACL user connects"
        );
    }
    let chat = |url: String| async move {
        let body = serde_json::json!({"model": "m", "stream": false, "messages": [{"role": "user", "content": "acl check"}]});
        let r = common::post_json(&url, "/api/chat", &body).await;
        r.headers()["x-guard-cache"].to_str().unwrap().to_string()
    };
    assert_eq!(chat(a.url.clone()).await, "miss");
    assert!(
        eventually(|| async { redis.dump().await.len() >= 2 }).await,
        "SET is allowed"
    );
    assert_eq!(
        chat(b.url.clone()).await,
        "hit-l2",
        "GET and PTTL are allowed"
    );
    let stats = get_json(&format!("{}/cache/stats", b.url)).await;
    assert!(
        stats["redis_info"]["total_keys"].is_u64(),
        "INFO and DBSIZE are allowed: {stats}"
    );
    let cleared = common::client()
        .post(format!("{}/cache/clear", a.url))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = cleared.json().await.unwrap();
    assert_eq!(
        body["redis"]["cleared"], true,
        "SCAN, UNLINK and PUBLISH are allowed: {body}"
    );
    assert!(
        body["redis"]["instances_notified"].as_u64().unwrap() >= 2,
        "SUBSCRIBE is allowed: {body}"
    );
    assert_eq!(
        get_json(&format!("{}/cache/stats", a.url)).await["errors"],
        0
    );
}
