//! The prompt a reply answers: the request's last user turn, as text. Guard
//! models judge a reply together with it (response classification). It is
//! context for a judgement only: what is scanned and forwarded is decided
//! elsewhere, field by field.

use serde_json::Value;

use super::Route;

impl Route {
    /// The last user turn of a parsed request body, if it has one with text.
    pub fn prompt(self, body: &Value) -> Option<String> {
        let text = match self {
            Self::Generate | Self::OpenAiCompletions => text_of(body.get("prompt")?)?,
            Self::Chat | Self::OpenAiChat | Self::AnthropicMessages => {
                last_user(body.get("messages")?)?
            }
            Self::Responses => match body.get("input")? {
                Value::String(s) => s.clone(),
                items => last_user(items)?,
            },
            // No model text comes back to judge.
            Self::Embed | Self::Embeddings | Self::OpenAiEmbeddings | Self::Create => return None,
        };
        (!text.is_empty()).then_some(text)
    }
}

/// The text of the last message whose role is `user`.
fn last_user(messages: &Value) -> Option<String> {
    let last = messages
        .as_array()?
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))?;
    text_of(last.get("content")?)
}

/// A content value's text: a string, or the strings and `text` parts of an
/// array (completion prompts, OpenAI and Responses parts, Anthropic
/// blocks), one per line.
fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => {
            let texts: Vec<&str> = parts
                .iter()
                .filter_map(|p| p.as_str().or_else(|| p.get("text")?.as_str()))
                .collect();
            (!texts.is_empty()).then(|| texts.join("\n"))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_last_user_turn_of_each_route() {
        let chat = json!({"messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "second"},
            {"role": "tool", "content": "42"}]});
        assert_eq!(Route::Chat.prompt(&chat).as_deref(), Some("second"));
        assert_eq!(Route::OpenAiChat.prompt(&chat).as_deref(), Some("second"));
        let parts = json!({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": "x"}},
            {"type": "text", "text": "here"}]}]});
        assert_eq!(
            Route::OpenAiChat.prompt(&parts).as_deref(),
            Some("look\nhere")
        );
        assert_eq!(
            Route::AnthropicMessages.prompt(&parts).as_deref(),
            Some("look\nhere")
        );
        let generate = json!({"prompt": "why?"});
        assert_eq!(Route::Generate.prompt(&generate).as_deref(), Some("why?"));
        let batch = json!({"prompt": ["a", "b"]});
        assert_eq!(
            Route::OpenAiCompletions.prompt(&batch).as_deref(),
            Some("a\nb")
        );
        let responses =
            json!({"input": [{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}]});
        assert_eq!(Route::Responses.prompt(&responses).as_deref(), Some("hi"));
        assert_eq!(
            Route::Responses.prompt(&json!({"input": "yo"})).as_deref(),
            Some("yo")
        );
    }

    #[test]
    fn no_prompt_where_there_is_no_user_text() {
        assert_eq!(Route::Generate.prompt(&json!({"prompt": ""})), None);
        assert_eq!(Route::Generate.prompt(&json!({"model": "m"})), None);
        assert_eq!(
            Route::OpenAiCompletions.prompt(&json!({"prompt": [1, 2]})),
            None
        );
        let system_only = json!({"messages": [{"role": "system", "content": "x"}]});
        assert_eq!(Route::Chat.prompt(&system_only), None);
        assert_eq!(Route::Embed.prompt(&json!({"input": "x"})), None);
    }
}
