use std::sync::Arc;

use super::*;

const OLLAMA: &str = "http://127.0.0.1:11434";

fn config(yaml: &str) -> Config {
    serde_saphyr::from_str(yaml).expect("guard_model yaml")
}

fn build(yaml: &str) -> Result<GuardModel, String> {
    config(yaml).build(OLLAMA)
}

#[test]
fn the_family_is_read_off_the_model_name_or_must_be_given() {
    let family = |yaml: &str| build(yaml).map(|g| g.family);
    assert_eq!(family("model: llama-guard3:8b"), Ok(Family::LlamaGuard));
    assert_eq!(family("{}"), Ok(Family::LlamaGuard), "default model");
    assert_eq!(family("model: shieldgemma:2b"), Ok(Family::ShieldGemma));
    assert_eq!(
        family("model: granite3-guardian:2b"),
        Ok(Family::GraniteGuardian)
    );
    assert_eq!(
        family("{model: my-judge, family: shieldgemma}"),
        Ok(Family::ShieldGemma)
    );
    let err = build("model: my-judge").err().unwrap_or_default();
    assert!(err.starts_with("family:"), "{err}");
}

#[test]
fn categories_are_checked_per_family() {
    let g = build("categories: [S1, S10]").expect("valid");
    assert_eq!(g.blocking, vec![1, 10]);
    for bad in [
        "categories: [S15]",
        "categories: [violence]",
        "{model: shieldgemma, categories: [harm]}",
        "{model: granite3-guardian, categories: [groundedness]}",
    ] {
        let err = build(bad).err().unwrap_or_default();
        assert!(err.starts_with("categories:"), "{bad}: {err}");
    }
    let granite = build("model: granite3-guardian").expect("valid");
    assert_eq!(granite.risks, vec!["harm".to_string()], "harm by default");
}

#[test]
fn bad_options_are_refused() {
    for (yaml, key) in [
        ("model: ''", "model:"),
        ("threshold: 0", "threshold:"),
        ("timeout_ms: 0", "timeout_ms:"),
        ("max_concurrency: 0", "max_concurrency:"),
        ("url: ftp://x", "url:"),
    ] {
        let err = build(yaml).err().unwrap_or_default();
        assert!(err.starts_with(key), "{yaml}: {err}");
    }
    let g = build("url: http://guard:11434/").expect("valid");
    assert_eq!(g.endpoint.as_str(), "http://guard:11434/api/chat");
}

#[test]
fn a_prompt_is_a_user_turn_and_a_reply_follows_its_prompt() {
    let g = build("{}").expect("valid");
    let roles = |m: &[Value]| -> Vec<(String, String)> {
        m.iter()
            .map(|m| {
                (
                    m["role"].as_str().unwrap_or("").into(),
                    m["content"].as_str().unwrap_or("").into(),
                )
            })
            .collect()
    };
    let user = |t: &str| ("user".to_string(), t.to_string());
    let assistant = |t: &str| ("assistant".to_string(), t.to_string());
    assert_eq!(
        roles(&g.messages("hi", &Turn::Prompt, None)),
        vec![user("hi")]
    );
    let reply = Turn::Reply(Some(Arc::from("question")));
    assert_eq!(
        roles(&g.messages("answer", &reply, None)),
        vec![user("question"), assistant("answer")]
    );
    assert_eq!(
        roles(&g.messages("answer", &Turn::Reply(None), None)),
        vec![assistant("answer")]
    );
    let alone = build("with_prompt: false").expect("valid");
    assert!(!alone.uses_prompt());
    assert_eq!(
        roles(&alone.messages("answer", &reply, None)),
        vec![assistant("answer")]
    );
    let granite = build("model: granite3-guardian").expect("valid");
    let m = granite.messages("hi", &Turn::Prompt, Some("harm"));
    assert_eq!(m[0], json!({"role": "system", "content": "harm"}));
}

#[test]
fn a_long_prompt_is_cut_to_its_end_on_a_character_boundary() {
    let text = format!("{}é", "a".repeat(PROMPT_CONTEXT_BYTES));
    let cut = tail(&text, PROMPT_CONTEXT_BYTES);
    assert!(cut.len() <= PROMPT_CONTEXT_BYTES);
    assert!(cut.ends_with('é'));
}

fn answer(content: &str) -> Answer {
    Answer {
        content: content.into(),
        logprobs: Vec::new(),
    }
}

#[test]
fn llama_guard_categories_outside_the_list_are_only_reported() {
    let g = build("categories: [S1]").expect("valid");
    let found = g.llama_guard(&answer("unsafe\nS1,S2")).expect("readable");
    assert_eq!(found.len(), 2);
    assert_eq!(found[0].reason, "S1 Violent Crimes");
    assert!(!found[0].report_only);
    assert_eq!(found[1].reason, "S2 Non-Violent Crimes");
    assert!(found[1].report_only);
    assert!(g.llama_guard(&answer("safe")).expect("readable").is_empty());
    let err = g
        .llama_guard(&answer("I think it is safe"))
        .err()
        .unwrap_or_default();
    assert!(err.contains("unexpected form"), "{err}");
    let all = build("{}").expect("valid");
    assert!(
        all.llama_guard(&answer("unsafe\nS2"))
            .expect("readable")
            .iter()
            .all(|m| !m.report_only)
    );
}
