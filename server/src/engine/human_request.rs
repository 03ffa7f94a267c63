//! Detects a visitor asking for a human in plain words ("can I talk to a real person?").
//!
//! English phrasings, plus the most common Spanish, French and German ones; the analysis issue
//! widens this. A negation just before the phrase ("I don't need to talk to an agent") cancels it.

use regex::{Regex, RegexSet};
use std::sync::LazyLock;

const PATTERNS: &[&str] = &[
    // talk / speak / chat to (a real) human, person, agent, someone, representative…
    r"\b(talk|speak|chat|get\s+through)\s+(to|with)\s+(a|an|some|the|your|one\s+of\s+your)?\s*(real|live|actual|human|proper)?\s*(human|person|people|agent|representative|rep|someone|somebody|staff|employee|operator|support\s+(agent|person|team|staff))\b",
    // a real / live person, a human agent, human being
    r"\b(real|live|actual)\s+(human|person|people|agent|support)\b",
    r"\bhuman\s+(agent|being|support|help|please)\b",
    // want / need / get me a human
    r"\b(want|need|get|give\s+me|find\s+me|can\s+i\s+have)\s+(a|an|to\s+reach\s+a)\s+(human|person|agent|representative)\b",
    // connect / transfer / put me through to someone
    r"\b(connect|transfer|put|escalate)\s+(me|this)\s+(to|with|through\s+to)\s+(a|an|some|your)?\s*(human|person|agent|someone|somebody|representative|support|manager|supervisor)\b",
    r"\b(customer\s+(service|support|care))\s+(agent|rep|representative|person)\b",
    r"^\s*(human|agent|operator|representative)[.!?]*\s*$",
    // Spanish, French, German
    r"\bhablar\s+con\s+(un|una|alguien|una\s+persona|un\s+humano|un\s+agente)\b",
    r"\bparler\s+(à|a|avec)\s+(un|une|quelqu'un|quelqu’un)\s*(humain|personne|agent|conseiller|conseillère)?\b",
    r"\b(mit\s+(einem|einer)\s+(menschen|mitarbeiter|mitarbeiterin|person|agenten|berater)\s+sprechen|echten\s+menschen)\b",
];

static SET: LazyLock<RegexSet> = LazyLock::new(|| {
    // The patterns are constants checked by the tests below, so building them cannot fail.
    RegexSet::new(PATTERNS.iter().map(|p| format!("(?i){p}")))
        .expect("human-request patterns are valid")
});

static FIRST_MATCH: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    PATTERNS
        .iter()
        .map(|p| Regex::new(&format!("(?i){p}")).expect("human-request patterns are valid"))
        .collect()
});

static NEGATION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(don'?t|do\s+not|doesn'?t|no\s+need|never|not|without|instead\s+of|rather\s+than)\b[^.!?]{0,25}$")
        .expect("negation pattern is valid")
});

/// True when `text` asks for a human.
pub fn asks_for_human(text: &str) -> bool {
    let matched = SET.matches(text);
    matched.iter().any(|index| {
        FIRST_MATCH[index]
            .find(text)
            .is_some_and(|m| !NEGATION.is_match(&text[..m.start()]))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_requests_for_a_human() {
        for text in [
            "I need to talk to a real person please",
            "Can I speak to a human?",
            "let me chat with an agent",
            "talk to someone",
            "I want a human",
            "Connect me to a representative",
            "transfer me to your support team",
            "is there a live person there?",
            "HUMAN",
            "agent!",
            "customer service rep please",
            "Quiero hablar con una persona",
            "Je veux parler à un conseiller",
            "Ich möchte mit einem Mitarbeiter sprechen",
        ] {
            assert!(asks_for_human(text), "{text:?} asks for a human");
        }
    }

    #[test]
    fn ignores_questions_that_only_mention_people_or_agents() {
        for text in [
            "How do I reset my password?",
            "Can I share the dashboard with a person outside my team?",
            "What user agent does the script send?",
            "I don't need to talk to a human, just tell me the price",
            "How many people can use one account?",
            "Which agents are supported by the integration?",
        ] {
            assert!(!asks_for_human(text), "{text:?} does not ask for a human");
        }
    }
}
