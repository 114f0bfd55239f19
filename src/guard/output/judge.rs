//! Judges in a stream: when a field is due for a judgement of all its text
//! so far, and what that judgement covers (see the module above).

use super::{Blocked, FIRST_JUDGE_BYTES, Options, ReplyGuard};
use crate::guard::Judged;

impl Options {
    /// Unjudged bytes that make a field due for judgement, after
    /// `judged` bytes of it were judged.
    pub(super) fn judge_interval(&self, judged: usize) -> usize {
        match self.judge_every_bytes {
            0 => usize::MAX,
            every => judged.clamp(FIRST_JUDGE_BYTES.min(every), every),
        }
    }
}

impl ReplyGuard {
    /// When the field is due (enough unjudged text, its end, or too much
    /// held: `end` says either), asks the judges about all of it so far:
    /// what was sent, then `held` (the held pieces `ids`, as they will be
    /// sent).
    pub(super) async fn judge_field(
        &mut self,
        field: &str,
        ids: &[(u64, usize)],
        held: &str,
        end: bool,
    ) -> Result<(), Blocked> {
        if !self.judging || ids.iter().all(|id| self.piece(*id).judged) {
            return Ok(());
        }
        let Some(window) = self.windows.get(field) else {
            return Ok(());
        };
        // (A redaction may shorten text judged before: never below zero.)
        let unjudged = (window.released.len() + held.len()).saturating_sub(window.judged);
        if !end && unjudged < self.options.judge_interval(window.judged) {
            return Ok(());
        }
        let text = format!("{}{held}", window.released);
        let prompt = self.prompt.as_ref();
        let result = self
            .guard
            .reply_verdict(Judged::ByJudges, &text, prompt)
            .await;
        self.decide(result.map_err(|e| vec![e]))?;
        self.mark_judged(field, ids, held.len());
        Ok(())
    }

    /// The pieces `ids` (`held` bytes after what was sent) were judged.
    pub(super) fn mark_judged(&mut self, field: &str, ids: &[(u64, usize)], held: usize) {
        for id in ids {
            self.piece(*id).judged = true;
        }
        if let Some(w) = self.windows.get_mut(field) {
            w.judged = w.released.len() + held;
        }
    }
}
