//! The turn engine: opens conversations (hello → welcome), stores visitor messages, and runs
//! turns — guard, store, retrieve, decide, answer, hand off — through the ports only. It does
//! no I/O of its own and knows nothing of HTTP, sockets or JSON (`crate::api` does).
//!
//! Event delivery: everything the engine stores goes through the `ConversationStore`, and the
//! socket forwards the store's event stream ([`Opened::events`]); only the streamed deltas
//! (never stored) and typing indicators travel on the per-turn channel ([`TurnOutput`]).

pub mod analysis;
pub mod extractive;
pub mod grounding;
pub mod guard;
pub mod human_request;
pub mod inbox;
pub mod llm_analysis;
pub mod llm_answer;
pub mod outbox;
pub mod policy;
pub mod replies;
pub mod routing;
pub mod summary;
pub mod text;
pub mod ticket;
pub mod triage;

use crate::config::{
    AllowedOrigin, LlmFallback, ModelPrice, PolicySettings, Settings, SiteSettings,
};
use crate::domain::{
    Citation, Conversation, ConversationStatus, Csat, CsatRating, DecisionKind, DraftAnswer,
    EmailAddress, EventKind, HandoffAnalysis, HandoffStatus, LlmUsage, PendingHandoff, ReasonCode,
    StoredEvent,
};
use crate::ids::{
    AnswerId, ClientMessageId, ConversationId, EventId, HandoffId, MessageId, VisitorId,
};
use crate::ports::analyzer::{AnalysisRequest, Analyzer, TurnAnalysis};
use crate::ports::answer::{
    AnswerGenerator, AnswerPiece, AnswerRequest, GenerateError, HistoryMessage,
};
use crate::ports::chat::{ChatModel, TokenUsage};
use crate::ports::embedder::QueryEmbedder;
use crate::ports::retriever::{RetrievalQuery, RetrieveError, Retriever};
use crate::ports::spend::{MICRO_USD_PER_USD, SpendLedger, month_of};
use crate::ports::store::{
    AppendedMessage, ConversationStore, EventStream, NewConversation, OpenedHandoff, StoreError,
};
use frontdesk_kb::index::SearchResult;
use futures_util::StreamExt;
use guard::{IdentityClaim, MessageRateLimiter, ResumeTokens};
use policy::{Decision, RetrievalSignals};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use tokio::sync::mpsc;

/// Protocol version spoken by this engine (`hello.v`).
pub const PROTOCOL_VERSION: u32 = 1;
/// Articles retrieved per turn.
pub const N_ARTICLES: usize = 5;
/// Most messages returned in `welcome.history`, and most events replayed at once.
pub const HISTORY_LIMIT: usize = 1000;

/// The ports the engine calls.
#[derive(Clone)]
pub struct Ports {
    pub store: Arc<dyn ConversationStore>,
    pub retriever: Arc<dyn Retriever>,
    pub generator: Arc<dyn AnswerGenerator>,
    /// The turn's one embedding, shared by analysis and retrieval (`None`: keyword-only).
    pub embedder: Option<Arc<dyn QueryEmbedder>>,
    /// Language, sentiment, signals, category and priority of each visitor message.
    pub analyzer: Arc<dyn Analyzer>,
    /// The chat model for LLM answers (`None`: extractive answers only).
    pub chat: Option<Arc<dyn ChatModel>>,
    /// LLM spending per site and month (the budget).
    pub spend: Arc<dyn SpendLedger>,
    /// Email to visitors who left (`None`: no `[email] smtp_url`).
    pub mailer: Option<Arc<dyn crate::ports::mailer::Mailer>>,
    /// Where handoff tickets go (the outbox calls it).
    pub helpdesk: Arc<dyn crate::ports::helpdesk::Helpdesk>,
}

/// Engine errors; `crate::api` maps each to a wire error code.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The request is malformed or not allowed in this state (`bad_request`).
    #[error("{0}")]
    BadRequest(String),
    /// Missing or wrong credentials: site key, resume token, identity (`unauthorized`).
    #[error("{0}")]
    Unauthorized(String),
    /// Valid credentials, but not for this (origin not allowed, another user) (`forbidden`).
    #[error("{0}")]
    Forbidden(String),
    /// The thing referred to does not exist (`not_found`).
    #[error("{0}")]
    NotFound(String),
    /// Too many messages; try again after `retry_after` (`rate_limited`).
    #[error("too many messages; try again in {retry_after:?}")]
    RateLimited { retry_after: Duration },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Retrieve(#[from] RetrieveError),
    #[error(transparent)]
    Generate(#[from] GenerateError),
    /// The helpdesk refused or failed a call made for a webhook (triage).
    #[error(transparent)]
    Helpdesk(#[from] crate::ports::helpdesk::HelpdeskError),
}

/// Where the WebSocket request came from (HTTP headers, read by `api`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestOrigin {
    /// The `Origin` header (browsers always send it on WebSocket upgrades).
    pub origin: Option<String>,
    /// The `Host` header: an origin on the server's own host is always allowed.
    pub host: Option<String>,
}

/// A `hello`, as the engine sees it (raw ids are parsed here).
#[derive(Debug, Clone, Default)]
pub struct Hello {
    pub version: u32,
    pub site_key: String,
    pub visitor_id: Option<String>,
    pub conversation_id: Option<String>,
    pub resume_token: Option<String>,
    /// Replay the stored events after this one (a reconnect).
    pub last_event_id: Option<u64>,
    pub identity: Option<IdentityClaim>,
    pub page_url: Option<String>,
    pub locale: Option<String>,
    pub origin: RequestOrigin,
}

/// An open conversation on one connection, shared with its turns.
#[derive(Debug)]
pub struct ConversationContext {
    pub site: Arc<SiteSettings>,
    pub conversation_id: ConversationId,
    pub visitor_id: VisitorId,
    /// Verified user id of an identified visitor.
    pub user_id: Option<String>,
    /// The customer tier from the verified identity (JWT `tier` claim), for routing.
    pub tier: Option<String>,
    pub locale: Option<String>,
    pub page_url: Option<String>,
    /// Conversations are stored on their first write, so page views without a message leave
    /// nothing behind.
    persisted: AtomicBool,
    /// The analysis of the visitor's latest message on this socket: a "talk to a person"
    /// button press is routed on it.
    last_analysis: std::sync::Mutex<Option<TurnAnalysis>>,
}

/// What `hello` opens.
pub struct Opened {
    pub context: Arc<ConversationContext>,
    pub resume_token: String,
    pub status: ConversationStatus,
    /// The latest event id included in `history`/`replay` (the socket's starting point).
    pub last_event_id: EventId,
    /// Message events of the conversation (empty when `last_event_id` was given).
    pub history: Vec<StoredEvent>,
    /// Stored events after the hello's `last_event_id`, to replay as frames.
    pub replay: Vec<StoredEvent>,
    /// Events appended from now on (by this or any connection or instance).
    pub events: EventStream,
}

/// The outcome of storing a visitor message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    pub appended: AppendedMessage,
    /// Run a turn for it (not for a duplicate, nor while a human has the conversation).
    pub run_turn: bool,
}

/// The visitor message a turn answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnInput {
    pub message_id: MessageId,
    pub text: String,
}

/// What a turn streams to the visitor's socket besides stored events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TurnOutput {
    /// The assistant started (or stopped) working on an answer.
    Typing { is_typing: bool },
    /// A piece of the answer; `seq` counts from 0 per answer.
    Delta {
        answer_id: AnswerId,
        seq: u32,
        text: String,
    },
}

/// How a turn ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnOutcome {
    /// An `answer_end` was stored with this decision.
    Answered(DecisionKind),
    /// A handoff was recorded (a `handoff` event was stored).
    HandedOff,
    /// The visitor left mid-answer; nothing was stored.
    Abandoned,
}

/// A turn's summary for logs and metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnSummary {
    pub outcome: TurnOutcome,
    pub reasons: Vec<ReasonCode>,
    /// Retrieval confidence (when retrieval ran).
    pub confidence: Option<f32>,
    pub n_deltas: u32,
    /// From the start of the turn (retrieval included) to the first delta handed to the socket.
    pub first_delta_after: Option<Duration>,
    /// The stored `answer_end` or `handoff` event.
    pub event_id: Option<EventId>,
    /// What the analysis found (category, priority, sentiment, language).
    pub analysis: Option<TurnAnalysis>,
}

/// The outcome of a handoff request.
#[derive(Debug, Clone, PartialEq)]
pub struct HandoffRequested {
    /// The `handoff` event announcing it.
    pub event: StoredEvent,
    /// True when a handoff was already pending (nothing new was stored).
    pub already_pending: bool,
}

/// Health of one part, for `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartStatus {
    pub name: &'static str,
    pub adapter: &'static str,
    pub ok: bool,
    /// A required part that is down makes the server not ready; others only degrade it.
    pub required: bool,
    /// Why it is down (no secrets).
    pub detail: Option<String>,
}

/// Readiness of every part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    pub parts: Vec<PartStatus>,
}

impl Readiness {
    /// True when every required part is up.
    pub fn is_ready(&self) -> bool {
        self.parts.iter().all(|part| part.ok || !part.required)
    }

    /// Names of the parts that are down.
    pub fn degraded(&self) -> Vec<&'static str> {
        self.parts
            .iter()
            .filter(|part| !part.ok)
            .map(|part| part.name)
            .collect()
    }
}

/// The turn engine. Shared by every connection (`Arc<Engine>`).
pub struct Engine {
    ports: Ports,
    sites: Vec<Arc<SiteSettings>>,
    tokens: ResumeTokens,
    limiter: MessageRateLimiter,
    policy: PolicySettings,
    max_message_chars: usize,
    llm: Option<LlmRuntime>,
    llm_counters: Arc<LlmCounters>,
    outbox: Arc<outbox::Outbox>,
    inbox: inbox::InboxAccounts,
    email_counters: Arc<inbox::EmailCounters>,
    /// Team id → the helpdesk's group id (triage of tickets from other channels).
    helpdesk_groups: std::collections::BTreeMap<String, u64>,
}

/// The LLM answer path: the generator and what the engine checks around it.
struct LlmRuntime {
    generator: llm_answer::LlmGenerator,
    model: String,
    price: Option<ModelPrice>,
    grounding: grounding::GroundingParams,
    on_ungrounded: LlmFallback,
    on_failure: LlmFallback,
    hold_until_checked: bool,
    failure_cooldown: Duration,
    /// The model failed to answer: skipped until then (and why).
    down_until: std::sync::Mutex<Option<(Instant, String)>>,
}

impl LlmRuntime {
    /// True while the model is skipped after a failure.
    fn cooling_down(&self) -> bool {
        let mut down = self.down_until.lock().unwrap_or_else(|p| p.into_inner());
        match &*down {
            Some((until, _)) if Instant::now() < *until => true,
            Some(_) => {
                *down = None;
                false
            }
            None => false,
        }
    }

    /// Skips the model for `failure_cooldown` (or the server's `Retry-After`, if longer).
    fn cool_down(&self, err: &GenerateError) {
        let wait = match err {
            GenerateError::RateLimited {
                retry_after: Some(retry_after),
            } => (*retry_after).max(self.failure_cooldown),
            _ => self.failure_cooldown,
        };
        let mut down = self.down_until.lock().unwrap_or_else(|p| p.into_inner());
        *down = Some((Instant::now() + wait, err.to_string()));
    }

    /// Why the model is skipped now, if it is.
    fn down_reason(&self) -> Option<String> {
        let down = self.down_until.lock().unwrap_or_else(|p| p.into_inner());
        down.as_ref()
            .filter(|(until, _)| Instant::now() < *until)
            .map(|(_, why)| why.clone())
    }
}

/// Counts of what happened to LLM answers since start-up.
#[derive(Debug, Default)]
pub struct LlmCounters {
    /// Answers the model finished and the grounding check passed.
    pub answered: AtomicU64,
    /// Answers replaced because a sentence was not supported by the cited passages.
    pub ungrounded: AtomicU64,
    /// Answers the model failed to produce (timeout, error, broken stream, rate limit).
    pub failed: AtomicU64,
    /// Answers stopped because they contained the prompt canary (also counted in `failed`).
    pub canary_blocked: AtomicU64,
    /// Turns answered extractively because the site's monthly budget was spent.
    pub over_budget: AtomicU64,
    /// Turns answered extractively because the model had just failed (`llm.failure_cooldown`).
    pub cooling_down: AtomicU64,
    /// Turns whose LLM analysis was unusable (model failure or output outside the schema), so
    /// the local analyzer decided.
    pub analysis_fallbacks: AtomicU64,
}

/// What the answer step produced.
struct Produced {
    text: String,
    citations: Vec<Citation>,
    usage: Option<LlmUsage>,
    /// Why the LLM's answer was replaced (empty when it was not).
    reasons: Vec<ReasonCode>,
    /// The fallback is a handoff (`llm.on_* = "handoff"`).
    hand_off: bool,
    /// Deltas of it reached the visitor (an `answer_end` must replace them).
    shown: bool,
}

impl Engine {
    /// An engine for `settings` over `ports`.
    pub fn new(settings: &Settings, ports: Ports) -> Self {
        let tokens = match &settings.server.resume_secret {
            Some(secret) => ResumeTokens::new(secret),
            None => ResumeTokens::random(),
        };
        let sites: Vec<Arc<SiteSettings>> = settings.sites.iter().cloned().map(Arc::new).collect();
        let outbox = Arc::new(outbox::Outbox::new(
            ports.store.clone(),
            ports.helpdesk.clone(),
            ports.chat.clone(),
            sites.clone(),
            settings.outbox_poll,
        ));
        let mut accounts =
            inbox::InboxAccounts::new(&settings.inbox, settings.server.resume_secret.as_ref());
        if accounts.is_empty() && settings.helpdesk == crate::config::HelpdeskSettings::Inbox {
            // A first run: one `admin` account until agents are configured.
            let password = uuid::Uuid::new_v4().simple().to_string();
            match inbox::hash_password(&password) {
                Ok(hash) => {
                    accounts.add(crate::config::InboxAgent {
                        id: "admin".into(),
                        name: "Support agent".into(),
                        password_hash: crate::config::Secret::new(hash),
                        teams: Vec::new(),
                        languages: Vec::new(),
                        skills: Vec::new(),
                        capacity: 3,
                    });
                    tracing::warn!(
                        "inbox: no [[helpdesk.inbox.agents]] configured; sign in at /inbox as \
                         \"admin\" with the one-time password {password} (valid until restart)"
                    );
                }
                Err(err) => tracing::warn!(error = %err, "inbox: cannot create the admin account"),
            }
        }
        Self {
            ports: ports.clone(),
            sites,
            outbox,
            inbox: accounts,
            email_counters: Arc::new(inbox::EmailCounters::default()),
            helpdesk_groups: settings.helpdesk.groups(),
            tokens,
            limiter: MessageRateLimiter::new(
                settings.ws.messages_per_minute,
                settings.ws.message_burst,
            ),
            policy: settings.policy.clone(),
            max_message_chars: settings.ws.max_message_chars.get(),
            llm: ports.chat.as_ref().map(|model| LlmRuntime {
                generator: llm_answer::LlmGenerator::new(model.clone()),
                model: model.model().to_string(),
                price: settings.llm.prices.get(model.model()).copied(),
                grounding: grounding::GroundingParams {
                    threshold: settings.llm.grounding_threshold,
                    ..grounding::GroundingParams::default()
                },
                on_ungrounded: settings.llm.on_ungrounded,
                on_failure: settings.llm.on_failure,
                hold_until_checked: settings.llm.hold_until_checked,
                failure_cooldown: settings.llm.failure_cooldown,
                down_until: std::sync::Mutex::new(None),
            }),
            llm_counters: Arc::new(LlmCounters::default()),
        }
    }

    /// Emails sent to visitors who left.
    pub fn email_counters(&self) -> &inbox::EmailCounters {
        &self.email_counters
    }

    /// The inbox's agents and sessions.
    pub fn inbox_accounts(&self) -> &inbox::InboxAccounts {
        &self.inbox
    }

    /// The handoff outbox (its worker runs beside the server; tests drive it directly).
    pub fn outbox(&self) -> &Arc<outbox::Outbox> {
        &self.outbox
    }

    /// What happened to LLM answers since start-up.
    pub fn llm_counters(&self) -> &LlmCounters {
        &self.llm_counters
    }

    /// The canary string of the LLM prompts (tests check it never reaches a visitor).
    pub fn llm_canary(&self) -> Option<&str> {
        self.llm.as_ref().map(|llm| llm.generator.canary())
    }

    pub fn ports(&self) -> &Ports {
        &self.ports
    }

    pub fn sites(&self) -> &[Arc<SiteSettings>] {
        &self.sites
    }

    /// Forgets rate-limit state of visitors back to a full allowance (run periodically).
    pub fn forget_idle_visitors(&self) {
        self.limiter.forget_idle();
    }

    /// Handles `hello`: checks the site key, origin, identity and (to resume) the resume
    /// token; returns the conversation with its history or the events to replay.
    ///
    /// Errors: `BadRequest` (version, malformed ids), `Unauthorized` (unknown site key,
    /// missing or wrong resume token, bad identity), `Forbidden` (origin not allowed, resuming
    /// another user's conversation), `Store`.
    pub async fn open(&self, hello: Hello) -> Result<Opened, EngineError> {
        if hello.version != PROTOCOL_VERSION {
            return Err(EngineError::BadRequest(format!(
                "protocol version {} is not supported (this server speaks v{PROTOCOL_VERSION})",
                hello.version
            )));
        }
        let site = self
            .sites
            .iter()
            .find(|site| site.public_key == hello.site_key)
            .cloned()
            .ok_or_else(|| EngineError::Unauthorized("unknown site key".into()))?;
        if !origin_allowed(&site, &hello.origin) {
            return Err(EngineError::Forbidden(
                "this page's origin may not use this site key".into(),
            ));
        }
        let identity = match &hello.identity {
            Some(claim) => Some(
                guard::verify_identity(claim, site.identity_secret.as_ref())
                    .map_err(|err| EngineError::Unauthorized(err.to_string()))?,
            ),
            None if site.enforce_identity => {
                return Err(EngineError::Unauthorized(
                    "this site requires a verified identity".into(),
                ));
            }
            None => None,
        };
        let tier = identity.as_ref().and_then(|identity| identity.tier.clone());
        let user_id = identity.map(|identity| identity.user_id);
        let visitor_id = match hello.visitor_id.as_deref() {
            Some(raw) => {
                VisitorId::parse(raw).map_err(|err| EngineError::BadRequest(err.to_string()))?
            }
            None if hello.conversation_id.is_some() => {
                return Err(EngineError::BadRequest(
                    "visitor_id is required to resume a conversation".into(),
                ));
            }
            None => VisitorId::generate(),
        };
        let (conversation_id, resuming) = match hello.conversation_id.as_deref() {
            None => (ConversationId::generate(), false),
            Some(raw) => {
                let id = ConversationId::parse(raw)
                    .map_err(|err| EngineError::BadRequest(err.to_string()))?;
                let token = hello.resume_token.as_deref().ok_or_else(|| {
                    EngineError::Unauthorized(
                        "resume_token is required to resume a conversation".into(),
                    )
                })?;
                if !self.tokens.verify(&site.id, &visitor_id, &id, token) {
                    return Err(EngineError::Unauthorized(
                        "the resume token does not match this conversation".into(),
                    ));
                }
                (id, true)
            }
        };
        let store = &self.ports.store;
        // Subscribe before reading, so nothing appended in between is missed (the socket
        // skips what it already sent by event id).
        let events = store.subscribe(&site.id, &conversation_id).await?;
        let existing = if resuming {
            store.conversation(&site.id, &conversation_id).await?
        } else {
            None
        };
        if let (Some(conversation), Some(user_id)) = (&existing, &user_id)
            && conversation
                .user_id
                .as_ref()
                .is_some_and(|owner| owner != user_id)
        {
            return Err(EngineError::Forbidden(
                "this conversation belongs to another user".into(),
            ));
        }
        let (status, mut last_event_id) = existing
            .as_ref()
            .map_or((ConversationStatus::Bot, EventId::ZERO), |c| {
                (c.status, c.last_event_id)
            });
        let (history, replay) = match (existing.is_some(), hello.last_event_id) {
            (false, _) => (Vec::new(), Vec::new()),
            (true, Some(after)) => {
                let replay = store
                    .events_after(&site.id, &conversation_id, EventId(after), HISTORY_LIMIT)
                    .await?;
                (Vec::new(), replay)
            }
            (true, None) => {
                let events = store
                    .events_after(&site.id, &conversation_id, EventId::ZERO, HISTORY_LIMIT)
                    .await?;
                (events, Vec::new())
            }
        };
        if let Some(last) = history.iter().chain(&replay).map(|e| e.event_id).max() {
            last_event_id = last_event_id.max(last);
        }
        if let Some(after) = hello.last_event_id {
            // A client that already has events up to `after` starts from there at least.
            last_event_id = last_event_id.max(EventId(after));
        }
        let history = history
            .into_iter()
            .filter(|event| is_message(&event.kind))
            .collect();
        let resume_token = self.tokens.issue(&site.id, &visitor_id, &conversation_id);
        let context = Arc::new(ConversationContext {
            persisted: AtomicBool::new(existing.is_some()),
            last_analysis: std::sync::Mutex::new(None),
            user_id: existing
                .as_ref()
                .and_then(|c| c.user_id.clone())
                .or(user_id),
            tier,
            site,
            conversation_id,
            visitor_id,
            locale: hello.locale,
            page_url: hello.page_url,
        });
        Ok(Opened {
            context,
            resume_token,
            status,
            last_event_id,
            history,
            replay,
            events,
        })
    }

    /// What the policy needs from the conversation so far: the visitor's previous message, and
    /// the exchanges answered since the last resolution (positive feedback, a close, or an
    /// agent's involvement), counted up to `policy.max_unresolved_exchanges`. Reads the first
    /// [`HISTORY_LIMIT`] events.
    async fn conversation_facts(
        &self,
        context: &ConversationContext,
        current: MessageId,
    ) -> Result<ConversationFacts, EngineError> {
        let store = &self.ports.store;
        let (site, id) = (&context.site.id, &context.conversation_id);
        let events = store
            .events_after(site, id, EventId::ZERO, HISTORY_LIMIT)
            .await?;
        let previous_visitor_text = events.iter().rev().find_map(|event| match &event.kind {
            EventKind::VisitorMessage {
                message_id, text, ..
            } if *message_id != current => Some(text.clone()),
            _ => None,
        });
        let limit = self.policy.max_unresolved_exchanges.get();
        // The answers since the last close, agent message or handoff, newest first, at most
        // `limit` of them; their feedback comes in one store call (one round trip).
        let mut recent_answers = Vec::new();
        for event in events.iter().rev() {
            match &event.kind {
                EventKind::AssistantAnswer {
                    answer_id,
                    decision,
                    ..
                } if *decision != DecisionKind::Draft => {
                    recent_answers.push(*answer_id);
                    if recent_answers.len() >= limit as usize {
                        break;
                    }
                }
                EventKind::ConversationClosed { .. }
                | EventKind::AgentMessage { .. }
                | EventKind::Handoff { .. } => break,
                _ => {}
            }
        }
        let feedback = store.feedback_on_answers(site, id, &recent_answers).await?;
        // Unresolved: the answers after the newest one the visitor found helpful.
        let n_unresolved_exchanges = feedback
            .iter()
            .take_while(|helpful| **helpful != Some(true))
            .count() as u32;
        let mut history: Vec<HistoryMessage> = events
            .iter()
            .rev()
            .filter_map(|event| match &event.kind {
                EventKind::VisitorMessage {
                    message_id, text, ..
                } if *message_id != current => Some(HistoryMessage {
                    from_visitor: true,
                    text: text.clone(),
                }),
                EventKind::AssistantAnswer { text, decision, .. }
                    if *decision != DecisionKind::Draft =>
                {
                    Some(HistoryMessage {
                        from_visitor: false,
                        text: text.clone(),
                    })
                }
                EventKind::AgentMessage { text, .. } => Some(HistoryMessage {
                    from_visitor: false,
                    text: text.clone(),
                }),
                _ => None,
            })
            .take(llm_answer::MAX_HISTORY)
            .collect();
        history.reverse();
        Ok(ConversationFacts {
            previous_visitor_text,
            n_unresolved_exchanges,
            history,
        })
    }

    async fn ensure_persisted(
        &self,
        context: &ConversationContext,
    ) -> Result<Conversation, EngineError> {
        let store = &self.ports.store;
        if context.persisted.load(Ordering::Acquire)
            && let Some(conversation) = store
                .conversation(&context.site.id, &context.conversation_id)
                .await?
        {
            return Ok(conversation);
        }
        let conversation = store
            .create_conversation(NewConversation {
                site: context.site.id.clone(),
                id: context.conversation_id,
                visitor: context.visitor_id.clone(),
                user_id: context.user_id.clone(),
                locale: context.locale.clone(),
                page_url: context.page_url.clone(),
                created_at: OffsetDateTime::now_utc(),
            })
            .await?;
        context.persisted.store(true, Ordering::Release);
        Ok(conversation)
    }

    /// Guards and stores a visitor message (idempotent by `client_message_id`).
    ///
    /// Errors: `BadRequest` (empty, longer than `ws.max_message_chars`, conversation closed),
    /// `RateLimited`, `Store`.
    pub async fn accept_message(
        &self,
        context: &ConversationContext,
        client_message_id: ClientMessageId,
        text: &str,
    ) -> Result<Accepted, EngineError> {
        if text.trim().is_empty() {
            return Err(EngineError::BadRequest("message text is empty".into()));
        }
        let n_chars = text.chars().count();
        if n_chars > self.max_message_chars {
            return Err(EngineError::BadRequest(format!(
                "message is {n_chars} characters long; the limit is {}",
                self.max_message_chars
            )));
        }
        self.limiter
            .check(&context.site.id, &context.visitor_id)
            .map_err(|retry_after| EngineError::RateLimited { retry_after })?;
        // The conversation is created by its first message; after that the append reports the
        // status it saw (atomically), so storing a message costs one store round trip.
        if !context.persisted.load(Ordering::Acquire) {
            self.ensure_persisted(context).await?;
        }
        let appended = match self.append_message(context, client_message_id, text).await {
            // Expired or erased since this socket opened it: start it again, as a first
            // message would.
            Err(StoreError::NotFound(_)) => {
                self.ensure_persisted(context).await?;
                self.append_message(context, client_message_id, text)
                    .await?
            }
            other => other?,
        };
        if appended.status == ConversationStatus::Closed && !appended.duplicate {
            return Err(EngineError::BadRequest(
                "this conversation is closed; start a new one".into(),
            ));
        }
        Ok(Accepted {
            appended,
            run_turn: !appended.duplicate && appended.status == ConversationStatus::Bot,
        })
    }

    async fn append_message(
        &self,
        context: &ConversationContext,
        client_message_id: ClientMessageId,
        text: &str,
    ) -> Result<AppendedMessage, StoreError> {
        self.ports
            .store
            .append_visitor_message(
                &context.site.id,
                &context.conversation_id,
                client_message_id,
                MessageId::generate(),
                text,
                OffsetDateTime::now_utc(),
            )
            .await
    }

    /// Runs a turn for a stored visitor message: retrieve, decide, then stream and store the
    /// answer, or record a handoff. Deltas and typing go to `out`; the stored `answer_end` or
    /// `handoff` event reaches the socket through the store's event stream. If `out` is closed
    /// (the visitor left) the turn stops and stores nothing.
    ///
    /// Errors: `Retrieve`, `Generate`, `Store`.
    pub async fn run_turn(
        &self,
        context: &ConversationContext,
        input: TurnInput,
        out: &mpsc::Sender<TurnOutput>,
    ) -> Result<TurnSummary, EngineError> {
        let started = Instant::now();
        let mut summary = TurnSummary {
            outcome: TurnOutcome::Abandoned,
            reasons: Vec::new(),
            confidence: None,
            n_deltas: 0,
            first_delta_after: None,
            event_id: None,
            analysis: None,
        };
        if out
            .send(TurnOutput::Typing { is_typing: true })
            .await
            .is_err()
        {
            return Ok(summary);
        }
        let site = &context.site.id;
        let facts = self.conversation_facts(context, input.message_id).await?;
        // One embedding per turn, shared by the analysis and retrieval.
        let embedding = match &self.ports.embedder {
            Some(embedder) => Some(embedder.embed(&input.text).await?),
            None => None,
        };
        // Whether the site's LLM budget is spent: read once per turn (one store read, only
        // for sites with a budget), for the analysis and the answer alike.
        let over_budget = self.llm.is_some() && self.over_budget(&context.site).await;
        // A model-backed analyzer may call the model unless it is failing or the budget is spent.
        let allow_model = match &self.llm {
            Some(llm) => !llm.cooling_down() && !over_budget,
            None => false,
        };
        let request = AnalysisRequest {
            text: &input.text,
            embedding: embedding.as_deref(),
            previous_visitor_text: facts.previous_visitor_text.as_deref(),
            allow_model,
        };
        let analysis = match self.ports.analyzer.analyze(site, &request).await {
            Ok(analysis) => analysis,
            Err(err) => {
                // The rules need no model: fall back to them (no classification).
                tracing::warn!(error = %err, analyzer = self.ports.analyzer.adapter_name(), "analysis failed; using the local rules only");
                analysis::LocalAnalyzer::default().analyze_now(site, &request)
            }
        };
        // The analysis call's tokens count against the budget like the answer's.
        let analysis_usage = match (analysis.usage, &self.llm) {
            (Some(usage), Some(llm)) => Some(self.record_usage(&context.site, llm, usage).await),
            _ => None,
        };
        if analysis.source == crate::ports::analyzer::AnalysisSource::LlmFallback {
            self.llm_counters
                .analysis_fallbacks
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        tracing::debug!(
            analysis.source = analysis.source.as_str(),
            analysis.category = analysis.category.as_ref().map(|c| c.category.as_str()),
            analysis.priority = analysis.priority.as_str(),
            analysis.sentiment = analysis.sentiment,
            analysis.language = analysis.language.as_deref(),
            analysis.requested_human = analysis.requested_human,
            analysis.n_flagged = analysis.flagged.len(),
            "turn analysed"
        );
        let retrieval = if analysis.requested_human {
            None
        } else {
            let query = RetrievalQuery {
                text: input.text.clone(),
                query_vector: embedding,
                k: N_ARTICLES,
                semantic_ratio: None,
                include_internal: false,
            };
            Some(Arc::new(self.ports.retriever.retrieve(site, &query).await?))
        };
        summary.confidence = retrieval.as_deref().map(|r| r.confidence);
        let decision = policy::decide_turn(
            &input.text,
            &analysis,
            retrieval.as_deref(),
            facts.n_unresolved_exchanges,
            &self.policy,
        );
        *context
            .last_analysis
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(analysis.clone());
        summary.analysis = Some(analysis);
        let confidence = summary.confidence.unwrap_or(0.0);
        let mut answer = AnswerStream::new(started, out);
        match decision {
            Decision::Handoff {
                reasons,
                immediate: true,
            } => {
                let requested = self
                    .hand_off(context, reasons.clone(), summary.analysis.as_ref())
                    .await?;
                summary.outcome = TurnOutcome::HandedOff;
                summary.reasons = reasons;
                summary.event_id = Some(requested.event.event_id);
            }
            Decision::Handoff {
                reasons,
                immediate: false,
            } => {
                // Unsure but something came close: point to it honestly. Nothing at all: say so.
                let closest = retrieval.as_deref().and_then(|result| {
                    result
                        .hits
                        .iter()
                        .find(|hit| !hit.internal && !hit.passages.is_empty())
                });
                let (text, sources) = match closest {
                    Some(hit) if reasons.contains(&ReasonCode::LowConfidence) => (
                        replies::unsure_closest(&hit.title),
                        vec![Citation::from(hit)],
                    ),
                    _ => (replies::NOTHING_FOUND.to_string(), Vec::new()),
                };
                if !answer.send_text(&text).await {
                    return Ok(answer.finish(summary));
                }
                let event = self
                    .store_answer(
                        context,
                        &answer,
                        sources,
                        confidence,
                        DecisionKind::Handoff,
                        reasons.clone(),
                        analysis_usage.clone(),
                    )
                    .await?;
                summary.outcome = TurnOutcome::Answered(DecisionKind::Handoff);
                summary.reasons = reasons;
                summary.event_id = Some(event.event_id);
            }
            Decision::Answer => {
                let request = AnswerRequest {
                    question: input.text.clone(),
                    retrieval: retrieval.unwrap_or_else(|| Arc::new(empty_result())),
                    locale: context.locale.clone(),
                    language: summary.analysis.as_ref().and_then(|a| a.language.clone()),
                    history: facts.history.clone(),
                    site: site.as_str().to_string(),
                };
                let Some(produced) = self
                    .produce_answer(&context.site, request, over_budget, Some(&mut answer))
                    .await?
                else {
                    return Ok(answer.finish(summary));
                };
                if produced.hand_off && !produced.shown {
                    // The model failed before showing anything: one handoff message, no answer.
                    let requested = self
                        .hand_off_with(
                            context,
                            produced.reasons.clone(),
                            summary.analysis.as_ref(),
                            Some(produced.text),
                        )
                        .await?;
                    summary.outcome = TurnOutcome::HandedOff;
                    summary.reasons = produced.reasons;
                    summary.event_id = Some(requested.event.event_id);
                    return Ok(answer.finish(summary));
                }
                answer.text = produced.text;
                // A handoff fallback, or an answer that cites nothing (nothing found).
                let (decision, reasons) = if produced.hand_off {
                    (DecisionKind::Handoff, produced.reasons.clone())
                } else if produced.citations.is_empty() {
                    let mut reasons = produced.reasons.clone();
                    reasons.push(ReasonCode::OutOfScope);
                    (DecisionKind::Handoff, reasons)
                } else {
                    (DecisionKind::Answer, produced.reasons.clone())
                };
                let event = self
                    .store_answer(
                        context,
                        &answer,
                        produced.citations,
                        confidence,
                        decision,
                        reasons.clone(),
                        LlmUsage::sum(produced.usage, analysis_usage.clone()),
                    )
                    .await?;
                summary.outcome = TurnOutcome::Answered(decision);
                summary.reasons = reasons.clone();
                summary.event_id = Some(event.event_id);
                if produced.hand_off {
                    let requested = self
                        .hand_off_with(
                            context,
                            reasons,
                            summary.analysis.as_ref(),
                            Some(replies::LLM_HANDOFF_AFTER_CUT.to_string()),
                        )
                        .await?;
                    summary.outcome = TurnOutcome::HandedOff;
                    summary.event_id = Some(requested.event.event_id);
                }
            }
            Decision::Draft => {
                let request = AnswerRequest {
                    question: input.text.clone(),
                    retrieval: retrieval.unwrap_or_else(|| Arc::new(empty_result())),
                    locale: context.locale.clone(),
                    language: summary.analysis.as_ref().and_then(|a| a.language.clone()),
                    history: facts.history.clone(),
                    site: site.as_str().to_string(),
                };
                let Some(produced) = self
                    .produce_answer(&context.site, request, over_budget, None)
                    .await?
                else {
                    return Ok(answer.finish(summary));
                };
                let draft = DraftAnswer {
                    text: produced.text,
                    citations: produced.citations,
                };
                if !answer.send_text(replies::DRAFT_PENDING).await {
                    return Ok(answer.finish(summary));
                }
                let event = self
                    .store_answer(
                        context,
                        &answer,
                        Vec::new(),
                        confidence,
                        DecisionKind::Draft,
                        Vec::new(),
                        LlmUsage::sum(produced.usage, analysis_usage.clone()),
                    )
                    .await?;
                let team = routing::route(
                    &context.site.routing,
                    summary.analysis.as_ref(),
                    context.tier.as_deref(),
                );
                let pending = PendingHandoff {
                    handoff_id: HandoffId::generate(),
                    reasons: Vec::new(),
                    event_id: event.event_id,
                    requested_at: OffsetDateTime::now_utc(),
                    draft: Some(draft),
                    team: team.map(|team| team.id.clone()),
                    analysis: summary.analysis.as_ref().map(handoff_analysis),
                    tier: context.tier.clone(),
                };
                self.ports
                    .store
                    .put_pending_handoff(&context.site.id, &context.conversation_id, pending)
                    .await?;
                self.outbox.wake();
                if self.ports.helpdesk.adapter_name() == "inbox" {
                    self.auto_assign(&context.site.id, &context.conversation_id, None)
                        .await;
                }
                summary.outcome = TurnOutcome::Answered(DecisionKind::Draft);
                summary.event_id = Some(event.event_id);
            }
        }
        Ok(answer.finish(summary))
    }

    /// Produces the answer to `request`: the LLM's when a model is configured and the site's
    /// budget allows, checked for grounding, with the configured fallback when it fails or is
    /// not grounded; else the extractive answer. With `live`, deltas stream to the visitor as
    /// they arrive; without, the answer is only collected (drafts). `None`: the visitor left.
    async fn produce_answer(
        &self,
        site: &SiteSettings,
        request: AnswerRequest,
        over_budget: bool,
        live: Option<&mut AnswerStream<'_>>,
    ) -> Result<Option<Produced>, EngineError> {
        use std::sync::atomic::Ordering::Relaxed;
        let Some(llm) = self
            .llm
            .as_ref()
            .filter(|_| !request.retrieval.hits.is_empty())
        else {
            return self.extractive(&request, live, Vec::new(), None).await;
        };
        if over_budget {
            self.llm_counters.over_budget.fetch_add(1, Relaxed);
            return self.extractive(&request, live, Vec::new(), None).await;
        }
        if llm.cooling_down() {
            self.llm_counters.cooling_down.fetch_add(1, Relaxed);
            return self.extractive(&request, live, Vec::new(), None).await;
        }
        // Held answers are sent only after the checks.
        let (mut live, held) = if llm.hold_until_checked {
            (None, live)
        } else {
            (live, None)
        };
        let mut pieces = llm.generator.generate(request.clone());
        let mut text = String::new();
        let mut sent_any = false;
        let failure = loop {
            match pieces.next().await {
                Some(Ok(AnswerPiece::Delta(delta))) => {
                    text.push_str(&delta);
                    if let Some(stream) = live.as_deref_mut() {
                        sent_any = true;
                        if !stream.send_delta(delta).await {
                            // The visitor left: dropping `pieces` closes the model's stream.
                            return Ok(None);
                        }
                    }
                }
                Some(Ok(AnswerPiece::Done {
                    citations,
                    usage,
                    evidence,
                })) => break Ok((citations, usage, evidence.unwrap_or_default())),
                Some(Err(err)) => break Err(err),
                None => {
                    break Err(GenerateError::Interrupted(
                        "the answer ended without its end".into(),
                    ));
                }
            }
        };
        drop(pieces);
        let (citations, usage, evidence) = match failure {
            Ok(done) => done,
            Err(err) => {
                self.llm_counters.failed.fetch_add(1, Relaxed);
                if matches!(err, GenerateError::Blocked) {
                    self.llm_counters.canary_blocked.fetch_add(1, Relaxed);
                }
                if matches!(
                    err,
                    GenerateError::Unavailable(_)
                        | GenerateError::Timeout
                        | GenerateError::RateLimited { .. }
                ) {
                    llm.cool_down(&err);
                }
                let live = live.or(held);
                tracing::warn!(site = %site.id, error = %err, deltas_sent = sent_any, "LLM answer failed; falling back");
                // A blocked answer was not "cut off": it could not be used.
                let intro = if matches!(err, GenerateError::Blocked) {
                    replies::LLM_REPLACED
                } else {
                    replies::LLM_INTERRUPTED
                };
                return self
                    .fall_back(
                        llm.on_failure,
                        ReasonCode::LlmFailure,
                        intro,
                        &request,
                        live,
                        sent_any,
                        None,
                    )
                    .await;
            }
        };
        let usage = match usage {
            Some(usage) => Some(self.record_usage(site, llm, usage).await),
            None => None,
        };
        let passages: Vec<String> = evidence.iter().map(|e| e.text.clone()).collect();
        let report = grounding::check(
            &text,
            &passages,
            self.ports.embedder.as_deref(),
            llm.grounding,
        )
        .await?;
        if !report.grounded || text.trim().is_empty() {
            self.llm_counters.ungrounded.fetch_add(1, Relaxed);
            tracing::info!(site = %site.id, grounding.min_score = report.min_score, "LLM answer not grounded in its sources; replacing it");
            return self
                .fall_back(
                    llm.on_ungrounded,
                    ReasonCode::Ungrounded,
                    replies::LLM_REPLACED,
                    &request,
                    live.or(held),
                    sent_any,
                    usage,
                )
                .await;
        }
        if let Some(stream) = held
            && !stream.send_text(&text).await
        {
            return Ok(None);
        }
        self.llm_counters.answered.fetch_add(1, Relaxed);
        // Cited articles; with no citation, the articles of the passages that support it.
        let mut citations = citations;
        if citations.is_empty() {
            for sentence in &report.sentences {
                if let Some(e) = sentence.passage.and_then(|i| evidence.get(i))
                    && !citations
                        .iter()
                        .any(|c| c.article_id == e.citation.article_id)
                {
                    citations.push(e.citation.clone());
                }
            }
        }
        Ok(Some(Produced {
            text,
            citations,
            usage,
            reasons: Vec::new(),
            hand_off: false,
            shown: true,
        }))
    }

    /// The extractive answer, streamed when `live`.
    async fn extractive(
        &self,
        request: &AnswerRequest,
        live: Option<&mut AnswerStream<'_>>,
        reasons: Vec<ReasonCode>,
        usage: Option<LlmUsage>,
    ) -> Result<Option<Produced>, EngineError> {
        let composed =
            extractive::ExtractiveGenerator::new().compose(&request.question, &request.retrieval);
        let shown = live.is_some();
        if let Some(stream) = live
            && !stream.send_text(&composed.text).await
        {
            return Ok(None);
        }
        Ok(Some(Produced {
            text: composed.text,
            citations: composed.citations,
            usage,
            reasons,
            hand_off: false,
            shown,
        }))
    }

    /// Replaces a failed or ungrounded LLM answer. When part of it was already shown, the
    /// stored (and `answer_end`) text starts with `intro` (why it was replaced) before the
    /// extractive answer; the widget renders `answer_end.text` in place of the deltas.
    #[allow(clippy::too_many_arguments)]
    async fn fall_back(
        &self,
        mode: LlmFallback,
        reason: ReasonCode,
        intro: &'static str,
        request: &AnswerRequest,
        live: Option<&mut AnswerStream<'_>>,
        sent_any: bool,
        usage: Option<LlmUsage>,
    ) -> Result<Option<Produced>, EngineError> {
        match mode {
            LlmFallback::Handoff => {
                // Nothing shown: the handoff message alone. Shown: an answer_end replaces the
                // deltas with a short apology, then the handoff.
                let text = if sent_any {
                    replies::LLM_INTERRUPTED_HANDOFF
                } else {
                    replies::LLM_UNAVAILABLE_HANDOFF
                };
                Ok(Some(Produced {
                    text: text.to_string(),
                    citations: Vec::new(),
                    usage,
                    reasons: vec![reason],
                    hand_off: true,
                    shown: sent_any,
                }))
            }
            LlmFallback::Extractive if !sent_any => {
                self.extractive(request, live, vec![reason], usage).await
            }
            LlmFallback::Extractive => {
                let composed = extractive::ExtractiveGenerator::new()
                    .compose(&request.question, &request.retrieval);
                Ok(Some(Produced {
                    text: format!("{intro}\n\n{}", composed.text),
                    citations: composed.citations,
                    usage,
                    reasons: vec![reason],
                    hand_off: false,
                    shown: true,
                }))
            }
        }
    }

    /// True when `site` has a monthly budget and it is spent (a ledger failure lets the turn
    /// use the LLM: the budget is a cost control, not a safety rule).
    async fn over_budget(&self, site: &SiteSettings) -> bool {
        let Some(budget) = site.llm_monthly_budget_usd else {
            return false;
        };
        let month = month_of(OffsetDateTime::now_utc());
        match self.ports.spend.spent(&site.id, &month).await {
            Ok(spent) => spent as f64 >= budget * MICRO_USD_PER_USD,
            Err(err) => {
                tracing::warn!(site = %site.id, error = %err, "cannot read the LLM spend; not enforcing the budget for this turn");
                false
            }
        }
    }

    /// Prices `usage` with `llm.prices` and adds it to the site's monthly spend.
    async fn record_usage(
        &self,
        site: &SiteSettings,
        llm: &LlmRuntime,
        usage: TokenUsage,
    ) -> LlmUsage {
        let cost_usd = llm.price.map(|price| {
            (f64::from(usage.prompt_tokens) * price.input_usd_per_million
                + f64::from(usage.completion_tokens) * price.output_usd_per_million)
                / 1_000_000.0
        });
        if let Some(cost) = cost_usd {
            let micro = (cost * MICRO_USD_PER_USD).round() as u64;
            let month = month_of(OffsetDateTime::now_utc());
            if let Err(err) = self.ports.spend.add_spend(&site.id, &month, micro).await {
                tracing::warn!(site = %site.id, error = %err, "cannot record the LLM spend");
            }
        }
        LlmUsage {
            model: llm.model.clone(),
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            cost_usd,
        }
    }

    async fn store_answer(
        &self,
        context: &ConversationContext,
        answer: &AnswerStream<'_>,
        sources: Vec<Citation>,
        confidence: f32,
        decision: DecisionKind,
        reasons: Vec<ReasonCode>,
        usage: Option<LlmUsage>,
    ) -> Result<StoredEvent, EngineError> {
        let kind = EventKind::AssistantAnswer {
            message_id: MessageId::generate(),
            answer_id: answer.answer_id,
            text: answer.text.clone(),
            sources,
            confidence,
            decision,
            reasons,
            usage,
        };
        Ok(self
            .ports
            .store
            .append_event(
                &context.site.id,
                &context.conversation_id,
                kind,
                OffsetDateTime::now_utc(),
            )
            .await?)
    }

    /// Records a pending handoff with a warm message, unless one is already pending (then its
    /// event is returned again).
    async fn hand_off(
        &self,
        context: &ConversationContext,
        reasons: Vec<ReasonCode>,
        analysis: Option<&TurnAnalysis>,
    ) -> Result<HandoffRequested, EngineError> {
        self.hand_off_with(context, reasons, analysis, None).await
    }

    /// [`Self::hand_off`] with the visitor's message chosen by the caller.
    async fn hand_off_with(
        &self,
        context: &ConversationContext,
        reasons: Vec<ReasonCode>,
        analysis: Option<&TurnAnalysis>,
        message: Option<String>,
    ) -> Result<HandoffRequested, EngineError> {
        let team = routing::route(&context.site.routing, analysis, context.tier.as_deref());
        // Created by its first message or handoff; after that the store checks (atomically)
        // that the conversation is open.
        if !context.persisted.load(Ordering::Acquire) {
            self.ensure_persisted(context).await?;
        }
        let now = OffsetDateTime::now_utc();
        let store = &self.ports.store;
        let (site, id) = (&context.site.id, &context.conversation_id);
        // Outside the team's hours nobody answers live: say when they are back and ask for an
        // email (the widget shows the form for `offline`); the ticket is created all the same.
        let closed = team
            .and_then(|team| team.hours.as_ref())
            .filter(|hours| !hours.is_open(now));
        // With the built-in inbox, nobody online who may take it is "offline" too (the visitor
        // is asked for an email); agents online but busy: pending, in line.
        let inbox = self.ports.helpdesk.adapter_name() == "inbox";
        let online = if inbox && closed.is_none() {
            self.online_if_eligible(team.map(|team| team.id.as_str()), analysis)
                .await?
        } else {
            None
        };
        let nobody_online = inbox && closed.is_none() && online.is_none();
        let (status, queue_position) = match closed {
            Some(_) => (HandoffStatus::Offline, None),
            // The built-in inbox's line (other helpdesks keep their own queues).
            None if inbox => (
                if nobody_online {
                    HandoffStatus::Offline
                } else {
                    HandoffStatus::Pending
                },
                // Set by the store to the place in line when the handoff is recorded.
                Some(0),
            ),
            None => (HandoffStatus::Pending, None),
        };
        let message = match message {
            Some(message) => message,
            None => {
                // Offline: whether the visitor already left an email decides what to ask.
                let email = match status {
                    HandoffStatus::Offline => store
                        .conversation(site, id)
                        .await?
                        .and_then(|conversation| conversation.contact_email),
                    _ => None,
                };
                let email = email.as_ref().map(|email| email.as_str());
                let team_name = team.map_or("team", |team| team.name.as_str());
                let mut text = match closed {
                    Some(hours) => replies::team_offline(
                        team_name,
                        hours.describe_next_opening(now).as_deref(),
                        email,
                    ),
                    None if nobody_online => replies::nobody_available(team_name, email),
                    None => team.map_or_else(
                        || replies::HANDOFF_PENDING.to_string(),
                        |team| replies::handoff_pending_to(&team.name),
                    ),
                };
                if queue_position.is_some() {
                    text.push(' ');
                    text.push_str(replies::IN_LINE);
                }
                text
            }
        };
        let announcement = EventKind::Handoff {
            message_id: MessageId::generate(),
            status,
            team: team.map(|team| team.name.clone()),
            message,
            reasons: reasons.clone(),
            queue_position,
        };
        let handoff = PendingHandoff {
            handoff_id: HandoffId::generate(),
            reasons,
            // Set by the store to the announcing event's id.
            event_id: EventId::ZERO,
            requested_at: now,
            draft: None,
            team: team.map(|team| team.id.clone()),
            analysis: analysis.map(handoff_analysis),
            tier: context.tier.clone(),
        };
        // One atomic store call: two instances (or tabs) asking at once open one handoff.
        let opened = match store
            .open_handoff(site, id, announcement.clone(), handoff.clone())
            .await
        {
            // Expired or erased since this socket opened it: start it again.
            Err(StoreError::NotFound(_)) => {
                self.ensure_persisted(context).await?;
                store.open_handoff(site, id, announcement, handoff).await?
            }
            other => other?,
        };
        match opened {
            OpenedHandoff::Opened(event) => {
                self.outbox.wake();
                if status == HandoffStatus::Pending && inbox {
                    // The online agents were just read (for the status).
                    self.auto_assign(site, id, online).await;
                }
                Ok(HandoffRequested {
                    event,
                    already_pending: false,
                })
            }
            OpenedHandoff::AlreadyPending(event) => {
                // Say where it stands now (an agent may have joined since it was announced).
                let latest = store
                    .events_after(site, id, event.event_id, HISTORY_LIMIT)
                    .await?
                    .into_iter()
                    .rev()
                    .find(|later| matches!(later.kind, EventKind::Handoff { .. }))
                    .unwrap_or(event);
                Ok(HandoffRequested {
                    event: latest,
                    already_pending: true,
                })
            }
            OpenedHandoff::ConversationClosed => Err(EngineError::BadRequest(
                "this conversation is closed; start a new one".into(),
            )),
        }
    }

    /// Handles `request_human`: records a pending handoff (reason `requested_human`).
    ///
    /// Errors: `BadRequest` (conversation closed), `Store`.
    pub async fn request_human(
        &self,
        context: &ConversationContext,
    ) -> Result<HandoffRequested, EngineError> {
        // Routed on what the visitor wrote last (the button carries no text).
        let last = context
            .last_analysis
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        self.hand_off(context, vec![ReasonCode::RequestedHuman], last.as_ref())
            .await
    }

    /// Records whether an answer helped. Errors: `NotFound` (no such answer here), `Store`.
    pub async fn feedback(
        &self,
        context: &ConversationContext,
        answer_id: AnswerId,
        helpful: bool,
    ) -> Result<(), EngineError> {
        if !context.persisted.load(Ordering::Acquire) {
            return Err(EngineError::NotFound(format!(
                "answer {answer_id} is not in this conversation"
            )));
        }
        self.ports
            .store
            .record_feedback(
                &context.site.id,
                &context.conversation_id,
                answer_id,
                helpful,
                OffsetDateTime::now_utc(),
            )
            .await
            .map_err(|err| match err {
                StoreError::NotFound(_) => {
                    EngineError::NotFound(format!("answer {answer_id} is not in this conversation"))
                }
                other => EngineError::Store(other),
            })
    }

    /// Records a CSAT rating (1..5). Errors: `BadRequest` (rating, comment over 2000 chars), `Store`.
    pub async fn csat(
        &self,
        context: &ConversationContext,
        rating: u8,
        comment: Option<String>,
    ) -> Result<(), EngineError> {
        let rating = CsatRating::new(rating).map_err(EngineError::BadRequest)?;
        let comment = comment
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty());
        if comment.as_ref().is_some_and(|c| c.chars().count() > 2000) {
            return Err(EngineError::BadRequest(
                "the CSAT comment is longer than 2000 characters".into(),
            ));
        }
        self.ensure_persisted(context).await?;
        Ok(self
            .ports
            .store
            .record_csat(
                &context.site.id,
                &context.conversation_id,
                Csat { rating, comment },
            )
            .await?)
    }

    /// Records the visitor's email for offline follow-up. Errors: `BadRequest` (not an email), `Store`.
    pub async fn contact(
        &self,
        context: &ConversationContext,
        email: &str,
    ) -> Result<(), EngineError> {
        let email = EmailAddress::parse(email)
            .map_err(|err| EngineError::BadRequest(format!("email: {err}")))?;
        self.ensure_persisted(context).await?;
        Ok(self
            .ports
            .store
            .set_contact(&context.site.id, &context.conversation_id, email)
            .await?)
    }

    /// Checks the store and the retriever.
    pub async fn readiness(&self) -> Readiness {
        let store = self.ports.store.ping().await;
        let retriever = self.ports.retriever.check().await;
        let mut parts = vec![
            PartStatus {
                name: "store",
                adapter: self.ports.store.adapter_name(),
                ok: store.is_ok(),
                required: true,
                detail: store.err().map(|e| e.to_string()),
            },
            PartStatus {
                name: "retriever",
                adapter: self.ports.retriever.adapter_name(),
                ok: retriever.is_ok(),
                required: true,
                detail: retriever.err().map(|e| e.to_string()),
            },
        ];
        // The model is optional: while it is failing, answers are extractive (degraded).
        if let Some(llm) = &self.llm {
            let down = llm.down_reason();
            parts.push(PartStatus {
                name: "llm",
                adapter: "openai-compatible",
                ok: down.is_none(),
                required: false,
                detail: down.map(|why| format!("{why}; answering extractively for now")),
            });
        }
        // The helpdesk is optional too: handoffs wait in the outbox while it fails.
        let last_error = self.outbox.counters().last_error();
        parts.push(PartStatus {
            name: "helpdesk",
            adapter: self.outbox.helpdesk_name(),
            ok: last_error.is_none(),
            required: false,
            detail: last_error
                .map(|why| format!("{why}; handoffs wait in the outbox and are retried")),
        });
        Readiness { parts }
    }
}

/// The conversation facts the policy uses ([`Engine::conversation_facts`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct ConversationFacts {
    previous_visitor_text: Option<String>,
    n_unresolved_exchanges: u32,
    /// The last messages before this one (for the LLM prompt), oldest first.
    history: Vec<HistoryMessage>,
}

/// Streams an answer's text as deltas and remembers it.
struct AnswerStream<'a> {
    answer_id: AnswerId,
    started: Instant,
    out: &'a mpsc::Sender<TurnOutput>,
    text: String,
    seq: u32,
    first_delta_after: Option<Duration>,
}

impl<'a> AnswerStream<'a> {
    fn new(started: Instant, out: &'a mpsc::Sender<TurnOutput>) -> Self {
        Self {
            answer_id: AnswerId::generate(),
            started,
            out,
            text: String::new(),
            seq: 0,
            first_delta_after: None,
        }
    }

    /// Sends one delta; false when the visitor left.
    async fn send_delta(&mut self, text: String) -> bool {
        if text.is_empty() {
            return true;
        }
        self.text.push_str(&text);
        let delta = TurnOutput::Delta {
            answer_id: self.answer_id,
            seq: self.seq,
            text,
        };
        if self.out.send(delta).await.is_err() {
            return false;
        }
        self.first_delta_after
            .get_or_insert_with(|| self.started.elapsed());
        self.seq += 1;
        true
    }

    /// Streams a fixed reply in chunks of a few words; false when the visitor left.
    async fn send_text(&mut self, text: &str) -> bool {
        for chunk in text::stream_chunks(text, extractive::WORDS_PER_DELTA) {
            if !self.send_delta(chunk).await {
                return false;
            }
        }
        true
    }

    fn finish(self, mut summary: TurnSummary) -> TurnSummary {
        summary.n_deltas = self.seq;
        summary.first_delta_after = self.first_delta_after;
        summary
    }
}

fn empty_result() -> SearchResult {
    SearchResult {
        hits: Vec::new(),
        confidence: 0.0,
        keyword_only: false,
        rankings_agree: false,
    }
}

/// The policy's view of a retrieval result.
pub fn retrieval_signals(question: &str, result: &SearchResult) -> RetrievalSignals {
    let citable: Vec<_> = result
        .hits
        .iter()
        .filter(|hit| !hit.internal && !hit.passages.is_empty())
        .collect();
    let keyword_coverage = citable.first().map_or(0.0, |top| {
        let mut stems = text::stem_set(&top.title);
        for passage in &top.passages {
            stems.extend(text::stem_set(&passage.text));
        }
        text::coverage(&text::content_terms(question), &stems)
    });
    RetrievalSignals {
        n_citable_hits: citable.len(),
        confidence: result.confidence,
        keyword_coverage,
    }
}

/// What a ticket shows of a turn's analysis.
fn handoff_analysis(analysis: &TurnAnalysis) -> HandoffAnalysis {
    HandoffAnalysis {
        category: analysis
            .category
            .as_ref()
            .map(|found| match &found.subcategory {
                Some(sub) => format!("{}/{sub}", found.category),
                None => found.category.clone(),
            }),
        priority: analysis.priority,
        language: analysis.language.clone(),
    }
}

/// Events shown in `welcome.history` (messages, not state changes).
fn is_message(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::VisitorMessage { .. }
            | EventKind::AssistantAnswer { .. }
            | EventKind::AgentMessage { .. }
            | EventKind::Handoff { .. }
    )
}

fn origin_allowed(site: &SiteSettings, request: &RequestOrigin) -> bool {
    // Non-browser clients send no Origin; they could forge one anyway.
    let Some(origin) = request.origin.as_deref() else {
        return true;
    };
    let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
    if let Some(host) = request.host.as_deref() {
        let host = host.trim().to_ascii_lowercase();
        if origin == format!("http://{host}") || origin == format!("https://{host}") {
            return true;
        }
    }
    site.allowed_origins.iter().any(|allowed| match allowed {
        AllowedOrigin::Any => true,
        AllowedOrigin::Exact(exact) => *exact == origin,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Routing, Taxonomy};
    use crate::ids::SiteId;

    fn site(allowed_origins: Vec<AllowedOrigin>) -> SiteSettings {
        SiteSettings {
            id: SiteId::parse("demo").expect("valid"),
            public_key: "pk_demo_frontdesk".into(),
            allowed_origins,
            identity_secret: None,
            enforce_identity: false,
            taxonomy: Taxonomy::default(),
            routing: Routing {
                default_team: "support".into(),
                teams: vec![],
                rules: vec![],
            },
            llm_monthly_budget_usd: None,
        }
    }

    fn origin(origin: Option<&str>, host: Option<&str>) -> RequestOrigin {
        RequestOrigin {
            origin: origin.map(String::from),
            host: host.map(String::from),
        }
    }

    #[test]
    fn origins_table() {
        let own_only = site(vec![]);
        let listed = site(vec![AllowedOrigin::Exact("https://www.acme.com".into())]);
        let any = site(vec![AllowedOrigin::Any]);
        let cases = [
            (
                &own_only,
                origin(None, Some("127.0.0.1:8080")),
                true,
                "no Origin header (not a browser)",
            ),
            (
                &own_only,
                origin(Some("http://127.0.0.1:8080"), Some("127.0.0.1:8080")),
                true,
                "the server's own page",
            ),
            (
                &own_only,
                origin(Some("https://evil.example"), Some("127.0.0.1:8080")),
                false,
                "another page",
            ),
            (
                &listed,
                origin(Some("https://WWW.acme.com/"), Some("chat.acme.com")),
                true,
                "a listed origin",
            ),
            (
                &listed,
                origin(Some("http://www.acme.com"), Some("chat.acme.com")),
                false,
                "another scheme",
            ),
            (
                &any,
                origin(Some("https://anything.example"), None),
                true,
                "\"*\"",
            ),
        ];
        for (site, request, expected, name) in cases {
            assert_eq!(origin_allowed(site, &request), expected, "{name}");
        }
    }
}
