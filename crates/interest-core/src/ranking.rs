//! Fused ranking: content (the sub-interests, each weighted by its share),
//! co-visitation, popularity and freshness, combined linearly so that an
//! explanation's parts add up to the score; then a greedy selection that gives each sub-interest at most its
//! share of the list and, with `diversity > 0`, trades score for novelty
//! (maximal marginal relevance over item embeddings).

use crate::interrupts;
use crate::kernels;
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RankWeights {
    pub content: f64,
    pub covisit: f64,
    pub popularity: f64,
    pub freshness: f64,
    /// 0 = by score only; 1 = by novelty only (MMR's lambda).
    pub diversity: f64,
    /// How much of the list follows the sub-interests' shares: a taste with
    /// share s (at least `MIN_TASTE_SHARE`) is guaranteed floor(balance * k * s)
    /// places. 0 = by score only; 1 = fully proportional.
    pub balance: f64,
}

impl Default for RankWeights {
    fn default() -> Self {
        // Chosen on MovieLens-100K's validation splits (second-to-last event,
        // and a time cut at the 0.7 quantile; items embedded by their genres)
        // and checked on the synthetic shop; see README "Evaluation" and
        // benches/tune_weights.sh. interest.tune() fits them to a table.
        RankWeights {
            content: 0.1,
            covisit: 1.0,
            popularity: 0.3,
            freshness: 0.05,
            diversity: 0.0,
            // Half the list follows the tastes, so that a user with two sees
            // both (the validation figures are in the README).
            balance: 0.5,
        }
    }
}

impl RankWeights {
    /// similar_items(): an item plays the user, so content (its own
    /// direction) weighs more than in recommend(); no popularity or freshness.
    pub fn similar_items() -> Self {
        RankWeights {
            content: 0.2,
            covisit: 1.0,
            popularity: 0.0,
            freshness: 0.0,
            diversity: 0.0,
            balance: 0.0,
        }
    }
}

/// What the ranker knows about the catalog, by item index. Vectors are unit
/// length (or absent); popularity and freshness are in [0, 1].
pub struct Catalog<'a> {
    pub vectors: &'a [Option<Vec<f32>>],
    pub popularity: &'a [f64],
    pub freshness: &'a [f64],
    /// Which of two equal scores comes first: the lower `tie_order[item]`;
    /// None = the lower item index. The evaluation draws it at random, so
    /// that items with equal embeddings are not ranked by catalog order.
    pub tie_order: Option<&'a [u64]>,
}

impl Catalog<'_> {
    fn tie_key(&self, item: usize) -> u64 {
        self.tie_order.map_or(item as u64, |o| o[item])
    }

    fn by_score(&self, a: &Scored, b: &Scored) -> std::cmp::Ordering {
        b.score
            .total_cmp(&a.score)
            .then(self.tie_key(a.item).cmp(&self.tie_key(b.item)))
    }
}

/// What the ranker knows about the user.
#[derive(Debug, Default)]
pub struct UserSignals {
    /// Unit-length sub-interest directions and their shares (summing to 1).
    pub interests: Vec<(Vec<f32>, f64)>,
    /// Raw co-visitation score per item index.
    pub covisit: HashMap<usize, f64>,
    /// The score to divide by when it is fixed apart from the scored items
    /// (the candidate path takes the largest among the user's strongest
    /// links, `candidates::covisit_max`, so the scale does not depend on
    /// which candidates a call read); None: the largest in `covisit`.
    pub covisit_max: Option<f64>,
}

impl UserSignals {
    /// What co-visitation scores are divided by: `covisit_max` when it is
    /// fixed (the candidate path), else the largest in `covisit`; so the
    /// weights mean the same for a light and a heavy user. An item above a
    /// fixed scale is capped (`covisit_factor`).
    pub fn covisit_scale(&self) -> f64 {
        let max = self
            .covisit_max
            .filter(|m| *m > 0.0)
            .unwrap_or_else(|| self.covisit.values().cloned().fold(0.0, f64::max));
        if max > 0.0 {
            1.0 / max
        } else {
            0.0
        }
    }

    /// What each of `item`'s co-visitation terms is multiplied by: the
    /// scale, less where the scaled score would pass 1 (on the candidate
    /// path a rarer linked item can score above the strongest links that
    /// set the scale; it counts as much as the best of them, no more).
    pub fn covisit_factor(&self, item: usize, scale: f64) -> f64 {
        let raw = self.covisit.get(&item).copied().unwrap_or(0.0);
        if raw * scale > 1.0 {
            1.0 / raw
        } else {
            scale
        }
    }
}

/// A scored item; the weighted parts add up to `score`.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub item: usize,
    pub score: f64,
    pub content: f64,
    /// The sub-interest the item is closest to.
    pub interest: Option<usize>,
    pub covisit: f64,
    pub popularity: f64,
    pub freshness: f64,
}

/// Each sub-interest's share and cosine to the item. The content score is the
/// sum of share × cosine, so the interests are recombined by recency share (a minor interest built from a
/// stray event moves the score by its small share only). Why this scorer and
/// not the closest interest's cosine: benches/content_ranking_research.md.
pub fn interest_cosines<'a>(
    user: &'a UserSignals,
    item_vector: &'a [f32],
) -> impl Iterator<Item = (f64, f64)> + 'a {
    user.interests
        .iter()
        .map(|(u, share)| (*share, kernels::dot(u, item_vector) as f64))
}

pub fn score_item(
    cat: &Catalog,
    user: &UserSignals,
    covisit_scale: f64,
    item: usize,
    w: &RankWeights,
) -> Scored {
    let (mut content, mut interest) = (0.0, None);
    if let Some(v) = &cat.vectors[item] {
        // The item belongs to the sub-interest it is closest to (for the
        // list's shares and the explanation); it is scored by all of them.
        let mut best = f64::NEG_INFINITY;
        let mut mixed = 0.0;
        for (i, (share, c)) in interest_cosines(user, v).enumerate() {
            mixed += share * c;
            if c > best {
                best = c;
                interest = Some(i);
            }
        }
        if interest.is_some() {
            content = w.content * mixed;
        }
    }
    let raw = user.covisit.get(&item).copied().unwrap_or(0.0);
    let covisit = w.covisit * raw * user.covisit_factor(item, covisit_scale);
    let popularity = w.popularity * cat.popularity[item];
    let freshness = w.freshness * cat.freshness[item];
    Scored {
        item,
        score: content + covisit + popularity + freshness,
        content,
        interest,
        covisit,
        popularity,
        freshness,
    }
}

/// The top `k` eligible items.
pub fn rank(
    cat: &Catalog,
    user: &UserSignals,
    eligible: impl Fn(usize) -> bool,
    k: usize,
    w: &RankWeights,
) -> Vec<Scored> {
    if k == 0 {
        return Vec::new();
    }
    let scale = user.covisit_scale();
    let mut all: Vec<Scored> = (0..cat.vectors.len())
        .filter(|&i| {
            interrupts::check_every(i);
            eligible(i)
        })
        .map(|i| score_item(cat, user, scale, i, w))
        .collect();
    let by_score = |a: &Scored, b: &Scored| cat.by_score(a, b);
    let quotas = interest_quotas(user, k, w);
    let pool_size = pool_size(k, w, &quotas);
    if pool_size == k {
        top_k(&mut all, k, by_score);
        return all;
    }
    // Candidate pool: the best by score plus each interest's closest items,
    // so that a minor taste has candidates of its own.
    let mut pool: Vec<Scored> = Vec::new();
    let mut in_pool = std::collections::HashSet::new();
    {
        let mut best = all.clone();
        top_k(&mut best, pool_size, by_score);
        for s in best {
            in_pool.insert(s.item);
            pool.push(s);
        }
    }
    if let Some(q) = &quotas {
        for (i, &quota) in q.iter().enumerate() {
            let mut mine: Vec<&Scored> = all.iter().filter(|s| s.interest == Some(i)).collect();
            mine.sort_by(|a, b| by_score(a, b));
            for s in mine.into_iter().take(quota) {
                if in_pool.insert(s.item) {
                    pool.push(s.clone());
                }
            }
        }
    }
    select(cat, pool, k, w.diversity, quotas)
}

/// How many of the best-scored items `rank` selects from (besides each
/// taste's best `quotas` items): k when it ranks by score alone, else a pool
/// for the greedy selection.
pub(crate) fn pool_size(k: usize, w: &RankWeights, quotas: &Option<Vec<usize>>) -> usize {
    if w.diversity <= 0.0 && quotas.is_none() {
        k
    } else {
        (4 * k).max(50)
    }
}

/// A sub-interest holding at least this share of the user's recent mass is a
/// taste of its own and is guaranteed floor(balance * k * share) places.
pub const MIN_TASTE_SHARE: f64 = 0.2;

/// With two or more interests and content in play: interest i is guaranteed
/// g_i = floor(balance * k * share_i) places when its share is at least
/// `MIN_TASTE_SHARE`, so a user with two tastes sees both in proportion. As
/// caps for the greedy selection: interest i may fill at most k - sum of the
/// others' guarantees. Minor interests (stray events) get no guarantee and
/// cannot crowd out the main one.
pub(crate) fn interest_quotas(user: &UserSignals, k: usize, w: &RankWeights) -> Option<Vec<usize>> {
    if user.interests.len() < 2 || w.content <= 0.0 || w.balance <= 0.0 {
        return None;
    }
    let guaranteed: Vec<usize> = user
        .interests
        .iter()
        .map(|(_, share)| {
            if *share >= MIN_TASTE_SHARE {
                (w.balance * k as f64 * share).floor() as usize
            } else {
                0
            }
        })
        .collect();
    let total: usize = guaranteed.iter().sum();
    if total == 0 {
        return None;
    }
    Some(guaranteed.iter().map(|g| k - (total - g)).collect())
}

fn top_k(v: &mut Vec<Scored>, k: usize, cmp: impl Fn(&Scored, &Scored) -> std::cmp::Ordering) {
    if v.len() > k {
        v.select_nth_unstable_by(k - 1, &cmp);
        v.truncate(k);
    }
    v.sort_by(cmp);
}

/// Greedy selection: maximal marginal relevance under the interest quotas;
/// when the quotas leave places empty, they are filled by score. (By score
/// alone, its first pass is what `unread_vectors::last_place` bounds.)
fn select(
    cat: &Catalog,
    mut pool: Vec<Scored>,
    k: usize,
    diversity: f64,
    quotas: Option<Vec<usize>>,
) -> Vec<Scored> {
    pool.sort_by(|a, b| cat.by_score(a, b));
    let mut chosen: Vec<Scored> = Vec::with_capacity(k);
    let mut used = vec![0usize; quotas.as_ref().map_or(0, |q| q.len())];
    let mut max_sim = vec![f64::NEG_INFINITY; pool.len()];
    let mut taken = vec![false; pool.len()];
    for respect_quotas in [true, false] {
        while chosen.len() < k {
            interrupts::check();
            let mut best: Option<(usize, f64)> = None;
            for (i, s) in pool.iter().enumerate() {
                if taken[i] {
                    continue;
                }
                if respect_quotas {
                    if let (Some(q), Some(interest)) = (&quotas, s.interest) {
                        if used[interest] >= q[interest] {
                            continue;
                        }
                    }
                }
                let redundancy = if max_sim[i].is_finite() {
                    max_sim[i]
                } else {
                    0.0
                };
                let value = (1.0 - diversity) * s.score - diversity * redundancy;
                if best.is_none_or(|(_, b)| value > b) {
                    best = Some((i, value));
                }
            }
            let Some((i, _)) = best else { break };
            taken[i] = true;
            if let Some(interest) = pool[i].interest {
                if let Some(u) = used.get_mut(interest) {
                    *u += 1;
                }
            }
            if diversity > 0.0 {
                if let Some(vi) = &cat.vectors[pool[i].item] {
                    for (j, s) in pool.iter().enumerate() {
                        if let (false, Some(vj)) = (taken[j], &cat.vectors[s.item]) {
                            max_sim[j] = max_sim[j].max(kernels::dot(vi, vj) as f64);
                        }
                    }
                }
            }
            chosen.push(pool[i].clone());
        }
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    /// Three items without popularity or freshness.
    fn content_only(vectors: &[Option<Vec<f32>>]) -> Catalog<'_> {
        Catalog {
            vectors,
            popularity: &[0.0; 3],
            freshness: &[0.0; 3],
            tie_order: None,
        }
    }

    #[test]
    fn a_fixed_scale_caps_each_items_covisitation_at_one() {
        let vectors = vec![None, None, None];
        let cat = content_only(&vectors);
        // The scale comes from a score of 2; item 2 scores 8 (a rarer item).
        let user = UserSignals {
            interests: Vec::new(),
            covisit: HashMap::from([(0, 1.0), (1, 2.0), (2, 8.0)]),
            covisit_max: Some(2.0),
        };
        let w = RankWeights {
            covisit: 1.0,
            ..RankWeights::default()
        };
        let scale = user.covisit_scale();
        let got: Vec<f64> = (0..3)
            .map(|i| score_item(&cat, &user, scale, i, &w).covisit)
            .collect();
        assert_eq!(got, vec![0.5, 1.0, 1.0]);
        // explain() multiplies each of an item's terms by one factor: item
        // 2's terms of 3 and 5 keep their proportions within the cap (not
        // each capped alone, which would give 1.5 and 2.5 capped to 1 each).
        let factor = user.covisit_factor(2, scale);
        assert_eq!((3.0 * factor, 5.0 * factor), (0.375, 0.625));
        assert_eq!(
            user.covisit_factor(0, scale),
            scale,
            "under the cap: the scale"
        );
        // Without a fixed scale, the largest sets it and nothing is capped.
        let free = UserSignals {
            covisit_max: None,
            ..user
        };
        let scale = free.covisit_scale();
        assert_eq!(score_item(&cat, &free, scale, 1, &w).covisit, 0.25);
    }

    #[test]
    fn parts_add_up_and_weights_apply() {
        let vectors = vec![Some(unit(&[1.0, 0.0])), Some(unit(&[0.0, 1.0])), None];
        let cat = Catalog {
            vectors: &vectors,
            popularity: &[1.0, 0.5, 0.0],
            freshness: &[0.0, 0.0, 1.0],
            tie_order: None,
        };
        let user = UserSignals {
            interests: vec![(unit(&[1.0, 0.0]), 1.0)],
            covisit: HashMap::from([(1, 2.0), (2, 4.0)]),
            covisit_max: None,
        };
        let w = RankWeights {
            content: 0.5,
            covisit: 1.0,
            popularity: 0.1,
            freshness: 0.3,
            diversity: 0.0,
            balance: 0.0,
        };
        let r = rank(&cat, &user, |_| true, 3, &w);
        for s in &r {
            assert!((s.content + s.covisit + s.popularity + s.freshness - s.score).abs() < 1e-12);
        }
        // item 2: covisit 1.0 + freshness 0.3 = 1.3; item 1: 0.5 + 0.05 = 0.55; item 0: content 0.5 + 0.1 = 0.6
        assert_eq!(r.iter().map(|s| s.item).collect::<Vec<_>>(), vec![2, 0, 1]);
        assert!((r[0].score - 1.3).abs() < 1e-12);
        let only_content = RankWeights {
            content: 1.0,
            covisit: 0.0,
            popularity: 0.0,
            freshness: 0.0,
            diversity: 0.0,
            balance: 0.0,
        };
        assert_eq!(
            rank(&cat, &user, |i| i != 0, 1, &only_content)[0].item,
            1,
            "exclusions apply"
        );
    }

    /// A stray interest (one event, small share) must not outscore the main
    /// taste: the content score weighs each interest's cosine by its share,
    /// and the item still belongs to the interest it is closest to.
    #[test]
    fn content_weighs_each_interest_by_its_share() {
        let vectors = vec![
            Some(unit(&[1.0, 0.0, 0.0])),
            Some(unit(&[0.0, 1.0, 0.0])),
            Some(unit(&[0.8, 0.0, 0.6])),
        ];
        let cat = content_only(&vectors);
        let user = UserSignals {
            interests: vec![(unit(&[1.0, 0.0, 0.0]), 0.9), (unit(&[0.0, 1.0, 0.0]), 0.1)],
            covisit: HashMap::new(),
            covisit_max: None,
        };
        let w = RankWeights {
            content: 2.0,
            covisit: 0.0,
            popularity: 0.0,
            freshness: 0.0,
            diversity: 0.0,
            balance: 0.0,
        };
        let r = rank(&cat, &user, |_| true, 3, &w);
        assert_eq!(r.iter().map(|s| s.item).collect::<Vec<_>>(), vec![0, 2, 1]);
        // item 1 matches the stray interest exactly: 2 * (0.9 * 0 + 0.1 * 1)
        let stray = r.iter().find(|s| s.item == 1).unwrap();
        assert!((stray.content - 0.2).abs() < 1e-6);
        assert_eq!(stray.interest, Some(1));
        let parts: Vec<f64> = interest_cosines(&user, vectors[2].as_ref().unwrap())
            .map(|(share, c)| share * c)
            .collect();
        assert!((parts[0] - 0.72).abs() < 1e-6 && parts[1].abs() < 1e-6);
        assert!((w.content * parts.iter().sum::<f64>() - r[1].content).abs() < 1e-6);
    }

    /// Ranks 10 of a catalog with ten items near interest A (slightly more
    /// popular, so better scores) and ten near B, for a user whose interests
    /// A and B hold `shares`; returns how many places B got.
    fn places_for_b(shares: [f64; 2], balance: f64) -> usize {
        let vectors: Vec<Option<Vec<f32>>> = (0..20)
            .map(|i| {
                let e = i as f32 * 0.001;
                Some(unit(&if i < 10 { [1.0, e, 0.0] } else { [e, 1.0, 0.0] }))
            })
            .collect();
        let pop: Vec<f64> = (0..20).map(|i| if i < 10 { 0.2 } else { 0.0 }).collect();
        let cat = Catalog {
            vectors: &vectors,
            popularity: &pop,
            freshness: &[0.0; 20],
            tie_order: None,
        };
        let user = UserSignals {
            interests: vec![
                (unit(&[1.0, 0.0, 0.0]), shares[0]),
                (unit(&[0.0, 1.0, 0.0]), shares[1]),
            ],
            covisit: HashMap::new(),
            covisit_max: None,
        };
        let w = RankWeights {
            balance,
            ..RankWeights::default()
        };
        let r = rank(&cat, &user, |_| true, 10, &w);
        assert_eq!(r.len(), 10);
        r.iter().filter(|s| s.interest == Some(1)).count()
    }

    #[test]
    fn each_interest_gets_its_share_of_the_list() {
        assert_eq!(places_for_b([0.6, 0.4], 1.0), 4, "B fills its 40%");
        // The default keeps half the list proportional: floor(0.5 * 10 * 0.4).
        assert_eq!(places_for_b([0.6, 0.4], RankWeights::default().balance), 2);
        // balance 0: by score only (A's items score higher).
        assert_eq!(places_for_b([0.6, 0.4], 0.0), 0);
    }

    #[test]
    fn a_stray_interest_does_not_take_places_from_the_main_taste() {
        // Below 20% of the mass B is a stray and gets nothing, even fully balanced.
        assert_eq!(places_for_b([0.9, 0.1], 1.0), 0);
        // At 30% it is a taste: floor(1.0 * 10 * 0.3) = 3 places.
        assert_eq!(places_for_b([0.7, 0.3], 1.0), 3);
    }

    #[test]
    fn diversity_prefers_a_different_item() {
        let vectors = vec![
            Some(unit(&[1.0, 0.0])),
            Some(unit(&[1.0, 0.01])),
            Some(unit(&[0.0, 1.0])),
        ];
        let cat = Catalog {
            vectors: &vectors,
            popularity: &[1.0, 0.9, 0.5],
            freshness: &[0.0; 3],
            tie_order: None,
        };
        let user = UserSignals::default();
        let w = RankWeights {
            popularity: 1.0,
            diversity: 0.0,
            ..RankWeights::default()
        };
        let plain: Vec<usize> = rank(&cat, &user, |_| true, 2, &w)
            .iter()
            .map(|s| s.item)
            .collect();
        assert_eq!(plain, vec![0, 1]);
        let diverse: Vec<usize> = rank(
            &cat,
            &user,
            |_| true,
            2,
            &RankWeights {
                diversity: 0.5,
                ..w
            },
        )
        .iter()
        .map(|s| s.item)
        .collect();
        assert_eq!(diverse, vec![0, 2], "the near-duplicate gives way");
    }

    #[test]
    fn equal_scores_follow_the_tie_order() {
        let vectors: Vec<Option<Vec<f32>>> = vec![Some(vec![1.0, 0.0]); 4];
        let zeros = vec![0.0; 4];
        let user = UserSignals {
            interests: vec![(vec![1.0, 0.0], 1.0)],
            covisit: HashMap::new(),
            covisit_max: None,
        };
        let w = RankWeights::default();
        let order = |tie_order: Option<&[u64]>| {
            let cat = Catalog {
                vectors: &vectors,
                popularity: &zeros,
                freshness: &zeros,
                tie_order,
            };
            rank(&cat, &user, |_| true, 3, &w)
                .iter()
                .map(|s| s.item)
                .collect::<Vec<_>>()
        };
        assert_eq!(order(None), vec![0, 1, 2], "live: the lower index first");
        assert_eq!(order(Some(&[40, 30, 20, 10])), vec![3, 2, 1]);
        assert_eq!(order(Some(&[5, 1, 9, 3])), vec![1, 3, 0]);
    }
}
