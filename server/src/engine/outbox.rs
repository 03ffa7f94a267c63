//! The handoff outbox: turns every recorded handoff into exactly one helpdesk ticket, however
//! often the helpdesk fails and whichever instance restarts (DESIGN.md "Health, retention,
//! scale": a helpdesk outage must not take chat down).
//!
//! - **Durable before any API call.** The store enters a handoff in the outbox in the same
//!   atomic step that records it ([`ConversationStore::open_handoff`]), so nothing that was
//!   announced to the visitor can be forgotten by a crash.
//! - **One worker per instance, any number of instances.** Each pass claims due handoffs with a
//!   lease ([`ConversationStore::claim_due_handoffs`]); a worker that dies mid-attempt leaves
//!   the lease to run out and another instance picks the handoff up.
//! - **Exactly one ticket.** A repeated attempt (after a timeout, a crash between the vendor
//!   accepting and our record, a restart) goes to the same [`Helpdesk::create_ticket`] with the
//!   same handoff id, which adapters make idempotent.
//! - **Retries** back off exponentially with jitter (backon), from [`RETRY_MIN`] to
//!   [`RETRY_MAX`], and never sooner than the helpdesk's `Retry-After`. Errors that a retry
//!   cannot fix (401, a 4xx validation error) are retried at [`RETRY_MAX`] and shown as
//!   `degraded` until an operator fixes the cause: a handoff is never dropped.
//! - **Visible.** [`HelpdeskCounters`] (tickets, failed attempts by kind, the last error,
//!   decision → ticket latency) feed `/readyz`'s body and its optional `helpdesk` part.

use crate::config::SiteSettings;
use crate::domain::HandoffTicket;
use crate::engine::summary;
use crate::engine::{HISTORY_LIMIT, ticket};
use crate::ids::EventId;
use crate::ports::chat::ChatModel;
use crate::ports::helpdesk::{Helpdesk, HelpdeskError};
use crate::ports::store::{ConversationStore, DueHandoff, StoreError};
use backon::BackoffBuilder;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// How long a claim keeps other workers off a handoff: longer than a whole batch of attempts
/// ([`BATCH`] × [`ATTEMPT_TIMEOUT`]), so no handoff is attempted twice at once.
pub const LEASE: Duration = Duration::from_secs(600);
/// Handoffs claimed per pass.
pub const BATCH: usize = 4;
/// Longest one delivery attempt may take (summary and helpdesk calls); then it is retried.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(120);
/// First retry delay.
pub const RETRY_MIN: Duration = Duration::from_secs(1);
/// Longest retry delay (and the delay for errors a retry cannot fix).
pub const RETRY_MAX: Duration = Duration::from_secs(300);
/// Decision → ticket latencies kept for the percentiles in `/readyz`.
const LATENCIES_KEPT: usize = 1000;

/// What the outbox did so far (this instance), for `/readyz` and metrics.
#[derive(Debug, Default)]
pub struct HelpdeskCounters {
    /// Tickets created and recorded.
    pub tickets: AtomicU64,
    /// Failed attempts that will be retried: 429.
    pub rate_limited: AtomicU64,
    /// Failed attempts that will be retried: 5xx, timeouts, no connection.
    pub unavailable: AtomicU64,
    /// Failed attempts a retry cannot fix (401/403, 4xx validation): an operator must act.
    pub refused: AtomicU64,
    state: Mutex<CounterState>,
}

#[derive(Debug, Default)]
struct CounterState {
    /// The last attempt's error, `None` after a success.
    last_error: Option<String>,
    /// Decision → ticket recorded, milliseconds, the last [`LATENCIES_KEPT`].
    latencies_ms: std::collections::VecDeque<u64>,
}

impl HelpdeskCounters {
    fn lock(&self) -> std::sync::MutexGuard<'_, CounterState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn succeeded(&self, latency: Duration) {
        self.tickets.fetch_add(1, Ordering::Relaxed);
        let mut state = self.lock();
        state.last_error = None;
        if state.latencies_ms.len() == LATENCIES_KEPT {
            state.latencies_ms.pop_front();
        }
        state
            .latencies_ms
            .push_back(u64::try_from(latency.as_millis()).unwrap_or(u64::MAX));
    }

    fn failed(&self, err: &HelpdeskError) {
        let counter = match err {
            HelpdeskError::RateLimited { .. } => &self.rate_limited,
            HelpdeskError::Unavailable(_) => &self.unavailable,
            HelpdeskError::Unauthorized(_) | HelpdeskError::Rejected { .. } => &self.refused,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.lock().last_error = Some(err.to_string());
    }

    /// The last attempt's error (`None`: it succeeded, or nothing was attempted yet).
    pub fn last_error(&self) -> Option<String> {
        self.lock().last_error.clone()
    }

    /// The decision → ticket latency of the last ticket, in ms.
    pub fn last_latency_ms(&self) -> Option<u64> {
        self.lock().latencies_ms.back().copied()
    }

    /// The `q`-quantile (0..1, nearest rank) of the decision → ticket latency in ms over the
    /// last tickets, `None` before the first.
    pub fn latency_ms(&self, q: f64) -> Option<u64> {
        let state = self.lock();
        let mut sorted: Vec<u64> = state.latencies_ms.iter().copied().collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_unstable();
        let rank = ((q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize).max(1);
        sorted.get(rank - 1).copied()
    }
}

/// The outcome of one delivery attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    /// The ticket exists and is recorded.
    Created(HandoffTicket),
    /// The helpdesk failed; the next attempt is due after `retry_in`.
    Retrying {
        error: HelpdeskError,
        retry_in: Duration,
    },
    /// The ticket existed: the visitor's `messages` follow-ups were added to it.
    Synced { messages: usize },
    /// Nothing to deliver (the handoff was resolved or erased meanwhile).
    Skipped,
}

/// The outbox worker of one instance.
pub struct Outbox {
    store: Arc<dyn ConversationStore>,
    helpdesk: Arc<dyn Helpdesk>,
    /// For LLM ticket summaries (`None`: extractive).
    chat: Option<Arc<dyn ChatModel>>,
    sites: Vec<Arc<SiteSettings>>,
    counters: Arc<HelpdeskCounters>,
    wake: Arc<Notify>,
    backoff: backon::ExponentialBuilder,
    /// How often the worker looks for due handoffs when nothing wakes it (`helpdesk.outbox_poll`).
    poll: Duration,
    /// The earliest retry this worker scheduled: it wakes then rather than at the next poll.
    next_retry: Mutex<Option<tokio::time::Instant>>,
}

impl Outbox {
    pub fn new(
        store: Arc<dyn ConversationStore>,
        helpdesk: Arc<dyn Helpdesk>,
        chat: Option<Arc<dyn ChatModel>>,
        sites: Vec<Arc<SiteSettings>>,
        poll: Duration,
    ) -> Self {
        Self {
            store,
            helpdesk,
            chat,
            sites,
            counters: Arc::new(HelpdeskCounters::default()),
            wake: Arc::new(Notify::new()),
            backoff: backon::ExponentialBuilder::default()
                .with_min_delay(RETRY_MIN)
                .with_max_delay(RETRY_MAX)
                .with_factor(2.0)
                .with_jitter()
                .without_max_times(),
            poll,
            next_retry: Mutex::new(None),
        }
    }

    pub fn helpdesk_name(&self) -> &'static str {
        self.helpdesk.adapter_name()
    }

    pub fn counters(&self) -> &HelpdeskCounters {
        &self.counters
    }

    /// Wakes this instance's worker (a handoff was just opened here).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Delivers due handoffs until `stop` is cancelled: at once when woken, else every
    /// `helpdesk.outbox_poll`. A store that is down is retried on the next pass.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        loop {
            let poll_at = tokio::time::Instant::now() + self.poll;
            let wake_at = self
                .next_retry
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .map_or(poll_at, |retry| retry.min(poll_at));
            tokio::select! {
                () = stop.cancelled() => break,
                () = self.wake.notified() => {}
                () = tokio::time::sleep_until(wake_at) => {}
            }
            {
                // A retry that came due is handled by this pass; a later one stays scheduled.
                let mut next = self
                    .next_retry
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                if next.is_some_and(|retry| retry <= tokio::time::Instant::now()) {
                    *next = None;
                }
            }
            // Passes continue while a full batch was claimed (a backlog after an outage).
            loop {
                match self.deliver_due().await {
                    Ok(n) if n >= BATCH => continue,
                    Ok(_) => break,
                    Err(err) => {
                        warn!(error = %err, "outbox: cannot claim due handoffs");
                        break;
                    }
                }
            }
        }
    }

    /// One pass: claims the due handoffs and attempts each once. Returns how many it claimed.
    ///
    /// Errors: the store failed to claim (per-handoff store errors are logged and the handoff
    /// comes back when its lease ends).
    pub async fn deliver_due(&self) -> Result<usize, StoreError> {
        let now = OffsetDateTime::now_utc();
        let claimed = self
            .store
            .claim_due_handoffs(now, now + LEASE, BATCH)
            .await?;
        let n = claimed.len();
        for due in claimed {
            match tokio::time::timeout(ATTEMPT_TIMEOUT, self.deliver(&due)).await {
                Ok(Ok(_)) => {}
                Ok(Err(err)) => {
                    warn!(site = %due.site, conversation = %due.conversation, error = %err,
                        "outbox: store failed during delivery; retried when the lease ends");
                }
                Err(_) => {
                    let error = HelpdeskError::Unavailable(format!(
                        "the attempt took longer than {} s",
                        ATTEMPT_TIMEOUT.as_secs()
                    ));
                    self.counters.failed(&error);
                    let retry_in = self.retry_delay(&error, due.attempts);
                    warn!(site = %due.site, conversation = %due.conversation, "outbox: attempt timed out; will retry");
                    self.store
                        .retry_handoff_at(
                            &due.site,
                            &due.conversation,
                            OffsetDateTime::now_utc() + retry_in,
                        )
                        .await?;
                }
            }
        }
        Ok(n)
    }

    /// One delivery attempt of a claimed handoff.
    ///
    /// Errors: the store failed (the handoff stays leased and is retried after the lease).
    pub async fn deliver(&self, due: &DueHandoff) -> Result<Delivery, StoreError> {
        let store = &self.store;
        let (site_id, id) = (&due.site, &due.conversation);
        let (Some(conversation), Some(handoff)) = (
            store.conversation(site_id, id).await?,
            store.pending_handoff(site_id, id).await?,
        ) else {
            // Resolved, expired or erased after the claim: nothing to create.
            store.drop_from_outbox(site_id, id).await?;
            return Ok(Delivery::Skipped);
        };
        if let Some(existing) = store
            .handoff_ticket(site_id, id)
            .await?
            .filter(|ticket| ticket.handoff_id == handoff.handoff_id)
        {
            return self.sync_follow_ups(due, existing).await;
        }
        let events = store
            .events_after(site_id, id, EventId::ZERO, HISTORY_LIMIT)
            .await?;
        let synced_through = events.last().map_or(EventId::ZERO, |event| event.event_id);
        let lines = ticket::transcript(&events);
        let summary = summary::summarize(self.chat.as_deref(), &lines).await;
        let site = self.sites.iter().find(|site| &site.id == site_id);
        let team = site.and_then(|site| {
            let id = handoff.team.as_deref()?;
            site.routing.teams.iter().find(|team| team.id == id)
        });
        let request = ticket::compose(
            &conversation,
            &handoff,
            &events,
            &summary,
            team.map(|team| team.name.as_str()),
        );
        match self.helpdesk.create_ticket(&request).await {
            Ok(created) => {
                let now = OffsetDateTime::now_utc();
                let ticket = HandoffTicket {
                    handoff_id: handoff.handoff_id,
                    helpdesk: self.helpdesk.adapter_name().to_string(),
                    id: created.id,
                    url: created.url,
                    created_at: now,
                    synced_through,
                };
                if !store.record_ticket(site_id, id, ticket.clone()).await? {
                    // Resolved or erased while the helpdesk created it: the ticket exists there
                    // but no handoff waits for it here (its webhooks answer `unknown_ticket`).
                    warn!(site = %site_id, conversation = %id, ticket = ticket.id,
                        "the handoff was resolved while its ticket was created; not recorded");
                    return Ok(Delivery::Skipped);
                }
                let latency = (now - handoff.requested_at)
                    .try_into()
                    .unwrap_or(Duration::ZERO);
                self.counters.succeeded(latency);
                info!(site = %site_id, conversation = %id, handoff = %handoff.handoff_id,
                    helpdesk = ticket.helpdesk, ticket = ticket.id, attempts = due.attempts + 1,
                    latency_ms = latency.as_millis() as u64, "handoff ticket created");
                Ok(Delivery::Created(ticket))
            }
            Err(error) => {
                self.counters.failed(&error);
                let retry_in = self.retry_delay(&error, due.attempts);
                warn!(site = %site_id, conversation = %id, handoff = %handoff.handoff_id,
                    helpdesk = self.helpdesk.adapter_name(), attempts = due.attempts + 1,
                    retry_in_ms = retry_in.as_millis() as u64, error = %error,
                    "handoff ticket not created; will retry");
                store
                    .retry_handoff_at(site_id, id, OffsetDateTime::now_utc() + retry_in)
                    .await?;
                // Wake for it then (a few ms late, so the claim finds it due).
                let at = tokio::time::Instant::now() + retry_in + Duration::from_millis(5);
                let mut next = self
                    .next_retry
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                *next = Some(next.map_or(at, |earlier| earlier.min(at)));
                Ok(Delivery::Retrying { error, retry_in })
            }
        }
    }

    /// Adds the visitor's messages written since the ticket's `synced_through` to the ticket
    /// (one internal note), then records how far the helpdesk has the conversation.
    async fn sync_follow_ups(
        &self,
        due: &DueHandoff,
        existing: HandoffTicket,
    ) -> Result<Delivery, StoreError> {
        let store = &self.store;
        let (site_id, id) = (&due.site, &due.conversation);
        let events = store
            .events_after(site_id, id, existing.synced_through, HISTORY_LIMIT)
            .await?;
        let Some(last) = events.last().map(|event| event.event_id) else {
            store.record_ticket(site_id, id, existing).await?;
            return Ok(Delivery::Synced { messages: 0 });
        };
        let messages: Vec<&str> = events
            .iter()
            .filter_map(|event| match &event.kind {
                crate::domain::EventKind::VisitorMessage { text, .. } => Some(text.as_str()),
                _ => None,
            })
            .collect();
        if !messages.is_empty() && existing.helpdesk != "inbox" {
            let comment = crate::ports::helpdesk::TicketComment {
                body: format!(
                    "The visitor wrote in the chat:\n\n{}",
                    messages.join("\n\n")
                ),
                public: false,
            };
            if let Err(error) = self.helpdesk.add_comment(&existing.id, &comment).await {
                self.counters.failed(&error);
                let retry_in = self.retry_delay(&error, due.attempts);
                warn!(site = %site_id, conversation = %id, ticket = existing.id, attempts = due.attempts + 1,
                    retry_in_ms = retry_in.as_millis() as u64, error = %error,
                    "the visitor's follow-up did not reach the ticket; will retry");
                store
                    .retry_handoff_at(site_id, id, OffsetDateTime::now_utc() + retry_in)
                    .await?;
                return Ok(Delivery::Retrying { error, retry_in });
            }
        }
        let n = messages.len();
        store
            .record_ticket(
                site_id,
                id,
                HandoffTicket {
                    synced_through: last,
                    ..existing
                },
            )
            .await?;
        Ok(Delivery::Synced { messages: n })
    }

    /// The wait before the next attempt after `attempts` failed ones and `error`.
    fn retry_delay(&self, error: &HelpdeskError, attempts: u32) -> Duration {
        if !error.is_retryable() {
            return RETRY_MAX;
        }
        let backoff = self
            .backoff
            .build()
            .nth(attempts as usize)
            .unwrap_or(RETRY_MAX)
            // backon adds the jitter after its own cap.
            .min(RETRY_MAX);
        match error {
            HelpdeskError::RateLimited {
                retry_after: Some(wait),
            } => backoff.max(*wait),
            _ => backoff,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbox() -> Outbox {
        let store = Arc::new(crate::adapters::memory_store::MemoryStore::new(
            Duration::from_secs(60),
        ));
        Outbox::new(
            store,
            Arc::new(crate::adapters::inbox::InboxHelpdesk),
            None,
            Vec::new(),
            Duration::from_secs(1),
        )
    }

    #[test]
    fn retry_delays_grow_from_a_second_are_jittered_and_honour_retry_after() {
        let outbox = outbox();
        let unavailable = HelpdeskError::Unavailable("HTTP 500".into());
        // Exponential from 1 s (factor 2) with up to 100 % jitter.
        let first: Vec<Duration> = (0..20)
            .map(|_| outbox.retry_delay(&unavailable, 0))
            .collect();
        assert!(
            first.iter().all(|d| *d >= RETRY_MIN && *d <= RETRY_MIN * 2),
            "{first:?}"
        );
        assert!(
            first.iter().any(|d| *d != first[0]),
            "the jitter is random (a fixed seed would retry every instance in step): {first:?}"
        );
        let later = outbox.retry_delay(&unavailable, 3);
        assert!(
            later >= Duration::from_secs(8) && later <= Duration::from_secs(16),
            "{later:?}"
        );
        assert_eq!(outbox.retry_delay(&unavailable, 40), RETRY_MAX, "capped");
        let limited = HelpdeskError::RateLimited {
            retry_after: Some(Duration::from_secs(30)),
        };
        assert_eq!(outbox.retry_delay(&limited, 0), Duration::from_secs(30));
        let refused = HelpdeskError::Unauthorized("bad token".into());
        assert_eq!(outbox.retry_delay(&refused, 0), RETRY_MAX);
    }
}
