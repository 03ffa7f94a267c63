//! The built-in inbox (the default helpdesk): agent sign-in and what an agent does with a
//! handed-off conversation — claim it, reply (relayed live to the visitor's widget on any
//! instance, through the store's events), add internal notes, approve / edit / reject the
//! assistant's draft, close it and ask for a rating.
//!
//! Sign-in: agents come from `[[helpdesk.inbox.agents]]` with Argon2id password hashes (PHC
//! strings, RFC 9106). A session is a bearer token `agent.expiry.mac`, the MAC an HMAC-SHA256
//! (RFC 2104) keyed like resume tokens, so every instance sharing `server.resume_secret`
//! accepts it and nothing is stored.

use crate::config::{InboxAgent, InboxSettings, Secret};
use crate::domain::{
    Conversation, ConversationStatus, EventKind, HandoffStatus, HandoffTicket, PendingHandoff,
    StoredEvent,
};
use crate::engine::{Engine, EngineError, HISTORY_LIMIT};
use crate::ids::{ConversationId, EventId, MessageId, SiteId};
use crate::ports::store::StoreError;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use tracing::warn;

type HmacSha256 = Hmac<Sha256>;

/// Emails sent to visitors who left (this instance).
#[derive(Debug, Default)]
pub struct EmailCounters {
    pub sent: std::sync::atomic::AtomicU64,
    pub failed: std::sync::atomic::AtomicU64,
}

/// How long an inbox agent counts as online after their last request (the inbox page asks
/// every 3 s).
pub const AGENT_ONLINE_FOR: Duration = Duration::from_secs(60);

/// Whether `agent` may take `handoff`: its team's pool, its language, its category (each
/// condition applies only when the agent lists any).
fn eligible(agent: &InboxAgent, handoff: &PendingHandoff) -> bool {
    let team_ok = agent.teams.is_empty()
        || handoff
            .team
            .as_ref()
            .is_some_and(|team| agent.teams.contains(team));
    let analysis = handoff.analysis.as_ref();
    let language_ok = agent.languages.is_empty()
        || analysis
            .and_then(|a| a.language.as_deref())
            .is_none_or(|language| agent.languages.iter().any(|l| l == language));
    let skill_ok = agent.skills.is_empty()
        || analysis
            .and_then(|a| a.category.as_deref())
            .is_none_or(|category| {
                let top = category.split('/').next().unwrap_or(category);
                agent.skills.iter().any(|s| s == category || s == top)
            });
    team_ok && language_ok && skill_ok
}

/// Longest agent reply or note, in characters.
pub const MAX_TEXT_CHARS: usize = 10_000;

/// A signed-in agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    pub id: String,
    /// Shown to the visitor with the agent's messages.
    pub name: String,
}

/// A session handed out at sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// `Authorization: Bearer` value.
    pub token: String,
    pub agent: Agent,
    pub expires_at: OffsetDateTime,
}

/// Why signing in or a session failed (both answer 401; the message is safe to show).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignInError {
    #[error("unknown agent or wrong password")]
    BadCredentials,
    #[error("the session is missing, invalid or expired; sign in again")]
    BadSession,
}

/// Hashes `password` as an Argon2id PHC string (default parameters of the `argon2` crate:
/// 19 MiB, 2 iterations, 1 lane, per OWASP's password storage guidance).
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::encode_b64(uuid::Uuid::new_v4().as_bytes())
        .map_err(|err| format!("salt: {err}"))?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|err| format!("cannot hash the password: {err}"))
}

/// The inbox's agents and sessions.
pub struct InboxAccounts {
    agents: Vec<InboxAgent>,
    key: Vec<u8>,
    session_ttl: Duration,
    /// A hash checked for unknown agents, so they take as long as known ones.
    decoy: String,
    checks: Arc<tokio::sync::Semaphore>,
}

/// Password checks that may run at once (each Argon2id check holds ~19 MiB).
pub const PASSWORD_CHECKS: usize = 2;
/// Longest password checked, in bytes.
pub const MAX_PASSWORD_BYTES: usize = 1024;

impl InboxAccounts {
    /// Agents of `settings`, sessions keyed by `secret` (random when `None`: sessions then
    /// work on this instance only and end with it).
    pub fn new(settings: &InboxSettings, secret: Option<&Secret>) -> Self {
        let key = match secret {
            // A distinct key from the resume tokens' (same secret, different purpose).
            Some(secret) => format!("inbox-session:{}", secret.expose()).into_bytes(),
            None => {
                let mut key = Vec::with_capacity(32);
                key.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
                key.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
                key
            }
        };
        Self {
            agents: settings.agents.clone(),
            key,
            session_ttl: settings.session_ttl,
            decoy: hash_password(&uuid::Uuid::new_v4().to_string()).unwrap_or_default(),
            checks: Arc::new(tokio::sync::Semaphore::new(PASSWORD_CHECKS)),
        }
    }

    /// A permit for one password check (Argon2 takes ~19 MiB and tens of ms of CPU): at most
    /// [`PASSWORD_CHECKS`] run at once; `None` when all are busy (answer 429, try again).
    pub fn password_check_permit(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        Arc::clone(&self.checks).try_acquire_owned().ok()
    }

    /// Adds an agent (the one-time `admin` of a first run).
    pub fn add(&mut self, agent: InboxAgent) {
        self.agents.push(agent);
    }

    pub fn is_empty(&self) -> bool {
        self.agents.is_empty()
    }

    /// The configured agents.
    pub fn agents(&self) -> &[InboxAgent] {
        &self.agents
    }

    /// The session MAC: over the agent id, the expiry and the agent's password hash, so a
    /// changed password (or a restart's new one-time admin password) ends earlier sessions.
    fn mac(&self, agent: &str, expires: i64) -> HmacSha256 {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(agent.as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        mac.update(b"\n");
        if let Some(found) = self.agents.iter().find(|a| a.id == agent) {
            mac.update(found.password_hash.expose().as_bytes());
        }
        mac
    }

    /// Checks the password (Argon2id, constant time) and opens a session.
    ///
    /// Errors: [`SignInError::BadCredentials`] for an unknown agent or a wrong password (the
    /// same error, so agent ids cannot be probed).
    pub fn sign_in(&self, agent_id: &str, password: &str) -> Result<Session, SignInError> {
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(SignInError::BadCredentials);
        }
        let agent = self.agents.iter().find(|agent| agent.id == agent_id);
        // An unknown agent costs the same Argon2 check as a known one (no timing oracle).
        let hash_text = agent.map_or(self.decoy.as_str(), |agent| agent.password_hash.expose());
        let verified = PasswordHash::new(hash_text).ok().is_some_and(|hash| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok()
        });
        let Some(agent) = agent.filter(|_| verified) else {
            return Err(SignInError::BadCredentials);
        };
        let expires_at = OffsetDateTime::now_utc() + self.session_ttl;
        let expires = expires_at.unix_timestamp();
        let mac = hex::encode(self.mac(&agent.id, expires).finalize().into_bytes());
        Ok(Session {
            token: format!("{}.{expires}.{mac}", agent.id),
            agent: Agent {
                id: agent.id.clone(),
                name: agent.name.clone(),
            },
            expires_at,
        })
    }

    /// The agent of a session token.
    ///
    /// Errors: [`SignInError::BadSession`] (malformed, forged, expired, or its agent was
    /// removed from the config).
    pub fn verify(&self, token: &str) -> Result<Agent, SignInError> {
        let mut parts = token.rsplitn(3, '.');
        let (Some(mac), Some(expires), Some(agent_id)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(SignInError::BadSession);
        };
        let expires: i64 = expires.parse().map_err(|_| SignInError::BadSession)?;
        let mac = hex::decode(mac).map_err(|_| SignInError::BadSession)?;
        self.mac(agent_id, expires)
            .verify_slice(&mac)
            .map_err(|_| SignInError::BadSession)?;
        if expires < OffsetDateTime::now_utc().unix_timestamp() {
            return Err(SignInError::BadSession);
        }
        let agent = self
            .agents
            .iter()
            .find(|agent| agent.id == agent_id)
            .ok_or(SignInError::BadSession)?;
        Ok(Agent {
            id: agent.id.clone(),
            name: agent.name.clone(),
        })
    }
}

/// One entry of the inbox queue.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueItem {
    pub conversation: Conversation,
    pub handoff: Option<PendingHandoff>,
    pub ticket: Option<HandoffTicket>,
    /// The team's visitor-safe name.
    pub team: Option<String>,
    /// The visitor's first message.
    pub preview: Option<String>,
    /// 1-based place among the site's unassigned handoffs (`None` once assigned).
    pub position: Option<usize>,
}

/// A conversation as the inbox shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxConversation {
    pub conversation: Conversation,
    pub handoff: Option<PendingHandoff>,
    pub team: Option<String>,
    pub ticket: Option<HandoffTicket>,
    /// Every event, internal notes included.
    pub events: Vec<StoredEvent>,
}

/// What an agent does to a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentAction {
    /// Take the conversation; `take_over` takes it from the agent who has it.
    Claim {
        take_over: bool,
    },
    /// Give the conversation to another agent (by id).
    Assign(String),
    Reply(String),
    Note(String),
    /// Send the draft, as written or edited.
    ApproveDraft(String),
    RejectDraft,
    Close,
}

fn checked_text(text: &str) -> Result<String, EngineError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(EngineError::BadRequest("the text is empty".into()));
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(EngineError::BadRequest(format!(
            "the text is longer than {MAX_TEXT_CHARS} characters"
        )));
    }
    Ok(text.to_string())
}

impl Engine {
    /// Marks `agent` online for [`AGENT_ONLINE_FOR`] (every authenticated inbox request); an
    /// agent who was not online gets the waiting handoffs they may take, up to capacity.
    pub async fn agent_seen(&self, agent: &Agent) {
        let now = OffsetDateTime::now_utc();
        let store = &self.ports.store;
        let was_online = store
            .online_agents(now)
            .await
            .map(|online| online.contains(&agent.id))
            .unwrap_or(true);
        if let Err(err) = store.touch_agent(&agent.id, now + AGENT_ONLINE_FOR).await {
            tracing::debug!(error = %err, "agent presence not recorded");
            return;
        }
        if !was_online && let Err(err) = self.assign_waiting_to(agent).await {
            warn!(error = %err, agent = agent.id, "waiting handoffs not assigned to an agent who came online");
        }
    }

    /// The online inbox agents, when one who may take a handoff for `team` (and the language
    /// and category of `analysis`) is among them; `None` when nobody eligible is online.
    ///
    /// Errors: `Store`.
    pub(crate) async fn online_if_eligible(
        &self,
        team: Option<&str>,
        analysis: Option<&crate::ports::analyzer::TurnAnalysis>,
    ) -> Result<Option<Vec<String>>, EngineError> {
        let online = self
            .ports
            .store
            .online_agents(OffsetDateTime::now_utc())
            .await?;
        if online.is_empty() {
            return Ok(None);
        }
        let probe = PendingHandoff {
            handoff_id: crate::ids::HandoffId::generate(),
            reasons: Vec::new(),
            event_id: EventId::ZERO,
            requested_at: OffsetDateTime::now_utc(),
            draft: None,
            team: team.map(str::to_string),
            analysis: analysis.map(super::handoff_analysis),
            tier: None,
        };
        let any = self
            .inbox
            .agents()
            .iter()
            .any(|agent| online.contains(&agent.id) && eligible(agent, &probe));
        Ok(any.then_some(online))
    }

    /// An agent's open conversations, every site together.
    async fn agent_load(&self, agent: &str) -> Result<usize, EngineError> {
        let mut load = 0;
        for site in &self.sites {
            load += self.ports.store.agent_load(&site.id, agent).await?;
        }
        Ok(load)
    }

    /// Workload-aware assignment of a new handoff (built-in inbox): among the online agents
    /// eligible for it (team pool, language, skill), the one with the fewest open
    /// conversations below their capacity takes it (ties: the first listed). Nobody free: it
    /// waits in the queue. `online`: the online agents when the caller just read them. A
    /// failure is logged: the handoff stays in the queue either way.
    pub(crate) async fn auto_assign(
        &self,
        site: &SiteId,
        id: &ConversationId,
        online: Option<Vec<String>>,
    ) {
        if let Err(err) = self.try_auto_assign(site, id, online).await {
            warn!(error = %err, conversation = %id, "automatic assignment failed; the handoff waits in the queue");
        }
    }

    async fn try_auto_assign(
        &self,
        site: &SiteId,
        id: &ConversationId,
        online: Option<Vec<String>>,
    ) -> Result<(), EngineError> {
        let store = &self.ports.store;
        let online = match online {
            Some(online) => online,
            None => store.online_agents(OffsetDateTime::now_utc()).await?,
        };
        if online.is_empty() {
            return Ok(());
        }
        let (Some(conversation), Some(handoff)) = (
            store.conversation(site, id).await?,
            store.pending_handoff(site, id).await?,
        ) else {
            return Ok(());
        };
        if conversation.assignee.is_some()
            || conversation.status != ConversationStatus::WaitingForAgent
        {
            return Ok(());
        }
        let mut best: Option<(usize, &InboxAgent)> = None;
        for agent in self.inbox.agents() {
            if !online.contains(&agent.id) || !eligible(agent, &handoff) {
                continue;
            }
            let load = self.agent_load(&agent.id).await?;
            if load < agent.capacity as usize && best.is_none_or(|(fewest, _)| load < fewest) {
                best = Some((load, agent));
            }
        }
        if let Some((_, agent)) = best {
            let capacity = agent.capacity as usize;
            let agent = Agent {
                id: agent.id.clone(),
                name: agent.name.clone(),
            };
            self.claim_as(
                &agent,
                site,
                &conversation,
                Some(&handoff),
                false,
                Some(capacity),
            )
            .await?;
        }
        Ok(())
    }

    /// Gives `agent` the oldest waiting handoffs they are eligible for, up to their capacity
    /// (after they closed or resolved one).
    async fn assign_waiting_to(&self, agent: &Agent) -> Result<(), EngineError> {
        let Some(config) = self.inbox.agents().iter().find(|a| a.id == agent.id) else {
            return Ok(());
        };
        let store = &self.ports.store;
        let mut load = self.agent_load(&agent.id).await?;
        for site in &self.sites {
            for id in store.handoff_queue(&site.id).await? {
                if load >= config.capacity as usize {
                    return Ok(());
                }
                let (Some(conversation), Some(handoff)) = (
                    store.conversation(&site.id, &id).await?,
                    store.pending_handoff(&site.id, &id).await?,
                ) else {
                    continue;
                };
                if conversation.assignee.is_none()
                    && conversation.status == ConversationStatus::WaitingForAgent
                    && eligible(config, &handoff)
                {
                    let claimed = self
                        .claim_as(
                            agent,
                            &site.id,
                            &conversation,
                            Some(&handoff),
                            false,
                            Some(config.capacity as usize),
                        )
                        .await?;
                    if matches!(claimed, crate::ports::store::Claimed::Assigned { .. }) {
                        load += 1;
                    }
                }
            }
        }
        Ok(())
    }

    fn team_name(&self, site: &SiteId, handoff: Option<&PendingHandoff>) -> Option<String> {
        let team_id = handoff?.team.as_deref()?;
        let site = self.sites.iter().find(|s| &s.id == site)?;
        site.routing
            .teams
            .iter()
            .find(|team| team.id == team_id)
            .map(|team| team.name.clone())
    }

    /// Every site's open handoffs, oldest first within a site.
    ///
    /// Errors: `Store`.
    pub async fn inbox_queue(&self) -> Result<Vec<QueueItem>, EngineError> {
        let store = &self.ports.store;
        let mut items = Vec::new();
        for site in &self.sites {
            let mut position = 0;
            for id in store.handoff_queue(&site.id).await? {
                let Some(conversation) = store.conversation(&site.id, &id).await? else {
                    continue;
                };
                let handoff = store.pending_handoff(&site.id, &id).await?;
                let ticket = store.handoff_ticket(&site.id, &id).await?;
                let preview = store
                    .events_after(&site.id, &id, EventId::ZERO, 20)
                    .await?
                    .into_iter()
                    .find_map(|event| match event.kind {
                        EventKind::VisitorMessage { text, .. } => Some(text),
                        _ => None,
                    });
                let waiting = conversation.status == ConversationStatus::WaitingForAgent
                    && conversation.assignee.is_none();
                if waiting {
                    position += 1;
                }
                items.push(QueueItem {
                    team: self.team_name(&site.id, handoff.as_ref()),
                    conversation,
                    handoff,
                    ticket,
                    preview,
                    position: waiting.then_some(position),
                });
            }
        }
        Ok(items)
    }

    fn site_of(&self, site: &SiteId) -> Result<(), EngineError> {
        if self.sites.iter().any(|s| &s.id == site) {
            Ok(())
        } else {
            Err(EngineError::NotFound(format!("no site {site}")))
        }
    }

    /// A conversation with everything the agent needs (one that was handed to a person).
    ///
    /// Errors: `NotFound` (no such conversation, or never handed off), `Store`.
    pub async fn inbox_conversation(
        &self,
        site: &SiteId,
        id: &ConversationId,
    ) -> Result<InboxConversation, EngineError> {
        self.site_of(site)?;
        let store = &self.ports.store;
        let conversation = store
            .conversation(site, id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("no conversation {id}")))?;
        let handoff = store.pending_handoff(site, id).await?;
        let ticket = store.handoff_ticket(site, id).await?;
        // Agents see conversations handed to a person (now or before), not every chat.
        if handoff.is_none() && ticket.is_none() {
            return Err(EngineError::NotFound(format!(
                "conversation {id} was never handed to a person"
            )));
        }
        Ok(InboxConversation {
            team: self.team_name(site, handoff.as_ref()),
            ticket,
            events: store
                .events_after(site, id, EventId::ZERO, HISTORY_LIMIT)
                .await?,
            conversation,
            handoff,
        })
    }

    /// Carries out `action` by `agent` on a conversation; what the visitor should see is
    /// appended as events, so it reaches their widget on whichever instance holds the socket.
    ///
    /// Errors: `NotFound` (no such site or conversation), `BadRequest` (empty or too long text,
    /// no draft to approve or reject, the conversation is closed), `Store`.
    pub async fn agent_action(
        &self,
        agent: &Agent,
        site: &SiteId,
        id: &ConversationId,
        action: AgentAction,
    ) -> Result<(), EngineError> {
        self.site_of(site)?;
        let store = &self.ports.store;
        let now = OffsetDateTime::now_utc();
        let conversation = store
            .conversation(site, id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("no conversation {id}")))?;
        if conversation.status == ConversationStatus::Closed {
            return Err(EngineError::BadRequest(
                "this conversation is closed".into(),
            ));
        }
        let handoff = store.pending_handoff(site, id).await?;
        match action {
            AgentAction::Claim { take_over } => {
                if !take_over {
                    self.not_someone_elses(agent, &conversation)?;
                }
                self.claim(agent, site, &conversation, handoff.as_ref(), take_over)
                    .await
            }
            AgentAction::Assign(to) => {
                self.not_someone_elses(agent, &conversation)?;
                let Some(target) = self.inbox.agents().iter().find(|a| a.id == to) else {
                    return Err(EngineError::BadRequest(format!("there is no agent {to:?}")));
                };
                let target = Agent {
                    id: target.id.clone(),
                    name: target.name.clone(),
                };
                self.claim(&target, site, &conversation, handoff.as_ref(), true)
                    .await
            }
            AgentAction::Reply(text) => {
                self.not_someone_elses(agent, &conversation)?;
                if handoff.is_none() {
                    return Err(EngineError::BadRequest(
                        "nobody asked for a person in this conversation; the assistant has it"
                            .into(),
                    ));
                }
                let text = checked_text(&text)?;
                if conversation.assignee.as_deref() != Some(agent.id.as_str()) && handoff.is_some()
                {
                    self.claim(agent, site, &conversation, handoff.as_ref(), false)
                        .await?;
                }
                self.append_agent_message(agent, site, id, text, now).await
            }
            AgentAction::Note(text) => {
                let text = checked_text(&text)?;
                let kind = EventKind::InternalNote {
                    message_id: MessageId::generate(),
                    agent_name: agent.name.clone(),
                    text,
                };
                store.append_event(site, id, kind, now).await?;
                Ok(())
            }
            AgentAction::ApproveDraft(text) => {
                self.not_someone_elses(agent, &conversation)?;
                if handoff.as_ref().and_then(|h| h.draft.as_ref()).is_none() {
                    return Err(EngineError::BadRequest(
                        "there is no draft to approve".into(),
                    ));
                }
                let text = checked_text(&text)?;
                self.append_agent_message(agent, site, id, text, now)
                    .await?;
                // The agent answered for the assistant; it takes the conversation back.
                store.resolve_handoff(site, id, now).await?;
                self.assign_waiting_to(agent).await
            }
            AgentAction::RejectDraft => {
                self.not_someone_elses(agent, &conversation)?;
                let Some(pending) = handoff.as_ref().filter(|h| h.draft.is_some()) else {
                    return Err(EngineError::BadRequest(
                        "there is no draft to reject".into(),
                    ));
                };
                // The draft is discarded; the handoff stays (with this agent).
                store
                    .put_pending_handoff(
                        site,
                        id,
                        PendingHandoff {
                            draft: None,
                            ..pending.clone()
                        },
                    )
                    .await?;
                let kind = EventKind::InternalNote {
                    message_id: MessageId::generate(),
                    agent_name: agent.name.clone(),
                    text: "Rejected the assistant's draft; answering personally.".into(),
                };
                store.append_event(site, id, kind, now).await?;
                if conversation.assignee.as_deref() == Some(agent.id.as_str()) {
                    // Already theirs: recording the handoff again reset the status.
                    store.assign_handoff(site, id, &agent.id, now).await?;
                    Ok(())
                } else {
                    self.claim(agent, site, &conversation, handoff.as_ref(), false)
                        .await
                }
            }
            AgentAction::Close => {
                self.not_someone_elses(agent, &conversation)?;
                store
                    .append_event(
                        site,
                        id,
                        EventKind::ConversationClosed {
                            csat_requested: true,
                        },
                        now,
                    )
                    .await?;
                store
                    .set_status(site, id, ConversationStatus::Closed, now)
                    .await?;
                // Capacity freed: the next waiting handoff this agent may take.
                self.assign_waiting_to(agent).await
            }
        }
    }

    /// `BadRequest` when another agent has the conversation (claim with `take_over` to take it).
    fn not_someone_elses(
        &self,
        agent: &Agent,
        conversation: &Conversation,
    ) -> Result<(), EngineError> {
        match conversation.assignee.as_deref() {
            Some(other) if other != agent.id => Err(self.held_by(other)),
            _ => Ok(()),
        }
    }

    /// Takes the handoff for `agent` (see [`ConversationStore::claim_handoff`]) and, when it
    /// changed hands, tells the visitor who joined. Automatic assignment passes the agent's
    /// `capacity`; only an explicit take-over takes it from another agent.
    ///
    /// Errors: `BadRequest` (no handoff, resolved or closed meanwhile), `Store`.
    async fn claim_as(
        &self,
        agent: &Agent,
        site: &SiteId,
        conversation: &Conversation,
        handoff: Option<&PendingHandoff>,
        take_over: bool,
        capacity: Option<usize>,
    ) -> Result<crate::ports::store::Claimed, EngineError> {
        use crate::ports::store::Claimed;
        let id = &conversation.id;
        if handoff.is_none() {
            return Err(EngineError::BadRequest(
                "nobody asked for a person in this conversation".into(),
            ));
        }
        let now = OffsetDateTime::now_utc();
        let claimed = match self
            .ports
            .store
            .claim_handoff(site, id, &agent.id, now, take_over, capacity)
            .await
        {
            Err(StoreError::Rejected(_)) => {
                return Err(EngineError::BadRequest(
                    "this handoff was resolved or the conversation closed meanwhile".into(),
                ));
            }
            other => other?,
        };
        if let Claimed::Assigned { previous } = &claimed {
            let kind = EventKind::Handoff {
                message_id: MessageId::generate(),
                status: HandoffStatus::Assigned,
                team: self.team_name(site, handoff),
                message: super::replies::agent_joined(&agent.name),
                reasons: Vec::new(),
                queue_position: None,
            };
            self.ports.store.append_event(site, id, kind, now).await?;
            // The agent it was taken from has room again.
            if let Some(previous) = previous.as_deref().filter(|p| *p != agent.id) {
                let freed = self
                    .inbox
                    .agents()
                    .iter()
                    .find(|a| a.id == previous)
                    .map(|a| Agent {
                        id: a.id.clone(),
                        name: a.name.clone(),
                    });
                if let Some(freed) = freed {
                    Box::pin(self.assign_waiting_to(&freed)).await?;
                }
            }
        }
        Ok(claimed)
    }

    /// [`Self::claim_as`] for an agent's own action: another agent's conversation is refused
    /// unless `take_over`.
    async fn claim(
        &self,
        agent: &Agent,
        site: &SiteId,
        conversation: &Conversation,
        handoff: Option<&PendingHandoff>,
        take_over: bool,
    ) -> Result<(), EngineError> {
        match self
            .claim_as(agent, site, conversation, handoff, take_over, None)
            .await?
        {
            crate::ports::store::Claimed::HeldBy(other) => Err(self.held_by(&other)),
            _ => Ok(()),
        }
    }

    fn held_by(&self, other: &str) -> EngineError {
        let name = self
            .inbox
            .agents()
            .iter()
            .find(|a| a.id == other)
            .map_or(other, |a| a.name.as_str());
        EngineError::BadRequest(format!(
            "{name} has this conversation; claim it with \"take_over\": true to take it over"
        ))
    }

    async fn append_agent_message(
        &self,
        agent: &Agent,
        site: &SiteId,
        id: &ConversationId,
        text: String,
        at: OffsetDateTime,
    ) -> Result<(), EngineError> {
        let kind = EventKind::AgentMessage {
            message_id: MessageId::generate(),
            agent_name: agent.name.clone(),
            text: text.clone(),
        };
        self.ports.store.append_event(site, id, kind, at).await?;
        self.email_if_away(agent, site, id, &text).await;
        Ok(())
    }

    /// Marks socket `socket` as showing the conversation for `ttl` (refreshed every heartbeat).
    /// A store failure is logged: presence only decides whether replies are also emailed.
    pub async fn visitor_present(
        &self,
        context: &super::ConversationContext,
        socket: &str,
        ttl: Duration,
    ) {
        let until = OffsetDateTime::now_utc() + ttl;
        if let Err(err) = self
            .ports
            .store
            .touch_presence(&context.site.id, &context.conversation_id, socket, until)
            .await
        {
            tracing::debug!(error = %err, "presence not recorded");
        }
    }

    /// Socket `socket` closed.
    pub async fn visitor_left(&self, context: &super::ConversationContext, socket: &str) {
        if let Err(err) = self
            .ports
            .store
            .clear_presence(&context.site.id, &context.conversation_id, socket)
            .await
        {
            tracing::debug!(error = %err, "presence not cleared");
        }
    }

    /// Emails an agent's reply with the transcript when no widget shows the conversation and
    /// the visitor left an address (`contact`). Sent in the background with retries (backon,
    /// 5 attempts over about half a minute); a failure is logged and counted, and the reply
    /// still waits in the widget for the visitor's return.
    async fn email_if_away(&self, agent: &Agent, site: &SiteId, id: &ConversationId, text: &str) {
        let Some(mailer) = self.ports.mailer.clone() else {
            return;
        };
        let store = &self.ports.store;
        let now = OffsetDateTime::now_utc();
        match store.is_present(site, id, now).await {
            Ok(true) => return,
            Ok(false) => {}
            Err(err) => {
                tracing::warn!(error = %err, "presence unknown; emailing the reply");
            }
        }
        let Ok(Some(conversation)) = store.conversation(site, id).await else {
            return;
        };
        let Some(to) = conversation.contact_email else {
            return;
        };
        let events = store
            .events_after(site, id, EventId::ZERO, HISTORY_LIMIT)
            .await
            .unwrap_or_default();
        let transcript =
            crate::engine::summary::transcript_text(&crate::engine::ticket::transcript(&events));
        let email = crate::ports::mailer::OutgoingEmail {
            to: to.as_str().to_string(),
            subject: format!("{} replied to your conversation", agent.name),
            text: format!(
                "{name} from our team replied:\n\n{text}\n\n\
                 Open the chat on our site to answer; the conversation is kept there.\n\n\
                 Your conversation so far:\n\n{transcript}",
                name = agent.name,
            ),
        };
        let counters = Arc::clone(&self.email_counters);
        tokio::spawn(async move {
            use backon::Retryable;
            let sent = (|| async { mailer.send(&email).await })
                .retry(
                    backon::ExponentialBuilder::default()
                        .with_min_delay(Duration::from_secs(1))
                        .with_max_times(4)
                        .with_jitter(),
                )
                .when(|err| matches!(err, crate::ports::mailer::MailError::Unavailable(_)))
                .await;
            match sent {
                Ok(()) => {
                    counters
                        .sent
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Err(err) => {
                    counters
                        .failed
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::warn!(error = %err, "the reply email was not sent");
                }
            }
        });
    }
}

/// An update of a helpdesk ticket, as its webhook reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketUpdate {
    /// Adapter name (`zendesk`, `freshdesk`).
    pub helpdesk: &'static str,
    pub ticket_id: String,
    /// The agent's latest public reply, when this update carries one.
    pub public_reply: Option<String>,
    /// Who wrote it (shown to the visitor).
    pub author_name: Option<String>,
    /// The ticket is solved or closed: close the conversation and ask for a rating.
    pub solved: bool,
}

/// What became of a [`TicketUpdate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketUpdateOutcome {
    /// The reply (and/or the close) reached the conversation.
    Relayed,
    /// Not a ticket Frontdesk created (another channel), or its conversation expired.
    UnknownTicket,
    /// Nothing to relay (no public reply, not solved, or the conversation is already closed).
    NothingToDo,
}

impl Engine {
    /// Relays a helpdesk ticket update to the conversation the ticket was created for: the
    /// agent's public reply as an `agent_message` (live in the widget on any instance), a
    /// solved ticket as `conversation_closed` with a rating request.
    ///
    /// Errors: `BadRequest` (reply too long), `Store`.
    pub async fn relay_ticket_update(
        &self,
        update: TicketUpdate,
    ) -> Result<TicketUpdateOutcome, EngineError> {
        let store = &self.ports.store;
        let Some((site, id)) = store
            .ticket_conversation(update.helpdesk, &update.ticket_id)
            .await?
        else {
            return Ok(TicketUpdateOutcome::UnknownTicket);
        };
        let Some(conversation) = store.conversation(&site, &id).await? else {
            return Ok(TicketUpdateOutcome::UnknownTicket);
        };
        // Only the ticket of the handoff that is open now speaks for the conversation (an
        // earlier handoff's ticket must not reach a visitor the assistant is answering again).
        let current = store.handoff_ticket(&site, &id).await?;
        let pending = store.pending_handoff(&site, &id).await?;
        let is_current = current.as_ref().is_some_and(|ticket| {
            ticket.helpdesk == update.helpdesk
                && ticket.id == update.ticket_id
                && pending
                    .as_ref()
                    .is_some_and(|pending| pending.handoff_id == ticket.handoff_id)
        });
        if !is_current && conversation.status != ConversationStatus::Closed {
            return Ok(TicketUpdateOutcome::UnknownTicket);
        }
        if conversation.status == ConversationStatus::Closed {
            return Ok(TicketUpdateOutcome::NothingToDo);
        }
        let now = OffsetDateTime::now_utc();
        let reply = update
            .public_reply
            .as_deref()
            .map(str::trim)
            .filter(|text| !text.is_empty());
        let mut relayed = false;
        if let Some(text) = reply {
            let agent = Agent {
                id: format!("{}-agent", update.helpdesk),
                name: update
                    .author_name
                    .as_deref()
                    .map(str::trim)
                    .filter(|name| !name.is_empty())
                    .unwrap_or("Support")
                    .to_string(),
            };
            // A helpdesk reply is never refused for its length (the helpdesk would not send it
            // again): a very long one is cut, saying so.
            let text = if text.chars().count() > MAX_TEXT_CHARS {
                let cut: String = text.chars().take(MAX_TEXT_CHARS - 200).collect();
                format!(
                    "{}…\n\n(This reply was shortened here; our team has the full text.)",
                    cut.trim_end()
                )
            } else {
                text.to_string()
            };
            if conversation.status == ConversationStatus::WaitingForAgent {
                // The first reply: the agent took it over in the helpdesk; the widget is told.
                if pending.is_some() {
                    self.claim(&agent, &site, &conversation, pending.as_ref(), true)
                        .await?;
                }
            }
            self.append_agent_message(&agent, &site, &id, text, now)
                .await?;
            relayed = true;
        }
        if update.solved {
            store
                .append_event(
                    &site,
                    &id,
                    EventKind::ConversationClosed {
                        csat_requested: true,
                    },
                    now,
                )
                .await?;
            store
                .set_status(&site, &id, ConversationStatus::Closed, now)
                .await?;
            relayed = true;
        }
        Ok(if relayed {
            TicketUpdateOutcome::Relayed
        } else {
            TicketUpdateOutcome::NothingToDo
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accounts() -> InboxAccounts {
        let settings = InboxSettings {
            agents: vec![InboxAgent {
                id: "sam".into(),
                name: "Sam".into(),
                password_hash: Secret::new(hash_password("correct horse").unwrap()),
                teams: Vec::new(),
                languages: Vec::new(),
                skills: Vec::new(),
                capacity: 3,
            }],
            session_ttl: Duration::from_secs(3600),
        };
        InboxAccounts::new(&settings, Some(&Secret::new("server-secret")))
    }

    #[test]
    fn sign_in_checks_the_argon2_hash_and_the_session_verifies() {
        let accounts = accounts();
        assert_eq!(
            accounts.sign_in("sam", "wrong").unwrap_err(),
            SignInError::BadCredentials
        );
        assert_eq!(
            accounts.sign_in("nobody", "correct horse").unwrap_err(),
            SignInError::BadCredentials
        );
        let session = accounts.sign_in("sam", "correct horse").unwrap();
        assert!(session.token.starts_with("sam."));
        let agent = accounts.verify(&session.token).unwrap();
        assert_eq!(agent.name, "Sam");
        // Another instance with the same secret accepts it; one with another does not.
        let twin = InboxAccounts {
            agents: accounts.agents.clone(),
            key: accounts.key.clone(),
            session_ttl: accounts.session_ttl,
            decoy: accounts.decoy.clone(),
            checks: Arc::new(tokio::sync::Semaphore::new(1)),
        };
        assert!(twin.verify(&session.token).is_ok());
        let other = InboxAccounts::new(
            &InboxSettings {
                agents: accounts.agents.clone(),
                session_ttl: accounts.session_ttl,
            },
            Some(&Secret::new("another-secret")),
        );
        assert_eq!(other.verify(&session.token), Err(SignInError::BadSession));
    }

    #[test]
    fn forged_or_expired_sessions_are_refused() {
        let accounts = accounts();
        let session = accounts.sign_in("sam", "correct horse").unwrap();
        let forged = session.token.replacen("sam.", "eve.", 1);
        assert_eq!(accounts.verify(&forged), Err(SignInError::BadSession));
        let (rest, _) = session.token.rsplit_once('.').unwrap();
        let (_, expires) = rest.rsplit_once('.').unwrap();
        let later = session.token.replace(
            &format!(".{expires}."),
            &format!(".{}.", expires.parse::<i64>().unwrap() + 10),
        );
        assert_eq!(accounts.verify(&later), Err(SignInError::BadSession));
        let expired = format!(
            "sam.{0}.{1}",
            1,
            hex::encode(accounts.mac("sam", 1).finalize().into_bytes())
        );
        assert_eq!(accounts.verify(&expired), Err(SignInError::BadSession));
        assert_eq!(accounts.verify("garbage"), Err(SignInError::BadSession));
    }
}
