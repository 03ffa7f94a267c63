//! Per-turn analysis (DESIGN.md "One turn", step 3): language, sentiment and support signals,
//! category and priority — the local analyzer, the default adapter of the
//! [`Analyzer`](crate::ports::analyzer::Analyzer) port (no LLM needed).
//!
//! - language: `whatlang`, restricted to the languages the product supports;
//! - sentiment: VADER's compound score ([`vader`]);
//! - support signals: rules in English, Spanish, French and German ([`signals`],
//!   [`crate::engine::human_request`]);
//! - category: a few-shot classifier per site ([`SiteClassifier`]) over the turn's embedding,
//!   trained at start-up on the taxonomy's examples and descriptions, with an out-of-scope
//!   threshold on the cosine to the nearest example;
//! - priority: the node's priority raised by the taxonomy's priority rules.
//!
//! Everything here is CPU-only and takes microseconds once the embedding exists (see
//! `server/benches/turn.rs`).

pub mod classifier;
pub mod signals;
pub mod vader;

use crate::config::{Priority, SiteSettings};
use crate::domain::{ActionRequest, ReasonCode};
use crate::engine::human_request;
use crate::ids::SiteId;
use crate::ports::analyzer::{
    AnalysisRequest, AnalyzeError, Analyzer, CategoryMatch, TurnAnalysis,
};
use crate::taxonomy::{Handling, PrioritySignal, Taxonomy};
use classifier::{ClassifierError, SoftmaxHead, SoftmaxParams};
use frontdesk_kb::embed::{EmbedError, SharedEmbedder};
use std::collections::HashMap;
use whatlang::Lang;

/// Support sentiment (see [`signals::support_sentiment`]) below which the
/// `negative_sentiment` priority rule fires.
pub const NEGATIVE_PRIORITY_SENTIMENT: f64 = -0.5;

/// Languages the detector chooses among, with their ISO 639-1 codes.
const LANGUAGES: [(Lang, &str); 8] = [
    (Lang::Eng, "en"),
    (Lang::Spa, "es"),
    (Lang::Fra, "fr"),
    (Lang::Deu, "de"),
    (Lang::Ita, "it"),
    (Lang::Por, "pt"),
    (Lang::Nld, "nl"),
    (Lang::Pol, "pl"),
];

/// `whatlang` confidence (0..1) needed to name a language. Its own "reliable" bar (0.9) leaves
/// most one-line support messages without a language; at 0.3 a short English sentence such as
/// "You charged me twice!! I want to talk to a manager" (0.38) is named, while three-word
/// messages mostly are not.
pub const MIN_LANGUAGE_CONFIDENCE: f64 = 0.3;

/// The ISO 639-1 code of `text`'s language when `whatlang` (restricted to [`LANGUAGES`]) is
/// confident enough ([`MIN_LANGUAGE_CONFIDENCE`]); `None` for short or ambiguous text.
pub fn detect_language(text: &str) -> Option<&'static str> {
    let detector = whatlang::Detector::with_allowlist(LANGUAGES.iter().map(|(l, _)| *l).collect());
    let info = detector.detect(text)?;
    if info.confidence() < MIN_LANGUAGE_CONFIDENCE {
        return None;
    }
    LANGUAGES
        .iter()
        .find(|(lang, _)| *lang == info.lang())
        .map(|(_, code)| *code)
}

/// Errors building the analyzer at start-up.
#[derive(Debug, thiserror::Error)]
pub enum AnalyzerBuildError {
    #[error("embedding the taxonomy of site {site}: {source}")]
    Embed {
        site: SiteId,
        #[source]
        source: EmbedError,
    },
    #[error("training the classifier of site {site}: {source}")]
    Classifier {
        site: SiteId,
        #[source]
        source: ClassifierError,
    },
}

/// A taxonomy node: a category, or one of its subcategories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node {
    pub category: usize,
    pub subcategory: Option<usize>,
}

/// The few-shot classifier of one site: every node with examples (a category without
/// subcategories, each subcategory, and a category's own examples) is a class; its examples
/// and description are the training texts.
#[derive(Debug, Clone)]
pub struct SiteClassifier {
    nodes: Vec<Node>,
    /// Training vectors and their node index.
    examples: Vec<(Vec<f32>, usize)>,
    head: SoftmaxHead,
}

/// What [`SiteClassifier::classify`] says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NodeMatch {
    pub node: Node,
    /// Cosine to the nearest training text (any node).
    pub similarity: f32,
    /// The logistic head's probability of the node.
    pub probability: f32,
}

impl SiteClassifier {
    /// The training texts of `taxonomy`: (text, node index) and the nodes.
    fn training_texts(taxonomy: &Taxonomy) -> (Vec<Node>, Vec<(String, usize)>) {
        let mut nodes = Vec::new();
        let mut texts = Vec::new();
        for (c, category) in taxonomy.categories.iter().enumerate() {
            if category.subcategories.is_empty() || !category.examples.is_empty() {
                let index = nodes.len();
                nodes.push(Node {
                    category: c,
                    subcategory: None,
                });
                texts.push((category.description.clone(), index));
                texts.extend(category.examples.iter().map(|e| (e.clone(), index)));
            }
            for (s, sub) in category.subcategories.iter().enumerate() {
                let index = nodes.len();
                nodes.push(Node {
                    category: c,
                    subcategory: Some(s),
                });
                texts.push((sub.description.clone(), index));
                texts.extend(sub.examples.iter().map(|e| (e.clone(), index)));
            }
        }
        texts.retain(|(text, _)| !text.trim().is_empty());
        (nodes, texts)
    }

    /// Embeds the taxonomy's texts with `embed` and fits the classifier (blocking).
    /// `Ok(None)` for a taxonomy without categories.
    pub fn build(
        taxonomy: &Taxonomy,
        embed: impl Fn(&[&str]) -> Result<Vec<Vec<f32>>, EmbedError>,
    ) -> Result<Option<Self>, BuildError> {
        let (nodes, texts) = Self::training_texts(taxonomy);
        if texts.is_empty() {
            return Ok(None);
        }
        let refs: Vec<&str> = texts.iter().map(|(t, _)| t.as_str()).collect();
        let vectors = embed(&refs).map_err(BuildError::Embed)?;
        let labels: Vec<usize> = texts.iter().map(|(_, node)| *node).collect();
        let vector_refs: Vec<&[f32]> = vectors.iter().map(Vec::as_slice).collect();
        let head = SoftmaxHead::fit(&vector_refs, &labels, nodes.len(), SoftmaxParams::default())
            .map_err(BuildError::Classifier)?;
        Ok(Some(Self {
            nodes,
            examples: vectors.into_iter().zip(labels).collect(),
            head,
        }))
    }

    /// The most probable node for `embedding`, with its nearest-example similarity.
    pub fn classify(&self, embedding: &[f32]) -> NodeMatch {
        let prediction = self.head.predict(embedding);
        let similarity = self
            .examples
            .iter()
            .map(|(v, _)| frontdesk_kb::embed::cosine(v, embedding))
            .fold(f32::NEG_INFINITY, f32::max);
        NodeMatch {
            node: self.nodes[prediction.class],
            similarity,
            probability: prediction.score,
        }
    }

    /// Number of classes (taxonomy nodes with training texts).
    pub fn n_nodes(&self) -> usize {
        self.nodes.len()
    }
}

/// Why a site classifier could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Embed(EmbedError),
    #[error(transparent)]
    Classifier(ClassifierError),
}

/// One site's analysis state.
#[derive(Debug, Clone)]
struct SiteAnalyzer {
    taxonomy: Taxonomy,
    classifier: Option<SiteClassifier>,
    competitors: signals::CompetitorNames,
}

/// The local analyzer: VADER, the support-signal rules and one classifier per site.
#[derive(Debug, Clone, Default)]
pub struct LocalAnalyzer {
    sites: HashMap<SiteId, SiteAnalyzer>,
    /// Ablation: skip the support-signal and human-request rules (`eval decisions
    /// --without-rules`); never set in the server.
    without_rules: bool,
}

impl LocalAnalyzer {
    /// Builds the analyzer of every site; with an embedder, embeds each taxonomy and trains its
    /// classifier (blocking: a few hundred short texts, about a second per site on two cores).
    /// Without one, messages are not classified.
    ///
    /// Errors: [`AnalyzerBuildError`] naming the site.
    pub fn build(
        sites: &[SiteSettings],
        embedder: Option<&SharedEmbedder>,
    ) -> Result<Self, AnalyzerBuildError> {
        let mut built = HashMap::new();
        for site in sites {
            built.insert(
                site.id.clone(),
                Self::build_site(&site.id, &site.taxonomy, embedder)?,
            );
        }
        Ok(Self {
            sites: built,
            without_rules: false,
        })
    }

    /// The same analyzer without the support-signal and human-request rules (sentiment,
    /// language and classification only), to measure what the rules add.
    pub fn without_rules(mut self) -> Self {
        self.without_rules = true;
        self
    }

    /// An analyzer for one taxonomy (evaluation, benches).
    pub fn for_taxonomy(
        site: &SiteId,
        taxonomy: &Taxonomy,
        embedder: Option<&SharedEmbedder>,
    ) -> Result<Self, AnalyzerBuildError> {
        let mut sites = HashMap::new();
        sites.insert(site.clone(), Self::build_site(site, taxonomy, embedder)?);
        Ok(Self {
            sites,
            without_rules: false,
        })
    }

    fn build_site(
        site: &SiteId,
        taxonomy: &Taxonomy,
        embedder: Option<&SharedEmbedder>,
    ) -> Result<SiteAnalyzer, AnalyzerBuildError> {
        let classifier = match embedder {
            None => None,
            Some(embedder) => SiteClassifier::build(taxonomy, |texts| embedder.embed_batch(texts))
                .map_err(|err| match err {
                    BuildError::Embed(source) => AnalyzerBuildError::Embed {
                        site: site.clone(),
                        source,
                    },
                    BuildError::Classifier(source) => AnalyzerBuildError::Classifier {
                        site: site.clone(),
                        source,
                    },
                })?,
        };
        Ok(SiteAnalyzer {
            taxonomy: taxonomy.clone(),
            classifier,
            competitors: signals::CompetitorNames::new(&taxonomy.competitors),
        })
    }

    /// Analyses one message (synchronous; microseconds).
    pub fn analyze_now(&self, site: &SiteId, request: &AnalysisRequest<'_>) -> TurnAnalysis {
        let state = self.sites.get(site);
        let text = request.text;
        let sentiment = vader::compound(text);
        let previous_sentiment = request.previous_visitor_text.map(vader::compound);
        let requested_human = !self.without_rules && human_request::asks_for_human(text);
        let found = match state {
            _ if self.without_rules => signals::Signals::default(),
            Some(state) => signals::detect_with(text, &state.competitors),
            None => signals::detect(text),
        };

        let mut category = None;
        let mut out_of_taxonomy = false;
        let mut taxonomy_similarity = None;
        let mut handling = Handling::Answer;
        let mut priority = Priority::Normal;
        let mut node_reason = None;
        let mut node_action = None;
        if let (Some(state), Some(embedding)) = (state, request.embedding)
            && let Some(classifier) = &state.classifier
        {
            let matched = classifier.classify(embedding);
            taxonomy_similarity = Some(matched.similarity);
            if matched.similarity < state.taxonomy.min_similarity {
                out_of_taxonomy = true;
            } else {
                let node_category = &state.taxonomy.categories[matched.node.category];
                let sub = matched
                    .node
                    .subcategory
                    .map(|s| &node_category.subcategories[s]);
                handling = sub.map_or(node_category.handling, |s| s.handling);
                priority = sub.map_or(node_category.priority, |s| s.priority);
                node_reason = sub.map_or(node_category.reason, |s| s.reason);
                node_action = sub.map_or(node_category.action, |s| s.action);
                category = Some(CategoryMatch {
                    category: node_category.id.clone(),
                    subcategory: sub.map(|s| s.id.clone()),
                    similarity: matched.similarity,
                    probability: matched.probability,
                });
            }
        }

        let mut flagged = Vec::new();
        if found.security {
            flagged.push(ReasonCode::Security);
        }
        if found.legal {
            flagged.push(ReasonCode::Legal);
        }
        if found.billing_dispute {
            flagged.push(ReasonCode::BillingDispute);
        }
        if found.churn_risk {
            flagged.push(ReasonCode::ChurnRisk);
        }
        if handling == Handling::Human
            && let Some(reason) = node_reason
        {
            flagged.push(reason);
        }
        flagged.sort();
        flagged.dedup();

        let action = found.action.or_else(|| {
            node_action
                .filter(|_| handling != Handling::Answer)
                .map(|kind| ActionRequest { kind, amount: None })
        });

        if let Some(state) = state {
            let support = signals::support_sentiment(sentiment, &found);
            for rule in &state.taxonomy.priority_rules {
                let fired = match rule.signal {
                    PrioritySignal::Urgency => found.urgency,
                    PrioritySignal::Frustration => found.is_frustrated(),
                    PrioritySignal::ChurnRisk => found.churn_risk,
                    PrioritySignal::NegativeSentiment => support < NEGATIVE_PRIORITY_SENTIMENT,
                    PrioritySignal::RequestedHuman => requested_human,
                    PrioritySignal::Security => found.security,
                    PrioritySignal::Legal => found.legal,
                    PrioritySignal::BillingDispute => found.billing_dispute,
                };
                if fired {
                    priority = priority.max(rule.priority);
                }
            }
        }

        TurnAnalysis {
            language: detect_language(text).map(str::to_string),
            // VADER scores lie in −1..1, so narrowing loses only precision.
            sentiment: sentiment as f32,
            previous_sentiment: previous_sentiment.map(|s| s as f32),
            requested_human,
            frustrated: found.is_frustrated(),
            urgent: found.urgency,
            category,
            out_of_taxonomy,
            taxonomy_similarity,
            handling,
            priority,
            action,
            flagged,
            source: crate::ports::analyzer::AnalysisSource::Local,
            usage: None,
        }
    }

    /// The taxonomy of `site`, when it is known.
    pub fn taxonomy(&self, site: &SiteId) -> Option<&Taxonomy> {
        self.sites.get(site).map(|s| &s.taxonomy)
    }
}

#[async_trait::async_trait]
impl Analyzer for LocalAnalyzer {
    fn adapter_name(&self) -> &'static str {
        "local"
    }

    async fn analyze(
        &self,
        site: &SiteId,
        request: &AnalysisRequest<'_>,
    ) -> Result<TurnAnalysis, AnalyzeError> {
        Ok(self.analyze_now(site, request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ConfigSources, EnvSnapshot, Settings};
    use frontdesk_kb::embed::Embedder;
    use std::sync::Arc;

    /// A bag-of-words embedder over a tiny vocabulary: enough to test the plumbing without the
    /// model (the real model is measured by `frontdesk eval classify`).
    struct Words;
    const VOCABULARY: [&str; 8] = [
        "invoice", "refund", "password", "login", "lamp", "wifi", "charged", "hacked",
    ];
    impl Embedder for Words {
        fn model_id(&self) -> &str {
            "words"
        }
        fn dimensions(&self) -> usize {
            VOCABULARY.len() + 1
        }
        fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
            Ok(texts
                .iter()
                .map(|t| {
                    let lower = t.to_lowercase();
                    let mut v: Vec<f32> = VOCABULARY
                        .iter()
                        .map(|w| f32::from(u8::from(lower.contains(w))))
                        .collect();
                    v.push(0.1);
                    frontdesk_kb::embed::l2_normalize(&mut v);
                    v
                })
                .collect())
        }
        fn count_tokens(&self, text: &str) -> usize {
            text.split_whitespace().count()
        }
        fn max_tokens(&self) -> usize {
            256
        }
    }

    fn site(taxonomy_toml: &str) -> SiteSettings {
        let settings = Settings::load(&ConfigSources {
            file: None,
            layers: vec![format!(
                "[[sites]]\nid = \"t\"\npublic_key = \"pk_test_1234\"\n{taxonomy_toml}"
            )],
            env: EnvSnapshot::default(),
        })
        .expect("test config loads");
        settings.sites[0].clone()
    }

    const TAXONOMY: &str = r#"
[sites.taxonomy]
min_similarity = 0.5
priority_rules = [{ signal = "urgency", priority = "urgent" }, { signal = "frustration", priority = "high" }]
[[sites.taxonomy.categories]]
id = "billing"
description = "invoice questions"
examples = ["where is my invoice"]
[[sites.taxonomy.categories.subcategories]]
id = "refunds"
description = "refund requests"
examples = ["I want a refund"]
handling = "draft"
action = "refund"
[[sites.taxonomy.categories]]
id = "security"
description = "hacked accounts"
examples = ["my account was hacked"]
handling = "human"
reason = "security"
priority = "high"
[[sites.taxonomy.categories]]
id = "devices"
description = "lamp wifi"
examples = ["the lamp has no wifi"]
"#;

    fn analyze(analyzer: &LocalAnalyzer, text: &str) -> TurnAnalysis {
        let embedding = Words.embed_batch(&[text]).expect("embeds").remove(0);
        analyzer.analyze_now(
            &SiteId::parse("t").expect("valid"),
            &AnalysisRequest {
                text,
                embedding: Some(&embedding),
                previous_visitor_text: Some("This is terrible, I hate it"),
                allow_model: true,
            },
        )
    }

    #[test]
    fn classifies_flags_and_prioritises() {
        let embedder: SharedEmbedder = Arc::new(Words);
        let analyzer = LocalAnalyzer::build(&[site(TAXONOMY)], Some(&embedder)).expect("builds");
        let invoice = analyze(&analyzer, "I can't find the invoice for March");
        let matched = invoice.category.expect("classified");
        assert_eq!(matched.category, "billing");
        assert_eq!(matched.subcategory, None);
        assert_eq!(invoice.handling, Handling::Answer);
        assert_eq!(invoice.priority, Priority::Normal);
        assert!(invoice.flagged.is_empty());
        assert!(invoice.previous_sentiment.is_some_and(|s| s < -0.5));

        let hacked = analyze(&analyzer, "I think my account was hacked, URGENT");
        assert_eq!(hacked.category.map(|c| c.category), Some("security".into()));
        assert_eq!(hacked.handling, Handling::Human);
        assert_eq!(hacked.flagged, vec![ReasonCode::Security]);
        assert_eq!(hacked.priority, Priority::Urgent);

        let refund = analyze(&analyzer, "please give me a refund");
        assert_eq!(
            refund.category.and_then(|c| c.subcategory),
            Some("refunds".into())
        );
        assert_eq!(refund.handling, Handling::Draft);
        assert_eq!(
            refund.action.map(|a| a.kind),
            Some(crate::domain::ActionKind::Refund)
        );

        let elsewhere = analyze(&analyzer, "what is the weather like");
        assert!(elsewhere.out_of_taxonomy);
        assert_eq!(elsewhere.category, None);
    }

    #[test]
    fn without_an_embedding_only_the_rules_run() {
        let analyzer = LocalAnalyzer::build(&[site(TAXONOMY)], None).expect("builds");
        let analysis = analyzer.analyze_now(
            &SiteId::parse("t").expect("valid"),
            &AnalysisRequest {
                text: "You charged me twice!! I want to talk to a manager",
                embedding: None,
                previous_visitor_text: None,
                allow_model: true,
            },
        );
        assert_eq!(analysis.category, None);
        assert!(!analysis.out_of_taxonomy);
        assert!(analysis.requested_human);
        assert!(analysis.frustrated);
        assert_eq!(analysis.flagged, vec![ReasonCode::BillingDispute]);
        assert_eq!(analysis.priority, Priority::High);
        assert_eq!(analysis.language.as_deref(), Some("en"));
    }

    #[test]
    fn detects_the_supported_languages() {
        let cases = [
            (
                "How do I change the email address of my account?",
                Some("en"),
            ),
            (
                "¿Cómo puedo cambiar la dirección de correo de mi cuenta?",
                Some("es"),
            ),
            (
                "Comment puis-je changer l'adresse e-mail de mon compte ?",
                Some("fr"),
            ),
            (
                "Wie kann ich die E-Mail-Adresse meines Kontos ändern?",
                Some("de"),
            ),
        ];
        for (text, code) in cases {
            assert_eq!(detect_language(text), code, "{text:?}");
        }
    }
}
