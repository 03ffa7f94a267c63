//! A local OpenAI-compatible chat server that reproduces the failures of real ones
//! (`../shared/docs/wire-facts.md` §4): 429 with `Retry-After` (JSON or text/plain body,
//! `insufficient_quota`), 5xx with text bodies, llama.cpp/vLLM-style integer error codes, a
//! stream cut mid-answer, an error chunk mid-stream, a slow first token, and output that breaks
//! a JSON schema.
//!
//! Raw HTTP/1.1 over tokio so a fault can happen at an exact byte: streamed replies use chunked
//! transfer encoding, so a cut is a broken body (as when a real server dies), not a clean end.
//! Each request takes the next [`Reply`] of the script (the last one repeats); the server
//! records every request body.

use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

/// What the server answers to one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A non-200 answer.
    Status {
        status: u16,
        content_type: &'static str,
        body: String,
        retry_after: Option<String>,
    },
    /// A 200 event stream.
    Stream(StreamReply),
}

/// A streamed completion and how it goes wrong.
#[derive(Debug, Clone)]
pub struct StreamReply {
    /// Content deltas, in order. `{canary}` in one is replaced by the canary of the request's
    /// system prompt (a prompt leak); `{source1}` by the first sentence of its source 1 (a
    /// model quoting what it was given).
    pub deltas: Vec<String>,
    /// Wait before the first chunk.
    pub first_delay: Duration,
    /// Wait between chunks.
    pub gap: Duration,
    /// After this many deltas: close the connection mid-body (no finish, no `[DONE]`).
    pub cut_after: Option<usize>,
    /// After this many deltas: send `data: {"error":{…}}` and then end normally.
    pub error_chunk_after: Option<usize>,
    /// Send the usage chunk (`stream_options.include_usage`).
    pub usage: bool,
    /// The last chunk's `finish_reason` (`stop`, `length`, …).
    pub finish: &'static str,
}

impl StreamReply {
    /// A normal stream of `deltas`.
    pub fn of(deltas: &[&str]) -> Self {
        Self {
            deltas: deltas.iter().map(|d| d.to_string()).collect(),
            first_delay: Duration::ZERO,
            gap: Duration::from_millis(5),
            cut_after: None,
            error_chunk_after: None,
            usage: true,
            finish: "stop",
        }
    }
}

impl Reply {
    /// `429` with an OpenAI rate-limit body and `Retry-After: seconds`.
    pub fn rate_limited(seconds: u64) -> Self {
        Self::Status {
            status: 429,
            content_type: "application/json",
            body:
                json!({"error": {"message": "Rate limit reached for requests", "type": "requests",
                                   "param": null, "code": "rate_limit_exceeded"}})
                .to_string(),
            retry_after: Some(seconds.to_string()),
        }
    }

    /// `429 insufficient_quota`: not retryable.
    pub fn out_of_quota() -> Self {
        Self::Status {
            status: 429,
            content_type: "application/json",
            body: json!({"error": {"message": "You exceeded your current quota", "type": "insufficient_quota",
                                   "param": null, "code": "insufficient_quota"}})
            .to_string(),
            retry_after: None,
        }
    }

    /// A 5xx with a text/plain body (as proxies and gateways send).
    pub fn server_error(status: u16) -> Self {
        Self::Status {
            status,
            content_type: "text/plain",
            body: "upstream connect error or disconnect/reset before headers".into(),
            retry_after: None,
        }
    }

    /// llama.cpp/vLLM's error body with an integer `code`.
    pub fn integer_code(status: u16, message: &str) -> Self {
        Self::Status {
            status,
            content_type: "application/json",
            body: json!({"error": {"code": status, "message": message, "type": "invalid_request_error"}})
                .to_string(),
            retry_after: None,
        }
    }

    pub fn stream(deltas: &[&str]) -> Self {
        Self::Stream(StreamReply::of(deltas))
    }
}

#[derive(Default)]
struct Shared {
    script: Vec<Reply>,
    next: usize,
    requests: Vec<Value>,
    /// Request line and headers of each request (`POST /v1/chat/completions HTTP/1.1`, …).
    heads: Vec<String>,
    /// Streams the client closed before the server finished writing.
    client_gone: usize,
}

/// A running fault server.
pub struct FaultLlm {
    pub addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultLlm {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultLlm {
    /// Starts on `127.0.0.1:0` with `script`.
    pub async fn start(script: Vec<Reply>) -> Self {
        assert!(!script.is_empty(), "a script needs at least one reply");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let addr = listener.local_addr().expect("addr");
        let shared = Arc::new(Mutex::new(Shared {
            script,
            ..Shared::default()
        }));
        let for_task = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let shared = for_task.clone();
                tokio::spawn(async move {
                    if let Err(err) = serve(socket, shared.clone()).await
                        && matches!(
                            err.kind(),
                            std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
                        )
                    {
                        shared.lock().expect("lock").client_gone += 1;
                    }
                });
            }
        });
        Self { addr, shared, task }
    }

    /// `http://127.0.0.1:port/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Requests received so far (their JSON bodies).
    pub fn requests(&self) -> Vec<Value> {
        self.shared.lock().expect("lock").requests.clone()
    }

    /// The request line and headers of each request, as received.
    pub fn request_heads(&self) -> Vec<String> {
        self.shared.lock().expect("lock").heads.clone()
    }

    /// Streams the client closed before the server finished them.
    pub fn streams_abandoned_by_client(&self) -> usize {
        self.shared.lock().expect("lock").client_gone
    }

    /// Replaces the script (and restarts it).
    pub fn set_script(&self, script: Vec<Reply>) {
        let mut shared = self.shared.lock().expect("lock");
        shared.script = script;
        shared.next = 0;
    }
}

fn chunk_json(model: &str, delta: Value, finish: Option<&str>) -> String {
    json!({
        "id": "chatcmpl-fault", "object": "chat.completion.chunk", "created": 1_700_000_000u32,
        "model": model, "system_fingerprint": null,
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        "usage": null
    })
    .to_string()
}

async fn send_chunk(socket: &mut TcpStream, data: &str) -> std::io::Result<()> {
    let event = format!("data: {data}\n\n");
    let framed = format!("{:x}\r\n{event}\r\n", event.len());
    socket.write_all(framed.as_bytes()).await?;
    socket.flush().await
}

/// The first sentence (or line) of `<source id="1" …>` in the system prompt.
fn source1_of(request: &Value) -> Option<String> {
    let system = request["messages"][0]["content"].as_str()?;
    let start = system.find("<source id=\"1\"")?;
    let body = &system[start..];
    let body = &body[body.find('>')? + 1..];
    let body = body.trim_start();
    let end = body
        .find(". ")
        .map(|i| i + 1)
        .or_else(|| body.find('\n'))
        .unwrap_or(body.len());
    Some(body[..end].trim().to_string())
}

fn canary_of(request: &Value) -> Option<String> {
    let system = request["messages"][0]["content"].as_str()?;
    let at = system.find("Confidential marker: ")? + "Confidential marker: ".len();
    Some(system[at..].split_whitespace().next()?.to_string())
}

async fn serve(mut socket: TcpStream, shared: Arc<Mutex<Shared>>) -> std::io::Result<()> {
    let Some(crate::http_fake::Request {
        head,
        body: request,
        ..
    }) = crate::http_fake::read(&mut socket).await?
    else {
        return Ok(());
    };
    let reply = {
        let mut shared = shared.lock().expect("lock");
        shared.requests.push(request.clone());
        shared.heads.push(head);
        let index = shared.next.min(shared.script.len() - 1);
        shared.next += 1;
        shared.script[index].clone()
    };
    let model = request["model"].as_str().unwrap_or("fake").to_string();
    match reply {
        Reply::Status {
            status,
            content_type,
            body,
            retry_after,
        } => {
            let mut head = format!(
                "HTTP/1.1 {status} Error\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n",
                body.len()
            );
            if let Some(seconds) = retry_after {
                head.push_str(&format!("retry-after: {seconds}\r\n"));
            }
            head.push_str("\r\n");
            socket.write_all(head.as_bytes()).await?;
            socket.write_all(body.as_bytes()).await?;
            socket.shutdown().await
        }
        Reply::Stream(stream) => {
            socket
                .write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n",
                )
                .await?;
            tokio::time::sleep(stream.first_delay).await;
            send_chunk(
                &mut socket,
                &chunk_json(&model, json!({"role": "assistant", "content": ""}), None),
            )
            .await?;
            let canary = canary_of(&request).unwrap_or_default();
            for (i, delta) in stream.deltas.iter().enumerate() {
                if stream.cut_after == Some(i) {
                    // Die mid-body: no final chunk, no [DONE].
                    return socket.shutdown().await;
                }
                if stream.error_chunk_after == Some(i) {
                    send_chunk(
                        &mut socket,
                        &json!({"error": {"message": "The server had an error while processing your request.",
                                          "type": "server_error", "param": null, "code": null}})
                        .to_string(),
                    )
                    .await?;
                    break;
                }
                let text = delta
                    .replace("{canary}", &canary)
                    .replace("{source1}", &source1_of(&request).unwrap_or_default());
                send_chunk(
                    &mut socket,
                    &chunk_json(&model, json!({"content": text}), None),
                )
                .await?;
                tokio::time::sleep(stream.gap).await;
            }
            if stream.error_chunk_after.is_none() {
                send_chunk(
                    &mut socket,
                    &chunk_json(&model, json!({}), Some(stream.finish)),
                )
                .await?;
            }
            if stream.usage {
                let usage = json!({
                    "id": "chatcmpl-fault", "object": "chat.completion.chunk", "created": 1_700_000_000u32,
                    "model": model, "choices": [],
                    "usage": {"prompt_tokens": 120, "completion_tokens": stream.deltas.len(), "total_tokens": 120 + stream.deltas.len()}
                });
                send_chunk(&mut socket, &usage.to_string()).await?;
            }
            send_chunk(&mut socket, "[DONE]").await?;
            socket.write_all(b"0\r\n\r\n").await?;
            socket.shutdown().await
        }
    }
}
