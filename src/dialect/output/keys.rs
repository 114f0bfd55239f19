//! Which keys of model output are protocol and which values are never
//! model text: the commented lists of "skip by exception", and the sets
//! they are looked up in.

use std::sync::LazyLock;

use foldhash::HashMap;

/// Values never scanned, by the key they sit under (outside tool-call
/// arguments, where every string is the model's). None of them is text the
/// model wrote:
/// - `model`, `id`, `object`, `created_at`, `system_fingerprint`,
///   `item_id`, `call_id`, `tool_call_id`, `previous_response_id`: names
///   and identifiers the server assigns;
/// - `type`, `role`, `status`, `done_reason`, `finish_reason`,
///   `stop_reason`, `service_tier`: enumerations;
/// - `stop_sequence`: one of the client's own stop strings;
/// - `signature`, `encrypted_content`: opaque tokens the client sends back
///   (base64; a secrets scanner would read them as keys);
/// - `images`: base64 media.
pub const SKIPPED_VALUES: &[&str] = &[
    "model",
    "id",
    "object",
    "created_at",
    "system_fingerprint",
    "item_id",
    "call_id",
    "tool_call_id",
    "previous_response_id",
    "type",
    "role",
    "status",
    "done_reason",
    "finish_reason",
    "stop_reason",
    "service_tier",
    "stop_sequence",
    "signature",
    "encrypted_content",
    "images",
];

/// Keys of the four APIs' responses: protocol, not data, so not scanned.
/// Any other key (an unknown field, a tool-call argument name) is.
const PROTOCOL_KEYS: &[&str] = &[
    // Ollama
    "model",
    "created_at",
    "response",
    "thinking",
    "message",
    "role",
    "content",
    "images",
    "tool_calls",
    "function",
    "name",
    "arguments",
    "index",
    "done",
    "done_reason",
    "context",
    // the counts after `done: true`: [`OLLAMA_COUNTS`]
    "logprobs",
    "token",
    "logprob",
    "bytes",
    "top_logprobs",
    "tool_name",
    "id",
    "error",
    "remote_model",
    "remote_host",
    "_debug_info",
    // OpenAI chat and completions
    "object",
    "created",
    "system_fingerprint",
    "choices",
    "delta",
    "finish_reason",
    "usage",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "refusal",
    "reasoning",
    "reasoning_content",
    "type",
    "text",
    "tokens",
    "token_logprobs",
    "text_offset",
    "service_tier",
    "completion_tokens_details",
    "prompt_tokens_details",
    "reasoning_tokens",
    "cached_tokens",
    "annotations",
    "audio",
    "tool_call_id",
    // Responses
    "sequence_number",
    "output_index",
    "content_index",
    "item_id",
    "item",
    "part",
    "output",
    "status",
    "incomplete_details",
    "reason",
    "instructions",
    "input_tokens",
    "output_tokens",
    "input_tokens_details",
    "output_tokens_details",
    "summary",
    "call_id",
    "code",
    "param",
    "metadata",
    "tools",
    "tool_choice",
    "temperature",
    "top_p",
    "max_output_tokens",
    "previous_response_id",
    "parallel_tool_calls",
    "truncation",
    "user",
    "store",
    "effort",
    "format",
    "verbosity",
    "obfuscation",
    "background",
    "encrypted_content",
    "summary_index",
    // Anthropic
    "stop_reason",
    "stop_sequence",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "content_block",
    "signature",
    "partial_json",
    "input",
    "citations",
    "server_tool_use",
];

/// Ollama's counts after `done: true`, in the order Go writes them (each
/// left out when zero): protocol keys too.
pub(super) const OLLAMA_COUNTS: [&str; 6] = [
    "total_duration",
    "load_duration",
    "prompt_eval_count",
    "prompt_eval_duration",
    "eval_count",
    "eval_duration",
];

/// What the lists say of one key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct KeyKind {
    /// In [`PROTOCOL_KEYS`]: the key itself is not scanned.
    pub protocol: bool,
    /// In [`SKIPPED_VALUES`]: the value under it is not scanned.
    pub skipped: bool,
}

// Both lists in one map, so a key is looked up once: every key of every
// frame is. foldhash, because SipHash made these lookups a sixth of a
// stream's time (the lists are fixed, so a fast hash risks no flooding).
static KINDS: LazyLock<HashMap<&str, KeyKind>> = LazyLock::new(|| {
    let mut kinds: HashMap<&str, KeyKind> = HashMap::default();
    for key in PROTOCOL_KEYS.iter().chain(&OLLAMA_COUNTS) {
        kinds.entry(key).or_default().protocol = true;
    }
    for key in SKIPPED_VALUES {
        kinds.entry(key).or_default().skipped = true;
    }
    kinds
});

/// What the lists say of `key` (a key in neither is data: scanned, and
/// its value too).
pub(super) fn kind(key: &str) -> KeyKind {
    KINDS.get(key).copied().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_lookup_answers_for_both_lists() {
        for key in PROTOCOL_KEYS.iter().chain(&OLLAMA_COUNTS) {
            assert!(kind(key).protocol, "{key}");
            assert_eq!(kind(key).skipped, SKIPPED_VALUES.contains(key), "{key}");
        }
        for key in SKIPPED_VALUES {
            assert!(kind(key).skipped, "{key}");
        }
        assert_eq!(
            kind("model"),
            KeyKind {
                protocol: true,
                skipped: true
            }
        );
        for data in ["sk-key", "note", "Model", "content ", ""] {
            assert_eq!(kind(data), KeyKind::default(), "{data:?}");
        }
    }
}
