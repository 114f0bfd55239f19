//! A bare relay: every request of a client connection goes, as it came, over
//! one upstream connection of its own, and the upstream's response comes
//! back as it came. Two worker threads (as ollama-guard runs on two cores),
//! each a single-threaded Tokio runtime accepting on its own clone of the
//! listening socket.
//!   floor LISTEN_PORT UPSTREAM_PORT

use std::cell::RefCell;
use std::future::poll_fn;
use std::rc::Rc;

use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

#[path = "../../../src/allocator.rs"]
mod allocator;

#[global_allocator]
static ALLOCATOR: allocator::Mimalloc = allocator::Mimalloc;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<u16>());
    let (Some(Ok(listen)), Some(Ok(upstream))) = (args.next(), args.next()) else {
        eprintln!("usage: floor LISTEN_PORT UPSTREAM_PORT");
        std::process::exit(2);
    };
    let listener = std::net::TcpListener::bind(("127.0.0.1", listen))?;
    listener.set_nonblocking(true)?;
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let listener = listener.try_clone()?;
            Ok(std::thread::spawn(move || serve(listener, upstream)))
        })
        .collect::<std::io::Result<_>>()?;
    for w in workers {
        let _ = w.join();
    }
    Ok(())
}

fn serve(listener: std::net::TcpListener, upstream: u16) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let listener = TcpListener::from_std(listener)?;
        loop {
            let (tcp, _) = listener.accept().await?;
            tcp.set_nodelay(true)?;
            tokio::task::spawn_local(async move {
                let _ = relay(tcp, upstream).await;
            });
        }
    })
}

/// Serves one client connection over one upstream connection.
async fn relay(client: TcpStream, upstream: u16) -> Result<(), Box<dyn std::error::Error>> {
    let up = TcpStream::connect(("127.0.0.1", upstream)).await?;
    up.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(up)).await?;
    tokio::task::spawn_local(conn);
    let sender: Rc<RefCell<SendRequest<Incoming>>> = Rc::new(RefCell::new(sender));
    let service = service_fn(move |req: Request<Incoming>| {
        let sender = sender.clone();
        async move {
            // One request at a time per client connection: the previous
            // response was written whole before this one was read.
            poll_fn(|cx| sender.borrow_mut().poll_ready(cx)).await?;
            let sent = sender.borrow_mut().send_request(req);
            let response: Response<Incoming> = sent.await?;
            Ok::<_, hyper::Error>(response)
        }
    });
    hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(client), service)
        .await?;
    Ok(())
}
