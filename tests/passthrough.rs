//! The proxy is a drop-in Ollama: every route answers as Ollama does,
//! byte for byte, and transport failures become clear 502/504 errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use common::{FakeOllama, SCANNERS, client, config, stack, start_proxy};
use reqwest::Method;
use serde_json::{Value, json};

/// Sends the same request to the fake directly and through the proxy.
async fn both(
    fake: &FakeOllama,
    proxy: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> [(u16, String, String); 2] {
    let mut out = Vec::new();
    for base in [fake.url.as_str(), proxy] {
        let mut req = client().request(method.clone(), format!("{base}{path}"));
        if let Some(b) = &body {
            req = req.body(b.to_string());
        }
        let resp = req.send().await.expect("send");
        let ct = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        out.push((resp.status().as_u16(), ct, resp.text().await.expect("body")));
    }
    [out[0].clone(), out[1].clone()]
}

/// A blob path with a digest of the shape Ollama accepts.
const BLOB: &str =
    "/api/blobs/sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

#[tokio::test]
async fn every_endpoint_passes_through_byte_exact() {
    let (fake, proxy) = stack(SCANNERS).await;
    let chat = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
    let cases: Vec<(Method, &str, Option<Value>)> = vec![
        (Method::GET, "/", None),
        (Method::HEAD, "/", None),
        (Method::GET, "/api/version", None),
        (Method::GET, "/api/tags", None),
        (Method::GET, "/api/ps", None),
        (Method::POST, "/api/show", Some(json!({"model": "m"}))),
        (
            Method::POST,
            "/api/copy",
            Some(json!({"source": "a", "destination": "b"})),
        ),
        (Method::DELETE, "/api/delete", Some(json!({"model": "m"}))),
        (Method::POST, "/api/pull", Some(json!({"model": "m"}))),
        (Method::POST, "/api/push", Some(json!({"model": "m"}))),
        (
            Method::POST,
            "/api/create",
            Some(json!({"model": "m", "from": "llama3.2"})),
        ),
        (Method::HEAD, BLOB, None),
        (Method::POST, BLOB, Some(json!("blob"))),
        (Method::GET, "/v1/models", None),
        (
            Method::POST,
            "/api/generate",
            Some(json!({"model": "m", "prompt": "hi"})),
        ),
        (
            Method::POST,
            "/api/generate",
            Some(json!({"model": "m", "prompt": "hi", "stream": false})),
        ),
        (Method::POST, "/api/chat", Some(chat.clone())),
        (
            Method::POST,
            "/api/chat",
            Some(json!({"model": "m", "messages": [], "stream": false})),
        ),
        (
            Method::POST,
            "/api/embed",
            Some(json!({"model": "m", "input": "hi"})),
        ),
        (
            Method::POST,
            "/api/embeddings",
            Some(json!({"model": "m", "prompt": "hi"})),
        ),
        (Method::POST, "/v1/chat/completions", Some(chat.clone())),
        (
            Method::POST,
            "/v1/chat/completions",
            Some(
                json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": true}),
            ),
        ),
        (
            Method::POST,
            "/v1/completions",
            Some(json!({"model": "m", "prompt": "hi", "stream": true})),
        ),
        (
            Method::POST,
            "/v1/embeddings",
            Some(json!({"model": "m", "input": "hi"})),
        ),
    ];
    for (method, path, body) in cases {
        let [direct, proxied] = both(&fake, &proxy.url, method.clone(), path, body).await;
        assert_eq!(direct, proxied, "{method} {path}");
    }
}

/// Ollama is asked over one kept-alive connection, however each reply
/// ends: with its length (relayed as it came: hyper stops reading a body
/// once that many bytes are written, and never asks for its end), empty,
/// chunked (a stream), whole and scanned, or an error; `/ready`'s probe
/// too.
#[tokio::test]
async fn one_connection_to_ollama_serves_every_kind_of_reply() {
    let fake = FakeOllama::start().await;
    let yaml = format!("{SCANNERS}\nserver:\n  workers: 1\n");
    let proxy = start_proxy(config(&fake.url, &yaml)).await;
    let chat = |stream: bool| json!({"model": "m", "stream": stream, "messages": [{"role": "user", "content": "hi"}]});
    let cases: Vec<(Method, &str, Option<Value>, u16)> = vec![
        (Method::GET, "/api/tags", None, 200),
        (Method::HEAD, "/", None, 200),
        (Method::POST, "/api/show", Some(json!({"model": "m"})), 200),
        (
            Method::POST,
            "/api/copy",
            Some(json!({"source": "a", "destination": "b"})),
            200,
        ),
        (
            Method::POST,
            "/api/embed",
            Some(json!({"model": "m", "input": "hi"})),
            200,
        ),
        (Method::POST, "/api/chat", Some(chat(false)), 200),
        (Method::POST, "/api/chat", Some(chat(true)), 200),
        (
            Method::POST,
            "/api/generate",
            Some(json!({"model": "missing", "prompt": "hi"})),
            404,
        ),
        (Method::GET, "/api/version", None, 200),
        (Method::GET, "/ready", None, 200),
        (Method::GET, "/api/ps", None, 200),
    ];
    let http = client();
    for (method, path, body, status) in cases {
        let mut req = http.request(method.clone(), format!("{}{path}", proxy.url));
        if let Some(b) = body {
            req = req.body(b.to_string());
        }
        let resp = req.send().await.expect("send");
        assert_eq!(resp.status().as_u16(), status, "{method} {path}");
        resp.bytes().await.expect("body");
        assert_eq!(fake.connections(), 1, "after {method} {path}");
    }
}

#[tokio::test]
async fn upstream_errors_keep_their_status_and_body() {
    let (fake, proxy) = stack(SCANNERS).await;
    let body = json!({"model": "missing", "prompt": "hi"});
    let [direct, proxied] =
        both(&fake, &proxy.url, Method::POST, "/api/generate", Some(body)).await;
    assert_eq!(direct.0, 404);
    assert_eq!(direct, proxied);
}

#[tokio::test]
async fn requests_without_content_type_work_like_curl_d() {
    let (fake, proxy) = stack(SCANNERS).await;
    let resp = client()
        .post(format!("{}/api/generate", proxy.url))
        .body(r#"{"model":"m","prompt":"hi","stream":false}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["response"],
        "The sky is blue."
    );
    assert!(
        fake.calls()[0].headers.get("content-type").is_none(),
        "headers pass as the client sent them"
    );
}

#[tokio::test]
async fn first_streamed_chunk_arrives_before_the_rest_are_generated() {
    let (fake, proxy) = stack(SCANNERS).await;
    let gate = Arc::new(Notify::new());
    fake.script(|s| s.gate = Some(gate.clone()));
    for (path, first_token) in [
        ("/api/chat", "\"The\""),
        ("/v1/chat/completions", "\"The\""),
    ] {
        let body =
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": true});
        let mut resp = common::post_json(&proxy.url, path, &body).await;
        // The fake sends nothing more until the gate opens: a proxy that
        // buffered the reply would never hand over this first chunk.
        let first = tokio::time::timeout(Duration::from_secs(5), resp.chunk()).await;
        let first = first
            .expect("first chunk arrived while the rest was still pending")
            .unwrap()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&first).contains(first_token),
            "{path}"
        );
        gate.notify_one();
        while resp.chunk().await.unwrap().is_some() {}
    }
}

#[tokio::test]
async fn unreachable_ollama_gives_502_with_a_json_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let proxy = start_proxy(config(&format!("http://127.0.0.1:{port}"), SCANNERS)).await;
    for (path, body) in [
        ("/api/tags", None),
        ("/api/chat", Some(json!({"model": "m", "messages": []}))),
    ] {
        let mut req = client().post(format!("{}{path}", proxy.url));
        if path == "/api/tags" {
            req = client().get(format!("{}{path}", proxy.url));
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 502, "{path}");
        let err: Value = resp.json().await.unwrap();
        assert!(
            err["error"].as_str().unwrap().contains("unreachable"),
            "{err}"
        );
    }
}

#[tokio::test]
async fn slow_ollama_gives_504() {
    let fake = FakeOllama::start().await;
    fake.script(|s| s.header_delay = Duration::from_secs(5));
    let mut cfg = config(&fake.url, SCANNERS);
    cfg.ollama.response_timeout_secs = 0.3;
    let proxy = start_proxy(cfg).await;
    let resp = client()
        .get(format!("{}/api/tags", proxy.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 504);
    let resp = client()
        .post(format!("{}/v1/chat/completions", proxy.url))
        .json(&json!({"model": "m", "messages": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 504);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(
        err["error"]["type"], "api_error",
        "OpenAI routes answer in OpenAI's error shape"
    );
}

#[tokio::test]
async fn unknown_routes_get_a_json_404_and_never_reach_ollama() {
    let (fake, proxy) = stack(SCANNERS).await;
    let resp = client()
        .post(format!("{}/api/unknown", proxy.url))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"error": "not found"})
    );
    assert_eq!(fake.call_count(), 0);
}

#[tokio::test]
async fn health_answers_without_ollama() {
    let proxy = start_proxy(config("http://127.0.0.1:9", SCANNERS)).await;
    let resp = client()
        .get(format!("{}/health", proxy.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["status"], "ok");
    assert!(
        client()
            .get(format!("{}/health", proxy.url))
            .send()
            .await
            .unwrap()
            .headers()
            .contains_key("x-request-id")
    );
}

#[tokio::test]
async fn ollama_gets_its_own_host_not_the_clients() {
    // The client's Host names the proxy; the upstream is told its own name,
    // on guarded and passed-through routes alike.
    let (fake, proxy) = stack(SCANNERS).await;
    for (method, path, body) in [
        (
            Method::POST,
            "/api/generate",
            Some(r#"{"model":"m","prompt":"hi","stream":false}"#),
        ),
        (Method::GET, "/api/tags", None),
    ] {
        let mut req = client()
            .request(method, format!("{}{path}", proxy.url))
            .header("host", "guard.example:8080");
        if let Some(b) = body {
            req = req.body(b);
        }
        assert_eq!(req.send().await.unwrap().status(), 200, "{path}");
    }
    let want = fake.addr.to_string();
    assert_eq!(fake.calls().len(), 2);
    for call in fake.calls() {
        let hosts: Vec<_> = call.headers.get_all("host").iter().collect();
        assert_eq!(hosts, [want.as_str()], "{}", call.path);
    }
}
