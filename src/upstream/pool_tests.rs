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

/// Answers every request on a connection until the client closes it.
const KEEP_ALIVE: Script = Script {
    response: OK,
    close_after: None,
};

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

/// A server and a pool in front of it.
struct Rig {
    target: Uri,
    counts: Arc<Counts>,
    pool: Arc<Pool>,
}

async fn rig(script: Script, idle_timeout: Duration) -> Rig {
    let (target, counts) = server(script).await;
    Rig {
        pool: pool(&target, idle_timeout),
        target,
        counts,
    }
}

fn pool(target: &Uri, idle_timeout: Duration) -> Arc<Pool> {
    let connector = crate::upstream::connector(Duration::from_secs(5)).expect("connector");
    Pool::new(connector, target.clone(), idle_timeout)
}

fn get(target: &Uri) -> Request<Body> {
    let mut request = Request::new(Body::empty());
    *request.uri_mut() = Uri::from_static("/api/version");
    let host = target.authority().expect("authority").as_str();
    let host = HeaderValue::from_str(host).expect("host");
    request.headers_mut().insert(axum::http::header::HOST, host);
    request
}

const LONG: Duration = Duration::from_secs(90);

impl Rig {
    fn get(&self) -> Request<Body> {
        get(&self.target)
    }

    /// One request, its body read whole, its connection given back.
    async fn exchange(&self) -> Vec<u8> {
        let (response, lease) = self.pool.send(self.get()).await.expect("response");
        let body = response.into_body().collect().await.expect("body");
        lease.give_back();
        body.to_bytes().to_vec()
    }

    fn accepted(&self) -> usize {
        self.counts.accepted.load(Ordering::SeqCst)
    }

    fn closed(&self) -> usize {
        self.counts.closed.load(Ordering::SeqCst)
    }
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
    let rig = rig(KEEP_ALIVE, LONG).await;
    for _ in 0..5 {
        assert_eq!(rig.exchange().await, b"ok");
    }
    assert_eq!(rig.accepted(), 1);
    assert_eq!(rig.pool.idle_count(), 1);
}

#[tokio::test]
async fn a_connection_not_given_back_is_closed_and_not_used_again() {
    let rig = rig(KEEP_ALIVE, LONG).await;
    let (response, lease) = rig.pool.send(rig.get()).await.expect("response");
    // Read, but the lease is dropped (a body dropped half-read does this).
    drop((response, lease));
    assert_eq!(rig.exchange().await, b"ok");
    assert_eq!(rig.accepted(), 2);
    eventually("the first connection closed", || rig.closed() == 1).await;
}

#[tokio::test]
async fn an_idle_connection_the_server_closed_is_not_used() {
    let script = Script {
        response: OK,
        close_after: Some(Duration::from_millis(100)),
    };
    let rig = rig(script, LONG).await;
    assert_eq!(rig.exchange().await, b"ok");
    assert_eq!(rig.pool.idle_count(), 1, "kept until the server closes it");
    // The connection's task sees the server's end of it.
    eventually("the closed connection left the pool", || {
        rig.pool.idle_count() == 0
    })
    .await;
    assert_eq!(rig.exchange().await, b"ok");
    assert_eq!(rig.accepted(), 2);
}

#[tokio::test]
async fn a_response_that_closes_its_connection_is_not_kept() {
    let script = Script {
        response: "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok",
        close_after: Some(Duration::ZERO),
    };
    let rig = rig(script, LONG).await;
    for _ in 0..3 {
        assert_eq!(rig.exchange().await, b"ok");
    }
    assert_eq!(rig.accepted(), 3);
}

#[tokio::test]
async fn an_idle_connection_is_closed_after_the_idle_timeout() {
    let rig = rig(KEEP_ALIVE, Duration::from_millis(200)).await;
    assert_eq!(rig.exchange().await, b"ok");
    assert_eq!(rig.pool.idle_count(), 1);
    // No request comes: the sweep closes it.
    eventually("the idle connection closed", || rig.closed() == 1).await;
    assert_eq!(rig.pool.idle_count(), 0);
    // And the pool still works after.
    assert_eq!(rig.exchange().await, b"ok");
    assert_eq!(rig.accepted(), 2);
}

#[tokio::test]
async fn concurrent_requests_each_get_a_connection_and_all_are_kept() {
    let rig = rig(KEEP_ALIVE, LONG).await;
    // Four sent before any is read: four connections.
    let mut open = Vec::new();
    for _ in 0..4 {
        open.push(rig.pool.send(rig.get()).await.expect("response"));
    }
    for (response, lease) in open {
        response.into_body().collect().await.expect("body");
        lease.give_back();
    }
    assert_eq!(rig.accepted(), 4);
    assert_eq!(rig.pool.idle_count(), 4);
    for _ in 0..8 {
        assert_eq!(rig.exchange().await, b"ok");
    }
    assert_eq!(rig.accepted(), 4, "reused");
}

#[tokio::test]
async fn an_unreachable_upstream_is_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let gone: Uri = format!("http://{}/", listener.local_addr().expect("addr"))
        .parse()
        .expect("uri");
    drop(listener);
    match pool(&gone, LONG).send(get(&gone)).await {
        Err(SendError::Connect(_)) => {}
        other => panic!("expected a connect error, got {:?}", other.map(|(r, _)| r)),
    }
}

/// A server on a thread of its own: it answers one request, closes the
/// connection 100 ms later, and then counts the connections made to it
/// within half a second.
fn closing_server() -> (Uri, std::thread::JoinHandle<usize>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let uri = format!("http://{}/", listener.local_addr().expect("addr"))
        .parse()
        .expect("uri");
    let handle = std::thread::spawn(move || {
        let (mut tcp, _) = listener.accept().expect("accept");
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = tcp.read(&mut chunk).expect("read");
            buf.extend_from_slice(&chunk[..n]);
        }
        tcp.write_all(OK.as_bytes()).expect("write");
        std::thread::sleep(Duration::from_millis(100));
        drop(tcp);
        listener.set_nonblocking(true).expect("nonblocking");
        let mut later = 0;
        for _ in 0..50 {
            if listener.accept().is_ok() {
                later += 1;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        later
    });
    (uri, handle)
}

/// Ollama (or a proxy in front of it) closes a kept-alive connection while
/// the pool holds it idle and before the pool has seen it: the request
/// written on it fails, and is not sent again, since the server may have
/// read it (hyper-util and Go's net/http do the same for a POST). Only a
/// request not yet written goes out again.
#[tokio::test]
async fn a_request_written_on_a_connection_the_server_closed_is_not_sent_again() {
    let (target, server) = closing_server();
    let pool = pool(&target, LONG);
    let (response, lease) = pool.send(get(&target)).await.expect("response");
    response.into_body().collect().await.expect("body");
    lease.give_back();
    // The server closes the connection meanwhile; blocking here keeps this
    // runtime from polling the connection's task, so the pool has not
    // seen it closed.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(pool.idle_count(), 1, "not yet seen closed");
    match pool.send(get(&target)).await {
        Err(SendError::Exchange(e)) => assert!(e.is_incomplete_message(), "{e}"),
        other => panic!(
            "expected a failed exchange, got {:?}",
            other.map(|(r, _)| r)
        ),
    }
    assert_eq!(server.join().expect("server"), 0, "no second connection");
}
