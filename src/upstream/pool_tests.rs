//! The pool against a real HTTP/1.1 server on a socket, which counts the
//! connections it accepts and those closed by the client.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::http::HeaderValue;
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;

#[derive(Default)]
struct Counts {
    accepted: AtomicUsize,
    /// Connections the client closed (the server read its end).
    closed: AtomicUsize,
}

/// How the server answers each request (bodyless GETs): its whole response
/// and whether it then closes the connection, and how soon.
#[derive(Clone, Copy)]
struct Script {
    response: &'static str,
    close_after: Option<Duration>,
}

const OK: &str = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";

async fn server(script: Script) -> (Uri, Arc<Counts>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let counts = Arc::new(Counts::default());
    let c = counts.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            c.accepted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(answer(tcp, script, c.clone()));
        }
    });
    let uri = format!("http://{addr}/").parse().expect("uri");
    (uri, counts)
}

async fn answer(mut tcp: TcpStream, script: Script, counts: Arc<Counts>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            buf.drain(..end + 4);
            if tcp.write_all(script.response.as_bytes()).await.is_err() {
                return;
            }
            if let Some(wait) = script.close_after {
                tokio::time::sleep(wait).await;
                return;
            }
        }
        match tcp.read(&mut chunk).await {
            Ok(0) | Err(_) => {
                counts.closed.fetch_add(1, Ordering::SeqCst);
                return;
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn pool(target: Uri, idle_timeout: Duration) -> Arc<Pool> {
    let connector = crate::upstream::connector(Duration::from_secs(5)).expect("connector");
    Pool::new(connector, target, idle_timeout)
}

fn get(target: &Uri) -> Request<Body> {
    let mut request = Request::new(Body::empty());
    *request.uri_mut() = Uri::from_static("/api/version");
    let host = target.authority().expect("authority").as_str();
    let host = HeaderValue::from_str(host).expect("host");
    request.headers_mut().insert(axum::http::header::HOST, host);
    request
}

/// One request, its body read whole, its connection given back.
async fn exchange(pool: &Arc<Pool>, target: &Uri) -> Vec<u8> {
    let (response, lease) = pool.send(get(target)).await.expect("response");
    let body = response.into_body().collect().await.expect("body");
    lease.give_back();
    body.to_bytes().to_vec()
}

async fn eventually(what: &str, done: impl Fn() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("not within 5 s: {what}");
}

#[tokio::test]
async fn a_connection_read_to_its_end_is_used_again() {
    let (target, counts) = server(Script {
        response: OK,
        close_after: None,
    })
    .await;
    let pool = pool(target.clone(), Duration::from_secs(90));
    for _ in 0..5 {
        assert_eq!(exchange(&pool, &target).await, b"ok");
    }
    assert_eq!(counts.accepted.load(Ordering::SeqCst), 1);
    assert_eq!(pool.idle_count(), 1);
}

#[tokio::test]
async fn a_connection_not_given_back_is_closed_and_not_used_again() {
    let (target, counts) = server(Script {
        response: OK,
        close_after: None,
    })
    .await;
    let pool = pool(target.clone(), Duration::from_secs(90));
    let (response, lease) = pool.send(get(&target)).await.expect("response");
    // Read, but the lease is dropped (a body dropped half-read does this).
    drop((response, lease));
    assert_eq!(exchange(&pool, &target).await, b"ok");
    assert_eq!(counts.accepted.load(Ordering::SeqCst), 2);
    eventually("the first connection closed", || {
        counts.closed.load(Ordering::SeqCst) == 1
    })
    .await;
}

#[tokio::test]
async fn an_idle_connection_the_server_closed_is_not_used() {
    let (target, counts) = server(Script {
        response: OK,
        close_after: Some(Duration::from_millis(100)),
    })
    .await;
    let pool = pool(target.clone(), Duration::from_secs(90));
    assert_eq!(exchange(&pool, &target).await, b"ok");
    assert_eq!(pool.idle_count(), 1, "kept until the server closes it");
    // The connection's task sees the server's end of it.
    eventually("the closed connection left the pool", || {
        pool.idle_count() == 0
    })
    .await;
    assert_eq!(exchange(&pool, &target).await, b"ok");
    assert_eq!(counts.accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_response_that_closes_its_connection_is_not_kept() {
    let (target, counts) = server(Script {
        response: "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok",
        close_after: Some(Duration::ZERO),
    })
    .await;
    let pool = pool(target.clone(), Duration::from_secs(90));
    for _ in 0..3 {
        assert_eq!(exchange(&pool, &target).await, b"ok");
    }
    assert_eq!(counts.accepted.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn an_idle_connection_is_closed_after_the_idle_timeout() {
    let (target, counts) = server(Script {
        response: OK,
        close_after: None,
    })
    .await;
    let pool = pool(target.clone(), Duration::from_millis(200));
    assert_eq!(exchange(&pool, &target).await, b"ok");
    assert_eq!(pool.idle_count(), 1);
    // No request comes: the sweep closes it.
    eventually("the idle connection closed", || {
        counts.closed.load(Ordering::SeqCst) == 1
    })
    .await;
    assert_eq!(pool.idle_count(), 0);
    // And the pool still works after.
    assert_eq!(exchange(&pool, &target).await, b"ok");
    assert_eq!(counts.accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn concurrent_requests_each_get_a_connection_and_all_are_kept() {
    let (target, counts) = server(Script {
        response: OK,
        close_after: None,
    })
    .await;
    let pool = pool(target.clone(), Duration::from_secs(90));
    // Four sent before any is read: four connections.
    let mut open = Vec::new();
    for _ in 0..4 {
        open.push(pool.send(get(&target)).await.expect("response"));
    }
    for (response, lease) in open {
        response.into_body().collect().await.expect("body");
        lease.give_back();
    }
    assert_eq!(counts.accepted.load(Ordering::SeqCst), 4);
    assert_eq!(pool.idle_count(), 4);
    for _ in 0..8 {
        assert_eq!(exchange(&pool, &target).await, b"ok");
    }
    assert_eq!(counts.accepted.load(Ordering::SeqCst), 4, "reused");
}

#[tokio::test]
async fn an_unreachable_upstream_is_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let target: Uri = format!("http://{}/", listener.local_addr().expect("addr"))
        .parse()
        .expect("uri");
    drop(listener);
    let pool = pool(target.clone(), Duration::from_secs(90));
    match pool.send(get(&target)).await {
        Err(SendError::Connect(_)) => {}
        other => panic!("expected a connect error, got {:?}", other.map(|(r, _)| r)),
    }
}
