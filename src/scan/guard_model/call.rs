//! One call to the guard model: a slot of `max_concurrency`, the chat
//! request, and its answer read (bounded) within `timeout_ms`.

use serde::Deserialize;
use serde_json::{Value, json};

use super::GuardModel;
use super::answer::Logprob;

/// Tokens a guard may generate: its longest answer (`unsafe` and fourteen
/// codes) fits with room to spare; a longer one is unreadable anyway.
const ANSWER_TOKENS: u32 = 64;
/// Alternatives asked for at each answer token (for the score).
const TOP_LOGPROBS: u32 = 5;
/// Largest answer body read from the guard.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// What the guard answered: its message and, when asked for, logprobs.
pub(super) struct Answer {
    pub(super) content: String,
    pub(super) logprobs: Vec<Logprob>,
}

impl GuardModel {
    /// One call: a slot, the request, the answer; all within the timeout.
    pub(super) async fn ask(&self, messages: Vec<Value>) -> Result<Answer, String> {
        let call = async {
            let _slot = self
                .slots
                .acquire()
                .await
                .map_err(|_| "closed".to_string())?;
            self.call(messages).await
        };
        tokio::time::timeout(self.timeout, call)
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "{} gave no answer within {} ms",
                    self.model,
                    self.timeout.as_millis()
                ))
            })
    }

    async fn call(&self, messages: Vec<Value>) -> Result<Answer, String> {
        let mut body = json!({
            "model": self.model,
            "messages": messages,
            "stream": false,
            "options": {"temperature": 0, "num_predict": ANSWER_TOKENS},
        });
        if self.logprobs {
            body["logprobs"] = true.into();
            body["top_logprobs"] = TOP_LOGPROBS.into();
        }
        let unreachable = |e: reqwest::Error| format!("{} unreachable: {e}", self.model);
        let mut response = self
            .client
            .post(self.endpoint.clone())
            .json(&body)
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            if bytes.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(format!(
                    "{} answered more than {MAX_ANSWER_BYTES} bytes",
                    self.model
                ));
            }
            bytes.extend_from_slice(&chunk);
        }
        let value: Value = serde_json::from_slice(&bytes).map_err(|_| {
            format!(
                "{} answered HTTP {status} with a body that is not JSON",
                self.model
            )
        })?;
        if !status.is_success() {
            let error = value.get("error").and_then(Value::as_str).unwrap_or("");
            let error: String = error.chars().take(200).collect();
            return Err(format!("{} answered HTTP {status}: {error}", self.model));
        }
        let content = value
            .pointer("/message/content")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{} answered without message.content", self.model))?;
        let logprobs = match value.get("logprobs") {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => Vec::<Logprob>::deserialize(v)
                .map_err(|_| format!("{} answered unreadable logprobs", self.model))?,
        };
        Ok(Answer {
            content: content.to_string(),
            logprobs,
        })
    }
}
