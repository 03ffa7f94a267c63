//! Few-shot intent classification over L2-normalised sentence embeddings (all-MiniLM-L6-v2,
//! 384 dimensions, from the knowledge base's embedder).
//!
//! Two classifiers share one interface ([`Prediction`]: a class and a score to threshold):
//! - [`NearestCentroid`]: each class is the normalised mean of its examples; the score is the
//!   cosine to the nearest centroid (the baseline);
//! - [`SoftmaxHead`]: multinomial logistic regression with an L2 penalty (the objective
//!   `−Σ log softmax + α/2·‖W‖²`, as scikit-learn's `LogisticRegression` with `C = 1/α`), fitted by
//!   L-BFGS with `linfa-logistic`; the score is the top class probability.
//!
//! Out-of-scope detection: a prediction whose score is below a threshold is "none of these".
//! [`balanced_threshold`] picks the threshold that maximises the mean of in-scope accuracy and
//! out-of-scope recall on held-out data (never the test split).

use linfa::prelude::*;
use linfa_logistic::MultiLogisticRegression;
use ndarray::{Array1, Array2};

/// Errors fitting a classifier.
#[derive(Debug, thiserror::Error)]
pub enum ClassifierError {
    /// No examples, vectors of different lengths, or a label outside `0..n_classes`.
    #[error("invalid training data: {0}")]
    InvalidData(String),
    /// The solver failed (non-finite values, bad hyper-parameters).
    #[error("logistic regression did not fit: {0}")]
    Fit(String),
}

/// A classifier's answer: the class index and its score (cosine for centroids, probability for
/// the softmax head).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    pub class: usize,
    pub score: f32,
}

fn check_data(
    vectors: &[&[f32]],
    labels: &[usize],
    n_classes: usize,
) -> Result<usize, ClassifierError> {
    let Some(first) = vectors.first() else {
        return Err(ClassifierError::InvalidData("no examples".into()));
    };
    let dim = first.len();
    if vectors.len() != labels.len() {
        return Err(ClassifierError::InvalidData(format!(
            "{} vectors but {} labels",
            vectors.len(),
            labels.len()
        )));
    }
    if let Some(v) = vectors.iter().find(|v| v.len() != dim) {
        return Err(ClassifierError::InvalidData(format!(
            "vectors of length {dim} and {}",
            v.len()
        )));
    }
    if let Some(label) = labels.iter().find(|l| **l >= n_classes) {
        return Err(ClassifierError::InvalidData(format!(
            "label {label} outside 0..{n_classes}"
        )));
    }
    Ok(dim)
}

/// Nearest-centroid classifier (cosine to each class's normalised mean vector).
#[derive(Debug, Clone)]
pub struct NearestCentroid {
    /// One per class; a class without examples has a zero centroid (cosine 0).
    centroids: Vec<Vec<f32>>,
}

impl NearestCentroid {
    /// Fits on `vectors` (each L2-normalised) with `labels` in `0..n_classes`.
    ///
    /// Errors: [`ClassifierError::InvalidData`].
    pub fn fit(
        vectors: &[&[f32]],
        labels: &[usize],
        n_classes: usize,
    ) -> Result<Self, ClassifierError> {
        let dim = check_data(vectors, labels, n_classes)?;
        let mut centroids = vec![vec![0.0f32; dim]; n_classes];
        for (vector, &label) in vectors.iter().zip(labels) {
            for (sum, x) in centroids[label].iter_mut().zip(vector.iter()) {
                *sum += x;
            }
        }
        for centroid in &mut centroids {
            frontdesk_kb::embed::l2_normalize(centroid);
        }
        Ok(Self { centroids })
    }

    /// Cosine of `vector` to every centroid.
    pub fn scores(&self, vector: &[f32]) -> Vec<f32> {
        self.centroids
            .iter()
            .map(|c| frontdesk_kb::embed::cosine(c, vector))
            .collect()
    }

    /// The nearest centroid and its cosine.
    pub fn predict(&self, vector: &[f32]) -> Prediction {
        argmax(&self.scores(vector))
    }
}

/// Hyper-parameters of [`SoftmaxHead::fit`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SoftmaxParams {
    /// L2 penalty α on the summed loss (scikit-learn's `1/C`). Default 0.1, chosen on a
    /// validation slice of BANKING77's training part (`frontdesk eval classify --validation`).
    pub alpha: f32,
    /// L-BFGS iterations at most. Default 100 (linfa's default).
    pub max_iterations: u64,
}

impl Default for SoftmaxParams {
    fn default() -> Self {
        Self {
            alpha: 0.1,
            max_iterations: 100,
        }
    }
}

/// Multinomial logistic regression on embeddings.
#[derive(Debug, Clone)]
pub struct SoftmaxHead {
    /// Row-major `n_classes × dim`.
    weights: Vec<f32>,
    bias: Vec<f32>,
    dim: usize,
}

impl SoftmaxHead {
    /// Fits on `vectors` with `labels` in `0..n_classes` (classes without examples never win).
    ///
    /// Errors: [`ClassifierError::InvalidData`], [`ClassifierError::Fit`].
    pub fn fit(
        vectors: &[&[f32]],
        labels: &[usize],
        n_classes: usize,
        params: SoftmaxParams,
    ) -> Result<Self, ClassifierError> {
        let dim = check_data(vectors, labels, n_classes)?;
        let mut distinct: Vec<usize> = labels.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() < 2 {
            // One class: it always wins (a logistic regression needs two).
            let mut bias = vec![-1e4f32; n_classes];
            bias[distinct[0]] = 0.0;
            return Ok(Self {
                weights: vec![0.0; n_classes * dim],
                bias,
                dim,
            });
        }
        let records = Array2::from_shape_fn((vectors.len(), dim), |(i, j)| vectors[i][j]);
        let targets = Array1::from_vec(labels.to_vec());
        let dataset = Dataset::new(records, targets);
        let fitted = MultiLogisticRegression::default()
            .alpha(params.alpha)
            .max_iterations(params.max_iterations)
            .fit(&dataset)
            .map_err(|err| ClassifierError::Fit(err.to_string()))?;
        let mut weights = vec![0.0f32; n_classes * dim];
        let mut bias = vec![f32::NEG_INFINITY; n_classes];
        let w = fitted.params(); // dim × n_fitted_classes
        let b = fitted.intercept();
        for (column, &class) in fitted.classes().iter().enumerate() {
            for j in 0..dim {
                weights[class * dim + j] = w[[j, column]];
            }
            bias[class] = b[column];
        }
        Ok(Self { weights, bias, dim })
    }

    /// Class probabilities of `vector` (softmax of the logits).
    pub fn probabilities(&self, vector: &[f32]) -> Vec<f32> {
        let mut logits: Vec<f32> = self
            .bias
            .iter()
            .enumerate()
            .map(|(class, b)| {
                let row = &self.weights[class * self.dim..(class + 1) * self.dim];
                b + frontdesk_kb::embed::cosine(row, vector)
            })
            .collect();
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0;
        for logit in &mut logits {
            *logit = (*logit - max).exp();
            sum += *logit;
        }
        logits.iter_mut().for_each(|p| *p /= sum);
        logits
    }

    /// The most probable class and its probability.
    pub fn predict(&self, vector: &[f32]) -> Prediction {
        argmax(&self.probabilities(vector))
    }
}

fn argmax(scores: &[f32]) -> Prediction {
    scores.iter().enumerate().fold(
        Prediction {
            class: 0,
            score: f32::NEG_INFINITY,
        },
        |best, (class, &score)| {
            if score > best.score {
                Prediction { class, score }
            } else {
                best
            }
        },
    )
}

/// The out-of-scope threshold that maximises `(in-scope accuracy + out-of-scope recall) / 2` on
/// held-out predictions. `in_scope` holds (prediction, true class); `out_of_scope` the
/// predictions for out-of-scope utterances. An in-scope prediction counts as right when its
/// class is right and its score reaches the threshold; an out-of-scope one when its score is
/// below it. Returns the threshold and the balanced score it reaches.
pub fn balanced_threshold(
    in_scope: &[(Prediction, usize)],
    out_of_scope: &[Prediction],
) -> (f32, f64) {
    let mut candidates: Vec<f32> = in_scope
        .iter()
        .map(|(p, _)| p.score)
        .chain(out_of_scope.iter().map(|p| p.score))
        .collect();
    candidates.push(0.0);
    candidates.sort_by(f32::total_cmp);
    candidates.dedup();
    let mut best = (0.0f32, f64::NEG_INFINITY);
    for &threshold in &candidates {
        let (accuracy, recall) = thresholded_scores(in_scope, out_of_scope, threshold);
        let balanced = (accuracy + recall) / 2.0;
        if balanced > best.1 {
            best = (threshold, balanced);
        }
    }
    best
}

/// In-scope accuracy and out-of-scope recall at `threshold` (see [`balanced_threshold`]).
pub fn thresholded_scores(
    in_scope: &[(Prediction, usize)],
    out_of_scope: &[Prediction],
    threshold: f32,
) -> (f64, f64) {
    let n_right = in_scope
        .iter()
        .filter(|(p, truth)| p.class == *truth && p.score >= threshold)
        .count();
    let n_caught = out_of_scope.iter().filter(|p| p.score < threshold).count();
    (
        n_right as f64 / in_scope.len().max(1) as f64,
        n_caught as f64 / out_of_scope.len().max(1) as f64,
    )
}

/// Accuracy and macro-averaged F1 of predicted against true classes (classes that never occur
/// in `truth` nor in `predicted` are left out of the macro average).
pub fn accuracy_and_macro_f1(predicted: &[usize], truth: &[usize], n_classes: usize) -> (f64, f64) {
    let mut true_positive = vec![0usize; n_classes];
    let mut predicted_count = vec![0usize; n_classes];
    let mut actual_count = vec![0usize; n_classes];
    for (&p, &t) in predicted.iter().zip(truth) {
        predicted_count[p] += 1;
        actual_count[t] += 1;
        if p == t {
            true_positive[p] += 1;
        }
    }
    let accuracy = true_positive.iter().sum::<usize>() as f64 / truth.len().max(1) as f64;
    let mut f1_sum = 0.0;
    let mut n_counted = 0;
    for class in 0..n_classes {
        if actual_count[class] == 0 && predicted_count[class] == 0 {
            continue;
        }
        n_counted += 1;
        let tp = true_positive[class] as f64;
        let denominator = (predicted_count[class] + actual_count[class]) as f64;
        if denominator > 0.0 {
            f1_sum += 2.0 * tp / denominator;
        }
    }
    (accuracy, f1_sum / n_counted.max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> Vec<f32> {
        let mut v = v.to_vec();
        frontdesk_kb::embed::l2_normalize(&mut v);
        v
    }

    fn toy() -> (Vec<Vec<f32>>, Vec<usize>) {
        let vectors = vec![
            unit(&[1.0, 0.1, 0.0]),
            unit(&[0.9, 0.0, 0.1]),
            unit(&[0.0, 1.0, 0.1]),
            unit(&[0.1, 0.9, 0.0]),
            unit(&[0.0, 0.1, 1.0]),
            unit(&[0.1, 0.0, 0.9]),
        ];
        (vectors, vec![0, 0, 1, 1, 2, 2])
    }

    #[test]
    fn both_classifiers_separate_three_directions() {
        let (vectors, labels) = toy();
        let refs: Vec<&[f32]> = vectors.iter().map(Vec::as_slice).collect();
        let centroid = NearestCentroid::fit(&refs, &labels, 3).expect("fits");
        let head = SoftmaxHead::fit(
            &refs,
            &labels,
            3,
            SoftmaxParams {
                alpha: 0.01,
                ..Default::default()
            },
        )
        .expect("fits");
        for (probe, class) in [
            ([1.0, 0.0, 0.0], 0),
            ([0.0, 1.0, 0.0], 1),
            ([0.0, 0.0, 1.0], 2),
        ] {
            let probe = unit(&probe);
            assert_eq!(centroid.predict(&probe).class, class);
            let p = head.predict(&probe);
            assert_eq!(p.class, class);
            assert!(p.score > 0.5, "confident: {}", p.score);
            let sum: f32 = head.probabilities(&probe).iter().sum();
            assert!((sum - 1.0).abs() < 1e-5);
        }
    }

    #[test]
    fn a_class_without_examples_never_wins() {
        let (vectors, labels) = toy();
        let refs: Vec<&[f32]> = vectors.iter().map(Vec::as_slice).collect();
        let head = SoftmaxHead::fit(&refs, &labels, 4, SoftmaxParams::default()).expect("fits");
        assert_eq!(head.probabilities(refs[0])[3], 0.0);
    }

    #[test]
    fn bad_data_is_refused() {
        assert!(NearestCentroid::fit(&[], &[], 2).is_err());
        let v = [1.0f32, 0.0];
        assert!(NearestCentroid::fit(&[&v], &[2], 2).is_err());
    }

    #[test]
    fn the_balanced_threshold_separates_scores() {
        let p = |class, score| Prediction { class, score };
        let in_scope = [(p(0, 0.9), 0), (p(1, 0.8), 1), (p(1, 0.7), 0)];
        let out = [p(0, 0.3), p(1, 0.5)];
        let (threshold, balanced) = balanced_threshold(&in_scope, &out);
        assert!(threshold > 0.5 && threshold <= 0.8, "{threshold}");
        assert!((balanced - (2.0 / 3.0 + 1.0) / 2.0).abs() < 1e-9);
        assert_eq!(thresholded_scores(&in_scope, &out, 0.0), (2.0 / 3.0, 0.0));
    }

    #[test]
    fn macro_f1_averages_per_class() {
        // class 0: tp 1, predicted 2, actual 1 → F1 2/3; class 1: tp 1, predicted 1, actual 2 → 2/3.
        let (accuracy, f1) = accuracy_and_macro_f1(&[0, 0, 1], &[0, 1, 1], 2);
        assert!((accuracy - 2.0 / 3.0).abs() < 1e-9);
        assert!((f1 - 2.0 / 3.0).abs() < 1e-9);
    }
}
