//! A fake Ollama: an axum server on 127.0.0.1:0 speaking Ollama's wire format
//! (NDJSON streams on `/api/*`, SSE on `/v1/*`, `{"error": ...}` errors),
//! scripted per test (the tokens it "generates", delays, forced statuses) and
//! recording every request it receives.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::fake_guard::{GuardScript, is_model};

/// One request as the fake received it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Recorded {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// What generation endpoints answer.
#[derive(Clone)]
pub struct Script {
    /// The reply, token by token (one stream frame each).
    pub tokens: Vec<String>,
    /// Pause before each streamed frame.
    pub token_delay: Duration,
    /// Pause before the response headers.
    pub header_delay: Duration,
    /// Thinking text sent before the reply (Ollama `thinking` field).
    pub thinking: Vec<String>,
    /// When set, streams send their first frame, then wait for this.
    pub gate: Option<Arc<tokio::sync::Notify>>,
    /// When set, generation routes answer with exactly these bytes.
    pub raw: Option<Raw>,
}

/// A reply given byte for byte, for replies Ollama should never send.
#[derive(Clone, Debug)]
pub struct Raw {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// Written one by one (one HTTP chunk each).
    pub chunks: Vec<Vec<u8>>,
    pub end: RawEnd,
}

/// How a raw reply ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RawEnd {
    Complete,
    /// The connection breaks mid-body.
    Reset,
    /// The body never ends and nothing more is sent.
    Stall,
}

fn raw_reply(r: &Raw) -> Response {
    let (chunks, end) = (r.chunks.clone(), r.end);
    let stream = async_stream::stream! {
        for c in chunks {
            yield Ok::<_, std::io::Error>(Bytes::from(c));
        }
        match end {
            RawEnd::Complete => {}
            RawEnd::Reset => {
                // Let what was sent reach the reader before the break.
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                yield Err(std::io::Error::other("connection reset"));
            }
            RawEnd::Stall => std::future::pending::<()>().await,
        }
    };
    let mut response = Response::new(Body::from_stream(stream));
    *response.status_mut() = StatusCode::from_u16(r.status).unwrap_or(StatusCode::OK);
    for (k, v) in &r.headers {
        if let (Ok(k), Ok(v)) = (
            header::HeaderName::from_bytes(k.as_bytes()),
            header::HeaderValue::from_str(v),
        ) {
            response.headers_mut().insert(k, v);
        }
    }
    response
}

impl Default for Script {
    fn default() -> Self {
        Self {
            tokens: ["The", " sky", " is", " blue", "."]
                .map(String::from)
                .to_vec(),
            token_delay: Duration::ZERO,
            header_delay: Duration::ZERO,
            thinking: Vec::new(),
            gate: None,
            raw: None,
        }
    }
}

/// How a streamed response ended on the fake's side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamEnd {
    /// Every frame was handed to the connection.
    Completed,
    /// The reader went away first (the proxy cancelled the generation).
    Dropped { sent: usize },
}

#[derive(Default)]
pub struct Inner {
    calls: Mutex<Vec<Recorded>>,
    script: Mutex<Script>,
    stream_ends: Mutex<Vec<StreamEnd>>,
    /// Models that answer as guard models on `/api/chat`.
    guards: Mutex<std::collections::HashMap<String, GuardScript>>,
    /// TCP connections accepted.
    connections: std::sync::atomic::AtomicUsize,
}

/// Records how a stream ended when the stream is dropped.
struct EndGuard {
    inner: Arc<Inner>,
    sent: usize,
    total: usize,
}

impl EndGuard {
    fn record_sent(&mut self) {
        self.sent += 1;
    }
}

impl Drop for EndGuard {
    fn drop(&mut self) {
        let end = if self.sent == self.total {
            StreamEnd::Completed
        } else {
            StreamEnd::Dropped { sent: self.sent }
        };
        self.inner.stream_ends.lock().expect("ends lock").push(end);
    }
}

#[derive(Clone)]
pub struct FakeOllama {
    pub addr: SocketAddr,
    pub url: String,
    inner: Arc<Inner>,
}

impl FakeOllama {
    pub async fn start() -> Self {
        let inner = Arc::new(Inner::default());
        let app = Router::new().fallback(handle).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake ollama");
        let addr = listener.local_addr().expect("addr");
        // Go's net package sets TCP_NODELAY on every connection; so does the fake.
        let counts = inner.clone();
        let listener = axum::serve::ListenerExt::tap_io(listener, move |tcp| {
            counts.connections.fetch_add(1, Ordering::SeqCst);
            let _ = tcp.set_nodelay(true);
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            addr,
            url: format!("http://{addr}"),
            inner,
        }
    }

    pub fn script(&self, f: impl FnOnce(&mut Script)) {
        f(&mut self.inner.script.lock().expect("script lock"));
    }

    pub fn reply_tokens(&self, tokens: &[&str]) {
        self.script(|s| s.tokens = tokens.iter().map(|t| t.to_string()).collect());
    }

    pub fn calls(&self) -> Vec<Recorded> {
        self.inner.calls.lock().expect("calls lock").clone()
    }

    /// Waits (up to 5 s) for the next stream to end, and says how.
    pub async fn stream_end(&self) -> Option<StreamEnd> {
        for _ in 0..500 {
            if let Some(end) = self
                .inner
                .stream_ends
                .lock()
                .expect("ends lock")
                .first()
                .copied()
            {
                return Some(end);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        None
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.inner.connections.load(Ordering::SeqCst)
    }

    pub fn call_count(&self) -> usize {
        self.inner.calls.lock().expect("calls lock").len()
    }

    /// Makes `model` answer `/api/chat` as a guard model.
    pub fn guard(&self, model: &str, script: GuardScript) {
        let mut guards = self.inner.guards.lock().expect("guards lock");
        guards.insert(model.to_string(), script);
    }

    /// The calls that asked guard model `model`.
    pub fn guard_calls(&self, model: &str) -> Vec<Recorded> {
        let calls = self.calls();
        calls.into_iter().filter(|c| is_model(c, model)).collect()
    }

    /// The calls that did not ask a guard model (what the proxy forwarded).
    pub fn forwarded(&self) -> Vec<Recorded> {
        let guards = self.inner.guards.lock().expect("guards lock").clone();
        let calls = self.calls();
        calls
            .into_iter()
            .filter(|c| !guards.keys().any(|m| is_model(c, m)))
            .collect()
    }
}

async fn handle(State(inner): State<Arc<Inner>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let recorded = Recorded {
        method: parts.method.clone(),
        path: parts.uri.path().to_string(),
        headers: parts.headers,
        body,
    };
    inner
        .calls
        .lock()
        .expect("calls lock")
        .push(recorded.clone());
    let model = recorded.json()["model"].as_str().unwrap_or("").to_string();
    let guard = inner
        .guards
        .lock()
        .expect("guards lock")
        .get(&model)
        .cloned();
    if let Some(guard) = guard.filter(|_| recorded.path == "/api/chat") {
        return super::fake_guard::answer(&guard, &recorded).await;
    }
    let script = inner.script.lock().expect("script lock").clone();
    pause(script.header_delay).await;
    respond(&inner, &recorded, &script)
}

/// Sleeps, except for zero: tokio rounds any sleep up to its 1 ms timer tick,
/// which would make the "fast" fake slow.
async fn pause(d: Duration) {
    if !d.is_zero() {
        tokio::time::sleep(d).await;
    }
}

pub fn json_reply(status: StatusCode, v: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        v.to_string(),
    )
        .into_response()
}

fn ollama_error(status: StatusCode, msg: &str) -> Response {
    json_reply(status, json!({ "error": msg }))
}

/// Frames sent one by one with the script's delay between them (and the
/// gate, if any, after the first).
pub fn streamed(
    inner: &Arc<Inner>,
    content_type: &'static str,
    frames: Vec<String>,
    s: &Script,
) -> Response {
    let (delay, gate) = (s.token_delay, s.gate.clone());
    let mut end = EndGuard {
        inner: inner.clone(),
        sent: 0,
        total: frames.len(),
    };
    let stream = async_stream::stream! {
        for (i, f) in frames.into_iter().enumerate() {
            if let (1, Some(g)) = (i, &gate) {
                g.notified().await;
            }
            pause(delay).await;
            yield Ok::<_, std::io::Error>(Bytes::from(f));
            end.record_sent();
        }
    };
    (
        [(header::CONTENT_TYPE, content_type)],
        Body::from_stream(stream),
    )
        .into_response()
}

const CREATED_AT: &str = "2025-01-01T00:00:00.000000Z";

fn usage() -> Value {
    json!({ "total_duration": 5_000_000u64, "load_duration": 1_000_000u64, "prompt_eval_count": 7,
            "prompt_eval_duration": 1_000_000u64, "eval_count": 5, "eval_duration": 2_000_000u64 })
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

fn respond(inner: &Arc<Inner>, req: &Recorded, s: &Script) -> Response {
    let body = req.json();
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if model == "missing" {
        let msg = format!("model \"{model}\" not found, try pulling it first");
        return ollama_error(StatusCode::NOT_FOUND, &msg);
    }
    if let Some(raw) = &s.raw {
        return raw_reply(raw);
    }
    let ollama_stream = body.get("stream").and_then(Value::as_bool).unwrap_or(true);
    let openai_stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let text: String = s.tokens.concat();
    match (req.method.as_str(), req.path.as_str()) {
        ("GET" | "HEAD", "/") => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "Ollama is running",
        )
            .into_response(),
        ("GET", "/api/version") => json_reply(StatusCode::OK, json!({ "version": "0.12.6" })),
        ("GET", "/api/tags") => json_reply(
            StatusCode::OK,
            json!({ "models": [{ "name": "llama3.2:latest", "model": "llama3.2:latest", "size": 2019393189u64, "digest": "a80c4f17acd5" }] }),
        ),
        ("GET", "/api/ps") => json_reply(StatusCode::OK, json!({ "models": [] })),
        ("POST", "/api/show") => json_reply(
            StatusCode::OK,
            json!({ "modelfile": "FROM llama3.2", "details": { "family": "llama" } }),
        ),
        ("POST", "/api/copy") | ("DELETE", "/api/delete") => StatusCode::OK.into_response(),
        ("POST", "/api/pull" | "/api/push" | "/api/create") => {
            let frames = ["pulling manifest", "verifying sha256 digest", "success"]
                .map(|st| format!("{}\n", json!({ "status": st })))
                .to_vec();
            streamed(inner, "application/x-ndjson", frames, s)
        }
        ("HEAD", p) if p.starts_with("/api/blobs/") => StatusCode::NOT_FOUND.into_response(),
        ("POST", p) if p.starts_with("/api/blobs/") => StatusCode::CREATED.into_response(),
        ("GET", "/v1/models") => json_reply(
            StatusCode::OK,
            json!({ "object": "list", "data": [{ "id": "llama3.2:latest", "object": "model", "created": 1, "owned_by": "library" }] }),
        ),
        ("POST", "/api/generate") => {
            let head = json!({ "model": model, "created_at": CREATED_AT });
            if !ollama_stream {
                let mut whole = merge(
                    head,
                    json!({ "response": text, "done": true, "done_reason": "stop" }),
                );
                if !s.thinking.is_empty() {
                    whole["thinking"] = s.thinking.concat().into();
                }
                return json_reply(StatusCode::OK, merge(whole, usage()));
            }
            let mut frames: Vec<String> = s
                .thinking
                .iter()
                .map(|t| {
                    merge(
                        head.clone(),
                        json!({ "response": "", "thinking": t, "done": false }),
                    )
                    .to_string()
                        + "\n"
                })
                .collect();
            frames.extend(s.tokens.iter().map(|t| {
                merge(head.clone(), json!({ "response": t, "done": false })).to_string() + "\n"
            }));
            frames.push(
                merge(
                    merge(
                        head,
                        json!({ "response": "", "done": true, "done_reason": "stop" }),
                    ),
                    usage(),
                )
                .to_string()
                    + "\n",
            );
            streamed(inner, "application/x-ndjson", frames, s)
        }
        ("POST", "/api/chat") => {
            let head = json!({ "model": model, "created_at": CREATED_AT });
            let msg = |c: &str| json!({ "message": { "role": "assistant", "content": c } });
            if !ollama_stream {
                let whole = merge(
                    merge(head, msg(&text)),
                    json!({ "done": true, "done_reason": "stop" }),
                );
                return json_reply(StatusCode::OK, merge(whole, usage()));
            }
            let mut frames: Vec<String> = s
                .tokens
                .iter()
                .map(|t| {
                    merge(merge(head.clone(), msg(t)), json!({ "done": false })).to_string() + "\n"
                })
                .collect();
            frames.push(
                merge(
                    merge(
                        merge(head, msg("")),
                        json!({ "done": true, "done_reason": "stop" }),
                    ),
                    usage(),
                )
                .to_string()
                    + "\n",
            );
            streamed(inner, "application/x-ndjson", frames, s)
        }
        ("POST", "/api/embed") => json_reply(
            StatusCode::OK,
            json!({ "model": model, "embeddings": [[0.1, 0.2, 0.3]] }),
        ),
        ("POST", "/api/embeddings") => {
            json_reply(StatusCode::OK, json!({ "embedding": [0.1, 0.2, 0.3] }))
        }
        ("POST", "/v1/embeddings") => json_reply(
            StatusCode::OK,
            json!({ "object": "list", "data": [{ "object": "embedding", "embedding": [0.1], "index": 0 }], "model": model }),
        ),
        ("POST", "/v1/chat/completions") => openai(inner, &model, s, openai_stream, true),
        ("POST", "/v1/completions") => openai(inner, &model, s, openai_stream, false),
        ("POST", "/v1/responses") => super::fake_compat::responses(inner, &model, s, openai_stream),
        ("POST", "/v1/messages") => super::fake_compat::messages(inner, &model, s, openai_stream),
        _ => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain")],
            "404 page not found",
        )
            .into_response(),
    }
}

fn openai(inner: &Arc<Inner>, model: &str, s: &Script, stream: bool, chat: bool) -> Response {
    let (object, chunk_object) = if chat {
        ("chat.completion", "chat.completion.chunk")
    } else {
        ("text_completion", "text_completion")
    };
    let choice = |t: &str, finish: Value, whole: bool| {
        if !chat {
            json!({ "index": 0, "text": t, "finish_reason": finish })
        } else if whole {
            json!({ "index": 0, "message": { "role": "assistant", "content": t }, "finish_reason": finish })
        } else {
            json!({ "index": 0, "delta": { "role": "assistant", "content": t }, "finish_reason": finish })
        }
    };
    let head = |obj: &str| json!({ "id": "chatcmpl-123", "object": obj, "created": 1735689600, "model": model, "system_fingerprint": "fp_ollama" });
    if !stream {
        let body = merge(
            head(object),
            json!({ "choices": [choice(&s.tokens.concat(), "stop".into(), true)],
            "usage": { "prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12 } }),
        );
        return json_reply(StatusCode::OK, body);
    }
    let mut frames: Vec<String> = s
        .tokens
        .iter()
        .map(|t| {
            format!(
                "data: {}\n\n",
                merge(
                    head(chunk_object),
                    json!({ "choices": [choice(t, Value::Null, false)] })
                )
            )
        })
        .collect();
    frames.push(format!(
        "data: {}\n\n",
        merge(
            head(chunk_object),
            json!({ "choices": [choice("", "stop".into(), false)] })
        )
    ));
    frames.push("data: [DONE]\n\n".to_string());
    streamed(inner, "text/event-stream", frames, s)
}
