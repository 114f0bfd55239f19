//! The `ollama-guard` binary: parse the command line, load the config, set up
//! logging, serve until SIGINT or SIGTERM.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use ollama_guard::config::{self, Config, LogFormat};
use std::sync::Arc;

use ollama_guard::cache::VerdictCache;
use ollama_guard::guard::Guard;
use ollama_guard::metrics::Metrics;
use ollama_guard::scan::Direction;
use ollama_guard::{AppState, run};
use tracing_subscriber::EnvFilter;

/// Per-thread heaps: under load glibc's malloc contended between workers.
#[global_allocator]
static ALLOCATOR: ollama_guard::allocator::Mimalloc = ollama_guard::allocator::Mimalloc;

#[derive(Parser)]
#[command(version, about = "A drop-in guardrail proxy for Ollama")]
struct Cli {
    /// Config file (default: $CONFIG_FILE, else ./config.yaml if present).
    #[arg(long, value_name = "PATH", global = true)]
    config: Option<PathBuf>,
    /// Validate the config, print the effective values (secrets masked), exit.
    #[arg(long)]
    check_config: bool,
    /// Ask the local proxy's /health (for container healthchecks); exit 0 if healthy.
    #[arg(long, conflicts_with = "check_config")]
    healthcheck: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Scan text from standard input with the configured scanners and print
    /// one JSON report per line; exit 1 if anything was blocked, 2 on errors.
    Scan {
        /// Read JSON lines `{"text": ..., "direction": "input"|"output"}`
        /// instead of one plain text.
        #[arg(long)]
        jsonl: bool,
        /// Scanners to use for plain input (and lines without a direction).
        #[arg(long, default_value = "input", value_parser = ["input", "output"])]
        direction: String,
    },
}

fn init_logging(format: LogFormat, default_level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
    tracing::info!("shutdown signal received; finishing requests in flight");
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if cli.healthcheck {
        // Every few seconds in a container: no validation, so no model load.
        let config = config::load_unchecked(cli.config.as_deref());
        let healthy = tokio::runtime::Runtime::new()?.block_on(healthcheck(&config));
        std::process::exit(if healthy { 0 } else { 1 });
    }
    let (config, path) = match config::load(cli.config.as_deref()) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    if cli.check_config {
        let source = path.map_or("built-in defaults".to_string(), |p| p.display().to_string());
        println!(
            "# config OK (from {source} and the environment)\n{}",
            config::masked_yaml(&config)
        );
        return Ok(());
    }
    if let Some(Command::Scan { jsonl, direction }) = cli.command {
        init_logging(LogFormat::Text, "warn");
        let direction = if direction == "output" {
            Direction::Output
        } else {
            Direction::Input
        };
        let code = tokio::runtime::Runtime::new()?.block_on(scan(config, jsonl, direction))?;
        std::process::exit(code);
    }
    init_logging(config.server.log_format, "info");
    tokio::runtime::Runtime::new()?.block_on(serve(config))
}

/// `ollama-guard scan`: every text is scanned (no cache), reports to stdout.
async fn scan(config: Config, jsonl: bool, direction: Direction) -> anyhow::Result<i32> {
    let metrics = Arc::new(Metrics::new()?);
    let cache = Arc::new(VerdictCache::disabled(&metrics));
    let guard = Guard::new(&config, cache, metrics).map_err(|p| anyhow::anyhow!(p.join("; ")))?;
    let stdin = std::io::stdin().lock();
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    let outcome = ollama_guard::scan_cli::run(&guard, jsonl, direction, stdin, &mut stdout).await?;
    std::io::Write::flush(&mut stdout)?;
    Ok(outcome.exit_code())
}

/// GET /health on this machine's proxy, as configured.
async fn healthcheck(config: &Config) -> bool {
    let host = match config.server.host.as_str() {
        "0.0.0.0" | "::" | "" => "127.0.0.1",
        h => h,
    };
    let url = format!("http://{host}:{}/health", config.server.port);
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(std::time::Duration::from_secs(3))
        .build();
    match client {
        Ok(c) => matches!(c.get(&url).send().await, Ok(r) if r.status().is_success()),
        Err(_) => false,
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let addr = format!("{}:{}", config.server.host, config.server.port);
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    tracing::info!(addr = %listener.local_addr()?, ollama = %config.ollama.url, "ollama-guard listening");
    let state = AppState::new(config)?;
    run(listener, state, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}
