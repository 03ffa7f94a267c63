//! The decision policy: a pure function from the turn's signals to what the assistant does
//! (DESIGN.md "One turn": `decide`). Its rules come from `[policy]` and the site's taxonomy.
//!
//! Rules, in order:
//! 1. reasons raised by the message or the conversation ([`PolicyInput::flagged`]: `security`,
//!    `legal`, `billing_dispute`, `churn_risk`, a `human` category's reason, and
//!    [`conversation_reasons`]: `negative_sentiment`, `no_resolution`) and `requested_human`;
//!    any of them listed in `always_human` hands off at once (retrieval's reasons are kept
//!    beside them);
//! 2. an account action the visitor asks for ([`PolicyInput::action`]): a draft for an agent
//!    when its kind is in `policy.draft` (refunds only up to `refund_draft_limit`; a refund
//!    without an amount gets a draft), else a handoff at once (an agent must act; no reason
//!    code, it is work rather than a problem);
//! 3. the category's handling: `human` hands off at once, `draft` drafts;
//! 4. retrieval: unsure when the confidence is below `min_confidence` **and** the top article
//!    covers less than [`MIN_KEYWORD_COVERAGE`] of the question's content words (a calibrated
//!    probability below the bar is not "nothing relevant" when the article plainly shares the
//!    question's words); `out_of_scope` when no citable article came back, or when unsure and
//!    the message is also outside the site's taxonomy (nothing is about it), else
//!    `low_confidence` — these make the assistant say it cannot help and offer a human (unless
//!    listed in `always_human`);
//! 5. otherwise answer, or draft when `auto_resolve` is off.

use crate::config::PolicySettings;
use crate::domain::{ActionKind, ActionRequest, DecisionKind, ReasonCode};
use crate::ports::analyzer::TurnAnalysis;
use crate::taxonomy::Handling;
use frontdesk_kb::index::SearchResult;

/// Share of the question's content words the top article must contain to be answered from
/// when its confidence is below `min_confidence`.
pub const MIN_KEYWORD_COVERAGE: f32 = 0.5;

/// What retrieval says about the question.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetrievalSignals {
    /// Articles that may be cited (internal documents excluded).
    pub n_citable_hits: usize,
    /// Calibrated confidence of the top article, 0..1.
    pub confidence: f32,
    /// Share (0..1) of the question's content words found in the top citable article's title
    /// and passages.
    pub keyword_coverage: f32,
}

/// Everything `decide` looks at.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyInput<'a> {
    /// A `request_human` frame or a detected phrase.
    pub requested_human: bool,
    /// `None` when retrieval did not run (the visitor asked for a human).
    pub retrieval: Option<RetrievalSignals>,
    /// Reasons raised by the turn's analysis and the conversation (see the module docs).
    pub flagged: &'a [ReasonCode],
    /// An account action the visitor asks the team to carry out.
    pub action: Option<ActionRequest>,
    /// How the message's category is handled (`Answer` when unclassified).
    pub handling: Handling,
    /// The message is far from every example of the site's taxonomy.
    pub out_of_taxonomy: bool,
}

impl PolicyInput<'_> {
    /// An input with only retrieval signals (no flags, no action, default handling).
    pub fn question(retrieval: Option<RetrievalSignals>) -> PolicyInput<'static> {
        PolicyInput {
            requested_human: false,
            retrieval,
            flagged: &[],
            action: None,
            handling: Handling::Answer,
            out_of_taxonomy: false,
        }
    }
}

/// What to do with the turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Answer from the knowledge base.
    Answer,
    /// Prepare an answer for an agent to approve (`auto_resolve = false`, account actions,
    /// `draft` categories).
    Draft,
    /// Hand off at once (`immediate`) or say the assistant cannot help and offer a human.
    Handoff {
        reasons: Vec<ReasonCode>,
        immediate: bool,
    },
}

impl Decision {
    /// The wire's `answer_end.decision`.
    pub fn kind(&self) -> DecisionKind {
        match self {
            Self::Answer => DecisionKind::Answer,
            Self::Draft => DecisionKind::Draft,
            Self::Handoff { .. } => DecisionKind::Handoff,
        }
    }
}

/// Reasons raised by the conversation so far: `negative_sentiment` when this message and the
/// visitor's previous one both score below `policy.negative_sentiment` (VADER compound), and
/// `no_resolution` when `n_unresolved_exchanges` (answers since the last resolution: positive
/// feedback or a close) reached `policy.max_unresolved_exchanges`.
pub fn conversation_reasons(
    sentiment: f32,
    previous_sentiment: Option<f32>,
    n_unresolved_exchanges: u32,
    settings: &PolicySettings,
) -> Vec<ReasonCode> {
    let mut reasons = Vec::new();
    if sentiment < settings.negative_sentiment
        && previous_sentiment.is_some_and(|previous| previous < settings.negative_sentiment)
    {
        reasons.push(ReasonCode::NegativeSentiment);
    }
    if n_unresolved_exchanges >= settings.max_unresolved_exchanges.get() {
        reasons.push(ReasonCode::NoResolution);
    }
    reasons
}

/// True when `action` may be drafted for an agent (its kind is in `policy.draft`, and a refund
/// is within `refund_draft_limit` or names no amount).
pub fn draftable(action: &ActionRequest, settings: &PolicySettings) -> bool {
    settings.draft.contains(&action.kind)
        && (action.kind != ActionKind::Refund
            || action
                .amount
                .is_none_or(|amount| amount <= settings.refund_draft_limit))
}

/// Decides a turn from its analysis and retrieval result: the conversation's reasons
/// ([`conversation_reasons`]) are added to the analysis's flags, retrieval becomes
/// [`RetrievalSignals`] (`crate::engine::retrieval_signals`), then [`decide`]. The engine and
/// `frontdesk eval decisions` both decide through this function.
pub fn decide_turn(
    text: &str,
    analysis: &TurnAnalysis,
    retrieval: Option<&SearchResult>,
    n_unresolved_exchanges: u32,
    settings: &PolicySettings,
) -> Decision {
    let mut flagged = analysis.flagged.clone();
    flagged.extend(conversation_reasons(
        analysis.sentiment,
        analysis.previous_sentiment,
        n_unresolved_exchanges,
        settings,
    ));
    decide(
        &PolicyInput {
            requested_human: analysis.requested_human,
            retrieval: retrieval.map(|result| super::retrieval_signals(text, result)),
            flagged: &flagged,
            action: analysis.action,
            handling: analysis.handling,
            out_of_taxonomy: analysis.out_of_taxonomy,
        },
        settings,
    )
}

fn sorted(mut reasons: Vec<ReasonCode>) -> Vec<ReasonCode> {
    reasons.sort();
    reasons.dedup();
    reasons
}

/// Decides the turn (pure). Reasons come out sorted and without repeats.
pub fn decide(input: &PolicyInput<'_>, settings: &PolicySettings) -> Decision {
    let mut raised: Vec<ReasonCode> = input.flagged.to_vec();
    if input.requested_human {
        raised.push(ReasonCode::RequestedHuman);
    }
    let mut from_retrieval = Vec::new();
    if let Some(retrieval) = input.retrieval {
        let unsure = retrieval.confidence < settings.min_confidence
            && retrieval.keyword_coverage < MIN_KEYWORD_COVERAGE;
        if retrieval.n_citable_hits == 0 || (unsure && input.out_of_taxonomy) {
            from_retrieval.push(ReasonCode::OutOfScope);
        } else if unsure {
            from_retrieval.push(ReasonCode::LowConfidence);
        }
    }
    let all = |raised: &[ReasonCode]| sorted([raised, from_retrieval.as_slice()].concat());
    if raised
        .iter()
        .any(|reason| settings.always_human.contains(reason))
    {
        return Decision::Handoff {
            reasons: all(&raised),
            immediate: true,
        };
    }
    if let Some(action) = &input.action {
        if draftable(action, settings) {
            return Decision::Draft;
        }
        return Decision::Handoff {
            reasons: sorted(raised),
            immediate: true,
        };
    }
    match input.handling {
        Handling::Human => {
            return Decision::Handoff {
                reasons: sorted(raised),
                immediate: true,
            };
        }
        Handling::Draft => return Decision::Draft,
        Handling::Answer => {}
    }
    let reasons = all(&raised);
    if !reasons.is_empty() {
        let immediate = reasons
            .iter()
            .any(|reason| settings.always_human.contains(reason));
        return Decision::Handoff { reasons, immediate };
    }
    if settings.auto_resolve {
        Decision::Answer
    } else {
        Decision::Draft
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ReasonCode::*;

    const CONFIDENT: RetrievalSignals = RetrievalSignals {
        n_citable_hits: 3,
        confidence: 0.92,
        keyword_coverage: 0.8,
    };
    const UNSURE_BUT_COVERED: RetrievalSignals = RetrievalSignals {
        n_citable_hits: 3,
        confidence: 0.4,
        keyword_coverage: 0.6,
    };
    const UNSURE: RetrievalSignals = RetrievalSignals {
        n_citable_hits: 3,
        confidence: 0.4,
        keyword_coverage: 0.2,
    };
    const AT_THRESHOLD: RetrievalSignals = RetrievalSignals {
        n_citable_hits: 1,
        confidence: 0.7,
        keyword_coverage: 0.0,
    };
    const NOTHING: RetrievalSignals = RetrievalSignals {
        n_citable_hits: 0,
        confidence: 0.0,
        keyword_coverage: 0.0,
    };

    fn base() -> PolicyInput<'static> {
        PolicyInput::question(None)
    }

    fn handoff(reasons: &[ReasonCode], immediate: bool) -> Decision {
        Decision::Handoff {
            reasons: reasons.to_vec(),
            immediate,
        }
    }

    #[test]
    fn decision_table() {
        let defaults = PolicySettings::default();
        let drafts = PolicySettings {
            auto_resolve: false,
            ..PolicySettings::default()
        };
        let offer_everything = PolicySettings {
            always_human: vec![RequestedHuman],
            ..PolicySettings::default()
        };
        let cases: Vec<(&str, PolicyInput<'_>, &PolicySettings, Decision)> = vec![
            (
                "confident answer",
                PolicyInput {
                    requested_human: false,
                    retrieval: Some(CONFIDENT),
                    flagged: &[],
                    ..base()
                },
                &defaults,
                Decision::Answer,
            ),
            (
                "at the threshold answers",
                PolicyInput {
                    requested_human: false,
                    retrieval: Some(AT_THRESHOLD),
                    flagged: &[],
                    ..base()
                },
                &defaults,
                Decision::Answer,
            ),
            (
                "unsure but the article covers the words",
                PolicyInput {
                    requested_human: false,
                    retrieval: Some(UNSURE_BUT_COVERED),
                    flagged: &[],
                    ..base()
                },
                &defaults,
                Decision::Answer,
            ),
            (
                "unsure and uncovered: offer a human",
                PolicyInput {
                    requested_human: false,
                    retrieval: Some(UNSURE),
                    flagged: &[],
                    ..base()
                },
                &defaults,
                handoff(&[LowConfidence], false),
            ),
            (
                "nothing retrieved: offer a human",
                PolicyInput {
                    requested_human: false,
                    retrieval: Some(NOTHING),
                    flagged: &[],
                    ..base()
                },
                &defaults,
                handoff(&[OutOfScope], false),
            ),
            (
                "asked for a human: at once, without retrieval",
                PolicyInput {
                    requested_human: true,
                    retrieval: None,
                    flagged: &[],
                    ..base()
                },
                &defaults,
                handoff(&[RequestedHuman], true),
            ),
            (
                "asked for a human even when confident",
                PolicyInput {
                    requested_human: true,
                    retrieval: Some(CONFIDENT),
                    flagged: &[],
                    ..base()
                },
                &defaults,
                handoff(&[RequestedHuman], true),
            ),
            (
                "asked for a human with nothing found keeps both reasons",
                PolicyInput {
                    requested_human: true,
                    retrieval: Some(NOTHING),
                    flagged: &[],
                    ..base()
                },
                &defaults,
                handoff(&[RequestedHuman, OutOfScope], true),
            ),
            (
                "a flagged security issue hands off at once",
                PolicyInput {
                    requested_human: false,
                    retrieval: Some(CONFIDENT),
                    flagged: &[Security],
                    ..base()
                },
                &defaults,
                handoff(&[Security], true),
            ),
            (
                "flags are sorted and deduplicated",
                PolicyInput {
                    requested_human: false,
                    retrieval: Some(UNSURE),
                    flagged: &[ChurnRisk, Legal, ChurnRisk],
                    ..base()
                },
                &defaults,
                handoff(&[Legal, ChurnRisk, LowConfidence], true),
            ),
            (
                "a flag outside always_human is only offered",
                PolicyInput {
                    requested_human: false,
                    retrieval: Some(CONFIDENT),
                    flagged: &[Security],
                    ..base()
                },
                &offer_everything,
                handoff(&[Security], false),
            ),
            (
                "auto_resolve off: draft",
                PolicyInput {
                    requested_human: false,
                    retrieval: Some(CONFIDENT),
                    flagged: &[],
                    ..base()
                },
                &drafts,
                Decision::Draft,
            ),
            (
                "auto_resolve off still hands off",
                PolicyInput {
                    requested_human: true,
                    retrieval: None,
                    flagged: &[],
                    ..base()
                },
                &drafts,
                handoff(&[RequestedHuman], true),
            ),
        ];
        for (name, input, settings, expected) in cases {
            assert_eq!(decide(&input, settings), expected, "{name}");
        }
    }

    #[test]
    fn min_confidence_comes_from_config() {
        let strict = PolicySettings {
            min_confidence: 0.95,
            ..PolicySettings::default()
        };
        let input = PolicyInput {
            requested_human: false,
            retrieval: Some(RetrievalSignals {
                keyword_coverage: 0.1,
                ..CONFIDENT
            }),
            flagged: &[],
            ..base()
        };
        assert_eq!(decide(&input, &PolicySettings::default()), Decision::Answer);
        assert_eq!(decide(&input, &strict), handoff(&[LowConfidence], false));
    }

    #[test]
    fn actions_categories_and_taxonomy_table() {
        let defaults = PolicySettings::default();
        let refund = |amount| {
            Some(ActionRequest {
                kind: ActionKind::Refund,
                amount,
            })
        };
        let cancellation = Some(ActionRequest {
            kind: ActionKind::Cancellation,
            amount: None,
        });
        let cases: Vec<(&str, PolicyInput<'_>, Decision)> = vec![
            (
                "a small refund gets a draft",
                PolicyInput {
                    action: refund(Some(20.0)),
                    retrieval: Some(UNSURE),
                    ..base()
                },
                Decision::Draft,
            ),
            (
                "a refund at the limit gets a draft",
                PolicyInput {
                    action: refund(Some(50.0)),
                    ..base()
                },
                Decision::Draft,
            ),
            (
                "a refund over the limit goes to an agent at once",
                PolicyInput {
                    action: refund(Some(500.0)),
                    retrieval: Some(CONFIDENT),
                    ..base()
                },
                handoff(&[], true),
            ),
            (
                "a refund without an amount gets a draft",
                PolicyInput {
                    action: refund(None),
                    ..base()
                },
                Decision::Draft,
            ),
            (
                "an action outside policy.draft goes to an agent",
                PolicyInput {
                    action: cancellation,
                    retrieval: Some(CONFIDENT),
                    ..base()
                },
                handoff(&[], true),
            ),
            (
                "a dispute beats the refund draft",
                PolicyInput {
                    action: refund(Some(20.0)),
                    flagged: &[BillingDispute],
                    retrieval: Some(CONFIDENT),
                    ..base()
                },
                handoff(&[BillingDispute], true),
            ),
            (
                "a human category hands off with its reason",
                PolicyInput {
                    handling: Handling::Human,
                    flagged: &[Legal],
                    retrieval: Some(CONFIDENT),
                    ..base()
                },
                handoff(&[Legal], true),
            ),
            (
                "a draft category drafts even when confident",
                PolicyInput {
                    handling: Handling::Draft,
                    retrieval: Some(CONFIDENT),
                    ..base()
                },
                Decision::Draft,
            ),
            (
                "outside the taxonomy and unsure: out of scope",
                PolicyInput {
                    out_of_taxonomy: true,
                    retrieval: Some(UNSURE),
                    ..base()
                },
                handoff(&[OutOfScope], false),
            ),
            (
                "outside the taxonomy but the article covers the words: answer",
                PolicyInput {
                    out_of_taxonomy: true,
                    retrieval: Some(UNSURE_BUT_COVERED),
                    ..base()
                },
                Decision::Answer,
            ),
            (
                "outside the taxonomy but confident: answer",
                PolicyInput {
                    out_of_taxonomy: true,
                    retrieval: Some(CONFIDENT),
                    ..base()
                },
                Decision::Answer,
            ),
            (
                "two negative messages in a row hand off at once",
                PolicyInput {
                    flagged: &[NegativeSentiment],
                    retrieval: Some(CONFIDENT),
                    ..base()
                },
                handoff(&[NegativeSentiment], true),
            ),
        ];
        for (name, input, expected) in cases {
            assert_eq!(decide(&input, &defaults), expected, "{name}");
        }
    }

    #[test]
    fn conversation_reasons_table() {
        let defaults = PolicySettings::default();
        // (sentiment, previous, unresolved exchanges, expected)
        let cases: &[(f32, Option<f32>, u32, &[ReasonCode])] = &[
            (-0.8, Some(-0.7), 0, &[NegativeSentiment]),
            (-0.8, Some(-0.2), 0, &[]),
            (-0.8, None, 0, &[]),
            (-0.5, Some(-0.9), 0, &[]),
            (0.3, Some(-0.9), 0, &[]),
            (0.0, None, 2, &[]),
            (0.0, None, 3, &[NoResolution]),
            (-0.6, Some(-0.6), 4, &[NegativeSentiment, NoResolution]),
        ];
        for (sentiment, previous, unresolved, expected) in cases {
            assert_eq!(
                conversation_reasons(*sentiment, *previous, *unresolved, &defaults),
                *expected,
                "{sentiment} {previous:?} {unresolved}"
            );
        }
        let strict = PolicySettings {
            negative_sentiment: -0.3,
            max_unresolved_exchanges: std::num::NonZeroU32::MIN,
            ..PolicySettings::default()
        };
        assert_eq!(
            conversation_reasons(-0.4, Some(-0.35), 1, &strict),
            vec![NegativeSentiment, NoResolution]
        );
    }

    #[test]
    fn refund_limit_and_draft_kinds_come_from_config() {
        let generous = PolicySettings {
            refund_draft_limit: 1000.0,
            draft: vec![ActionKind::Refund, ActionKind::Cancellation],
            ..PolicySettings::default()
        };
        let big_refund = ActionRequest {
            kind: ActionKind::Refund,
            amount: Some(500.0),
        };
        let cancel = ActionRequest {
            kind: ActionKind::Cancellation,
            amount: None,
        };
        assert!(!draftable(&big_refund, &PolicySettings::default()));
        assert!(draftable(&big_refund, &generous));
        assert!(!draftable(&cancel, &PolicySettings::default()));
        assert!(draftable(&cancel, &generous));
    }

    #[test]
    fn decision_kinds_match_the_wire() {
        assert_eq!(Decision::Answer.kind(), DecisionKind::Answer);
        assert_eq!(Decision::Draft.kind(), DecisionKind::Draft);
        assert_eq!(handoff(&[OutOfScope], false).kind(), DecisionKind::Handoff);
    }
}
