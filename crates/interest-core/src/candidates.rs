//! The items recommend() scores on a large catalog: the content neighbours
//! of each sub-interest (from the vector index), every item the user's
//! recent items lead to by co-visitation, and the trending items. The
//! final ranking (`ranking::rank`) runs on these only, so a call's work
//! follows the candidates, not the catalog.

use std::collections::{BTreeSet, HashMap};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CandidateLimits {
    /// Nearest items asked of the index, shared among the sub-interests by
    /// their weights.
    pub content: usize,
    /// Most popular items right now.
    pub trending: usize,
    /// Items the user's recent items lead to, strongest first
    /// (`covisit::link_strengths`): with 20 recent items of 100 links
    /// each, a dense catalog would otherwise give 2,000.
    pub covisit: usize,
}

/// Lists the index probes for a sub-interest's neighbours: candidates need
/// not be the exact nearest (the ranking scores them exactly), and the
/// other sources cover what a short probe misses.
pub const CANDIDATE_PROBES: usize = 10;

/// The limits are for lists of up to this many items; a longer list scales
/// the content limit with k, so filters and seen items still leave it full.
pub const LIMITS_ARE_FOR_K: usize = 10;

/// No sub-interest asks the index for fewer items than this.
pub const MIN_PER_INTEREST: usize = 20;

/// Chosen on MovieLens-100K and the synthetic shop (benches/evaluation_tables.sh
/// reports the candidate path beside the exact one): the fewest that stay
/// within the evaluation's noise.
pub const DEFAULT_LIMITS: CandidateLimits = CandidateLimits {
    content: 100,
    trending: 100,
    covisit: 100,
};

/// The most candidates a setting may take from the index or from
/// co-visitation: each is one read of its embedding and of its counts.
pub const MAX_PER_SOURCE: usize = 10_000;

/// A `filter` list up to this long joins the candidates whole, so a
/// filtered call ranks every allowed item.
pub const MAX_FILTER_CANDIDATES: usize = 10_000;

/// When the candidates leave fewer than k eligible items (a long filter,
/// seen and excluded items), the call asks again with every limit this
/// many times larger...
pub const WIDENING_FACTOR: usize = 4;

/// ...at most this many times, before it ranks every item (which reads the
/// whole catalog into the backend).
pub const WIDENING_ROUNDS: u32 = 3;

/// `limits` after `round` widenings; none grows past `MAX_PER_SOURCE` (or
/// past its own setting, when that is larger).
pub fn widened(limits: CandidateLimits, round: u32) -> CandidateLimits {
    let f = WIDENING_FACTOR.saturating_pow(round);
    let grow = |n: usize| n.saturating_mul(f).min(n.max(MAX_PER_SOURCE));
    CandidateLimits {
        content: grow(limits.content),
        trending: grow(limits.trending),
        covisit: grow(limits.covisit),
    }
}

/// Content neighbours of a sub-interest of `weight` out of `total`, for a
/// list of `k` items.
pub fn per_interest(limits: CandidateLimits, k: usize, weight: f64, total: f64) -> usize {
    let budget = (limits.content.saturating_mul(k.max(LIMITS_ARE_FOR_K)) / LIMITS_ARE_FOR_K) as f64;
    let share = if total > 0.0 { weight / total } else { 1.0 };
    ((budget * share).ceil() as usize).max(MIN_PER_INTEREST)
}

/// The union of the three sources, ascending and without repeats.
/// `nearest(vector, n)` returns up to `n` items nearest to `vector`;
/// `covisit` holds each linked item's strength, of which the strongest
/// `limits.covisit` are taken (ties: lower key first).
pub fn gather<K: Ord + Clone>(
    interests: &[(Vec<f32>, f64)],
    covisit: &HashMap<K, f64>,
    trending: &[K],
    mut nearest: impl FnMut(&[f32], usize) -> Vec<K>,
    limits: CandidateLimits,
    k: usize,
) -> Vec<K> {
    let mut all: BTreeSet<K> = BTreeSet::new();
    let total: f64 = interests.iter().map(|(_, w)| w.max(0.0)).sum();
    for (vector, weight) in interests {
        all.extend(nearest(
            vector,
            per_interest(limits, k, weight.max(0.0), total),
        ));
    }
    all.extend(strongest(covisit, limits.covisit));
    all.extend(trending.iter().take(limits.trending).cloned());
    all.into_iter().collect()
}

/// The `n` linked items of highest strength (ties: lower key first).
pub fn strongest<K: Ord + Clone>(covisit: &HashMap<K, f64>, n: usize) -> Vec<K> {
    let mut linked: Vec<(&K, f64)> = covisit.iter().map(|(j, &w)| (j, w)).collect();
    linked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    linked.truncate(n);
    linked.into_iter().map(|(j, _)| j.clone()).collect()
}

/// The candidate path's co-visitation scale (`UserSignals::covisit_max`)
/// comes from the user's this-many strongest linked items, whatever the
/// limits, the widening round or which of them are embedded: so every call
/// for a user, and explain(), scale alike.
pub const COVISIT_SCALE_BASE: usize = DEFAULT_LIMITS.covisit;

/// The largest of `scores` among `base` (the `COVISIT_SCALE_BASE`
/// strongest linked items, `strongest`): what the candidate path divides
/// co-visitation scores by.
pub fn covisit_max<K: Eq + std::hash::Hash>(scores: &HashMap<K, f64>, base: &[K]) -> f64 {
    base.iter()
        .filter_map(|k| scores.get(k))
        .cloned()
        .fold(0.0, f64::max)
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
            content: 40,
            trending: 2,
            covisit: 10,
        };
        let got = gather(
            &interests,
            &covisit,
            &[9, 2, 11],
            |v, n| {
                if v[0] > 0.5 {
                    (100..100 + n).collect()
                } else {
                    (200..200 + n).collect()
                }
            },
            limits,
            0,
        );
        // 28 for the first taste (70% of 40), the minimum 20 for the second.
        let expected: Vec<usize> = [2, 7, 9]
            .into_iter()
            .chain(100..128)
            .chain(200..220)
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn asks_for_more_neighbours_when_k_is_large() {
        let limits = CandidateLimits {
            content: 100,
            trending: 0,
            covisit: 0,
        };
        assert_eq!(per_interest(limits, 5, 1.0, 1.0), 100);
        assert_eq!(per_interest(limits, 10, 1.0, 1.0), 100);
        assert_eq!(per_interest(limits, 50, 1.0, 1.0), 500);
        assert_eq!(per_interest(limits, 5, 0.5, 1.0), 50);
        assert_eq!(per_interest(limits, 5, 0.01, 1.0), MIN_PER_INTEREST);
        assert_eq!(
            per_interest(DEFAULT_LIMITS, 10, 1.0, 1.0),
            DEFAULT_LIMITS.content
        );
    }

    #[test]
    fn keeps_the_strongest_linked_items() {
        let limits = CandidateLimits {
            content: 0,
            trending: 0,
            covisit: 3,
        };
        let covisit: HashMap<usize, f64> = [(1, 0.1), (2, 0.9), (3, 0.5), (4, 0.5), (5, 0.7)]
            .into_iter()
            .collect();
        let got = gather(&[], &covisit, &[], |_, _| Vec::new(), limits, 10);
        // 0.9, 0.7, then the tie at 0.5 goes to the lower key.
        assert_eq!(got, vec![2, 3, 5]);
    }

    #[test]
    fn widening_multiplies_every_limit_and_keeps_a_source_that_is_off() {
        let limits = CandidateLimits {
            content: 100,
            trending: 100,
            covisit: 0,
        };
        assert_eq!(widened(limits, 0), limits);
        let w = widened(limits, 2);
        assert_eq!((w.content, w.trending, w.covisit), (1600, 1600, 0));
        let w = widened(limits, WIDENING_ROUNDS);
        assert_eq!(w.content, 6400);
        let most = widened(
            CandidateLimits {
                content: MAX_PER_SOURCE,
                ..limits
            },
            2,
        );
        assert_eq!(
            most.content, MAX_PER_SOURCE,
            "no further than the largest setting"
        );
        assert_eq!(
            widened(
                CandidateLimits {
                    content: MAX_PER_SOURCE * 4,
                    ..limits
                },
                1
            )
            .content,
            MAX_PER_SOURCE * 4,
            "never below the limit itself"
        );
    }

    #[test]
    fn the_covisit_scale_comes_from_the_strongest_links_only() {
        let strengths: HashMap<u32, f64> = [(1, 0.9), (2, 0.5), (3, 0.1)].into_iter().collect();
        let base = strongest(&strengths, 2);
        assert_eq!(base, vec![1, 2]);
        // Item 3's normalised score is the largest, but it is not in the base.
        let scores: HashMap<u32, f64> = [(1, 0.3), (2, 0.4), (3, 2.0)].into_iter().collect();
        assert_eq!(covisit_max(&scores, &base), 0.4);
        assert_eq!(covisit_max(&scores, &[]), 0.0);
    }

    #[test]
    fn trending_is_the_most_popular_first() {
        assert_eq!(trending(&[0.1, 0.0, 0.5, 0.5, 0.2], 3), vec![2, 3, 4]);
    }
}
