//! Retrieval metrics over labelled questions, article level, binary relevance.
//!
//! Definitions (Manning, Raghavan & Schütze, *Introduction to Information Retrieval*, ch. 8;
//! Järvelin & Kekäläinen, "Cumulated gain-based evaluation of IR techniques", TOIS 2002):
//! - Recall@k: 1 when any relevant article is among the top k, else 0 (averaged over questions).
//! - MRR@10: 1 / rank of the first relevant article within the top 10, else 0.
//! - nDCG@10: DCG = Σ rel_i / log2(i + 1) over the top 10 (rel ∈ {0, 1}), divided by the DCG of
//!   an ideal ranking with min(|relevant|, 10) relevant articles first.
//!
//! Questions with an empty `relevant` list cannot be scored: they are skipped and counted.

use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::Path;

/// One labelled question, as in `eval/plausible-questions.dev.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabelledQuestion {
    pub id: String,
    pub question: String,
    /// Relevant article ids (paths without extension).
    #[serde(default)]
    pub relevant: Vec<String>,
    /// `answer` or `handoff:<reason>`.
    #[serde(default)]
    pub expected: String,
}

/// Reads a JSONL file of [`LabelledQuestion`]s; errors name the path and line.
pub fn load_questions(path: &Path) -> Result<Vec<LabelledQuestion>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line).map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))
        })
        .collect()
}

/// Metrics of one ranking against its relevant set.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct QuestionScores {
    pub recall_at_1: f64,
    pub recall_at_5: f64,
    pub reciprocal_rank_at_10: f64,
    pub ndcg_at_10: f64,
}

/// Scores a ranking (article ids, best first; duplicates ignored after their first place).
pub fn score_ranking(ranking: &[&str], relevant: &HashSet<&str>) -> QuestionScores {
    let mut seen = HashSet::new();
    let ranking: Vec<&str> = ranking
        .iter()
        .copied()
        .filter(|id| seen.insert(*id))
        .collect();
    let hit_within = |k: usize| ranking.iter().take(k).any(|id| relevant.contains(id));
    let first_rank = ranking.iter().take(10).position(|id| relevant.contains(id));
    let dcg: f64 = ranking
        .iter()
        .take(10)
        .enumerate()
        .filter(|(_, id)| relevant.contains(*id))
        .map(|(i, _)| 1.0 / ((i + 2) as f64).log2())
        .sum();
    let ideal: f64 = (0..relevant.len().min(10))
        .map(|i| 1.0 / ((i + 2) as f64).log2())
        .sum();
    QuestionScores {
        recall_at_1: f64::from(u8::from(hit_within(1))),
        recall_at_5: f64::from(u8::from(hit_within(5))),
        reciprocal_rank_at_10: first_rank.map_or(0.0, |r| 1.0 / (r + 1) as f64),
        ndcg_at_10: if ideal > 0.0 { dcg / ideal } else { 0.0 },
    }
}

/// Averages over scored questions; the JSON keys are part of the CLI contract.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RetrievalMetrics {
    /// Questions scored.
    pub n: usize,
    /// Questions skipped because their `relevant` list is empty.
    pub skipped: usize,
    pub recall_at_1: f64,
    pub recall_at_5: f64,
    pub mrr_at_10: f64,
    pub ndcg_at_10: f64,
}

impl RetrievalMetrics {
    /// Averages per-question scores.
    pub fn from_scores(scores: &[QuestionScores], skipped: usize) -> Self {
        let n = scores.len();
        let mean = |f: fn(&QuestionScores) -> f64| {
            if n == 0 {
                0.0
            } else {
                scores.iter().map(f).sum::<f64>() / n as f64
            }
        };
        Self {
            n,
            skipped,
            recall_at_1: mean(|s| s.recall_at_1),
            recall_at_5: mean(|s| s.recall_at_5),
            mrr_at_10: mean(|s| s.reciprocal_rank_at_10),
            ndcg_at_10: mean(|s| s.ndcg_at_10),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set<'a>(ids: &[&'a str]) -> HashSet<&'a str> {
        ids.iter().copied().collect()
    }

    #[test]
    fn scores_a_hit_at_rank_two() {
        let s = score_ranking(&["x", "a", "y"], &set(&["a"]));
        assert_eq!(s.recall_at_1, 0.0);
        assert_eq!(s.recall_at_5, 1.0);
        assert_eq!(s.reciprocal_rank_at_10, 0.5);
        assert!((s.ndcg_at_10 - 1.0 / 3f64.log2()).abs() < 1e-12);
    }

    #[test]
    fn ndcg_uses_the_ideal_ranking_of_all_relevant_articles() {
        // Two relevant, one retrieved at rank 1: DCG = 1, IDCG = 1 + 1/log2(3).
        let s = score_ranking(&["a", "x"], &set(&["a", "b"]));
        assert!((s.ndcg_at_10 - 1.0 / (1.0 + 1.0 / 3f64.log2())).abs() < 1e-12);
        assert_eq!(s.recall_at_1, 1.0);
    }

    #[test]
    fn a_miss_scores_zero_and_duplicates_do_not_count_twice() {
        let s = score_ranking(&["x", "x", "y"], &set(&["a"]));
        assert_eq!(
            s,
            QuestionScores {
                recall_at_1: 0.0,
                recall_at_5: 0.0,
                reciprocal_rank_at_10: 0.0,
                ndcg_at_10: 0.0
            }
        );
        let s = score_ranking(&["x", "x", "a"], &set(&["a"]));
        assert_eq!(s.reciprocal_rank_at_10, 0.5);
    }

    #[test]
    fn metrics_average_and_count_skips() {
        let a = score_ranking(&["a"], &set(&["a"]));
        let b = score_ranking(&["x"], &set(&["a"]));
        let m = RetrievalMetrics::from_scores(&[a, b], 3);
        assert_eq!((m.n, m.skipped), (2, 3));
        assert_eq!(m.recall_at_1, 0.5);
        assert_eq!(m.mrr_at_10, 0.5);
    }
}

/// One evaluated question: its ranking and scores.
#[derive(Debug, Clone, Serialize)]
pub struct EvaluatedQuestion {
    pub id: String,
    pub question: String,
    pub relevant: Vec<String>,
    /// Top 10 article ids, best first.
    pub ranking: Vec<String>,
    pub confidence: f32,
    pub scores: QuestionScores,
}

/// Runs every question with relevant articles through `search` (a closure returning the
/// ranked article ids and the confidence) and averages the metrics.
pub fn evaluate<E>(
    questions: &[LabelledQuestion],
    mut search: impl FnMut(&LabelledQuestion) -> Result<(Vec<String>, f32), E>,
) -> Result<(RetrievalMetrics, Vec<EvaluatedQuestion>), E> {
    let mut details = Vec::new();
    let mut skipped = 0;
    for question in questions {
        if question.relevant.is_empty() {
            skipped += 1;
            continue;
        }
        let (ranking, confidence) = search(question)?;
        let relevant: HashSet<&str> = question.relevant.iter().map(String::as_str).collect();
        let ids: Vec<&str> = ranking.iter().map(String::as_str).collect();
        let scores = score_ranking(&ids, &relevant);
        details.push(EvaluatedQuestion {
            id: question.id.clone(),
            question: question.question.clone(),
            relevant: question.relevant.clone(),
            ranking: ranking.into_iter().take(10).collect(),
            confidence,
            scores,
        });
    }
    let scores: Vec<QuestionScores> = details.iter().map(|d| d.scores).collect();
    Ok((RetrievalMetrics::from_scores(&scores, skipped), details))
}

/// Whether a question id ends in an odd number (`dev-001` → true): the tuning half.
pub fn is_odd_id(id: &str) -> bool {
    id.chars()
        .rev()
        .find(|c| c.is_ascii_digit())
        .and_then(|c| c.to_digit(10))
        .is_some_and(|d| d % 2 == 1)
}
