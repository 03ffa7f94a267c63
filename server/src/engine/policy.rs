//! The decision policy: a pure function from the turn's signals to what the assistant does
//! (DESIGN.md "One turn": `decide`). Its rules come from `[policy]`.
//!
//! Rules (in this build; the analysis issue adds sentiment, categories and action requests
//! through [`PolicyInput::flagged`]):
//! - `requested_human`: the visitor asked for a human (frame or phrase);
//! - `out_of_scope`: retrieval found no citable article;
//! - `low_confidence`: confidence below `min_confidence` **and** the top article covers less
//!   than [`MIN_KEYWORD_COVERAGE`] of the question's content words (a calibrated probability
//!   below the bar is not "nothing relevant" when the article plainly shares the question's words);
//! - any reason listed in `always_human` hands off at once; any other reason makes the
//!   assistant say it cannot help and offer a human (for `low_confidence`, naming and citing the
//!   closest article);
//! - no reason: answer, or draft when `auto_resolve` is off.

use crate::config::PolicySettings;
use crate::domain::{DecisionKind, ReasonCode};

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
    /// Reasons raised by the turn's analysis (security, legal, billing_dispute, churn_risk,
    /// negative_sentiment, no_resolution, …); empty until the analysis issue.
    pub flagged: &'a [ReasonCode],
}

/// What to do with the turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Answer from the knowledge base.
    Answer,
    /// Prepare an answer for an agent to approve (`auto_resolve = false`, account actions).
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

/// Decides the turn (pure). Reasons come out sorted and without repeats.
pub fn decide(input: &PolicyInput<'_>, settings: &PolicySettings) -> Decision {
    let mut reasons: Vec<ReasonCode> = input.flagged.to_vec();
    if input.requested_human {
        reasons.push(ReasonCode::RequestedHuman);
    }
    if let Some(retrieval) = input.retrieval {
        if retrieval.n_citable_hits == 0 {
            reasons.push(ReasonCode::OutOfScope);
        } else if retrieval.confidence < settings.min_confidence
            && retrieval.keyword_coverage < MIN_KEYWORD_COVERAGE
        {
            reasons.push(ReasonCode::LowConfidence);
        }
    }
    reasons.sort();
    reasons.dedup();
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
        };
        assert_eq!(decide(&input, &PolicySettings::default()), Decision::Answer);
        assert_eq!(decide(&input, &strict), handoff(&[LowConfidence], false));
    }

    #[test]
    fn decision_kinds_match_the_wire() {
        assert_eq!(Decision::Answer.kind(), DecisionKind::Answer);
        assert_eq!(Decision::Draft.kind(), DecisionKind::Draft);
        assert_eq!(handoff(&[OutOfScope], false).kind(), DecisionKind::Handoff);
    }
}
