//! `frontdesk eval retrieval`: article-level Recall@1, Recall@5, MRR@10 and nDCG@10 of the
//! knowledge base on labelled questions, overall and on the odd / even question ids (fusion
//! weights are tuned on the odd half only, so the even half shows whether a gain holds on
//! questions it was not tuned on).

use crate::cli::{EvalRetrievalArgs, GlobalArgs};
use crate::config::Settings;
use crate::startup::build_embedder;
use frontdesk_kb::eval::{
    EvaluatedQuestion, RetrievalMetrics, evaluate, is_odd_id, load_questions,
};
use frontdesk_kb::fusion::FusionParams;
use frontdesk_kb::index::{KnowledgeBase, SearchRequest, open_cached};
use serde::Serialize;

/// Site id the evaluation index is built under.
const EVAL_SITE: &str = "eval";

/// One mode's figures: all scored questions, then each half.
#[derive(Debug, Serialize)]
struct ModeReport {
    mode: String,
    semantic_ratio: f32,
    #[serde(flatten)]
    all: RetrievalMetrics,
    odd: RetrievalMetrics,
    even: RetrievalMetrics,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    misses: Vec<EvaluatedQuestion>,
}

/// `frontdesk eval retrieval --kb PATH --questions FILE [--semantic-ratio R | --compare] [--verbose]`.
///
/// The index of `--kb` is built once and cached under `{kb.data_dir}/eval/{hash}` where the
/// hash covers the corpus bytes, the embedder's model id and the chunker version.
/// JSON (`--json`): one object with `n`, `skipped`, `recall_at_1`, `recall_at_5`, `mrr_at_10`,
/// `ndcg_at_10`, `odd`, `even` (and `misses` with `--verbose`); with `--compare`, an object
/// with `keyword`, `semantic` and `hybrid` keys holding one such object each.
pub fn retrieval(
    settings: &Settings,
    global: &GlobalArgs,
    args: &EvalRetrievalArgs,
) -> anyhow::Result<()> {
    let questions = load_questions(&args.questions).map_err(anyhow::Error::msg)?;
    let embedder = build_embedder(settings)?;
    let fusion = FusionParams {
        semantic_ratio: settings.kb.semantic_ratio,
        ..Default::default()
    };
    let cache_root = settings.kb.data_dir.join("eval");
    let started = std::time::Instant::now();
    let kb = open_cached(&args.kb, EVAL_SITE, &cache_root, embedder, fusion)?;
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "evaluation index ready"
    );

    let keyword_only = kb.embedder().is_none();
    let hybrid_ratio = args.semantic_ratio.unwrap_or(settings.kb.semantic_ratio);
    let modes: Vec<(&str, f32)> = if args.compare {
        if keyword_only {
            anyhow::bail!(
                "--compare needs an embedder: run scripts/fetch-models or set [embedder]"
            );
        }
        vec![
            ("keyword", 0.0),
            ("semantic", 1.0),
            ("hybrid", hybrid_ratio),
        ]
    } else if keyword_only {
        vec![("keyword", 0.0)]
    } else {
        vec![("hybrid", hybrid_ratio)]
    };

    let mut reports = Vec::new();
    for (mode, ratio) in modes {
        reports.push(run_mode(&kb, &questions, mode, ratio, args.verbose)?);
    }

    if global.json {
        let value = if args.compare {
            let map: serde_json::Map<String, serde_json::Value> = reports
                .iter()
                .map(|r| Ok((r.mode.clone(), serde_json::to_value(r)?)))
                .collect::<Result<_, serde_json::Error>>()?;
            serde_json::Value::Object(map)
        } else {
            serde_json::to_value(&reports[0])?
        };
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    println!(
        "{:<9} {:>5}  {:>4} {:>4}  {:>6} {:>6} {:>7} {:>8}   {:>13} {:>13}",
        "mode",
        "ratio",
        "n",
        "skip",
        "R@1",
        "R@5",
        "MRR@10",
        "nDCG@10",
        "R@1 odd/even",
        "MRR odd/even"
    );
    for r in &reports {
        println!(
            "{:<9} {:>5.2}  {:>4} {:>4}  {:>6.3} {:>6.3} {:>7.3} {:>8.3}   {:>6.3}/{:<6.3} {:>6.3}/{:<6.3}",
            r.mode,
            r.semantic_ratio,
            r.all.n,
            r.all.skipped,
            r.all.recall_at_1,
            r.all.recall_at_5,
            r.all.mrr_at_10,
            r.all.ndcg_at_10,
            r.odd.recall_at_1,
            r.even.recall_at_1,
            r.odd.mrr_at_10,
            r.even.mrr_at_10
        );
    }
    if args.verbose {
        for r in &reports {
            for miss in &r.misses {
                println!(
                    "[{}] miss {} {:?}\n    relevant {:?}\n    ranked   {:?}",
                    r.mode,
                    miss.id,
                    miss.question,
                    miss.relevant,
                    miss.ranking.iter().take(5).collect::<Vec<_>>()
                );
            }
        }
    }
    Ok(())
}

fn run_mode(
    kb: &KnowledgeBase,
    questions: &[frontdesk_kb::eval::LabelledQuestion],
    mode: &str,
    ratio: f32,
    verbose: bool,
) -> anyhow::Result<ModeReport> {
    let (all, details) = evaluate(questions, |q| {
        let mut request = SearchRequest::new(&q.question, EVAL_SITE);
        request.k = 10;
        request.semantic_ratio = Some(ratio);
        let result = kb.search(&request)?;
        Ok::<_, anyhow::Error>((
            result
                .hits
                .iter()
                .map(|h| h.document_id.as_str().to_string())
                .collect(),
            result.confidence,
        ))
    })?;
    let half = |odd: bool| {
        let scores: Vec<_> = details
            .iter()
            .filter(|d| is_odd_id(&d.id) == odd)
            .map(|d| d.scores)
            .collect();
        RetrievalMetrics::from_scores(&scores, 0)
    };
    let misses = if verbose {
        details
            .iter()
            .filter(|d| d.scores.recall_at_1 < 1.0)
            .cloned()
            .collect()
    } else {
        Vec::new()
    };
    Ok(ModeReport {
        mode: mode.to_string(),
        semantic_ratio: ratio,
        all,
        odd: half(true),
        even: half(false),
        misses,
    })
}
