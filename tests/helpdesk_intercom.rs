//! The Intercom adapter against a local server speaking Intercom's REST wire format
//! (`tests/support/fake_intercom.rs`, wire-facts §3): the contact (a found or created user for a
//! verified visitor, a lead otherwise), the conversation with its context note and assignment,
//! the errors, and exactly one conversation and one note per handoff across retries and
//! crashes. Intercom has no idempotency key and its search index can lag behind a create; the
//! adapter's module docs say what that leaves open, and the lag test below checks what it
//! promises under lag (a retry after the index caught up), not the window it cannot close.

use frontdesk::adapters::intercom::{
    INTERCOM_VERSION, IntercomConfig, IntercomHelpdesk, handoff_marker,
};
use frontdesk::config::Priority;
use frontdesk::ports::helpdesk::{Helpdesk, HelpdeskError, Requester, TicketRequest};
use frontdesk_tests::fake_intercom::{
    ADMIN_ID, AGENT_ADMIN_ID, FakeIntercom, Fault, TEAM_ID, TOKEN,
};
use serde_json::{Value, json};
use std::time::Duration;

fn config(fake: &FakeIntercom) -> IntercomConfig {
    IntercomConfig {
        base_url: fake.base_url(),
        access_token: TOKEN.into(),
        admin_id: ADMIN_ID.into(),
        assignee_id: Some(AGENT_ADMIN_ID.into()),
        timeout: Duration::from_secs(2),
    }
}

fn adapter(fake: &FakeIntercom) -> IntercomHelpdesk {
    IntercomHelpdesk::new(config(fake)).expect("builds")
}

fn request(user_id: Option<&str>) -> TicketRequest {
    TicketRequest {
        handoff_id: uuid::Uuid::new_v4().to_string(),
        subject: "Refund for a double charge".into(),
        body: "Summary: charged twice in March.\n\nTranscript:\nVisitor: I was charged <twice> & \
               want it back"
            .into(),
        requester: Requester {
            name: Some("Ana Visitor".into()),
            email: Some("ana@example.com".into()),
            user_id: user_id.map(str::to_string),
        },
        priority: Priority::High,
        tags: vec!["frontdesk".into(), "billing_dispute".into()],
        requested_at: time::OffsetDateTime::now_utc(),
    }
}

fn contact_of(conversation: &Value) -> String {
    conversation["contacts"]["contacts"][0]["id"]
        .as_str()
        .expect("a contact")
        .to_string()
}

#[tokio::test]
async fn creates_one_conversation_with_the_context_note_and_the_assignment_for_a_verified_user() {
    let fake = FakeIntercom::start().await;
    let request = request(Some("user-42"));
    let ticket = adapter(&fake)
        .create_ticket(&request)
        .await
        .expect("created");
    let marker = handoff_marker(&request.handoff_id);

    // The contact: a new user keyed by the verified user id.
    let contacts = fake.contacts();
    assert_eq!(contacts.len(), 1);
    assert_eq!(
        (
            &contacts[0]["role"],
            &contacts[0]["external_id"],
            &contacts[0]["email"],
            &contacts[0]["name"]
        ),
        (
            &json!("user"),
            &json!("user-42"),
            &json!("ana@example.com"),
            &json!("Ana Visitor")
        )
    );

    // The conversation, from that user, its first message carrying the subject and the marker.
    let conversations = fake.conversations();
    assert_eq!(conversations.len(), 1);
    let conversation = &conversations[0];
    assert_eq!(ticket.id, conversation["id"].as_str().unwrap());
    assert_eq!(
        ticket.url.as_deref(),
        Some(
            format!(
                "https://app.intercom.com/a/inbox/_/inbox/conversation/{}",
                ticket.id
            )
            .as_str()
        )
    );
    assert_eq!(
        contact_of(conversation),
        contacts[0]["id"].as_str().unwrap()
    );
    assert_eq!(conversation["source"]["author"]["type"], "user");
    assert_eq!(
        conversation["source"]["body"],
        format!("<p>Refund for a double charge</p><p>Ref: {marker}</p>")
    );

    // The context: one internal note by our admin, escaped HTML, with the marker.
    let notes = fake.notes(&ticket.id);
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0]["author"]["id"], ADMIN_ID);
    assert_eq!(
        notes[0]["body"],
        format!(
            "<p>Summary: charged twice in March.</p><p>Transcript:<br>Visitor: I was charged \
             &lt;twice&gt; &amp; want it back</p><p>Ref: {marker}</p>"
        )
    );

    // The assignment, as Intercom shows it: a number in admin_assignee_id.
    assert_eq!(fake.assignments(&ticket.id).len(), 1);
    assert_eq!(
        conversation["admin_assignee_id"],
        json!(AGENT_ADMIN_ID.parse::<u64>().unwrap())
    );
    // Search (nothing), lookup (404), contact, conversation, GET, note, assignment.
    assert_eq!(fake.n_requests(), 7);
}

#[tokio::test]
async fn a_known_user_is_found_by_external_id_and_not_created_again() {
    let fake = FakeIntercom::start().await;
    let known = fake.add_user("user-42", Some("ana@example.com"));
    let ticket = adapter(&fake)
        .create_ticket(&request(Some("user-42")))
        .await
        .expect("created");
    assert_eq!(fake.contacts().len(), 1, "no second contact");
    let conversations = fake.conversations();
    assert_eq!(conversations.len(), 1);
    assert_eq!(conversations[0]["id"], ticket.id.as_str());
    assert_eq!(contact_of(&conversations[0]), known);
}

#[tokio::test]
async fn an_anonymous_visitor_becomes_a_lead_and_a_team_can_be_the_assignee() {
    let fake = FakeIntercom::start().await;
    let helpdesk = IntercomHelpdesk::new(IntercomConfig {
        assignee_id: Some(TEAM_ID.into()),
        ..config(&fake)
    })
    .expect("builds");
    let request = request(None);
    let ticket = helpdesk.create_ticket(&request).await.expect("created");
    let contacts = fake.contacts();
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0]["role"], "lead");
    assert_eq!(
        contacts[0]["external_id"],
        Value::Null,
        "leads carry no external id"
    );
    assert_eq!(contacts[0]["email"], "ana@example.com");
    let conversation = &fake.conversations()[0];
    assert_eq!(conversation["source"]["author"]["type"], "lead");
    assert_eq!(
        conversation["team_assignee_id"],
        json!(TEAM_ID.parse::<u64>().unwrap())
    );
    assert_eq!(fake.notes(&ticket.id).len(), 1);
    // The same handoff again: found by its marker; no second lead, conversation or note.
    let again = helpdesk.create_ticket(&request).await.expect("found");
    assert_eq!(again, ticket);
    assert_eq!((fake.contacts().len(), fake.conversations().len()), (1, 1));
    assert_eq!(fake.notes(&ticket.id).len(), 1);
    assert_eq!(fake.assignments(&ticket.id).len(), 1);
}

#[tokio::test]
async fn a_second_call_for_the_same_handoff_creates_nothing_new() {
    let fake = FakeIntercom::start().await;
    let helpdesk = adapter(&fake);
    let request = request(Some("user-42"));
    let first = helpdesk.create_ticket(&request).await.expect("created");
    let before = fake.n_requests();
    let second = helpdesk.create_ticket(&request).await.expect("found");
    assert_eq!(first, second);
    assert_eq!(
        fake.n_requests() - before,
        2,
        "a search and a GET: the note and the assignment are in place"
    );
    assert_eq!((fake.contacts().len(), fake.conversations().len()), (1, 1));
    assert_eq!(fake.notes(&first.id).len(), 1);
    assert_eq!(fake.assignments(&first.id).len(), 1);
}

#[tokio::test]
async fn a_crash_after_intercom_accepted_the_conversation_still_ends_with_one_conversation_and_one_note()
 {
    let fake = FakeIntercom::start().await;
    let helpdesk = adapter(&fake);
    let request = request(Some("user-42"));
    // Intercom stores the conversation, and the answer never arrives.
    fake.push_fault(Fault::CrashAfterCreate);
    let first = helpdesk.create_ticket(&request).await;
    assert!(
        matches!(first, Err(HelpdeskError::Unavailable(_))),
        "{first:?}"
    );
    let conversations = fake.conversations();
    assert_eq!(conversations.len(), 1, "Intercom has it");
    let id = conversations[0]["id"].as_str().unwrap().to_string();
    assert!(fake.notes(&id).is_empty(), "the note was never sent");
    let retried = helpdesk
        .create_ticket(&request)
        .await
        .expect("the retry finds it");
    assert_eq!(retried.id, id);
    assert_eq!(fake.conversations().len(), 1, "exactly one conversation");
    assert_eq!(fake.notes(&id).len(), 1, "exactly one note");
    assert_eq!(fake.assignments(&id).len(), 1);
    assert_eq!(fake.contacts().len(), 1);
}

#[tokio::test]
async fn a_crash_after_the_note_was_stored_adds_no_second_note() {
    let fake = FakeIntercom::start().await;
    let helpdesk = adapter(&fake);
    let request = request(None);
    fake.push_fault(Fault::CrashAfterNote);
    let first = helpdesk.create_ticket(&request).await;
    assert!(
        matches!(first, Err(HelpdeskError::Unavailable(_))),
        "{first:?}"
    );
    let id = fake.conversations()[0]["id"].as_str().unwrap().to_string();
    assert_eq!(fake.notes(&id).len(), 1, "Intercom stored the note");
    assert!(fake.assignments(&id).is_empty());
    let retried = helpdesk.create_ticket(&request).await.expect("completed");
    assert_eq!(retried.id, id);
    assert_eq!(fake.notes(&id).len(), 1, "still one note");
    assert_eq!(fake.assignments(&id).len(), 1, "the assignment follows");
    assert_eq!((fake.contacts().len(), fake.conversations().len()), (1, 1));
}

#[tokio::test]
async fn a_user_created_by_a_concurrent_attempt_is_found_after_the_conflict() {
    let fake = FakeIntercom::start().await;
    let known = fake.add_user("user-42", Some("ana@example.com"));
    // Our lookup misses the user another attempt has just created; our create gets 409.
    fake.push_fault(Fault::StaleContactLookup);
    adapter(&fake)
        .create_ticket(&request(Some("user-42")))
        .await
        .expect("created");
    assert_eq!(fake.contacts().len(), 1);
    assert_eq!(contact_of(&fake.conversations()[0]), known);
}

#[tokio::test]
async fn an_email_that_is_another_users_is_left_off_the_new_user() {
    let fake = FakeIntercom::start().await;
    let someone_else = fake.add_user("user-7", Some("ana@example.com"));
    let request = request(Some("user-42"));
    let ticket = adapter(&fake)
        .create_ticket(&request)
        .await
        .expect("created");
    let contacts = fake.contacts();
    assert_eq!(contacts.len(), 2);
    let user = &contacts[1];
    assert_eq!(
        (&user["external_id"], &user["email"]),
        (&json!("user-42"), &Value::Null)
    );
    let conversation = &fake.conversations()[0];
    assert_ne!(
        contact_of(conversation),
        someone_else,
        "never on another person's contact by an unverified email"
    );
    assert_eq!(contact_of(conversation), user["id"].as_str().unwrap());
    assert_eq!(fake.notes(&ticket.id).len(), 1);
}

#[tokio::test]
async fn rate_limits_wait_until_the_reset_and_server_errors_are_retryable() {
    let fake = FakeIntercom::start().await;
    let helpdesk = adapter(&fake);
    // 429 with X-RateLimit-Reset = now + 30 s and no Retry-After.
    fake.push_fault(Fault::RateLimited(30));
    let err = helpdesk.create_ticket(&request(None)).await.unwrap_err();
    match &err {
        HelpdeskError::RateLimited {
            retry_after: Some(wait),
        } => assert!(
            *wait > Duration::from_secs(28) && *wait <= Duration::from_secs(30),
            "{wait:?}"
        ),
        other => panic!("expected a rate limit with the reset delay, got {other:?}"),
    }
    assert!(err.is_retryable());
    fake.push_fault(Fault::ServerError);
    let err = helpdesk.create_ticket(&request(None)).await.unwrap_err();
    assert!(
        matches!(&err, HelpdeskError::Unavailable(m) if m.contains("500")),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert!(fake.conversations().is_empty());
    assert!(fake.contacts().is_empty());
}

#[tokio::test]
async fn a_bad_token_is_unauthorized_and_not_retryable() {
    let fake = FakeIntercom::start().await;
    let err = IntercomHelpdesk::new(IntercomConfig {
        access_token: "wrong".into(),
        ..config(&fake)
    })
    .expect("builds")
    .create_ticket(&request(None))
    .await
    .unwrap_err();
    assert_eq!(
        err,
        HelpdeskError::Unauthorized("unauthorized: Access Token Invalid".into())
    );
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn a_wrong_admin_id_is_rejected_with_intercoms_message() {
    let fake = FakeIntercom::start().await;
    let err = IntercomHelpdesk::new(IntercomConfig {
        admin_id: "123".into(),
        ..config(&fake)
    })
    .expect("builds")
    .create_ticket(&request(None))
    .await
    .unwrap_err();
    assert_eq!(
        err,
        HelpdeskError::Rejected {
            status: 400,
            message: "parameter_invalid: Admin not found".into()
        }
    );
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn every_request_pins_the_version_the_fake_insists_on() {
    let fake = FakeIntercom::start().await;
    adapter(&fake)
        .create_ticket(&request(Some("user-42")))
        .await
        .expect("created");
    assert_eq!(
        fake.versions_seen(),
        vec![Some(INTERCOM_VERSION.to_string())]
    );
    // The fake does refuse a request without it.
    let response = reqwest::Client::new()
        .get(format!("{}/conversations/1", fake.base_url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["type"], "error.list");
    assert_eq!(body["errors"][0]["code"], "intercom_version_missing");
}

#[tokio::test]
async fn search_matches_the_marker_as_a_word_not_a_phrase() {
    let fake = FakeIntercom::start().await;
    let request = request(None);
    let ticket = adapter(&fake)
        .create_ticket(&request)
        .await
        .expect("created");
    let search = |query: Value| {
        let url = format!("{}/conversations/search", fake.base_url());
        async move {
            let body: Value = reqwest::Client::new()
                .post(url)
                .bearer_auth(TOKEN)
                .header("Intercom-Version", INTERCOM_VERSION)
                .json(&json!({ "query": query }))
                .send()
                .await
                .expect("answers")
                .json()
                .await
                .expect("json");
            body["total_count"].as_u64().expect("a count")
        }
    };
    // Intercom matches source.body word by word: a one-word marker is found...
    let marker = handoff_marker(&request.handoff_id);
    assert_eq!(
        search(json!({"field": "source.body", "operator": "=", "value": marker})).await,
        1
    );
    // ...also combined with the contact, as the brief's AND query does...
    let contact = contact_of(&fake.conversations()[0]);
    assert_eq!(
        search(json!({"operator": "AND", "value": [
            {"field": "contact_ids", "operator": "=", "value": contact},
            {"field": "source.body", "operator": "~", "value": marker}]}))
        .await,
        1
    );
    // ...while a phrase with punctuation, spanning several words, is not.
    let phrase = format!("frontdesk-handoff:{}", request.handoff_id);
    assert_eq!(
        search(json!({"field": "source.body", "operator": "~", "value": phrase})).await,
        0
    );
    assert_eq!(fake.conversations()[0]["id"], ticket.id.as_str());
}

/// With Intercom's search index lagging behind its database, what the adapter promises: users,
/// notes and assignments do not depend on search (lookup by external id, conversation by id),
/// and a retry once the index has caught up (the outbox's backoff) finds the conversation. A
/// retry *within* the lag after a crash would create a second conversation; that window is the
/// residual risk the adapter's docs describe, and is not asserted here.
#[tokio::test]
async fn with_search_lag_a_retry_after_the_index_caught_up_finds_the_conversation() {
    let fake = FakeIntercom::start().await;
    fake.set_search_lag(Duration::from_secs(600));
    let helpdesk = adapter(&fake);

    // A handoff under lag completes in one attempt: one conversation, note and assignment.
    let fresh = request(Some("user-1"));
    let ticket = helpdesk.create_ticket(&fresh).await.expect("created");
    assert_eq!(fake.notes(&ticket.id).len(), 1);
    assert_eq!(fake.assignments(&ticket.id).len(), 1);

    // A crash after Intercom accepted the create; the conversation is not in search yet.
    let request = request(Some("user-42"));
    fake.push_fault(Fault::CrashAfterCreate);
    assert!(helpdesk.create_ticket(&request).await.is_err());
    assert_eq!(fake.conversations().len(), 2);
    // The index catches up before the outbox's retry comes due.
    fake.catch_up_search_index();
    let retried = helpdesk.create_ticket(&request).await.expect("found");
    let conversations = fake.conversations();
    assert_eq!(
        conversations.len(),
        2,
        "no second conversation for the handoff"
    );
    assert_eq!(retried.id, conversations[1]["id"].as_str().unwrap());
    assert_eq!(fake.notes(&retried.id).len(), 1);
    assert_eq!(fake.assignments(&retried.id).len(), 1);
    // Users come from the lookup by external id, never from search: one per user id.
    assert_eq!(fake.contacts().len(), 2);
}
