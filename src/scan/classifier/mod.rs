//! The learned part of `prompt_injection`: all-MiniLM-L6-v2 (a sentence
//! encoder, Apache-2.0) run in process by ONNX Runtime, and a small head
//! over its mean-pooled embedding (`head.rs`). Texts are read in windows
//! (`windows.rs`) on a thread of its own (`engine.rs`); the files come from
//! `scripts/fetch-models.sh` and are checked at start (`files.rs`).
//!
//! One classifier per models directory and process, loaded on first use and
//! shared by every scanner and pipeline that asks for it.

mod engine;
mod files;
mod head;
mod windows;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use tokio::sync::oneshot;

use engine::MAX_BATCH;
use files::{FIX, ModelFiles};
use head::Head;

/// Where the model files are and how the classifier may use the machine.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Setup {
    pub models_dir: PathBuf,
    /// Cores one inference call may use; 0: all of them.
    pub threads: usize,
    /// Windows per inference call (1: no batching).
    pub batch: usize,
}

impl Setup {
    pub fn new(models_dir: impl Into<PathBuf>, threads: usize) -> Self {
        Self {
            models_dir: models_dir.into(),
            threads,
            batch: MAX_BATCH,
        }
    }
}

pub struct Classifier {
    queue: tokio::sync::mpsc::Sender<engine::Job>,
    head: &'static Head,
}

impl Classifier {
    /// The classifier for `setup`, loading it on first use.
    pub fn shared(setup: &Setup) -> Result<Arc<Classifier>, String> {
        static LOADED: OnceLock<Mutex<HashMap<Setup, Arc<Classifier>>>> = OnceLock::new();
        let mut loaded = LOADED
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(c) = loaded.get(setup) {
            return Ok(c.clone());
        }
        let c = Arc::new(Self::load(setup)?);
        loaded.insert(setup.clone(), c.clone());
        Ok(c)
    }

    fn load(setup: &Setup) -> Result<Classifier, String> {
        let files = ModelFiles::verified(&setup.models_dir)?;
        let head = Head::shipped()?;
        let env = runtime(&files.runtime)?;
        let threads = match setup.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let model = &files.model;
        let session = Session::builder(env)
            .and_then(|b| Ok(b.with_optimization_level(GraphOptimizationLevel::All)?))
            .and_then(|b| Ok(b.with_intra_threads(threads)?))
            .and_then(|b| Ok(b.with_inter_threads(1)?))
            // Idle inference threads sleep rather than spin: the cores are
            // shared with the proxy's own workers.
            .and_then(|b| Ok(b.with_intra_op_spinning(false)?))
            .and_then(|mut b| b.commit_from_file(model))
            .map_err(|e| format!("cannot load {}: {e}: {FIX}", model.display()))?;
        let mut tokenizer = tokenizers::Tokenizer::from_file(&files.tokenizer)
            .map_err(|e| format!("cannot load {}: {e}: {FIX}", files.tokenizer.display()))?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(None)
            .map_err(|e| format!("tokenizer: {e}"))?;
        let queue = engine::Engine {
            tokenizer,
            session,
            head,
            batch: setup.batch.max(1),
        }
        .spawn()?;
        Ok(Classifier { queue, head })
    }

    /// The probability that `text` is an injection: the highest of its
    /// windows'. `None` for a text too short to judge (fewer than the head's
    /// `min_pieces` word pieces). More than `max_windows` windows is an
    /// error, never a truncation.
    pub async fn probability(&self, text: &str, max_windows: usize) -> Result<Option<f32>, String> {
        // Far too long is known without tokenizing (or copying) the text.
        let (window, stride) = (self.head.window, self.head.stride);
        let at_least = windows::count(windows::fewest_pieces(text), window, stride);
        if at_least > max_windows {
            return Err(format!(
                "text too long for the classifier: at least {at_least} windows of {window} word pieces, max_windows is {max_windows}"
            ));
        }
        let (reply, answer) = oneshot::channel();
        let job = engine::Job {
            text: text.to_owned(),
            max_windows,
            reply,
        };
        self.queue
            .send(job)
            .await
            .map_err(|_| "the classifier thread has stopped".to_string())?;
        answer
            .await
            .map_err(|_| "the classifier thread has stopped".to_string())?
    }

    /// The probability from which a text counts as an injection, as
    /// validated (see the README's accuracy section).
    pub fn threshold(&self) -> f32 {
        self.head.threshold
    }
}

/// What the classifier's verdicts depend on besides the text: the model
/// files' checksums and the head (weights, window shape, threshold). Part of
/// the cache's policy fingerprint, so a new model never reuses old verdicts.
pub fn identity() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(files::MANIFEST.as_bytes());
        h.update([0u8]);
        h.update(head::SHIPPED.as_bytes());
        hex::encode(&h.finalize()[..16])
    })
}

/// ONNX Runtime, loaded once per process from `library`.
fn runtime(library: &Path) -> Result<&'static ort::environment::Environment, String> {
    static ENV: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();
    ENV.get_or_init(|| {
        ort::init_from(library)
            .map_err(|e| {
                format!(
                    "cannot load ONNX Runtime from {}: {e}: {FIX}",
                    library.display()
                )
            })?
            .with_name("ollama-guard")
            .build()
            .map_err(|e| format!("cannot start ONNX Runtime: {e}"))
    })
    .as_ref()
    .map_err(Clone::clone)
}

#[cfg(test)]
mod tests;
