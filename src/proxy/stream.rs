//! Guarding a streamed reply. Upstream bytes are cut into frames and handed
//! to the [`ReplyGuard`], which gives back what may be sent after each
//! chunk. However the stream ends early, the client gets the protocol's own
//! closing frames (`blocks::Ending`): a block, an upstream that fails,
//! stalls or closes early, a frame that cannot be read (`fail_mode`
//! decides), or the end of the shutdown grace period. Dropping the upstream
//! response cancels the generation in Ollama.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::sync::watch;

use super::blocks::Ending;
use crate::config::{Config, FailMode};
use crate::dialect::codec::{Framer, Framing, Payload};
use crate::dialect::tree::{Node, Tree};
use crate::dialect::{Route, output};
use crate::guard::output::{Blocked, ReplyGuard};
use crate::upstream::BodyError;

pub struct StreamContext {
    pub route: Route,
    pub framing: Framing,
    pub guard: ReplyGuard,
    pub config: Arc<Config>,
    pub model: String,
    pub include_usage: bool,
    /// Turns true when the shutdown grace period is over.
    pub closing: watch::Receiver<bool>,
}

/// How the stream is going.
struct Progress {
    id: String,
    chunks: usize,
    blocks: u64,
}

impl Progress {
    /// Notes what a frame tells about the stream (its id, a token, a block).
    fn saw(&mut self, frame: &Node, route: Route) {
        if let Some(i) = frame.get("id").and_then(Node::as_str)
            && i != self.id
        {
            self.id = i.to_string();
        }
        if route == Route::AnthropicMessages
            && frame.get("type").and_then(Node::as_str) == Some("content_block_start")
        {
            self.blocks += 1;
        }
        self.chunks += 1;
    }
}

/// One step of the upstream: frames, its end, or a failure.
enum Step {
    Frames(Vec<Bytes>),
    End(Option<Bytes>),
    Failed(String),
}

/// The guarded byte stream sent to the client.
pub fn guard_stream<S>(
    ctx: StreamContext,
    upstream: S,
) -> impl Stream<Item = Result<Bytes, std::io::Error>>
where
    S: Stream<Item = Result<Bytes, BodyError>> + Send + 'static,
{
    let StreamContext {
        route,
        framing,
        mut guard,
        config,
        model,
        include_usage,
        mut closing,
    } = ctx;
    async_stream::stream! {
        let mut upstream = Box::pin(upstream);
        let mut framer = Framer::new(framing);
        let mut progress = Progress { id: "chatcmpl-guard".into(), chunks: 0, blocks: 0 };
        let mut final_seen = false;
        let mut started = false;
        loop {
            let step = tokio::select! {
                next = upstream.next() => match next {
                    Some(Ok(chunk)) => framer.push(chunk).map_or_else(Step::Failed, Step::Frames),
                    Some(Err(e)) => Step::Failed(upstream_failure(&e)),
                    None => Step::End(framer.finish()),
                },
                _ = closing.wait_for(|c| *c) => Step::Failed("the proxy is shutting down".into()),
            };
            let (frames, ended) = match step {
                Step::Frames(frames) => (frames, false),
                Step::End(rest) => (rest.into_iter().collect(), true),
                Step::Failed(why) => {
                    tracing::warn!(route = route.path(), reason = %why, "stream ended early");
                    // Shutting down, the closing frames must go out in the
                    // moment the server gives them: nothing is reported.
                    let shutting_down = *closing.borrow();
                    if !shutting_down {
                        guard.report_sent().await;
                    }
                    let ending = ending(&config, route, &model, &progress, started, include_usage);
                    yield Ok(ending.failed(&why));
                    return;
                }
            };
            let mut unreadable = None;
            for raw in frames {
                let taken = match framing.payload(&raw) {
                    // Nearly every Ollama frame is one token: read without
                    // a tree when it is in Ollama's own shape (which has no
                    // `id` or `type` for `progress`).
                    Payload::Json(data) => match output::token_frame(route, &data) {
                        Some(frame) => {
                            progress.chunks += 1;
                            // Moved, not cloned: a clone and its drop are
                            // two atomic operations a token.
                            drop(data);
                            final_seen |= guard.push_token(raw, frame);
                            continue;
                        }
                        None => Tree::parse(&data).and_then(|doc| {
                            progress.saw(&doc.root, route);
                            guard.push(raw.clone(), &doc)
                        }),
                    },
                    Payload::Done => {
                        guard.push_opaque(raw.clone());
                        Ok(true)
                    }
                    Payload::Empty => {
                        guard.push_opaque(raw.clone());
                        Ok(false)
                    }
                };
                match taken {
                    Ok(last) => final_seen |= last,
                    Err(e) if guard.fail_mode() == FailMode::Open => {
                        tracing::warn!(route = route.path(), error = %e, "unreadable stream frame passed unscanned (fail_mode: open)");
                        guard.push_opaque(raw);
                    }
                    Err(e) => {
                        unreadable = Some(e);
                        break;
                    }
                }
            }
            if let Some(e) = unreadable {
                tracing::warn!(route = route.path(), error = %e, "unreadable stream frame; blocking (fail_mode: closed)");
                guard.count_block("unreadable_output");
                let ending = ending(&config, route, &model, &progress, started, include_usage);
                yield Ok(ending.blocked(&["unreadable_output".to_string()]));
                return;
            }
            match guard.settle(final_seen || ended).await {
                Ok(bytes) => {
                    if !bytes.is_empty() {
                        started = true;
                        yield Ok(bytes);
                    }
                }
                Err(Blocked(scanners)) => {
                    tracing::info!(route = route.path(), scanners = ?scanners, "streamed output blocked");
                    let ending = ending(&config, route, &model, &progress, started, include_usage);
                    yield Ok(ending.blocked(&scanners));
                    return;
                }
            }
            if ended {
                if !final_seen {
                    let why = "the upstream closed the stream before its last frame";
                    tracing::warn!(route = route.path(), "{why}");
                    guard.report_sent().await;
                    let ending = ending(&config, route, &model, &progress, started, include_usage);
                    yield Ok(ending.failed(why));
                }
                return;
            }
        }
    }
}

fn ending<'a>(
    config: &'a Config,
    route: Route,
    model: &'a str,
    progress: &'a Progress,
    started: bool,
    include_usage: bool,
) -> Ending<'a> {
    Ending {
        config: &config.guard,
        route,
        model,
        id: &progress.id,
        started,
        include_usage,
        chunks: progress.chunks,
        blocks: progress.blocks,
    }
}

/// Words for the client about an upstream failure mid-stream.
fn upstream_failure(e: &BodyError) -> String {
    match e {
        BodyError::Stalled => "the upstream stream stalled (ollama.idle_timeout_secs)".into(),
        BodyError::Failed(_) => "the upstream stream failed".into(),
    }
}
