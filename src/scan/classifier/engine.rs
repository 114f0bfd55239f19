//! The inference thread: it owns the ONNX Runtime session (whose own pool
//! uses `threads` cores), takes texts from a bounded queue, and never runs on
//! the async workers. Texts that wait together are tokenized, their windows
//! sorted by length and run in shared batches, so concurrent requests cost
//! fewer, fuller inference calls. A text whose caller has gone (client left,
//! timeout) is dropped before its turn, and a long text between batches.

use ort::session::Session;
use ort::value::Tensor;
use tokenizers::Tokenizer;
use tokio::sync::{mpsc, oneshot};

use super::head::{EMBEDDING, Head};
use super::windows::cut;

/// Windows per inference call, at most.
pub const MAX_BATCH: usize = 32;
/// Texts that may wait for the thread before callers wait to enqueue.
const QUEUE: usize = 256;

pub struct Job {
    pub text: String,
    pub max_windows: usize,
    /// The probability, or `None` for a text too short to judge.
    pub reply: oneshot::Sender<Result<Option<f32>, String>>,
}

pub struct Engine {
    pub tokenizer: Tokenizer,
    pub session: Session,
    pub head: &'static Head,
    /// Windows per inference call; 1 turns batching off (benchmarks).
    pub batch: usize,
}

impl Engine {
    /// Starts the thread; it ends when every sender is dropped.
    pub fn spawn(self) -> Result<mpsc::Sender<Job>, String> {
        let (tx, rx) = mpsc::channel(QUEUE);
        std::thread::Builder::new()
            .name("guard-classifier".into())
            .spawn(move || self.serve(rx))
            .map_err(|e| format!("cannot start the classifier thread: {e}"))?;
        Ok(tx)
    }

    fn serve(mut self, mut rx: mpsc::Receiver<Job>) {
        while let Some(first) = rx.blocking_recv() {
            let mut jobs = vec![first];
            // Whatever else is already waiting shares the batches.
            while jobs.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            self.run(jobs);
        }
    }

    fn run(&mut self, jobs: Vec<Job>) {
        // (job, window ids) for every window of every live job.
        let mut pending: Vec<(usize, Vec<i64>)> = Vec::new();
        let mut live: Vec<Option<Job>> = Vec::with_capacity(jobs.len());
        for job in jobs {
            if job.reply.is_closed() {
                live.push(None);
                continue;
            }
            match cut(
                &self.tokenizer,
                &job.text,
                self.head.window,
                self.head.stride,
            ) {
                Ok(c) if c.wordy < self.head.min_pieces => {
                    let _ = job.reply.send(Ok(None));
                    live.push(None);
                }
                Ok(c) if c.windows.len() > job.max_windows => {
                    let _ = job.reply.send(Err(format!(
                        "text too long for the classifier: {} windows of {} word pieces, max_windows is {}",
                        c.windows.len(),
                        self.head.window,
                        job.max_windows
                    )));
                    live.push(None);
                }
                Ok(c) => {
                    pending.extend(c.windows.into_iter().map(|ids| (live.len(), ids)));
                    live.push(Some(job));
                }
                Err(e) => {
                    let _ = job.reply.send(Err(e));
                    live.push(None);
                }
            }
        }
        pending.sort_by_key(|(_, ids)| ids.len());
        let mut best = vec![0.0f32; live.len()];
        let mut failed: Vec<Option<String>> = vec![None; live.len()];
        let mut rest = pending.as_slice();
        while !rest.is_empty() {
            let n = batch_len(rest, self.batch);
            let (batch, tail) = rest.split_at(n);
            rest = tail;
            // A caller gone since: its windows are skipped.
            let batch: Vec<&(usize, Vec<i64>)> = batch
                .iter()
                .filter(|(j, _)| live[*j].as_ref().is_some_and(|job| !job.reply.is_closed()))
                .collect();
            if batch.is_empty() {
                continue;
            }
            match self.embed(&batch) {
                Ok(embeddings) => {
                    for ((j, _), e) in batch.iter().zip(embeddings.chunks_exact(EMBEDDING)) {
                        best[*j] = best[*j].max(self.head.probability(e));
                    }
                }
                Err(e) => batch.iter().for_each(|(j, _)| failed[*j] = Some(e.clone())),
            }
        }
        for (j, job) in live.into_iter().enumerate() {
            if let Some(job) = job {
                let _ = job.reply.send(match failed[j].take() {
                    Some(e) => Err(e),
                    None => Ok(Some(best[j])),
                });
            }
        }
    }

    /// One inference call: embeddings of the windows, row after row.
    fn embed(&mut self, batch: &[&(usize, Vec<i64>)]) -> Result<Vec<f32>, String> {
        let len = batch.iter().map(|(_, ids)| ids.len()).max().unwrap_or(0);
        let mut ids = vec![0i64; batch.len() * len];
        let mut mask = vec![0i64; batch.len() * len];
        for (row, (_, w)) in batch.iter().enumerate() {
            ids[row * len..row * len + w.len()].copy_from_slice(w);
            mask[row * len..row * len + w.len()].fill(1);
        }
        let shape = [batch.len(), len];
        let inputs = ort::inputs![
            "input_ids" => Tensor::from_array((shape, ids)).map_err(|e| e.to_string())?,
            "attention_mask" => Tensor::from_array((shape, mask)).map_err(|e| e.to_string())?,
        ];
        let out = self
            .session
            .run(inputs)
            .map_err(|e| format!("classifier inference: {e}"))?;
        let (_, data) = out["embedding"]
            .try_extract_tensor::<f32>()
            .map_err(|e| format!("classifier output: {e}"))?;
        if data.len() != batch.len() * EMBEDDING {
            return Err(format!("classifier output has {} values", data.len()));
        }
        Ok(data.to_vec())
    }
}

/// How many of the (length-sorted) windows go in the next call: up to `max`,
/// stopping before padding would grow the call by more than a quarter.
fn batch_len(sorted: &[(usize, Vec<i64>)], max: usize) -> usize {
    let mut real = 0;
    for (n, (_, ids)) in sorted.iter().take(max.max(1)).enumerate() {
        let padded = (n + 1) * ids.len();
        if n > 0 && padded * 4 > (real + ids.len()) * 5 {
            return n;
        }
        real += ids.len();
    }
    sorted.len().min(max.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(lens: &[usize]) -> Vec<(usize, Vec<i64>)> {
        lens.iter().map(|&n| (0, vec![0; n])).collect()
    }

    #[test]
    fn batches_stop_before_padding_grows_by_a_quarter() {
        assert_eq!(batch_len(&sorted(&[10, 10, 11, 12]), 32), 4);
        // 3 x 20 = 60 padded for 40 real: too much; the 20 waits.
        assert_eq!(batch_len(&sorted(&[10, 10, 20]), 32), 2);
        assert_eq!(batch_len(&sorted(&[128; 40]), 32), 32);
        assert_eq!(batch_len(&sorted(&[5, 6]), 1), 1);
        assert_eq!(batch_len(&sorted(&[7]), 32), 1);
    }
}
