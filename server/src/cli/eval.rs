//! `frontdesk eval retrieval`: article-level Recall@1, Recall@5, MRR@10 and nDCG@10 of the
//! knowledge base on labelled questions, overall and on the odd / even question ids (fusion
//! weights are tuned on the odd half only, so the even half shows whether a gain holds on
//! questions it was not tuned on).

use crate::cli::{EvalCalibrateArgs, EvalRetrievalArgs, GlobalArgs};
use crate::config::Settings;
use crate::startup::build_embedder;
use frontdesk_kb::confidence::{ConfidenceFeatures, ConfidenceModel, ReliabilityBin, reliability};
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

/// Reads BANKING77's `text,category` CSV: the texts.
fn banking77_texts(path: &std::path::Path) -> anyhow::Result<Vec<String>> {
    let mut reader =
        csv::Reader::from_path(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let mut texts = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| anyhow::anyhow!("{}:{}: {e}", path.display(), i + 2))?;
        texts.push(record.get(0).unwrap_or_default().to_string());
    }
    Ok(texts)
}

/// Reads CLINC150's JSON (`{"train": [[text, intent], …], "val": …, "oos_train": …, "oos_val": …}`):
/// the texts of every list, in key order.
fn clinc150_texts(path: &std::path::Path) -> anyhow::Result<Vec<String>> {
    let text =
        std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let data: std::collections::BTreeMap<String, Vec<(String, String)>> =
        serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(data.into_values().flatten().map(|(text, _)| text).collect())
}

/// `count` items evenly spaced through `items` (deterministic).
fn evenly_spaced(items: Vec<String>, count: usize) -> Vec<String> {
    if items.len() <= count || count == 0 {
        return items;
    }
    let step = items.len() as f64 / count as f64;
    (0..count)
        .map(|i| items[(i as f64 * step) as usize].clone())
        .collect()
}

#[derive(Debug, Serialize)]
struct CalibrationReport {
    backend: String,
    n_examples: usize,
    n_positive: usize,
    /// Reliability table of out-of-fold predictions (2-fold: each half predicted by a model
    /// fitted on the other half), negatives weighted so both classes' sources weigh the same.
    reliability: Vec<ReliabilityBin>,
    expected_calibration_error: f64,
    /// Share of positives with confidence ≥ 0.7, and of negatives below it (out of fold).
    positives_at_or_above_0_7: f64,
    negatives_below_0_7: f64,
    model: ConfidenceModel,
}

/// `frontdesk eval calibrate`: fits the confidence model of DESIGN.md on the questions
/// (positive when the top article is relevant; questions without relevant articles and
/// wrong tops are negatives) and on BANKING77 / CLINC150 utterances (negatives), prints the
/// out-of-fold reliability table and expected calibration error, and writes the model fitted
/// on everything with `--write`.
pub fn calibrate(
    settings: &Settings,
    global: &GlobalArgs,
    args: &EvalCalibrateArgs,
) -> anyhow::Result<()> {
    let questions = load_questions(&args.questions).map_err(anyhow::Error::msg)?;
    let embedder = build_embedder(settings)?;
    let fusion = FusionParams {
        semantic_ratio: settings.kb.semantic_ratio,
        ..Default::default()
    };
    let kb = open_cached(
        &args.kb,
        EVAL_SITE,
        &settings.kb.data_dir.join("eval"),
        embedder,
        fusion,
    )?;
    let backend = if kb.embedder().is_some() {
        "embedded"
    } else {
        "embedded-keyword-only"
    };

    let mut texts: Vec<(String, Option<Vec<String>>)> = questions
        .iter()
        .map(|q| (q.question.clone(), Some(q.relevant.clone())))
        .collect();
    for negative in evenly_spaced(
        banking77_texts(&args.banking77)?,
        args.negatives_per_dataset,
    )
    .into_iter()
    .chain(evenly_spaced(
        clinc150_texts(&args.clinc150)?,
        args.negatives_per_dataset,
    )) {
        texts.push((negative, None));
    }
    // Class prior: one answerable question for each unanswerable utterance, so the
    // negatives together weigh as much as the questions (a support widget mostly gets
    // on-topic questions; the raw sample would say 1 in 10).
    let n_negatives = texts.len() - questions.len();
    let negative_weight = questions.len() as f64 / n_negatives.max(1) as f64;
    let sample_weights: Vec<f64> = texts
        .iter()
        .map(|(_, relevant)| {
            if relevant.is_some() {
                1.0
            } else {
                negative_weight
            }
        })
        .collect();
    let mut features = Vec::with_capacity(texts.len());
    let mut labels = Vec::with_capacity(texts.len());
    for (text, relevant) in &texts {
        let mut request = SearchRequest::new(text, EVAL_SITE);
        request.k = 2;
        let result = kb.search(&request)?;
        let top = result.hits.first();
        let second = result.hits.get(1).map_or(0.0, |h| h.fused_score);
        features.push(ConfidenceFeatures {
            top_fused: top.map_or(0.0, |h| h.fused_score),
            margin: top.map_or(0.0, |h| h.fused_score - second),
            agreement: f32::from(u8::from(result.rankings_agree)),
        });
        labels.push(match (relevant, top) {
            (Some(relevant), Some(top)) => relevant.iter().any(|r| r == top.document_id.as_str()),
            _ => false,
        });
    }

    // Out-of-fold predictions: alternate examples between two folds.
    let mut predicted = vec![0.0f32; features.len()];
    for fold in 0..2 {
        let train: Vec<usize> = (0..features.len()).filter(|i| i % 2 != fold).collect();
        let train_x: Vec<_> = train.iter().map(|&i| features[i]).collect();
        let train_y: Vec<_> = train.iter().map(|&i| labels[i]).collect();
        let train_w: Vec<_> = train.iter().map(|&i| sample_weights[i]).collect();
        let model = ConfidenceModel::fit(backend, &train_x, &train_y, &train_w, 1e-3);
        for (i, x) in features.iter().enumerate().filter(|(i, _)| i % 2 == fold) {
            predicted[i] = model.predict(x);
        }
    }
    let (bins, ece) = reliability(&predicted, &labels, &sample_weights, 10);
    let share = |positive: bool, above: bool| {
        let selected: Vec<f32> = predicted
            .iter()
            .zip(&labels)
            .filter(|(_, y)| **y == positive)
            .map(|(p, _)| *p)
            .collect();
        let hits = selected.iter().filter(|p| (**p >= 0.7) == above).count();
        hits as f64 / selected.len().max(1) as f64
    };
    let mut model = ConfidenceModel::fit(backend, &features, &labels, &sample_weights, 1e-3);
    model.fitted_on = format!(
        "`frontdesk eval calibrate`: {} questions ({} positive) + {} BANKING77/CLINC150 negatives weighted to an equal prior, semantic_ratio {}",
        questions.len(),
        labels.iter().filter(|y| **y).count(),
        texts.len() - questions.len(),
        settings.kb.semantic_ratio
    );
    let report = CalibrationReport {
        backend: backend.to_string(),
        n_examples: labels.len(),
        n_positive: labels.iter().filter(|y| **y).count(),
        reliability: bins,
        expected_calibration_error: ece,
        positives_at_or_above_0_7: share(true, true),
        negatives_below_0_7: share(false, false),
        model: model.clone(),
    };
    if let Some(path) = &args.write {
        std::fs::write(path, serde_json::to_string_pretty(&model)? + "\n")
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    }
    if global.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "{} examples, {} positive; out-of-fold reliability:",
        report.n_examples, report.n_positive
    );
    println!(
        "{:>11}  {:>5}  {:>9}  {:>8}",
        "bin", "n", "predicted", "observed"
    );
    for bin in &report.reliability {
        println!(
            "{:>4.1}–{:<4.1}   {:>5}  {:>9.3}  {:>8.3}",
            bin.lower, bin.upper, bin.n, bin.mean_predicted, bin.observed
        );
    }
    println!(
        "expected calibration error: {:.4}",
        report.expected_calibration_error
    );
    println!(
        "at the 0.7 threshold: {:.1}% of positives answered, {:.1}% of negatives held back",
        100.0 * report.positives_at_or_above_0_7,
        100.0 * report.negatives_below_0_7
    );
    println!(
        "weights [bias, top_fused, margin, agreement]: {:?}",
        report.model.weights
    );
    Ok(())
}
