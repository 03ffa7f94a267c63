//! Shared helpers for the black-box tests in `tests/` (this file is the test-only root
//! package's library, so every test binary can `use frontdesk_tests::…`).
//!
//! - [`spawn_app`] / [`spawn_app_with`]: the real server on `127.0.0.1:0`, over the demo
//!   knowledge base (or a retriever the test plugs in), with per-test config overrides;
//! - [`WsClient`]: a real WebSocket client (tokio-tungstenite) speaking `PROTOCOL.md`.

pub mod fake_freshdesk;
pub mod fake_intercom;
pub mod fake_zendesk;
pub mod fault_llm;
pub mod http_fake;
pub mod plausible;
pub mod redis;
pub mod smtp_sink;

use anyhow::{Context, anyhow, bail};
use frontdesk::adapters::kb_retriever::KbRetriever;
use frontdesk::adapters::memory_store::MemoryStore;
use frontdesk::adapters::redis_store::{RedisStore, RedisStoreConfig};
use frontdesk::config::StoreBackend;
use frontdesk::config::{ConfigSources, EnvSnapshot, Settings};
use frontdesk::engine::extractive::ExtractiveGenerator;
use frontdesk::engine::{Engine, Ports};
use frontdesk::ports::retriever::Retriever;
use frontdesk::ports::store::ConversationStore;
use frontdesk::startup::{Application, ShutdownHandle};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for a frame before failing.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(15);

/// The repository root (the root package's manifest directory).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The demo help center (`kb/demo`).
pub fn demo_kb_dir() -> PathBuf {
    repo_root().join("kb/demo")
}

/// The shared read-only data (`../shared`, or `FRONTDESK_SHARED`).
pub fn shared_dir() -> PathBuf {
    std::env::var_os("FRONTDESK_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared"))
}

/// Where test indexes are cached between runs (outside the clone).
pub fn test_cache_dir() -> PathBuf {
    std::env::var_os("FRONTDESK_CACHE")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache/frontdesk"))
        })
        .unwrap_or_else(std::env::temp_dir)
        .join("test-kb")
}

/// The demo knowledge base as a keyword-only retriever (no model needed; fast and
/// deterministic), built once per cache and opened read-only by every test.
///
/// This is the one place the knowledge base is plugged into test apps.
pub fn demo_retriever() -> Arc<dyn Retriever> {
    static RETRIEVER: OnceLock<Arc<dyn Retriever>> = OnceLock::new();
    RETRIEVER
        .get_or_init(|| {
            let kb = frontdesk_kb::index::open_cached(
                &demo_kb_dir(),
                "demo",
                &test_cache_dir(),
                None,
                frontdesk_kb::fusion::FusionParams::default(),
            )
            .unwrap_or_else(|err| panic!("cannot build the demo knowledge base for tests: {err}"));
            Arc::new(KbRetriever::new(Arc::new(kb), "embedded"))
        })
        .clone()
}

/// How to start a test app.
#[derive(Default, Clone)]
pub struct TestAppOptions {
    /// TOML layered over the defaults and the test base (`[ws] max_frame_bytes = 4096`, …).
    pub config: Vec<String>,
    /// The retriever; `None` = [`demo_retriever`].
    pub retriever: Option<Arc<dyn Retriever>>,
    /// Build through `Application::build` (adapters from config, start-up ingestion into a
    /// temporary `kb.data_dir`) instead of plugging ports in.
    pub full_startup: bool,
}

/// A running server.
pub struct TestApp {
    pub addr: SocketAddr,
    /// `ws://127.0.0.1:port/v1/ws`.
    pub ws_url: String,
    /// `http://127.0.0.1:port`.
    pub http_url: String,
    /// The demo site's public key.
    pub site_key: String,
    pub engine: Arc<Engine>,
    pub settings: Settings,
    /// The Redis store when the config selects one (its round-trip counter, its prefix).
    pub redis_store: Option<RedisStore>,
    shutdown: ShutdownHandle,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _data_dir: tempfile::TempDir,
}

impl TestApp {
    /// Starts the graceful shutdown (sockets finish their answer, then close with 1001).
    pub fn shutdown(&self) {
        self.shutdown.shutdown();
    }

    /// Waits until the server has stopped (after [`Self::shutdown`]).
    pub async fn stopped(&mut self) -> anyhow::Result<()> {
        if let Some(server) = self.server.take() {
            tokio::time::timeout(Duration::from_secs(30), server)
                .await
                .context("server did not stop")???;
        }
        Ok(())
    }

    /// A connected WebSocket client.
    pub async fn client(&self) -> WsClient {
        WsClient::connect(&self.ws_url)
            .await
            .expect("connects to /v1/ws")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.shutdown();
    }
}

/// The app with default options.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(TestAppOptions::default()).await
}

/// The app with config overrides (TOML layers).
pub async fn spawn_app_with_config(config: &str) -> TestApp {
    spawn_app_with(TestAppOptions {
        config: vec![config.to_string()],
        ..Default::default()
    })
    .await
}

/// Starts the server on `127.0.0.1:0`.
pub async fn spawn_app_with(options: TestAppOptions) -> TestApp {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let base = format!(
        "[server]\nbind = \"127.0.0.1\"\nport = 0\nshutdown_grace = \"5s\"\n\
         [kb]\ndata_dir = {data_dir:?}\npath = {demo:?}\n\
         [embedder]\nkind = \"none\"\n",
        data_dir = data_dir.path().join("kb").display().to_string(),
        demo = demo_kb_dir().display().to_string(),
    );
    let mut layers = vec![base];
    layers.extend(options.config.iter().cloned());
    let settings = Settings::load(&ConfigSources {
        file: None,
        layers,
        env: EnvSnapshot::default(),
    })
    .unwrap_or_else(|err| panic!("test config does not load: {err}"));
    // `[store] redis_url` selects Redis, as at start-up; the test keeps a handle on it (round
    // trips). With `full_startup` the application connects on its own.
    let redis_store = match (&settings.store.backend, options.full_startup) {
        (StoreBackend::Redis { url }, false) => Some(
            RedisStore::connect(RedisStoreConfig {
                url: url.expose().to_string(),
                key_prefix: settings.store.key_prefix.clone(),
                closed_ttl: settings.store.closed_ttl,
                timeout: settings.store.timeout,
            })
            .await
            .unwrap_or_else(|err| {
                panic!(
                    "the test Redis is not usable ({err}); {}",
                    redis::START_REDIS_HINT
                )
            }),
        ),
        _ => None,
    };
    let app = if options.full_startup {
        Application::build(settings.clone())
            .await
            .unwrap_or_else(|err| panic!("app does not start: {err}"))
    } else {
        let retriever = match options.retriever {
            Some(retriever) => retriever,
            None => tokio::task::spawn_blocking(demo_retriever)
                .await
                .expect("demo retriever builds"),
        };
        let (store, spend): (
            Arc<dyn ConversationStore>,
            Arc<dyn frontdesk::ports::spend::SpendLedger>,
        ) = match &redis_store {
            Some(redis) => (Arc::new(redis.clone()), Arc::new(redis.clone())),
            None => {
                let memory = MemoryStore::new(settings.store.closed_ttl);
                (Arc::new(memory.clone()), Arc::new(memory))
            }
        };
        // `[llm]` selects the chat model, as at start-up.
        let chat = frontdesk::startup::build_chat_model(&settings)
            .unwrap_or_else(|err| panic!("chat model: {err}"));
        let ports = Ports {
            store,
            retriever,
            generator: Arc::new(ExtractiveGenerator::new()),
            // No per-turn embedder: the retriever embeds the query itself, and the analysis
            // runs its rules without classification.
            embedder: None,
            analyzer: frontdesk::startup::choose_analyzer(
                &settings,
                chat.as_ref(),
                Arc::new(
                    frontdesk::engine::analysis::LocalAnalyzer::build(&settings.sites, None)
                        .unwrap_or_else(|err| panic!("analyzer builds: {err}")),
                ),
            ),
            chat,
            spend,
            helpdesk: frontdesk::startup::build_helpdesk(&settings)
                .unwrap_or_else(|err| panic!("helpdesk: {err}")),
            mailer: frontdesk::startup::build_mailer(&settings)
                .unwrap_or_else(|err| panic!("mailer: {err}")),
        };
        Application::build_with_ports(settings.clone(), ports)
            .unwrap_or_else(|err| panic!("app does not start: {err}"))
    };
    let addr = app.local_addr();
    let site_key = app.demo_site_key().to_string();
    let engine = app.engine();
    let shutdown = app.shutdown_handle();
    let server = tokio::spawn(app.run_until_stopped());
    TestApp {
        addr,
        ws_url: format!("ws://{addr}/v1/ws"),
        http_url: format!("http://{addr}"),
        site_key,
        engine,
        settings,
        redis_store,
        shutdown,
        server: Some(server),
        _data_dir: data_dir,
    }
}

/// What the socket delivered.
#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    /// A JSON text frame.
    Frame(Value),
    /// The server closed with this code and reason.
    Closed { code: u16, reason: String },
    /// A non-JSON or non-text frame (never expected from the server).
    Other(String),
}

/// Everything one visitor message produced.
#[derive(Debug, Clone, Default)]
pub struct TurnFrames {
    pub ack: Value,
    pub deltas: Vec<Value>,
    /// `answer_end` or `handoff`: what ended the turn.
    pub end: Value,
    /// Every frame after the ack, in order.
    pub frames: Vec<Value>,
}

impl TurnFrames {
    /// The deltas' text, concatenated in order.
    pub fn streamed_text(&self) -> String {
        self.deltas
            .iter()
            .filter_map(|d| d["text"].as_str())
            .collect()
    }
}

/// A WebSocket client speaking the Frontdesk protocol.
pub struct WsClient {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Server pings seen (tungstenite answers them).
    pub n_pings: usize,
}

impl WsClient {
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let (stream, _) = tokio_tungstenite::connect_async(url)
            .await
            .with_context(|| format!("connecting to {url}"))?;
        Ok(Self { stream, n_pings: 0 })
    }

    /// Sends a JSON frame.
    pub async fn send_json(&mut self, frame: Value) {
        self.send(Message::text(frame.to_string())).await;
    }

    /// Sends any message (raw text, binary, a hand-made frame).
    pub async fn send(&mut self, message: Message) {
        self.stream
            .send(message)
            .await
            .expect("the socket accepts the frame");
    }

    /// The next text frame or close, within `timeout`; `None` on timeout. Pings and pongs are
    /// counted and skipped.
    pub async fn recv_within(&mut self, timeout: Duration) -> Option<Received> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let next = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .ok()?;
            return Some(match next {
                None => Received::Closed {
                    code: 1006,
                    reason: "connection dropped without a close frame".into(),
                },
                Some(Err(err)) => Received::Closed {
                    code: 1006,
                    reason: format!("connection error: {err}"),
                },
                Some(Ok(Message::Text(text))) => match serde_json::from_str(text.as_str()) {
                    Ok(value) => Received::Frame(value),
                    Err(_) => Received::Other(text.to_string()),
                },
                Some(Ok(Message::Close(frame))) => {
                    let (code, reason) = frame
                        .map_or((1005, String::new()), |CloseFrame { code, reason }| {
                            (u16::from(code), reason.to_string())
                        });
                    Received::Closed { code, reason }
                }
                Some(Ok(Message::Ping(_))) => {
                    self.n_pings += 1;
                    continue;
                }
                Some(Ok(Message::Pong(_))) => continue,
                Some(Ok(other)) => Received::Other(format!("{other:?}")),
            });
        }
    }

    /// The next JSON frame (fails on close or timeout).
    pub async fn recv(&mut self) -> anyhow::Result<Value> {
        match self.recv_within(FRAME_TIMEOUT).await {
            Some(Received::Frame(value)) => Ok(value),
            Some(other) => bail!("expected a frame, got {other:?}"),
            None => bail!("no frame within {FRAME_TIMEOUT:?}"),
        }
    }

    /// The next frame, which must have this `type`.
    pub async fn recv_type(&mut self, kind: &str) -> anyhow::Result<Value> {
        let frame = self.recv().await?;
        if frame["type"] != kind {
            bail!("expected a {kind} frame, got {frame}");
        }
        Ok(frame)
    }

    /// Asserts nothing arrives for `quiet` (the socket stays open and silent).
    pub async fn expect_silence(&mut self, quiet: Duration) -> anyhow::Result<()> {
        match self.recv_within(quiet).await {
            None => Ok(()),
            Some(other) => bail!("expected silence, got {other:?}"),
        }
    }

    /// The close the server sends next (frames before it are returned too).
    pub async fn expect_close(&mut self) -> anyhow::Result<(u16, String, Vec<Value>)> {
        let mut frames = Vec::new();
        loop {
            match self.recv_within(FRAME_TIMEOUT).await {
                Some(Received::Closed { code, reason }) => return Ok((code, reason, frames)),
                Some(Received::Frame(frame)) => frames.push(frame),
                Some(Received::Other(other)) => bail!("unexpected frame {other}"),
                None => bail!("the server did not close within {FRAME_TIMEOUT:?}"),
            }
        }
    }

    /// Sends `hello` for a new conversation on `site_key` and returns `welcome`.
    pub async fn hello(&mut self, site_key: &str) -> anyhow::Result<Value> {
        self.send_json(json!({"type": "hello", "v": 1, "site_key": site_key}))
            .await;
        self.recv_type("welcome").await
    }

    /// Sends a `message` with a fresh `client_message_id` and collects its turn.
    pub async fn ask(&mut self, text: &str) -> anyhow::Result<TurnFrames> {
        let id = uuid::Uuid::new_v4().to_string();
        self.ask_with_id(&id, text).await
    }

    /// Sends a `message` and collects the ack and the turn up to `answer_end` or `handoff`.
    pub async fn ask_with_id(
        &mut self,
        client_message_id: &str,
        text: &str,
    ) -> anyhow::Result<TurnFrames> {
        self.send_json(
            json!({"type": "message", "client_message_id": client_message_id, "text": text}),
        )
        .await;
        let ack = self.recv().await?;
        if ack["type"] != "ack" || ack["client_message_id"] != client_message_id {
            return Err(anyhow!(
                "expected the ack of {client_message_id}, got {ack}"
            ));
        }
        let mut turn = TurnFrames {
            ack,
            ..Default::default()
        };
        loop {
            let frame = self.recv().await?;
            turn.frames.push(frame.clone());
            match frame["type"].as_str() {
                Some("delta") => turn.deltas.push(frame),
                Some("answer_end") | Some("handoff") => {
                    turn.end = frame;
                    return Ok(turn);
                }
                Some("typing") => {}
                _ => bail!("unexpected frame during a turn: {frame}"),
            }
        }
    }
}

/// Reads a file under the repository root.
pub fn read_repo_file(relative: impl AsRef<Path>) -> String {
    let path = repo_root().join(relative);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()))
}
