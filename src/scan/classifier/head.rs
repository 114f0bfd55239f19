//! The classifier head: dense layers (ReLU between, sigmoid at the end) over
//! an all-MiniLM-L6-v2 sentence embedding, with the window shape it was
//! trained on and the threshold picked on validation. Trained and written by
//! `bench/pi_train.py` into `data/prompt_injection_head.json`; shipped in the
//! binary.

use std::sync::OnceLock;

use serde::Deserialize;

pub const EMBEDDING: usize = 384;
pub(super) static SHIPPED: &str = include_str!("../../../data/prompt_injection_head.json");

#[derive(Deserialize)]
struct File {
    window: usize,
    stride: usize,
    min_pieces: usize,
    threshold: f32,
    layers: Vec<Layer>,
}

#[derive(Deserialize)]
struct Layer {
    /// `[outputs][inputs]`
    weight: Vec<Vec<f32>>,
    bias: Vec<f32>,
}

struct Dense {
    inputs: usize,
    /// Row-major `[outputs][inputs]`.
    weight: Vec<f32>,
    bias: Vec<f32>,
}

pub struct Head {
    /// Word pieces per window, between `[CLS]` and `[SEP]`.
    pub window: usize,
    /// Word pieces from one window's start to the next.
    pub stride: usize,
    /// Texts with fewer word pieces holding a letter or digit are not
    /// judged ("ok", "thanks"): the rules alone decide them.
    pub min_pieces: usize,
    /// Probability from which a text counts as an injection.
    pub threshold: f32,
    layers: Vec<Dense>,
}

impl Head {
    pub fn shipped() -> Result<&'static Head, String> {
        static HEAD: OnceLock<Result<Head, String>> = OnceLock::new();
        HEAD.get_or_init(|| Head::parse(SHIPPED))
            .as_ref()
            .map_err(Clone::clone)
    }

    pub fn parse(json: &str) -> Result<Head, String> {
        let file: File = serde_json::from_str(json).map_err(|e| format!("classifier head: {e}"))?;
        let mut inputs = EMBEDDING;
        let mut layers = Vec::with_capacity(file.layers.len());
        for (i, layer) in file.layers.into_iter().enumerate() {
            if layer.weight.is_empty()
                || layer.bias.len() != layer.weight.len()
                || layer.weight.iter().any(|row| row.len() != inputs)
            {
                return Err(format!(
                    "classifier head: layer {i} does not fit {inputs} inputs"
                ));
            }
            let outputs = layer.weight.len();
            layers.push(Dense {
                inputs,
                weight: layer.weight.into_iter().flatten().collect(),
                bias: layer.bias,
            });
            inputs = outputs;
        }
        if inputs != 1 || file.window < 8 || file.stride == 0 || file.stride > file.window {
            return Err("classifier head: needs one output and 0 < stride <= window".into());
        }
        Ok(Head {
            window: file.window,
            stride: file.stride,
            min_pieces: file.min_pieces,
            threshold: file.threshold,
            layers,
        })
    }

    /// Probability that the text behind `embedding` is an injection.
    pub fn probability(&self, embedding: &[f32]) -> f32 {
        let mut x = embedding.to_vec();
        for (i, layer) in self.layers.iter().enumerate() {
            let mut y: Vec<f32> = layer
                .weight
                .chunks_exact(layer.inputs)
                .zip(&layer.bias)
                .map(|(row, b)| b + row.iter().zip(&x).map(|(w, v)| w * v).sum::<f32>())
                .collect();
            if i + 1 < self.layers.len() {
                y.iter_mut().for_each(|v| *v = v.max(0.0));
            }
            x = y;
        }
        1.0 / (1.0 + (-x[0]).exp())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_head_loads() {
        let head = Head::shipped().expect("shipped head parses");
        assert!(head.stride <= head.window);
        assert!((0.0..1.0).contains(&head.threshold));
        let p = head.probability(&[0.05; EMBEDDING]);
        assert!((0.0..=1.0).contains(&p));
    }

    #[test]
    fn a_head_is_computed_as_written() {
        // One hidden unit that copies input 0 (ReLU), then a logit of 2x - 1.
        let mut hidden = vec![0.0; EMBEDDING];
        hidden[0] = 1.0;
        let json = serde_json::json!({
            "window": 126, "stride": 96, "min_pieces": 3, "threshold": 0.5,
            "layers": [{"weight": [hidden], "bias": [0.0]}, {"weight": [[2.0]], "bias": [-1.0]}]
        });
        let head = Head::parse(&json.to_string()).expect("parses");
        let mut e = vec![0.0; EMBEDDING];
        e[0] = 0.5;
        assert!((head.probability(&e) - 0.5).abs() < 1e-6);
        e[0] = -3.0; // ReLU clamps to 0: sigmoid(-1)
        assert!((head.probability(&e) - 0.268_941_4).abs() < 1e-5);
    }

    #[test]
    fn malformed_heads_are_refused() {
        let wrong_width = serde_json::json!({
            "window": 126, "stride": 96, "min_pieces": 3, "threshold": 0.5,
            "layers": [{"weight": [[1.0, 2.0]], "bias": [0.0]}]
        });
        assert!(Head::parse(&wrong_width.to_string()).is_err());
        assert!(Head::parse("{}").is_err());
    }
}
