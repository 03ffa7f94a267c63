//! The Freshdesk adapter against a local server speaking Freshdesk's API v2 wire format
//! (`tests/support/fake_freshdesk.rs`, wire-facts §2). Freshdesk has no idempotency key: a
//! repeated create makes a second ticket, so exactly-once rests on the adapter's lookup of its
//! handoff tag before each create.

use frontdesk::adapters::freshdesk::{FreshdeskConfig, FreshdeskHelpdesk, handoff_tag};
use frontdesk::config::Priority;
use frontdesk::ports::helpdesk::{Helpdesk, HelpdeskError, Requester, TicketRequest};
use frontdesk_tests::fake_freshdesk::{API_KEY, FakeFreshdesk, Fault};
use std::time::Duration;

fn adapter(fake: &FakeFreshdesk, key: &str) -> FreshdeskHelpdesk {
    FreshdeskHelpdesk::new(FreshdeskConfig {
        base_url: fake.base_url(),
        api_key: key.into(),
        timeout: Duration::from_secs(2),
    })
    .expect("builds")
}

fn request(email: Option<&str>) -> TicketRequest {
    TicketRequest {
        handoff_id: uuid::Uuid::new_v4().to_string(),
        subject: "Cannot sign in".into(),
        body: "Summary: locked out.\n<script>x</script>".into(),
        requester: Requester {
            name: Some("Ana".into()),
            email: email.map(str::to_string),
            user_id: None,
        },
        priority: Priority::Urgent,
        tags: vec!["frontdesk".into()],
        requested_at: time::OffsetDateTime::now_utc(),
    }
}

#[tokio::test]
async fn creates_a_chat_ticket_with_integer_codes_and_the_handoff_tag() {
    let fake = FakeFreshdesk::start().await;
    let request = request(Some("ana@example.com"));
    let ticket = adapter(&fake, API_KEY)
        .create_ticket(&request)
        .await
        .expect("created");
    assert_eq!(ticket.id, "1");
    assert_eq!(
        ticket.url.as_deref(),
        Some(format!("{}/a/tickets/1", fake.base_url()).as_str())
    );
    let stored = &fake.tickets()[0];
    assert_eq!(
        (
            stored["status"].as_i64(),
            stored["priority"].as_i64(),
            stored["source"].as_i64()
        ),
        (Some(2), Some(4), Some(7))
    );
    assert_eq!(stored["email"], "ana@example.com");
    assert_eq!(
        stored["tags"],
        serde_json::json!(["frontdesk", handoff_tag(&request.handoff_id)])
    );
    assert_eq!(
        stored["description"], "Summary: locked out.<br>&lt;script&gt;x&lt;/script&gt;",
        "HTML-escaped"
    );
}

#[tokio::test]
async fn a_crash_after_freshdesk_accepted_ends_with_one_ticket() {
    for email in [Some("ana@example.com"), None] {
        let fake = FakeFreshdesk::start().await;
        let helpdesk = adapter(&fake, API_KEY);
        let request = request(email);
        fake.push_fault(Fault::CrashAfterCreate);
        let first = helpdesk.create_ticket(&request).await;
        assert!(
            matches!(first, Err(HelpdeskError::Unavailable(_))),
            "{first:?}"
        );
        let retried = helpdesk
            .create_ticket(&request)
            .await
            .expect("found by its tag");
        assert_eq!(retried.id, "1");
        assert_eq!(
            fake.tickets().len(),
            1,
            "exactly one ticket (email {email:?})"
        );
    }
}

#[tokio::test]
async fn the_lookup_pages_through_a_busy_helpdesk() {
    let fake = FakeFreshdesk::start().await;
    let helpdesk = adapter(&fake, API_KEY);
    let request = request(None);
    fake.push_fault(Fault::CrashAfterCreate);
    assert!(helpdesk.create_ticket(&request).await.is_err());
    // 150 tickets from other visitors arrive before the retry: ours is on the second page.
    fake.add_other_tickets(150);
    let retried = helpdesk
        .create_ticket(&request)
        .await
        .expect("found on page 2");
    assert_eq!(retried.id, "1");
    assert_eq!(fake.tickets().len(), 151);
}

#[tokio::test]
async fn a_visitor_without_email_or_identity_still_gets_a_ticket() {
    let fake = FakeFreshdesk::start().await;
    let mut request = request(None);
    request.requester.name = None;
    adapter(&fake, API_KEY)
        .create_ticket(&request)
        .await
        .expect("created");
    let stored = &fake.tickets()[0];
    assert_eq!(
        stored["unique_external_id"],
        format!("frontdesk:{}", request.handoff_id)
    );
    assert_eq!(stored["name"], "Website visitor");
}

#[tokio::test]
async fn errors_say_whether_to_retry() {
    let fake = FakeFreshdesk::start().await;
    let helpdesk = adapter(&fake, API_KEY);
    fake.push_fault(Fault::RateLimited(30));
    let err = helpdesk.create_ticket(&request(None)).await.unwrap_err();
    assert_eq!(
        err,
        HelpdeskError::RateLimited {
            retry_after: Some(Duration::from_secs(30))
        }
    );
    fake.push_fault(Fault::ServerError);
    assert!(
        helpdesk
            .create_ticket(&request(None))
            .await
            .unwrap_err()
            .is_retryable()
    );
    let err = adapter(&fake, "wrong-key")
        .create_ticket(&request(None))
        .await
        .unwrap_err();
    assert!(matches!(err, HelpdeskError::Unauthorized(_)), "{err:?}");
    assert!(fake.tickets().is_empty());
}
