//! An SMTP sink (RFC 5321): accepts every message and keeps it, so a test reads the email
//! Frontdesk sent. Speaks the minimum a client needs: the 220 greeting, `EHLO`/`HELO`,
//! `MAIL FROM`, `RCPT TO`, `DATA` (dot-terminated, dot-unstuffed), `RSET`, `NOOP`, `QUIT`; no
//! TLS and no authentication (`smtp://127.0.0.1:port`). `fail_next(n)` answers the next `n`
//! `MAIL FROM`s with `451` (a transient failure the sender retries).

use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// A received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    /// Headers and body as sent (CRLF line ends, dots unstuffed).
    pub data: String,
}

#[derive(Default)]
struct State {
    messages: Vec<Received>,
    failures_left: usize,
}

/// A running sink; stops when dropped.
pub struct SmtpSink {
    pub addr: std::net::SocketAddr,
    state: Arc<Mutex<State>>,
    _server: crate::http_fake::Server,
}

impl SmtpSink {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::clone(&state);
        let server = crate::http_fake::spawn(move |socket, _| {
            let state = Arc::clone(&shared);
            async move { serve(socket, state).await }
        })
        .await;
        Self {
            addr: server.addr,
            state,
            _server: server,
        }
    }

    /// `smtp://127.0.0.1:port` for `email.smtp_url`.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    pub fn messages(&self) -> Vec<Received> {
        self.state.lock().expect("lock").messages.clone()
    }

    /// Refuses the next `n` messages with `451` (try again later).
    pub fn fail_next(&self, n: usize) {
        self.state.lock().expect("lock").failures_left = n;
    }
}

async fn serve(socket: tokio::net::TcpStream, state: Arc<Mutex<State>>) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read).lines();
    write.write_all(b"220 sink.test ESMTP ready\r\n").await?;
    let (mut from, mut to) = (String::new(), Vec::new());
    while let Some(line) = lines.next_line().await? {
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            b"250-sink.test\r\n250 8BITMIME\r\n"
        } else if upper.starts_with("HELO") || upper.starts_with("NOOP") {
            b"250 ok\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            let mut state = state.lock().expect("lock");
            if state.failures_left > 0 {
                state.failures_left -= 1;
                b"451 4.3.0 try again later\r\n"
            } else {
                from = line[10..].trim().trim_matches(['<', '>']).to_string();
                to.clear();
                b"250 ok\r\n"
            }
        } else if upper.starts_with("RCPT TO:") {
            to.push(line[8..].trim().trim_matches(['<', '>']).to_string());
            b"250 ok\r\n"
        } else if upper.starts_with("DATA") {
            write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
            let mut data = String::new();
            while let Some(line) = lines.next_line().await? {
                if line == "." {
                    break;
                }
                data.push_str(
                    line.strip_prefix('.')
                        .filter(|_| line.starts_with(".."))
                        .unwrap_or(&line),
                );
                data.push_str("\r\n");
            }
            state.lock().expect("lock").messages.push(Received {
                from: from.clone(),
                to: to.clone(),
                data,
            });
            b"250 queued\r\n"
        } else if upper.starts_with("RSET") {
            from.clear();
            to.clear();
            b"250 ok\r\n"
        } else if upper.starts_with("QUIT") {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            b"502 command not implemented\r\n"
        };
        write.write_all(reply).await?;
    }
    Ok(())
}

impl Received {
    /// A header's value (first occurrence, unfolded), case-insensitive name.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or_default();
        let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
        unfolded.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_string())
        })
    }

    /// The body decoded from its `Content-Transfer-Encoding` (7bit, quoted-printable, base64).
    pub fn body_text(&self) -> String {
        use base64::Engine as _;
        let body = self
            .data
            .split_once("\r\n\r\n")
            .map(|(_, body)| body)
            .unwrap_or_default();
        match self
            .header("Content-Transfer-Encoding")
            .unwrap_or_default()
            .to_ascii_lowercase()
            .as_str()
        {
            "base64" => {
                let compact: String = body.split_whitespace().collect();
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(compact)
                    .unwrap_or_default();
                String::from_utf8_lossy(&bytes).replace("\r\n", "\n")
            }
            "quoted-printable" => {
                let joined = body.replace("=\r\n", "");
                let mut bytes = Vec::new();
                let raw = joined.as_bytes();
                let mut i = 0;
                while i < raw.len() {
                    if raw[i] == b'='
                        && i + 2 < raw.len()
                        && let Ok(byte) =
                            u8::from_str_radix(&String::from_utf8_lossy(&raw[i + 1..i + 3]), 16)
                    {
                        bytes.push(byte);
                        i += 3;
                    } else {
                        bytes.push(raw[i]);
                        i += 1;
                    }
                }
                String::from_utf8_lossy(&bytes).replace("\r\n", "\n")
            }
            _ => body.replace("\r\n", "\n"),
        }
    }
}
