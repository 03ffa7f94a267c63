//! The `ConversationStore` port: conversations, their ordered events, pending handoffs.
//!
//! Designed for Redis as well as memory: every call is keyed by site then conversation, event
//! ids are assigned by the store (per conversation, from 1, strictly increasing), the visitor
//! message append is idempotent by `client_message_id`, and [`ConversationStore::subscribe`]
//! delivers events appended by any instance (Redis pub/sub or streams) in event-id order.

use crate::domain::{
    Conversation, ConversationStatus, Csat, EmailAddress, EventKind, HandoffTicket, PendingHandoff,
    StoredEvent,
};
use crate::ids::{
    AnswerId, ClientMessageId, ConversationId, EventId, MessageId, SiteId, VisitorId,
};
use futures_util::stream::BoxStream;
use std::time::Duration;
use time::OffsetDateTime;

/// Errors of a conversation store; each is something a caller can act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The conversation (or the answer it refers to) does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The store refuses the call for now (e.g. too many connections).
    #[error("store is rate-limiting requests")]
    RateLimited { retry_after: Option<Duration> },
    /// The store did not answer in time.
    #[error("store timed out")]
    Timeout,
    /// The store cannot be reached.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store rejected the data (corrupt record, wrong type).
    #[error("store rejected the operation: {0}")]
    Rejected(String),
    /// Anything else, with its source.
    #[error("store error")]
    Other(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// What a conversation is created with.
#[derive(Debug, Clone, PartialEq)]
pub struct NewConversation {
    pub site: SiteId,
    pub id: ConversationId,
    pub visitor: VisitorId,
    pub user_id: Option<String>,
    pub locale: Option<String>,
    pub page_url: Option<String>,
    pub created_at: OffsetDateTime,
}

/// The outcome of an idempotent visitor-message append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendedMessage {
    /// The stored message's id (the first append's id for a duplicate).
    pub message_id: MessageId,
    /// The stored message's event id (the first append's for a duplicate).
    pub event_id: EventId,
    /// True when this `client_message_id` was already stored: nothing was appended.
    pub duplicate: bool,
    /// The conversation's status when the message was stored (for a duplicate or a refused
    /// message: its status now). Read in the same atomic step as the append, so the caller
    /// needs no separate read to decide whether the assistant answers.
    pub status: ConversationStatus,
}

/// The outcome of [`ConversationStore::open_handoff`].
#[derive(Debug, Clone, PartialEq)]
pub enum OpenedHandoff {
    /// A new handoff, announced by this (new) `Handoff` event.
    Opened(StoredEvent),
    /// A handoff was already pending: nothing was stored; its announcing event.
    AlreadyPending(StoredEvent),
    /// The conversation is closed: nothing was stored.
    ConversationClosed,
}

/// A handoff the outbox claimed for delivery to the helpdesk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueHandoff {
    pub site: SiteId,
    pub conversation: ConversationId,
    /// Failed attempts so far (0 for a first attempt).
    pub attempts: u32,
}

/// The outcome of [`ConversationStore::claim_handoff`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed {
    /// Assigned to the agent now (`previous`: whom it was taken from).
    Assigned { previous: Option<String> },
    /// It was already theirs: nothing changed.
    AlreadyTheirs,
    /// Another agent has it (and no take-over was asked): nothing changed.
    HeldBy(String),
    /// The agent has `capacity` open conversations on this site already: nothing changed.
    AtCapacity,
}

/// The outbox's size, for `/readyz` and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutboxStats {
    /// Handoffs waiting for their ticket (due now, leased, or waiting to retry).
    pub queued: u64,
    /// When the longest-waiting one is due next (`None` when empty).
    pub oldest_due: Option<OffsetDateTime>,
}

/// Events of one conversation as they are appended (by any instance), in event-id order.
/// A subscriber that falls behind still gets every event (adapters re-read what it missed).
pub type EventStream = BoxStream<'static, StoredEvent>;

/// Durable conversation state. Every method takes the site (tenant) first.
#[async_trait::async_trait]
pub trait ConversationStore: Send + Sync {
    /// Adapter name for logs and `/readyz` (`memory`, `redis`).
    fn adapter_name(&self) -> &'static str;

    /// Cheap round trip for readiness checks.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Creates the conversation, or returns the stored one unchanged if it already exists
    /// (idempotent; status `bot`, `last_event_id` 0 when new).
    async fn create_conversation(&self, new: NewConversation) -> Result<Conversation, StoreError>;

    /// The conversation's metadata, `None` when it does not exist (or expired).
    async fn conversation(
        &self,
        site: &SiteId,
        id: &ConversationId,
    ) -> Result<Option<Conversation>, StoreError>;

    /// Ids of a visitor's conversations, oldest first.
    async fn visitor_conversations(
        &self,
        site: &SiteId,
        visitor: &VisitorId,
    ) -> Result<Vec<ConversationId>, StoreError>;

    /// Sets the status (and `status_changed_at`). `NotFound` if the conversation does not exist.
    async fn set_status(
        &self,
        site: &SiteId,
        id: &ConversationId,
        status: ConversationStatus,
        at: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Appends a visitor message once per `client_message_id`: the first call stores it with
    /// `message_id` and a new event id; later calls with the same client id store nothing and
    /// return the first call's ids with `duplicate = true`. A closed conversation takes no new
    /// message: nothing is stored and the result has `status: Closed` and event id 0.
    /// `NotFound` if no conversation.
    async fn append_visitor_message(
        &self,
        site: &SiteId,
        id: &ConversationId,
        client_message_id: ClientMessageId,
        message_id: MessageId,
        text: &str,
        at: OffsetDateTime,
    ) -> Result<AppendedMessage, StoreError>;

    /// Appends an event and returns it with its new event id. `NotFound` if no conversation.
    /// (Visitor messages go through [`Self::append_visitor_message`].)
    async fn append_event(
        &self,
        site: &SiteId,
        id: &ConversationId,
        kind: EventKind,
        at: OffsetDateTime,
    ) -> Result<StoredEvent, StoreError>;

    /// Up to `limit` events with id greater than `after`, oldest first (empty for an unknown
    /// conversation).
    async fn events_after(
        &self,
        site: &SiteId,
        id: &ConversationId,
        after: EventId,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError>;

    /// Events appended from now on (the conversation need not exist yet).
    async fn subscribe(
        &self,
        site: &SiteId,
        id: &ConversationId,
    ) -> Result<EventStream, StoreError>;

    /// Records a pending handoff and moves the conversation to `waiting_for_agent`; like
    /// [`Self::open_handoff`], it enters the outbox and the site's queue in the same step.
    /// A pending handoff it replaces keeps its `handoff_id` (one ticket per handoff).
    /// `NotFound` if no conversation.
    async fn put_pending_handoff(
        &self,
        site: &SiteId,
        id: &ConversationId,
        handoff: PendingHandoff,
    ) -> Result<(), StoreError>;

    /// Opens a handoff, atomically: unless a handoff announced by a `Handoff` event is already
    /// pending, appends `announcement` (an [`EventKind::Handoff`]), records `handoff` with its
    /// `event_id` set to the new event's id, and moves the conversation to
    /// `waiting_for_agent`, in one atomic step with entering the handoff in the outbox (due
    /// now: see [`Self::claim_due_handoffs`]) and the site's queue ([`Self::handoff_queue`]),
    /// so a handoff that was recorded is always delivered. When one is pending, stores
    /// nothing and returns its event as `AlreadyPending` (so two instances handling the same
    /// request store one handoff). A pending draft (announced by an answer) is replaced and
    /// its `handoff_id` kept. When the announcement's `queue_position` is `Some(_)`, the store
    /// sets it, in the same step, to the handoff's place among the site's unassigned handoffs
    /// (1 = next), so simultaneous handoffs get distinct places. A closed conversation gets none
    /// (`ConversationClosed`). `Rejected` if `announcement` is not a `Handoff`; `NotFound` if
    /// no conversation.
    async fn open_handoff(
        &self,
        site: &SiteId,
        id: &ConversationId,
        announcement: EventKind,
        handoff: PendingHandoff,
    ) -> Result<OpenedHandoff, StoreError>;

    /// The pending handoff, if any.
    async fn pending_handoff(
        &self,
        site: &SiteId,
        id: &ConversationId,
    ) -> Result<Option<PendingHandoff>, StoreError>;

    /// Records (or replaces) the visitor's feedback on an answer. `NotFound` if the
    /// conversation has no answer with this id.
    async fn record_feedback(
        &self,
        site: &SiteId,
        id: &ConversationId,
        answer_id: AnswerId,
        helpful: bool,
        at: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// The recorded feedback on each of `answer_ids`, in the same order (`None`: no feedback,
    /// or no such answer), in one call.
    async fn feedback_on_answers(
        &self,
        site: &SiteId,
        id: &ConversationId,
        answer_ids: &[AnswerId],
    ) -> Result<Vec<Option<bool>>, StoreError>;

    /// The recorded feedback on an answer, if any.
    async fn feedback(
        &self,
        site: &SiteId,
        id: &ConversationId,
        answer_id: AnswerId,
    ) -> Result<Option<bool>, StoreError>;

    /// Records (or replaces) the conversation's CSAT. `NotFound` if no conversation.
    async fn record_csat(
        &self,
        site: &SiteId,
        id: &ConversationId,
        csat: Csat,
    ) -> Result<(), StoreError>;

    /// Records the visitor's email for offline follow-up. `NotFound` if no conversation.
    async fn set_contact(
        &self,
        site: &SiteId,
        id: &ConversationId,
        email: EmailAddress,
    ) -> Result<(), StoreError>;

    /// Erases everything stored about a visitor of `site` (GDPR right to erasure): each of
    /// their conversations with its events, pending handoff, feedback, CSAT and contact email,
    /// and the visitor → conversations index. Returns how many conversations were deleted
    /// (0 for an unknown visitor). Other visitors' data is untouched.
    async fn delete_visitor(&self, site: &SiteId, visitor: &VisitorId)
    -> Result<usize, StoreError>;

    /// Claims up to `limit` handoffs of any site whose delivery is due at `now` (oldest due
    /// first), leasing each until `lease_until`: until then no other claim returns it, and
    /// after it (a worker that died mid-attempt) it is due again. Atomic across instances.
    async fn claim_due_handoffs(
        &self,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<DueHandoff>, StoreError>;

    /// Schedules the next delivery attempt of a claimed handoff at `at` and counts a failed
    /// attempt. Does nothing if the handoff left the outbox meanwhile.
    async fn retry_handoff_at(
        &self,
        site: &SiteId,
        id: &ConversationId,
        at: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Takes the conversation out of the outbox (nothing left to deliver: the conversation or
    /// its handoff is gone).
    async fn drop_from_outbox(&self, site: &SiteId, id: &ConversationId) -> Result<(), StoreError>;

    /// Records the ticket created for the pending handoff `ticket.handoff_id` (and indexes it
    /// by helpdesk and ticket id for [`Self::ticket_conversation`]), and takes the handoff out
    /// of the outbox. When that handoff is no longer pending (resolved, erased), records
    /// nothing and returns `false`; the outbox entry is dropped unless another handoff of the
    /// conversation is pending (it has its own delivery).
    async fn record_ticket(
        &self,
        site: &SiteId,
        id: &ConversationId,
        ticket: HandoffTicket,
    ) -> Result<bool, StoreError>;

    /// The last ticket recorded for the conversation, if any.
    async fn handoff_ticket(
        &self,
        site: &SiteId,
        id: &ConversationId,
    ) -> Result<Option<HandoffTicket>, StoreError>;

    /// The conversation a helpdesk's ticket belongs to (for its webhooks), if any.
    async fn ticket_conversation(
        &self,
        helpdesk: &str,
        ticket_id: &str,
    ) -> Result<Option<(SiteId, ConversationId)>, StoreError>;

    /// Size of the outbox.
    async fn outbox_stats(&self) -> Result<OutboxStats, StoreError>;

    /// The site's open handoffs (pending or assigned), in the order they entered the queue.
    async fn handoff_queue(&self, site: &SiteId) -> Result<Vec<ConversationId>, StoreError>;

    /// How many of the site's open handoffs are assigned to inbox agent `agent` (their load).
    async fn agent_load(&self, site: &SiteId, agent: &str) -> Result<usize, StoreError>;

    /// Records that inbox agent `agent` is online until `until` (the inbox page refreshes it).
    async fn touch_agent(&self, agent: &str, until: OffsetDateTime) -> Result<(), StoreError>;

    /// Inbox agents online at `now`, by id.
    async fn online_agents(&self, now: OffsetDateTime) -> Result<Vec<String>, StoreError>;

    /// Assigns the conversation's pending handoff to `agent` (replacing any assignee) and moves
    /// it to `with_agent`. `NotFound` if no conversation; `Rejected` if no handoff is pending or
    /// the conversation is closed.
    async fn assign_handoff(
        &self,
        site: &SiteId,
        id: &ConversationId,
        agent: &str,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.claim_handoff(site, id, agent, at, true, None)
            .await
            .map(|_| ())
    }

    /// Assigns the pending handoff to `agent`, atomically checking who has it now: another
    /// agent keeps it unless `take_over`, and with `capacity` an agent who already has that
    /// many of the site's open handoffs gets none. `NotFound` if no conversation; `Rejected`
    /// if no handoff is pending or the conversation is closed.
    async fn claim_handoff(
        &self,
        site: &SiteId,
        id: &ConversationId,
        agent: &str,
        at: OffsetDateTime,
        take_over: bool,
        capacity: Option<usize>,
    ) -> Result<Claimed, StoreError>;

    /// Ends the pending handoff without closing the conversation (a draft approved or
    /// rejected; the agent hands back to the assistant): drops the pending record and the
    /// assignee, leaves the queue, and the assistant answers again (`bot`). A closed
    /// conversation stays closed. `NotFound` if no conversation.
    async fn resolve_handoff(
        &self,
        site: &SiteId,
        id: &ConversationId,
        at: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Records that socket `socket` (any instance) shows the conversation to its visitor until
    /// `until`; sockets refresh it every heartbeat.
    async fn touch_presence(
        &self,
        site: &SiteId,
        id: &ConversationId,
        socket: &str,
        until: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Socket `socket` closed.
    async fn clear_presence(
        &self,
        site: &SiteId,
        id: &ConversationId,
        socket: &str,
    ) -> Result<(), StoreError>;

    /// Whether any socket shows the conversation at `now` (else an agent's reply is emailed).
    async fn is_present(
        &self,
        site: &SiteId,
        id: &ConversationId,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Remembers webhook delivery `key` (a Zendesk invocation id or signature, an Intercom
    /// notification id) for `ttl`: `true` the first time, `false` when any instance saw it
    /// within `ttl`. Atomic (two racing deliveries: one `true`).
    async fn first_delivery(&self, key: &str, ttl: Duration) -> Result<bool, StoreError>;

    /// Forgets delivery `key` (handling it failed: the helpdesk's retry must be taken).
    async fn forget_delivery(&self, key: &str) -> Result<(), StoreError>;

    /// How long until the conversation expires: `Some` only for a closed conversation
    /// (`store.closed_ttl` after its `status_changed_at`, saturating at zero), `None` while it
    /// is open (open conversations and open handoffs never expire). `NotFound` if the
    /// conversation does not exist. For operators and the conformance suite.
    async fn expires_in(
        &self,
        site: &SiteId,
        id: &ConversationId,
    ) -> Result<Option<Duration>, StoreError>;
}

/// The conformance suite every `ConversationStore` adapter passes (run it from the adapter's
/// tests with a fresh, empty store). Panics with a message naming the broken rule.
#[cfg(any(test, feature = "test-support"))]
pub mod conformance {
    use super::*;
    use crate::domain::{Citation, DecisionKind, HandoffStatus, HandoffTicket, ReasonCode};
    use crate::ids::HandoffId;
    use futures_util::StreamExt;

    fn new_conversation(site: &SiteId) -> NewConversation {
        NewConversation {
            site: site.clone(),
            id: ConversationId::generate(),
            visitor: VisitorId::generate(),
            user_id: None,
            locale: Some("en".into()),
            page_url: None,
            created_at: OffsetDateTime::now_utc(),
        }
    }

    /// Stores a visitor message with fresh client and message ids.
    async fn send(
        store: &dyn ConversationStore,
        site: &SiteId,
        conversation: &ConversationId,
        text: &str,
        now: OffsetDateTime,
    ) -> Result<AppendedMessage, StoreError> {
        store
            .append_visitor_message(
                site,
                conversation,
                ClientMessageId::generate(),
                MessageId::generate(),
                text,
                now,
            )
            .await
    }

    fn answer(answer_id: AnswerId) -> EventKind {
        EventKind::AssistantAnswer {
            message_id: MessageId::generate(),
            answer_id,
            text: "Tap Forgot password.".into(),
            sources: vec![Citation {
                article_id: frontdesk_kb::DocumentId::parse("reset-password").expect("a valid id"),
                title: "Reset your password".into(),
                url: Some("/reset-password".into()),
            }],
            confidence: 0.9,
            decision: DecisionKind::Answer,
            reasons: vec![],
            usage: None,
        }
    }

    /// Runs every check against `store`, whose `store.closed_ttl` is `closed_ttl` (at least
    /// a minute, so the expiry checks never race a real expiry).
    pub async fn run_all(store: &dyn ConversationStore, closed_ttl: Duration) {
        creates_idempotently(store).await;
        appends_visitor_messages_once(store).await;
        racing_duplicates_store_one_message(store).await;
        event_ids_increase_and_page(store).await;
        separates_sites(store).await;
        subscribers_see_later_events_in_order(store).await;
        replay_then_live_events_meet_exactly_once(store).await;
        records_handoffs_feedback_csat_contact(store).await;
        racing_handoffs_open_one(store).await;
        handoffs_wait_in_the_outbox_until_their_ticket_is_recorded(store).await;
        the_queue_holds_open_handoffs_until_resolved_or_closed(store).await;
        simultaneous_handoffs_get_distinct_places_in_line(store).await;
        presence_lasts_while_any_socket_refreshes_it(store).await;
        webhook_deliveries_are_taken_once(store).await;
        messages_carry_the_status_and_closed_conversations_take_none(store).await;
        unknown_conversations_are_not_found(store).await;
        only_closed_conversations_expire(store, closed_ttl).await;
        delete_visitor_erases_everything_of_theirs(store).await;
    }

    async fn creates_idempotently(store: &dyn ConversationStore) {
        let site = SiteId::parse("conf-a").expect("valid");
        let new = new_conversation(&site);
        let first = store
            .create_conversation(new.clone())
            .await
            .expect("create");
        assert_eq!(first.status, ConversationStatus::Bot);
        assert_eq!(first.last_event_id, EventId::ZERO);
        store
            .set_status(
                &site,
                &new.id,
                ConversationStatus::WithAgent,
                OffsetDateTime::now_utc(),
            )
            .await
            .expect("status");
        let again = store
            .create_conversation(new.clone())
            .await
            .expect("create twice");
        assert_eq!(
            again.status,
            ConversationStatus::WithAgent,
            "a second create must not reset the conversation"
        );
        let listed = store
            .visitor_conversations(&site, &new.visitor)
            .await
            .expect("list");
        assert_eq!(listed, vec![new.id], "visitor → conversations");
    }

    async fn appends_visitor_messages_once(store: &dyn ConversationStore) {
        let site = SiteId::parse("conf-a").expect("valid");
        let new = new_conversation(&site);
        store
            .create_conversation(new.clone())
            .await
            .expect("create");
        let client_id = ClientMessageId::generate();
        let first_id = MessageId::generate();
        let now = OffsetDateTime::now_utc();
        let first = store
            .append_visitor_message(&site, &new.id, client_id, first_id, "hello", now)
            .await
            .expect("append");
        assert_eq!(
            first,
            AppendedMessage {
                message_id: first_id,
                event_id: EventId(1),
                duplicate: false,
                status: ConversationStatus::Bot,
            }
        );
        let second = store
            .append_visitor_message(
                &site,
                &new.id,
                client_id,
                MessageId::generate(),
                "hello",
                now,
            )
            .await
            .expect("append twice");
        assert_eq!(
            second,
            AppendedMessage {
                message_id: first_id,
                event_id: EventId(1),
                duplicate: true,
                status: ConversationStatus::Bot,
            }
        );
        let events = store
            .events_after(&site, &new.id, EventId::ZERO, 100)
            .await
            .expect("events");
        assert_eq!(events.len(), 1, "a duplicate must not be stored");
        let conversation = store
            .conversation(&site, &new.id)
            .await
            .expect("get")
            .expect("exists");
        assert_eq!(conversation.last_event_id, EventId(1));
    }

    async fn event_ids_increase_and_page(store: &dyn ConversationStore) {
        let site = SiteId::parse("conf-a").expect("valid");
        let new = new_conversation(&site);
        store
            .create_conversation(new.clone())
            .await
            .expect("create");
        let now = OffsetDateTime::now_utc();
        for n in 1..=5u64 {
            let event = if n % 2 == 1 {
                let appended = send(store, &site, &new.id, "q", now).await.expect("append");
                appended.event_id
            } else {
                store
                    .append_event(&site, &new.id, answer(AnswerId::generate()), now)
                    .await
                    .expect("append")
                    .event_id
            };
            assert_eq!(
                event,
                EventId(n),
                "event ids are 1, 2, 3, … per conversation"
            );
        }
        let after_two = store
            .events_after(&site, &new.id, EventId(2), 100)
            .await
            .expect("events");
        assert_eq!(
            after_two
                .iter()
                .map(|e| e.event_id.get())
                .collect::<Vec<_>>(),
            vec![3, 4, 5]
        );
        let limited = store
            .events_after(&site, &new.id, EventId::ZERO, 2)
            .await
            .expect("events");
        assert_eq!(
            limited.iter().map(|e| e.event_id.get()).collect::<Vec<_>>(),
            vec![1, 2]
        );
        let none = store
            .events_after(&site, &new.id, EventId(5), 100)
            .await
            .expect("events");
        assert!(none.is_empty());
    }

    async fn separates_sites(store: &dyn ConversationStore) {
        let site_a = SiteId::parse("conf-a").expect("valid");
        let site_b = SiteId::parse("conf-b").expect("valid");
        let new = new_conversation(&site_a);
        store
            .create_conversation(new.clone())
            .await
            .expect("create");
        assert!(
            store
                .conversation(&site_b, &new.id)
                .await
                .expect("get")
                .is_none(),
            "sites are separate tenants"
        );
        assert!(
            store
                .events_after(&site_b, &new.id, EventId::ZERO, 10)
                .await
                .expect("events")
                .is_empty()
        );
    }

    async fn subscribers_see_later_events_in_order(store: &dyn ConversationStore) {
        let site = SiteId::parse("conf-a").expect("valid");
        let new = new_conversation(&site);
        let mut stream = store
            .subscribe(&site, &new.id)
            .await
            .expect("subscribe before the conversation exists");
        store
            .create_conversation(new.clone())
            .await
            .expect("create");
        let now = OffsetDateTime::now_utc();
        send(store, &site, &new.id, "q", now).await.expect("append");
        for _ in 0..300 {
            store
                .append_event(&site, &new.id, answer(AnswerId::generate()), now)
                .await
                .expect("append");
        }
        let mut seen = Vec::new();
        while seen.len() < 301 {
            let next = tokio::time::timeout(std::time::Duration::from_secs(5), stream.next())
                .await
                .expect("subscribers get every event, even after falling behind")
                .expect("stream open");
            seen.push(next.event_id.get());
        }
        assert_eq!(
            seen,
            (1..=301).collect::<Vec<_>>(),
            "in order, none missed, none repeated"
        );
    }

    async fn records_handoffs_feedback_csat_contact(store: &dyn ConversationStore) {
        let site = SiteId::parse("conf-a").expect("valid");
        let new = new_conversation(&site);
        store
            .create_conversation(new.clone())
            .await
            .expect("create");
        let now = OffsetDateTime::now_utc();
        assert!(
            store
                .pending_handoff(&site, &new.id)
                .await
                .expect("get")
                .is_none()
        );
        let event = store
            .append_event(
                &site,
                &new.id,
                EventKind::Handoff {
                    message_id: MessageId::generate(),
                    status: HandoffStatus::Pending,
                    team: None,
                    message: "Connecting you".into(),
                    reasons: vec![ReasonCode::RequestedHuman],
                    queue_position: None,
                },
                now,
            )
            .await
            .expect("append");
        let handoff = PendingHandoff {
            handoff_id: HandoffId::generate(),
            team: None,
            analysis: None,
            tier: None,
            reasons: vec![ReasonCode::RequestedHuman],
            event_id: event.event_id,
            requested_at: now,
            draft: None,
        };
        store
            .put_pending_handoff(&site, &new.id, handoff.clone())
            .await
            .expect("put");
        assert_eq!(
            store.pending_handoff(&site, &new.id).await.expect("get"),
            Some(handoff)
        );
        let conversation = store
            .conversation(&site, &new.id)
            .await
            .expect("get")
            .expect("exists");
        assert_eq!(conversation.status, ConversationStatus::WaitingForAgent);

        let answer_id = AnswerId::generate();
        store
            .append_event(&site, &new.id, answer(answer_id), now)
            .await
            .expect("append");
        store
            .record_feedback(&site, &new.id, answer_id, false, now)
            .await
            .expect("feedback");
        store
            .record_feedback(&site, &new.id, answer_id, true, now)
            .await
            .expect("feedback replaced");
        assert_eq!(
            store
                .feedback(&site, &new.id, answer_id)
                .await
                .expect("get"),
            Some(true)
        );
        let unknown = store
            .record_feedback(&site, &new.id, AnswerId::generate(), true, now)
            .await;
        assert!(
            matches!(unknown, Err(StoreError::NotFound(_))),
            "feedback on an unknown answer: {unknown:?}"
        );

        let csat = Csat {
            rating: crate::domain::CsatRating::new(4).expect("valid"),
            comment: Some("quick".into()),
        };
        store
            .record_csat(&site, &new.id, csat.clone())
            .await
            .expect("csat");
        let email = EmailAddress::parse("ada@example.com").expect("valid");
        store
            .set_contact(&site, &new.id, email.clone())
            .await
            .expect("contact");
        let conversation = store
            .conversation(&site, &new.id)
            .await
            .expect("get")
            .expect("exists");
        assert_eq!(conversation.csat, Some(csat));
        assert_eq!(conversation.contact_email, Some(email));
    }

    async fn unknown_conversations_are_not_found(store: &dyn ConversationStore) {
        let site = SiteId::parse("conf-a").expect("valid");
        let id = ConversationId::generate();
        let now = OffsetDateTime::now_utc();
        let append = send(store, &site, &id, "q", now).await;
        assert!(matches!(append, Err(StoreError::NotFound(_))), "{append:?}");
        let event = store
            .append_event(&site, &id, answer(AnswerId::generate()), now)
            .await;
        assert!(matches!(event, Err(StoreError::NotFound(_))), "{event:?}");
        let status = store
            .set_status(&site, &id, ConversationStatus::Closed, now)
            .await;
        assert!(matches!(status, Err(StoreError::NotFound(_))), "{status:?}");
    }
    /// Eight tasks race the same `client_message_id`: exactly one stores it, every caller
    /// gets the first one's ids, the log holds one event (one turn).
    async fn racing_duplicates_store_one_message(store: &dyn ConversationStore) {
        let site = SiteId::parse("conf-a").expect("valid");
        let new = new_conversation(&site);
        store
            .create_conversation(new.clone())
            .await
            .expect("create");
        let client_id = ClientMessageId::generate();
        let now = OffsetDateTime::now_utc();
        let message_ids: Vec<MessageId> = (0..8).map(|_| MessageId::generate()).collect();
        let results = futures_util::future::join_all(message_ids.iter().map(|message_id| {
            store.append_visitor_message(&site, &new.id, client_id, *message_id, "hi", now)
        }))
        .await;
        let results: Vec<AppendedMessage> =
            results.into_iter().map(|r| r.expect("append")).collect();
        let winners: Vec<&AppendedMessage> = results.iter().filter(|r| !r.duplicate).collect();
        assert_eq!(winners.len(), 1, "exactly one racer stores: {results:?}");
        let winner = *winners[0];
        assert!(message_ids.contains(&winner.message_id));
        assert_eq!(winner.event_id, EventId(1));
        for result in &results {
            assert_eq!(
                (result.message_id, result.event_id),
                (winner.message_id, winner.event_id),
                "duplicates get the first append's ids"
            );
        }
        let events = store
            .events_after(&site, &new.id, EventId::ZERO, 100)
            .await
            .expect("events");
        assert_eq!(events.len(), 1, "one stored message, so one turn");
    }

    /// The hello pattern: subscribe, read the log after `last_event_id`, then follow the
    /// stream; with appends racing the read, every event arrives once, in order.
    async fn replay_then_live_events_meet_exactly_once(store: &dyn ConversationStore) {
        let site = SiteId::parse("conf-a").expect("valid");
        let new = new_conversation(&site);
        store
            .create_conversation(new.clone())
            .await
            .expect("create");
        let now = OffsetDateTime::now_utc();
        for _ in 0..10 {
            store
                .append_event(&site, &new.id, answer(AnswerId::generate()), now)
                .await
                .expect("append");
        }
        let mut stream = store.subscribe(&site, &new.id).await.expect("subscribe");
        let appends = async {
            for _ in 0..20 {
                store
                    .append_event(&site, &new.id, answer(AnswerId::generate()), now)
                    .await
                    .expect("append");
            }
        };
        let replay = async {
            store
                .events_after(&site, &new.id, EventId(4), 1000)
                .await
                .expect("events")
        };
        let ((), replay) = tokio::join!(appends, replay);
        let mut seen: Vec<u64> = replay.iter().map(|e| e.event_id.get()).collect();
        assert_eq!(
            seen.first(),
            Some(&5),
            "replay starts right after last_event_id"
        );
        assert!(
            seen.windows(2).all(|w| w[1] == w[0] + 1),
            "the replay is contiguous: {seen:?}"
        );
        while seen.last() != Some(&30) {
            let next = tokio::time::timeout(std::time::Duration::from_secs(5), stream.next())
                .await
                .expect("live events keep coming")
                .expect("stream open");
            // The socket's rule: skip what was already sent.
            if next.event_id.get() > *seen.last().unwrap_or(&4) {
                seen.push(next.event_id.get());
            }
        }
        assert_eq!(seen, (5..=30).collect::<Vec<_>>(), "no loss, no duplicate");
        let stored = store
            .events_after(&site, &new.id, EventId::ZERO, 1000)
            .await
            .expect("events");
        assert_eq!(
            stored.iter().map(|e| e.event_id.get()).collect::<Vec<_>>(),
            (1..=30).collect::<Vec<_>>(),
            "the log is in event-id order"
        );
    }

    /// `closed_ttl` applies to closed conversations only; reopening or a pending handoff
    /// removes the expiry.
    async fn only_closed_conversations_expire(store: &dyn ConversationStore, closed_ttl: Duration) {
        let site = SiteId::parse("conf-a").expect("valid");
        let new = new_conversation(&site);
        store
            .create_conversation(new.clone())
            .await
            .expect("create");
        let now = OffsetDateTime::now_utc();
        send(store, &site, &new.id, "q", now).await.expect("append");
        assert_eq!(
            store.expires_in(&site, &new.id).await.expect("ttl"),
            None,
            "an open conversation never expires"
        );
        let closed_at = OffsetDateTime::now_utc();
        store
            .set_status(&site, &new.id, ConversationStatus::Closed, closed_at)
            .await
            .expect("close");
        store
            .append_event(
                &site,
                &new.id,
                EventKind::ConversationClosed {
                    csat_requested: true,
                },
                closed_at,
            )
            .await
            .expect("append after closing");
        let left = store
            .expires_in(&site, &new.id)
            .await
            .expect("ttl")
            .expect("a closed conversation expires");
        let slack = Duration::from_secs(10);
        assert!(
            left <= closed_ttl && left + slack >= closed_ttl,
            "expires closed_ttl ({closed_ttl:?}) after closing, got {left:?}"
        );
        store
            .set_status(
                &site,
                &new.id,
                ConversationStatus::Bot,
                OffsetDateTime::now_utc(),
            )
            .await
            .expect("reopen");
        assert_eq!(
            store.expires_in(&site, &new.id).await.expect("ttl"),
            None,
            "reopening removes the expiry"
        );
        store
            .set_status(
                &site,
                &new.id,
                ConversationStatus::Closed,
                OffsetDateTime::now_utc(),
            )
            .await
            .expect("close again");
        let pending = PendingHandoff {
            handoff_id: HandoffId::generate(),
            team: None,
            analysis: None,
            tier: None,
            reasons: vec![ReasonCode::RequestedHuman],
            event_id: EventId(1),
            requested_at: OffsetDateTime::now_utc(),
            draft: None,
        };
        assert!(
            matches!(
                store
                    .put_pending_handoff(&site, &new.id, pending.clone())
                    .await,
                Err(StoreError::Rejected(_))
            ),
            "a closed conversation takes no pending handoff"
        );
        store
            .set_status(
                &site,
                &new.id,
                ConversationStatus::Bot,
                OffsetDateTime::now_utc(),
            )
            .await
            .expect("reopen");
        store
            .put_pending_handoff(&site, &new.id, pending)
            .await
            .expect("handoff");
        assert_eq!(
            store.expires_in(&site, &new.id).await.expect("ttl"),
            None,
            "an open handoff never expires"
        );
        assert_eq!(
            store
                .events_after(&site, &new.id, EventId::ZERO, 10)
                .await
                .expect("events")
                .len(),
            2,
            "nothing was lost on the way"
        );
        let missing = store.expires_in(&site, &ConversationId::generate()).await;
        assert!(
            matches!(missing, Err(StoreError::NotFound(_))),
            "{missing:?}"
        );
    }

    /// GDPR erasure: the visitor's conversations (events, handoff, feedback, CSAT, contact)
    /// and index are gone; another visitor's, and the same visitor id on another site, stay.
    async fn delete_visitor_erases_everything_of_theirs(store: &dyn ConversationStore) {
        let site = SiteId::parse("conf-a").expect("valid");
        let other_site = SiteId::parse("conf-b").expect("valid");
        let visitor = VisitorId::generate();
        let now = OffsetDateTime::now_utc();
        let mut theirs = Vec::new();
        for _ in 0..2 {
            let new = NewConversation {
                visitor: visitor.clone(),
                ..new_conversation(&site)
            };
            store
                .create_conversation(new.clone())
                .await
                .expect("create");
            send(store, &site, &new.id, "my email is ada@example.com", now)
                .await
                .expect("append");
            let answer_id = AnswerId::generate();
            store
                .append_event(&site, &new.id, answer(answer_id), now)
                .await
                .expect("answer");
            store
                .record_feedback(&site, &new.id, answer_id, true, now)
                .await
                .expect("feedback");
            store
                .set_contact(
                    &site,
                    &new.id,
                    EmailAddress::parse("ada@example.com").expect("valid"),
                )
                .await
                .expect("contact");
            theirs.push((new.id, answer_id));
        }
        store
            .put_pending_handoff(
                &site,
                &theirs[0].0,
                PendingHandoff {
                    handoff_id: HandoffId::generate(),
                    team: None,
                    analysis: None,
                    tier: None,
                    reasons: vec![ReasonCode::RequestedHuman],
                    event_id: EventId(2),
                    requested_at: now,
                    draft: None,
                },
            )
            .await
            .expect("handoff");
        store
            .set_status(&site, &theirs[1].0, ConversationStatus::Closed, now)
            .await
            .expect("close");
        let someone_else = new_conversation(&site);
        store
            .create_conversation(someone_else.clone())
            .await
            .expect("create");
        let same_visitor_elsewhere = NewConversation {
            visitor: visitor.clone(),
            ..new_conversation(&other_site)
        };
        store
            .create_conversation(same_visitor_elsewhere.clone())
            .await
            .expect("create");

        assert_eq!(
            store.delete_visitor(&site, &visitor).await.expect("delete"),
            2
        );
        for (id, answer_id) in &theirs {
            assert!(store.conversation(&site, id).await.expect("get").is_none());
            assert!(
                store
                    .events_after(&site, id, EventId::ZERO, 10)
                    .await
                    .expect("events")
                    .is_empty()
            );
            assert!(
                store
                    .pending_handoff(&site, id)
                    .await
                    .expect("get")
                    .is_none()
            );
            assert_eq!(
                store.feedback(&site, id, *answer_id).await.expect("get"),
                None
            );
        }
        assert!(
            store
                .visitor_conversations(&site, &visitor)
                .await
                .expect("list")
                .is_empty()
        );
        assert!(
            store
                .conversation(&site, &someone_else.id)
                .await
                .expect("get")
                .is_some(),
            "another visitor's conversation stays"
        );
        assert_eq!(
            store
                .visitor_conversations(&other_site, &visitor)
                .await
                .expect("list"),
            vec![same_visitor_elsewhere.id],
            "sites are separate tenants"
        );
        assert_eq!(
            store
                .delete_visitor(&site, &visitor)
                .await
                .expect("delete again"),
            0,
            "erasure is idempotent"
        );
    }
    /// Four visitors asking at once each get their own place in line (read in the same atomic
    /// step as the handoff, not before it).
    async fn simultaneous_handoffs_get_distinct_places_in_line(store: &dyn ConversationStore) {
        let site = SiteId::parse("queue-race").expect("valid");
        let now = OffsetDateTime::now_utc();
        let mut conversations = Vec::new();
        for _ in 0..4 {
            let new = new_conversation(&site);
            store
                .create_conversation(new.clone())
                .await
                .expect("create");
            conversations.push(new.id);
        }
        let opened = futures_util::future::join_all(conversations.iter().map(|id| {
            let requested = requested_handoff(now);
            store.open_handoff(&site, id, in_line_announcement(), requested)
        }))
        .await;
        let mut positions: Vec<u32> = opened
            .into_iter()
            .map(|opened| match opened.expect("open") {
                OpenedHandoff::Opened(StoredEvent {
                    kind:
                        EventKind::Handoff {
                            queue_position: Some(position),
                            ..
                        },
                    ..
                }) => position,
                other => panic!("not an opened handoff: {other:?}"),
            })
            .collect();
        positions.sort_unstable();
        assert_eq!(positions, [1, 2, 3, 4]);
    }

    /// A delivery key is taken once until forgotten; racing takers get one `true`.
    async fn webhook_deliveries_are_taken_once(store: &dyn ConversationStore) {
        let key = format!("zendesk:{}", uuid::Uuid::new_v4());
        let minute = Duration::from_secs(60);
        let racing =
            futures_util::future::join_all((0..4).map(|_| store.first_delivery(&key, minute)))
                .await;
        let firsts = racing
            .into_iter()
            .map(|r| r.expect("delivery"))
            .filter(|first| *first)
            .count();
        assert_eq!(firsts, 1, "one of four racing deliveries is the first");
        store.forget_delivery(&key).await.expect("forget");
        assert!(
            store.first_delivery(&key, minute).await.expect("delivery"),
            "a forgotten delivery is taken again (the helpdesk's retry)"
        );
    }

    /// A conversation is present while one of its sockets has touched it recently; closing
    /// one of two tabs leaves it present; a socket that stopped refreshing (its instance died)
    /// stops counting when its time runs out.
    async fn presence_lasts_while_any_socket_refreshes_it(store: &dyn ConversationStore) {
        let site = SiteId::parse("presence").expect("valid");
        let id = ConversationId::generate();
        let now = OffsetDateTime::now_utc();
        assert!(!store.is_present(&site, &id, now).await.expect("present"));
        let minute = Duration::from_secs(60);
        store
            .touch_presence(&site, &id, "tab-1", now + minute)
            .await
            .expect("touch");
        store
            .touch_presence(&site, &id, "tab-2", now + minute * 2)
            .await
            .expect("touch");
        assert!(store.is_present(&site, &id, now).await.expect("present"));
        store
            .clear_presence(&site, &id, "tab-2")
            .await
            .expect("clear");
        assert!(
            store.is_present(&site, &id, now).await.expect("present"),
            "another tab still shows it"
        );
        assert!(
            !store
                .is_present(&site, &id, now + minute + Duration::from_secs(1))
                .await
                .expect("present"),
            "a socket that stopped refreshing no longer counts"
        );
        store
            .clear_presence(&site, &id, "tab-1")
            .await
            .expect("clear");
        assert!(!store.is_present(&site, &id, now).await.expect("present"));
    }

    /// A handoff the visitor asked for at `at` (its event id is set by the store).
    fn requested_handoff(at: OffsetDateTime) -> PendingHandoff {
        PendingHandoff {
            handoff_id: HandoffId::generate(),
            team: None,
            analysis: None,
            tier: None,
            reasons: vec![ReasonCode::RequestedHuman],
            event_id: EventId::ZERO,
            requested_at: at,
            draft: None,
        }
    }

    /// A handoff announcement asking the store for the visitor's place in line.
    fn in_line_announcement() -> EventKind {
        EventKind::Handoff {
            message_id: MessageId::generate(),
            status: HandoffStatus::Pending,
            team: None,
            message: "You're in line".into(),
            reasons: vec![ReasonCode::RequestedHuman],
            queue_position: Some(0),
        }
    }

    /// Claims of `site`'s handoffs (the outbox is shared by every site and test).
    async fn claim(
        store: &dyn ConversationStore,
        site: &SiteId,
        now: OffsetDateTime,
        lease: Duration,
    ) -> Vec<DueHandoff> {
        store
            .claim_due_handoffs(now, now + lease, 10_000)
            .await
            .expect("claim")
            .into_iter()
            .filter(|due| &due.site == site)
            .collect()
    }

    /// A handoff enters the outbox with the handoff itself; a claim leases it (no second
    /// claim until the lease ends); a retry counts the attempt and waits; recording the ticket
    /// takes it out for good and indexes the ticket. A ticket for a handoff that is no longer
    /// pending is not recorded.
    async fn handoffs_wait_in_the_outbox_until_their_ticket_is_recorded(
        store: &dyn ConversationStore,
    ) {
        let site = SiteId::parse("outbox").expect("valid");
        let new = new_conversation(&site);
        store
            .create_conversation(new.clone())
            .await
            .expect("create");
        let now = OffsetDateTime::now_utc();
        let requested = PendingHandoff {
            handoff_id: HandoffId::generate(),
            team: Some("billing".into()),
            analysis: None,
            tier: None,
            reasons: vec![ReasonCode::RequestedHuman],
            event_id: EventId::ZERO,
            requested_at: now,
            draft: None,
        };
        store
            .open_handoff(&site, &new.id, handoff_announcement(), requested.clone())
            .await
            .expect("open");
        let lease = Duration::from_secs(60);
        let first = claim(store, &site, now, lease).await;
        assert_eq!(
            first,
            vec![DueHandoff {
                site: site.clone(),
                conversation: new.id,
                attempts: 0
            }],
            "a new handoff is due at once"
        );
        assert!(
            claim(store, &site, now, lease).await.is_empty(),
            "a leased handoff is not claimed twice"
        );
        let after_lease = now + lease + Duration::from_secs(1);
        assert_eq!(
            claim(store, &site, after_lease, lease).await.len(),
            1,
            "a lease that ran out (the worker died) makes it due again"
        );
        store
            .retry_handoff_at(&site, &new.id, now + Duration::from_secs(5))
            .await
            .expect("retry");
        assert!(
            claim(store, &site, now + Duration::from_secs(4), lease)
                .await
                .is_empty()
        );
        let retried = claim(store, &site, now + Duration::from_secs(6), lease).await;
        assert_eq!(retried.len(), 1);
        assert_eq!(retried[0].attempts, 1, "the failed attempt is counted");
        let ticket = HandoffTicket {
            handoff_id: requested.handoff_id,
            helpdesk: "zendesk".into(),
            id: "35436".into(),
            url: Some("https://acme.zendesk.com/agent/tickets/35436".into()),
            created_at: now,
            // The ticket was composed from the events so far (the handoff announcement).
            synced_through: EventId(1),
        };
        let stale = HandoffTicket {
            handoff_id: HandoffId::generate(),
            ..ticket.clone()
        };
        assert!(
            !store
                .record_ticket(&site, &new.id, stale)
                .await
                .expect("record"),
            "a ticket of another handoff is not recorded"
        );
        assert!(
            store
                .record_ticket(&site, &new.id, ticket.clone())
                .await
                .expect("record")
        );
        assert_eq!(
            store.handoff_ticket(&site, &new.id).await.expect("get"),
            Some(ticket.clone())
        );
        assert_eq!(
            store
                .ticket_conversation("zendesk", "35436")
                .await
                .expect("index"),
            Some((site.clone(), new.id))
        );
        assert_eq!(
            store
                .ticket_conversation("freshdesk", "35436")
                .await
                .expect("index"),
            None
        );
        let later = now + Duration::from_secs(3600);
        assert!(
            claim(store, &site, later, lease).await.is_empty(),
            "a recorded ticket leaves the outbox"
        );
        assert!(store.outbox_stats().await.is_ok());
        // A visitor message after the ticket (an external helpdesk's) is a follow-up to sync.
        send(
            store,
            &site,
            &new.id,
            "Also, my order number is 5555",
            later,
        )
        .await
        .expect("append");
        let again = now + Duration::from_secs(7200);
        assert_eq!(
            claim(store, &site, again, lease).await.len(),
            1,
            "the follow-up enters the outbox"
        );
        let synced = HandoffTicket {
            synced_through: EventId(2),
            ..ticket.clone()
        };
        assert!(
            store
                .record_ticket(&site, &new.id, synced.clone())
                .await
                .expect("record")
        );
        assert_eq!(
            store.handoff_ticket(&site, &new.id).await.expect("get"),
            Some(synced)
        );
        assert!(
            claim(store, &site, now + Duration::from_secs(9000), lease)
                .await
                .is_empty(),
            "synced: out of the outbox"
        );
        // Erasing the visitor erases the ticket index too.
        store
            .delete_visitor(&site, &new.visitor)
            .await
            .expect("delete");
        assert_eq!(
            store
                .ticket_conversation("zendesk", "35436")
                .await
                .expect("index"),
            None
        );
    }

    /// The site's queue lists open handoffs in arrival order; assigning moves the conversation
    /// to `with_agent` with its assignee; resolving (or closing) takes it out of the queue and
    /// the outbox, and the assistant answers again.
    async fn the_queue_holds_open_handoffs_until_resolved_or_closed(store: &dyn ConversationStore) {
        let site = SiteId::parse("queue").expect("valid");
        let mut ids = Vec::new();
        let mut positions = Vec::new();
        let start = OffsetDateTime::now_utc();
        let position = |opened: &OpenedHandoff| match opened {
            OpenedHandoff::Opened(StoredEvent {
                kind: EventKind::Handoff { queue_position, .. },
                ..
            }) => *queue_position,
            other => panic!("not an opened handoff: {other:?}"),
        };
        for n in 0..3 {
            let new = new_conversation(&site);
            store
                .create_conversation(new.clone())
                .await
                .expect("create");
            let requested = requested_handoff(start + Duration::from_secs(n));
            let opened = store
                .open_handoff(&site, &new.id, in_line_announcement(), requested)
                .await
                .expect("open");
            positions.push(position(&opened));
            ids.push(new.id);
        }
        assert_eq!(store.handoff_queue(&site).await.expect("queue"), ids);
        assert_eq!(
            positions,
            [Some(1), Some(2), Some(3)],
            "the store fills in each place in line"
        );
        assert!(matches!(
            store
                .assign_handoff(&site, &ConversationId::generate(), "sam", start)
                .await,
            Err(StoreError::NotFound(_))
        ));
        store
            .assign_handoff(&site, &ids[0], "sam", start)
            .await
            .expect("assign");
        let assigned = store
            .conversation(&site, &ids[0])
            .await
            .expect("get")
            .expect("exists");
        assert_eq!(assigned.assignee.as_deref(), Some("sam"));
        assert_eq!(assigned.status, ConversationStatus::WithAgent);
        assert_eq!(
            store
                .claim_handoff(&site, &ids[0], "ana", start, false, None)
                .await
                .expect("claim"),
            Claimed::HeldBy("sam".into()),
            "Sam has it: no silent take-over"
        );
        assert_eq!(
            store
                .claim_handoff(&site, &ids[0], "sam", start, false, None)
                .await
                .expect("claim"),
            Claimed::AlreadyTheirs
        );
        assert_eq!(
            store
                .claim_handoff(&site, &ids[2], "sam", start, false, Some(1))
                .await
                .expect("claim"),
            Claimed::AtCapacity,
            "Sam already has one"
        );
        assert_eq!(store.agent_load(&site, "sam").await.expect("load"), 1);
        store
            .assign_handoff(&site, &ids[0], "ana", start)
            .await
            .expect("reassign");
        assert_eq!(store.agent_load(&site, "sam").await.expect("load"), 0);
        assert_eq!(store.agent_load(&site, "ana").await.expect("load"), 1);
        store
            .assign_handoff(&site, &ids[0], "sam", start)
            .await
            .expect("reassign");
        assert_eq!(
            store.handoff_queue(&site).await.expect("queue"),
            ids,
            "an assigned handoff stays in the queue"
        );
        let fourth = new_conversation(&site);
        store
            .create_conversation(fourth.clone())
            .await
            .expect("create");
        let requested = requested_handoff(start + Duration::from_secs(5));
        let opened = store
            .open_handoff(&site, &fourth.id, in_line_announcement(), requested)
            .await
            .expect("open");
        assert_eq!(
            position(&opened),
            Some(3),
            "an assigned handoff no longer waits: two ahead"
        );
        store
            .resolve_handoff(&site, &fourth.id, start)
            .await
            .expect("resolve");
        store
            .assign_handoff(&site, &ids[1], "ana", start)
            .await
            .expect("assign");
        store
            .resolve_handoff(&site, &ids[0], start)
            .await
            .expect("resolve");
        assert_eq!(
            store.agent_load(&site, "sam").await.expect("load"),
            0,
            "a resolved handoff no longer counts"
        );
        let resolved = store
            .conversation(&site, &ids[0])
            .await
            .expect("get")
            .expect("exists");
        assert_eq!(resolved.status, ConversationStatus::Bot);
        assert_eq!(resolved.assignee, None);
        assert_eq!(
            store.pending_handoff(&site, &ids[0]).await.expect("get"),
            None
        );
        assert!(matches!(
            store.assign_handoff(&site, &ids[0], "sam", start).await,
            Err(StoreError::Rejected(_))
        ));
        store
            .set_status(&site, &ids[1], ConversationStatus::Closed, start)
            .await
            .expect("close");
        assert_eq!(
            store.handoff_queue(&site).await.expect("queue"),
            vec![ids[2]]
        );
        assert_eq!(
            store.agent_load(&site, "ana").await.expect("load"),
            0,
            "a closed conversation no longer counts"
        );
        assert!(
            matches!(
                store.assign_handoff(&site, &ids[1], "ana", start).await,
                Err(StoreError::Rejected(_))
            ),
            "a closed conversation is not assigned again"
        );
        assert_eq!(store.agent_load(&site, "ana").await.expect("load"), 0);
        // Agents online: until their presence runs out.
        let minute = Duration::from_secs(60);
        store
            .touch_agent("queue-sam", start + minute)
            .await
            .expect("touch");
        store
            .touch_agent("queue-ana", start - minute)
            .await
            .expect("touch");
        let online = store.online_agents(start).await.expect("online");
        assert!(online.contains(&"queue-sam".to_string()), "{online:?}");
        assert!(!online.contains(&"queue-ana".to_string()), "{online:?}");
        let due: Vec<ConversationId> = claim(
            store,
            &site,
            start + Duration::from_secs(10),
            Duration::from_secs(60),
        )
        .await
        .into_iter()
        .map(|due| due.conversation)
        .collect();
        assert!(
            !due.contains(&ids[0]),
            "a resolved handoff needs no ticket: {due:?}"
        );
        assert!(
            due.contains(&ids[1]) && due.contains(&ids[2]),
            "a closed conversation's handoff still gets its ticket: {due:?}"
        );
    }

    fn handoff_announcement() -> EventKind {
        EventKind::Handoff {
            message_id: MessageId::generate(),
            status: HandoffStatus::Pending,
            team: Some("billing team".into()),
            message: "Connecting you with our billing team".into(),
            reasons: vec![ReasonCode::BillingDispute],
            queue_position: None,
        }
    }

    /// Four racing `open_handoff` calls (two instances, two tabs) store one handoff event
    /// and one pending handoff; a pending draft is replaced by a handoff.
    async fn racing_handoffs_open_one(store: &dyn ConversationStore) {
        let site = SiteId::parse("conf-a").expect("valid");
        let new = new_conversation(&site);
        store
            .create_conversation(new.clone())
            .await
            .expect("create");
        let now = OffsetDateTime::now_utc();
        let draft = store
            .append_event(&site, &new.id, answer(AnswerId::generate()), now)
            .await
            .expect("answer");
        let draft_handoff_id = HandoffId::generate();
        store
            .put_pending_handoff(
                &site,
                &new.id,
                PendingHandoff {
                    handoff_id: draft_handoff_id,
                    team: None,
                    analysis: None,
                    tier: None,
                    reasons: Vec::new(),
                    event_id: draft.event_id,
                    requested_at: now,
                    draft: Some(crate::domain::DraftAnswer {
                        text: "Refunds take 5 days.".into(),
                        citations: Vec::new(),
                    }),
                },
            )
            .await
            .expect("draft");
        let requested = PendingHandoff {
            handoff_id: HandoffId::generate(),
            team: None,
            analysis: None,
            tier: None,
            reasons: vec![ReasonCode::BillingDispute],
            event_id: EventId::ZERO,
            requested_at: now,
            draft: None,
        };
        let results = futures_util::future::join_all((0..4).map(|_| {
            store.open_handoff(&site, &new.id, handoff_announcement(), requested.clone())
        }))
        .await;
        let results: Vec<OpenedHandoff> = results
            .into_iter()
            .map(|r| r.expect("open handoff"))
            .collect();
        let opened: Vec<&StoredEvent> = results
            .iter()
            .filter_map(|r| match r {
                OpenedHandoff::Opened(event) => Some(event),
                _ => None,
            })
            .collect();
        assert_eq!(opened.len(), 1, "one racer opens it: {results:?}");
        let event = opened[0].clone();
        assert_eq!(event.event_id, EventId(2), "after the draft's answer");
        assert!(matches!(event.kind, EventKind::Handoff { .. }));
        for result in &results {
            assert!(
                *result == OpenedHandoff::Opened(event.clone())
                    || *result == OpenedHandoff::AlreadyPending(event.clone()),
                "the others get the same event: {result:?}"
            );
        }
        assert_eq!(
            store.pending_handoff(&site, &new.id).await.expect("get"),
            Some(PendingHandoff {
                event_id: event.event_id,
                handoff_id: draft_handoff_id,
                draft: Some(crate::domain::DraftAnswer {
                    text: "Refunds take 5 days.".into(),
                    citations: Vec::new(),
                }),
                ..requested.clone()
            }),
            "the draft becomes a handoff, pointing at its event and keeping its handoff id (one \
             ticket per handoff) and the draft for the agent"
        );
        let conversation = store
            .conversation(&site, &new.id)
            .await
            .expect("get")
            .expect("exists");
        assert_eq!(conversation.status, ConversationStatus::WaitingForAgent);
        assert_eq!(conversation.last_event_id, EventId(2));
        assert_eq!(
            store
                .events_after(&site, &new.id, EventId::ZERO, 10)
                .await
                .expect("events"),
            vec![draft, event],
            "one handoff event"
        );
        let wrong_kind = store
            .open_handoff(
                &site,
                &new.id,
                answer(AnswerId::generate()),
                requested.clone(),
            )
            .await;
        assert!(
            matches!(wrong_kind, Err(StoreError::Rejected(_))),
            "{wrong_kind:?}"
        );
        store
            .set_status(&site, &new.id, ConversationStatus::Closed, now)
            .await
            .expect("close");
        assert_eq!(
            store
                .open_handoff(&site, &new.id, handoff_announcement(), requested.clone())
                .await
                .expect("open handoff"),
            OpenedHandoff::ConversationClosed,
            "a closed conversation gets no handoff"
        );
        assert_eq!(
            store
                .events_after(&site, &new.id, EventId::ZERO, 10)
                .await
                .expect("events")
                .len(),
            2
        );
        let missing = store
            .open_handoff(
                &site,
                &ConversationId::generate(),
                handoff_announcement(),
                requested,
            )
            .await;
        assert!(
            matches!(missing, Err(StoreError::NotFound(_))),
            "{missing:?}"
        );
    }
    /// The append reports the status it saw; a closed conversation stores no new message but
    /// still answers a duplicate; feedback comes back in one call, in order.
    async fn messages_carry_the_status_and_closed_conversations_take_none(
        store: &dyn ConversationStore,
    ) {
        let site = SiteId::parse("conf-a").expect("valid");
        let new = new_conversation(&site);
        store
            .create_conversation(new.clone())
            .await
            .expect("create");
        let now = OffsetDateTime::now_utc();
        let sent = ClientMessageId::generate();
        let first = store
            .append_visitor_message(&site, &new.id, sent, MessageId::generate(), "q", now)
            .await
            .expect("append");
        assert_eq!(first.status, ConversationStatus::Bot);
        let helpful = AnswerId::generate();
        let unhelpful = AnswerId::generate();
        for answer_id in [helpful, unhelpful] {
            store
                .append_event(&site, &new.id, answer(answer_id), now)
                .await
                .expect("answer");
        }
        store
            .record_feedback(&site, &new.id, helpful, true, now)
            .await
            .expect("feedback");
        store
            .record_feedback(&site, &new.id, unhelpful, false, now)
            .await
            .expect("feedback");
        assert_eq!(
            store
                .feedback_on_answers(&site, &new.id, &[unhelpful, AnswerId::generate(), helpful])
                .await
                .expect("feedback"),
            vec![Some(false), None, Some(true)]
        );
        assert_eq!(
            store
                .feedback_on_answers(&site, &ConversationId::generate(), &[helpful])
                .await
                .expect("feedback"),
            vec![None]
        );
        assert!(
            store
                .feedback_on_answers(&site, &new.id, &[])
                .await
                .expect("feedback")
                .is_empty()
        );

        store
            .set_status(&site, &new.id, ConversationStatus::WithAgent, now)
            .await
            .expect("status");
        let with_agent = send(store, &site, &new.id, "still there?", now)
            .await
            .expect("append");
        assert_eq!(with_agent.status, ConversationStatus::WithAgent);
        assert_eq!(with_agent.event_id, EventId(4));

        store
            .set_status(&site, &new.id, ConversationStatus::Closed, now)
            .await
            .expect("close");
        let refused = send(store, &site, &new.id, "hello?", now)
            .await
            .expect("append");
        assert_eq!(refused.status, ConversationStatus::Closed);
        assert_eq!(refused.event_id, EventId::ZERO, "nothing stored");
        assert!(!refused.duplicate);
        let again = store
            .append_visitor_message(&site, &new.id, sent, MessageId::generate(), "q", now)
            .await
            .expect("append");
        assert_eq!(
            (again.duplicate, again.event_id, again.status),
            (true, EventId(1), ConversationStatus::Closed),
            "a duplicate is still recognised"
        );
        assert_eq!(
            store
                .events_after(&site, &new.id, EventId::ZERO, 100)
                .await
                .expect("events")
                .len(),
            4
        );
    }
}
