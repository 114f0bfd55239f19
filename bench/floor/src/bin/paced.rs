//! A paced stand-in for Ollama streaming a reply: every request on a
//! connection is answered with the lines of one NDJSON file, each line its
//! own HTTP chunk written on its own, `INTERVAL_MS` apart, as Ollama
//! flushes each token of a generation. A proxy in front of it reads one
//! frame at a time, so its cost per chunk (a read, a wakeup, a write) is
//! measured, where a reply served at once arrives in a few reads.
//!   paced LISTEN_PORT FILE INTERVAL_MS

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(Ok(port)), Some(file), Some(Ok(ms))) = (
        args.first().map(|a| a.parse::<u16>()),
        args.get(1),
        args.get(2).map(|a| a.parse::<f64>()),
    ) else {
        eprintln!("usage: paced LISTEN_PORT FILE INTERVAL_MS");
        std::process::exit(2);
    };
    let text = std::fs::read_to_string(file)?;
    let frames: Vec<String> = text.lines().map(|l| format!("{l}\n")).collect();
    let frames: &'static [String] = Vec::leak(frames);
    let interval = Duration::from_secs_f64(ms / 1000.0);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        loop {
            let (tcp, _) = listener.accept().await?;
            tcp.set_nodelay(true)?;
            tokio::spawn(async move {
                let _ = answer(tcp, frames, interval).await;
            });
        }
    })
}

/// Answers each request of one connection (keep-alive) until it closes.
async fn answer(mut tcp: TcpStream, frames: &[String], interval: Duration) -> std::io::Result<()> {
    let mut buf = Vec::new();
    loop {
        // The request head, then as many body bytes as it declares.
        let head_end = loop {
            if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            let mut chunk = [0u8; 4096];
            let n = tcp.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + length {
            let mut chunk = [0u8; 4096];
            let n = tcp.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        buf.drain(..head_end + length);
        tcp.write_all(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\ntransfer-encoding: chunked\r\n\r\n",
        )
        .await?;
        for frame in frames {
            tokio::time::sleep(interval).await;
            tcp.write_all(format!("{:x}\r\n{frame}\r\n", frame.len()).as_bytes())
                .await?;
        }
        tcp.write_all(b"0\r\n\r\n").await?;
    }
}
