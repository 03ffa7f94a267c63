//! Resolved past tickets (JSONL) → internal [`Document`]s, with personal data scrubbed.
//!
//! Each non-blank line is one JSON object:
//! `{"id": "123" | 123, "subject": "…", "messages": [{"role": "customer", "text": "…"}, …],
//! "resolution": "…"}`. It becomes a document with id `tickets/{id}`, kind
//! [`SourceKind::Ticket`], `internal = true`, no URL, the subject as title and one section:
//! `"{role}: {text}"` per message, then `"Resolution: {resolution}"`, one per line.
//!
//! Personal data is scrubbed at ingest, before anything is indexed or embedded
//! ([`scrub_personal_data`]): emails → `[email]`, payment card numbers (13–19 digits with
//! optional spaces or dashes that pass the Luhn check, ISO/IEC 7812-1 Annex B) → `[card]`,
//! phone numbers → `[phone]`.

use std::path::Path;
use std::sync::LazyLock;

use regex::{Captures, Regex};
use serde::Deserialize;

use super::{IngestProblem, IngestProblemKind};
use crate::document::{Document, DocumentId, Section, SourceKind};

#[derive(Debug, Deserialize)]
struct TicketLine {
    id: TicketId,
    subject: String,
    messages: Vec<TicketMessage>,
    resolution: String,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum TicketId {
    Text(String),
    Number(u64),
}

#[derive(Debug, Deserialize)]
struct TicketMessage {
    role: String,
    text: String,
}

/// Parses a JSONL file of resolved tickets. Returns the documents with their 1-based line
/// numbers, and a [`IngestProblemKind::MalformedTicket`] (or `InvalidId`) problem for each
/// line that is not JSON, lacks a field or has an unusable id; blank lines are ignored.
pub fn parse_tickets_jsonl(
    path: &Path,
    source: &str,
) -> (Vec<(usize, Document)>, Vec<IngestProblem>) {
    let mut documents = Vec::new();
    let mut problems = Vec::new();
    for (index, line) in source.lines().enumerate() {
        let line_number = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        match parse_ticket(line) {
            Ok(document) => documents.push((line_number, document)),
            Err((kind, message)) => {
                problems.push(IngestProblem::of_kind(
                    kind,
                    path,
                    Some(line_number),
                    message,
                ));
            }
        }
    }
    (documents, problems)
}

fn parse_ticket(line: &str) -> Result<Document, (IngestProblemKind, String)> {
    let value: serde_json::Value = serde_json::from_str(line).map_err(|e| {
        (
            IngestProblemKind::MalformedTicket,
            format!("line is not JSON ({e}); it was skipped"),
        )
    })?;
    let ticket: TicketLine = serde_json::from_value(value).map_err(|e| {
        (
            IngestProblemKind::MalformedTicket,
            format!("ticket needs id, subject, messages[{{role, text}}] and resolution: {e}; it was skipped"),
        )
    })?;
    let raw_id = match ticket.id {
        TicketId::Text(id) => id.trim().to_string(),
        TicketId::Number(id) => id.to_string(),
    };
    let id = DocumentId::parse(&format!("tickets/{raw_id}")).map_err(|e| {
        (
            IngestProblemKind::InvalidId,
            format!("ticket id {raw_id:?} is unusable: {e}"),
        )
    })?;

    let mut text = String::new();
    for message in &ticket.messages {
        let body = message.text.trim();
        if body.is_empty() {
            continue;
        }
        text.push_str(&message.role.trim().to_lowercase());
        text.push_str(": ");
        text.push_str(body);
        text.push('\n');
    }
    let resolution = ticket.resolution.trim();
    if !resolution.is_empty() {
        text.push_str("Resolution: ");
        text.push_str(resolution);
    }
    let text = scrub_personal_data(text.trim());
    let sections = if text.is_empty() {
        Vec::new()
    } else {
        vec![Section {
            heading_path: Vec::new(),
            text,
        }]
    };
    Ok(Document {
        id,
        title: scrub_personal_data(ticket.subject.trim()),
        description: None,
        url: None,
        tags: Vec::new(),
        internal: true,
        kind: SourceKind::Ticket,
        sections,
    })
}

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}")
        .expect("static regex")
});

/// Runs of digits joined by single spaces or dashes (card candidates are windows of these).
static DIGIT_RUN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b\d+(?:[ -]\d+)*\b").expect("static regex"));

static PHONE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        // International: +44 20 7946 0958, +1 (555) 123-4567, +33 1 23 45 67 89
        r"\+\d{1,3}(?:[ .-]?\(\d{1,4}\))?(?:[ .-]?\d{1,5}){1,6}\b",
        // North American: (555) 123-4567, 555-123-4567, 555.123.4567, 555 123 4567
        r"|(?:\(\d{3}\)\s?|\b\d{3}[ .-])\d{3}[ .-]\d{4}\b",
        // National with a trunk 0: 020 7946 0958, 07700 900123, 0612-345678
        r"|\b0\d{1,4}[ -]\d{3,4}[ -]?\d{3,4}\b",
    ))
    .expect("static regex")
});

/// Replaces emails with `[email]`, payment card numbers with `[card]` and phone numbers with
/// `[phone]`. A card number is 13–19 digits, optionally grouped by spaces or dashes, passing
/// the Luhn check (so a 16-digit order number that fails Luhn is kept). A phone number has
/// 7–15 digits (E.164's maximum is 15) in one of the common written formats.
pub fn scrub_personal_data(text: &str) -> String {
    let text = EMAIL.replace_all(text, "[email]");
    let text = DIGIT_RUN.replace_all(&text, |caps: &Captures<'_>| scrub_cards(&caps[0]));
    let text = PHONE.replace_all(&text, |caps: &Captures<'_>| {
        let digits = caps[0].bytes().filter(u8::is_ascii_digit).count();
        if (7..=15).contains(&digits) {
            "[phone]".to_string()
        } else {
            caps[0].to_string()
        }
    });
    text.into_owned()
}

/// Replaces, within one run of digit groups, the longest windows of whole groups that form
/// a Luhn-valid 13–19 digit number.
fn scrub_cards(run: &str) -> String {
    // Groups with their byte spans in `run`.
    let mut groups: Vec<(usize, usize)> = Vec::new();
    let mut start = None;
    for (i, b) in run.bytes().enumerate() {
        match (b.is_ascii_digit(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                groups.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        groups.push((s, run.len()));
    }

    let mut out = String::with_capacity(run.len());
    let mut copied_to = 0;
    let mut first = 0;
    while first < groups.len() {
        let mut matched = None;
        for last in (first..groups.len()).rev() {
            let digits: String = run[groups[first].0..groups[last].1]
                .bytes()
                .filter(u8::is_ascii_digit)
                .map(char::from)
                .collect();
            if (13..=19).contains(&digits.len()) && luhn_valid(&digits) {
                matched = Some(last);
                break;
            }
        }
        match matched {
            Some(last) => {
                out.push_str(&run[copied_to..groups[first].0]);
                out.push_str("[card]");
                copied_to = groups[last].1;
                first = last + 1;
            }
            None => first += 1,
        }
    }
    out.push_str(&run[copied_to..]);
    out
}

/// The Luhn (mod 10) check over a string of ASCII digits.
fn luhn_valid(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_accepts_test_card_numbers_only() {
        assert!(luhn_valid("4111111111111111"));
        assert!(luhn_valid("5555555555554444"));
        assert!(luhn_valid("378282246310005"));
        assert!(!luhn_valid("4111111111111112"));
        assert!(!luhn_valid("1234567812345678"));
    }

    #[test]
    fn scrubbing_table() {
        let cases = [
            (
                "Mail me at jane.doe+help@example.co.uk please",
                "Mail me at [email] please",
            ),
            (
                "Card 4111 1111 1111 1111 was charged",
                "Card [card] was charged",
            ),
            ("Card 4111-1111-1111-1111.", "Card [card]."),
            ("Amex 378282246310005 ok", "Amex [card] ok"),
            ("Card 5555555555554444 2 times", "Card [card] 2 times"),
            (
                "Order 1234 5678 1234 5678 is late",
                "Order 1234 5678 1234 5678 is late",
            ),
            (
                "Order #4111111111111112 shipped",
                "Order #4111111111111112 shipped",
            ),
            ("Call +1 (555) 123-4567 now", "Call [phone] now"),
            ("Call 555-123-4567.", "Call [phone]."),
            ("Call (555) 123 4567", "Call [phone]"),
            ("Ring +44 20 7946 0958 today", "Ring [phone] today"),
            ("Ring 020 7946 0958", "Ring [phone]"),
            ("Appel +33 1 23 45 67 89", "Appel [phone]"),
            ("Dial 555.123.4567", "Dial [phone]"),
            (
                "On 2024-03-15 we shipped 3 items for 120 EUR",
                "On 2024-03-15 we shipped 3 items for 120 EUR",
            ),
            ("Version 1.2.3 and port 8080", "Version 1.2.3 and port 8080"),
        ];
        for (input, expected) in cases {
            assert_eq!(scrub_personal_data(input), expected, "input: {input}");
        }
    }

    #[test]
    fn a_ticket_line_becomes_an_internal_scrubbed_document() {
        let line = r#"{"id":"T-1","subject":"Refund for jane@example.com","messages":[{"role":"customer","text":"I paid with 4111 1111 1111 1111, call me on 555-123-4567"},{"role":"Agent","text":"Refund issued."}],"resolution":"Refunded in full."}"#;
        let (documents, problems) = parse_tickets_jsonl(Path::new("t.jsonl"), line);
        assert!(problems.is_empty(), "{problems:?}");
        let (line_number, document) = &documents[0];
        assert_eq!(*line_number, 1);
        assert_eq!(document.id.as_str(), "tickets/T-1");
        assert_eq!(document.kind, SourceKind::Ticket);
        assert!(document.internal);
        assert_eq!(document.url, None);
        assert_eq!(document.title, "Refund for [email]");
        assert_eq!(document.sections.len(), 1);
        assert_eq!(
            document.sections[0].text,
            "customer: I paid with [card], call me on [phone]\nagent: Refund issued.\nResolution: Refunded in full."
        );
    }

    #[test]
    fn bad_lines_are_reported_with_their_numbers() {
        let source = "{\"id\":1,\"subject\":\"a\",\"messages\":[],\"resolution\":\"r\"}\n\n{not json\n{\"id\":\"../x\",\"subject\":\"a\",\"messages\":[],\"resolution\":\"r\"}\n{\"id\":2,\"subject\":\"a\",\"messages\":[{\"role\":\"customer\"}],\"resolution\":\"r\"}\n";
        let (documents, problems) = parse_tickets_jsonl(Path::new("t.jsonl"), source);
        assert_eq!(documents.len(), 1);
        assert_eq!(documents[0].1.id.as_str(), "tickets/1");
        let got: Vec<(IngestProblemKind, Option<usize>)> =
            problems.iter().map(|p| (p.kind, p.line)).collect();
        assert_eq!(
            got,
            [
                (IngestProblemKind::MalformedTicket, Some(3)),
                (IngestProblemKind::InvalidId, Some(4)),
                (IngestProblemKind::MalformedTicket, Some(5)),
            ]
        );
        assert!(
            problems[2].message.contains("text"),
            "{}",
            problems[2].message
        );
    }
}
