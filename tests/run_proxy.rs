//! `run_proxy.sh` start/status/stop against a fake Ollama, with the test
//! build of the binary (OLLAMA_GUARD_BIN) and a private pid and log file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};

use common::FakeOllama;
use common::redis_server::free_port;

#[derive(Clone)]
struct Script {
    dir: PathBuf,
    port: u16,
    upstream: String,
}

impl Script {
    fn new(upstream: &str, name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("og-run-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self {
            dir,
            port: free_port(),
            upstream: upstream.to_string(),
        }
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.join("proxy.pid")
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/run_proxy.sh"))
            .args(args)
            .env("OLLAMA_GUARD_BIN", env!("CARGO_BIN_EXE_ollama-guard"))
            .env("OLLAMA_GUARD_PID_FILE", self.pid_file())
            .env("OLLAMA_GUARD_LOG_FILE", self.dir.join("proxy.log"))
            .env("OLLAMA_GUARD_START_TIMEOUT", "20")
            .env("PROXY_HOST", "127.0.0.1")
            .env("PROXY_PORT", self.port.to_string())
            .env("OLLAMA_URL", &self.upstream)
            .env("CACHE_BACKEND", "memory")
            .env(
                "CONFIG_FILE",
                concat!(env!("CARGO_MANIFEST_DIR"), "/config.yaml"),
            )
            .output()
            .unwrap()
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn alive(pid: &str) -> bool {
    Command::new("kill")
        .args(["-0", pid])
        .status()
        .unwrap()
        .success()
}

#[tokio::test]
async fn start_status_stop_cycle() {
    let fake = FakeOllama::start().await;
    let s = Script::new(&fake.url, "cycle");
    // `start` blocks while it polls /health: keep it off the runtime that
    // serves the fake Ollama.
    let starter = s.clone();
    let out = tokio::task::spawn_blocking(move || starter.run(&["start"]))
        .await
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("http://127.0.0.1:{}", s.port)),
        "{}",
        text(&out)
    );
    let pid = std::fs::read_to_string(s.pid_file())
        .unwrap()
        .trim()
        .to_string();
    assert!(alive(&pid));

    let resp = common::client()
        .get(format!("http://127.0.0.1:{}/api/version", s.port))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "the proxy serves the fake upstream");

    let again = s.run(&["start"]);
    assert!(
        again.status.success() && text(&again).contains("already running"),
        "{}",
        text(&again)
    );

    let status = s.run(&["status"]);
    assert!(status.status.success(), "{}", text(&status));
    let shown = text(&status);
    assert!(
        shown.contains(&pid)
            && shown.contains(&s.port.to_string())
            && shown.contains("\"status\":\"healthy\""),
        "{shown}"
    );

    let stop = s.run(&["stop"]);
    assert!(stop.status.success(), "{}", text(&stop));
    assert!(!alive(&pid), "stopped");
    assert!(!s.pid_file().exists());
    assert_eq!(s.run(&["status"]).status.code(), Some(3));
    let log = std::fs::read_to_string(s.dir.join("proxy.log")).unwrap();
    assert!(
        log.contains("listening") && log.contains("stopped"),
        "{log}"
    );
}

#[test]
fn stop_never_kills_a_process_it_did_not_start() {
    let s = Script::new("http://127.0.0.1:9", "foreign");
    let mut other = Command::new("sleep").arg("30").spawn().unwrap();
    std::fs::write(s.pid_file(), other.id().to_string()).unwrap();
    let out = s.run(&["stop"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("stale pid file"), "{}", text(&out));
    assert!(
        alive(&other.id().to_string()),
        "the unrelated process still runs"
    );
    other.kill().unwrap();
    let _ = other.wait();
}

#[test]
fn start_fails_loudly_on_a_bad_config() {
    let s = Script::new("not a url", "bad");
    let out = s.run(&["start"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("ollama.url"), "{}", text(&out));
    assert!(!s.pid_file().exists());
}

#[test]
fn unknown_commands_and_options_are_rejected() {
    let s = Script::new("http://127.0.0.1:9", "usage");
    assert_eq!(s.run(&["launch"]).status.code(), Some(2));
    assert!(!s.run(&["start", "--colour"]).status.success());
    assert!(text(&s.run(&["help"])).contains("restart"));
}

#[tokio::test]
async fn log_file_has_no_terminal_colour_codes() {
    let fake = FakeOllama::start().await;
    let s = Script::new(&fake.url, "plain-log");
    let starter = s.clone();
    let out = tokio::task::spawn_blocking(move || starter.run(&["start"]))
        .await
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(s.run(&["stop"]).status.success());
    let log = std::fs::read_to_string(s.dir.join("proxy.log")).unwrap();
    assert!(
        log.contains("listening") && !log.contains('\u{1b}'),
        "{log:?}"
    );
}
