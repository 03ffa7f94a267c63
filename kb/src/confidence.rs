//! Calibrated retrieval confidence: the probability that the top article answers the query.
//!
//! Defined once, on the retrieval result (DESIGN.md, "Confidence"). Features of a result:
//! the top article's fused score, its margin over the second article, and whether the keyword
//! and semantic rankings agree on the top article. A logistic regression (Platt scaling,
//! Platt 1999, "Probabilistic outputs for support vector machines") maps them to a
//! probability. It is fitted per backend by `frontdesk eval calibrate` with labelled
//! questions as positives (when their top article is relevant) and out-of-domain customer
//! utterances (BANKING77, CLINC150) as negatives; the fitted weights ship in
//! `kb/calibration/{backend}.json` and the policy's `min_confidence` (0.7) applies to the output.

use serde::{Deserialize, Serialize};

/// Inputs of the confidence model, all taken from one search result.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ConfidenceFeatures {
    /// Fused score of the top article (0..1).
    pub top_fused: f32,
    /// Top fused score minus the second article's (0 when there is one article).
    pub margin: f32,
    /// 1 when the keyword and the semantic rankings put the same article first, else 0.
    pub agreement: f32,
}

impl ConfidenceFeatures {
    fn as_row(&self) -> [f64; 4] {
        [
            1.0,
            f64::from(self.top_fused),
            f64::from(self.margin),
            f64::from(self.agreement),
        ]
    }
}

/// A fitted logistic model: `p = σ(w · [1, top_fused, margin, agreement])`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfidenceModel {
    /// Backend the weights were fitted for (`embedded`, `embedded-keyword-only`, `meilisearch`).
    pub backend: String,
    /// `[bias, top_fused, margin, agreement]`.
    pub weights: [f64; 4],
    /// What the weights were fitted on, and how (free text, for humans).
    #[serde(default)]
    pub fitted_on: String,
}

impl ConfidenceModel {
    /// The shipped model for the embedded hybrid backend.
    pub fn embedded_default() -> Self {
        serde_json::from_str(include_str!("../calibration/embedded.json"))
            .expect("kb/calibration/embedded.json is valid (checked by a unit test)")
    }

    /// The shipped model for the embedded backend without an embedder (BM25 only).
    pub fn keyword_only_default() -> Self {
        serde_json::from_str(include_str!("../calibration/embedded-keyword-only.json"))
            .expect("kb/calibration/embedded-keyword-only.json is valid (checked by a unit test)")
    }

    /// Probability in 0..1.
    pub fn predict(&self, features: &ConfidenceFeatures) -> f32 {
        let z: f64 = self
            .weights
            .iter()
            .zip(features.as_row())
            .map(|(w, x)| w * x)
            .sum();
        sigmoid(z) as f32
    }

    /// Fits the weights by Newton–Raphson (iteratively reweighted least squares) on the
    /// log-likelihood with a small L2 penalty `lambda` on the non-bias weights, which keeps
    /// the fit finite on separable data. `labels[i]` is 1 when example `i` is positive.
    /// `weights[i]` is example `i`'s sample weight (e.g. to set the class prior).
    pub fn fit(
        backend: &str,
        examples: &[ConfidenceFeatures],
        labels: &[bool],
        sample_weights: &[f64],
        lambda: f64,
    ) -> Self {
        let rows: Vec<[f64; 4]> = examples.iter().map(ConfidenceFeatures::as_row).collect();
        let mut w = [0.0f64; 4];
        for _ in 0..100 {
            let mut gradient = [0.0f64; 4];
            let mut hessian = [[0.0f64; 4]; 4];
            for ((x, &y), &weight) in rows.iter().zip(labels).zip(sample_weights) {
                let p = sigmoid(dot4(&w, x));
                let residual = weight * (p - f64::from(u8::from(y)));
                let curvature = weight * (p * (1.0 - p)).max(1e-9);
                for i in 0..4 {
                    gradient[i] += residual * x[i];
                    for j in 0..4 {
                        hessian[i][j] += curvature * x[i] * x[j];
                    }
                }
            }
            for i in 1..4 {
                gradient[i] += lambda * w[i];
                hessian[i][i] += lambda;
            }
            hessian[0][0] += 1e-9;
            let Some(step) = solve4(hessian, gradient) else {
                break;
            };
            let mut change = 0.0f64;
            for i in 0..4 {
                w[i] -= step[i];
                change = change.max(step[i].abs());
            }
            if change < 1e-10 {
                break;
            }
        }
        Self {
            backend: backend.to_string(),
            weights: w,
            fitted_on: String::new(),
        }
    }
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

fn dot4(a: &[f64; 4], b: &[f64; 4]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Solves `a · x = b` by Gaussian elimination with partial pivoting; `None` when singular.
fn solve4(mut a: [[f64; 4]; 4], mut b: [f64; 4]) -> Option<[f64; 4]> {
    for col in 0..4 {
        let pivot = (col..4).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        for row in col + 1..4 {
            let factor = a[row][col] / a[col][col];
            for k in col..4 {
                a[row][k] -= factor * a[col][k];
            }
            b[row] -= factor * b[col];
        }
    }
    let mut x = [0.0f64; 4];
    for row in (0..4).rev() {
        let tail: f64 = (row + 1..4).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - tail) / a[row][row];
    }
    Some(x)
}

/// One bin of a reliability diagram (DeGroot & Fienberg 1983; Niculescu-Mizil & Caruana 2005).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ReliabilityBin {
    /// Bin bounds on the predicted probability: `[lower, upper)`, the last bin closed.
    pub lower: f64,
    pub upper: f64,
    pub n: usize,
    /// Mean predicted probability in the bin.
    pub mean_predicted: f64,
    /// Fraction of positives in the bin.
    pub observed: f64,
}

/// Reliability table over `n_bins` equal-width bins and the expected calibration error
/// `ECE = Σ_b (w_b / W) · |observed_b − mean_predicted_b|` (Naeini, Cooper & Hauskrecht,
/// AAAI 2015), with per-example `sample_weights` (all 1 for the plain definition; `n` counts
/// examples, means and ECE use the weights). Empty bins are listed with `n = 0`.
pub fn reliability(
    predicted: &[f32],
    labels: &[bool],
    sample_weights: &[f64],
    n_bins: usize,
) -> (Vec<ReliabilityBin>, f64) {
    let n_bins = n_bins.max(1);
    // (count, weight, weighted sum of p, weighted positives)
    let mut sums = vec![(0usize, 0.0f64, 0.0f64, 0.0f64); n_bins];
    for ((&p, &y), &weight) in predicted.iter().zip(labels).zip(sample_weights) {
        let p = f64::from(p).clamp(0.0, 1.0);
        let bin = ((p * n_bins as f64) as usize).min(n_bins - 1);
        sums[bin].0 += 1;
        sums[bin].1 += weight;
        sums[bin].2 += weight * p;
        sums[bin].3 += weight * f64::from(u8::from(y));
    }
    let total: f64 = sums.iter().map(|s| s.1).sum::<f64>().max(f64::MIN_POSITIVE);
    let mut ece = 0.0;
    let bins = sums
        .iter()
        .enumerate()
        .map(|(i, &(n, weight, sum_p, positives))| {
            let (mean_predicted, observed) = if weight <= 0.0 {
                (0.0, 0.0)
            } else {
                (sum_p / weight, positives / weight)
            };
            ece += weight / total * (observed - mean_predicted).abs();
            ReliabilityBin {
                lower: i as f64 / n_bins as f64,
                upper: (i + 1) as f64 / n_bins as f64,
                n,
                mean_predicted,
                observed,
            }
        })
        .collect();
    (bins, ece)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_models_parse() {
        assert_eq!(ConfidenceModel::embedded_default().backend, "embedded");
        assert_eq!(
            ConfidenceModel::keyword_only_default().backend,
            "embedded-keyword-only"
        );
    }

    #[test]
    fn fit_recovers_known_weights_from_synthetic_data() {
        // Labels drawn deterministically from a known logistic model on a grid: with many
        // points the maximum-likelihood fit lands close to the generating weights.
        let truth = [-3.0, 6.0, 2.0, 1.0];
        let mut examples = Vec::new();
        let mut labels = Vec::new();
        let mut state = 12345u64;
        for i in 0..20_000 {
            let top = (i % 100) as f32 / 100.0;
            let margin = ((i / 100) % 10) as f32 / 20.0;
            let agreement = ((i / 1000) % 2) as f32;
            let f = ConfidenceFeatures {
                top_fused: top,
                margin,
                agreement,
            };
            let p = sigmoid(dot4(&truth, &f.as_row()));
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (state >> 11) as f64 / (1u64 << 53) as f64;
            examples.push(f);
            labels.push(u < p);
        }
        let weights = vec![1.0; examples.len()];
        let model = ConfidenceModel::fit("t", &examples, &labels, &weights, 1e-6);
        for (w, t) in model.weights.iter().zip(truth) {
            assert!(
                (w - t).abs() < 0.35,
                "fitted {:?} vs truth {truth:?}",
                model.weights
            );
        }
    }

    #[test]
    fn reliability_and_ece_by_hand() {
        // Bin [0.0,0.5): predictions 0.2, 0.4 with one positive → observed 0.5, mean 0.3.
        // Bin [0.5,1.0]: predictions 0.9, 1.0 both positive → observed 1.0, mean 0.95.
        let (bins, ece) = reliability(
            &[0.2, 0.4, 0.9, 1.0],
            &[true, false, true, true],
            &[1.0; 4],
            2,
        );
        assert_eq!(bins[0].n, 2);
        assert!((bins[0].mean_predicted - 0.3).abs() < 1e-6);
        assert_eq!(bins[0].observed, 0.5);
        assert!((bins[1].mean_predicted - 0.95).abs() < 1e-6);
        assert!((ece - (0.5 * 0.2 + 0.5 * 0.05)).abs() < 1e-6);
    }
}
