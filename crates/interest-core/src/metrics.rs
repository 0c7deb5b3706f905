//! Offline ranking metrics for leave-last-out evaluation.

use crate::kernels;

/// Hit (1.0) if `target` is in `list`, else 0.0.
pub fn hit(list: &[usize], target: usize) -> f64 {
    if list.contains(&target) {
        1.0
    } else {
        0.0
    }
}

/// NDCG with one relevant item: 1 / log2(rank + 2) at its 0-based rank.
pub fn ndcg(list: &[usize], target: usize) -> f64 {
    list.iter()
        .position(|&i| i == target)
        .map_or(0.0, |r| 1.0 / ((r + 2) as f64).log2())
}

/// Mean pairwise cosine distance between the list's items that have
/// vectors (intra-list diversity); None with fewer than two.
pub fn intra_list_diversity(list: &[usize], vectors: &[Option<Vec<f32>>]) -> Option<f64> {
    let vs: Vec<&Vec<f32>> = list.iter().filter_map(|&i| vectors[i].as_ref()).collect();
    let mut sum = 0.0;
    let mut pairs = 0usize;
    for a in 0..vs.len() {
        for b in a + 1..vs.len() {
            sum += kernels::cosine_distance(vs[a], vs[b]);
            pairs += 1;
        }
    }
    (pairs > 0).then(|| sum / pairs as f64)
}

/// Running means of the metrics over users, plus item coverage.
pub struct MetricsAccumulator {
    k: usize,
    users: usize,
    hits: f64,
    hits_sq: f64,
    ndcg: f64,
    ndcg_sq: f64,
    diversity: f64,
    diversity_lists: usize,
    covered: Vec<bool>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Metrics {
    pub users: usize,
    pub hit_rate: f64,
    pub ndcg: f64,
    /// Standard errors of the two means (sample standard deviation / sqrt(users)).
    pub hit_rate_se: f64,
    pub ndcg_se: f64,
    /// Share of the catalog that appears in at least one list.
    pub coverage: f64,
    pub diversity: f64,
}

impl MetricsAccumulator {
    pub fn new(k: usize, n_items: usize) -> Self {
        MetricsAccumulator {
            k,
            users: 0,
            hits: 0.0,
            hits_sq: 0.0,
            ndcg: 0.0,
            ndcg_sq: 0.0,
            diversity: 0.0,
            diversity_lists: 0,
            covered: vec![false; n_items],
        }
    }

    pub fn add(&mut self, list: &[usize], target: usize, vectors: &[Option<Vec<f32>>]) {
        let list = &list[..list.len().min(self.k)]; // a hit below k does not count
        self.add_with(list, hit(list, target), ndcg(list, target), vectors);
    }

    /// Counts a list whose hit and NDCG are given (e.g. their expectation
    /// for a random list), and its coverage and diversity.
    pub fn add_with(&mut self, list: &[usize], hit: f64, ndcg: f64, vectors: &[Option<Vec<f32>>]) {
        let list = &list[..list.len().min(self.k)];
        self.users += 1;
        self.hits += hit;
        self.hits_sq += hit * hit;
        self.ndcg += ndcg;
        self.ndcg_sq += ndcg * ndcg;
        for &i in list {
            self.covered[i] = true;
        }
        if let Some(d) = intra_list_diversity(list, vectors) {
            self.diversity += d;
            self.diversity_lists += 1;
        }
    }

    pub fn finish(&self) -> Metrics {
        let n = self.users.max(1) as f64;
        Metrics {
            users: self.users,
            hit_rate: self.hits / n,
            ndcg: self.ndcg / n,
            hit_rate_se: standard_error(self.hits, self.hits_sq, self.users),
            ndcg_se: standard_error(self.ndcg, self.ndcg_sq, self.users),
            coverage: self.covered.iter().filter(|&&c| c).count() as f64
                / self.covered.len().max(1) as f64,
            diversity: self.diversity / self.diversity_lists.max(1) as f64,
        }
    }
}

/// The standard error of a mean from the sum and sum of squares of `n`
/// values (0 for fewer than two).
pub fn standard_error(sum: f64, sum_sq: f64, n: usize) -> f64 {
    if n < 2 {
        return 0.0;
    }
    let n = n as f64;
    let variance = ((sum_sq - sum * sum / n) / (n - 1.0)).max(0.0);
    (variance / n).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hit_and_ndcg_by_rank() {
        assert_eq!(hit(&[3, 4], 4), 1.0);
        assert_eq!(hit(&[3, 4], 5), 0.0);
        assert_eq!(ndcg(&[7, 1, 2], 7), 1.0);
        assert!(
            (ndcg(&[7, 1, 2], 2) - 0.5).abs() < 1e-12,
            "rank 3: 1/log2(4)"
        );
    }

    #[test]
    fn accumulator_means_and_coverage() {
        let vectors = vec![
            Some(vec![1.0, 0.0]),
            Some(vec![0.0, 1.0]),
            Some(vec![1.0, 0.0]),
            None,
        ];
        let mut m = MetricsAccumulator::new(2, 4);
        m.add(&[0, 1, 3], 1, &vectors); // cut to [0, 1]: hit at rank 2; orthogonal: diversity 1
        m.add(&[0, 2], 3, &vectors); // miss; identical vectors: diversity 0
        let r = m.finish();
        assert_eq!(r.users, 2);
        assert!((r.hit_rate - 0.5).abs() < 1e-12);
        assert!((r.ndcg - 0.5 / 3f64.log2()).abs() < 1e-12);
        assert!((r.coverage - 0.75).abs() < 1e-12);
        assert!((r.diversity - 0.5).abs() < 1e-6);
        // hits 1, 0: sample sd sqrt(0.5), se 0.5
        assert!((r.hit_rate_se - 0.5).abs() < 1e-12);
    }

    #[test]
    fn standard_error_of_known_samples() {
        // 1, 2, 3, 4: mean 2.5, sample variance 5/3
        let se = standard_error(10.0, 30.0, 4);
        assert!((se - (5.0f64 / 3.0 / 4.0).sqrt()).abs() < 1e-12);
        assert_eq!(standard_error(3.0, 9.0, 1), 0.0);
    }
}
