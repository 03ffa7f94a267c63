//! In-memory `ConversationStore`: the default on a fresh machine (one instance; everything is
//! lost on restart). Closed conversations are dropped `closed_ttl` after closing by
//! [`MemoryStore::purge_expired`], which start-up runs every minute.

use crate::domain::{
    Conversation, ConversationStatus, Csat, EmailAddress, EventKind, HandoffTicket, PendingHandoff,
    StoredEvent,
};
use crate::ids::{
    AnswerId, ClientMessageId, ConversationId, EventId, MessageId, SiteId, VisitorId,
};
use crate::ports::store::{
    AppendedMessage, Claimed, ConversationStore, DueHandoff, EventStream, NewConversation,
    OpenedHandoff, OutboxStats, StoreError,
};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::broadcast;

/// Events buffered per subscriber before it counts as lagging (it then re-reads the log).
const CHANNEL_CAPACITY: usize = 64;

type Key = (SiteId, ConversationId);

#[derive(Default)]
struct State {
    conversations: HashMap<Key, Entry>,
    visitors: HashMap<(SiteId, VisitorId), Vec<ConversationId>>,
    channels: HashMap<Key, broadcast::Sender<StoredEvent>>,
    /// LLM spending, micro-dollars by (site, `YYYY-MM`).
    spend: HashMap<(SiteId, String), u64>,
    /// Handoffs waiting for their ticket: when the next attempt is due, failed attempts.
    outbox: HashMap<Key, (OffsetDateTime, u32)>,
    /// (helpdesk, ticket id) → conversation.
    tickets: HashMap<(String, String), Key>,
    /// Sockets showing a conversation, until when.
    presence: HashMap<Key, HashMap<String, OffsetDateTime>>,
    /// Inbox agents online, until when.
    agents_online: HashMap<String, OffsetDateTime>,
    /// Webhook deliveries seen, until when.
    deliveries: HashMap<String, OffsetDateTime>,
}

struct Entry {
    conversation: Conversation,
    events: Vec<StoredEvent>,
    by_client_id: HashMap<ClientMessageId, AppendedMessage>,
    answers: HashSet<AnswerId>,
    feedback: HashMap<AnswerId, bool>,
    pending_handoff: Option<PendingHandoff>,
    /// When the pending handoff entered the site's queue.
    queued_at: Option<OffsetDateTime>,
    ticket: Option<HandoffTicket>,
}

impl Entry {
    /// Records `handoff` as pending (keeping the id of a pending one it replaces), enters the
    /// queue and, through `outbox`, the delivery outbox.
    fn set_pending(&mut self, mut handoff: PendingHandoff, keep_draft: bool) {
        if let Some(previous) = &self.pending_handoff {
            handoff.handoff_id = previous.handoff_id;
            // Opening a handoff over a draft keeps the draft for the agent.
            if keep_draft && handoff.draft.is_none() {
                handoff.draft = previous.draft.clone();
            }
        }
        self.conversation.status = ConversationStatus::WaitingForAgent;
        self.conversation.status_changed_at = handoff.requested_at;
        self.queued_at.get_or_insert(handoff.requested_at);
        self.pending_handoff = Some(handoff);
    }

    /// Leaves the queue when the conversation goes back to the assistant or closes.
    fn left_queue(&mut self, status: ConversationStatus) {
        if matches!(status, ConversationStatus::Bot | ConversationStatus::Closed) {
            self.queued_at = None;
        }
    }
}

/// The in-memory store. Cheap to clone (shared state).
#[derive(Clone)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
    closed_ttl: Duration,
}

impl MemoryStore {
    /// A new, empty store; closed conversations expire after `closed_ttl`.
    pub fn new(closed_ttl: Duration) -> Self {
        Self {
            state: Arc::new(Mutex::new(State::default())),
            closed_ttl,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind (no invariant spans an
        // await or a partial update that a panic could interrupt), so recover the guard.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Drops closed conversations whose `closed_ttl` has passed and channels nobody listens
    /// to. Returns the number of conversations dropped.
    pub fn purge_expired(&self, now: OffsetDateTime) -> usize {
        let mut state = self.lock();
        let ttl = self.closed_ttl;
        let expired: Vec<Key> = state
            .conversations
            .iter()
            .filter(|(_, entry)| {
                entry.conversation.status == ConversationStatus::Closed
                    && entry.conversation.status_changed_at + ttl <= now
            })
            .map(|(key, _)| key.clone())
            .collect();
        for key in &expired {
            state.outbox.remove(key);
            state.tickets.retain(|_, owner| owner != key);
            if let Some(entry) = state.conversations.remove(key) {
                let visitor_key = (key.0.clone(), entry.conversation.visitor.clone());
                if let Some(list) = state.visitors.get_mut(&visitor_key) {
                    list.retain(|id| id != &key.1);
                    if list.is_empty() {
                        state.visitors.remove(&visitor_key);
                    }
                }
            }
        }
        state
            .channels
            .retain(|_, sender| sender.receiver_count() > 0);
        expired.len()
    }

    fn publish(state: &State, key: &Key, event: &StoredEvent) {
        if let Some(sender) = state.channels.get(key) {
            // No receiver left is fine: nobody is listening.
            let _ = sender.send(event.clone());
        }
    }

    fn not_found(id: &ConversationId) -> StoreError {
        StoreError::NotFound(format!("conversation {id}"))
    }

    fn events_after_locked(&self, key: &Key, after: EventId, limit: usize) -> Vec<StoredEvent> {
        let state = self.lock();
        state
            .conversations
            .get(key)
            .map(|entry| {
                // Events are stored in id order starting at 1, so the index of id n is n - 1.
                let start = usize::try_from(after.get())
                    .unwrap_or(usize::MAX)
                    .min(entry.events.len());
                entry.events[start..].iter().take(limit).cloned().collect()
            })
            .unwrap_or_default()
    }
}

fn push_event(entry: &mut Entry, kind: EventKind, at: OffsetDateTime) -> StoredEvent {
    let event_id = entry.conversation.last_event_id.next();
    entry.conversation.last_event_id = event_id;
    let event = StoredEvent {
        event_id,
        created_at: at,
        kind,
    };
    entry.events.push(event.clone());
    event
}

#[async_trait::async_trait]
impl ConversationStore for MemoryStore {
    fn adapter_name(&self) -> &'static str {
        "memory"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        drop(self.lock());
        Ok(())
    }

    async fn create_conversation(&self, new: NewConversation) -> Result<Conversation, StoreError> {
        let mut state = self.lock();
        let key = (new.site.clone(), new.id);
        if let Some(entry) = state.conversations.get(&key) {
            return Ok(entry.conversation.clone());
        }
        let conversation = Conversation {
            site: new.site.clone(),
            id: new.id,
            visitor: new.visitor.clone(),
            status: ConversationStatus::Bot,
            created_at: new.created_at,
            status_changed_at: new.created_at,
            last_event_id: EventId::ZERO,
            user_id: new.user_id,
            locale: new.locale,
            page_url: new.page_url,
            contact_email: None,
            csat: None,
            assignee: None,
        };
        state.conversations.insert(
            key,
            Entry {
                conversation: conversation.clone(),
                events: Vec::new(),
                by_client_id: HashMap::new(),
                answers: HashSet::new(),
                feedback: HashMap::new(),
                pending_handoff: None,
                queued_at: None,
                ticket: None,
            },
        );
        state
            .visitors
            .entry((new.site, new.visitor))
            .or_default()
            .push(new.id);
        Ok(conversation)
    }

    async fn conversation(
        &self,
        site: &SiteId,
        id: &ConversationId,
    ) -> Result<Option<Conversation>, StoreError> {
        Ok(self
            .lock()
            .conversations
            .get(&(site.clone(), *id))
            .map(|entry| entry.conversation.clone()))
    }

    async fn visitor_conversations(
        &self,
        site: &SiteId,
        visitor: &VisitorId,
    ) -> Result<Vec<ConversationId>, StoreError> {
        Ok(self
            .lock()
            .visitors
            .get(&(site.clone(), visitor.clone()))
            .cloned()
            .unwrap_or_default())
    }

    async fn set_status(
        &self,
        site: &SiteId,
        id: &ConversationId,
        status: ConversationStatus,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        let entry = state
            .conversations
            .get_mut(&(site.clone(), *id))
            .ok_or_else(|| Self::not_found(id))?;
        entry.conversation.status = status;
        entry.conversation.status_changed_at = at;
        entry.left_queue(status);
        Ok(())
    }

    async fn append_visitor_message(
        &self,
        site: &SiteId,
        id: &ConversationId,
        client_message_id: ClientMessageId,
        message_id: MessageId,
        text: &str,
        at: OffsetDateTime,
    ) -> Result<AppendedMessage, StoreError> {
        let mut state = self.lock();
        let key = (site.clone(), *id);
        let entry = state
            .conversations
            .get_mut(&key)
            .ok_or_else(|| Self::not_found(id))?;
        let status = entry.conversation.status;
        if let Some(first) = entry.by_client_id.get(&client_message_id) {
            return Ok(AppendedMessage {
                duplicate: true,
                status,
                ..*first
            });
        }
        if status == ConversationStatus::Closed {
            return Ok(AppendedMessage {
                message_id,
                event_id: EventId::ZERO,
                duplicate: false,
                status,
            });
        }
        let event = push_event(
            entry,
            EventKind::VisitorMessage {
                message_id,
                client_message_id,
                text: text.to_string(),
            },
            at,
        );
        let appended = AppendedMessage {
            message_id,
            event_id: event.event_id,
            duplicate: false,
            status,
        };
        entry.by_client_id.insert(client_message_id, appended);
        // A follow-up to a ticket in an external helpdesk: the outbox syncs it.
        let follow_up = matches!(
            status,
            ConversationStatus::WaitingForAgent | ConversationStatus::WithAgent
        ) && entry
            .ticket
            .as_ref()
            .is_some_and(|ticket| ticket.helpdesk != "inbox");
        if follow_up {
            state
                .outbox
                .entry(key.clone())
                .or_insert((OffsetDateTime::now_utc(), 0));
        }
        Self::publish(&state, &key, &event);
        Ok(appended)
    }

    async fn append_event(
        &self,
        site: &SiteId,
        id: &ConversationId,
        kind: EventKind,
        at: OffsetDateTime,
    ) -> Result<StoredEvent, StoreError> {
        let mut state = self.lock();
        let key = (site.clone(), *id);
        let entry = state
            .conversations
            .get_mut(&key)
            .ok_or_else(|| Self::not_found(id))?;
        if let EventKind::AssistantAnswer { answer_id, .. } = &kind {
            entry.answers.insert(*answer_id);
        }
        let event = push_event(entry, kind, at);
        Self::publish(&state, &key, &event);
        Ok(event)
    }

    async fn events_after(
        &self,
        site: &SiteId,
        id: &ConversationId,
        after: EventId,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        Ok(self.events_after_locked(&(site.clone(), *id), after, limit))
    }

    async fn subscribe(
        &self,
        site: &SiteId,
        id: &ConversationId,
    ) -> Result<EventStream, StoreError> {
        let key = (site.clone(), *id);
        let (receiver, last_seen) = {
            let mut state = self.lock();
            let last_seen = state
                .conversations
                .get(&key)
                .map(|e| e.conversation.last_event_id)
                .unwrap_or_default();
            let sender = state
                .channels
                .entry(key.clone())
                .or_insert_with(|| broadcast::channel(CHANNEL_CAPACITY).0);
            (sender.subscribe(), last_seen)
        };
        struct Cursor {
            receiver: broadcast::Receiver<StoredEvent>,
            last_seen: EventId,
            backlog: VecDeque<StoredEvent>,
            store: MemoryStore,
            key: Key,
        }
        let cursor = Cursor {
            receiver,
            last_seen,
            backlog: VecDeque::new(),
            store: self.clone(),
            key,
        };
        let stream = futures_util::stream::unfold(cursor, |mut cursor| async move {
            loop {
                if let Some(event) = cursor.backlog.pop_front() {
                    cursor.last_seen = event.event_id;
                    return Some((event, cursor));
                }
                match cursor.receiver.recv().await {
                    Ok(event) if event.event_id <= cursor.last_seen => continue,
                    Ok(event) => {
                        cursor.last_seen = event.event_id;
                        return Some((event, cursor));
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        // Fell behind: read what was missed from the log, then carry on with
                        // the channel (whose stale entries the id check skips).
                        cursor.backlog = cursor
                            .store
                            .events_after_locked(&cursor.key, cursor.last_seen, usize::MAX)
                            .into();
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        Ok(Box::pin(stream))
    }

    async fn put_pending_handoff(
        &self,
        site: &SiteId,
        id: &ConversationId,
        handoff: PendingHandoff,
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        let key = (site.clone(), *id);
        let entry = state
            .conversations
            .get_mut(&key)
            .ok_or_else(|| Self::not_found(id))?;
        if entry.conversation.status == ConversationStatus::Closed {
            return Err(StoreError::Rejected(format!("conversation {id} is closed")));
        }
        let due = handoff.requested_at;
        entry.set_pending(handoff, false);
        state.outbox.insert(key, (due, 0));
        Ok(())
    }

    async fn open_handoff(
        &self,
        site: &SiteId,
        id: &ConversationId,
        announcement: EventKind,
        mut handoff: PendingHandoff,
    ) -> Result<OpenedHandoff, StoreError> {
        if !matches!(announcement, EventKind::Handoff { .. }) {
            return Err(StoreError::Rejected(
                "a handoff is announced by a Handoff event".into(),
            ));
        }
        let mut state = self.lock();
        let key = (site.clone(), *id);
        let entry = state
            .conversations
            .get_mut(&key)
            .ok_or_else(|| Self::not_found(id))?;
        if entry.conversation.status == ConversationStatus::Closed {
            return Ok(OpenedHandoff::ConversationClosed);
        }
        let announced = entry.pending_handoff.as_ref().and_then(|pending| {
            // Event n is at index n - 1.
            let index = usize::try_from(pending.event_id.get().checked_sub(1)?).ok()?;
            entry.events.get(index)
        });
        if let Some(event) = announced
            && (matches!(event.kind, EventKind::Handoff { .. })
                || entry.conversation.assignee.is_some())
        {
            // Announced, or a draft an agent already took: nothing new to open.
            return Ok(OpenedHandoff::AlreadyPending(event.clone()));
        }
        let mut announcement = announcement;
        let due = handoff.requested_at;
        let queued_at = entry.queued_at;
        if let EventKind::Handoff {
            queue_position: Some(position),
            ..
        } = &mut announcement
        {
            // The place in line, read in this same step (the lock): a newcomer is last (arrival
            // order); one already waiting keeps its rank.
            let ahead = state
                .conversations
                .iter()
                .filter(|((entry_site, entry_id), other)| {
                    entry_site == site
                        && entry_id != id
                        && other.conversation.assignee.is_none()
                        && other.queued_at.is_some_and(|at| {
                            queued_at.is_none_or(|mine| (at, *entry_id) < (mine, *id))
                        })
                })
                .count();
            *position = u32::try_from(ahead).unwrap_or(u32::MAX).saturating_add(1);
        }
        let entry = state
            .conversations
            .get_mut(&key)
            .ok_or_else(|| Self::not_found(id))?;
        let event = push_event(entry, announcement, handoff.requested_at);
        handoff.event_id = event.event_id;
        entry.set_pending(handoff, true);
        state.outbox.insert(key.clone(), (due, 0));
        Self::publish(&state, &key, &event);
        Ok(OpenedHandoff::Opened(event))
    }

    async fn pending_handoff(
        &self,
        site: &SiteId,
        id: &ConversationId,
    ) -> Result<Option<PendingHandoff>, StoreError> {
        Ok(self
            .lock()
            .conversations
            .get(&(site.clone(), *id))
            .and_then(|entry| entry.pending_handoff.clone()))
    }

    async fn record_feedback(
        &self,
        site: &SiteId,
        id: &ConversationId,
        answer_id: AnswerId,
        helpful: bool,
        _at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        let entry = state
            .conversations
            .get_mut(&(site.clone(), *id))
            .ok_or_else(|| Self::not_found(id))?;
        if !entry.answers.contains(&answer_id) {
            return Err(StoreError::NotFound(format!("answer {answer_id}")));
        }
        entry.feedback.insert(answer_id, helpful);
        Ok(())
    }

    async fn feedback_on_answers(
        &self,
        site: &SiteId,
        id: &ConversationId,
        answer_ids: &[AnswerId],
    ) -> Result<Vec<Option<bool>>, StoreError> {
        let state = self.lock();
        let feedback = state
            .conversations
            .get(&(site.clone(), *id))
            .map(|entry| &entry.feedback);
        Ok(answer_ids
            .iter()
            .map(|answer_id| feedback.and_then(|f| f.get(answer_id).copied()))
            .collect())
    }

    async fn feedback(
        &self,
        site: &SiteId,
        id: &ConversationId,
        answer_id: AnswerId,
    ) -> Result<Option<bool>, StoreError> {
        Ok(self
            .lock()
            .conversations
            .get(&(site.clone(), *id))
            .and_then(|entry| entry.feedback.get(&answer_id).copied()))
    }

    async fn record_csat(
        &self,
        site: &SiteId,
        id: &ConversationId,
        csat: Csat,
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        let entry = state
            .conversations
            .get_mut(&(site.clone(), *id))
            .ok_or_else(|| Self::not_found(id))?;
        entry.conversation.csat = Some(csat);
        Ok(())
    }

    async fn set_contact(
        &self,
        site: &SiteId,
        id: &ConversationId,
        email: EmailAddress,
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        let entry = state
            .conversations
            .get_mut(&(site.clone(), *id))
            .ok_or_else(|| Self::not_found(id))?;
        entry.conversation.contact_email = Some(email);
        Ok(())
    }

    async fn delete_visitor(
        &self,
        site: &SiteId,
        visitor: &VisitorId,
    ) -> Result<usize, StoreError> {
        let mut state = self.lock();
        let ids = state
            .visitors
            .remove(&(site.clone(), visitor.clone()))
            .unwrap_or_default();
        let mut n_deleted = 0;
        for id in ids {
            let key = (site.clone(), id);
            state.outbox.remove(&key);
            state.tickets.retain(|_, owner| owner != &key);
            if state.conversations.remove(&key).is_some() {
                n_deleted += 1;
            }
        }
        Ok(n_deleted)
    }

    async fn touch_presence(
        &self,
        site: &SiteId,
        id: &ConversationId,
        socket: &str,
        until: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.lock()
            .presence
            .entry((site.clone(), *id))
            .or_default()
            .insert(socket.to_string(), until);
        Ok(())
    }

    async fn clear_presence(
        &self,
        site: &SiteId,
        id: &ConversationId,
        socket: &str,
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        let key = (site.clone(), *id);
        if let Some(sockets) = state.presence.get_mut(&key) {
            sockets.remove(socket);
            if sockets.is_empty() {
                state.presence.remove(&key);
            }
        }
        Ok(())
    }

    async fn is_present(
        &self,
        site: &SiteId,
        id: &ConversationId,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        Ok(self
            .lock()
            .presence
            .get(&(site.clone(), *id))
            .is_some_and(|sockets| sockets.values().any(|until| *until > now)))
    }

    async fn claim_due_handoffs(
        &self,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<DueHandoff>, StoreError> {
        let mut state = self.lock();
        let mut due: Vec<(OffsetDateTime, Key, u32)> = state
            .outbox
            .iter()
            .filter(|(_, (at, _))| *at <= now)
            .map(|(key, (at, attempts))| (*at, key.clone(), *attempts))
            .collect();
        due.sort();
        due.truncate(limit);
        for (_, key, attempts) in &mut due {
            state.outbox.insert(key.clone(), (lease_until, *attempts));
        }
        Ok(due
            .into_iter()
            .map(|(_, (site, conversation), attempts)| DueHandoff {
                site,
                conversation,
                attempts,
            })
            .collect())
    }

    async fn retry_handoff_at(
        &self,
        site: &SiteId,
        id: &ConversationId,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        if let Some((due, attempts)) = self.lock().outbox.get_mut(&(site.clone(), *id)) {
            *due = at;
            *attempts = attempts.saturating_add(1);
        }
        Ok(())
    }

    async fn drop_from_outbox(&self, site: &SiteId, id: &ConversationId) -> Result<(), StoreError> {
        self.lock().outbox.remove(&(site.clone(), *id));
        Ok(())
    }

    async fn record_ticket(
        &self,
        site: &SiteId,
        id: &ConversationId,
        ticket: HandoffTicket,
    ) -> Result<bool, StoreError> {
        let mut state = self.lock();
        let key = (site.clone(), *id);
        let pending = state
            .conversations
            .get(&key)
            .and_then(|entry| entry.pending_handoff.as_ref())
            .map(|pending| pending.handoff_id);
        if pending.is_none_or(|pending| pending == ticket.handoff_id) {
            let last = state
                .conversations
                .get(&key)
                .map_or(EventId::ZERO, |entry| entry.conversation.last_event_id);
            if pending.is_some() && last > ticket.synced_through {
                // Events came after what the helpdesk has: sync them next.
                state
                    .outbox
                    .insert(key.clone(), (OffsetDateTime::now_utc(), 0));
            } else {
                state.outbox.remove(&key);
            }
        }
        if pending != Some(ticket.handoff_id) {
            return Ok(false);
        }
        // An earlier handoff's ticket of this conversation no longer leads here.
        let previous = state
            .conversations
            .get(&key)
            .and_then(|entry| entry.ticket.clone());
        if let Some(previous) = previous
            && (previous.helpdesk != ticket.helpdesk || previous.id != ticket.id)
        {
            state.tickets.remove(&(previous.helpdesk, previous.id));
        }
        state
            .tickets
            .insert((ticket.helpdesk.clone(), ticket.id.clone()), key.clone());
        if let Some(entry) = state.conversations.get_mut(&key) {
            entry.ticket = Some(ticket);
        }
        Ok(true)
    }

    async fn handoff_ticket(
        &self,
        site: &SiteId,
        id: &ConversationId,
    ) -> Result<Option<HandoffTicket>, StoreError> {
        Ok(self
            .lock()
            .conversations
            .get(&(site.clone(), *id))
            .and_then(|entry| entry.ticket.clone()))
    }

    async fn ticket_conversation(
        &self,
        helpdesk: &str,
        ticket_id: &str,
    ) -> Result<Option<(SiteId, ConversationId)>, StoreError> {
        Ok(self
            .lock()
            .tickets
            .get(&(helpdesk.to_string(), ticket_id.to_string()))
            .cloned())
    }

    async fn outbox_stats(&self) -> Result<OutboxStats, StoreError> {
        let state = self.lock();
        Ok(OutboxStats {
            queued: state.outbox.len() as u64,
            oldest_due: state.outbox.values().map(|(at, _)| *at).min(),
        })
    }

    async fn handoff_queue(&self, site: &SiteId) -> Result<Vec<ConversationId>, StoreError> {
        let state = self.lock();
        let mut queue: Vec<(OffsetDateTime, ConversationId)> = state
            .conversations
            .iter()
            .filter(|((entry_site, _), _)| entry_site == site)
            .filter_map(|((_, id), entry)| Some((entry.queued_at?, *id)))
            .collect();
        queue.sort();
        Ok(queue.into_iter().map(|(_, id)| id).collect())
    }

    async fn agent_load(&self, site: &SiteId, agent: &str) -> Result<usize, StoreError> {
        Ok(self
            .lock()
            .conversations
            .iter()
            .filter(|((entry_site, _), entry)| {
                entry_site == site
                    && entry.queued_at.is_some()
                    && entry.conversation.assignee.as_deref() == Some(agent)
            })
            .count())
    }

    async fn first_delivery(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        let now = OffsetDateTime::now_utc();
        let mut state = self.lock();
        state.deliveries.retain(|_, until| *until > now);
        if state.deliveries.contains_key(key) {
            return Ok(false);
        }
        state.deliveries.insert(key.to_string(), now + ttl);
        Ok(true)
    }

    async fn forget_delivery(&self, key: &str) -> Result<(), StoreError> {
        self.lock().deliveries.remove(key);
        Ok(())
    }

    async fn touch_agent(&self, agent: &str, until: OffsetDateTime) -> Result<(), StoreError> {
        self.lock().agents_online.insert(agent.to_string(), until);
        Ok(())
    }

    async fn online_agents(&self, now: OffsetDateTime) -> Result<Vec<String>, StoreError> {
        let mut online: Vec<String> = self
            .lock()
            .agents_online
            .iter()
            .filter(|(_, until)| **until > now)
            .map(|(agent, _)| agent.clone())
            .collect();
        online.sort();
        Ok(online)
    }

    async fn claim_handoff(
        &self,
        site: &SiteId,
        id: &ConversationId,
        agent: &str,
        at: OffsetDateTime,
        take_over: bool,
        capacity: Option<usize>,
    ) -> Result<Claimed, StoreError> {
        let mut state = self.lock();
        let key = (site.clone(), *id);
        let entry = state
            .conversations
            .get(&key)
            .ok_or_else(|| Self::not_found(id))?;
        if entry.pending_handoff.is_none()
            || entry.conversation.status == ConversationStatus::Closed
        {
            return Err(StoreError::Rejected(format!(
                "conversation {id} has no pending handoff or is closed"
            )));
        }
        let previous = entry.conversation.assignee.clone();
        match previous.as_deref() {
            Some(current) if current == agent => {
                if let Some(entry) = state.conversations.get_mut(&key)
                    && entry.conversation.status != ConversationStatus::WithAgent
                {
                    entry.conversation.status = ConversationStatus::WithAgent;
                    entry.conversation.status_changed_at = at;
                }
                return Ok(Claimed::AlreadyTheirs);
            }
            Some(current) if !take_over => return Ok(Claimed::HeldBy(current.to_string())),
            _ => {}
        }
        if let Some(capacity) = capacity {
            let load = state
                .conversations
                .iter()
                .filter(|((entry_site, _), other)| {
                    entry_site == site
                        && other.queued_at.is_some()
                        && other.conversation.assignee.as_deref() == Some(agent)
                })
                .count();
            if load >= capacity {
                return Ok(Claimed::AtCapacity);
            }
        }
        let entry = state
            .conversations
            .get_mut(&key)
            .ok_or_else(|| Self::not_found(id))?;
        entry.conversation.assignee = Some(agent.to_string());
        entry.conversation.status = ConversationStatus::WithAgent;
        entry.conversation.status_changed_at = at;
        Ok(Claimed::Assigned { previous })
    }

    async fn resolve_handoff(
        &self,
        site: &SiteId,
        id: &ConversationId,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        let key = (site.clone(), *id);
        state.outbox.remove(&key);
        let entry = state
            .conversations
            .get_mut(&key)
            .ok_or_else(|| Self::not_found(id))?;
        entry.pending_handoff = None;
        entry.conversation.assignee = None;
        entry.queued_at = None;
        if entry.conversation.status != ConversationStatus::Closed {
            entry.conversation.status = ConversationStatus::Bot;
            entry.conversation.status_changed_at = at;
        }
        Ok(())
    }

    async fn expires_in(
        &self,
        site: &SiteId,
        id: &ConversationId,
    ) -> Result<Option<Duration>, StoreError> {
        let state = self.lock();
        let entry = state
            .conversations
            .get(&(site.clone(), *id))
            .ok_or_else(|| Self::not_found(id))?;
        if entry.conversation.status != ConversationStatus::Closed {
            return Ok(None);
        }
        let expires_at = entry.conversation.status_changed_at + self.closed_ttl;
        let left = expires_at - OffsetDateTime::now_utc();
        Ok(Some(left.try_into().unwrap_or(Duration::ZERO)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::store::conformance;

    #[tokio::test]
    async fn passes_the_conversation_store_conformance_suite() {
        let closed_ttl = Duration::from_secs(3600);
        let store = MemoryStore::new(closed_ttl);
        conformance::run_all(&store, closed_ttl).await;
    }

    #[tokio::test]
    async fn closed_conversations_expire_after_the_ttl_and_open_ones_never() {
        let store = MemoryStore::new(Duration::from_secs(60));
        let site = SiteId::parse("s").expect("valid");
        let t0 = OffsetDateTime::now_utc();
        let mut ids = Vec::new();
        for _ in 0..2 {
            let new = NewConversation {
                site: site.clone(),
                id: ConversationId::generate(),
                visitor: VisitorId::generate(),
                user_id: None,
                locale: None,
                page_url: None,
                created_at: t0,
            };
            ids.push(new.id);
            store.create_conversation(new).await.expect("create");
        }
        store
            .set_status(&site, &ids[0], ConversationStatus::Closed, t0)
            .await
            .expect("close");
        assert_eq!(store.purge_expired(t0 + Duration::from_secs(59)), 0);
        assert_eq!(
            store.purge_expired(t0 + Duration::from_secs(3600 * 24 * 365)),
            1
        );
        assert!(
            store
                .conversation(&site, &ids[0])
                .await
                .expect("get")
                .is_none()
        );
        assert!(
            store
                .conversation(&site, &ids[1])
                .await
                .expect("get")
                .is_some(),
            "open conversations never expire"
        );
    }
}

#[async_trait::async_trait]
impl crate::ports::spend::SpendLedger for MemoryStore {
    async fn add_spend(
        &self,
        site: &SiteId,
        month: &str,
        micro_usd: u64,
    ) -> Result<u64, StoreError> {
        let mut state = self.lock();
        let total = state
            .spend
            .entry((site.clone(), month.to_string()))
            .or_insert(0);
        *total = total.saturating_add(micro_usd);
        Ok(*total)
    }

    async fn spent(&self, site: &SiteId, month: &str) -> Result<u64, StoreError> {
        let state = self.lock();
        Ok(state
            .spend
            .get(&(site.clone(), month.to_string()))
            .copied()
            .unwrap_or(0))
    }
}
