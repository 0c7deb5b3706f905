//! The items recommend() scores on a large catalog: the content neighbours
//! of each sub-interest (from the vector index), every item the user's
//! recent items lead to by co-visitation, and the trending items. The
//! final ranking (`ranking::rank`) runs on these only, so a call's work
//! follows the candidates, not the catalog.

use std::collections::{BTreeSet, HashMap};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CandidateLimits {
    /// Nearest items asked of the index for each sub-interest.
    pub per_interest: usize,
    /// Most popular items right now.
    pub trending: usize,
}

/// Chosen on MovieLens-100K and the synthetic shop (benches/evaluation_tables.sh
/// reports the candidate path beside the exact one).
pub const DEFAULT_LIMITS: CandidateLimits = CandidateLimits {
    per_interest: 300,
    trending: 200,
};

/// How long a backend keeps its trending list and the source's last event
/// time before reading them again (one scan of the source's item stats).
pub const TRENDING_REFRESH_SECS: u64 = 60;

/// A `filter` list up to this long joins the candidates whole, so a
/// filtered call ranks every allowed item.
pub const MAX_FILTER_CANDIDATES: usize = 10_000;

/// Content neighbours for `k` results: enough that filters and seen items
/// still leave a full list.
pub fn per_interest(limits: CandidateLimits, k: usize) -> usize {
    limits.per_interest.max(k.saturating_mul(10))
}

/// The union of the three sources, ascending and without repeats.
/// `nearest(vector, n)` returns up to `n` items nearest to `vector`.
pub fn gather<K: Ord + Clone>(
    interests: &[(Vec<f32>, f64)],
    covisit: &HashMap<K, f64>,
    trending: &[K],
    mut nearest: impl FnMut(&[f32], usize) -> Vec<K>,
    limits: CandidateLimits,
    k: usize,
) -> Vec<K> {
    let mut all: BTreeSet<K> = BTreeSet::new();
    for (vector, _) in interests {
        all.extend(nearest(vector, per_interest(limits, k)));
    }
    all.extend(covisit.keys().cloned());
    all.extend(trending.iter().take(limits.trending).cloned());
    all.into_iter().collect()
}

/// The `n` items of highest `popularity` (ties: lower index first).
pub fn trending(popularity: &[f64], n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..popularity.len())
        .filter(|&i| popularity[i] > 0.0)
        .collect();
    order.sort_by(|&a, &b| popularity[b].total_cmp(&popularity[a]).then(a.cmp(&b)));
    order.truncate(n);
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unites_the_three_sources_without_repeats() {
        let interests = vec![(vec![1.0, 0.0], 0.7), (vec![0.0, 1.0], 0.3)];
        let covisit: HashMap<usize, f64> = [(7, 0.5), (2, 0.1)].into_iter().collect();
        let limits = CandidateLimits {
            per_interest: 3,
            trending: 2,
        };
        let got = gather(
            &interests,
            &covisit,
            &[9, 2, 11],
            |v, n| {
                if v[0] > 0.5 {
                    (0..n).collect()
                } else {
                    (4..4 + n).collect()
                }
            },
            limits,
            0,
        );
        assert_eq!(got, vec![0, 1, 2, 4, 5, 6, 7, 9]);
    }

    #[test]
    fn asks_for_more_neighbours_when_k_is_large() {
        let limits = CandidateLimits {
            per_interest: 100,
            trending: 0,
        };
        assert_eq!(per_interest(limits, 5), 100);
        assert_eq!(per_interest(limits, 50), 500);
    }

    #[test]
    fn trending_is_the_most_popular_first() {
        assert_eq!(trending(&[0.1, 0.0, 0.5, 0.5, 0.2], 3), vec![2, 3, 4]);
    }
}
