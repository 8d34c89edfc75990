//! `--healthz-port`: `/healthz` answers 200 while the process runs, `/readyz`
//! 200 once the rules are in place and subnet.env is written (503 before).
//! A tiny HTTP/1.x responder is enough for kubelet probes and curl.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::{info, warn};

pub async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    let l = TcpListener::bind(addr)
        .await
        .with_context(|| format!("start healthz server on {addr}"))?;
    info!("healthz server listening on {addr}");
    Ok(l)
}

pub async fn serve(listener: TcpListener, ready: Arc<AtomicBool>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let ready = ready.clone();
                tokio::spawn(async move {
                    let _ =
                        tokio::time::timeout(Duration::from_secs(5), answer(stream, ready)).await;
                });
            }
            Err(e) => {
                warn!("healthz accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// The status line and body for a request path.
pub fn response_for(path: &str, ready: bool) -> (&'static str, &'static str) {
    match path.split('?').next().unwrap_or("") {
        "/healthz" => ("200 OK", "flanneld is running\n"),
        "/readyz" if ready => ("200 OK", "flanneld is ready\n"),
        "/readyz" => ("503 Service Unavailable", "flanneld is not ready\n"),
        _ => ("404 Not Found", "404 page not found\n"),
    }
}

async fn answer(mut stream: TcpStream, ready: Arc<AtomicBool>) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && !buf.windows(2).any(|w| w == b"\n\n") {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        if buf.len() > 8192 {
            break;
        }
    }
    let text = String::from_utf8_lossy(&buf);
    let mut words = text.lines().next().unwrap_or("").split_whitespace();
    let method = words.next().unwrap_or("");
    let path = words.next().unwrap_or("");
    let (status, body) = if method == "GET" || method == "HEAD" {
        response_for(path, ready.load(Ordering::Relaxed))
    } else {
        ("405 Method Not Allowed", "method not allowed\n")
    };
    let body = if method == "HEAD" { "" } else { body };
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(resp.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(response_for("/healthz", false).0, "200 OK");
        assert_eq!(response_for("/readyz", false).0, "503 Service Unavailable");
        assert_eq!(response_for("/readyz?verbose", true).0, "200 OK");
        assert_eq!(response_for("/", true).0, "404 Not Found");
    }
}
