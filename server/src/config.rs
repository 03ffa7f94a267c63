//! Layered settings: the compiled-in `config/default.toml` → `--config FILE` → extra TOML
//! layers (tests) → `FRONTDESK__SECTION__KEY` environment variables.
//!
//! The layers are merged by the `config` crate, deserialised into `Raw*` structs that refuse
//! unknown keys (`deny_unknown_fields`), then validated into typed [`Settings`] (durations,
//! URLs, non-zero numbers, secrets that never print). Any error names the key.
//!
//! This module is the only place that reads the process environment ([`EnvSnapshot`]):
//! the `FRONTDESK__…` overrides, `RUST_LOG`, `FRONTDESK_LOG_FORMAT` and `HOME` (for `~/` paths).

use crate::domain::{ActionKind, ReasonCode};
use crate::ids::SiteId;
use ipnet::IpNet;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::{Path, PathBuf};
use std::time::Duration;
use url::Url;

/// The documented defaults, compiled in (`config/default.toml`).
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

/// The demo help center shipped in the repository (`kb/demo`), resolved at compile time from
/// this crate's manifest directory. Used when `kb.path` is unset.
pub const DEMO_KB_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../kb/demo");

/// Prefix of environment overrides (`FRONTDESK__SERVER__PORT`).
pub const ENV_PREFIX: &str = "FRONTDESK";
/// Separator between prefix, section and key in environment overrides.
pub const ENV_SEPARATOR: &str = "__";

/// Keys whose environment value is a comma-separated list.
const ENV_LIST_KEYS: [&str; 3] = [
    "server.trusted_proxies",
    "policy.draft",
    "policy.always_human",
];

/// A configuration error; the message names the offending key (or file) and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The `--config` file could not be read.
    #[error("cannot read config file {path}: {source}")]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A layer is not valid TOML, or a key is unknown or of the wrong type
    /// (the `config` crate's message names the key and the source).
    #[error("invalid configuration: {0}")]
    Parse(String),
    /// A key has a value of the right type that makes no sense.
    #[error("invalid value for `{key}`: {message}")]
    Invalid { key: String, message: String },
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

/// A snapshot of the environment variables config loading looks at.
#[derive(Debug, Clone, Default)]
pub struct EnvSnapshot {
    vars: HashMap<String, String>,
}

impl EnvSnapshot {
    /// Reads the process environment (the one place the server does).
    pub fn from_process() -> Self {
        Self {
            vars: std::env::vars().collect(),
        }
    }

    /// A given set of variables (tests).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    fn overrides(&self) -> HashMap<String, String> {
        let prefix = format!("{ENV_PREFIX}{ENV_SEPARATOR}");
        self.vars
            .iter()
            .filter(|(name, _)| name.to_ascii_uppercase().starts_with(&prefix))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect()
    }
}

/// Where settings come from, in increasing priority: defaults, `file`, `layers`, `env`.
#[derive(Debug, Clone, Default)]
pub struct ConfigSources {
    /// `--config FILE`.
    pub file: Option<PathBuf>,
    /// Extra TOML documents applied after the file (tests use these for overrides).
    pub layers: Vec<String>,
    /// Environment variables (`FRONTDESK__…` overrides, log settings, `HOME`).
    pub env: EnvSnapshot,
}

impl ConfigSources {
    /// Defaults + optional file + the process environment: what `frontdesk` uses.
    pub fn from_process(file: Option<PathBuf>) -> Self {
        Self {
            file,
            layers: Vec::new(),
            env: EnvSnapshot::from_process(),
        }
    }
}

/// A secret string (API key, HMAC secret). `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; call only where it is used (an HTTP header, an HMAC key).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// All settings, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    pub server: ServerSettings,
    pub ws: WsSettings,
    pub store: StoreSettings,
    pub kb: KbSettings,
    pub embedder: EmbedderSettings,
    pub llm: LlmSettings,
    pub policy: PolicySettings,
    pub helpdesk: HelpdeskSettings,
    /// `[helpdesk.inbox]`: the built-in inbox's agents.
    pub inbox: InboxSettings,
    /// `helpdesk.outbox_poll`: how often each instance looks for handoffs to deliver besides
    /// its own (recorded by other instances, retries that came due). Default 1 s.
    pub outbox_poll: Duration,
    /// `[email]`: email to visitors who left.
    pub email: EmailSettings,
    /// At least one; ids and public keys unique.
    pub sites: Vec<SiteSettings>,
    /// From `RUST_LOG` and `FRONTDESK_LOG_FORMAT` (not config keys).
    pub log: LogSettings,
}

/// `[server]`.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub bind: IpAddr,
    /// 0 = any free port.
    pub port: u16,
    pub trusted_proxies: Vec<IpNet>,
    pub shutdown_grace: Duration,
    /// Resume-token HMAC key; `None` = random per process.
    pub resume_secret: Option<Secret>,
}

/// `[ws]`.
#[derive(Debug, Clone)]
pub struct WsSettings {
    /// Bytes per frame (or reassembled fragmented message); more → close 1009.
    pub max_frame_bytes: NonZeroUsize,
    /// Characters per visitor message; more → `error{bad_request}`.
    pub max_message_chars: NonZeroUsize,
    /// Ping interval; a peer silent for two intervals is dropped.
    pub heartbeat: Duration,
    /// Close after this long without a visitor frame.
    pub idle_timeout: Duration,
    /// Sustained visitor messages per minute, per visitor.
    pub messages_per_minute: NonZeroU32,
    /// Burst above the sustained rate.
    pub message_burst: NonZeroU32,
}

/// `[store]`.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    pub backend: StoreBackend,
    pub key_prefix: String,
    /// Closed conversations expire this long after closing.
    pub closed_ttl: Duration,
    /// Longest wait for one Redis operation (connecting included) before it fails with
    /// `StoreError::Unavailable` or `Timeout`; unused by the memory store.
    pub timeout: Duration,
}

/// Which conversation store.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreBackend {
    Memory,
    /// The URL may carry a password, hence [`Secret`].
    Redis {
        url: Secret,
    },
}

/// `[kb]` and `[kb.meilisearch]`.
#[derive(Debug, Clone)]
pub struct KbSettings {
    /// Index directory (relative paths are relative to the working directory).
    pub data_dir: PathBuf,
    pub backend: KbBackend,
    /// 0 = keyword only, 1 = semantic only.
    pub semantic_ratio: f32,
    /// What is ingested at start-up.
    pub source: KbSource,
    /// `[kb.meilisearch]`, kept even when the backend is embedded.
    pub meilisearch: MeilisearchSettings,
}

/// The help center ingested at start-up.
#[derive(Debug, Clone, PartialEq)]
pub enum KbSource {
    /// `kb.path` unset: the demo help center ([`DEMO_KB_DIR`]).
    Demo(PathBuf),
    /// `kb.path`.
    Path(PathBuf),
}

impl KbSource {
    pub fn path(&self) -> &Path {
        match self {
            Self::Demo(path) | Self::Path(path) => path,
        }
    }

    pub fn is_demo(&self) -> bool {
        matches!(self, Self::Demo(_))
    }
}

/// Which retrieval backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KbBackend {
    Embedded,
    Meilisearch,
}

/// `[kb.meilisearch]`.
#[derive(Debug, Clone)]
pub struct MeilisearchSettings {
    pub url: Url,
    pub api_key: Option<Secret>,
    pub task_timeout: Duration,
}

/// `[embedder]`.
#[derive(Debug, Clone)]
pub struct EmbedderSettings {
    pub kind: EmbedderKind,
    /// Model window in word pieces, special tokens included.
    pub max_tokens: NonZeroUsize,
}

/// Which embedder.
#[derive(Debug, Clone, PartialEq)]
pub enum EmbedderKind {
    /// all-MiniLM-L6-v2 from `model_dir` (`~/` expanded).
    Local { model_dir: PathBuf },
    /// An OpenAI-compatible `/v1/embeddings`; `dimensions` is the vector length it returns.
    OpenAi {
        base_url: Url,
        api_key: Option<Secret>,
        model: String,
        dimensions: NonZeroUsize,
    },
    /// Keyword-only search.
    None,
}

/// `[llm]`.
#[derive(Debug, Clone)]
pub struct LlmSettings {
    pub provider: LlmProvider,
    pub connect_timeout: Duration,
    pub first_token_timeout: Duration,
    pub total_timeout: Duration,
    /// Model name → price.
    pub prices: BTreeMap<String, ModelPrice>,
    /// Which analyzer runs when a model is configured (`llm.analyzer`).
    pub analyzer: AnalyzerKind,
    /// Support score (0..1) every sentence of an LLM answer needs (`engine::grounding`).
    pub grounding_threshold: f32,
    /// What replaces an answer that fails the grounding check (reason `ungrounded`).
    pub on_ungrounded: LlmFallback,
    /// What replaces an answer when the model fails (reason `llm_failure`).
    pub on_failure: LlmFallback,
    /// Buffer the answer until it passed the checks, instead of streaming it live.
    pub hold_until_checked: bool,
    /// How long the model is skipped after it failed to answer.
    pub failure_cooldown: Duration,
}

/// `llm.analyzer`: who analyses each visitor message when a model is configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnalyzerKind {
    /// One structured-output call per turn, validated; the local analyzer when it fails.
    Llm,
    /// The local analyzer only (no model call for analysis).
    Local,
}

/// `llm.on_ungrounded` / `llm.on_failure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LlmFallback {
    /// The extractive answer (best passages, cited) takes its place.
    Extractive,
    /// The conversation is handed off with the reason.
    Handoff,
}

/// Which chat model, if any.
#[derive(Debug, Clone, PartialEq)]
pub enum LlmProvider {
    /// Extractive answers only.
    None,
    OpenAi {
        base_url: Url,
        api_key: Option<Secret>,
        model: String,
    },
    Azure {
        base_url: Url,
        api_key: Secret,
        deployment: String,
        api_version: String,
    },
}

/// Token prices of one model, in US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelPrice {
    pub input_usd_per_million: f64,
    pub output_usd_per_million: f64,
}

/// `[policy]`: the rules of the decision policy (`engine::policy`).
#[derive(Debug, Clone, PartialEq)]
pub struct PolicySettings {
    /// Calibrated retrieval confidence needed to answer alone, 0..1.
    pub min_confidence: f32,
    /// VADER compound threshold, −1..1.
    pub negative_sentiment: f32,
    pub max_unresolved_exchanges: NonZeroU32,
    /// Refund amount (site currency) up to which a refund request gets a draft.
    pub refund_draft_limit: f64,
    /// false = every answer is a draft.
    pub auto_resolve: bool,
    pub draft: Vec<ActionKind>,
    /// Reasons that hand off at once; always contains `requested_human`.
    pub always_human: Vec<ReasonCode>,
}

impl Default for PolicySettings {
    /// The documented defaults of `config/default.toml`.
    fn default() -> Self {
        Self {
            min_confidence: 0.7,
            negative_sentiment: -0.5,
            max_unresolved_exchanges: NonZeroU32::MIN.saturating_add(2),
            refund_draft_limit: 50.0,
            auto_resolve: true,
            draft: vec![
                ActionKind::Refund,
                ActionKind::PlanChange,
                ActionKind::DataDeletion,
            ],
            always_human: vec![
                ReasonCode::RequestedHuman,
                ReasonCode::NegativeSentiment,
                ReasonCode::NoResolution,
                ReasonCode::Security,
                ReasonCode::Legal,
                ReasonCode::BillingDispute,
                ReasonCode::ChurnRisk,
            ],
        }
    }
}

/// `[email]`: an agent's reply to a visitor who has left is emailed to the address they gave
/// (`contact` frame), with the transcript.
#[derive(Debug, Clone, PartialEq)]
pub struct EmailSettings {
    /// `smtp://host:port`, `smtp://host:587?tls=required`, `smtps://user:pass@host:465`
    /// (`None`: no email).
    pub smtp_url: Option<Secret>,
    /// The sender (`"Acme Support <support@acme.com>"`).
    pub from: String,
}

/// `[helpdesk.inbox]`: who may sign in at `/inbox`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InboxSettings {
    /// `[[helpdesk.inbox.agents]]`; ids unique. Empty: start-up creates a one-time `admin`
    /// account and logs its password (for a first run and the demo).
    pub agents: Vec<InboxAgent>,
    /// How long an agent stays signed in (`helpdesk.inbox.session_ttl`, default 12 h).
    pub session_ttl: Duration,
}

/// An inbox agent.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxAgent {
    /// Sign-in name: letters, digits, `.`, `-`, `_`.
    pub id: String,
    /// Shown to the visitor with the agent's replies.
    pub name: String,
    /// PHC string of an Argon2id hash (`frontdesk hash-password` makes one).
    pub password_hash: Secret,
    /// Team ids whose handoffs the agent takes (empty: every team).
    pub teams: Vec<String>,
    /// ISO 639-1 codes the agent answers in (empty: any language).
    pub languages: Vec<String>,
    /// Taxonomy categories the agent handles (empty: any).
    pub skills: Vec<String>,
    /// Most conversations assigned at once (automatic assignment stops there; default 3).
    pub capacity: u32,
}

/// `[helpdesk]`.
#[derive(Debug, Clone, PartialEq)]
pub enum HelpdeskSettings {
    Inbox,
    Zendesk {
        subdomain: String,
        email: String,
        api_token: Secret,
        /// `helpdesk.zendesk.base_url`, default `https://{subdomain}.zendesk.com` (a proxy or a
        /// test server).
        base_url: String,
        /// Signing secret of the Zendesk webhook (`helpdesk.zendesk.webhook_secret`); the
        /// webhook route refuses every request without it.
        webhook_secret: Option<Secret>,
        /// Team id → Zendesk group id, for tickets triaged from other channels.
        groups: std::collections::BTreeMap<String, u64>,
    },
    Freshdesk {
        domain: String,
        api_key: Secret,
        /// `helpdesk.freshdesk.base_url`, default `https://{domain}`.
        base_url: String,
        /// Shared secret the Freshdesk automation sends in `X-Frontdesk-Secret`.
        webhook_secret: Option<Secret>,
        /// Team id → Freshdesk group id, for tickets triaged from other channels.
        groups: std::collections::BTreeMap<String, u64>,
    },
    Intercom {
        access_token: Secret,
        /// The admin the context note and assignments are written as (required).
        admin_id: String,
        /// Admin or team id new conversations are assigned to (`None`: Intercom's rules).
        assignee_id: Option<String>,
        /// `helpdesk.intercom.base_url`: `https://api.intercom.io` (default), EU
        /// `https://api.eu.intercom.io`, AU `https://api.au.intercom.io`.
        base_url: String,
        /// The app's client secret: verifies `X-Hub-Signature` on `/v1/webhooks/intercom`.
        client_secret: Option<Secret>,
    },
}

impl HelpdeskSettings {
    /// Team id → the helpdesk's group id (empty for the inbox and Intercom).
    pub fn groups(&self) -> std::collections::BTreeMap<String, u64> {
        match self {
            Self::Zendesk { groups, .. } | Self::Freshdesk { groups, .. } => groups.clone(),
            Self::Inbox | Self::Intercom { .. } => Default::default(),
        }
    }

    pub fn kind_name(&self) -> &'static str {
        match self {
            Self::Inbox => "inbox",
            Self::Zendesk { .. } => "zendesk",
            Self::Freshdesk { .. } => "freshdesk",
            Self::Intercom { .. } => "intercom",
        }
    }
}

/// One `[[sites]]` entry.
#[derive(Debug, Clone)]
pub struct SiteSettings {
    pub id: SiteId,
    /// The script tag's `data-site-key`.
    pub public_key: String,
    pub allowed_origins: Vec<AllowedOrigin>,
    pub identity_secret: Option<Secret>,
    pub enforce_identity: bool,
    pub taxonomy: Taxonomy,
    pub routing: Routing,
    /// Spending limit on LLM tokens per calendar month (UTC), in US dollars; once reached the
    /// site gets extractive answers until the month ends. `None`: no limit.
    pub llm_monthly_budget_usd: Option<f64>,
}

/// A page origin allowed to open the WebSocket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedOrigin {
    /// `"*"`.
    Any,
    /// `scheme://host[:port]`, lower-case, no trailing slash.
    Exact(String),
}

pub use crate::taxonomy::{
    Category, Handling, PriorityRule, PrioritySignal, Subcategory, Taxonomy,
};

/// Handoff routing: teams and rules (first match wins, else `default_team`).
#[derive(Debug, Clone, PartialEq)]
pub struct Routing {
    pub default_team: String,
    pub teams: Vec<Team>,
    pub rules: Vec<RoutingRule>,
}

/// A team; `name` is visitor-safe ("billing team").
#[derive(Debug, Clone, PartialEq)]
pub struct Team {
    pub id: String,
    pub name: String,
    /// When a person answers (`None`: always). Outside them a handoff is `offline`: the visitor
    /// is asked for an email and told when the team is back; the ticket is created anyway.
    pub hours: Option<crate::hours::BusinessHours>,
}

/// A routing rule: every condition that is set must match.
#[derive(Debug, Clone, PartialEq)]
pub struct RoutingRule {
    pub category: Option<String>,
    pub priority: Option<Priority>,
    /// ISO 639-1 code.
    pub language: Option<String>,
    /// The customer tier of the visitor's verified identity (JWT `tier` claim), lower-case.
    pub tier: Option<String>,
    pub team: String,
}

/// Ticket priority, in increasing order.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Low,
    Normal,
    High,
    Urgent,
}

impl Priority {
    /// `low|normal|high|urgent`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Normal => "normal",
            Self::High => "high",
            Self::Urgent => "urgent",
        }
    }
}

/// Log output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    /// `EnvFilter` directives (`RUST_LOG`, default `info`).
    pub filter: String,
    pub format: LogFormat,
}

/// Log format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable (default).
    Pretty,
    /// One JSON object per line (`FRONTDESK_LOG_FORMAT=json`).
    Json,
}

// ---------------------------------------------------------------------------------------------
// Raw layer: what the TOML says, refusing unknown keys.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    server: RawServer,
    ws: RawWs,
    store: RawStore,
    kb: RawKb,
    embedder: RawEmbedder,
    llm: RawLlm,
    policy: RawPolicy,
    helpdesk: RawHelpdesk,
    email: RawEmail,
    sites: Vec<RawSite>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEmail {
    smtp_url: Option<String>,
    from: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    bind: String,
    port: i64,
    trusted_proxies: Vec<String>,
    shutdown_grace: String,
    resume_secret: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWs {
    max_frame_bytes: i64,
    max_message_chars: i64,
    heartbeat: String,
    idle_timeout: String,
    messages_per_minute: i64,
    message_burst: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    redis_url: Option<String>,
    key_prefix: String,
    closed_ttl: String,
    timeout: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKb {
    data_dir: String,
    backend: String,
    semantic_ratio: f64,
    path: Option<String>,
    meilisearch: RawMeilisearch,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMeilisearch {
    url: String,
    api_key: Option<String>,
    task_timeout: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEmbedder {
    kind: String,
    model_dir: String,
    max_tokens: i64,
    base_url: Option<String>,
    api_key: Option<String>,
    model: Option<String>,
    dimensions: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLlm {
    provider: String,
    base_url: Option<String>,
    api_key: Option<String>,
    model: Option<String>,
    deployment: Option<String>,
    api_version: Option<String>,
    connect_timeout: String,
    first_token_timeout: String,
    total_timeout: String,
    #[serde(default)]
    prices: BTreeMap<String, RawPrice>,
    analyzer: String,
    grounding_threshold: f64,
    on_ungrounded: String,
    on_failure: String,
    hold_until_checked: bool,
    failure_cooldown: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrice {
    input: f64,
    output: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    min_confidence: f64,
    negative_sentiment: f64,
    max_unresolved_exchanges: i64,
    refund_draft_limit: f64,
    auto_resolve: bool,
    draft: Vec<String>,
    always_human: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHelpdesk {
    kind: String,
    outbox_poll: Option<String>,
    inbox: Option<RawInbox>,
    zendesk: Option<RawZendesk>,
    freshdesk: Option<RawFreshdesk>,
    intercom: Option<RawIntercom>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawZendesk {
    subdomain: String,
    email: String,
    api_token: String,
    base_url: Option<String>,
    webhook_secret: Option<String>,
    #[serde(default)]
    groups: std::collections::BTreeMap<String, u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFreshdesk {
    domain: String,
    api_key: String,
    base_url: Option<String>,
    webhook_secret: Option<String>,
    #[serde(default)]
    groups: std::collections::BTreeMap<String, u64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawInbox {
    #[serde(default)]
    agents: Vec<RawAgent>,
    session_ttl: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgent {
    id: String,
    name: String,
    password_hash: String,
    #[serde(default)]
    teams: Vec<String>,
    #[serde(default)]
    languages: Vec<String>,
    #[serde(default)]
    skills: Vec<String>,
    capacity: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIntercom {
    access_token: String,
    admin_id: Option<String>,
    assignee_id: Option<String>,
    base_url: Option<String>,
    client_secret: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSite {
    id: String,
    public_key: String,
    #[serde(default)]
    allowed_origins: Vec<String>,
    identity_secret: Option<String>,
    #[serde(default)]
    enforce_identity: bool,
    #[serde(default)]
    taxonomy: crate::taxonomy::RawTaxonomy,
    routing: Option<RawRouting>,
    llm_monthly_budget_usd: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRouting {
    default_team: String,
    teams: Vec<RawTeam>,
    #[serde(default)]
    rules: Vec<RawRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTeam {
    id: String,
    name: String,
    /// `"mon-fri 09:00-17:00; sat 10:00-14:00"`.
    hours: Option<String>,
    /// IANA zone of `hours` (default `UTC`).
    timezone: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    category: Option<String>,
    priority: Option<String>,
    language: Option<String>,
    tier: Option<String>,
    team: String,
}

// ---------------------------------------------------------------------------------------------
// Loading.

impl Settings {
    /// Loads and validates settings from `sources` (see the module docs for the layering).
    ///
    /// Errors: [`ConfigError`] naming the file or key at fault.
    pub fn load(sources: &ConfigSources) -> Result<Settings, ConfigError> {
        let mut builder = config::Config::builder().add_source(config::File::from_str(
            DEFAULT_TOML,
            config::FileFormat::Toml,
        ));
        if let Some(path) = &sources.file {
            // Read it ourselves so a missing file is an error that names it.
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
                path: path.clone(),
                source,
            })?;
            builder = builder.add_source(config::File::from_str(&text, config::FileFormat::Toml));
        }
        for layer in &sources.layers {
            builder = builder.add_source(config::File::from_str(layer, config::FileFormat::Toml));
        }
        let mut environment = config::Environment::with_prefix(ENV_PREFIX)
            .prefix_separator(ENV_SEPARATOR)
            .separator(ENV_SEPARATOR)
            .try_parsing(true)
            .list_separator(",")
            .source(Some(sources.env.overrides()));
        for key in ENV_LIST_KEYS {
            environment = environment.with_list_parse_key(key);
        }
        let merged = builder
            .add_source(environment)
            .build()
            .map_err(|err| ConfigError::Parse(err.to_string()))?;
        let raw: RawSettings = merged
            .try_deserialize()
            .map_err(|err| ConfigError::Parse(err.to_string()))?;
        validate(raw, &sources.env)
    }

    /// The site with this public key.
    pub fn site_by_public_key(&self, public_key: &str) -> Option<&SiteSettings> {
        self.sites.iter().find(|site| site.public_key == public_key)
    }
}

fn validate(mut raw: RawSettings, env: &EnvSnapshot) -> Result<Settings, ConfigError> {
    let home = env.get("HOME").map(PathBuf::from);
    let log = LogSettings {
        filter: env
            .get("RUST_LOG")
            .filter(|f| !f.trim().is_empty())
            .unwrap_or("info")
            .to_string(),
        format: match env
            .get("FRONTDESK_LOG_FORMAT")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("") | Some("pretty") | Some("text") => LogFormat::Pretty,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(invalid(
                    "FRONTDESK_LOG_FORMAT",
                    format!("{other:?} is not a log format (use \"json\" or \"pretty\")"),
                ));
            }
        },
    };
    let settings = Settings {
        server: validate_server(raw.server)?,
        ws: validate_ws(raw.ws)?,
        store: validate_store(raw.store)?,
        kb: validate_kb(raw.kb)?,
        embedder: validate_embedder(raw.embedder, home.as_deref())?,
        llm: validate_llm(raw.llm)?,
        policy: validate_policy(raw.policy)?,
        inbox: validate_inbox(raw.helpdesk.inbox.take())?,
        outbox_poll: match raw.helpdesk.outbox_poll.take() {
            Some(poll) => duration("helpdesk.outbox_poll", &poll)?,
            None => Duration::from_secs(1),
        },
        email: EmailSettings {
            smtp_url: optional_secret(raw.email.smtp_url.take()),
            from: non_empty("email.from", Some(raw.email.from.clone()))?,
        },
        helpdesk: validate_helpdesk(raw.helpdesk)?,
        sites: validate_sites(raw.sites)?,
        log,
    };
    // A budget counts spending in dollars: without a price for the model it would never be
    // reached, silently.
    let model = match &settings.llm.provider {
        LlmProvider::None => None,
        LlmProvider::OpenAi { model, .. } => Some(model.as_str()),
        LlmProvider::Azure { deployment, .. } => Some(deployment.as_str()),
    };
    if let Some(model) = model
        && !settings.llm.prices.contains_key(model)
        && let Some(site) = settings
            .sites
            .iter()
            .find(|s| s.llm_monthly_budget_usd.is_some())
    {
        return Err(invalid(
            format!("sites.{}.llm_monthly_budget_usd", site.id),
            format!(
                "needs a price for the model: add [llm.prices] \"{model}\" = {{ input = …, output = … }} (USD per million tokens)"
            ),
        ));
    }
    Ok(settings)
}

fn duration(key: &str, raw: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(raw.trim()).map_err(|err| {
        invalid(
            key,
            format!("{raw:?} is not a duration like \"30s\" or \"5m\" ({err})"),
        )
    })
}

fn positive_duration(key: &str, raw: &str) -> Result<Duration, ConfigError> {
    let value = duration(key, raw)?;
    if value.is_zero() {
        return Err(invalid(key, "must be longer than zero"));
    }
    Ok(value)
}

fn non_zero_usize(key: &str, raw: i64) -> Result<NonZeroUsize, ConfigError> {
    usize::try_from(raw)
        .ok()
        .and_then(NonZeroUsize::new)
        .ok_or_else(|| invalid(key, format!("must be a whole number above zero, got {raw}")))
}

fn non_zero_u32(key: &str, raw: i64) -> Result<NonZeroU32, ConfigError> {
    u32::try_from(raw)
        .ok()
        .and_then(NonZeroU32::new)
        .ok_or_else(|| {
            invalid(
                key,
                format!("must be a whole number from 1 to {}, got {raw}", u32::MAX),
            )
        })
}

fn http_url(key: &str, raw: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(raw.trim())
        .map_err(|err| invalid(key, format!("{raw:?} is not a URL ({err})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(
            key,
            format!("{raw:?} must be an http:// or https:// URL"),
        ));
    }
    Ok(url)
}

fn non_empty(key: &str, raw: Option<String>) -> Result<String, ConfigError> {
    match raw.map(|value| value.trim().to_string()) {
        Some(value) if !value.is_empty() => Ok(value),
        _ => Err(invalid(key, "is required here and must not be empty")),
    }
}

/// [`non_empty`] for a key that `llm.provider = provider` needs.
fn required_for(provider: &str, key: &str, raw: Option<String>) -> Result<String, ConfigError> {
    non_empty(key, raw).map_err(|_| {
        invalid(
            key,
            format!("is required with llm.provider = \"{provider}\" and must not be empty"),
        )
    })
}

/// An optional webhook secret: at least 16 characters when set (it is the only authentication
/// of a Freshdesk webhook, and Zendesk's generated ones are longer).
fn webhook_secret(key: &str, raw: Option<String>) -> Result<Option<Secret>, ConfigError> {
    let secret = optional_secret(raw);
    if secret
        .as_ref()
        .is_some_and(|s| s.expose().chars().count() < 16)
    {
        return Err(invalid(key, "must have at least 16 characters"));
    }
    Ok(secret)
}

fn optional_secret(raw: Option<String>) -> Option<Secret> {
    raw.map(|value| value.trim().to_string())
        .filter(|value| !value.is_empty())
        .map(Secret)
}

fn expand_home(raw: &str, home: Option<&Path>) -> PathBuf {
    match (raw.strip_prefix("~/"), home) {
        (Some(rest), Some(home)) => home.join(rest),
        _ => PathBuf::from(raw),
    }
}

fn validate_server(raw: RawServer) -> Result<ServerSettings, ConfigError> {
    let bind = raw.bind.trim().parse::<IpAddr>().map_err(|_| {
        invalid(
            "server.bind",
            format!("{:?} is not an IP address", raw.bind),
        )
    })?;
    let port = u16::try_from(raw.port).map_err(|_| {
        invalid(
            "server.port",
            format!("must be 0 to 65535, got {}", raw.port),
        )
    })?;
    let trusted_proxies = raw
        .trusted_proxies
        .iter()
        .map(|entry| {
            let entry = entry.trim();
            entry
                .parse::<IpNet>()
                .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    invalid(
                        "server.trusted_proxies",
                        format!("{entry:?} is not an IP address or CIDR block"),
                    )
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let resume_secret = optional_secret(raw.resume_secret);
    if let Some(secret) = &resume_secret
        && secret.expose().chars().count() < 32
    {
        return Err(invalid(
            "server.resume_secret",
            "must be at least 32 characters long",
        ));
    }
    Ok(ServerSettings {
        bind,
        port,
        trusted_proxies,
        shutdown_grace: duration("server.shutdown_grace", &raw.shutdown_grace)?,
        resume_secret,
    })
}

fn validate_ws(raw: RawWs) -> Result<WsSettings, ConfigError> {
    let max_frame_bytes = non_zero_usize("ws.max_frame_bytes", raw.max_frame_bytes)?;
    if max_frame_bytes.get() < 1024 {
        return Err(invalid(
            "ws.max_frame_bytes",
            "must be at least 1024 bytes (a hello frame must fit)",
        ));
    }
    Ok(WsSettings {
        max_frame_bytes,
        max_message_chars: non_zero_usize("ws.max_message_chars", raw.max_message_chars)?,
        heartbeat: positive_duration("ws.heartbeat", &raw.heartbeat)?,
        idle_timeout: positive_duration("ws.idle_timeout", &raw.idle_timeout)?,
        messages_per_minute: non_zero_u32("ws.messages_per_minute", raw.messages_per_minute)?,
        message_burst: non_zero_u32("ws.message_burst", raw.message_burst)?,
    })
}

fn validate_store(raw: RawStore) -> Result<StoreSettings, ConfigError> {
    let backend = match raw
        .redis_url
        .map(|url| url.trim().to_string())
        .filter(|url| !url.is_empty())
    {
        None => StoreBackend::Memory,
        Some(url) => {
            let parsed = Url::parse(&url)
                .map_err(|err| invalid("store.redis_url", format!("not a URL ({err})")))?;
            if !matches!(parsed.scheme(), "redis" | "rediss") {
                return Err(invalid(
                    "store.redis_url",
                    "must start with redis:// or rediss://",
                ));
            }
            StoreBackend::Redis { url: Secret(url) }
        }
    };
    Ok(StoreSettings {
        backend,
        key_prefix: raw.key_prefix,
        closed_ttl: positive_duration("store.closed_ttl", &raw.closed_ttl)?,
        timeout: positive_duration("store.timeout", &raw.timeout)?,
    })
}

fn validate_kb(raw: RawKb) -> Result<KbSettings, ConfigError> {
    if raw.data_dir.trim().is_empty() {
        return Err(invalid("kb.data_dir", "must not be empty"));
    }
    let backend = match raw.backend.trim() {
        "embedded" => KbBackend::Embedded,
        "meilisearch" => KbBackend::Meilisearch,
        other => {
            return Err(invalid(
                "kb.backend",
                format!("{other:?} is not a backend (use \"embedded\" or \"meilisearch\")"),
            ));
        }
    };
    if !(0.0..=1.0).contains(&raw.semantic_ratio) {
        return Err(invalid(
            "kb.semantic_ratio",
            format!("must be between 0 and 1, got {}", raw.semantic_ratio),
        ));
    }
    let source = match raw
        .path
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
    {
        None => KbSource::Demo(PathBuf::from(DEMO_KB_DIR)),
        Some(path) => KbSource::Path(PathBuf::from(path)),
    };
    Ok(KbSettings {
        data_dir: PathBuf::from(raw.data_dir.trim()),
        backend,
        // Checked above to be in 0..=1, so the narrowing loses only precision.
        semantic_ratio: raw.semantic_ratio as f32,
        source,
        meilisearch: MeilisearchSettings {
            url: http_url("kb.meilisearch.url", &raw.meilisearch.url)?,
            api_key: optional_secret(raw.meilisearch.api_key),
            task_timeout: positive_duration(
                "kb.meilisearch.task_timeout",
                &raw.meilisearch.task_timeout,
            )?,
        },
    })
}

fn validate_embedder(
    raw: RawEmbedder,
    home: Option<&Path>,
) -> Result<EmbedderSettings, ConfigError> {
    let kind = match raw.kind.trim() {
        "local" => EmbedderKind::Local {
            model_dir: expand_home(raw.model_dir.trim(), home),
        },
        "openai" => EmbedderKind::OpenAi {
            base_url: http_url(
                "embedder.base_url",
                &non_empty("embedder.base_url", raw.base_url)?,
            )?,
            api_key: optional_secret(raw.api_key),
            model: non_empty("embedder.model", raw.model)?,
            dimensions: non_zero_usize(
                "embedder.dimensions",
                raw.dimensions.ok_or_else(|| {
                    invalid(
                        "embedder.dimensions",
                        "is required when embedder.kind = \"openai\"",
                    )
                })?,
            )?,
        },
        "none" => EmbedderKind::None,
        other => {
            return Err(invalid(
                "embedder.kind",
                format!("{other:?} is not an embedder (use \"local\", \"openai\" or \"none\")"),
            ));
        }
    };
    Ok(EmbedderSettings {
        kind,
        max_tokens: non_zero_usize("embedder.max_tokens", raw.max_tokens)?,
    })
}

fn validate_llm(raw: RawLlm) -> Result<LlmSettings, ConfigError> {
    let provider = match raw.provider.trim() {
        "none" => {
            for (key, value) in [
                ("llm.base_url", &raw.base_url),
                ("llm.model", &raw.model),
                ("llm.deployment", &raw.deployment),
            ] {
                if value.as_deref().is_some_and(|v| !v.trim().is_empty()) {
                    return Err(invalid(
                        key,
                        "is set but llm.provider is \"none\" (extractive answers), so it would be ignored: set llm.provider = \"openai\" or \"azure\", or remove it",
                    ));
                }
            }
            LlmProvider::None
        }
        "openai" => LlmProvider::OpenAi {
            base_url: http_url(
                "llm.base_url",
                &required_for("openai", "llm.base_url", raw.base_url)?,
            )?,
            api_key: optional_secret(raw.api_key),
            model: required_for("openai", "llm.model", raw.model)?,
        },
        "azure" => LlmProvider::Azure {
            base_url: http_url(
                "llm.base_url",
                &required_for("azure", "llm.base_url", raw.base_url)?,
            )?,
            api_key: Secret(required_for("azure", "llm.api_key", raw.api_key)?),
            deployment: required_for("azure", "llm.deployment", raw.deployment)?,
            api_version: required_for("azure", "llm.api_version", raw.api_version)?,
        },
        other => {
            return Err(invalid(
                "llm.provider",
                format!("{other:?} is not a provider (use \"none\", \"openai\" or \"azure\")"),
            ));
        }
    };
    let mut prices = BTreeMap::new();
    for (model, price) in raw.prices {
        for (field, value) in [("input", price.input), ("output", price.output)] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(invalid(
                    format!("llm.prices.{model}.{field}"),
                    "must be a price of 0 or more (USD per million tokens)",
                ));
            }
        }
        prices.insert(
            model,
            ModelPrice {
                input_usd_per_million: price.input,
                output_usd_per_million: price.output,
            },
        );
    }
    let fallback = |key: &str, raw: &str| match raw.trim() {
        "extractive" => Ok(LlmFallback::Extractive),
        "handoff" => Ok(LlmFallback::Handoff),
        other => Err(invalid(
            key,
            format!("{other:?} is not a fallback (use \"extractive\" or \"handoff\")"),
        )),
    };
    let analyzer = match raw.analyzer.trim() {
        "llm" => AnalyzerKind::Llm,
        "local" => AnalyzerKind::Local,
        other => {
            return Err(invalid(
                "llm.analyzer",
                format!("{other:?} is not an analyzer (use \"llm\" or \"local\")"),
            ));
        }
    };
    if !(0.0..=1.0).contains(&raw.grounding_threshold) {
        return Err(invalid(
            "llm.grounding_threshold",
            format!("must be between 0 and 1, got {}", raw.grounding_threshold),
        ));
    }
    Ok(LlmSettings {
        analyzer,
        grounding_threshold: raw.grounding_threshold as f32,
        on_ungrounded: fallback("llm.on_ungrounded", &raw.on_ungrounded)?,
        on_failure: fallback("llm.on_failure", &raw.on_failure)?,
        hold_until_checked: raw.hold_until_checked,
        failure_cooldown: duration("llm.failure_cooldown", &raw.failure_cooldown)?,
        provider,
        connect_timeout: positive_duration("llm.connect_timeout", &raw.connect_timeout)?,
        first_token_timeout: positive_duration(
            "llm.first_token_timeout",
            &raw.first_token_timeout,
        )?,
        total_timeout: positive_duration("llm.total_timeout", &raw.total_timeout)?,
        prices,
    })
}

fn validate_policy(raw: RawPolicy) -> Result<PolicySettings, ConfigError> {
    if !(0.0..=1.0).contains(&raw.min_confidence) {
        return Err(invalid(
            "policy.min_confidence",
            format!("must be between 0 and 1, got {}", raw.min_confidence),
        ));
    }
    if !(-1.0..=1.0).contains(&raw.negative_sentiment) {
        return Err(invalid(
            "policy.negative_sentiment",
            format!("must be between -1 and 1, got {}", raw.negative_sentiment),
        ));
    }
    if !(raw.refund_draft_limit.is_finite() && raw.refund_draft_limit >= 0.0) {
        return Err(invalid(
            "policy.refund_draft_limit",
            "must be an amount of 0 or more",
        ));
    }
    let draft = raw
        .draft
        .iter()
        .map(|kind| {
            kind.trim()
                .parse::<ActionKind>()
                .map_err(|message| invalid("policy.draft", message))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let always_human = raw
        .always_human
        .iter()
        .map(|reason| {
            reason
                .trim()
                .parse::<ReasonCode>()
                .map_err(|err| invalid("policy.always_human", err.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if !always_human.contains(&ReasonCode::RequestedHuman) {
        return Err(invalid(
            "policy.always_human",
            "must contain \"requested_human\" (a visitor who asks for a human always gets one)",
        ));
    }
    Ok(PolicySettings {
        // Both checked above to lie in −1..=1, so narrowing loses only precision.
        min_confidence: raw.min_confidence as f32,
        negative_sentiment: raw.negative_sentiment as f32,
        max_unresolved_exchanges: non_zero_u32(
            "policy.max_unresolved_exchanges",
            raw.max_unresolved_exchanges,
        )?,
        refund_draft_limit: raw.refund_draft_limit,
        auto_resolve: raw.auto_resolve,
        draft,
        always_human,
    })
}

fn validate_helpdesk(raw: RawHelpdesk) -> Result<HelpdeskSettings, ConfigError> {
    let missing = |table: &str| {
        invalid(
            format!("helpdesk.{table}"),
            format!("helpdesk.kind = \"{table}\" needs a [helpdesk.{table}] table"),
        )
    };
    match raw.kind.trim() {
        "inbox" => Ok(HelpdeskSettings::Inbox),
        "zendesk" => {
            let table = raw.zendesk.ok_or_else(|| missing("zendesk"))?;
            let subdomain = non_empty("helpdesk.zendesk.subdomain", Some(table.subdomain))?;
            if !subdomain
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
            {
                return Err(invalid(
                    "helpdesk.zendesk.subdomain",
                    format!(
                        "{subdomain:?}: just the subdomain, like \"acme\" for https://acme.zendesk.com"
                    ),
                ));
            }
            let base_url = match table.base_url {
                Some(url) => http_url("helpdesk.zendesk.base_url", &url)?
                    .as_str()
                    .trim_end_matches('/')
                    .to_string(),
                None => format!("https://{subdomain}.zendesk.com"),
            };
            Ok(HelpdeskSettings::Zendesk {
                subdomain,
                email: non_empty("helpdesk.zendesk.email", Some(table.email))?,
                api_token: Secret(non_empty(
                    "helpdesk.zendesk.api_token",
                    Some(table.api_token),
                )?),
                base_url,
                webhook_secret: webhook_secret(
                    "helpdesk.zendesk.webhook_secret",
                    table.webhook_secret,
                )?,
                groups: table.groups,
            })
        }
        "freshdesk" => {
            let table = raw.freshdesk.ok_or_else(|| missing("freshdesk"))?;
            let domain = non_empty("helpdesk.freshdesk.domain", Some(table.domain))?;
            let base_url = match table.base_url {
                Some(url) => http_url("helpdesk.freshdesk.base_url", &url)?
                    .as_str()
                    .trim_end_matches('/')
                    .to_string(),
                None => format!("https://{domain}"),
            };
            Ok(HelpdeskSettings::Freshdesk {
                domain,
                api_key: Secret(non_empty(
                    "helpdesk.freshdesk.api_key",
                    Some(table.api_key),
                )?),
                base_url,
                webhook_secret: webhook_secret(
                    "helpdesk.freshdesk.webhook_secret",
                    table.webhook_secret,
                )?,
                groups: table.groups,
            })
        }
        "intercom" => {
            let table = raw.intercom.ok_or_else(|| missing("intercom"))?;
            let base_url = match table.base_url {
                Some(url) => http_url("helpdesk.intercom.base_url", &url)?
                    .as_str()
                    .trim_end_matches('/')
                    .to_string(),
                None => "https://api.intercom.io".to_string(),
            };
            Ok(HelpdeskSettings::Intercom {
                access_token: Secret(non_empty(
                    "helpdesk.intercom.access_token",
                    Some(table.access_token),
                )?),
                admin_id: non_empty("helpdesk.intercom.admin_id", table.admin_id)?,
                assignee_id: table
                    .assignee_id
                    .map(|id| id.trim().to_string())
                    .filter(|id| !id.is_empty()),
                base_url,
                client_secret: webhook_secret(
                    "helpdesk.intercom.client_secret",
                    table.client_secret,
                )?,
            })
        }
        other => Err(invalid(
            "helpdesk.kind",
            format!(
                "{other:?} is not a helpdesk (use \"inbox\", \"zendesk\", \"freshdesk\" or \"intercom\")"
            ),
        )),
    }
}

fn validate_inbox(raw: Option<RawInbox>) -> Result<InboxSettings, ConfigError> {
    let raw = raw.unwrap_or_default();
    let session_ttl = match raw.session_ttl {
        Some(ttl) => duration("helpdesk.inbox.session_ttl", &ttl)?,
        None => Duration::from_secs(12 * 3600),
    };
    if session_ttl < Duration::from_secs(60) || session_ttl > Duration::from_secs(30 * 86400) {
        return Err(invalid(
            "helpdesk.inbox.session_ttl",
            "must be from 1 minute to 30 days",
        ));
    }
    let mut ids = HashSet::new();
    let agents = raw
        .agents
        .into_iter()
        .enumerate()
        .map(|(index, agent)| {
            let key = |field: &str| format!("helpdesk.inbox.agents[{index}].{field}");
            let id = agent.id.trim().to_string();
            if id.is_empty()
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
            {
                return Err(invalid(
                    key("id"),
                    format!("{id:?}: use letters, digits, '.', '-' and '_'"),
                ));
            }
            if !ids.insert(id.clone()) {
                return Err(invalid(key("id"), format!("{id:?} is repeated")));
            }
            let hash = agent.password_hash.trim().to_string();
            let parsed = argon2::PasswordHash::new(&hash).map_err(|_| {
                invalid(
                    key("password_hash"),
                    "is not a PHC password hash; make one with `frontdesk hash-password`",
                )
            })?;
            // Argon2id only, with parameters a sign-in can afford (RFC 9106 / OWASP: at least
            // 19 MiB; at most 256 MiB and 10 passes, since every sign-in pays them).
            let params = argon2::Params::try_from(&parsed).ok();
            let sane = parsed.algorithm.as_str() == "argon2id"
                && params.is_some_and(|p| {
                    (8 * 1024..=256 * 1024).contains(&p.m_cost())
                        && (1..=10).contains(&p.t_cost())
                        && (1..=8).contains(&p.p_cost())
                });
            if !sane {
                return Err(invalid(
                    key("password_hash"),
                    "must be an Argon2id hash with 8–256 MiB memory, 1–10 passes and 1–8 lanes; \
                     make one with `frontdesk hash-password`",
                ));
            }
            let capacity = match agent.capacity {
                None => 3,
                Some(n) if (1..=100).contains(&n) => n as u32,
                Some(n) => {
                    return Err(invalid(
                        key("capacity"),
                        format!("must be a whole number from 1 to 100, got {n}"),
                    ));
                }
            };
            let lower = |items: Vec<String>| -> Vec<String> {
                items
                    .into_iter()
                    .map(|item| item.trim().to_ascii_lowercase())
                    .filter(|item| !item.is_empty())
                    .collect()
            };
            Ok(InboxAgent {
                id,
                name: non_empty(&key("name"), Some(agent.name))?,
                password_hash: Secret(hash),
                teams: agent
                    .teams
                    .into_iter()
                    .map(|t| t.trim().to_string())
                    .collect(),
                languages: lower(agent.languages),
                skills: lower(agent.skills),
                capacity,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(InboxSettings {
        agents,
        session_ttl,
    })
}

fn validate_origin(key: &str, raw: &str) -> Result<AllowedOrigin, ConfigError> {
    let raw = raw.trim();
    if raw == "*" {
        return Ok(AllowedOrigin::Any);
    }
    let url = Url::parse(raw).map_err(|err| {
        invalid(
            key,
            format!("{raw:?} is not an origin like \"https://www.example.com\" ({err})"),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https")
        || url.host_str().is_none()
        || url.path() != "/"
        || url.query().is_some()
    {
        return Err(invalid(
            key,
            format!("{raw:?} is not an origin: scheme, host and optional port only"),
        ));
    }
    Ok(AllowedOrigin::Exact(url.origin().ascii_serialization()))
}

fn validate_sites(raw: Vec<RawSite>) -> Result<Vec<SiteSettings>, ConfigError> {
    if raw.is_empty() {
        return Err(invalid("sites", "declare at least one [[sites]] entry"));
    }
    let mut ids = HashSet::new();
    let mut keys = HashSet::new();
    let mut sites = Vec::with_capacity(raw.len());
    for (index, site) in raw.into_iter().enumerate() {
        let key = |field: &str| format!("sites[{index}].{field}");
        let id =
            SiteId::parse(site.id.trim()).map_err(|err| invalid(key("id"), err.to_string()))?;
        if !ids.insert(id.clone()) {
            return Err(invalid(
                key("id"),
                format!("site id {id} is declared twice"),
            ));
        }
        let public_key = site.public_key.trim().to_string();
        if public_key.len() < 8
            || !public_key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(invalid(
                key("public_key"),
                "must be at least 8 ASCII letters, digits, `_` or `-`",
            ));
        }
        if !keys.insert(public_key.clone()) {
            return Err(invalid(key("public_key"), "is used by two sites"));
        }
        let allowed_origins = site
            .allowed_origins
            .iter()
            .map(|origin| validate_origin(&key("allowed_origins"), origin))
            .collect::<Result<Vec<_>, _>>()?;
        let identity_secret = optional_secret(site.identity_secret);
        if site.enforce_identity && identity_secret.is_none() {
            return Err(invalid(
                key("enforce_identity"),
                "needs identity_secret to be set",
            ));
        }
        let taxonomy = crate::taxonomy::validate(&key("taxonomy"), site.taxonomy)?;
        let category_ids: HashSet<String> =
            taxonomy.categories.iter().map(|c| c.id.clone()).collect();
        let routing = match site.routing {
            None => Routing {
                default_team: "support".into(),
                teams: vec![Team {
                    id: "support".into(),
                    name: "support team".into(),
                    hours: None,
                }],
                rules: Vec::new(),
            },
            Some(routing) => validate_routing(&key("routing"), routing, &category_ids)?,
        };
        sites.push(SiteSettings {
            id,
            public_key,
            allowed_origins,
            identity_secret,
            enforce_identity: site.enforce_identity,
            taxonomy,
            routing,
            llm_monthly_budget_usd: match site.llm_monthly_budget_usd {
                None => None,
                Some(usd) if usd.is_finite() && usd >= 0.0 => Some(usd),
                Some(usd) => {
                    return Err(invalid(
                        key("llm_monthly_budget_usd"),
                        format!("must be a number of US dollars, 0 or more; got {usd}"),
                    ));
                }
            },
        });
    }
    Ok(sites)
}

fn validate_routing(
    key: &str,
    raw: RawRouting,
    categories: &HashSet<String>,
) -> Result<Routing, ConfigError> {
    let mut team_ids = HashSet::new();
    let teams = raw
        .teams
        .into_iter()
        .map(|team| {
            let id = team.id.trim().to_string();
            if id.is_empty() || !team_ids.insert(id.clone()) {
                return Err(invalid(
                    format!("{key}.teams"),
                    format!("team id {id:?} is empty or repeated"),
                ));
            }
            let hours = match &team.hours {
                Some(spec) => Some(
                    crate::hours::BusinessHours::parse(
                        spec,
                        team.timezone.as_deref().unwrap_or("UTC"),
                    )
                    .map_err(|err| invalid(format!("{key}.teams[{id}].hours"), err))?,
                ),
                None if team.timezone.is_some() => {
                    return Err(invalid(
                        format!("{key}.teams[{id}].timezone"),
                        "is set without hours (e.g. hours = \"mon-fri 09:00-17:00\")",
                    ));
                }
                None => None,
            };
            Ok(Team {
                id,
                name: team.name,
                hours,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if !team_ids.contains(raw.default_team.trim()) {
        return Err(invalid(
            format!("{key}.default_team"),
            format!("{:?} is not one of the teams", raw.default_team),
        ));
    }
    let rules = raw
        .rules
        .into_iter()
        .enumerate()
        .map(|(index, rule)| {
            let rule_key = format!("{key}.rules[{index}]");
            if !team_ids.contains(rule.team.trim()) {
                return Err(invalid(
                    format!("{rule_key}.team"),
                    format!("{:?} is not one of the teams", rule.team),
                ));
            }
            if let Some(category) = &rule.category
                && !categories.contains(category.trim())
            {
                return Err(invalid(
                    format!("{rule_key}.category"),
                    format!("{category:?} is not a taxonomy category"),
                ));
            }
            let priority = rule
                .priority
                .as_deref()
                .map(|p| crate::taxonomy::parse_priority(&format!("{rule_key}.priority"), p))
                .transpose()?;
            if let Some(language) = &rule.language
                && !(language.len() == 2 && language.chars().all(|c| c.is_ascii_lowercase()))
            {
                return Err(invalid(
                    format!("{rule_key}.language"),
                    format!("{language:?} is not a two-letter ISO 639-1 code"),
                ));
            }
            Ok(RoutingRule {
                category: rule.category.map(|c| c.trim().to_string()),
                priority,
                language: rule.language,
                tier: rule
                    .tier
                    .map(|tier| tier.trim().to_ascii_lowercase())
                    .filter(|tier| !tier.is_empty()),
                team: rule.team.trim().to_string(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Routing {
        default_team: raw.default_team.trim().to_string(),
        teams,
        rules,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_with(layers: &[&str], env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        Settings::load(&ConfigSources {
            file: None,
            layers: layers.iter().map(|s| s.to_string()).collect(),
            env: EnvSnapshot::from_pairs(env.iter().copied()),
        })
    }

    #[test]
    fn defaults_match_the_documented_values() {
        let settings = load_with(&[], &[("HOME", "/home/ada")]).expect("the defaults load");
        assert_eq!(settings.server.port, 8080);
        assert_eq!(settings.server.bind.to_string(), "127.0.0.1");
        assert_eq!(settings.server.shutdown_grace, Duration::from_secs(10));
        assert_eq!(settings.ws.max_frame_bytes.get(), 65536);
        assert_eq!(settings.ws.heartbeat, Duration::from_secs(20));
        assert_eq!(settings.store.backend, StoreBackend::Memory);
        assert_eq!(settings.store.closed_ttl, Duration::from_secs(30 * 86400));
        assert_eq!(settings.kb.backend, KbBackend::Embedded);
        assert!(settings.kb.source.is_demo());
        assert!(
            settings.kb.source.path().join("account").is_dir(),
            "demo kb resolved: {:?}",
            settings.kb.source
        );
        assert_eq!(settings.kb.data_dir, PathBuf::from(".data/kb"));
        assert_eq!(
            settings.embedder.kind,
            EmbedderKind::Local {
                model_dir: PathBuf::from("/home/ada/.cache/frontdesk/models/all-minilm-l6-v2")
            }
        );
        assert_eq!(settings.embedder.max_tokens.get(), 256);
        assert_eq!(settings.llm.provider, LlmProvider::None);
        assert_eq!(settings.policy, PolicySettings::default());
        assert_eq!(settings.helpdesk, HelpdeskSettings::Inbox);
        assert_eq!(settings.sites.len(), 1);
        assert_eq!(settings.sites[0].id.as_str(), "demo");
        assert_eq!(settings.sites[0].public_key, "pk_demo_frontdesk");
        assert_eq!(
            settings.log,
            LogSettings {
                filter: "info".into(),
                format: LogFormat::Pretty
            }
        );
    }

    #[test]
    fn environment_overrides_files_and_parses_numbers_and_lists() {
        let settings = load_with(
            &["[server]\nport = 9000\n"],
            &[
                ("FRONTDESK__SERVER__PORT", "9100"),
                ("FRONTDESK__WS__HEARTBEAT", "5s"),
                ("FRONTDESK__SERVER__TRUSTED_PROXIES", "10.0.0.0/8,::1"),
                ("FRONTDESK__KB__MEILISEARCH__URL", "http://meili:7700"),
                ("FRONTDESK_LOG_FORMAT", "json"),
                ("RUST_LOG", "debug"),
                ("UNRELATED", "x"),
            ],
        )
        .expect("overrides load");
        assert_eq!(settings.server.port, 9100);
        assert_eq!(settings.ws.heartbeat, Duration::from_secs(5));
        assert_eq!(settings.server.trusted_proxies.len(), 2);
        assert_eq!(settings.kb.meilisearch.url.as_str(), "http://meili:7700/");
        assert_eq!(
            settings.log,
            LogSettings {
                filter: "debug".into(),
                format: LogFormat::Json
            }
        );
    }

    #[test]
    fn bad_keys_and_values_name_the_key() {
        // (TOML layer, environment, text the error must contain)
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
        let cases: &[Case<'_>] = &[
            ("[server]\nprot = 1\n", &[], "prot"),
            ("[server]\nport = 70000\n", &[], "server.port"),
            ("[ws]\nheartbeat = \"soon\"\n", &[], "ws.heartbeat"),
            ("[ws]\nmax_message_chars = 0\n", &[], "ws.max_message_chars"),
            ("[kb]\nsemantic_ratio = 1.5\n", &[], "kb.semantic_ratio"),
            ("[kb]\nbackend = \"elastic\"\n", &[], "kb.backend"),
            (
                "[policy]\nalways_human = [\"security\"]\n",
                &[],
                "policy.always_human",
            ),
            (
                "[policy]\nalways_human = [\"requested_human\", \"grumpy\"]\n",
                &[],
                "grumpy",
            ),
            (
                "[store]\nredis_url = \"http://x\"\n",
                &[],
                "store.redis_url",
            ),
            ("[llm]\nprovider = \"openai\"\n", &[], "llm.base_url"),
            ("[llm]\nmodel = \"gpt-4o-mini\"\n", &[], "llm.model"),
            (
                "[llm]\ngrounding_threshold = 2\n",
                &[],
                "llm.grounding_threshold",
            ),
            ("[llm]\non_failure = \"panic\"\n", &[], "llm.on_failure"),
            ("[llm]\nanalyzer = \"gpt\"\n", &[], "llm.analyzer"),
            (
                "[llm]\nprovider = \"openai\"\nbase_url = \"http://127.0.0.1:1/v1\"\nmodel = \"m\"\n\
                 [[sites]]\nid = \"a\"\npublic_key = \"pk_aaaaaaaa\"\nllm_monthly_budget_usd = 5.0\n",
                &[],
                "sites.a.llm_monthly_budget_usd",
            ),
            ("[helpdesk]\nkind = \"zendesk\"\n", &[], "helpdesk.zendesk"),
            (
                "[helpdesk]\nkind = \"zendesk\"\n[helpdesk.zendesk]\nsubdomain = \"https://acme.zendesk.com\"\n\
                 email = \"a@b.c\"\napi_token = \"t\"\n",
                &[],
                "helpdesk.zendesk.subdomain",
            ),
            (
                "[helpdesk]\nkind = \"freshdesk\"\n[helpdesk.freshdesk]\ndomain = \"acme.freshdesk.com\"\n\
                 api_key = \"k\"\nwebhook_secret = \"a\"\n",
                &[],
                "helpdesk.freshdesk.webhook_secret",
            ),
            (
                "[helpdesk.inbox]\nsession_ttl = \"0s\"\n",
                &[],
                "helpdesk.inbox.session_ttl",
            ),
            (
                "[helpdesk.inbox]\nagents = [{ id = \"sam\", name = \"Sam\", password_hash = \"$pbkdf2-sha256$i=1000$c2FsdA$aGFzaA\" }]\n",
                &[],
                "helpdesk.inbox.agents[0].password_hash",
            ),
            (
                "[helpdesk.inbox]\nagents = [{ id = \"sam\", name = \"Sam\", password_hash = \"$argon2id$v=19$m=4000000,t=100,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA\" }]\n",
                &[],
                "helpdesk.inbox.agents[0].password_hash",
            ),
            (
                "[[sites]]\nid = \"a b\"\npublic_key = \"pk_aaaaaaaa\"\n",
                &[],
                "sites[0].id",
            ),
            (
                "[[sites]]\nid = \"a\"\npublic_key = \"pk_aaaaaaaa\"\nenforce_identity = true\n",
                &[],
                "sites[0].enforce_identity",
            ),
            (
                "",
                &[("FRONTDESK__WS__IDLE_TIMEOUT", "0s")],
                "ws.idle_timeout",
            ),
            ("", &[("FRONTDESK__SERVER__NOPE", "1")], "nope"),
        ];
        for (layer, env, key) in cases {
            let err =
                load_with(&[layer], env).expect_err(&format!("{layer:?} {env:?} should fail"));
            assert!(
                err.to_string().contains(key),
                "error for {layer:?} should name {key}: {err}"
            );
        }
    }

    #[test]
    fn a_config_file_replaces_the_site_list() {
        let settings = load_with(
            &["[[sites]]\nid = \"acme\"\npublic_key = \"pk_acme_1234\"\nallowed_origins = [\"https://www.acme.com/\", \"*\"]\n"],
            &[],
        )
        .expect("loads");
        assert_eq!(settings.sites.len(), 1);
        assert_eq!(settings.sites[0].id.as_str(), "acme");
        assert_eq!(
            settings.sites[0].allowed_origins,
            vec![
                AllowedOrigin::Exact("https://www.acme.com".into()),
                AllowedOrigin::Any
            ]
        );
        assert_eq!(settings.sites[0].routing.default_team, "support");
        assert!(
            settings.sites[0].taxonomy.categories.is_empty(),
            "the demo site's taxonomy must not leak in"
        );
    }

    #[test]
    fn every_file_in_config_loads_and_selects_built_adapters() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
        let mut n_files = 0;
        for entry in std::fs::read_dir(&dir).expect("config/ exists") {
            let path = entry.expect("readable entry").path();
            if path.extension().and_then(|e| e.to_str()) != Some("toml") {
                continue;
            }
            n_files += 1;
            let settings = Settings::load(&ConfigSources {
                file: Some(path.clone()),
                ..Default::default()
            })
            .unwrap_or_else(|err| panic!("{} does not load: {err}", path.display()));
            crate::startup::check_adapters(&settings).unwrap_or_else(|err| {
                panic!(
                    "{} selects an adapter this build lacks: {err}",
                    path.display()
                )
            });
        }
        assert!(
            n_files >= 3,
            "default.toml and the examples: found {n_files}"
        );
    }

    #[test]
    fn every_key_of_the_design_is_documented_in_default_toml() {
        let documented: toml::Table = DEFAULT_TOML.parse().expect("default.toml is TOML");
        // Keys that are commented out (unset by default) must still appear in the file.
        let keys = [
            "[server]",
            "bind",
            "port",
            "trusted_proxies",
            "shutdown_grace",
            "[ws]",
            "max_frame_bytes",
            "max_message_chars",
            "heartbeat",
            "idle_timeout",
            "[store]",
            "redis_url",
            "key_prefix",
            "closed_ttl",
            "timeout",
            "[kb]",
            "data_dir",
            "backend",
            "semantic_ratio",
            "path",
            "[kb.meilisearch]",
            "url",
            "api_key",
            "task_timeout",
            "[embedder]",
            "kind",
            "model_dir",
            "max_tokens",
            "base_url",
            "model",
            "[llm]",
            "provider",
            "deployment",
            "api_version",
            "connect_timeout",
            "first_token_timeout",
            "total_timeout",
            "[llm.prices]",
            "[policy]",
            "min_confidence",
            "negative_sentiment",
            "max_unresolved_exchanges",
            "refund_draft_limit",
            "auto_resolve",
            "draft",
            "always_human",
            "[helpdesk]",
            "[[sites]]",
            "id",
            "public_key",
            "allowed_origins",
            "identity_secret",
            "enforce_identity",
            "[sites.taxonomy]",
            "[sites.routing]",
        ];
        for key in keys {
            assert!(
                DEFAULT_TOML.contains(key),
                "default.toml does not mention {key}"
            );
        }
        assert_eq!(documented["server"]["port"].as_integer(), Some(8080));
        assert_eq!(documented["embedder"]["max_tokens"].as_integer(), Some(256));
        assert_eq!(documented["policy"]["min_confidence"].as_float(), Some(0.7));
        assert_eq!(
            documented["policy"]["max_unresolved_exchanges"].as_integer(),
            Some(3)
        );
    }

    #[test]
    fn secrets_never_print() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret} {secret:?}"), "*** ***");
        let settings = load_with(&["[llm]\nprovider = \"azure\"\nbase_url = \"https://x.openai.azure.com\"\napi_key = \"sk-very-secret\"\ndeployment = \"d\"\napi_version = \"2024-10-21\"\n"], &[])
            .expect("loads");
        assert!(!format!("{settings:?}").contains("sk-very-secret"));
    }

    #[test]
    fn a_missing_config_file_is_named() {
        let err = Settings::load(&ConfigSources {
            file: Some("/nonexistent/frontdesk.toml".into()),
            ..Default::default()
        })
        .expect_err("missing file");
        assert!(
            err.to_string().contains("/nonexistent/frontdesk.toml"),
            "{err}"
        );
    }
}
