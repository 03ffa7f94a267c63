//! Tickets from other channels (email, social) that reach the helpdesk without a chat: the
//! helpdesk's webhook hands them to Frontdesk, which runs the same analysis, retrieval and
//! policy as a chat turn (DESIGN.md "The turn", steps 3–5) and writes the outcome back through
//! the helpdesk's API — priority, the routed team's group, tags (`frontdesk-triaged`, the
//! category, the reason codes, the team) and, per the policy, a public reply (the knowledge base
//! answers it and `policy.auto_resolve` is on) or an internal note (an AI draft for an agent to
//! approve, or why a person must handle it). Tickets belong to the first `[[sites]]` entry.

use crate::domain::ReasonCode;
use crate::engine::policy::{self, Decision};
use crate::engine::{Engine, EngineError, N_ARTICLES, empty_result, routing};
use crate::ports::analyzer::AnalysisRequest;
use crate::ports::answer::AnswerRequest;
use crate::ports::helpdesk::{TicketComment, TicketTriage};
use crate::ports::retriever::RetrievalQuery;
use std::sync::Arc;

/// Longest ticket text analysed, in characters (subject and description).
const MAX_TEXT_CHARS: usize = 8_000;

/// A ticket that arrived through another channel, as the helpdesk's webhook describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingTicket {
    /// Adapter name (`zendesk`, `freshdesk`).
    pub helpdesk: &'static str,
    pub ticket_id: String,
    pub subject: String,
    pub description: String,
    /// The ticket's tags now (kept; triage adds its own).
    pub tags: Vec<String>,
}

/// What triage decided and wrote to the ticket.
#[derive(Debug, Clone, PartialEq)]
pub struct TriageOutcome {
    pub triage: TicketTriage,
    /// `answer` (replied), `draft` (note with a draft) or `handoff` (note with the reasons).
    pub decision: &'static str,
    pub reasons: Vec<ReasonCode>,
}

impl Engine {
    /// Triages `ticket` and applies the result through the helpdesk.
    ///
    /// Errors: `Upstream` from the analysis, retrieval or helpdesk (a 5xx makes the helpdesk
    /// retry the webhook), `BadRequest` for a ticket with no text.
    pub async fn triage_ticket(
        &self,
        ticket: IncomingTicket,
    ) -> Result<TriageOutcome, EngineError> {
        let Some(site) = self.sites.first().cloned() else {
            return Err(EngineError::BadRequest("no site is configured".into()));
        };
        let mut text = format!("{}\n\n{}", ticket.subject.trim(), ticket.description.trim())
            .trim()
            .to_string();
        if text.is_empty() {
            return Err(EngineError::BadRequest(
                "the ticket has no subject or description".into(),
            ));
        }
        if text.chars().count() > MAX_TEXT_CHARS {
            text = text.chars().take(MAX_TEXT_CHARS).collect();
        }
        let embedding = match &self.ports.embedder {
            Some(embedder) => Some(embedder.embed(&text).await?),
            None => None,
        };
        let over_budget = self.llm.is_some() && self.over_budget(&site).await;
        let allow_model = self
            .llm
            .as_ref()
            .is_some_and(|llm| !llm.cooling_down() && !over_budget);
        let request = AnalysisRequest {
            text: &text,
            embedding: embedding.as_deref(),
            previous_visitor_text: None,
            allow_model,
        };
        let analysis = match self.ports.analyzer.analyze(&site.id, &request).await {
            Ok(analysis) => analysis,
            Err(err) => {
                tracing::warn!(error = %err, "ticket analysis failed; using the local rules only");
                super::analysis::LocalAnalyzer::default().analyze_now(&site.id, &request)
            }
        };
        let retrieval = if analysis.requested_human {
            None
        } else {
            let query = RetrievalQuery {
                text: text.clone(),
                query_vector: embedding,
                k: N_ARTICLES,
                semantic_ratio: None,
                include_internal: false,
            };
            Some(Arc::new(
                self.ports.retriever.retrieve(&site.id, &query).await?,
            ))
        };
        let decision = policy::decide_turn(&text, &analysis, retrieval.as_deref(), 0, &self.policy);
        let team = routing::route(&site.routing, Some(&analysis), None);
        let mut tags = vec!["frontdesk-triaged".to_string()];
        if let Some(found) = &analysis.category {
            tags.push(format!("category_{}", found.category));
        }
        if let Some(team) = team {
            tags.push(format!("team_{}", team.id));
        }
        let groups = &self.helpdesk_groups;
        let group_id = team.and_then(|team| groups.get(&team.id).copied());
        let answer_request = || AnswerRequest {
            question: text.clone(),
            retrieval: retrieval
                .clone()
                .unwrap_or_else(|| Arc::new(empty_result())),
            locale: None,
            language: analysis.language.clone(),
            history: Vec::new(),
            site: site.id.as_str().to_string(),
        };
        let (decision_name, reasons, comment) = match decision {
            Decision::Answer => {
                let produced = self
                    .produce_answer(&site, answer_request(), over_budget, None)
                    .await?;
                match produced {
                    Some(produced) if !produced.hand_off && !produced.citations.is_empty() => {
                        let sources: Vec<String> = produced
                            .citations
                            .iter()
                            .map(|c| match &c.url {
                                Some(url) => format!("- {} ({url})", c.title),
                                None => format!("- {}", c.title),
                            })
                            .collect();
                        let body = format!("{}\n\nFrom our help center:\n{}", produced.text, sources.join("\n"));
                        ("answer", Vec::new(), Some(TicketComment { body, public: true }))
                    }
                    _ => (
                        "handoff",
                        vec![ReasonCode::OutOfScope],
                        Some(TicketComment {
                            body: "Frontdesk triage: the help center does not answer this; a person should.".into(),
                            public: false,
                        }),
                    ),
                }
            }
            Decision::Draft => {
                let produced = self
                    .produce_answer(&site, answer_request(), over_budget, None)
                    .await?;
                let draft = produced.map(|p| p.text).unwrap_or_default();
                (
                    "draft",
                    Vec::new(),
                    Some(TicketComment {
                        body: format!(
                            "Frontdesk triage: draft answer for review (not sent):\n\n{draft}"
                        ),
                        public: false,
                    }),
                )
            }
            Decision::Handoff { reasons, .. } => {
                let names: Vec<&str> = reasons.iter().map(|r| r.as_str()).collect();
                let body = format!(
                    "Frontdesk triage: a person should handle this ({}). Category {}, priority {}, language {}.",
                    names.join(", "),
                    analysis
                        .category
                        .as_ref()
                        .map_or("unclassified".to_string(), |c| c.category.clone()),
                    analysis.priority.as_str(),
                    analysis.language.as_deref().unwrap_or("unknown"),
                );
                (
                    "handoff",
                    reasons,
                    Some(TicketComment {
                        body,
                        public: false,
                    }),
                )
            }
        };
        tags.extend(reasons.iter().map(|r| r.as_str().to_string()));
        let triage = TicketTriage {
            priority: analysis.priority,
            tags,
            group_id,
            comment,
        };
        self.ports
            .helpdesk
            .triage_ticket(&ticket.ticket_id, &triage, &ticket.tags)
            .await
            .map_err(EngineError::Helpdesk)?;
        Ok(TriageOutcome {
            triage,
            decision: decision_name,
            reasons,
        })
    }
}
