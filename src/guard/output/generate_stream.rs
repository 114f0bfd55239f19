//! Test helpers: a stream of `/api/generate` frames through a reply guard,
//! and what a client receives of it.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde_json::{Value, json};

use super::{Blocked, Options, ReplyGuard};
use crate::cache::VerdictCache;
use crate::config::{Config, FailMode};
use crate::dialect::Route;
use crate::dialect::codec::Framing;
use crate::dialect::output::Withheld;
use crate::dialect::tree::Tree;
use crate::guard::Guard;
use crate::metrics::Metrics;
use crate::scan::pipeline::{Configured, Pipeline};

/// The guard of a generate stream answering `prompt`, with no cache and
/// two output scanners: `secrets` (redact), then `extra`.
pub fn reply_guard(
    extra: Configured,
    fail_mode: FailMode,
    judge_every_bytes: usize,
    prompt: Option<&str>,
) -> ReplyGuard {
    let mut config = Config::default();
    config.cache.enabled = false;
    config.guard.fail_mode = fail_mode;
    config.scanners.output =
        serde_saphyr::from_str("[{type: secrets, mode: redact}]").expect("yaml");
    let metrics = Arc::new(Metrics::new().expect("metrics"));
    let cache = VerdictCache::from_config(&config, &metrics).expect("cache");
    let mut guard = Guard::new(&config, Arc::new(cache), metrics).expect("guard");
    let secrets = config.scanners.output[0]
        .build(&config.scanner_resources())
        .expect("secrets");
    let pipeline = Pipeline::new(vec![secrets, extra]);
    let out = &mut guard.output;
    out.windows = Arc::new(pipeline.for_windows());
    out.judges = Arc::new(pipeline.judges());
    out.reporters = Arc::new(pipeline.reporters());
    out.seams = Arc::new(pipeline.for_seams());
    out.uses_prompt = pipeline.uses_prompt();
    out.pipeline = Arc::new(pipeline);
    let options = Options {
        overlap_bytes: 256,
        withheld: Withheld::default(),
        judge_every_bytes,
    };
    let (route, framing) = (Route::Generate, Framing::Ndjson);
    ReplyGuard::new(
        Arc::new(guard),
        route,
        framing,
        options,
        None,
        prompt.map(Arc::from),
    )
}

/// Pushes one generate frame carrying `text`.
pub fn push(g: &mut ReplyGuard, text: &str, done: bool) {
    let v = json!({"model": "m", "response": text, "done": done});
    let raw = Bytes::from(format!("{v}\n"));
    let doc = Tree::parse(&raw).expect("json");
    g.push(raw.clone(), &doc).expect("well typed");
}

/// The `response` texts of the NDJSON frames in `bytes`, joined.
pub fn response_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["response"].as_str().map(String::from))
        .collect()
}

/// Streams `tokens` (the last ends the reply); after each settle, what was
/// sent so far. Stops at a block, returning it with what was sent before.
pub async fn run(g: &mut ReplyGuard, tokens: &[String]) -> (Vec<String>, Option<Blocked>) {
    let (mut all, mut sent) = (Vec::new(), Vec::new());
    for (i, t) in tokens.iter().enumerate() {
        let end = i + 1 == tokens.len();
        push(g, t, end);
        match g.settle(end).await {
            Ok(bytes) => all.extend_from_slice(&bytes),
            Err(b) => return (sent, Some(b)),
        }
        sent.push(response_text(&all));
    }
    (sent, None)
}

/// What a recording scanner was asked, so far.
pub fn asked<T: Clone>(log: &Mutex<Vec<T>>) -> Vec<T> {
    log.lock().unwrap_or_else(|p| p.into_inner()).clone()
}
