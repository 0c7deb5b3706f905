//! Co-visitation scores of catalog items from one user's recent items, as
//! recommend() and explain() need them: by catalog index, with each term's
//! recent item for the reason.

use crate::covisit::{covisit_scores, CovisitContribution, CovisitParams};
use std::collections::HashMap;

/// A recent item's decayed event count at `now` and its links (catalog
/// index, decayed weight).
pub type RecentStats = (f64, Vec<(usize, f64)>);

/// `recent[q]`: the q-th recent item's stats (oldest first; None for an item
/// with none); `counts`: every catalog item's decayed count. Each
/// contribution's `via` is a position in `recent`.
pub fn catalog_covisit_scores(
    recent: &[Option<RecentStats>],
    counts: &[f64],
    p: &CovisitParams,
) -> HashMap<usize, Vec<CovisitContribution<usize>>> {
    // Recent item at position q is key n + q, never confused with a candidate.
    let n = counts.len();
    let ids: Vec<usize> = (0..recent.len()).map(|q| n + q).collect();
    covisit_scores(
        &ids,
        |&id| recent[id - n].clone(),
        |&j| if j < n { counts[j] } else { 0.0 },
        p,
    )
    .into_iter()
    .filter(|(j, _)| *j < n)
    .map(|(j, parts)| {
        let parts = parts
            .into_iter()
            .map(|c| CovisitContribution {
                via: c.via - n,
                value: c.value,
            })
            .collect();
        (j, parts)
    })
    .collect()
}

/// Each item's total co-visitation score.
pub fn totals<K: Clone + Eq + std::hash::Hash, V>(
    terms: &HashMap<K, Vec<CovisitContribution<V>>>,
) -> HashMap<K, f64> {
    terms
        .iter()
        .map(|(i, parts)| (i.clone(), parts.iter().map(|c| c.value).sum()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_point_at_recent_positions_and_only_at_catalog_items() {
        let p = CovisitParams {
            recency_decay: 0.5,
            ..CovisitParams::default()
        };
        let counts = vec![3.0, 0.0, 8.0];
        // oldest: links to item 2; newest: links to items 0 and 2; the middle one has no stats
        let recent = vec![
            Some((1.0, vec![(2, 4.0)])),
            None,
            Some((0.0, vec![(0, 2.0), (2, 6.0)])),
        ];
        let terms = catalog_covisit_scores(&recent, &counts, &p);
        assert_eq!(terms.len(), 2);
        let via_of = |i: usize| terms[&i].iter().map(|c| c.via).collect::<Vec<_>>();
        assert_eq!(via_of(0), [2]);
        let mut via2 = via_of(2);
        via2.sort();
        assert_eq!(via2, [0, 2]);
        // newest at rank 0: 2 / sqrt(1 * 4); oldest at rank 2: 0.25 * 4 / sqrt(2 * 9)
        let t = totals(&terms);
        assert!((t[&0] - 1.0).abs() < 1e-12);
        assert!((t[&2] - (6.0 / 3.0 + 0.25 * 4.0 / 18f64.sqrt())).abs() < 1e-12);
    }
}
