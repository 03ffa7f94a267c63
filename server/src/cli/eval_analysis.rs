//! Evaluation of the per-turn analysis: `frontdesk eval classify` (intent classification on
//! BANKING77 / CLINC150 with the embedding classifiers of `engine::analysis::classifier`) and
//! `frontdesk eval sentiment` (VADER against human ratings). `eval decisions` lives in
//! `eval_decisions`.
//!
//! Embeddings of the evaluation texts are cached on disk by content hash
//! (`frontdesk_kb::embed::cache::EmbeddingCache`), by default in
//! `~/.cache/frontdesk/eval-embeddings` (two levels above `embedder.model_dir`), so only the first
//! run embeds BANKING77's 10,000 messages.

use crate::cli::{ClassifyDataset, EvalClassifyArgs, EvalSentimentArgs, GlobalArgs};
use crate::config::{EmbedderKind, Settings};
use crate::engine::analysis::classifier::{
    NearestCentroid, Prediction, SoftmaxHead, SoftmaxParams, accuracy_and_macro_f1,
    balanced_threshold, thresholded_scores,
};
use crate::engine::analysis::{signals, vader};
use crate::startup::build_embedder;
use anyhow::Context;
use frontdesk_kb::embed::SharedEmbedder;
use frontdesk_kb::embed::cache::{EmbeddingCache, content_hash};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Texts embedded per embedder call.
const EMBED_BATCH: usize = 64;
/// Save the cache after this many batches (an interrupted run keeps its work).
const SAVE_EVERY_BATCHES: usize = 25;
/// Share of CLINC150's in-scope training utterances held out to fit the out-of-scope threshold.
const THRESHOLD_SLICE: f64 = 0.1;

/// Labelled utterances.
#[derive(Debug, Clone, Default)]
struct Labelled {
    texts: Vec<String>,
    labels: Vec<usize>,
}

impl Labelled {
    fn push(&mut self, text: String, label: usize) {
        self.texts.push(text);
        self.labels.push(label);
    }

    fn len(&self) -> usize {
        self.texts.len()
    }

    fn select(&self, indices: &[usize]) -> Labelled {
        Labelled {
            texts: indices.iter().map(|&i| self.texts[i].clone()).collect(),
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
        }
    }
}

/// A small deterministic generator (SplitMix64), so splits depend only on `--seed`.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}

/// Indices of each class, shuffled by `seed`.
fn shuffled_by_class(labels: &[usize], n_classes: usize, seed: u64) -> Vec<Vec<usize>> {
    let mut by_class = vec![Vec::new(); n_classes];
    for (i, &label) in labels.iter().enumerate() {
        by_class[label].push(i);
    }
    let mut rng = SplitMix64(seed);
    for indices in &mut by_class {
        rng.shuffle(indices);
    }
    by_class
}

/// Stratified split: (rest, held out) with `fraction` of each class held out.
fn stratified_split(
    data: &Labelled,
    n_classes: usize,
    fraction: f64,
    seed: u64,
) -> (Labelled, Labelled) {
    let mut kept = Vec::new();
    let mut held = Vec::new();
    for indices in shuffled_by_class(&data.labels, n_classes, seed) {
        let n_held = (indices.len() as f64 * fraction).round() as usize;
        held.extend_from_slice(&indices[..n_held]);
        kept.extend_from_slice(&indices[n_held..]);
    }
    kept.sort_unstable();
    held.sort_unstable();
    (data.select(&kept), data.select(&held))
}

/// `shots` examples per class (fewer when a class has fewer).
fn few_shot(data: &Labelled, n_classes: usize, shots: usize, seed: u64) -> Labelled {
    let mut chosen: Vec<usize> = shuffled_by_class(&data.labels, n_classes, seed)
        .into_iter()
        .flat_map(|indices| indices.into_iter().take(shots))
        .collect();
    chosen.sort_unstable();
    data.select(&chosen)
}

/// Reads BANKING77's `text,category` CSV, naming classes in `names` (extended as met).
fn read_banking77(path: &Path, names: &mut Vec<String>) -> anyhow::Result<Labelled> {
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("reading {}", path.display()))?;
    let mut data = Labelled::default();
    for (i, record) in reader.records().enumerate() {
        let record = record.with_context(|| format!("{}:{}", path.display(), i + 2))?;
        let (Some(text), Some(category)) = (record.get(0), record.get(1)) else {
            anyhow::bail!("{}:{}: expected `text,category`", path.display(), i + 2);
        };
        data.push(text.to_string(), class_index(names, category));
    }
    Ok(data)
}

fn class_index(names: &mut Vec<String>, name: &str) -> usize {
    match names.iter().position(|n| n == name) {
        Some(index) => index,
        None => {
            names.push(name.to_string());
            names.len() - 1
        }
    }
}

/// Reads a CLINC150 JSON file: its lists of `[text, intent]` pairs by key.
fn read_clinc150(path: &Path) -> anyhow::Result<BTreeMap<String, Vec<(String, String)>>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: expected an object of [text, intent] lists (train, val, oos_train, oos_val)",
            path.display()
        )
    })
}

/// The cache folder: `--embedding-cache`, else two levels above the local model folder
/// (`~/.cache/frontdesk/eval-embeddings`), else `{kb.data_dir}/eval-embeddings`.
pub fn embedding_cache_dir(settings: &Settings, explicit: Option<&Path>) -> PathBuf {
    if let Some(dir) = explicit {
        return dir.to_path_buf();
    }
    if let EmbedderKind::Local { model_dir } = &settings.embedder.kind
        && let Some(root) = model_dir.parent().and_then(Path::parent)
    {
        return root.join("eval-embeddings");
    }
    settings.kb.data_dir.join("eval-embeddings")
}

/// Embeds `texts` (deduplicated) through the on-disk cache; returns text → vector.
pub fn embed_cached(
    embedder: &SharedEmbedder,
    cache_dir: &Path,
    texts: &[&str],
) -> anyhow::Result<HashMap<String, Vec<f32>>> {
    let mut cache = EmbeddingCache::open(cache_dir, embedder.model_id())?;
    let mut missing: Vec<&str> = texts
        .iter()
        .copied()
        .filter(|t| cache.get(&content_hash(t)).is_none())
        .collect();
    missing.sort_unstable();
    missing.dedup();
    if !missing.is_empty() {
        tracing::info!(
            n_texts = missing.len(),
            cache = %cache.path().display(),
            "embedding evaluation texts (cached for later runs)"
        );
    }
    let started = std::time::Instant::now();
    for (n, batch) in missing.chunks(EMBED_BATCH).enumerate() {
        let vectors = embedder.embed_batch(batch)?;
        for (text, vector) in batch.iter().zip(vectors) {
            cache.insert(content_hash(text), vector);
        }
        if (n + 1) % SAVE_EVERY_BATCHES == 0 {
            cache.save()?;
            tracing::info!(
                n_done = (n + 1) * EMBED_BATCH,
                n_texts = missing.len(),
                elapsed_s = started.elapsed().as_secs(),
                "embedding"
            );
        }
    }
    cache.save()?;
    let mut out = HashMap::with_capacity(texts.len());
    for text in texts {
        let vector = cache
            .get(&content_hash(text))
            .context("a text embedded above is missing from the cache")?;
        out.insert((*text).to_string(), vector.to_vec());
    }
    Ok(out)
}

/// Mean, standard deviation (sample, n − 1) and every run.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub mean: f64,
    pub sd: f64,
    pub runs: Vec<f64>,
}

impl Summary {
    fn of(runs: Vec<f64>) -> Self {
        let n = runs.len() as f64;
        let mean = runs.iter().sum::<f64>() / n.max(1.0);
        let sd = if runs.len() > 1 {
            (runs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
        } else {
            0.0
        };
        Self { mean, sd, runs }
    }
}

/// One classifier's figures on the closed-set test (every test utterance is in scope).
#[derive(Debug, Clone, Serialize)]
pub struct ClosedSetFigures {
    pub accuracy: Summary,
    pub macro_f1: Summary,
}

/// One classifier's figures with the out-of-scope threshold (CLINC150).
#[derive(Debug, Clone, Serialize)]
pub struct OpenSetFigures {
    /// Threshold fitted on the held-out slice of train + `oos_train` (probability for the
    /// logistic head, cosine for centroids).
    pub threshold: Summary,
    /// In-scope test utterances classified right with a score at or above the threshold.
    pub in_scope_accuracy: Summary,
    /// Out-of-scope test utterances scored below the threshold.
    pub oos_recall: Summary,
}

/// `eval classify --json`.
#[derive(Debug, Clone, Serialize)]
pub struct ClassifyReport {
    pub dataset: String,
    pub n_classes: usize,
    /// Training utterances available (before `--shots` sampling).
    pub n_train: usize,
    /// In-scope test utterances.
    pub n_test: usize,
    /// Out-of-scope test utterances (CLINC150; 0 for BANKING77).
    pub n_test_oos: usize,
    /// Examples per class (null: all).
    pub shots: Option<usize>,
    pub seed: u64,
    pub repeats: usize,
    /// L2 penalty of the logistic head.
    pub alpha: f32,
    /// Each class name was added as one training example (`--label-names`).
    pub label_names: bool,
    /// Vectors were centred on the training mean (`--center`).
    pub center: bool,
    /// `"test-file"`, `"val"` (CLINC150 default) or `"stratified-<fraction>"`.
    pub split: String,
    pub logistic: ClosedSetFigures,
    pub centroid: ClosedSetFigures,
    /// CLINC150 only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out_of_scope: Option<OutOfScopeReport>,
}

/// Out-of-scope figures of both classifiers.
#[derive(Debug, Clone, Serialize)]
pub struct OutOfScopeReport {
    /// In-scope utterances of the threshold slice (held out of train) and out-of-scope ones.
    pub n_threshold_in_scope: usize,
    pub n_threshold_oos: usize,
    pub logistic: OpenSetFigures,
    pub centroid: OpenSetFigures,
    /// The logistic head's class with the nearest centroid's cosine as the out-of-scope score.
    pub logistic_centroid_score: OpenSetFigures,
}

struct Split {
    n_classes: usize,
    /// Class names (`card_arrival`), by class index.
    names: Vec<String>,
    train: Labelled,
    test: Labelled,
    /// CLINC150: out-of-scope utterances to fit the threshold, and to test.
    oos_train: Vec<String>,
    oos_test: Vec<String>,
    split: String,
}

/// A fitted classifier as a function of an embedding.
type Predictor<'a> = dyn Fn(&[f32]) -> Prediction + 'a;

/// Seed offset of the validation slice (`--validation`), so it differs from the test split.
const VALIDATION_SEED_OFFSET: u64 = 1_000;

fn load_split(args: &EvalClassifyArgs) -> anyhow::Result<Split> {
    let mut split = load_test_split(args)?;
    if args.validation {
        // Tune on a slice of the training part only; the test split is never looked at.
        let (train, validation) = stratified_split(
            &split.train,
            split.n_classes,
            0.2,
            args.seed + VALIDATION_SEED_OFFSET,
        );
        split.train = train;
        split.test = validation;
        split.oos_test = Vec::new();
        split.split = format!("validation-0.2-of-{}", split.split);
    }
    Ok(split)
}

fn load_test_split(args: &EvalClassifyArgs) -> anyhow::Result<Split> {
    match args.dataset {
        ClassifyDataset::Banking77 => {
            let mut names = Vec::new();
            let data = read_banking77(&args.data, &mut names)?;
            let (train, test, split) = match &args.test {
                Some(path) => (
                    data,
                    read_banking77(path, &mut names)?,
                    "test-file".to_string(),
                ),
                None => {
                    anyhow::ensure!(
                        args.test_fraction > 0.0 && args.test_fraction < 1.0,
                        "--test-fraction must be between 0 and 1"
                    );
                    let (train, test) =
                        stratified_split(&data, names.len(), args.test_fraction, args.seed);
                    (train, test, format!("stratified-{}", args.test_fraction))
                }
            };
            Ok(Split {
                n_classes: names.len(),
                names,
                train,
                test,
                oos_train: Vec::new(),
                oos_test: Vec::new(),
                split,
            })
        }
        ClassifyDataset::Clinc150 => {
            let data = read_clinc150(&args.data)?;
            let list = |map: &BTreeMap<String, Vec<(String, String)>>, key: &str, path: &Path| {
                map.get(key)
                    .cloned()
                    .with_context(|| format!("{}: no {key:?} list", path.display()))
            };
            let mut names = Vec::new();
            let mut train = Labelled::default();
            for (text, intent) in list(&data, "train", &args.data)? {
                train.push(text, class_index(&mut names, &intent));
            }
            let oos_train: Vec<String> = list(&data, "oos_train", &args.data)?
                .into_iter()
                .map(|(text, _)| text)
                .collect();
            let (test_map, test_key, oos_key, path, split) = match &args.test {
                Some(path) => (
                    read_clinc150(path)?,
                    "test",
                    "oos_test",
                    path.clone(),
                    "test-file",
                ),
                None => (data.clone(), "val", "oos_val", args.data.clone(), "val"),
            };
            let mut test = Labelled::default();
            for (text, intent) in list(&test_map, test_key, &path)? {
                let index = names.iter().position(|n| *n == intent).with_context(|| {
                    format!("{}: intent {intent:?} is not in train", path.display())
                })?;
                test.push(text, index);
            }
            let oos_test = list(&test_map, oos_key, &path)?
                .into_iter()
                .map(|(text, _)| text)
                .collect();
            Ok(Split {
                n_classes: names.len(),
                names,
                train,
                test,
                oos_train,
                oos_test,
                split: split.to_string(),
            })
        }
    }
}

/// Every vector minus the mean of `train`'s vectors, L2-normalised again.
fn centered(embeddings: &HashMap<String, Vec<f32>>, train: &[String]) -> HashMap<String, Vec<f32>> {
    let dim = embeddings.values().next().map_or(0, Vec::len);
    let mut mean = vec![0.0f32; dim];
    for text in train {
        for (m, x) in mean.iter_mut().zip(&embeddings[text]) {
            *m += x / train.len() as f32;
        }
    }
    embeddings
        .iter()
        .map(|(text, v)| {
            let mut c: Vec<f32> = v.iter().zip(&mean).map(|(x, m)| x - m).collect();
            let norm = c.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
            c.iter_mut().for_each(|x| *x /= norm);
            (text.clone(), c)
        })
        .collect()
}

/// A class name as text: `card_arrival` → `card arrival`.
fn label_text(name: &str) -> String {
    name.replace(['_', '-'], " ")
}

fn vectors<'a>(embeddings: &'a HashMap<String, Vec<f32>>, texts: &[String]) -> Vec<&'a [f32]> {
    texts
        .iter()
        .map(|t| embeddings.get(t).map_or(&[][..], Vec::as_slice))
        .collect()
}

/// `frontdesk eval classify --dataset banking77|clinc150 --data FILE [--test FILE |
/// --test-fraction 0.2] [--seed N] [--repeats R] [--shots K] [--alpha A]`.
///
/// BANKING77: a stratified split of `--data` by `--seed` (or `--test FILE`); with `--shots K`,
/// K training examples per class are drawn, by seed `seed + r` for repeat `r`. CLINC150: train
/// on `train` and test on `val` + `oos_val` (or on `test` + `oos_test` of `--test FILE`); the
/// out-of-scope threshold is fitted on a 10% slice held out of `train` plus `oos_train`, with
/// classifiers refitted on the other 90%. Both the logistic head and nearest centroid run on
/// the same split.
///
/// JSON (`--json`): [`ClassifyReport`] — `dataset`, `n_classes`, `n_train`, `n_test`,
/// `n_test_oos`, `shots`, `seed`, `repeats`, `alpha`, `split`, `logistic` and `centroid`
/// (`accuracy`, `macro_f1`, each `{mean, sd, runs}`), and for CLINC150 `out_of_scope`
/// (`n_threshold_in_scope`, `n_threshold_oos`, `logistic`, `centroid` and
/// `logistic_centroid_score` with `threshold`, `in_scope_accuracy`, `oos_recall`).
pub fn classify(
    settings: &Settings,
    global: &GlobalArgs,
    args: &EvalClassifyArgs,
) -> anyhow::Result<()> {
    let split = load_split(args)?;
    let embedder = build_embedder(settings)?
        .context("eval classify needs an embedder: run scripts/fetch-models or set [embedder]")?;
    let cache_dir = embedding_cache_dir(settings, args.embedding_cache.as_deref());
    // `--label-names`: each class's name as one more training example ("card_arrival" →
    // "card arrival"), as the taxonomy classifier learns from each node's description.
    let label_texts: Vec<String> = split.names.iter().map(|n| label_text(n)).collect();
    let all_texts: Vec<&str> = split
        .train
        .texts
        .iter()
        .chain(&label_texts)
        .chain(&split.test.texts)
        .chain(&split.oos_train)
        .chain(&split.oos_test)
        .map(String::as_str)
        .collect();
    let embeddings = embed_cached(&embedder, &cache_dir, &all_texts)?;
    let params = SoftmaxParams {
        alpha: args.alpha,
        max_iterations: args.max_iterations,
    };
    let n_classes = split.n_classes;
    let repeats = args.repeats.max(1);

    let mut closed: [(Vec<f64>, Vec<f64>); 2] = Default::default();
    let mut open: [(Vec<f64>, Vec<f64>, Vec<f64>); 3] = Default::default();
    let mut n_threshold = (0, 0);
    for repeat in 0..repeats {
        let seed = args.seed + repeat as u64;
        let mut train = match args.shots {
            Some(shots) => few_shot(&split.train, n_classes, shots, seed),
            None => split.train.clone(),
        };
        if args.label_names {
            for (class, text) in label_texts.iter().enumerate() {
                train.push(text.clone(), class);
            }
        }
        // `--center`: subtract the mean of this repeat's training vectors and renormalise
        // (removes the common direction all-MiniLM embeddings share; Mu & Viswanath, 2018,
        // "All-but-the-Top", arXiv:1702.01417, first step).
        let embeddings: std::borrow::Cow<'_, HashMap<String, Vec<f32>>> = if args.center {
            std::borrow::Cow::Owned(centered(&embeddings, &train.texts))
        } else {
            std::borrow::Cow::Borrowed(&embeddings)
        };
        let test_vectors = vectors(&embeddings, &split.test.texts);
        let oos_test_vectors = vectors(&embeddings, &split.oos_test);
        let train_vectors = vectors(&embeddings, &train.texts);
        let started = std::time::Instant::now();
        let head = SoftmaxHead::fit(&train_vectors, &train.labels, n_classes, params)?;
        let centroid = NearestCentroid::fit(&train_vectors, &train.labels, n_classes)?;
        tracing::info!(
            repeat,
            n_train = train.len(),
            fit_ms = started.elapsed().as_millis() as u64,
            "classifiers fitted"
        );
        let predictions: [Vec<Prediction>; 2] = [
            test_vectors.iter().map(|v| head.predict(v)).collect(),
            test_vectors.iter().map(|v| centroid.predict(v)).collect(),
        ];
        for (figures, predicted) in closed.iter_mut().zip(&predictions) {
            let classes: Vec<usize> = predicted.iter().map(|p| p.class).collect();
            let (accuracy, macro_f1) =
                accuracy_and_macro_f1(&classes, &split.test.labels, n_classes);
            figures.0.push(accuracy);
            figures.1.push(macro_f1);
        }
        if split.oos_test.is_empty() {
            continue;
        }
        // Out of scope: refit on train minus a slice, pick the threshold on the slice + oos_train.
        let (fit_part, slice) = stratified_split(&train, n_classes, THRESHOLD_SLICE, seed);
        n_threshold = (slice.len(), split.oos_train.len());
        let fit_vectors = vectors(&embeddings, &fit_part.texts);
        let slice_vectors = vectors(&embeddings, &slice.texts);
        let oos_train_vectors = vectors(&embeddings, &split.oos_train);
        let sliced_head = SoftmaxHead::fit(&fit_vectors, &fit_part.labels, n_classes, params)?;
        let sliced_centroid = NearestCentroid::fit(&fit_vectors, &fit_part.labels, n_classes)?;
        // The hybrid: the logistic head's class, scored by the nearest centroid's cosine (as
        // the taxonomy classifier scores by the nearest example).
        let hybrid = |v: &[f32]| Prediction {
            class: sliced_head.predict(v).class,
            score: sliced_centroid.predict(v).score,
        };
        let predictors: [&Predictor<'_>; 3] = [
            &|v| sliced_head.predict(v),
            &|v| sliced_centroid.predict(v),
            &hybrid,
        ];
        for (figures, predict) in open.iter_mut().zip(predictors) {
            let held: Vec<(Prediction, usize)> = slice_vectors
                .iter()
                .zip(&slice.labels)
                .map(|(v, &label)| (predict(v), label))
                .collect();
            let oos: Vec<Prediction> = oos_train_vectors.iter().map(|v| predict(v)).collect();
            let (threshold, _) = balanced_threshold(&held, &oos);
            let test_in: Vec<(Prediction, usize)> = test_vectors
                .iter()
                .zip(&split.test.labels)
                .map(|(v, &label)| (predict(v), label))
                .collect();
            let test_oos: Vec<Prediction> = oos_test_vectors.iter().map(|v| predict(v)).collect();
            let (accuracy, recall) = thresholded_scores(&test_in, &test_oos, threshold);
            figures.0.push(f64::from(threshold));
            figures.1.push(accuracy);
            figures.2.push(recall);
        }
    }
    let [logistic, centroid] = closed.map(|(accuracy, macro_f1)| ClosedSetFigures {
        accuracy: Summary::of(accuracy),
        macro_f1: Summary::of(macro_f1),
    });
    let out_of_scope = (!split.oos_test.is_empty()).then(|| {
        let [logistic, centroid, logistic_centroid_score] =
            open.map(|(threshold, accuracy, recall)| OpenSetFigures {
                threshold: Summary::of(threshold),
                in_scope_accuracy: Summary::of(accuracy),
                oos_recall: Summary::of(recall),
            });
        OutOfScopeReport {
            n_threshold_in_scope: n_threshold.0,
            n_threshold_oos: n_threshold.1,
            logistic,
            centroid,
            logistic_centroid_score,
        }
    });
    let report = ClassifyReport {
        dataset: args.dataset.name().to_string(),
        n_classes,
        n_train: split.train.len(),
        n_test: split.test.len(),
        n_test_oos: split.oos_test.len(),
        shots: args.shots,
        seed: args.seed,
        repeats,
        alpha: args.alpha,
        label_names: args.label_names,
        center: args.center,
        split: split.split,
        logistic,
        centroid,
        out_of_scope,
    };
    if global.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "{} ({} classes): {} train, {} test ({}), shots {}, {} repeat(s) from seed {}",
        report.dataset,
        report.n_classes,
        report.n_train,
        report.n_test,
        report.split,
        report.shots.map_or("all".to_string(), |s| s.to_string()),
        report.repeats,
        report.seed
    );
    let pct = |s: &Summary| format!("{:.1} ± {:.1}%", 100.0 * s.mean, 100.0 * s.sd);
    for (name, figures) in [
        ("logistic", &report.logistic),
        ("centroid", &report.centroid),
    ] {
        println!(
            "{name:<9} accuracy {}  macro-F1 {}",
            pct(&figures.accuracy),
            pct(&figures.macro_f1)
        );
    }
    if let Some(oos) = &report.out_of_scope {
        println!(
            "out of scope ({} + {} utterances to fit the threshold, {} out-of-scope test utterances):",
            oos.n_threshold_in_scope, oos.n_threshold_oos, report.n_test_oos
        );
        for (name, figures) in [
            ("logistic", &oos.logistic),
            ("centroid", &oos.centroid),
            ("logistic+centroid score", &oos.logistic_centroid_score),
        ] {
            println!(
                "{name:<9} threshold {:.3}  in-scope accuracy {}  out-of-scope recall {}",
                figures.threshold.mean,
                pct(&figures.in_scope_accuracy),
                pct(&figures.oos_recall)
            );
        }
    }
    Ok(())
}

/// Pearson correlation and sign agreement of scores with ratings.
#[derive(Debug, Clone, Serialize)]
pub struct SentimentFigures {
    pub pearson_r: f64,
    /// Share of items where `score > 0` agrees with `rating > 0`.
    pub sign_accuracy: f64,
}

/// `eval sentiment --json`.
#[derive(Debug, Clone, Serialize)]
pub struct SentimentReport {
    pub file: String,
    pub n: usize,
    /// VADER's compound score alone.
    pub vader: SentimentFigures,
    /// The support sentiment: compound adjusted by the frustration signals
    /// (`signals::support_sentiment`).
    pub with_support_signals: SentimentFigures,
    /// Share of items where the support signals fired (frustration).
    pub frustration_rate: f64,
}

fn pearson(xs: &[f64], ys: &[f64]) -> f64 {
    let n = xs.len() as f64;
    let mx = xs.iter().sum::<f64>() / n;
    let my = ys.iter().sum::<f64>() / n;
    let (mut cov, mut vx, mut vy) = (0.0, 0.0, 0.0);
    for (x, y) in xs.iter().zip(ys) {
        cov += (x - mx) * (y - my);
        vx += (x - mx).powi(2);
        vy += (y - my).powi(2);
    }
    if vx == 0.0 || vy == 0.0 {
        return 0.0;
    }
    cov / (vx.sqrt() * vy.sqrt())
}

fn sentiment_figures(scores: &[f64], ratings: &[f64]) -> SentimentFigures {
    let agree = scores
        .iter()
        .zip(ratings)
        .filter(|(s, r)| (**s > 0.0) == (**r > 0.0))
        .count();
    SentimentFigures {
        pearson_r: pearson(scores, ratings),
        sign_accuracy: agree as f64 / scores.len().max(1) as f64,
    }
}

/// `frontdesk eval sentiment FILE`: VADER's ground-truth TSV (`id<TAB>mean rating −4..4<TAB>text`)
/// → Pearson r and sign accuracy of the compound score, and of the support sentiment.
///
/// JSON (`--json`): [`SentimentReport`] — `file`, `n`, `vader` and `with_support_signals`
/// (`pearson_r`, `sign_accuracy`), `frustration_rate`.
pub fn sentiment(global: &GlobalArgs, args: &EvalSentimentArgs) -> anyhow::Result<()> {
    let bytes =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    let mut ratings = Vec::new();
    let mut compounds = Vec::new();
    let mut adjusted = Vec::new();
    let mut n_frustrated = 0;
    for (i, line) in text.lines().enumerate() {
        let mut fields = line.splitn(3, '\t');
        let (Some(_id), Some(rating), Some(item)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let rating: f64 = rating.trim().parse().with_context(|| {
            format!(
                "{}:{}: the rating {rating:?} is not a number",
                args.file.display(),
                i + 1
            )
        })?;
        let compound = vader::compound(item);
        let found = signals::detect(item);
        if found.is_frustrated() {
            n_frustrated += 1;
        }
        ratings.push(rating);
        compounds.push(compound);
        adjusted.push(signals::support_sentiment(compound, &found));
    }
    anyhow::ensure!(
        !ratings.is_empty(),
        "{}: no `id<TAB>rating<TAB>text` lines",
        args.file.display()
    );
    let report = SentimentReport {
        file: args.file.display().to_string(),
        n: ratings.len(),
        vader: sentiment_figures(&compounds, &ratings),
        with_support_signals: sentiment_figures(&adjusted, &ratings),
        frustration_rate: n_frustrated as f64 / ratings.len() as f64,
    };
    if global.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!("{} ({} items)", report.file, report.n);
    println!(
        "VADER compound         Pearson r {:.4}  sign accuracy {:.1}%",
        report.vader.pearson_r,
        100.0 * report.vader.sign_accuracy
    );
    println!(
        "with support signals   Pearson r {:.4}  sign accuracy {:.1}%  (frustration on {:.1}% of items)",
        report.with_support_signals.pearson_r,
        100.0 * report.with_support_signals.sign_accuracy,
        100.0 * report.frustration_rate
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stratified_splits_are_deterministic_and_disjoint() {
        let mut data = Labelled::default();
        for i in 0..50 {
            data.push(format!("t{i}"), i % 5);
        }
        let (train, test) = stratified_split(&data, 5, 0.2, 7);
        let (train_again, _) = stratified_split(&data, 5, 0.2, 7);
        assert_eq!(train.texts, train_again.texts);
        assert_eq!(test.len(), 10);
        assert_eq!(train.len(), 40);
        for class in 0..5 {
            assert_eq!(test.labels.iter().filter(|l| **l == class).count(), 2);
        }
        assert!(test.texts.iter().all(|t| !train.texts.contains(t)));
        let shots = few_shot(&train, 5, 3, 1);
        assert_eq!(shots.len(), 15);
    }

    #[test]
    fn pearson_of_a_line_is_one() {
        assert!((pearson(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]) - 1.0).abs() < 1e-12);
        assert!((pearson(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
        let summary = Summary::of(vec![0.8, 0.9, 1.0]);
        assert!((summary.mean - 0.9).abs() < 1e-12);
        assert!((summary.sd - 0.1).abs() < 1e-12);
    }
}
