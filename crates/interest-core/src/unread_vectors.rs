//! Which candidates' vectors a ranking must read. A candidate whose vector
//! is not at hand (recommend() has the trending items' already, not the
//! index's neighbours, which come as keys, the co-visitation candidates or
//! a filter's items) is bounded from above by its other parts plus the
//! largest content score any vector could give. When that bound is below
//! the list's last place among the items already scored, the candidate
//! cannot place, so its vector is never read: the list is the same, with
//! fewer rows fetched.

use crate::ranking::{
    interest_quotas, pool_size, score_item, Catalog, RankWeights, Scored, UserSignals,
};
use std::collections::HashSet;

/// Room for rounding between a bound and the score it bounds: cosines of
/// unit f32 vectors, summed in f32, can pass 1 by several f32 ulps.
const RELATIVE_SLACK: f64 = 1e-4;
const ABSOLUTE_SLACK: f64 = 1e-9;

/// The items of `unread` (eligible items whose vector is unread: None in
/// `cat.vectors`, with freshness at most `cat.freshness`) that may place in
/// `rank(cat, user, eligible, k, w)` once read, highest bound first (equal
/// bounds in `unread`'s order: the caller's guess of the better); the
/// others cannot, whatever their vectors. Every eligible item not in
/// `unread` is scored exactly. Reading some of them raises the thresholds
/// (the known scores only grow in number), so a caller may read the first
/// few and ask again: what is left out at the end still cannot place.
pub fn may_place(
    cat: &Catalog,
    user: &UserSignals,
    eligible: impl Fn(usize) -> bool,
    unread: &[usize],
    k: usize,
    w: &RankWeights,
) -> Vec<usize> {
    if k == 0 {
        return Vec::new();
    }
    let unread_set: HashSet<usize> = unread.iter().copied().collect();
    let scale = user.covisit_scale();
    let known: Vec<_> = (0..cat.vectors.len())
        .filter(|&i| !unread_set.contains(&i) && eligible(i))
        .map(|i| score_item(cat, user, scale, i, w))
        .collect();
    let quotas = interest_quotas(user, k, w);
    let threshold = if w.diversity > 0.0 {
        pool_threshold(&known, k, w, &quotas)
    } else {
        last_place(known, k, &quotas)
    };
    let content_bound = w.content * mixed_taste_norm(user);
    // Each cosine's rounding scales with its share, whatever the tastes'
    // directions.
    let shares: f64 = user.interests.iter().map(|(_, s)| s.abs()).sum();
    let slack = w.content * shares * RELATIVE_SLACK + ABSOLUTE_SLACK;
    let mut placing: Vec<(usize, f64)> = unread
        .iter()
        .copied()
        .filter(|&i| eligible(i))
        .map(|i| {
            // score_item gives the parts other than content for an item
            // without a vector.
            (i, score_item(cat, user, scale, i, w).score + content_bound)
        })
        .filter(|&(_, bound)| bound + slack >= threshold)
        .collect();
    placing.sort_by(|a, b| b.1.total_cmp(&a.1));
    placing.into_iter().map(|(i, _)| i).collect()
}

/// Ranked with novelty, an item places only from `rank`'s pool: the best
/// `pool_size` items plus each taste's best quota. An item below the score
/// that fills each of those cannot join it.
fn pool_threshold(known: &[Scored], k: usize, w: &RankWeights, quotas: &Option<Vec<usize>>) -> f64 {
    let mut threshold = nth_best(known.iter().map(|s| s.score), pool_size(k, w, quotas));
    for (taste, &quota) in quotas.iter().flatten().enumerate() {
        if quota > 0 {
            let mine = known
                .iter()
                .filter(|s| s.interest == Some(taste))
                .map(|s| s.score);
            threshold = threshold.min(nth_best(mine, quota));
        }
    }
    threshold
}

/// Ranked by score alone, `rank` walks its pool best first and takes each
/// item whose taste is under its quota, until it has k (the first pass of
/// `ranking::select`; a change there changes this). The known items' walk
/// gives a last place no unread item below it can reach: every known item
/// above it is walked before it, or its taste has filled its quota with
/// items that are. Items without a taste (no vector) are left out of the
/// walk: one the pool leaves out would not be walked. Only the score is
/// returned, so equal scores need no tie order.
fn last_place(mut known: Vec<Scored>, k: usize, quotas: &Option<Vec<usize>>) -> f64 {
    known.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut used = vec![0usize; quotas.as_ref().map_or(0, |q| q.len())];
    let mut taken = 0;
    for s in known {
        if let Some(q) = quotas {
            let Some(taste) = s.interest else { continue };
            if used[taste] >= q[taste] {
                continue;
            }
            used[taste] += 1;
        }
        taken += 1;
        if taken == k {
            return s.score;
        }
    }
    f64::NEG_INFINITY
}

/// The largest content score (before its weight) of any unit vector v:
/// it is v . sum(share * taste), at most the length of that sum (Cauchy-
/// Schwarz), which is below the sum of the shares when the tastes point
/// apart.
fn mixed_taste_norm(user: &UserSignals) -> f64 {
    let dims = user.interests.first().map_or(0, |(u, _)| u.len());
    let mut mixed = vec![0.0f64; dims];
    for (u, share) in &user.interests {
        for (m, x) in mixed.iter_mut().zip(u) {
            *m += share * *x as f64;
        }
    }
    mixed.iter().map(|m| m * m).sum::<f64>().sqrt()
}

/// The n-th largest of `scores` (n >= 1); minus infinity when there are
/// fewer.
fn nth_best(scores: impl Iterator<Item = f64>, n: usize) -> f64 {
    let mut v: Vec<f64> = scores.collect();
    if n == 0 || v.len() < n {
        return f64::NEG_INFINITY;
    }
    v.select_nth_unstable_by(n - 1, |a, b| b.total_cmp(a));
    v[n - 1]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ranking::rank;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn unit(v: Vec<f32>) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
        v.into_iter().map(|x| x / n).collect()
    }

    #[derive(Debug)]
    struct Case {
        vectors: Vec<Option<Vec<f32>>>,
        popularity: Vec<f64>,
        freshness: Vec<f64>,
        user: UserSignals,
        unread: Vec<usize>,
        banned: HashSet<usize>,
    }

    fn case() -> impl Strategy<Value = Case> {
        (5usize..120, 1usize..4).prop_flat_map(|(n, tastes)| {
            (
                prop::collection::vec(prop::collection::vec(-1.0f32..1.0, 3), n),
                prop::collection::vec(0.0f64..1.0, n),
                prop::collection::vec(0.0f64..1.0, n),
                prop::collection::vec(
                    (prop::collection::vec(-1.0f32..1.0, 3), 0.05f64..1.0),
                    tastes,
                ),
                prop::collection::vec(prop::option::of(0.0f64..3.0), n),
                prop::collection::vec(0u8..10, n),
                0.0f64..4.0,
                prop::collection::vec(any::<u32>(), n),
            )
                .prop_map(
                    |(vectors, popularity, freshness, interests, covisit, roles, max, order)| {
                        let total: f64 = interests.iter().map(|(_, s)| s).sum();
                        let user = UserSignals {
                            interests: interests
                                .into_iter()
                                .map(|(v, s)| (unit(v), s / total))
                                .collect(),
                            covisit: covisit
                                .iter()
                                .enumerate()
                                .filter_map(|(i, c)| c.map(|c| (i, c)))
                                .collect::<HashMap<_, _>>(),
                            covisit_max: (max > 0.5).then_some(max),
                        };
                        Case {
                            vectors: vectors.into_iter().map(|v| Some(unit(v))).collect(),
                            popularity,
                            freshness,
                            user,
                            // Half the items unread, a few banned.
                            // In any order: the caller's guess of the better.
                            unread: {
                                let mut unread: Vec<usize> =
                                    (0..roles.len()).filter(|&i| roles[i] < 5).collect();
                                unread.sort_by_key(|&i| order[i]);
                                unread
                            },
                            banned: (0..roles.len()).filter(|&i| roles[i] == 9).collect(),
                        }
                    },
                )
        })
    }

    fn weights() -> impl Strategy<Value = RankWeights> {
        (
            0.0f64..1.0,
            0.0f64..2.0,
            0.0f64..1.0,
            0.0f64..0.5,
            prop_oneof![Just(0.0), 0.0f64..0.9],
            prop_oneof![Just(0.0), 0.0f64..1.0],
        )
            .prop_map(
                |(content, covisit, popularity, freshness, diversity, balance)| RankWeights {
                    content,
                    covisit,
                    popularity,
                    freshness,
                    diversity,
                    balance,
                },
            )
    }

    proptest! {
        /// Reading only the items `may_place` names (the rest left out)
        /// gives the list that reading every vector gives.
        #[test]
        fn the_list_is_the_one_every_vector_gives(c in case(), w in weights(), k in 1usize..25) {
            let full = catalog(&c.vectors, &c.popularity, &c.freshness);
            let eligible = |i: usize| !c.banned.contains(&i);
            let expected = rank(&full, &c.user, eligible, k, &w);

            let (hidden, bounded_freshness) = unread_view(&c);
            let partial = Catalog { vectors: &hidden, freshness: &bounded_freshness, ..full };
            let read: HashSet<usize> = may_place(&partial, &c.user, eligible, &c.unread, k, &w).into_iter().collect();
            let unread: HashSet<usize> = c.unread.iter().copied().collect();
            let got = rank(&full, &c.user, |i| eligible(i) && (!unread.contains(&i) || read.contains(&i)), k, &w);
            prop_assert_eq!(got, expected);
        }

        /// Reading the first few `may_place` names and asking again, until
        /// it names none, gives that list too: the thresholds only rise.
        #[test]
        fn reading_in_rounds_gives_the_same_list(c in case(), w in weights(), k in 1usize..25, round in 1usize..6) {
            let full = catalog(&c.vectors, &c.popularity, &c.freshness);
            let eligible = |i: usize| !c.banned.contains(&i);
            let expected = rank(&full, &c.user, eligible, k, &w);

            let (mut hidden, mut bounded_freshness) = unread_view(&c);
            let mut unread = c.unread.clone();
            loop {
                let partial = Catalog { vectors: &hidden, freshness: &bounded_freshness, ..full };
                let wanted = may_place(&partial, &c.user, eligible, &unread, k, &w);
                if wanted.is_empty() {
                    break;
                }
                for &i in wanted.iter().take(round) {
                    hidden[i] = c.vectors[i].clone();
                    bounded_freshness[i] = c.freshness[i];
                }
                unread.retain(|i| !wanted[..round.min(wanted.len())].contains(i));
            }
            let got = rank(&full, &c.user, |i| eligible(i) && !unread.contains(&i), k, &w);
            prop_assert_eq!(got, expected);
        }
    }

    /// The case's vectors and freshness as the ranking sees them before its
    /// unread items are read: no vector, and freshness only bounded.
    fn unread_view(c: &Case) -> (Vec<Option<Vec<f32>>>, Vec<f64>) {
        let mut bounded_freshness = c.freshness.clone();
        for &i in &c.unread {
            bounded_freshness[i] = 1.0;
        }
        (hiding(&c.vectors, &c.unread), bounded_freshness)
    }

    /// A catalog in index order (no tie order of its own).
    fn catalog<'a>(
        vectors: &'a [Option<Vec<f32>>],
        popularity: &'a [f64],
        freshness: &'a [f64],
    ) -> Catalog<'a> {
        Catalog {
            vectors,
            popularity,
            freshness,
            tie_order: None,
        }
    }

    /// The items `rank` lists.
    fn listed(cat: &Catalog, user: &UserSignals, k: usize, w: &RankWeights) -> Vec<usize> {
        rank(cat, user, |_| true, k, w)
            .iter()
            .map(|s| s.item)
            .collect()
    }

    /// `vectors` with those of `unread` not read yet.
    fn hiding(vectors: &[Option<Vec<f32>>], unread: &[usize]) -> Vec<Option<Vec<f32>>> {
        let mut hidden = vectors.to_vec();
        for &i in unread {
            hidden[i] = None;
        }
        hidden
    }

    /// What `may_place` names when `unread`'s vectors in `full` are not
    /// read yet (every item eligible).
    fn may_place_unread(
        full: &Catalog,
        user: &UserSignals,
        unread: &[usize],
        k: usize,
        w: &RankWeights,
    ) -> Vec<usize> {
        let hidden = hiding(full.vectors, unread);
        let partial = Catalog {
            vectors: &hidden,
            popularity: full.popularity,
            freshness: full.freshness,
            tie_order: full.tie_order,
        };
        may_place(&partial, user, |_| true, unread, k, w)
    }

    /// Content 0.1, co-visitation and popularity 1, no freshness or
    /// diversity, tastes balanced by `balance`.
    fn popularity_led(balance: f64) -> RankWeights {
        RankWeights {
            content: 0.1,
            covisit: 1.0,
            popularity: 1.0,
            freshness: 0.0,
            diversity: 0.0,
            balance,
        }
    }

    #[test]
    fn a_taste_short_of_its_places_reads_its_candidates() {
        // Two tastes, each capped at 2 of 4 places. Sixty known items of
        // taste A outscore everything; taste B has two weak known items and
        // one unread item (index 62, of taste B once read) that beats them.
        let (a, b) = (vec![1.0, 0.0], vec![0.0, 1.0]);
        let mut vectors: Vec<Option<Vec<f32>>> = vec![Some(a.clone()); 60];
        vectors.extend([Some(b.clone()), Some(b.clone()), Some(b.clone())]);
        let mut popularity = vec![1.0; 60];
        popularity.extend([0.0, 0.0, 0.0]);
        let freshness = vec![0.0; 63];
        let full = catalog(&vectors, &popularity, &freshness);
        let user = UserSignals {
            interests: vec![(a, 0.5), (b, 0.5)],
            covisit: HashMap::from([(62, 0.5)]),
            covisit_max: Some(1.0),
        };
        let w = popularity_led(1.0);
        let listed = listed(&full, &user, 4, &w);
        assert!(listed.contains(&62), "{listed:?}");
        assert_eq!(may_place_unread(&full, &user, &[62], 4, &w), vec![62]);
    }

    #[test]
    fn items_without_a_vector_do_not_fill_the_list_they_may_miss() {
        // Two tastes capped at 2 of 4 places. Sixty known items of taste A
        // fill the pool's best 50; five known items without a vector score
        // below them, outside the pool. The unread item 65 (of taste B once
        // read) takes a place, so it is read, though the five outscore it.
        let (a, b) = (vec![1.0, 0.0], vec![0.0, 1.0]);
        let mut vectors: Vec<Option<Vec<f32>>> = vec![Some(a.clone()); 60];
        vectors.extend(vec![None; 5]);
        vectors.push(Some(b.clone()));
        let mut popularity = vec![1.0; 60];
        popularity.extend(vec![0.95; 5]);
        popularity.push(0.0);
        let freshness = vec![0.0; 66];
        let full = catalog(&vectors, &popularity, &freshness);
        let user = UserSignals {
            interests: vec![(a, 0.5), (b, 0.5)],
            covisit: HashMap::from([(65, 0.5)]),
            covisit_max: Some(1.0),
        };
        let w = popularity_led(1.0);
        assert!(listed(&full, &user, 4, &w).contains(&65));
        assert_eq!(may_place_unread(&full, &user, &[65], 4, &w), vec![65]);
    }

    #[test]
    fn a_taste_without_known_items_does_not_hold_the_list_open() {
        // Three tastes, half, 30% and 20% of the mass: with k = 4 they may
        // fill 3, 2 and 1 places. Ten known items of each of the first two
        // fill the list by popularity; no known item is of the third. The
        // unread item 20 (of the third taste once read) reaches at most 0.3
        // (co-visitation) plus 0.062 (content: 0.1 times the length of the
        // mixed tastes): below the list's last place, though the third
        // taste's pool has room for it.
        let (a, b, c) = (
            vec![1.0, 0.0, 0.0],
            vec![0.0, 1.0, 0.0],
            vec![0.0, 0.0, 1.0],
        );
        let mut vectors: Vec<Option<Vec<f32>>> = vec![Some(a.clone()); 10];
        vectors.extend(vec![Some(b.clone()); 10]);
        vectors.push(Some(c.clone()));
        let mut popularity = vec![0.9; 10];
        popularity.extend(vec![0.8; 10]);
        popularity.push(0.0);
        let freshness = vec![0.0; 21];
        let full = catalog(&vectors, &popularity, &freshness);
        let user = UserSignals {
            interests: vec![(a, 0.5), (b, 0.3), (c, 0.2)],
            covisit: HashMap::from([(20, 0.3)]),
            covisit_max: Some(1.0),
        };
        let w = popularity_led(1.0);
        assert_eq!(listed(&full, &user, 4, &w), vec![0, 1, 2, 10]);
        assert!(may_place_unread(&full, &user, &[20], 4, &w).is_empty());
        // Ranked with novelty, the pool's room counts: it is read.
        let novel = RankWeights {
            diversity: 0.5,
            ..w
        };
        assert_eq!(may_place_unread(&full, &user, &[20], 4, &novel), vec![20]);
    }

    #[test]
    fn the_content_bound_is_the_mixed_tastes_length() {
        // Two tastes at right angles, half each: no item scores more than
        // 0.1 * |(0.5, 0.5)| = 0.0707 on content (one along their sum does),
        // though the shares add up to 1. Five known items score 0.57;
        // unread item 5 (along the sum) scores 0.5707 and places, unread
        // item 6 can reach only 0.5607.
        let diagonal = vec![std::f32::consts::FRAC_1_SQRT_2; 2];
        let mut vectors: Vec<Option<Vec<f32>>> = vec![Some(vec![1.0, 0.0]); 5];
        vectors.extend([Some(diagonal.clone()), Some(diagonal)]);
        let mut popularity = vec![0.52; 5];
        popularity.extend([0.5, 0.49]);
        let freshness = vec![0.0; 7];
        let full = catalog(&vectors, &popularity, &freshness);
        let user = UserSignals {
            interests: vec![(vec![1.0, 0.0], 0.5), (vec![0.0, 1.0], 0.5)],
            ..UserSignals::default()
        };
        let w = popularity_led(0.0);
        let listed = listed(&full, &user, 5, &w);
        assert_eq!(listed[0], 5, "{listed:?}");
        assert_eq!(may_place_unread(&full, &user, &[5, 6], 5, &w), vec![5]);
    }

    #[test]
    fn items_far_below_the_list_are_not_read() {
        // Ten known items score 1 by popularity; two unread ones can reach at
        // most 0.1 (content) + 0.2 (co-visitation) and 0.1 + 0.95.
        let n = 12;
        let mut vectors: Vec<Option<Vec<f32>>> = vec![Some(vec![1.0, 0.0]); n];
        vectors[10] = None;
        vectors[11] = None;
        let mut popularity = vec![1.0; n];
        popularity[10] = 0.0;
        popularity[11] = 0.0;
        let freshness = vec![0.0; n];
        let cat = catalog(&vectors, &popularity, &freshness);
        let user = UserSignals {
            interests: vec![(vec![0.0, 1.0], 1.0)],
            covisit: HashMap::from([(10, 0.2), (11, 0.95)]),
            covisit_max: Some(1.0),
        };
        let w = popularity_led(0.0);
        assert_eq!(may_place(&cat, &user, |_| true, &[10, 11], 5, &w), vec![11]);
        // Fewer known items than the list: every unread one may place.
        // (highest bound first)
        assert_eq!(
            may_place(&cat, &user, |i| i >= 8, &[10, 11], 5, &w),
            vec![11, 10]
        );
    }
}
