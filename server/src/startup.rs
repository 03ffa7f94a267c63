//! Start-up: picks an adapter for each port from the settings (refusing, with a clear message,
//! a configured adapter this build does not have yet), opens and fills the knowledge base,
//! binds the listener and runs the server until shutdown.

use crate::adapters::freshdesk::{FreshdeskConfig, FreshdeskHelpdesk};
use crate::adapters::inbox::InboxHelpdesk;
use crate::adapters::kb_embedder::BlockingQueryEmbedder;
use crate::adapters::kb_retriever::KbRetriever;
use crate::adapters::memory_store::MemoryStore;
use crate::adapters::openai_chat::{Endpoint, OpenAiChatModel, Timeouts};
use crate::adapters::redis_store::{RedisStore, RedisStoreConfig};
use crate::adapters::zendesk::{ZendeskConfig, ZendeskHelpdesk};
use crate::api::{self, AppState};
use crate::config::{
    AnalyzerKind, EmbedderKind, HelpdeskSettings, KbBackend, LlmProvider, Settings, StoreBackend,
};
use crate::engine::analysis::LocalAnalyzer;
use crate::engine::extractive::ExtractiveGenerator;
use crate::engine::llm_analysis::{AnalysisCounters, LlmAnalyzer};
use crate::engine::{Engine, Ports};
use crate::ports::analyzer::Analyzer;
use crate::ports::chat::ChatModel;
use crate::ports::embedder::QueryEmbedder;
use crate::ports::helpdesk::Helpdesk;
use crate::ports::spend::SpendLedger;
use crate::ports::store::ConversationStore;
use actix_web::{App, HttpServer, web};
use frontdesk_kb::embed::{EmbedError, SharedEmbedder};
use frontdesk_kb::index::{KbError, KnowledgeBase};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// How often background maintenance runs (closed-conversation expiry, rate-limiter cleanup).
const MAINTENANCE_EVERY: Duration = Duration::from_secs(60);

/// Why the server cannot start; each message names the setting or path and the fix.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// A configured adapter that this build does not have yet.
    #[error("{setting}: {adapter} is not available in this build yet; {fix}")]
    NotBuilt {
        setting: &'static str,
        adapter: &'static str,
        fix: &'static str,
    },
    /// `kb.path` (or the demo help center) is missing.
    #[error("{0}")]
    MissingKnowledgeBase(String),
    /// The knowledge base could not be opened or filled.
    #[error("knowledge base in {data_dir}: {source}")]
    KnowledgeBase { data_dir: PathBuf, source: KbError },
    /// The embedder could not be built.
    #[error("embedder: {0}")]
    Embedder(#[source] EmbedError),
    /// The listener could not be bound.
    #[error(
        "cannot listen on {addr}: {source} (is another server using this port? set server.port)"
    )]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

/// Refuses settings that select an adapter this build does not have (never silently ignored).
pub fn check_adapters(settings: &Settings) -> Result<(), StartupError> {
    if settings.kb.backend == KbBackend::Meilisearch {
        return Err(StartupError::NotBuilt {
            setting: "kb.backend = \"meilisearch\"",
            adapter: "the Meilisearch retriever",
            fix: "use kb.backend = \"embedded\"",
        });
    }
    Ok(())
}

/// The embedder `[embedder]` selects: `None` (keyword-only search, with one warning) for
/// `kind = "none"` or when the local model is missing.
pub fn build_embedder(settings: &Settings) -> Result<Option<SharedEmbedder>, StartupError> {
    let max_tokens = settings.embedder.max_tokens.get();
    match &settings.embedder.kind {
        EmbedderKind::Local { model_dir } => {
            match frontdesk_kb::embed::minilm::MiniLmEmbedder::load(model_dir, max_tokens) {
                Ok(embedder) => Ok(Some(Arc::new(embedder))),
                Err(EmbedError::ModelUnavailable(message)) => {
                    warn!(embedder.model_dir = %model_dir.display(), "local embedding model unavailable ({message}); search is keyword-only");
                    Ok(None)
                }
                Err(err) => Err(StartupError::Embedder(err)),
            }
        }
        EmbedderKind::OpenAi {
            base_url,
            api_key,
            model,
            dimensions,
        } => {
            let key = api_key.as_ref().map_or("", |k| k.expose());
            let embedder = frontdesk_kb::embed::openai::OpenAiEmbedder::new(
                base_url.as_str(),
                key,
                model,
                dimensions.get(),
                max_tokens,
            )
            .map_err(StartupError::Embedder)?;
            Ok(Some(Arc::new(embedder)))
        }
        EmbedderKind::None => {
            warn!("embedder.kind = \"none\": search is keyword-only");
            Ok(None)
        }
    }
}

/// Opens the knowledge base of `kb.data_dir` with the configured embedder and fusion.
/// `writable` takes the index writer (one process at a time).
pub fn open_knowledge_base(
    settings: &Settings,
    writable: bool,
) -> Result<KnowledgeBase, StartupError> {
    let embedder = build_embedder(settings)?;
    let fusion = frontdesk_kb::fusion::FusionParams {
        semantic_ratio: settings.kb.semantic_ratio,
        ..Default::default()
    };
    let kb_settings = frontdesk_kb::index::KbSettings {
        data_dir: settings.kb.data_dir.clone(),
        writable,
        fusion,
    };
    KnowledgeBase::open(kb_settings, embedder).map_err(|source| StartupError::KnowledgeBase {
        data_dir: settings.kb.data_dir.clone(),
        source,
    })
}

/// Opens the knowledge base and ingests `kb.path` (or the demo help center) for every site.
/// Blocking: run it on a blocking thread.
pub fn prepare_knowledge_base(settings: &Settings) -> Result<KnowledgeBase, StartupError> {
    let source = settings.kb.source.path();
    if !source.exists() {
        let message = if settings.kb.source.is_demo() {
            format!(
                "the demo help center was not found at {} (it ships in the repository's kb/demo); set kb.path to your help center",
                source.display()
            )
        } else {
            format!("kb.path {} does not exist", source.display())
        };
        return Err(StartupError::MissingKnowledgeBase(message));
    }
    let kb = open_knowledge_base(settings, true)?;
    for site in &settings.sites {
        let report = kb
            .ingest_path(
                source,
                site.id.as_str(),
                &frontdesk_kb::ingest::LoadOptions::default(),
            )
            .map_err(|source| StartupError::KnowledgeBase {
                data_dir: settings.kb.data_dir.clone(),
                source,
            })?;
        info!(
            site.id = %site.id,
            kb.source = %report.source,
            kb.documents_added = report.documents_added,
            kb.documents_updated = report.documents_updated,
            kb.documents_unchanged = report.documents_unchanged,
            kb.documents_deleted = report.documents_deleted,
            kb.texts_embedded = report.texts_embedded,
            kb.n_problems = report.problems.len(),
            "knowledge base ingested"
        );
        // A few in full at warn level, the rest at debug: one bad file must not flood the log.
        for (index, problem) in report.problems.iter().enumerate() {
            if index < 3 {
                warn!(path = %problem.path.display(), line = problem.line, kind = ?problem.kind, "ingestion problem: {}", problem.message);
            } else {
                tracing::debug!(path = %problem.path.display(), line = problem.line, kind = ?problem.kind, "ingestion problem: {}", problem.message);
            }
        }
        if report.problems.len() > 3 {
            warn!(
                kb.n_problems = report.problems.len(),
                "more ingestion problems at debug level (RUST_LOG=debug)"
            );
        }
    }
    Ok(kb)
}

/// The conversation store `[store]` selects: Redis when `store.redis_url` is set (connected
/// here, so an unreachable Redis stops start-up with a message naming the setting), else the
/// in-memory store with its expiry sweeper. Must run inside a tokio runtime.
pub async fn build_store(settings: &Settings) -> Result<Arc<dyn ConversationStore>, StartupError> {
    Ok(build_stores(settings).await?.0)
}

/// The conversation store and the spend ledger (the same Redis or memory store).
pub async fn build_stores(
    settings: &Settings,
) -> Result<(Arc<dyn ConversationStore>, Arc<dyn SpendLedger>), StartupError> {
    match &settings.store.backend {
        StoreBackend::Redis { url } => {
            let store = RedisStore::connect(RedisStoreConfig {
                url: url.expose().to_string(),
                key_prefix: settings.store.key_prefix.clone(),
                closed_ttl: settings.store.closed_ttl,
                timeout: settings.store.timeout,
            })
            .await
            .map_err(|err| {
                StartupError::Other(format!(
                    "store.redis_url: cannot use Redis ({err}); start it, fix the URL, or unset store.redis_url for the in-memory store"
                ))
            })?;
            Ok((Arc::new(store.clone()), Arc::new(store)))
        }
        StoreBackend::Memory => {
            let store = MemoryStore::new(settings.store.closed_ttl);
            let sweeper = store.clone();
            tokio::spawn(async move {
                let mut every = tokio::time::interval(MAINTENANCE_EVERY);
                loop {
                    every.tick().await;
                    let n_expired = sweeper.purge_expired(time::OffsetDateTime::now_utc());
                    if n_expired > 0 {
                        info!(store.n_expired = n_expired, "expired closed conversations");
                    }
                }
            });
            Ok((Arc::new(store.clone()), Arc::new(store)))
        }
    }
}

/// Builds every port from the settings (after [`check_adapters`]). Ingests the knowledge base.
pub async fn build_ports(settings: &Settings) -> Result<Ports, StartupError> {
    check_adapters(settings)?;
    let (store, spend) = build_stores(settings).await?;
    let chat = build_chat_model(settings)?;
    if chat.is_some() {
        // A warning only: checked beside the knowledge-base preparation, not before it.
        let probe_settings = settings.clone();
        tokio::spawn(async move { probe_chat_model(&probe_settings).await });
    }
    let kb_settings = settings.clone();
    let kb = tokio::task::spawn_blocking(move || prepare_knowledge_base(&kb_settings))
        .await
        .map_err(|join| {
            StartupError::Other(format!("knowledge base preparation panicked: {join}"))
        })??;
    let (embedder, local) = build_analysis(settings, kb.embedder().cloned()).await?;
    let analyzer = choose_analyzer(settings, chat.as_ref(), local);
    Ok(Ports {
        store,
        retriever: Arc::new(KbRetriever::new(Arc::new(kb), "embedded")),
        generator: Arc::new(ExtractiveGenerator::new()),
        embedder,
        analyzer,
        chat,
        spend,
        helpdesk: build_helpdesk(settings)?,
        mailer: build_mailer(settings)?,
    })
}

/// The SMTP mailer of `[email]`, when `email.smtp_url` is set.
///
/// Errors: the URL or the sender address is invalid.
pub fn build_mailer(
    settings: &Settings,
) -> Result<Option<Arc<dyn crate::ports::mailer::Mailer>>, StartupError> {
    let Some(url) = &settings.email.smtp_url else {
        return Ok(None);
    };
    let mailer = crate::adapters::smtp::SmtpMailer::new(url.expose(), &settings.email.from)
        .map_err(StartupError::Other)?;
    Ok(Some(Arc::new(mailer)))
}

/// Longest wait for one helpdesk API request.
const HELPDESK_TIMEOUT: Duration = Duration::from_secs(20);

/// The helpdesk `[helpdesk] kind` selects (after [`check_adapters`]).
///
/// Errors: the HTTP client cannot be built.
pub fn build_helpdesk(settings: &Settings) -> Result<Arc<dyn Helpdesk>, StartupError> {
    Ok(match &settings.helpdesk {
        HelpdeskSettings::Inbox => Arc::new(InboxHelpdesk),
        HelpdeskSettings::Intercom {
            access_token,
            admin_id,
            assignee_id,
            base_url,
            ..
        } => Arc::new(
            crate::adapters::intercom::IntercomHelpdesk::new(
                crate::adapters::intercom::IntercomConfig {
                    base_url: base_url.clone(),
                    access_token: access_token.expose().to_string(),
                    admin_id: admin_id.clone(),
                    assignee_id: assignee_id.clone(),
                    timeout: HELPDESK_TIMEOUT,
                },
            )
            .map_err(StartupError::Other)?,
        ),
        HelpdeskSettings::Zendesk {
            email,
            api_token,
            base_url,
            ..
        } => Arc::new(
            ZendeskHelpdesk::new(ZendeskConfig {
                base_url: base_url.clone(),
                email: email.clone(),
                api_token: api_token.expose().to_string(),
                timeout: HELPDESK_TIMEOUT,
            })
            .map_err(StartupError::Other)?,
        ),
        HelpdeskSettings::Freshdesk {
            api_key, base_url, ..
        } => Arc::new(
            FreshdeskHelpdesk::new(FreshdeskConfig {
                base_url: base_url.clone(),
                api_key: api_key.expose().to_string(),
                timeout: HELPDESK_TIMEOUT,
            })
            .map_err(StartupError::Other)?,
        ),
    })
}

/// The analyzer `llm.analyzer` selects: the LLM's structured output over the local analyzer
/// when a model is configured, else the local analyzer.
pub fn choose_analyzer(
    settings: &Settings,
    chat: Option<&Arc<dyn ChatModel>>,
    local: Arc<LocalAnalyzer>,
) -> Arc<dyn Analyzer> {
    match (chat, settings.llm.analyzer) {
        (Some(model), AnalyzerKind::Llm) => Arc::new(LlmAnalyzer::new(
            model.clone(),
            local,
            Arc::new(AnalysisCounters::default()),
        )),
        _ => local,
    }
}

/// Checks at start-up that the OpenAI-compatible server answers `GET {base_url}/models`, and
/// warns (never fails: the model server may come up later; until then answers are extractive)
/// with the URL and a hint when it does not.
pub async fn probe_chat_model(settings: &Settings) {
    let LlmProvider::OpenAi {
        base_url, api_key, ..
    } = &settings.llm.provider
    else {
        return;
    };
    let url = format!("{}/models", base_url.as_str().trim_end_matches('/'));
    let client = match reqwest::Client::builder()
        .connect_timeout(settings.llm.connect_timeout)
        .timeout(std::time::Duration::from_secs(5))
        .build()
    {
        Ok(client) => client,
        Err(_) => return,
    };
    let mut request = client.get(&url);
    if let Some(key) = api_key {
        request = request.bearer_auth(key.expose());
    }
    match request.send().await {
        Ok(response) if response.status().is_success() => {
            info!(llm.url = %url, "model server answers");
        }
        Ok(response) if response.status().as_u16() == 404 => warn!(
            llm.url = %url,
            "the model server answers 404 for /models: check that llm.base_url is the API root (it usually ends in /v1); until it answers, visitors get extractive answers"
        ),
        Ok(response) => warn!(
            llm.url = %url,
            status = response.status().as_u16(),
            "the model server refused /models (check llm.api_key); until it answers, visitors get extractive answers"
        ),
        Err(err) => warn!(
            llm.url = %url,
            error = %err,
            "cannot reach the model server (llm.base_url); until it answers, visitors get extractive answers"
        ),
    }
}

/// The chat model `[llm]` selects (`None` for `provider = "none"`).
///
/// Errors: the HTTP client cannot be built.
pub fn build_chat_model(settings: &Settings) -> Result<Option<Arc<dyn ChatModel>>, StartupError> {
    let timeouts = Timeouts {
        connect: settings.llm.connect_timeout,
        first_token: settings.llm.first_token_timeout,
        total: settings.llm.total_timeout,
    };
    let endpoint = match &settings.llm.provider {
        LlmProvider::None => return Ok(None),
        LlmProvider::OpenAi {
            base_url,
            api_key,
            model,
        } => Endpoint::OpenAi {
            base_url: base_url.as_str().to_string(),
            api_key: api_key.as_ref().map(|k| k.expose().to_string()),
            model: model.clone(),
        },
        LlmProvider::Azure {
            base_url,
            api_key,
            deployment,
            api_version,
        } => Endpoint::Azure {
            base_url: base_url.as_str().to_string(),
            api_key: api_key.expose().to_string(),
            deployment: deployment.clone(),
            api_version: api_version.clone(),
        },
    };
    let model = OpenAiChatModel::new(endpoint, timeouts)
        .map_err(|err| StartupError::Other(format!("llm: {err}")))?;
    info!(llm.model = model.model(), "LLM answers on");
    Ok(Some(Arc::new(model)))
}

/// The per-turn embedder and the local analyzer: each site's taxonomy classifier is trained
/// here (on the blocking pool) from the taxonomy's examples, with the knowledge base's embedder.
/// Without an embedder, messages are analysed by the rules only (no classification).
pub async fn build_analysis(
    settings: &Settings,
    embedder: Option<SharedEmbedder>,
) -> Result<(Option<Arc<dyn QueryEmbedder>>, Arc<LocalAnalyzer>), StartupError> {
    let sites = settings.sites.clone();
    let for_analyzer = embedder.clone();
    let started = std::time::Instant::now();
    let analyzer =
        tokio::task::spawn_blocking(move || LocalAnalyzer::build(&sites, for_analyzer.as_ref()))
            .await
            .map_err(|join| StartupError::Other(format!("building the analyzer panicked: {join}")))?
            .map_err(|err| StartupError::Other(format!("sites.taxonomy: {err}")))?;
    info!(
        analyzer.build_ms = started.elapsed().as_millis() as u64,
        "analyzer ready"
    );
    let query_embedder =
        embedder.map(|e| Arc::new(BlockingQueryEmbedder::new(e)) as Arc<dyn QueryEmbedder>);
    Ok((query_embedder, Arc::new(analyzer)))
}

/// Stops a running [`Application`] gracefully.
#[derive(Debug, Clone)]
pub struct ShutdownHandle(CancellationToken);

impl ShutdownHandle {
    /// Starts the graceful shutdown: no new connections; sockets let their in-flight answer
    /// finish (up to `server.shutdown_grace`) and close with 1001.
    pub fn shutdown(&self) {
        self.0.cancel();
    }
}

/// A bound, not yet running server.
pub struct Application {
    server: actix_web::dev::Server,
    local_addr: SocketAddr,
    shutdown: CancellationToken,
    demo_site_key: String,
    engine: Arc<Engine>,
}

impl Application {
    /// Builds the ports from `settings` and binds the server.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let ports = build_ports(&settings).await?;
        Self::build_with_ports(settings, ports)
    }

    /// Binds the server over the given ports (tests plug their own adapters here).
    /// Must run inside a tokio runtime (it spawns the maintenance task).
    pub fn build_with_ports(settings: Settings, ports: Ports) -> Result<Self, StartupError> {
        let engine = Arc::new(Engine::new(&settings, ports));
        let shutdown = CancellationToken::new();
        let demo_site_key = settings
            .sites
            .iter()
            .find(|site| site.id.as_str() == "demo")
            .or_else(|| settings.sites.first())
            .map(|site| site.public_key.clone())
            .unwrap_or_default();
        let addr = SocketAddr::new(settings.server.bind, settings.server.port);
        let listener = TcpListener::bind(addr).map_err(|source| StartupError::Bind {
            addr: addr.to_string(),
            source,
        })?;
        let local_addr = listener.local_addr().map_err(|source| StartupError::Bind {
            addr: addr.to_string(),
            source,
        })?;
        let state = web::Data::new(AppState {
            engine: Arc::clone(&engine),
            ws: settings.ws.clone(),
            shutdown: shutdown.clone(),
            trusted_proxies: settings.server.trusted_proxies.clone(),
            demo_site_key: demo_site_key.clone(),
            helpdesk: settings.helpdesk.clone(),
        });
        let grace_secs = settings.server.shutdown_grace.as_secs_f64().ceil() as u64;
        let server =
            HttpServer::new(move || App::new().app_data(state.clone()).configure(api::configure))
                .disable_signals()
                .shutdown_timeout(grace_secs)
                .listen(listener)
                .map_err(|source| StartupError::Bind {
                    addr: addr.to_string(),
                    source,
                })?
                .run();
        tokio::spawn(Arc::clone(engine.outbox()).run(shutdown.clone()));
        let maintenance_engine = Arc::clone(&engine);
        let maintenance_stop = shutdown.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(MAINTENANCE_EVERY);
            loop {
                tokio::select! {
                    () = maintenance_stop.cancelled() => break,
                    _ = every.tick() => maintenance_engine.forget_idle_visitors(),
                }
            }
        });
        Ok(Self {
            server,
            local_addr,
            shutdown,
            demo_site_key,
            engine,
        })
    }

    /// Whether handoffs go to the built-in inbox (`/inbox` has agents to sign in).
    pub fn inbox_enabled(&self) -> bool {
        self.engine.ports().helpdesk.adapter_name() == "inbox"
    }

    /// The bound address (the real port when `server.port = 0`).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://host:port/` for a browser (`127.0.0.1` when bound to every interface).
    pub fn url(&self) -> String {
        let ip = self.local_addr.ip();
        let host = if ip.is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            ip.to_string()
        };
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host
        };
        format!("http://{host}:{}/", self.local_addr.port())
    }

    /// The public key of the demo page's site.
    pub fn demo_site_key(&self) -> &str {
        &self.demo_site_key
    }

    /// The engine (tests and tools drive turns through it directly).
    pub fn engine(&self) -> Arc<Engine> {
        Arc::clone(&self.engine)
    }

    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.shutdown.clone())
    }

    /// Serves until [`ShutdownHandle::shutdown`], then stops gracefully.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            shutdown.cancelled().await;
            handle.stop(true).await;
        });
        self.server.await
    }
}
