//! The ticket of a handoff: everything the agent needs so the visitor does not repeat
//! anything — a short summary, why the assistant handed off, the team, the classification
//! (category, priority, language) and the visitor's sentiment message by message (VADER
//! compound, Hutto & Gilbert 2014), what the assistant already tried (its answers and the
//! articles it cited, with links), the visitor (verified user id, email, page, locale) and the
//! whole transcript. Plain text: each helpdesk adapter formats it (Zendesk as an
//! internal note, Freshdesk as HTML).
//!
//! Built only from what the store keeps (the conversation and its events), so a ticket can be
//! (re)built after a restart by whichever instance delivers it.

use crate::config::Priority;
use crate::domain::{Conversation, EventKind, PendingHandoff, StoredEvent};
use crate::engine::analysis::vader;
use crate::engine::summary::{Speaker, Summary, TranscriptLine, transcript_text};
use crate::ports::helpdesk::{Requester, TicketRequest};

/// Longest subject, in characters.
const SUBJECT_CHARS: usize = 80;

/// The transcript lines of `events` (visitor, assistant and agent messages, in order).
pub fn transcript(events: &[StoredEvent]) -> Vec<TranscriptLine> {
    events
        .iter()
        .filter_map(|event| match &event.kind {
            EventKind::VisitorMessage { text, .. } => Some(TranscriptLine {
                speaker: Speaker::Visitor,
                text: text.clone(),
                cited: Vec::new(),
            }),
            EventKind::AssistantAnswer { text, sources, .. } => Some(TranscriptLine {
                speaker: Speaker::Assistant,
                text: text.clone(),
                cited: sources.iter().map(|s| s.title.clone()).collect(),
            }),
            EventKind::AgentMessage { text, .. } => Some(TranscriptLine {
                speaker: Speaker::Agent,
                text: text.clone(),
                cited: Vec::new(),
            }),
            _ => None,
        })
        .collect()
}

/// The ticket for `handoff` of `conversation`, whose events are `events`; `team` is the
/// routed team's visitor-safe name. The priority is the analysis's (`normal` without one).
pub fn compose(
    conversation: &Conversation,
    handoff: &PendingHandoff,
    events: &[StoredEvent],
    summary: &Summary,
    team: Option<&str>,
) -> TicketRequest {
    let priority = handoff
        .analysis
        .as_ref()
        .map_or(Priority::Normal, |analysis| analysis.priority);
    let first_question = events.iter().find_map(|e| match &e.kind {
        EventKind::VisitorMessage { text, .. } => Some(text.as_str()),
        _ => None,
    });
    let subject = match first_question {
        Some(text) => {
            let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
            if text.chars().count() > SUBJECT_CHARS {
                let cut: String = text.chars().take(SUBJECT_CHARS - 1).collect();
                format!("{}…", cut.trim_end())
            } else {
                text
            }
        }
        None => "Chat handoff".to_string(),
    };
    let reasons: Vec<&str> = handoff.reasons.iter().map(|r| r.as_str()).collect();
    let mut body = String::new();
    body.push_str(&format!("Summary: {}\n", summary.text));
    body.push_str(&format!(
        "Why the assistant handed off: {}\n",
        if reasons.is_empty() {
            "a draft answer awaits approval".to_string()
        } else {
            reasons.join(", ")
        }
    ));
    if let Some(team) = team {
        body.push_str(&format!("Team: {team}\n"));
    }
    if let Some(analysis) = &handoff.analysis {
        body.push_str(&format!(
            "Classification: {}, priority {}, language {}\n",
            analysis.category.as_deref().unwrap_or("unclassified"),
            analysis.priority.as_str(),
            analysis.language.as_deref().unwrap_or("unknown"),
        ));
    }
    let sentiments: Vec<String> = events
        .iter()
        .filter_map(|event| match &event.kind {
            EventKind::VisitorMessage { text, .. } => {
                Some(format!("{:+.2}", vader::compound(text)))
            }
            _ => None,
        })
        .collect();
    if !sentiments.is_empty() {
        body.push_str(&format!(
            "Visitor sentiment by message (-1..1): {}\n",
            sentiments.join(", ")
        ));
    }
    let mut tried = Vec::new();
    for event in events {
        if let EventKind::AssistantAnswer { sources, .. } = &event.kind {
            for source in sources {
                let line = match &source.url {
                    Some(url) => format!("- {} ({url})", source.title),
                    None => format!("- {}", source.title),
                };
                if !tried.contains(&line) {
                    tried.push(line);
                }
            }
        }
    }
    if !tried.is_empty() {
        body.push_str("Articles the assistant already pointed to:\n");
        body.push_str(&tried.join("\n"));
        body.push('\n');
    }
    if let Some(draft) = &handoff.draft {
        body.push_str(&format!("Draft answer for review:\n{}\n", draft.text));
    }
    body.push_str("\nVisitor:\n");
    if let Some(user_id) = &conversation.user_id {
        body.push_str(&format!("- verified user id: {user_id}\n"));
    }
    if let Some(tier) = &handoff.tier {
        body.push_str(&format!("- customer tier: {tier}\n"));
    }
    if let Some(email) = &conversation.contact_email {
        body.push_str(&format!("- email: {}\n", email.as_str()));
    }
    if let Some(page) = &conversation.page_url {
        body.push_str(&format!("- page: {page}\n"));
    }
    if let Some(locale) = &conversation.locale {
        body.push_str(&format!("- locale: {locale}\n"));
    }
    body.push_str(&format!("- conversation: {}\n", conversation.id));
    body.push_str("\nTranscript:\n");
    body.push_str(&transcript_text(&transcript(events)));
    let mut tags = vec!["frontdesk".to_string()];
    tags.extend(reasons.iter().map(|r| r.to_string()));
    if let Some(team) = &handoff.team {
        tags.push(format!("team_{team}"));
    }
    if let Some(tier) = &handoff.tier {
        tags.push(format!("tier_{tier}"));
    }
    TicketRequest {
        handoff_id: handoff.handoff_id.to_string(),
        subject,
        body,
        requester: Requester {
            name: None,
            email: conversation
                .contact_email
                .as_ref()
                .map(|e| e.as_str().to_string()),
            user_id: conversation.user_id.clone(),
        },
        priority,
        tags,
        requested_at: handoff.requested_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        Citation, ConversationStatus, DecisionKind, EmailAddress, HandoffAnalysis, HandoffStatus,
        ReasonCode,
    };
    use crate::engine::summary::SummarySource;
    use crate::ids::{
        AnswerId, ClientMessageId, ConversationId, EventId, HandoffId, MessageId, SiteId, VisitorId,
    };
    use time::macros::datetime;

    fn event(n: u64, kind: EventKind) -> StoredEvent {
        StoredEvent {
            event_id: EventId(n),
            created_at: datetime!(2026-12-01 10:00 UTC),
            kind,
        }
    }

    #[test]
    fn the_ticket_carries_summary_reasons_tries_identity_and_transcript() {
        let conversation = Conversation {
            site: SiteId::parse("demo").unwrap(),
            id: ConversationId::generate(),
            visitor: VisitorId::generate(),
            status: ConversationStatus::WaitingForAgent,
            created_at: datetime!(2026-12-01 10:00 UTC),
            status_changed_at: datetime!(2026-12-01 10:00 UTC),
            last_event_id: EventId(3),
            user_id: Some("user-42".into()),
            locale: Some("en-GB".into()),
            page_url: Some("https://shop.example/checkout".into()),
            contact_email: Some(EmailAddress::parse("ana@example.com").unwrap()),
            csat: None,
            assignee: None,
        };
        let events = vec![
            event(
                1,
                EventKind::VisitorMessage {
                    message_id: MessageId::generate(),
                    client_message_id: ClientMessageId::generate(),
                    text: "I was charged twice for my order this month and want my money back"
                        .into(),
                },
            ),
            event(
                2,
                EventKind::AssistantAnswer {
                    message_id: MessageId::generate(),
                    answer_id: AnswerId::generate(),
                    text: "Refunds take 5 business days.".into(),
                    sources: vec![Citation {
                        article_id: frontdesk_kb::DocumentId::parse("refunds/policy").unwrap(),
                        title: "Refund policy".into(),
                        url: Some("/refunds/policy".into()),
                    }],
                    confidence: 0.8,
                    decision: DecisionKind::Answer,
                    reasons: vec![],
                    usage: None,
                },
            ),
            event(
                3,
                EventKind::Handoff {
                    message_id: MessageId::generate(),
                    status: HandoffStatus::Pending,
                    team: None,
                    message: "Connecting you".into(),
                    reasons: vec![ReasonCode::BillingDispute],
                    queue_position: None,
                },
            ),
        ];
        let handoff = PendingHandoff {
            handoff_id: HandoffId::parse("0193e6a4-7b1c-7000-8000-000000000001").unwrap(),
            reasons: vec![ReasonCode::BillingDispute],
            event_id: EventId(3),
            requested_at: datetime!(2026-12-01 10:01 UTC),
            draft: None,
            team: Some("billing".into()),
            analysis: Some(HandoffAnalysis {
                category: Some("billing".into()),
                priority: Priority::High,
                language: Some("en".into()),
            }),
            tier: Some("enterprise".into()),
        };
        let summary = Summary {
            text: "Charged twice; wants a refund.".into(),
            source: SummarySource::Extractive,
        };
        let ticket = compose(
            &conversation,
            &handoff,
            &events,
            &summary,
            Some("billing team"),
        );
        assert_eq!(
            ticket.subject,
            "I was charged twice for my order this month and want my money back"
        );
        assert_eq!(ticket.handoff_id, "0193e6a4-7b1c-7000-8000-000000000001");
        assert_eq!(
            ticket.tags,
            vec![
                "frontdesk",
                "billing_dispute",
                "team_billing",
                "tier_enterprise"
            ]
        );
        assert_eq!(ticket.priority, Priority::High);
        assert_eq!(ticket.requester.email.as_deref(), Some("ana@example.com"));
        assert_eq!(ticket.requested_at, handoff.requested_at);
        let expected = format!(
            "Summary: Charged twice; wants a refund.\n\
             Why the assistant handed off: billing_dispute\n\
             Team: billing team\n\
             Classification: billing, priority high, language en\n\
             Visitor sentiment by message (-1..1): {:+.2}\n\
             Articles the assistant already pointed to:\n\
             - Refund policy (/refunds/policy)\n\
             \nVisitor:\n\
             - verified user id: user-42\n\
             - customer tier: enterprise\n\
             - email: ana@example.com\n\
             - page: https://shop.example/checkout\n\
             - locale: en-GB\n\
             - conversation: {}\n\
             \nTranscript:\n\
             Visitor: I was charged twice for my order this month and want my money back\n\
             Assistant: Refunds take 5 business days.\n",
            vader::compound("I was charged twice for my order this month and want my money back"),
            conversation.id
        );
        assert_eq!(ticket.body, expected);
    }
}
