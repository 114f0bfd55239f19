//! Guard models as the fake Ollama serves them on `/api/chat`: Llama Guard 3
//! (`safe` / `unsafe\nS2`), ShieldGemma and Granite Guardian 3.0 (`Yes` /
//! `No`), with logprobs when asked, and the ways one can fail (a malformed
//! answer, an HTTP error, a slow answer). A text is unsafe when its last
//! message contains one of the script's flagged words.

use std::time::Duration;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::fake_ollama::{Recorded, json_reply};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    LlamaGuard,
    ShieldGemma,
    Granite,
}

#[derive(Clone, Debug)]
pub struct GuardScript {
    pub family: Family,
    /// Words that make a text unsafe, each with the Llama Guard category it
    /// falls under.
    pub flags: Vec<(String, String)>,
    /// Time before the answer.
    pub delay: Duration,
    /// Answer with exactly this message content instead (malformed answers).
    pub content: Option<String>,
    /// Answer with this status and an Ollama error instead.
    pub status: Option<u16>,
    /// Send logprobs when the request asks for them.
    pub logprobs: bool,
}

impl GuardScript {
    pub fn new(family: Family) -> Self {
        Self {
            family,
            flags: vec![
                ("steal".into(), "S2".into()),
                ("bomb".into(), "S9".into()),
                ("hate you".into(), "S10".into()),
            ],
            delay: Duration::ZERO,
            content: None,
            status: None,
            logprobs: false,
        }
    }
}

/// The fake's answer to a guard model call.
pub async fn answer(script: &GuardScript, req: &Recorded) -> Response {
    if !script.delay.is_zero() {
        tokio::time::sleep(script.delay).await;
    }
    if let Some(status) = script.status {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return json_reply(
            status,
            json!({"error": "model runner has unexpectedly stopped"}),
        );
    }
    let body = req.json();
    let last = body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .unwrap_or("")
        .to_string();
    let categories: Vec<&str> = script
        .flags
        .iter()
        .filter(|(word, _)| last.contains(word.as_str()))
        .map(|(_, c)| c.as_str())
        .collect();
    let flagged = !categories.is_empty();
    let (content, first, other) = match script.family {
        Family::LlamaGuard if flagged => (
            format!("unsafe\n{}", categories.join(",")),
            "unsafe",
            "safe",
        ),
        Family::LlamaGuard => ("safe".to_string(), "safe", "unsafe"),
        Family::ShieldGemma | Family::Granite if flagged => ("Yes".to_string(), "Yes", "No"),
        Family::ShieldGemma | Family::Granite => ("No".to_string(), "No", "Yes"),
    };
    let content = script.content.clone().unwrap_or(content);
    let mut reply = json!({
        "model": body["model"], "created_at": "2025-01-01T00:00:00Z",
        "message": {"role": "assistant", "content": content},
        "done": true, "done_reason": "stop", "total_duration": 1000, "eval_count": 2,
    });
    if script.logprobs && body["logprobs"] == true {
        // The chosen answer at 0.9, the other at 0.1.
        let (p, q) = (0.9f64.ln(), 0.1f64.ln());
        reply["logprobs"] = json!([{
            "token": first, "logprob": p,
            "top_logprobs": [{"token": first, "logprob": p}, {"token": other, "logprob": q}]
        }]);
    }
    json_reply(StatusCode::OK, reply)
}

/// The judged conversation of a recorded guard call: (role, content) pairs.
pub fn conversation(call: &Recorded) -> Vec<(String, String)> {
    call.json()["messages"]
        .as_array()
        .map(|m| {
            m.iter()
                .map(|m| {
                    let s = |k: &str| m[k].as_str().unwrap_or("").to_string();
                    (s("role"), s("content"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a recorded call asked for `model`.
pub fn is_model(call: &Recorded, model: &str) -> bool {
    call.json().get("model").and_then(Value::as_str) == Some(model)
}
