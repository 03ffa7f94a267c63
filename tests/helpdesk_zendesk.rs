//! The Zendesk adapter against a local server speaking Zendesk's wire format
//! (`tests/support/fake_zendesk.rs`, wire-facts §1): the create body and auth, its errors, and
//! exactly one ticket per handoff across retries, a crash after Zendesk accepted the create,
//! and a retry after the idempotency key expired.

use frontdesk::adapters::zendesk::{ZendeskConfig, ZendeskHelpdesk};
use frontdesk::config::Priority;
use frontdesk::ports::helpdesk::{Helpdesk, HelpdeskError, Requester, TicketRequest};
use frontdesk_tests::fake_zendesk::{EMAIL, FakeZendesk, Fault, TOKEN};
use std::time::Duration;

fn adapter(fake: &FakeZendesk, token: &str) -> ZendeskHelpdesk {
    ZendeskHelpdesk::new(ZendeskConfig {
        base_url: fake.base_url(),
        email: EMAIL.into(),
        api_token: token.into(),
        timeout: Duration::from_secs(2),
    })
    .expect("builds")
}

fn request() -> TicketRequest {
    TicketRequest {
        handoff_id: uuid::Uuid::new_v4().to_string(),
        subject: "Refund for a double charge".into(),
        body: "Summary: charged twice in March.\n\nTranscript:\nVisitor: I was charged twice"
            .into(),
        requester: Requester {
            name: Some("Ana Visitor".into()),
            email: Some("ana@example.com".into()),
            user_id: None,
        },
        priority: Priority::High,
        tags: vec!["frontdesk".into(), "billing_dispute".into()],
        requested_at: time::OffsetDateTime::now_utc(),
    }
}

#[tokio::test]
async fn creates_one_internal_ticket_with_the_context() {
    let fake = FakeZendesk::start().await;
    let request = request();
    let ticket = adapter(&fake, TOKEN)
        .create_ticket(&request)
        .await
        .expect("created");
    let tickets = fake.tickets();
    assert_eq!(tickets.len(), 1);
    assert_eq!(ticket.id, "1");
    assert_eq!(
        ticket.url.as_deref(),
        Some(format!("{}/api/v2/tickets/1.json", fake.base_url()).as_str())
    );
    let stored = &tickets[0];
    assert_eq!(stored["external_id"], request.handoff_id.as_str());
    assert_eq!(stored["priority"], "high");
    assert_eq!(
        stored["comment"]["public"], false,
        "the context is an internal note"
    );
    assert_eq!(stored["requester"]["email"], "ana@example.com");
    assert_eq!(
        stored["tags"],
        serde_json::json!(["frontdesk", "billing_dispute"])
    );
}

#[tokio::test]
async fn a_crash_after_zendesk_accepted_still_ends_with_one_ticket() {
    let fake = FakeZendesk::start().await;
    let helpdesk = adapter(&fake, TOKEN);
    let request = request();
    // Zendesk stores the ticket, and the answer never arrives.
    fake.push_fault(Fault::CrashAfterCreate);
    let first = helpdesk.create_ticket(&request).await;
    assert!(
        matches!(first, Err(HelpdeskError::Unavailable(_))),
        "{first:?}"
    );
    assert_eq!(fake.tickets().len(), 1, "Zendesk has it");
    let retried = helpdesk
        .create_ticket(&request)
        .await
        .expect("the retry finds it");
    assert_eq!(retried.id, "1");
    assert_eq!(fake.tickets().len(), 1, "exactly one ticket");
}

#[tokio::test]
async fn a_retry_past_the_idempotency_keys_lifetime_finds_the_ticket_by_external_id() {
    let fake = FakeZendesk::start().await;
    let helpdesk = adapter(&fake, TOKEN);
    let request = request();
    fake.push_fault(Fault::CrashAfterCreate);
    assert!(helpdesk.create_ticket(&request).await.is_err());
    // Two hours pass (the restart took long): Zendesk forgets the Idempotency-Key.
    fake.expire_keys();
    let retried = helpdesk
        .create_ticket(&request)
        .await
        .expect("found by external_id");
    assert_eq!(retried.id, "1");
    assert_eq!(fake.tickets().len(), 1);
}

#[tokio::test]
async fn two_attempts_at_once_create_one_ticket() {
    let fake = FakeZendesk::start().await;
    let (a, b) = (adapter(&fake, TOKEN), adapter(&fake, TOKEN));
    let request = request();
    // Both look up first (nothing yet), then both create with the same key: Zendesk replays
    // the first create for the second (x-idempotency-lookup: hit).
    let (first, second) = tokio::join!(a.create_ticket(&request), b.create_ticket(&request));
    assert_eq!(first.expect("created"), second.expect("replayed or found"));
    assert_eq!(fake.tickets().len(), 1);
}

#[tokio::test]
async fn rate_limits_with_text_bodies_and_server_errors_are_retryable() {
    let fake = FakeZendesk::start().await;
    let helpdesk = adapter(&fake, TOKEN);
    fake.push_fault(Fault::RateLimited(7));
    let err = helpdesk.create_ticket(&request()).await.unwrap_err();
    assert_eq!(
        err,
        HelpdeskError::RateLimited {
            retry_after: Some(Duration::from_secs(7))
        }
    );
    assert!(err.is_retryable());
    fake.push_fault(Fault::ServerError);
    let err = helpdesk.create_ticket(&request()).await.unwrap_err();
    assert!(
        matches!(&err, HelpdeskError::Unavailable(m) if m.contains("500")),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert!(fake.tickets().is_empty());
}

#[tokio::test]
async fn bad_credentials_and_invalid_tickets_are_not_retryable() {
    let fake = FakeZendesk::start().await;
    let err = adapter(&fake, "wrong")
        .create_ticket(&request())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, HelpdeskError::Unauthorized(m) if m.contains("authenticate")),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    let mut empty = request();
    empty.body = String::new();
    let err = adapter(&fake, TOKEN)
        .create_ticket(&empty)
        .await
        .unwrap_err();
    match &err {
        HelpdeskError::Rejected {
            status: 422,
            message,
        } => {
            assert!(
                message.contains("RecordInvalid") && message.contains("cannot be blank"),
                "{message}"
            )
        }
        other => panic!("expected 422, got {other:?}"),
    }
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn the_same_key_with_another_body_resolves_to_the_first_ticket() {
    let fake = FakeZendesk::start().await;
    let helpdesk = adapter(&fake, TOKEN);
    let request = request();
    let first = helpdesk.create_ticket(&request).await.expect("created");
    // A retry whose body changed (a later summary) with the same handoff id: the lookup finds
    // the first ticket before any create.
    let mut changed = request.clone();
    changed.body.push_str("\nVisitor: hello?");
    let second = helpdesk
        .create_ticket(&changed)
        .await
        .expect("the first ticket");
    assert_eq!(first, second);
    assert_eq!(fake.tickets().len(), 1);
}
