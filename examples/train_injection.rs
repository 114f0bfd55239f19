//! Trains the `prompt_injection` model and picks its threshold.
//!
//! `cargo run --release --example train_injection -- DATA_DIR [--max-fpr 0.015]`
//!
//! DATA_DIR holds the JSON lines `bench/eval.sh` prepares. Training uses the
//! S-Labs and neuralchemy train splits; the threshold is the lowest at which
//! the whole scanner (rules and model together) keeps its false-positive
//! rate on the S-Labs validation split within `--max-fpr`. Test splits are
//! never read. Writes `data/prompt_injection.model`.

// A tool that cannot read its data should stop loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use ollama_guard::scan::injection_model::{FLAG_SCORE, Model, applies};
use ollama_guard::scan::normalize::fold;
use ollama_guard::scan::prompt_injection::rule_score;

fn load(path: &Path) -> Vec<(String, bool)> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json line");
            (
                v["text"].as_str().unwrap_or("").to_string(),
                v["label"].as_i64() == Some(1),
            )
        })
        .collect()
}

/// A validation text as the scanner sees it: (rule score, model probability, label).
type Scored = (f32, f32, bool);

/// (TPR, FPR) of the whole scanner with the model threshold `t`: a text is
/// flagged when a rule fires or the model reaches `t`.
fn rates(scored: &[Scored], t: f32) -> (f64, f64) {
    let (mut tp, mut fp, mut pos, mut neg) = (0, 0, 0, 0);
    for (rule, p, y) in scored {
        if *y {
            pos += 1
        } else {
            neg += 1
        }
        if *rule >= FLAG_SCORE || *p >= t {
            if *y { tp += 1 } else { fp += 1 }
        }
    }
    (tp as f64 / pos.max(1) as f64, fp as f64 / neg.max(1) as f64)
}

/// The lowest model threshold (on a 0.005 grid) with FPR within `max_fpr`.
fn pick(scored: &[Scored], max_fpr: f64) -> (f32, f64, f64) {
    (0..=200)
        .map(|i| i as f32 * 0.005)
        .map(|t| {
            let (tpr, fpr) = rates(scored, t);
            (t, tpr, fpr)
        })
        .find(|(_, _, fpr)| *fpr <= max_fpr)
        .unwrap_or((1.0, 0.0, 0.0))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = Path::new(
        args.get(1)
            .expect("usage: train_injection DATA_DIR [--max-fpr F]"),
    );
    let max_fpr: f64 = args
        .iter()
        .position(|a| a == "--max-fpr")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(0.015);
    let mut train: Vec<(String, bool)> = load(&dir.join("pi_slabs_train.jsonl"));
    train.extend(load(&dir.join("pi_neuralchemy_train.jsonl")));
    let train: Vec<(String, bool)> = train.into_iter().map(|(t, y)| (fold(&t), y)).collect();
    let validation = load(&dir.join("pi_slabs_validation.jsonl"));
    let mut best: Option<(Model, f32, f64, f64)> = None;
    for (epochs, rate, l2) in [
        (6, 0.3, 1e-5),
        (10, 0.3, 1e-5),
        (10, 0.5, 1e-6),
        (16, 0.3, 1e-6),
    ] {
        let mut model = Model::train(&train, epochs, rate, l2);
        let scored: Vec<Scored> = validation
            .iter()
            .map(|(t, y)| {
                let folded = fold(t);
                let p = if applies(&folded) {
                    model.score(&folded)
                } else {
                    0.0
                };
                (rule_score(t).0, p, *y)
            })
            .collect();
        let (threshold, tpr, fpr) = pick(&scored, max_fpr);
        println!(
            "epochs {epochs:>2} rate {rate} l2 {l2:e}: threshold {threshold:.3} validation TPR {tpr:.3} FPR {fpr:.3}"
        );
        model.threshold = threshold;
        if best.as_ref().is_none_or(|b| tpr > b.2) {
            best = Some((model, threshold, tpr, fpr));
        }
    }
    let (model, threshold, tpr, fpr) = best.expect("a model");
    let text = model.to_text(0.02);
    std::fs::write("data/prompt_injection.model", &text).expect("write model");
    println!(
        "wrote data/prompt_injection.model ({} weights, {} KiB): threshold {threshold:.3}, validation TPR {tpr:.3} FPR {fpr:.3}",
        text.lines().count() - 1,
        text.len() / 1024
    );
}
