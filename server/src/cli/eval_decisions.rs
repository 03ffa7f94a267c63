//! `frontdesk eval decisions`: the answer-or-handoff decision on labelled questions, through the
//! same path as a turn — one embedding, the local analysis, retrieval with that embedding,
//! then `engine::policy::decide_turn` — scored on the decision first, the reason second.

use crate::cli::eval_analysis::embedding_cache_dir;
use crate::cli::{EvalDecisionsArgs, GlobalArgs};
use crate::config::{PolicySettings, Settings};
use crate::domain::{DecisionKind, ReasonCode};
use crate::engine::N_ARTICLES;
use crate::engine::analysis::LocalAnalyzer;
use crate::engine::policy::{Decision, decide_turn};
use crate::ids::SiteId;
use crate::ports::analyzer::AnalysisRequest;
use crate::startup::build_embedder;
use anyhow::Context;
use frontdesk_kb::fusion::FusionParams;
use frontdesk_kb::index::{KnowledgeBase, SearchRequest, open_cached};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Site id the evaluation index and taxonomy are built under.
const EVAL_SITE: &str = "eval";

/// A labelled question of the decisions file (JSONL).
#[derive(Debug, Clone, Deserialize)]
pub struct LabelledDecision {
    pub id: String,
    pub question: String,
    /// `answer`, `draft` or `handoff:<reason>`.
    pub expected: String,
}

/// Reads a JSONL file of [`LabelledDecision`]s (other fields, such as `relevant`, are ignored).
pub fn load_labelled_decisions(path: &std::path::Path) -> anyhow::Result<Vec<LabelledDecision>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line).with_context(|| {
                format!(
                    "{}:{}: expected {{id, question, expected}}",
                    path.display(),
                    i + 1
                )
            })
        })
        .collect()
}

/// One question's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct DecisionOutcome {
    pub id: String,
    pub question: String,
    pub expected: String,
    /// `answer`, `draft` or `handoff`.
    pub decision: String,
    /// The decision's reason codes (sorted).
    pub reasons: Vec<String>,
    pub decision_right: bool,
    /// The decision is right and, for an expected handoff, its reason is among the reasons
    /// (`low_confidence` and `out_of_scope` count as the same reason).
    pub reason_right: bool,
    /// Retrieval confidence (null when retrieval did not run).
    pub confidence: Option<f32>,
    pub top_article: Option<String>,
    pub category: Option<String>,
    pub sentiment: f32,
    pub out_of_taxonomy: bool,
    /// Cosine to the nearest taxonomy example (null without an embedder or taxonomy).
    pub taxonomy_similarity: Option<f32>,
}

/// `eval decisions --json`.
#[derive(Debug, Clone, Serialize)]
pub struct DecisionsReport {
    pub n: usize,
    pub decision_accuracy: f64,
    pub reason_accuracy: f64,
    /// Per expected label (`answer`, `handoff:churn_risk`, …): `[n, n_decision_right]`.
    pub by_expected: BTreeMap<String, [usize; 2]>,
    /// Every question whose decision or reason is wrong.
    pub misses: Vec<DecisionOutcome>,
    /// Every question (with `--verbose`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub all: Vec<DecisionOutcome>,
}

/// Decides every question as a first turn (no previous message, no unresolved exchange): the
/// analysis with the question's embedding from `embeddings` (none when absent), retrieval
/// from `kb` for `site` with that embedding, then [`decide_turn`] under `policy`. `all` is filled
/// when `keep_all`.
///
/// Errors: a search fails, or an `expected` label names an unknown reason code.
pub fn evaluate(
    kb: &KnowledgeBase,
    site: &str,
    analyzer: &LocalAnalyzer,
    questions: &[LabelledDecision],
    embeddings: &HashMap<String, Vec<f32>>,
    policy: &PolicySettings,
    keep_all: bool,
) -> anyhow::Result<DecisionsReport> {
    let site = SiteId::parse(site)?;
    let mut outcomes = Vec::with_capacity(questions.len());
    for q in questions {
        let embedding = embeddings.get(&q.question).map(Vec::as_slice);
        let analysis = analyzer.analyze_now(
            &site,
            &AnalysisRequest {
                text: &q.question,
                embedding,
                previous_visitor_text: None,
                allow_model: true,
            },
        );
        let retrieval = if analysis.requested_human {
            None
        } else {
            let mut request = SearchRequest::new(&q.question, site.as_str());
            request.k = N_ARTICLES;
            request.query_vector = embedding;
            Some(kb.search(&request)?)
        };
        let decision = decide_turn(&q.question, &analysis, retrieval.as_ref(), 0, policy);
        let (kind, reasons) = match &decision {
            Decision::Answer => (DecisionKind::Answer, Vec::new()),
            Decision::Draft => (DecisionKind::Draft, Vec::new()),
            Decision::Handoff { reasons, .. } => (DecisionKind::Handoff, reasons.clone()),
        };
        let (expected_kind, expected_reason) = match q.expected.split_once(':') {
            Some((kind, reason)) => (kind, Some(reason.parse::<ReasonCode>()?)),
            None => (q.expected.as_str(), None),
        };
        let decision_right = kind.as_str() == expected_kind;
        let reason_right = decision_right
            && expected_reason
                .is_none_or(|expected| reasons.iter().any(|r| same_reason(expected, *r)));
        outcomes.push(DecisionOutcome {
            id: q.id.clone(),
            question: q.question.clone(),
            expected: q.expected.clone(),
            decision: kind.as_str().to_string(),
            reasons: reasons.iter().map(|r| r.as_str().to_string()).collect(),
            decision_right,
            reason_right,
            confidence: retrieval.as_ref().map(|r| r.confidence),
            top_article: retrieval
                .as_ref()
                .and_then(|r| r.hits.first())
                .map(|h| h.document_id.as_str().to_string()),
            category: analysis.category.as_ref().map(|c| match &c.subcategory {
                Some(sub) => format!("{}/{sub}", c.category),
                None => c.category.clone(),
            }),
            sentiment: analysis.sentiment,
            out_of_taxonomy: analysis.out_of_taxonomy,
            taxonomy_similarity: analysis.taxonomy_similarity,
        });
    }
    let n = outcomes.len();
    let mut by_expected: BTreeMap<String, [usize; 2]> = BTreeMap::new();
    for o in &outcomes {
        let entry = by_expected.entry(o.expected.clone()).or_default();
        entry[0] += 1;
        entry[1] += usize::from(o.decision_right);
    }
    let report = DecisionsReport {
        n,
        decision_accuracy: outcomes.iter().filter(|o| o.decision_right).count() as f64
            / n.max(1) as f64,
        reason_accuracy: outcomes.iter().filter(|o| o.reason_right).count() as f64
            / n.max(1) as f64,
        by_expected,
        misses: outcomes
            .iter()
            .filter(|o| !o.reason_right)
            .cloned()
            .collect(),
        all: if keep_all { outcomes } else { Vec::new() },
    };
    Ok(report)
}

fn same_reason(expected: ReasonCode, got: ReasonCode) -> bool {
    let scope = |r| matches!(r, ReasonCode::LowConfidence | ReasonCode::OutOfScope);
    expected == got || (scope(expected) && scope(got))
}

/// `frontdesk eval decisions --kb PATH --questions FILE [--taxonomy FILE] [--verbose]`.
///
/// The taxonomy is the first site's of `--taxonomy FILE` (a complete config file such as
/// `config/example-plausible.toml`), else that of `--site` / the first site of the loaded config;
/// the policy is `[policy]` of the loaded config. Each question is a fresh conversation (no
/// previous message, no unresolved exchange).
///
/// JSON (`--json`): [`DecisionsReport`] — `n`, `decision_accuracy`, `reason_accuracy`,
/// `by_expected`, `misses` (each with `id`, `question`, `expected`, `decision`, `reasons`,
/// `decision_right`, `reason_right`, `confidence`, `top_article`, `category`, `sentiment`,
/// `out_of_taxonomy`), and `all` with `--verbose`.
pub fn decisions(
    settings: &Settings,
    global: &GlobalArgs,
    args: &EvalDecisionsArgs,
) -> anyhow::Result<()> {
    let questions = load_labelled_decisions(&args.questions)?;
    let taxonomy = match &args.taxonomy {
        Some(path) => crate::taxonomy::from_config_file(path, global.site.as_deref())?,
        None => {
            let site = crate::cli::resolve_site(settings, global)?;
            settings
                .sites
                .iter()
                .find(|s| s.id == site)
                .map(|s| s.taxonomy.clone())
                .context("the resolved site is configured")?
        }
    };
    let embedder = build_embedder(settings)?;
    let fusion = FusionParams {
        semantic_ratio: settings.kb.semantic_ratio,
        ..Default::default()
    };
    let kb = open_cached(
        &args.kb,
        EVAL_SITE,
        &settings.kb.data_dir.join("eval"),
        embedder.clone(),
        fusion,
    )?;
    let site = SiteId::parse(EVAL_SITE)?;
    let mut analyzer = LocalAnalyzer::for_taxonomy(&site, &taxonomy, embedder.as_ref())?;
    if args.without_rules {
        analyzer = analyzer.without_rules();
    }
    // Question embeddings are cached like the other evaluation texts.
    let embeddings = match &embedder {
        Some(embedder) => {
            let texts: Vec<&str> = questions.iter().map(|q| q.question.as_str()).collect();
            Some(crate::cli::eval_analysis::embed_cached(
                embedder,
                &embedding_cache_dir(settings, None),
                &texts,
            )?)
        }
        None => None,
    };

    let no_vectors = HashMap::new();
    let report = evaluate(
        &kb,
        EVAL_SITE,
        &analyzer,
        &questions,
        embeddings.as_ref().unwrap_or(&no_vectors),
        &settings.policy,
        args.verbose,
    )?;
    let outcomes = report.all.clone();
    if global.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "{} questions: decision accuracy {:.3}, reason accuracy {:.3}",
        report.n, report.decision_accuracy, report.reason_accuracy
    );
    for (expected, [n, right]) in &report.by_expected {
        println!("  {expected:<28} {right}/{n}");
    }
    let print = |o: &DecisionOutcome| {
        println!(
            "  {} expected {} got {}{} (confidence {}, top {}, category {}, similarity {}, sentiment {:.2}{}) {:?}",
            o.id,
            o.expected,
            o.decision,
            if o.reasons.is_empty() {
                String::new()
            } else {
                format!(":{}", o.reasons.join(","))
            },
            o.confidence.map_or("-".to_string(), |c| format!("{c:.2}")),
            o.top_article.as_deref().unwrap_or("-"),
            o.category.as_deref().unwrap_or("-"),
            o.taxonomy_similarity
                .map_or("-".to_string(), |s| format!("{s:.2}")),
            o.sentiment,
            if o.out_of_taxonomy {
                ", out of taxonomy"
            } else {
                ""
            },
            o.question
        );
    };
    if !report.misses.is_empty() {
        println!("misses:");
        report.misses.iter().for_each(print);
    }
    if args.verbose {
        println!("all:");
        outcomes.iter().for_each(print);
    }
    Ok(())
}
