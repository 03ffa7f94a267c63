//! The grounding check of a finished LLM answer: is every sentence supported by the passages it
//! was generated from?
//!
//! Each sentence of the answer (citation markers removed; sentences of fewer than
//! [`MIN_CONTENT_WORDS`] content words — greetings, "I hope this helps" — are not claims and are
//! skipped) gets a support score against each evidence passage:
//!
//! `support = semantic_weight · cos(e(sentence), e(passage)) + (1 − semantic_weight) · overlap`
//!
//! where `e` is the sentence embedding (all-MiniLM-L6-v2, the turn's embedder) and `overlap`
//! the share of the sentence's stemmed content words found in the passage (the lexical side of
//! the "embeddings plus lexical overlap" check; cf. the token-overlap and NLI-free
//! embedding-similarity baselines of RAGAS faithfulness, Es et al., 2023, arXiv:2309.15217).
//! A sentence is supported when its best score reaches the threshold; the answer is grounded
//! when every checked sentence is. Two cheap checks come first, because embeddings and word
//! overlap cannot see them: a sentence with a number (a price, a duration, a limit) that none of
//! the passages contains scores 0 (a wrong figure in the article's own words: "shipping takes 2
//! hours"), and an answer that repeats a sentence (a degenerate loop) is not grounded. The threshold and weight are chosen on labelled pairs
//! (`frontdesk eval grounding`, BENCHMARKS.md).

use crate::engine::text;
use crate::ports::embedder::QueryEmbedder;
use crate::ports::retriever::RetrieveError;

/// Sentences with fewer content words than this are not checked.
pub const MIN_CONTENT_WORDS: usize = 3;

/// Parameters of the check.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GroundingParams {
    /// Support score a sentence needs, 0..1.
    pub threshold: f32,
    /// Weight of the embedding cosine against lexical overlap, 0..1.
    pub semantic_weight: f32,
}

impl Default for GroundingParams {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            semantic_weight: 0.5,
        }
    }
}

/// One checked sentence.
#[derive(Debug, Clone, PartialEq)]
pub struct SentenceSupport {
    pub sentence: String,
    /// Best support score over the evidence, 0..1 (cosines below 0 count as 0).
    pub score: f32,
    /// Index of the best passage.
    pub passage: Option<usize>,
}

/// The result of a check.
#[derive(Debug, Clone, PartialEq)]
pub struct GroundingReport {
    pub sentences: Vec<SentenceSupport>,
    /// Lowest sentence score (1 when no sentence was checked).
    pub min_score: f32,
    pub grounded: bool,
}

/// The sentences of an answer that make claims, citation markers removed.
pub fn claim_sentences(answer: &str) -> Vec<String> {
    static MARKER: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"\s*\[\s*\d+(?:\s*[,;]\s*\d+)*\s*\]").expect("constant regex")
    });
    let clean = MARKER.replace_all(answer, "");
    static LIST_MARKER: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"^\s*(\d+[.)]|[-*•])\s+").expect("constant regex")
    });
    text::split_units(&clean)
        .into_iter()
        // "2. Click Add goal": the list number is not a claim.
        .map(|unit| LIST_MARKER.replace(&unit.text, "").into_owned())
        .filter(|sentence| text::content_terms(sentence).len() >= MIN_CONTENT_WORDS)
        .collect()
}

/// The numbers of a text, normalised (`1,000` → `1000`, `2.5` kept).
pub fn numbers(text: &str) -> Vec<String> {
    static NUMBER: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"\d+(?:[.,]\d+)*").expect("constant regex"));
    NUMBER
        .find_iter(text)
        .map(|m| {
            let n = m.as_str();
            // A thousands separator (1,000 / 1.000) is dropped; a decimal point is kept.
            if n.len() > 4
                && n.chars().filter(|c| matches!(c, ',' | '.')).count() >= 1
                && n.rsplit([',', '.'])
                    .next()
                    .is_some_and(|last| last.len() == 3)
            {
                n.replace([',', '.'], "")
            } else {
                n.replace(',', ".")
            }
        })
        .collect()
}

/// Lexical support: the share of `sentence`'s content terms found in `passage_stems`.
pub fn overlap(sentence: &str, passage_stems: &std::collections::HashSet<String>) -> f32 {
    text::coverage(&text::content_terms(sentence), passage_stems)
}

/// Checks `answer` against `evidence` (the passages it was generated from).
///
/// Errors: the embedder's.
pub async fn check(
    answer: &str,
    evidence: &[String],
    embedder: Option<&dyn QueryEmbedder>,
    params: GroundingParams,
) -> Result<GroundingReport, RetrieveError> {
    let sentences = claim_sentences(answer);
    let stems: Vec<_> = evidence.iter().map(|p| text::stem_set(p)).collect();
    let mut passage_vectors = Vec::new();
    if let Some(embedder) = embedder {
        for passage in evidence {
            passage_vectors.push(embedder.embed(passage).await?);
        }
    }
    let evidence_numbers: std::collections::HashSet<String> =
        evidence.iter().flat_map(|p| numbers(p)).collect();
    let mut seen = std::collections::HashSet::new();
    let repeats = sentences.iter().any(|s| {
        !seen.insert(
            s.to_lowercase()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
        )
    });
    let mut supports = Vec::with_capacity(sentences.len());
    for sentence in sentences {
        if numbers(&sentence)
            .iter()
            .any(|n| !evidence_numbers.contains(n))
        {
            supports.push(SentenceSupport {
                sentence,
                score: 0.0,
                passage: None,
            });
            continue;
        }
        let vector = match embedder {
            Some(embedder) if !evidence.is_empty() => Some(embedder.embed(&sentence).await?),
            _ => None,
        };
        let mut best = SentenceSupport {
            sentence: sentence.clone(),
            score: 0.0,
            passage: None,
        };
        for (i, passage_stems) in stems.iter().enumerate() {
            let lexical = overlap(&sentence, passage_stems);
            let score = match &vector {
                Some(v) => {
                    let cosine = frontdesk_kb::embed::cosine(v, &passage_vectors[i]).max(0.0);
                    params.semantic_weight * cosine + (1.0 - params.semantic_weight) * lexical
                }
                // Keyword-only deployments: the lexical side alone.
                None => lexical,
            };
            if best.passage.is_none() || score > best.score {
                best.score = score;
                best.passage = Some(i);
            }
        }
        supports.push(best);
    }
    let min_score = supports.iter().map(|s| s.score).fold(1.0f32, f32::min);
    Ok(GroundingReport {
        grounded: !repeats && supports.iter().all(|s| s.score >= params.threshold),
        min_score,
        sentences: supports,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_normalised() {
        assert_eq!(
            numbers("3-5 days, 1,000 visits, 2.5 GB, 60 minutes"),
            vec!["3", "5", "1000", "2.5", "60"]
        );
    }

    #[test]
    fn claims_skip_pleasantries_and_citation_markers() {
        let answer = "Hi! Go to Site Settings and open the Goals tab [1]. Thanks for asking. \
                      Then click Add goal and choose the event name [2, 3].";
        assert_eq!(
            claim_sentences(answer),
            vec![
                "Go to Site Settings and open the Goals tab.".to_string(),
                "Then click Add goal and choose the event name.".to_string()
            ]
        );
    }

    #[tokio::test]
    async fn lexical_check_without_an_embedder() {
        let evidence = vec![
            "To add a goal, open Site Settings, then the Goals tab, and click Add goal."
                .to_string(),
        ];
        let params = GroundingParams {
            threshold: 0.6,
            semantic_weight: 0.5,
        };
        let supported = check(
            "Open Site Settings, then the Goals tab, and click Add goal.",
            &evidence,
            None,
            params,
        )
        .await
        .unwrap();
        assert!(supported.grounded, "{supported:?}");
        let invented = check(
            "Goals cost ten dollars per month on the enterprise plan.",
            &evidence,
            None,
            params,
        )
        .await
        .unwrap();
        assert!(!invented.grounded, "{invented:?}");
        assert!(invented.min_score < 0.3, "{invented:?}");
        let wrong_number = check(
            "Open Site Settings, then the Goals tab, and click Add goal 3 times.",
            &evidence,
            None,
            params,
        )
        .await
        .unwrap();
        assert!(
            !wrong_number.grounded,
            "a figure the passages do not have: {wrong_number:?}"
        );
        let looping = check(
            "Open Site Settings and the Goals tab. Then click Add goal. Open Site Settings and the Goals tab.",
            &evidence,
            None,
            GroundingParams { threshold: 0.3, semantic_weight: 0.5 },
        )
        .await
        .unwrap();
        assert!(
            !looping.grounded,
            "a repeated sentence is a degenerate answer"
        );
        let empty = check("Hello there!", &evidence, None, params)
            .await
            .unwrap();
        assert!(
            empty.grounded && empty.sentences.is_empty(),
            "no claim, nothing to check"
        );
    }
}
