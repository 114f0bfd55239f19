//! The binary: config checking, start-up errors, serving, graceful shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use ollama_guard::config::{Config, load_from};

const BIN: &str = env!("CARGO_BIN_EXE_ollama-guard");

/// The binary with no inherited config variables, run in the repo root.
fn bin() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    cmd
}

#[test]
fn shipped_config_yaml_holds_exactly_the_defaults() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.yaml")).unwrap();
    let loaded = load_from(&text, |_| None).expect("config.yaml is valid");
    assert_eq!(loaded, Config::default());
}

#[test]
fn check_config_prints_the_effective_config_with_secrets_masked() {
    let out = bin()
        .arg("--check-config")
        .env("REDIS_PASSWORD", "hunter2-password")
        .env("ADMIN_TOKEN", "0123456789abcdef-token")
        .env("REDIS_URL", "redis://app:url-secret@cache:6379/2")
        .env("PROXY_PORT", "9999")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("port: 9999"), "{text}");
    assert!(text.contains("config.yaml"), "names its source: {text}");
    for secret in ["hunter2", "0123456789abcdef", "url-secret"] {
        assert!(!text.contains(secret), "{secret} leaked:\n{text}");
    }
    assert!(text.contains("redis://app:***@cache:6379/2"), "{text}");
}

#[test]
fn bad_config_fails_at_start_with_every_problem_listed() {
    let dir = std::env::temp_dir().join(format!("og-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.yaml");
    std::fs::write(
        &path,
        "server:\n  port: nope\n  colour: blue\ncache:\n  ttl: 0\n",
    )
    .unwrap();
    let out = bin()
        .arg("--config")
        .arg(&path)
        .env("OLLAMA_URL", "ftp://x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in ["server", "cache.ttl", "ollama.url"] {
        assert!(err.contains(needle), "missing {needle}:\n{err}");
    }
    let out = bin()
        .env("CONFIG_FILE", dir.join("absent.yaml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read config file"));
}

#[tokio::test]
async fn serves_then_stops_cleanly_on_sigterm() {
    let fake = common::FakeOllama::start().await;
    let port = common::redis_server::free_port();
    let mut cmd = bin();
    cmd.env("PROXY_HOST", "127.0.0.1")
        .env("PROXY_PORT", port.to_string())
        .env("OLLAMA_URL", &fake.url)
        .env("CACHE_BACKEND", "memory");
    let out = start_then_sigterm(cmd, port, "/api/version").await;
    assert!(out.status.success(), "{:?}", out.status);
}

/// Starts `cmd` (listening on `port`), waits until `path` answers 200,
/// sends SIGTERM, and returns how it exited and what it printed.
async fn start_then_sigterm(cmd: Command, port: u16, path: &str) -> std::process::Output {
    let child = tokio::process::Command::from(cmd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}{path}");
    let up = common::eventually(|| async {
        common::client()
            .get(&url)
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    assert!(up, "proxy did not come up");
    let pid = child.id().unwrap().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .expect("exits after SIGTERM")
        .unwrap()
}

#[tokio::test]
async fn healthcheck_flag_reports_whether_the_proxy_answers() {
    let port = common::redis_server::free_port();
    let check = move || {
        bin()
            .args(["--healthcheck"])
            .env("PROXY_PORT", port.to_string())
            // It asks /health only: no scanner is built, no model loaded.
            .env("GUARD_MODELS_DIR", "/nonexistent/models")
            .status()
            .unwrap()
    };
    assert_eq!(
        tokio::task::spawn_blocking(check).await.unwrap().code(),
        Some(1),
        "nothing listens yet"
    );
    let fake = common::FakeOllama::start().await;
    let mut cfg = common::config(&fake.url, "");
    cfg.server.port = port;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let state = ollama_guard::AppState::new(cfg).unwrap();
    tokio::spawn(ollama_guard::run(listener, state, std::future::pending()));
    assert_eq!(
        tokio::task::spawn_blocking(check).await.unwrap().code(),
        Some(0)
    );
}

/// Starts the binary with `envs`, waits until it answers, stops it, and
/// returns what it logged.
async fn logs_of_a_start(envs: &[(&str, &str)]) -> String {
    let fake = common::FakeOllama::start().await;
    let port = common::redis_server::free_port();
    let gone = common::redis_server::free_port();
    let mut cmd = bin();
    cmd.env("PROXY_PORT", port.to_string())
        .env("OLLAMA_URL", &fake.url)
        .env("REDIS_URL", format!("redis://127.0.0.1:{gone}/0"))
        .env("SCANNERS_INPUT", "[]")
        .env("SCANNERS_OUTPUT", "[]")
        .env("RUST_LOG", "warn");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = start_then_sigterm(cmd, port, "/health").await;
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test]
async fn an_open_proxy_beyond_loopback_and_unsigned_verdicts_are_warned_about_once() {
    let open = logs_of_a_start(&[("PROXY_HOST", "0.0.0.0")]).await;
    assert_eq!(open.matches("with no API keys").count(), 1, "{open}");
    assert_eq!(open.matches("are not signed").count(), 1, "{open}");
    let closed = logs_of_a_start(&[
        ("PROXY_HOST", "0.0.0.0"),
        ("AUTH_KEYS", "[{key: ops-key-0123456789abcdef, name: ops}]"),
        ("CACHE_SIGNING_KEY", "a-shared-signing-key-0123"),
    ])
    .await;
    assert!(!closed.contains("with no API keys"), "{closed}");
    assert!(!closed.contains("are not signed"), "{closed}");
    let local = logs_of_a_start(&[]).await;
    assert!(
        !local.contains("with no API keys"),
        "127.0.0.1 by default: {local}"
    );
}
