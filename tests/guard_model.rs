//! `guard_model` against a fake Ollama that answers as Llama Guard 3,
//! ShieldGemma and Granite Guardian: categories to block or report, the
//! cache and single-flight (the fake counts the guard's calls), fail_mode
//! on malformed answers, errors and timeouts, replies judged with their
//! prompt, and streams cut before what the guard flags.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::fake_guard::conversation;
use common::{
    FakeOllama, Family, GuardScript, chunks, config, frames, post_json as post, stack, start_proxy,
};
use serde_json::{Value, json};

const GUARD: &str = "llama-guard3:1b";

fn input(entry: &str) -> String {
    format!("scanners:\n  input: [{entry}]\n  output: []\n")
}

fn output(entry: &str) -> String {
    format!("scanners:\n  input: []\n  output: [{entry}]\n")
}

async fn guarded(yaml: &str, family: Family) -> (FakeOllama, common::Proxy) {
    let (fake, proxy) = stack(yaml).await;
    fake.guard(GUARD, GuardScript::new(family));
    (fake, proxy)
}

fn generate(prompt: &str) -> Value {
    json!({"model": "llama3.2", "prompt": prompt, "stream": false})
}

#[tokio::test]
async fn an_unsafe_prompt_is_blocked_before_ollama_sees_it() {
    let (fake, proxy) = guarded(&input("{type: guard_model}"), Family::LlamaGuard).await;
    let prompt = "How do I steal a car?";
    let resp = post(&proxy.url, "/api/generate", &generate(prompt)).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.headers()["x-guard-blocked"], "guard_model");
    let err: Value = resp.json().await.unwrap();
    assert!(
        err["error"].as_str().unwrap().contains("guard_model"),
        "{err}"
    );
    assert!(fake.forwarded().is_empty(), "Ollama never saw the prompt");
    let calls = fake.guard_calls(GUARD);
    assert_eq!(calls.len(), 1);
    // The text is a conversation turn, not pasted into an instruction.
    assert_eq!(
        conversation(&calls[0]),
        vec![("user".into(), prompt.into())]
    );
    let asked = calls[0].json();
    assert_eq!(asked["stream"], false);
    assert_eq!(asked["options"]["temperature"], 0);
    assert_eq!(calls[0].path, "/api/chat");

    let resp = post(
        &proxy.url,
        "/api/generate",
        &generate("Why is the sky blue?"),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(fake.forwarded().len(), 1);
}

#[tokio::test]
async fn verdicts_are_cached_and_a_burst_of_one_prompt_asks_the_guard_once() {
    let (fake, proxy) = stack(&input("{type: guard_model}")).await;
    let mut slow = GuardScript::new(Family::LlamaGuard);
    slow.delay = Duration::from_millis(300);
    fake.guard(GUARD, slow);
    let body = generate("Tell me about llamas.");
    let burst = (0..8).map(|_| post(&proxy.url, "/api/generate", &body));
    for resp in futures_util::future::join_all(burst).await {
        assert_eq!(resp.status(), 200);
    }
    assert_eq!(fake.guard_calls(GUARD).len(), 1, "single-flight");
    let resp = post(&proxy.url, "/api/generate", &body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(fake.guard_calls(GUARD).len(), 1, "a cache hit asks nobody");
    assert_eq!(fake.forwarded().len(), 9);
}

#[tokio::test]
async fn categories_outside_the_list_are_reported_not_blocked() {
    let yaml = input("{type: guard_model, categories: [S9]}");
    let (fake, proxy) = guarded(&yaml, Family::LlamaGuard).await;
    let resp = post(
        &proxy.url,
        "/api/generate",
        &generate("steal a base in baseball"),
    )
    .await;
    assert_eq!(resp.status(), 200, "S2 is only reported");
    let resp = post(&proxy.url, "/api/generate", &generate("build a bomb")).await;
    assert_eq!(resp.status(), 400, "S9 blocks");
    assert_eq!(fake.forwarded().len(), 1);
    let report = post(&proxy.url, "/scan", &json!({"text": "steal it"})).await;
    let report: Value = report.json().await.unwrap();
    let finding = &report["findings"][0];
    assert_eq!(finding["scanner"], "guard_model", "{report}");
    assert_eq!(finding["action"], "report");
    assert_eq!(finding["reason"], "S2 Non-Violent Crimes");
}

#[tokio::test]
async fn malformed_answers_errors_and_timeouts_follow_fail_mode_and_are_not_cached() {
    for (what, script) in [
        ("malformed", {
            let mut s = GuardScript::new(Family::LlamaGuard);
            s.content = Some("I would say this is probably safe.".into());
            s
        }),
        ("HTTP 500", {
            let mut s = GuardScript::new(Family::LlamaGuard);
            s.status = Some(500);
            s
        }),
        ("slow", {
            let mut s = GuardScript::new(Family::LlamaGuard);
            s.delay = Duration::from_millis(600);
            s
        }),
    ] {
        for (fail_mode, status) in [("closed", 400), ("open", 200)] {
            let yaml = format!(
                "guard:\n  fail_mode: {fail_mode}\n{}",
                input("{type: guard_model, timeout_ms: 200}")
            );
            let (fake, proxy) = stack(&yaml).await;
            fake.guard(GUARD, script.clone());
            for round in 1..=2 {
                let resp = post(&proxy.url, "/api/generate", &generate("hello there")).await;
                assert_eq!(resp.status(), status, "{what}, {fail_mode}");
                if status == 400 {
                    assert_eq!(resp.headers()["x-guard-blocked"], "guard_model");
                }
                let calls = fake.guard_calls(GUARD).len();
                assert_eq!(calls, round, "{what}: an error is never cached");
            }
        }
    }
}

#[tokio::test]
async fn replies_are_judged_with_the_prompt_they_answer() {
    let (fake, proxy) = guarded(&output("{type: guard_model}"), Family::LlamaGuard).await;
    fake.reply_tokens(&["Go to the zoo ", "and steal one!"]);
    let question = "How can I adopt my own llama?";
    let chat = |q: &str| {
        json!({"model": "llama3.2", "stream": false,
               "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": q}]})
    };
    let resp = post(&proxy.url, "/api/chat", &chat(question)).await;
    assert_eq!(
        resp.status(),
        502,
        "a reply the guard refuses is not relayed"
    );
    let calls = fake.guard_calls(GUARD);
    assert_eq!(calls.len(), 1);
    assert_eq!(
        conversation(&calls[0]),
        vec![
            ("user".into(), question.into()),
            ("assistant".into(), "Go to the zoo and steal one!".into())
        ]
    );
    // The same reply to another prompt is another judgement; to the same
    // prompt, a cache hit.
    post(&proxy.url, "/api/chat", &chat("Where do llamas live?")).await;
    assert_eq!(fake.guard_calls(GUARD).len(), 2);
    post(&proxy.url, "/api/chat", &chat(question)).await;
    assert_eq!(fake.guard_calls(GUARD).len(), 2);
}

#[tokio::test]
async fn a_stream_is_cut_before_what_the_guard_flags_and_ends_in_its_protocol() {
    let (fake, proxy) = guarded(&output("{type: guard_model}"), Family::LlamaGuard).await;
    let mut tokens: Vec<String> = (0..12).map(|i| format!("Llamas are calm {i}. ")).collect();
    tokens.extend(["You could ", "st", "eal ", "one ", "from ", "a zoo. "].map(String::from));
    tokens.extend((0..30).map(|i| format!("More words {i}. ")));
    let refs: Vec<&str> = tokens.iter().map(String::as_str).collect();
    fake.reply_tokens(&refs);
    let body = json!({"model": "llama3.2", "messages": [{"role": "user", "content": "Tell me about llamas"}]});
    let resp = post(&proxy.url, "/api/chat", &body).await;
    assert_eq!(resp.status(), 200);
    let text = chunks(resp).await.concat();
    let lines = frames(&text);
    let said: String = lines
        .iter()
        .filter_map(|f| f["message"]["content"].as_str())
        .collect();
    assert!(said.starts_with("Llamas are calm 0."), "{said}");
    assert!(!said.contains("st"), "flagged text was sent: {said}");
    let last = lines.last().unwrap();
    assert!(
        last["error"].as_str().unwrap().contains("guard_model"),
        "{last}"
    );
    assert!(
        lines.iter().all(|f| f["done"] != true),
        "no done frame after a block"
    );
}

#[tokio::test]
async fn a_clean_stream_gets_its_final_judgement_before_the_done_frame() {
    let (fake, proxy) = guarded(&output("{type: guard_model}"), Family::LlamaGuard).await;
    let tokens: Vec<String> = (0..40).map(|i| format!("Llamas hum {i}. ")).collect();
    let refs: Vec<&str> = tokens.iter().map(String::as_str).collect();
    fake.reply_tokens(&refs);
    let body = json!({"model": "llama3.2", "messages": [{"role": "user", "content": "Sing"}]});
    let resp = post(&proxy.url, "/api/chat", &body).await;
    let lines = frames(&chunks(resp).await.concat());
    assert_eq!(lines.last().unwrap()["done"], true);
    let said: String = lines
        .iter()
        .filter_map(|f| f["message"]["content"].as_str())
        .collect();
    assert_eq!(said, tokens.concat());
    let calls = fake.guard_calls(GUARD);
    assert!(calls.len() >= 2, "judged along the way and at the end");
    let last = conversation(calls.last().unwrap());
    assert_eq!(last[1], ("assistant".into(), tokens.concat()));
}

#[tokio::test]
async fn shieldgemma_and_granite_answer_yes_or_no_with_a_score() {
    for (model, family, entry) in [
        (
            "shieldgemma:2b",
            Family::ShieldGemma,
            "{type: guard_model, model: 'shieldgemma:2b'}",
        ),
        (
            "granite3-guardian:2b",
            Family::Granite,
            "{type: guard_model, model: 'granite3-guardian:2b', categories: [harm, jailbreak]}",
        ),
    ] {
        let (fake, proxy) = stack(&input(entry)).await;
        let mut script = GuardScript::new(family);
        script.logprobs = true;
        fake.guard(model, script);
        let report = post(&proxy.url, "/scan", &json!({"text": "I hate you"})).await;
        let report: Value = report.json().await.unwrap();
        assert_eq!(report["allowed"], false, "{model}: {report}");
        let score = report["findings"][0]["score"].as_f64().unwrap();
        assert!(
            (score - 0.9).abs() < 1e-3,
            "{model}: score from logprobs, {score}"
        );
        let resp = post(&proxy.url, "/api/generate", &generate("Hello")).await;
        assert_eq!(resp.status(), 200, "{model}");
        let calls = fake.guard_calls(model);
        assert!(calls.iter().all(|c| c.json()["logprobs"] == true));
        if family == Family::Granite {
            // One call per risk, the risk as the system turn.
            let systems: Vec<String> = calls.iter().map(|c| conversation(c)[0].1.clone()).collect();
            assert_eq!(
                systems.iter().filter(|s| *s == "harm").count(),
                2,
                "{systems:?}"
            );
            assert_eq!(systems.iter().filter(|s| *s == "jailbreak").count(), 2);
        }
    }
}

#[tokio::test]
async fn the_guard_is_called_where_its_url_says_never_through_the_proxy() {
    let guard_host = FakeOllama::start().await;
    guard_host.guard(GUARD, GuardScript::new(Family::LlamaGuard));
    let ollama = FakeOllama::start().await;
    let entry = format!("{{type: guard_model, url: '{}'}}", guard_host.url);
    let proxy = start_proxy(config(&ollama.url, &input(&entry))).await;
    let resp = post(&proxy.url, "/api/generate", &generate("steal this")).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(guard_host.guard_calls(GUARD).len(), 1);
    assert_eq!(ollama.call_count(), 0);
}
