//! The HTTP/1.1 plumbing of the local vendor fakes (`fake_zendesk`, `fake_freshdesk`): read one
//! request (request line, headers, a JSON body of `content-length` bytes) and write one answer
//! with `connection: close`. Raw tokio sockets, so a fake can also die at an exact point (close
//! without answering) as a crashing vendor does.

use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A fake listening on `127.0.0.1:0`, one task per connection; stopped when dropped.
pub struct Server {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a fake whose connections are served by `handle(socket, own address)`.
pub async fn spawn<F, Fut>(handle: F) -> Server
where
    F: Fn(TcpStream, SocketAddr) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = std::io::Result<()>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(handle(socket, addr));
        }
    });
    Server { addr, task }
}

/// One request as the fake saw it.
pub struct Request {
    /// The request line and headers as received.
    pub head: String,
    pub method: String,
    /// Path and query (`/api/v2/tickets?external_id=…`).
    pub path: String,
    /// Header names lower-cased.
    pub headers: HashMap<String, String>,
    /// The JSON body (`null` when absent or not JSON).
    pub body: Value,
}

/// Reads one request; `None` when the client closed first.
pub async fn read(socket: &mut TcpStream) -> std::io::Result<Option<Request>> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let end = loop {
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
    };
    let head = String::from_utf8_lossy(&buffer[..end]).to_string();
    let mut lines = head.lines();
    let mut first = lines.next().unwrap_or("").split_whitespace();
    let method = first.next().unwrap_or("").to_string();
    let path = first.next().unwrap_or("").to_string();
    let headers: HashMap<String, String> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buffer.len() < end + length {
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    let body = serde_json::from_slice(&buffer[end..(end + length).min(buffer.len())])
        .unwrap_or(Value::Null);
    Ok(Some(Request {
        head,
        method,
        path,
        headers,
        body,
    }))
}

/// Writes one answer: `status`, `content_type`, the vendor's usual headers (`vendor_headers`,
/// e.g. its rate-limit headers), `extra` headers and `body`; then closes.
pub async fn respond(
    socket: &mut TcpStream,
    status: u16,
    content_type: &str,
    vendor_headers: &str,
    extra: &[(&str, String)],
    body: &str,
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n{vendor_headers}",
        body.len()
    );
    for (name, value) in extra {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    socket.write_all(head.as_bytes()).await?;
    socket.write_all(body.as_bytes()).await?;
    socket.shutdown().await
}
