//! The guard of one model reply, streamed or whole. Frames go in as they
//! arrive; [`ReplyGuard::settle`] scans what is new and gives back the frames
//! that may be sent, rewritten where a redaction touched them.
//!
//! - Every text of a frame is scanned (`dialect::output`). A whole text is
//!   judged on its own, through the verdict cache. A stream field (the reply,
//!   thinking, a tool call's arguments, one choice's tokens) has a window of
//!   its own: the last `overlap_bytes` already sent plus everything held.
//! - **Hold back only what could still become a match.** After a clean scan,
//!   each scanner says how many trailing bytes could be the start of a
//!   finding (`Scanner::hold_back`); frames are sent up to there, in order.
//!   The end of the reply releases everything.
//! - **Scan what the client will see.** Redacted text is scanned again
//!   until nothing changes (at most [`MAX_ROUNDS`]); a redaction that would
//!   have to cut text already sent blocks instead.
//! - **Judges see the reply so far.** Costly whole-text scanners (guard
//!   models, the classifier) are not run on every window: a stream field
//!   is judged whole, with the prompt it answers, when its unjudged text
//!   reaches the next interval (64 bytes, then doubling to
//!   `guard.stream.judge_every_bytes`), and once more at the end, before
//!   the final frame. Text waits for its judgement: that is the hold-back
//!   a judge costs.
//! - **Reporters see each field once.** Scanners in `mode: report` cannot
//!   stop or change the text, so no window runs them and no text waits for
//!   them: each field is given to them whole at the end of the reply
//!   (before its last frames are sent, so a reporter's error is decided by
//!   `fail_mode` like any other), not through the verdict cache (a reply is
//!   seen once), and what they find is counted once. Without judges (which
//!   need a field whole), a field longer than [`REPORT_PIECE_BYTES`] is
//!   given to them in pieces of that size as it is sent, so what is kept
//!   for them stays bounded. A reply that ends early still has what was
//!   sent reported ([`ReplyGuard::report_sent`]).
//! - A scanner error is decided by `fail_mode`.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use foldhash::HashMap;

use super::{Guard, Judged};
use crate::config::FailMode;
use crate::dialect::codec::{Framing, Payload};
use crate::dialect::gojson::{Doc, deep};
use crate::dialect::output::{self, OutText, TokenFrame, Withheld};
use crate::dialect::tree::Tree;
use crate::dialect::{Rewrite, Route, apply_rewrites};
use crate::scan::{
    Direction, Mode, Numbering, Pipeline, Redaction, ScanError, Scanned, Turn, Verdict,
};

/// Redact-and-rescan rounds before a text that keeps changing is blocked.
pub const MAX_ROUNDS: usize = 3;

/// Held text (all fields) beyond which held tails are released anyway: a
/// field that stops growing while another streams on must not hold the
/// reply forever. Text released this way is still guarded: a match that
/// later completes across it blocks the stream.
pub const MAX_HELD_BYTES: usize = 64 * 1024;

/// Text of one stream field kept for the scanners in `mode: report` (when
/// no judge needs the field whole): past this much, what was sent is given
/// to them and dropped but for its last `overlap_bytes`, so a reply of any
/// length keeps a bounded amount.
pub const REPORT_PIECE_BYTES: usize = 64 * 1024;

/// Why a reply must stop.
#[derive(Debug, PartialEq)]
pub struct Blocked(pub Vec<String>);

/// The first judgement of a stream field comes after this much text; the
/// interval then doubles up to `guard.stream.judge_every_bytes`.
pub const FIRST_JUDGE_BYTES: usize = 64;

/// What the reply guard needs from the configuration.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub overlap_bytes: usize,
    /// What the client gets only when the operator allows it.
    pub withheld: Withheld,
    /// Largest interval between judgements of a stream field; 0: judge
    /// only the whole field at the end (the stream is held until then).
    pub judge_every_bytes: usize,
}

pub struct ReplyGuard {
    guard: Arc<Guard>,
    route: Route,
    framing: Framing,
    options: Options,
    /// The prompt this reply answers (its last user turn), for scanners
    /// that judge a reply in its conversation.
    prompt: Option<Arc<str>>,
    /// The output policy has judges: stream fields wait for them.
    judging: bool,
    /// The output policy has scanners that only report: the sent text of
    /// each stream field is kept for them (see [`REPORT_PIECE_BYTES`]).
    reporting: bool,
    frames: VecDeque<Frame>,
    /// Sequence number of `frames[0]`.
    first: u64,
    /// By field name. foldhash (seeded per map): SipHash was 4% of a
    /// stream, for a lookup a frame and a few fields a reply.
    windows: HashMap<Cow<'static, str>, Window>,
    numbering: Numbering,
    /// Bytes of model text released so far.
    pub released_text: usize,
    /// Proxy time spent on this reply (before the upstream call, plus every
    /// scan), recorded once when the guard is dropped.
    overhead: Option<crate::metrics::Overhead>,
    /// Findings of every text of the reply, logged once when dropped.
    tally: std::sync::Mutex<super::Tally>,
}

/// A frame waiting to be sent. Its texts were taken out when it was read;
/// the frame itself is parsed again only if it has to be rewritten.
struct Frame {
    raw: Bytes,
    pieces: Vec<Piece>,
    /// Something must be removed (`Withheld`): the frame is re-encoded.
    stripped: bool,
}

struct Piece {
    text: OutText,
    /// A redaction rewrote it.
    rewritten: bool,
    /// Its scan is clean up to it (no scanner could still extend a match
    /// into it).
    settled: bool,
    /// The judges have seen it (always, when there are none).
    judged: bool,
}

impl Piece {
    /// It may be sent.
    fn done(&self) -> bool {
        self.settled && self.judged
    }
}

#[derive(Default)]
struct Window {
    /// The end of the text already sent (at most `overlap_bytes`).
    sent: String,
    /// Whether any of this field was sent (so its window is no longer the
    /// whole text).
    any_sent: bool,
    /// Held pieces, oldest first: (frame sequence number, piece index).
    pending: VecDeque<(u64, usize)>,
    /// New text since the last scan.
    dirty: bool,
    /// All the text of this field sent so far (kept only for judges and
    /// reporters).
    released: String,
    /// Bytes of this field covered by the last judgement.
    judged: usize,
    /// The reporters have seen this field (at the end of the reply).
    reported: bool,
    /// No finding can start in `sent`: it was released by a hold-back
    /// check (not forced out), and the held text has not been rewritten
    /// since. The next check then tries only starts in the new text.
    sent_settled: bool,
}

impl Drop for ReplyGuard {
    fn drop(&mut self) {
        self.tally
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .log(Direction::Output);
    }
}

impl ReplyGuard {
    /// `overhead` is the request's own time so far, recorded when this
    /// guard is done (`None`: not counted); `prompt` the request's last
    /// user turn, if it had one.
    pub fn new(
        guard: Arc<Guard>,
        route: Route,
        framing: Framing,
        options: Options,
        overhead: Option<crate::metrics::Overhead>,
        prompt: Option<Arc<str>>,
    ) -> Self {
        Self {
            judging: !guard.output.judges.is_empty(),
            reporting: !guard.output.reporters.is_empty(),
            guard,
            route,
            framing,
            options,
            prompt,
            frames: VecDeque::new(),
            first: 0,
            windows: HashMap::default(),
            numbering: Numbering::default(),
            released_text: 0,
            overhead,
            tally: Default::default(),
        }
    }

    pub fn fail_mode(&self) -> FailMode {
        self.guard.fail_mode()
    }

    /// Counts a block decided outside the scanners (unreadable output).
    pub fn count_block(&self, name: &str) {
        self.guard
            .metrics
            .count_blocks(Direction::Output, &[name.to_string()]);
    }

    /// Adds a frame, `doc` being its parsed payload; true when it ends the
    /// reply. An error when the frame's texts have the wrong types
    /// (unreadable output).
    pub fn push(&mut self, raw: Bytes, doc: &Tree) -> Result<bool, String> {
        let is_final = output::is_final_frame(self.route, &doc.root);
        let withheld = self.options.withheld;
        let stripped = withheld.finds(&doc.root);
        let texts = deep(doc.depth, || output::texts(self.route, &doc.root, withheld))?;
        self.push_texts(raw, texts, stripped);
        Ok(is_final)
    }

    /// Adds a frame read without a tree (`dialect::output::token_frame`):
    /// nothing in it is withheld. True when it ends the reply.
    pub fn push_token(&mut self, raw: Bytes, frame: TokenFrame) -> bool {
        self.push_texts(raw, frame.texts, false);
        frame.last
    }

    fn push_texts(&mut self, raw: Bytes, texts: Vec<OutText>, stripped: bool) {
        let seq = self.first + self.frames.len() as u64;
        for (i, t) in texts.iter().enumerate() {
            if let Some(field) = &t.field {
                // Looked up before inserting: the field is nearly always
                // there already, and its name need not be copied then.
                match self.windows.get_mut(field.as_ref()) {
                    Some(w) => {
                        w.pending.push_back((seq, i));
                        w.dirty = true;
                    }
                    None => {
                        let w = Window {
                            pending: VecDeque::from([(seq, i)]),
                            dirty: true,
                            ..Window::default()
                        };
                        self.windows.insert(field.clone(), w);
                    }
                }
            }
        }
        let pieces = texts
            .into_iter()
            .map(|text| Piece {
                judged: !self.judging || text.field.is_none(),
                text,
                rewritten: false,
                settled: false,
            })
            .collect();
        self.frames.push_back(Frame {
            raw,
            pieces,
            stripped,
        });
    }

    /// Adds a frame that carries no text (SSE comments, `[DONE]`), or one
    /// that could not be read and passes unscanned (`fail_mode: open`).
    pub fn push_opaque(&mut self, raw: Bytes) {
        self.frames.push_back(Frame {
            raw,
            pieces: Vec::new(),
            stripped: false,
        });
    }

    /// Scans what is new and returns the bytes that may be sent now. With
    /// `end`, the reply is complete: nothing is held back.
    pub async fn settle(&mut self, end: bool) -> Result<Bytes, Blocked> {
        let started = Instant::now();
        let result = self.scan_new(end).await;
        if let Some(o) = &mut self.overhead {
            o.add(started.elapsed());
        }
        if let Err(Blocked(scanners)) = &result {
            self.guard.metrics.count_blocks(Direction::Output, scanners);
        }
        result?;
        self.release()
    }

    async fn scan_new(&mut self, end: bool) -> Result<(), Blocked> {
        self.judge_whole_texts().await?;
        let held: usize = self.held_bytes();
        let force = held > MAX_HELD_BYTES;
        let fields: Vec<Cow<'static, str>> = self
            .windows
            .iter()
            .filter(|(_, w)| !w.pending.is_empty() && (w.dirty || end || force))
            .map(|(k, _)| k.clone())
            .collect();
        for field in fields {
            self.scan_window(&field, end || force, end).await?;
        }
        self.report_fields(end).await
    }

    /// Gives the reporters what they must see now. At the end of the reply,
    /// each field not seen whole yet: what was sent, then what is still
    /// held, as it will be sent. Before it, the sent text of a field that
    /// reached [`REPORT_PIECE_BYTES`], of which only the last
    /// `overlap_bytes` are then kept (unless judges need it all).
    async fn report_fields(&mut self, end: bool) -> Result<(), Blocked> {
        if !self.reporting {
            return Ok(());
        }
        let piece_bytes = match self.judging {
            true => usize::MAX,
            false => REPORT_PIECE_BYTES,
        };
        let mut todo = Vec::new();
        for (field, w) in &mut self.windows {
            if end && !std::mem::replace(&mut w.reported, true) {
                todo.push((field.clone(), w.pending.iter().copied().collect::<Vec<_>>()));
            } else if !end && w.released.len() >= piece_bytes {
                todo.push((field.clone(), Vec::new()));
            }
        }
        for (field, ids) in todo {
            // Taken, not copied: at the end nothing reads it again, and a
            // piece's text goes back but for what was reported.
            let Some(w) = self.windows.get_mut(&field) else {
                continue;
            };
            let mut text = std::mem::take(&mut w.released);
            for id in &ids {
                text.push_str(&self.piece(*id).text.text);
            }
            if !text.is_empty() {
                self.uncached_verdict(&self.guard.output.reporters, &text)
                    .await?;
            }
            if !end {
                // The next piece starts with this one's end, so a finding
                // across the cut is seen (one inside it may count twice).
                let overlap = self.options.overlap_bytes;
                let cut = floor_char_boundary(&text, text.len().saturating_sub(overlap));
                text.drain(..cut);
                if let Some(w) = self.windows.get_mut(&field) {
                    w.released = text;
                }
            }
        }
        Ok(())
    }

    fn held_bytes(&self) -> usize {
        self.frames
            .iter()
            .flat_map(|f| &f.pieces)
            .filter(|p| !p.done())
            .map(|p| p.text.text.len())
            .sum()
    }

    fn piece(&mut self, (seq, i): (u64, usize)) -> &mut Piece {
        let at = (seq - self.first) as usize;
        &mut self.frames[at].pieces[i]
    }

    /// Each whole text not judged yet, through the verdict cache.
    async fn judge_whole_texts(&mut self) -> Result<(), Blocked> {
        let mut todo = Vec::new();
        for (f, frame) in self.frames.iter().enumerate() {
            for (i, p) in frame.pieces.iter().enumerate() {
                if p.text.field.is_none() && !p.settled {
                    todo.push((f, i, p.text.text.clone()));
                }
            }
        }
        for (f, i, text) in todo {
            let rewritten = self.judge_text(text).await?;
            let piece = &mut self.frames[f].pieces[i];
            if let Some(text) = rewritten {
                piece.text.text = text;
                piece.rewritten = true;
            }
            piece.settled = true;
        }
        Ok(())
    }

    /// One whole text: `None` if it passes as is, the rewritten text if a
    /// redaction applies (scanned again until it stops changing).
    async fn judge_text(&mut self, mut text: String) -> Result<Option<String>, Blocked> {
        let mut changed = false;
        for _ in 0..MAX_ROUNDS {
            let verdict = self.cached_verdict(&text).await?;
            if verdict.redactions.is_empty() {
                return Ok(changed.then_some(text));
            }
            text = verdict.apply_numbered(&text, &mut self.numbering);
            changed = true;
        }
        Err(Blocked(self.unsettled(&text).await))
    }

    async fn cached_verdict(&self, text: &str) -> Result<Arc<Verdict>, Blocked> {
        let result = self
            .guard
            .reply_verdict(Judged::ByAll, text, self.prompt.as_ref())
            .await;
        self.decide(result.map_err(|e| vec![e]))
    }

    /// When the reply ends early (the upstream failed, stalled or closed),
    /// what was sent of each field not yet reported is still given to the
    /// reporters, so what the client saw is counted. Their errors change
    /// nothing then: the reply is over.
    pub async fn report_sent(&mut self) {
        if !self.reporting {
            return;
        }
        let sent: Vec<String> = self
            .windows
            .values_mut()
            .filter_map(|w| {
                // The reply is over: what was kept is taken, not copied.
                let unreported = !std::mem::replace(&mut w.reported, true);
                (unreported && !w.released.is_empty()).then(|| std::mem::take(&mut w.released))
            })
            .collect();
        for text in sent {
            match self
                .scan_uncached(&self.guard.output.reporters, &text)
                .await
            {
                Ok(s) => self
                    .tally
                    .get_mut()
                    .unwrap_or_else(|p| p.into_inner())
                    .add(&s.verdict),
                Err(e) => {
                    tracing::warn!(scanner = %e.scanner, error = %e.message, "reporter failed on a reply that ended early")
                }
            }
        }
    }

    /// A verdict on `text` by `scanners`, not through the cache: a window,
    /// or a whole field for the reporters, is seen once.
    async fn uncached_verdict(
        &self,
        scanners: &Arc<Pipeline>,
        text: &str,
    ) -> Result<Arc<Verdict>, Blocked> {
        let scanned = self.scan_uncached(scanners, text).await;
        self.decide(scanned.map(|s| Arc::new(s.verdict)).map_err(|e| vec![e]))
    }

    /// `text` through `scanners` as a reply to the prompt, its scanner
    /// times recorded.
    async fn scan_uncached(
        &self,
        scanners: &Arc<Pipeline>,
        text: &str,
    ) -> Result<Scanned, ScanError> {
        let turn = Turn::Reply(self.prompt.clone());
        let scanned = self.guard.pool.scan_turn(scanners, text, &turn).await;
        if let Ok(s) = &scanned {
            self.guard.metrics.observe_scan(Direction::Output, &s.runs);
        }
        scanned
    }

    /// The names of the scanners still redacting `text` after the last round.
    async fn unsettled(&self, text: &str) -> Vec<String> {
        match self
            .guard
            .reply_verdict(Judged::ByAll, text, self.prompt.as_ref())
            .await
        {
            Ok(v) => redacting(&v),
            Err(e) => vec![e.scanner],
        }
    }

    /// A verdict that allows the text, or the block (scanner errors per
    /// `fail_mode`: open passes with an empty verdict).
    fn decide(
        &self,
        result: Result<Arc<Verdict>, Vec<crate::scan::ScanError>>,
    ) -> Result<Arc<Verdict>, Blocked> {
        match result {
            Ok(v) => {
                self.tally.lock().unwrap_or_else(|p| p.into_inner()).add(&v);
                match v.allowed {
                    true => Ok(v),
                    false => Err(Blocked(v.blocking_scanners())),
                }
            }
            Err(errors) => {
                let mut blockers = Vec::new();
                for e in errors {
                    self.guard
                        .or_fail_mode(Direction::Output, Err(e), &mut blockers);
                }
                if blockers.is_empty() {
                    Ok(Arc::new(Verdict {
                        allowed: true,
                        ..Verdict::default()
                    }))
                } else {
                    Err(Blocked(blockers))
                }
            }
        }
    }

    /// Scans one field's window, rewrites its held pieces, and settles
    /// those before the held-back tail (all of them with `release`: the end
    /// of the reply, `last`, or too much held).
    async fn scan_window(&mut self, field: &str, release: bool, last: bool) -> Result<(), Blocked> {
        let Some(window) = self.windows.get_mut(field) else {
            return Ok(());
        };
        window.dirty = false;
        let sent = window.sent.clone();
        let whole = !window.any_sent;
        let sent_settled = window.sent_settled;
        let ids: Vec<(u64, usize)> = window.pending.iter().copied().collect();
        let judging = self.judging;
        for round in 0.. {
            let (text, ranges) = self.window_text(&sent, &ids);
            // A field never sent is judged whole by every scanner at the
            // end of the reply; otherwise windows go to the window scanners.
            let verdict = if last && whole {
                self.cached_verdict(&text).await?
            } else {
                self.uncached_verdict(&self.guard.output.windows, &text)
                    .await?
            };
            // Redactions wholly inside text already sent were applied
            // before it was sent (or are placeholders): nothing to do.
            let fresh: Vec<Redaction> = verdict
                .redactions
                .iter()
                .filter(|r| r.end > sent.len())
                .cloned()
                .collect();
            if fresh.is_empty() {
                let hold = if release {
                    0
                } else {
                    // A rewrite in an earlier round changed what follows
                    // the sent text: its starts are tried again.
                    let settled = match sent_settled && round == 0 {
                        true => sent.len(),
                        false => 0,
                    };
                    self.guard.output.pipeline.hold_back(&text, settled)
                };
                if let Some(w) = self.windows.get_mut(field) {
                    w.sent_settled = !release;
                    // Judged whole by every scanner, reporters included.
                    w.reported |= last && whole;
                }
                let release_to = text.len() - hold.min(text.len());
                for (id, range) in ids.iter().zip(&ranges) {
                    if range.end <= release_to {
                        self.piece(*id).settled = true;
                    }
                }
                if last && whole {
                    self.mark_judged(field, &ids, text.len() - sent.len());
                    return Ok(());
                }
                // The judges see what may be sent now, as it will be sent;
                // a held-back tail waits for a later judgement.
                let ready = ranges.iter().take_while(|r| r.end <= release_to).count();
                let ready_end = ranges[..ready].last().map_or(sent.len(), |r| r.end);
                let held = &text[sent.len()..ready_end];
                return self.judge_field(field, &ids[..ready], held, release).await;
            }
            if fresh.iter().any(|r| r.start < sent.len()) || round + 1 == MAX_ROUNDS {
                // Part of it was sent already, or redacting does not settle.
                return Err(Blocked(redacting(&verdict)));
            }
            for (id, range) in ids.iter().zip(&ranges) {
                if fresh
                    .iter()
                    .any(|r| r.start < range.end && r.end > range.start)
                {
                    let mut numbering = std::mem::take(&mut self.numbering);
                    let piece = self.piece(*id);
                    piece.text.text = redact_range(&piece.text.text, range, &fresh, &mut numbering);
                    piece.rewritten = true;
                    // The judges must see it as it will be sent.
                    piece.judged &= !judging;
                    self.numbering = numbering;
                }
            }
        }
        Ok(())
    }

    /// The window's text (sent tail, then each held piece) and where each
    /// held piece sits in it.
    fn window_text(&mut self, sent: &str, ids: &[(u64, usize)]) -> (String, Vec<Range<usize>>) {
        let mut text = sent.to_string();
        let mut ranges = Vec::with_capacity(ids.len());
        for id in ids {
            let piece = &self.piece(*id).text.text;
            let start = text.len();
            text.push_str(piece);
            ranges.push(start..text.len());
        }
        (text, ranges)
    }

    /// Sends the frames at the front whose texts are all settled. One frame
    /// (a paced token, a whole reply) goes out as it is held, not copied.
    fn release(&mut self) -> Result<Bytes, Blocked> {
        let mut out: Vec<Bytes> = Vec::new();
        while self
            .frames
            .front()
            .is_some_and(|f| f.pieces.iter().all(Piece::done))
        {
            let Some(frame) = self.frames.pop_front() else {
                break;
            };
            let seq = self.first;
            self.first += 1;
            for p in &frame.pieces {
                let Some(field) = &p.text.field else {
                    continue;
                };
                if let Some(w) = self.windows.get_mut(field.as_ref()) {
                    if w.pending.front().is_some_and(|(s, _)| *s == seq) {
                        w.pending.pop_front();
                    }
                    w.sent.push_str(&p.text.text);
                    if self.judging || self.reporting {
                        w.released.push_str(&p.text.text);
                    }
                    w.any_sent = true;
                }
                self.released_text += p.text.text.len();
            }
            out.push(self.encode(frame)?);
        }
        // Each window keeps the last `overlap_bytes` sent: cut once here,
        // not for every frame released.
        let overlap = self.options.overlap_bytes;
        for w in self.windows.values_mut() {
            let keep = floor_char_boundary(&w.sent, w.sent.len().saturating_sub(overlap));
            w.sent.drain(..keep);
        }
        Ok(match out.len() {
            0 => Bytes::new(),
            1 => out.swap_remove(0),
            _ => Bytes::from(out.concat()),
        })
    }

    /// A frame's bytes: as received, or parsed again and re-encoded with
    /// its rewrites and without what is withheld.
    fn encode(&self, frame: Frame) -> Result<Bytes, Blocked> {
        let rewritten = frame.pieces.iter().any(|p| p.rewritten);
        if !rewritten && !frame.stripped {
            return Ok(frame.raw);
        }
        // It was read with the same refusals when pushed: this cannot fail.
        let mut doc = match self.framing.payload(&frame.raw) {
            Payload::Json(data) => Doc::parse(&data).map_err(|e| {
                tracing::warn!(error = %e, "a frame read before cannot be read again; blocking");
                Blocked(vec!["unreadable_output".into()])
            })?,
            Payload::Done | Payload::Empty => return Ok(frame.raw),
        };
        self.options.withheld.strip(&mut doc.value);
        let rewrites: Vec<Rewrite> = frame
            .pieces
            .iter()
            .filter(|p| p.rewritten)
            .map(|p| Rewrite {
                pointer: p.text.pointer.to_string(),
                text: p.text.text.clone(),
                key: p.text.key,
            })
            .collect();
        if let Err(e) = apply_rewrites(&mut doc.value, &rewrites) {
            // Two redacted keys of one object became the same key: the
            // frame cannot be rebuilt without losing one, so it is stopped.
            tracing::warn!(error = %e, "output rewrite failed; blocking");
            return Err(Blocked(vec!["redaction".into()]));
        }
        let framing = self.framing;
        Ok(deep(doc.depth, || framing.reencode(&frame.raw, &doc.value)))
    }
}

/// Names of the scanners whose findings redact.
fn redacting(v: &Verdict) -> Vec<String> {
    let mut names: Vec<String> = v
        .findings
        .iter()
        .filter(|f| f.action == Mode::Redact)
        .map(|f| f.scanner.clone())
        .collect();
    names.dedup();
    names
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// `original` (which sat at `range` of the scanned window) with the parts of
/// `redactions` that fall inside it replaced. A placeholder is written where
/// its span starts (numbered by `numbering`); a span that started in an
/// earlier piece only removes its tail here.
pub fn redact_range(
    original: &str,
    range: &Range<usize>,
    redactions: &[Redaction],
    numbering: &mut Numbering,
) -> String {
    let mut out = String::with_capacity(original.len());
    let mut at = range.start;
    for r in redactions
        .iter()
        .filter(|r| r.start < range.end && r.end > range.start)
    {
        let cut_start = r.start.max(at);
        let cut_end = r.end.min(range.end);
        if cut_start < at || cut_end < cut_start {
            continue;
        }
        let (a, b) = (cut_start - range.start, cut_end - range.start);
        if !original.is_char_boundary(a) || !original.is_char_boundary(b) {
            continue;
        }
        out.push_str(&original[at - range.start..a]);
        if r.start >= range.start {
            out.push_str(&numbering.label(&r.placeholder, &original[a..b]));
        }
        at = cut_end;
    }
    out.push_str(&original[at - range.start..]);
    out
}

#[cfg(test)]
mod generate_stream;
mod judge;
#[cfg(test)]
mod judge_tests;
#[cfg(test)]
mod report_tests;
#[cfg(test)]
mod tests;
