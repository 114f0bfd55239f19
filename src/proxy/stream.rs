//! Guarding a streamed reply. Upstream bytes are cut into frames; frames that
//! carry text are held until the [`OutputGuard`] has scanned that text, then
//! released byte-exact (or rewritten, when a redaction touches them). The
//! frame that ends the reply is released only after the final scan. A block
//! ends the stream with the protocol's own closing frame and drops the
//! upstream response, which cancels the generation in Ollama.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use serde_json::Value;

use super::blocks::stream_block_frames;
use crate::config::Config;
use crate::dialect::codec::{Framer, Framing, Payload};
use crate::dialect::{Rewrite, Route, apply_rewrites};
use crate::guard::output::{OutputGuard, WindowVerdict, redact_range};
use crate::scan::{Numbering, Redaction};

/// A text field of a frame: its JSON pointer and its place in the reply.
type Field = (String, Range<usize>);

/// A frame waiting for its text to be scanned.
struct Held {
    raw: Bytes,
    /// The parsed frame and its text fields; `None` for frames without text.
    text: Option<(Value, Vec<Field>)>,
}

impl Held {
    /// The bytes to send, rewritten if a redaction touches this frame.
    fn release(
        self,
        framing: Framing,
        redactions: &[Redaction],
        numbering: &mut Numbering,
    ) -> Bytes {
        let Some((mut value, fields)) = self.text else {
            return self.raw;
        };
        let touched = |r: &Range<usize>| {
            redactions
                .iter()
                .any(|x| x.start < r.end && x.end > r.start)
        };
        if !fields.iter().any(|(_, r)| touched(r)) {
            return self.raw;
        }
        let rewrites: Vec<Rewrite> = fields
            .iter()
            .filter(|(_, r)| touched(r))
            .filter_map(|(p, r)| {
                value.pointer(p).and_then(Value::as_str).map(|t| Rewrite {
                    pointer: p.clone(),
                    text: redact_range(t, r, redactions, numbering),
                    key: false,
                })
            })
            .collect();
        // Values only: renaming keys is the one way a rewrite can fail.
        let _ = apply_rewrites(&mut value, &rewrites);
        framing.reencode(&self.raw, &value)
    }
}

pub struct StreamContext {
    pub route: Route,
    pub framing: Framing,
    pub guard: OutputGuard,
    /// The whole config, shared: the stream reads `guard` from it.
    pub config: Arc<Config>,
    pub model: String,
}

/// The guarded byte stream sent to the client.
pub fn guard_stream<S>(
    ctx: StreamContext,
    upstream: S,
) -> impl Stream<Item = Result<Bytes, std::io::Error>>
where
    S: Stream<Item = Result<Bytes, reqwest::Error>> + Send + 'static,
{
    let StreamContext {
        route,
        framing,
        mut guard,
        config,
        model,
    } = ctx;
    async_stream::stream! {
        let mut upstream = Box::pin(upstream);
        let mut framer = Framer::new(framing);
        let mut held: VecDeque<Held> = VecDeque::new();
        let mut id = String::from("chatcmpl-guard");
        let mut numbering = Numbering::default();
        let mut ended = false;
        while !ended {
            let frames = match upstream.next().await {
                Some(Ok(chunk)) => framer.push(&chunk),
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "upstream stream failed");
                    yield Err(std::io::Error::other(e));
                    return;
                }
                None => {
                    ended = true;
                    framer.finish().into_iter().collect()
                }
            };
            let mut final_seen = ended;
            for raw in frames {
                let payload = framing.decode(&raw);
                let text = match payload {
                    Payload::Json(value) => {
                        if let Some(i) = value.get("id").and_then(Value::as_str) {
                            id = i.to_string();
                        }
                        final_seen |= route.is_final_frame(&value);
                        let fields: Vec<Field> = route
                            .frame_segments(&value)
                            .into_iter()
                            .map(|s| { let r = guard.push(&s.text); (s.pointer, r) })
                            .collect();
                        (!fields.is_empty()).then_some((value, fields))
                    }
                    Payload::Done => { final_seen = true; None }
                    Payload::Other => None,
                };
                held.push_back(Held { raw, text });
            }
            if held.is_empty() || !(final_seen || guard.due() || guard.pending_bytes() == 0) {
                continue;
            }
            match guard.scan().await {
                WindowVerdict::Block(scanners) => {
                    tracing::info!(scanners = ?scanners, "streamed output blocked");
                    yield Ok(stream_block_frames(&config.guard, route, &model, &id, &scanners));
                    return;
                }
                WindowVerdict::Pass(redactions) => {
                    let mut out = Vec::new();
                    for frame in held.drain(..) {
                        out.extend_from_slice(&frame.release(framing, &redactions, &mut numbering));
                    }
                    yield Ok(Bytes::from(out));
                }
            }
        }
    }
}
