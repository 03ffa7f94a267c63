//! The extractive answer generator: no LLM. From the top knowledge-base hits it picks the
//! passage and the sentences that answer the question (the sentence sharing the most content
//! words with the question, with the lines that follow it — a procedure's steps — up to a word
//! budget), streams them in chunks of a few words and cites the articles used. When nothing
//! citable was retrieved it says so plainly and offers a human.

use crate::domain::Citation;
use crate::engine::replies;
use crate::engine::text::{self, Unit};
use crate::ports::answer::{AnswerGenerator, AnswerPiece, AnswerRequest, GenerateError};
use frontdesk_kb::index::{ArticleHit, SearchResult};
use futures_util::stream::{self, BoxStream, StreamExt};

/// Words per streamed delta.
pub const WORDS_PER_DELTA: usize = 3;
/// Word budget of the part taken from the top article.
const MAX_WORDS: usize = 70;
/// Word budget of the part taken from a second article.
const MAX_WORDS_SECOND: usize = 40;
/// A second article is used only when it ranks this close to the first (fused score ratio).
const SECOND_ARTICLE_MIN_RATIO: f32 = 0.9;
/// Passages considered per article.
const PASSAGES_PER_ARTICLE: usize = 2;

/// An answer composed from passages.
#[derive(Debug, Clone, PartialEq)]
pub struct ComposedAnswer {
    pub text: String,
    /// Empty when nothing citable was found (the text then says so).
    pub citations: Vec<Citation>,
}

/// The extractive generator (stateless).
#[derive(Debug, Clone, Default)]
pub struct ExtractiveGenerator;

struct Selection {
    text: String,
    /// Question content words matched by the best unit.
    best_score: usize,
}

impl ExtractiveGenerator {
    pub fn new() -> Self {
        Self
    }

    /// Composes the answer to `question` from `result` (pure; see the module docs).
    pub fn compose(&self, question: &str, result: &SearchResult) -> ComposedAnswer {
        let terms = text::content_terms(question);
        let citable: Vec<&ArticleHit> = result
            .hits
            .iter()
            .filter(|hit| !hit.internal && !hit.passages.is_empty())
            .collect();
        let Some(top) = citable.first() else {
            return ComposedAnswer {
                text: replies::NOTHING_FOUND.to_string(),
                citations: Vec::new(),
            };
        };
        let first = select(top, &terms, MAX_WORDS);
        let mut text = first.text;
        let mut citations = vec![Citation::from(*top)];
        if let Some(second) = citable.get(1)
            && second.fused_score >= SECOND_ARTICLE_MIN_RATIO * top.fused_score
        {
            let extra = select(second, &terms, MAX_WORDS_SECOND);
            if extra.best_score > first.best_score {
                text.push_str("\n\n");
                text.push_str(&extra.text);
                citations.push(Citation::from(*second));
            }
        }
        ComposedAnswer { text, citations }
    }
}

fn n_words(text: &str) -> usize {
    text.split_whitespace().count()
}

/// The best unit of the article's passages and what follows it in its passage, within `budget`.
fn select(hit: &ArticleHit, terms: &[String], budget: usize) -> Selection {
    let passages: Vec<Vec<Unit>> = hit
        .passages
        .iter()
        .take(PASSAGES_PER_ARTICLE)
        .map(|p| text::split_units(&p.text))
        .collect();
    // (score, passage index, unit index); ties go to the earlier passage, then earlier unit.
    let mut best: Option<(usize, usize, usize)> = None;
    for (passage_index, units) in passages.iter().enumerate() {
        for (unit_index, unit) in units.iter().enumerate() {
            let stems = text::stem_set(&unit.text);
            let score = terms.iter().filter(|t| stems.contains(*t)).count();
            if best.is_none_or(|(best_score, _, _)| score > best_score) {
                best = Some((score, passage_index, unit_index));
            }
        }
    }
    let Some((best_score, passage_index, mut start)) = best else {
        return Selection {
            text: String::new(),
            best_score: 0,
        };
    };
    let units = &passages[passage_index];
    if best_score == 0 {
        // No shared word (a paraphrase found semantically): the passage's lead answers best.
        start = 0;
    } else if start > 0 && units[start - 1].text.ends_with(':') {
        // The best unit is a step of a list: keep the sentence that introduces the list.
        start -= 1;
    }
    let mut selected: Vec<&Unit> = Vec::new();
    let mut words = 0;
    for unit in &units[start..] {
        let unit_words = n_words(&unit.text);
        if !selected.is_empty() && words + unit_words > budget {
            break;
        }
        words += unit_words;
        selected.push(unit);
    }
    Selection {
        text: text::join_units(selected),
        best_score,
    }
}

impl AnswerGenerator for ExtractiveGenerator {
    fn name(&self) -> &'static str {
        "extractive"
    }

    fn generate(
        &self,
        request: AnswerRequest,
    ) -> BoxStream<'static, Result<AnswerPiece, GenerateError>> {
        let answer = self.compose(&request.question, &request.retrieval);
        let deltas = text::stream_chunks(&answer.text, WORDS_PER_DELTA)
            .into_iter()
            .map(|chunk| Ok(AnswerPiece::Delta(chunk)));
        stream::iter(deltas)
            .chain(stream::once(async move {
                Ok(AnswerPiece::Done {
                    citations: answer.citations,
                    usage: None,
                    evidence: None,
                })
            }))
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use frontdesk_kb::DocumentId;
    use frontdesk_kb::index::Passage;

    fn hit(id: &str, fused: f32, passages: &[&str]) -> ArticleHit {
        ArticleHit {
            document_id: DocumentId::parse(id).expect("valid id"),
            title: format!("Title of {id}"),
            url: Some(format!("/{id}")),
            internal: false,
            keyword_score: 1.0,
            semantic_score: 0.5,
            fused_score: fused,
            passages: passages
                .iter()
                .enumerate()
                .map(|(i, text)| Passage {
                    chunk_id: format!("{id}##{i}"),
                    heading_path: vec![],
                    text: text.to_string(),
                    keyword_score: 1.0,
                    semantic_score: 0.5,
                    fused_score: fused,
                })
                .collect(),
        }
    }

    fn result(hits: Vec<ArticleHit>) -> SearchResult {
        SearchResult {
            hits,
            confidence: 0.9,
            keyword_only: false,
            rankings_agree: true,
        }
    }

    const RESET: &str = "If you can't remember your password, you can set a new one yourself. Your lamps keep working.\n\
        To send yourself a reset link:\n\
        On the sign-in screen, tap Forgot password?\n\
        Enter the email address you use for your Lumen account.\n\
        Open the email and tap Choose a new password.";

    #[test]
    fn picks_the_sentence_that_answers_and_the_steps_after_it() {
        let composed = ExtractiveGenerator::new().compose(
            "How do I get a password reset link?",
            &result(vec![hit(
                "reset-password",
                0.9,
                &["Passwords must be 10 characters long.", RESET],
            )]),
        );
        assert_eq!(
            composed.text,
            "To send yourself a reset link:\nOn the sign-in screen, tap Forgot password?\n\
             Enter the email address you use for your Lumen account.\nOpen the email and tap Choose a new password."
        );
        assert_eq!(composed.citations.len(), 1);
        assert_eq!(composed.citations[0].article_id.as_str(), "reset-password");
        assert_eq!(
            composed.citations[0].url.as_deref(),
            Some("/reset-password")
        );
    }

    #[test]
    fn without_shared_words_it_takes_the_lead_of_the_best_passage() {
        let composed = ExtractiveGenerator::new().compose(
            "locked out, what now",
            &result(vec![hit("reset-password", 0.9, &[RESET])]),
        );
        assert!(
            composed
                .text
                .starts_with("If you can't remember your password"),
            "{}",
            composed.text
        );
    }

    #[test]
    fn respects_the_word_budget_but_keeps_at_least_one_sentence() {
        let long = vec!["word"; 120].join(" ") + ".";
        let composed =
            ExtractiveGenerator::new().compose("word", &result(vec![hit("a", 0.9, &[&long])]));
        assert_eq!(composed.text, long);
        let many = (0..40)
            .map(|i| format!("Step {i} says word here."))
            .collect::<Vec<_>>()
            .join(" ");
        let composed =
            ExtractiveGenerator::new().compose("word", &result(vec![hit("b", 0.9, &[&many])]));
        assert!(n_words(&composed.text) <= MAX_WORDS, "{}", composed.text);
    }

    #[test]
    fn adds_a_close_second_article_only_when_it_matches_better() {
        let top = hit(
            "refund-policy",
            1.0,
            &["Refunds are possible within 30 days."],
        );
        let second = hit(
            "damaged-item",
            0.95,
            &["If your lamp arrived damaged, send a photo and we replace it."],
        );
        let far = hit("warranty", 0.5, &["A damaged lamp photo replace warranty."]);
        let composed = ExtractiveGenerator::new().compose(
            "my lamp arrived damaged, can you replace it",
            &result(vec![top.clone(), second]),
        );
        assert_eq!(
            composed
                .citations
                .iter()
                .map(|c| c.article_id.as_str())
                .collect::<Vec<_>>(),
            vec!["refund-policy", "damaged-item"]
        );
        assert!(
            composed
                .text
                .ends_with("\n\nIf your lamp arrived damaged, send a photo and we replace it.")
        );
        let composed = ExtractiveGenerator::new().compose(
            "my lamp arrived damaged, can you replace it",
            &result(vec![top, far]),
        );
        assert_eq!(composed.citations.len(), 1);
    }

    #[test]
    fn nothing_citable_says_so_and_offers_a_human() {
        let mut internal = hit("tickets/1", 0.9, &["internal notes"]);
        internal.internal = true;
        for hits in [vec![], vec![internal]] {
            let composed = ExtractiveGenerator::new().compose("anything", &result(hits));
            assert_eq!(composed.text, replies::NOTHING_FOUND);
            assert!(composed.citations.is_empty());
        }
    }

    #[tokio::test]
    async fn streams_small_deltas_that_concatenate_to_the_answer_then_cites() {
        let request = AnswerRequest {
            question: "reset link".into(),
            retrieval: std::sync::Arc::new(result(vec![hit("reset-password", 0.9, &[RESET])])),
            locale: None,
            language: None,
            history: Vec::new(),
            site: "demo".into(),
        };
        let generator = ExtractiveGenerator::new();
        let expected = generator.compose(&request.question, &request.retrieval);
        let pieces: Vec<AnswerPiece> = generator
            .generate(request)
            .map(|p| p.expect("extractive never fails"))
            .collect()
            .await;
        let (last, deltas) = pieces.split_last().expect("at least Done");
        assert_eq!(
            last,
            &AnswerPiece::Done {
                citations: expected.citations,
                usage: None,
                evidence: None,
            }
        );
        let text: String = deltas
            .iter()
            .map(|p| match p {
                AnswerPiece::Delta(d) => {
                    assert!(d.split_whitespace().count() <= WORDS_PER_DELTA);
                    d.as_str()
                }
                AnswerPiece::Done { .. } => panic!("Done must come last"),
            })
            .collect();
        assert_eq!(text, expected.text);
        assert!(deltas.len() > 3);
    }
}
