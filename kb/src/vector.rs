//! Semantic retrieval: an exact (brute-force) cosine index over L2-normalised chunk vectors.
//!
//! Exact search costs one dot product per chunk: 100k chunks × 384 dimensions is 38 M
//! multiply-adds, about 10–20 ms on one core (see `BENCHMARKS.md`). That is the ceiling this
//! index is meant for; past ~100k chunks per instance use the Meilisearch backend.

use std::cmp::Ordering;

/// Row-major matrix of L2-normalised vectors, one row per chunk, with a per-row site and
/// visibility so filters apply before scoring.
#[derive(Debug, Clone, Default)]
pub struct VectorIndex {
    dimensions: usize,
    data: Vec<f32>,
    rows: Vec<Row>,
}

#[derive(Debug, Clone)]
struct Row {
    key: u32,
    site: u32,
    internal: bool,
}

impl VectorIndex {
    /// An empty index of vectors of `dimensions` floats.
    pub fn new(dimensions: usize) -> Self {
        Self {
            dimensions,
            data: Vec::new(),
            rows: Vec::new(),
        }
    }

    pub fn dimensions(&self) -> usize {
        self.dimensions
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Adds a row. `key` is the caller's chunk number, `site` its site number.
    ///
    /// # Panics
    /// When `vector.len()` differs from the index's dimensions (a programming error: every
    /// vector comes from the one embedder the index was built for).
    pub fn push(&mut self, key: u32, site: u32, internal: bool, vector: &[f32]) {
        assert_eq!(
            vector.len(),
            self.dimensions,
            "vector length must match the index"
        );
        self.data.extend_from_slice(vector);
        self.rows.push(Row {
            key,
            site,
            internal,
        });
    }

    /// Cosine of `query` (L2-normalised) with every row of `site`: `(key, cosine)` for the
    /// `limit` best, best first.
    pub fn search(
        &self,
        query: &[f32],
        site: u32,
        include_internal: bool,
        limit: usize,
    ) -> Vec<(u32, f32)> {
        if query.len() != self.dimensions || limit == 0 {
            return Vec::new();
        }
        let mut scored: Vec<(u32, f32)> = self
            .data
            .chunks_exact(self.dimensions)
            .zip(&self.rows)
            .filter(|(_, row)| row.site == site && (include_internal || !row.internal))
            .map(|(vector, row)| (row.key, dot(vector, query)))
            .collect();
        let by_score =
            |a: &(u32, f32), b: &(u32, f32)| b.1.partial_cmp(&a.1).unwrap_or(Ordering::Equal);
        if scored.len() > limit {
            scored.select_nth_unstable_by(limit - 1, by_score);
            scored.truncate(limit);
        }
        scored.sort_by(by_score);
        scored
    }

    /// The stored vector of a row by position of insertion.
    pub fn vector_of_row(&self, row: usize) -> &[f32] {
        &self.data[row * self.dimensions..(row + 1) * self.dimensions]
    }
}

/// Dot product; for L2-normalised vectors, their cosine.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Four independent accumulators let the compiler vectorise without fast-math.
    let mut acc = [0.0f32; 4];
    let chunks = a.len() / 4 * 4;
    for i in (0..chunks).step_by(4) {
        acc[0] += a[i] * b[i];
        acc[1] += a[i + 1] * b[i + 1];
        acc[2] += a[i + 2] * b[i + 2];
        acc[3] += a[i + 3] * b[i + 3];
    }
    let mut sum = acc[0] + acc[1] + acc[2] + acc[3];
    for i in chunks..a.len() {
        sum += a[i] * b[i];
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_the_nearest_rows_of_the_site_best_first() {
        let mut index = VectorIndex::new(2);
        index.push(10, 0, false, &[1.0, 0.0]);
        index.push(11, 0, false, &[0.0, 1.0]);
        index.push(12, 0, false, &[0.6, 0.8]);
        index.push(13, 1, false, &[1.0, 0.0]);
        index.push(14, 0, true, &[1.0, 0.0]);
        let hits = index.search(&[1.0, 0.0], 0, false, 2);
        assert_eq!(hits, vec![(10, 1.0), (12, 0.6)]);
        let hits = index.search(&[1.0, 0.0], 0, true, 5);
        assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>()[..2].len(), 2);
        assert!(hits.iter().any(|h| h.0 == 14));
        assert!(!hits.iter().any(|h| h.0 == 13));
    }

    #[test]
    fn dot_matches_naive_sum_for_odd_lengths() {
        let a: Vec<f32> = (0..7).map(|i| i as f32).collect();
        let b: Vec<f32> = (0..7).map(|i| (i * 2) as f32).collect();
        let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert_eq!(dot(&a, &b), naive);
    }
}
