//! Leave-last-out offline evaluation with the same code paths as the live
//! system: interest states (`interest_state`), co-visitation (`covisit`) and
//! the fused ranking (`ranking`), next to popularity and item-kNN baselines.
//!
//! Protocol: each user's events in time order (ties keep table order); the
//! event at position len - holdout is the target, the events before it are
//! replayed (holdout = 2 gives a validation split that never sees the test
//! events). Every item of the catalog is ranked; items the user already has
//! are excluded.

use crate::covisit::{self, CovisitParams, ItemGraph};
use crate::interest_state::{InterestParams, InterestState};
use crate::metrics::{Metrics, MetricsAccumulator};
use crate::ranking::{self, Catalog, RankWeights, UserSignals};
use std::collections::HashSet;

#[derive(Debug, Clone, Copy)]
pub struct EvalEvent {
    pub item: usize,
    pub t: f64,
    pub weight: f64,
}

#[derive(Debug, Clone, Copy)]
pub struct EvalConfig {
    pub k: usize,
    pub holdout: usize,
    pub weights: RankWeights,
    pub interest: InterestParams,
    pub covisit: CovisitParams,
    pub freshness_half_life_secs: f64,
    /// Also score the ablations (fused ranking without each signal).
    pub ablations: bool,
}

/// Item-kNN needs an items x items matrix; above this catalog size it is skipped.
pub const ITEM_KNN_MAX_ITEMS: usize = 20_000;

/// Popularity in [0, 1]: log(1 + count) / log(1 + max count).
pub fn popularity_scores(counts: &[f64]) -> Vec<f64> {
    let max = counts.iter().cloned().fold(0.0, f64::max);
    let d = (1.0 + max).ln();
    counts
        .iter()
        .map(|c| {
            if d > 0.0 {
                (1.0 + c.max(0.0)).ln() / d
            } else {
                0.0
            }
        })
        .collect()
}

/// Freshness in [0, 1]: halves every `half_life` since the item first appeared.
pub fn freshness_score(first_seen: Option<f64>, now: f64, half_life: f64) -> f64 {
    match first_seen {
        Some(t) => (-(now - t).max(0.0) / half_life).exp2(),
        None => 0.0,
    }
}

pub fn evaluate(
    users: &[Vec<EvalEvent>],
    vectors: &[Option<Vec<f32>>],
    cfg: &EvalConfig,
) -> Vec<(String, Metrics)> {
    let n_items = vectors.len();
    let dims = vectors
        .iter()
        .flatten()
        .map(|v| v.len())
        .next()
        .unwrap_or(0);
    // Users with enough events, and their training prefix / target.
    let split: Vec<(&[EvalEvent], usize)> = users
        .iter()
        .filter(|evs| evs.len() > cfg.holdout)
        .map(|evs| {
            (
                &evs[..evs.len() - cfg.holdout],
                evs[evs.len() - cfg.holdout].item,
            )
        })
        .collect();
    let now = split
        .iter()
        .flat_map(|(tr, _)| tr.iter().map(|e| e.t))
        .fold(f64::NEG_INFINITY, f64::max);

    let center = catalog_center(vectors);
    // Shared model, built exactly as the triggers build it.
    let mut graph: ItemGraph<usize> = ItemGraph::default();
    let mut user_recent: Vec<Vec<usize>> = Vec::with_capacity(split.len());
    let mut states: Vec<Option<InterestState>> = Vec::with_capacity(split.len());
    let mut raw_counts = vec![0.0f64; n_items];
    for (train, _) in &split {
        let (mut recent, mut times) = (Vec::new(), Vec::new());
        let mut state: Option<InterestState> = None;
        for e in train.iter() {
            if e.weight == 0.0 {
                continue;
            }
            graph.observe(&mut recent, &mut times, &e.item, e.t, &cfg.covisit);
            raw_counts[e.item] += 1.0;
            if let Some(v) = &vectors[e.item] {
                state
                    .get_or_insert_with(|| InterestState::new(dims, e.t))
                    .apply_centered(v, e.weight, e.t, &cfg.interest, center.as_deref());
            }
        }
        user_recent.push(recent);
        states.push(state);
    }
    let stats = graph.finish(&cfg.covisit);
    let counts: Vec<f64> = (0..n_items)
        .map(|i| stats.get(&i).map_or(0.0, |s| s.count_at(now, &cfg.covisit)))
        .collect();
    let popularity = popularity_scores(&counts);
    let freshness: Vec<f64> = (0..n_items)
        .map(|i| {
            freshness_score(
                stats.get(&i).map(|s| s.first_seen),
                now,
                cfg.freshness_half_life_secs,
            )
        })
        .collect();
    let catalog = Catalog {
        vectors,
        popularity: &popularity,
        freshness: &freshness,
    };

    let w = cfg.weights;
    let mut variants: Vec<(String, RankWeights)> = vec![("recommend".into(), w)];
    if cfg.ablations {
        variants.push((
            "recommend without content".into(),
            RankWeights { content: 0.0, ..w },
        ));
        variants.push((
            "recommend without co-visitation".into(),
            RankWeights { covisit: 0.0, ..w },
        ));
        variants.push((
            "recommend without popularity".into(),
            RankWeights {
                popularity: 0.0,
                ..w
            },
        ));
    }
    let mut acc: Vec<MetricsAccumulator> = variants
        .iter()
        .map(|_| MetricsAccumulator::new(cfg.k, n_items))
        .collect();
    let mut pop_acc = MetricsAccumulator::new(cfg.k, n_items);
    let knn = (n_items <= ITEM_KNN_MAX_ITEMS).then(|| ItemKnn::build(&split, n_items));
    let mut knn_acc = MetricsAccumulator::new(cfg.k, n_items);

    for (u, (train, target)) in split.iter().enumerate() {
        let seen: HashSet<usize> = train.iter().map(|e| e.item).collect();
        let signals = UserSignals {
            interests: states[u]
                .as_ref()
                .map_or_else(Vec::new, |s| s.interests_at(now, &cfg.interest)),
            covisit: covisit::covisit_scores(
                &user_recent[u],
                |i| {
                    stats.get(i).map(|s| {
                        (
                            s.count_at(now, &cfg.covisit),
                            links_at(s, now, &cfg.covisit),
                        )
                    })
                },
                |j| counts[*j],
                &cfg.covisit,
            )
            .into_iter()
            .map(|(j, parts)| (j, parts.iter().map(|c| c.value).sum()))
            .collect(),
        };
        for (a, (_, weights)) in acc.iter_mut().zip(&variants) {
            let list: Vec<usize> =
                ranking::rank(&catalog, &signals, |i| !seen.contains(&i), cfg.k, weights)
                    .iter()
                    .map(|s| s.item)
                    .collect();
            a.add(&list, *target, vectors);
        }
        pop_acc.add(&top_by(&raw_counts, &seen, cfg.k), *target, vectors);
        if let Some(knn) = &knn {
            knn_acc.add(&top_by(&knn.scores(train), &seen, cfg.k), *target, vectors);
        }
    }
    let mut out: Vec<(String, Metrics)> = variants
        .into_iter()
        .map(|(n, _)| n)
        .zip(acc.iter().map(|a| a.finish()))
        .collect();
    out.push(("popularity".into(), pop_acc.finish()));
    if knn.is_some() {
        out.push(("item-kNN".into(), knn_acc.finish()));
    }
    out
}

/// The mean of the catalog's vectors (the centre sub-interests cluster around).
pub fn catalog_center(vectors: &[Option<Vec<f32>>]) -> Option<Vec<f32>> {
    let mut sum: Vec<f64> = Vec::new();
    let mut n = 0usize;
    for v in vectors.iter().flatten() {
        if sum.is_empty() {
            sum = vec![0.0; v.len()];
        }
        if v.len() == sum.len() {
            sum.iter_mut().zip(v).for_each(|(s, x)| *s += *x as f64);
            n += 1;
        }
    }
    (n > 0).then(|| sum.iter().map(|s| (s / n as f64) as f32).collect())
}

fn links_at(s: &covisit::ItemStats<usize>, now: f64, p: &CovisitParams) -> Vec<(usize, f64)> {
    let f = s.decay_to(now, p);
    s.links.iter().map(|&(j, w)| (j, w * f)).collect()
}

fn top_by(scores: &[f64], seen: &HashSet<usize>, k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..scores.len()).filter(|i| !seen.contains(i)).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    idx.truncate(k);
    idx
}

/// Item-kNN baseline: cosine similarity of items' user sets; a user's score
/// for j is the sum of similarities between j and the user's items.
struct ItemKnn {
    co: Vec<f32>,
    n: usize,
}

impl ItemKnn {
    fn build(split: &[(&[EvalEvent], usize)], n: usize) -> ItemKnn {
        let mut co = vec![0.0f32; n * n];
        for (train, _) in split {
            let items: Vec<usize> = train
                .iter()
                .map(|e| e.item)
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            for &a in &items {
                for &b in &items {
                    co[a * n + b] += 1.0;
                }
            }
        }
        let diag: Vec<f32> = (0..n).map(|i| co[i * n + i]).collect();
        for a in 0..n {
            for b in 0..n {
                let d = (diag[a] * diag[b]).sqrt();
                co[a * n + b] = if a == b || d == 0.0 {
                    0.0
                } else {
                    co[a * n + b] / d
                };
            }
        }
        ItemKnn { co, n }
    }

    fn scores(&self, train: &[EvalEvent]) -> Vec<f64> {
        let mut s = vec![0.0f64; self.n];
        let items: HashSet<usize> = train.iter().map(|e| e.item).collect();
        for &i in &items {
            let row = &self.co[i * self.n..(i + 1) * self.n];
            s.iter_mut().zip(row).for_each(|(a, b)| *a += *b as f64);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A synthetic world where users walk a chain 0 -> 1 -> 2 -> ...: the
    /// next item is predictable from the last, which co-visitation learns and
    /// popularity cannot.
    #[test]
    fn covisitation_learns_sequences_popularity_does_not() {
        let n_items = 40;
        let mut users = Vec::new();
        for u in 0..200usize {
            let start = (u * 7) % 30;
            let len = 5 + u % 5;
            users.push(
                (0..len)
                    .map(|p| EvalEvent {
                        item: start + p,
                        t: (u * 100 + p) as f64,
                        weight: 1.0,
                    })
                    .collect::<Vec<_>>(),
            );
        }
        let vectors: Vec<Option<Vec<f32>>> = (0..n_items)
            .map(|i| Some(vec![(i as f32 * 0.3).cos(), (i as f32 * 0.3).sin()]))
            .collect();
        let cfg = EvalConfig {
            k: 3,
            holdout: 1,
            weights: RankWeights::default(),
            interest: InterestParams::default(),
            covisit: CovisitParams::default(),
            freshness_half_life_secs: 86_400.0,
            ablations: true,
        };
        let r: HashMap<String, Metrics> = evaluate(&users, &vectors, &cfg).into_iter().collect();
        assert_eq!(r["recommend"].users, 200);
        assert!(r["recommend"].hit_rate > 0.95, "{:?}", r["recommend"]);
        assert!(r["popularity"].hit_rate < 0.5, "{:?}", r["popularity"]);
        assert!(r["recommend without co-visitation"].hit_rate < r["recommend"].hit_rate);
        assert!(r.contains_key("item-kNN"));
    }
}
