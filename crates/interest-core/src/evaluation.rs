//! Offline evaluation with the same code paths as the live system: interest
//! states (`interest_state`), co-visitation (`covisit`) and the fused
//! ranking (`ranking`), next to popularity, item-kNN and sequential
//! co-visitation baselines, each with standard errors.
//!
//! Protocols (`Protocol`), over each user's events in time order (ties keep
//! table order):
//! - leave-last-out: the event at position len - holdout is the target, the
//!   events before it are replayed (holdout = 2 gives a validation split that
//!   never sees the test events). Other users' later events are replayed too.
//! - time cut: the events before a global time T (a quantile of all event
//!   times) are replayed and the ranking is asked at T; each user with events
//!   before T is tested on their first event at or after T. Nothing from
//!   after T leaks into links or counts (Ji et al., TOIS 2023).
//!
//! Every item of the catalog is ranked; items the user already has are
//! excluded.

use crate::candidates;
use crate::covisit::{self, CovisitParams, ItemGraph};
use crate::interest_state::{InterestParams, InterestState};
use crate::interrupts;
use crate::ivf::{self, memory_index::MemoryIndex, metric::Metric};
use crate::metrics::{self, Metrics, MetricsAccumulator};
use crate::ranking::{self, Catalog, RankWeights, UserSignals};
use crate::signals::{freshness_score, popularity_scores};
use std::collections::{HashMap, HashSet};

#[derive(Debug, Clone, Copy)]
pub struct EvalEvent {
    pub item: usize,
    pub t: f64,
    pub weight: f64,
}

/// How the events are split into what is replayed and what is tested.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Protocol {
    LeaveLastOut,
    /// The cut is this quantile of all event times (0 < quantile < 1).
    TimeCut {
        quantile: f64,
    },
}

/// The time cut's default quantile: the last 20% of the time line is tested.
pub const DEFAULT_TIME_CUT: f64 = 0.8;

#[derive(Debug, Clone, Copy)]
pub struct EvalConfig {
    pub k: usize,
    pub protocol: Protocol,
    /// Leave-last-out: which event from the end is the target.
    pub holdout: usize,
    pub weights: RankWeights,
    pub interest: InterestParams,
    pub covisit: CovisitParams,
    pub freshness_half_life_secs: f64,
    /// Also score the ablations (fused ranking without each signal).
    pub ablations: bool,
    /// How many candidates of each source the candidate path takes.
    pub candidates: candidates::CandidateLimits,
}

/// About this share of the embedded items is made new by the new-item protocol, by default.
pub const NEW_ITEMS_SHARE: f64 = 0.1;

/// Item-kNN needs an items x items matrix; above this catalog size it is skipped.
pub const ITEM_KNN_MAX_ITEMS: usize = 20_000;

/// The shared model of one replay, built exactly as the triggers build it:
/// co-visitation graph, decayed counts, popularity, freshness, and each
/// replayed user's recent items and interest state.
struct Model {
    now: f64,
    stats: HashMap<usize, covisit::ItemStats<usize>>,
    counts: Vec<f64>,
    popularity: Vec<f64>,
    freshness: Vec<f64>,
    user_recent: Vec<Vec<usize>>,
    states: Vec<Option<InterestState>>,
}

impl Model {
    /// `now`: when the ranking is asked (None: the last replayed event).
    fn build(
        histories: &[&[EvalEvent]],
        vectors: &[Option<Vec<f32>>],
        cfg: &EvalConfig,
        now: Option<f64>,
    ) -> Model {
        let n_items = vectors.len();
        let dims = vectors
            .iter()
            .flatten()
            .map(|v| v.len())
            .next()
            .unwrap_or(0);
        let now = now.unwrap_or_else(|| {
            histories
                .iter()
                .flat_map(|h| h.iter().map(|e| e.t))
                .fold(f64::NEG_INFINITY, f64::max)
        });
        let center = catalog_center(vectors);
        let mut graph: ItemGraph<usize> = ItemGraph::default();
        let mut user_recent = Vec::with_capacity(histories.len());
        let mut states = Vec::with_capacity(histories.len());
        for history in histories {
            interrupts::check();
            let (mut recent, mut times) = (Vec::new(), Vec::new());
            let mut state: Option<InterestState> = None;
            for e in history.iter() {
                if e.weight == 0.0 {
                    continue;
                }
                graph.observe(&mut recent, &mut times, &e.item, e.t, &cfg.covisit);
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
        let recent: Vec<f64> = (0..n_items)
            .map(|i| {
                stats
                    .get(&i)
                    .map_or(0.0, |s| s.recent_at(now, &cfg.covisit))
            })
            .collect();
        let popularity = popularity_scores(&recent, None);
        let freshness = (0..n_items)
            .map(|i| {
                freshness_score(
                    stats.get(&i).map(|s| s.first_seen),
                    now,
                    cfg.freshness_half_life_secs,
                )
            })
            .collect();
        Model {
            now,
            stats,
            counts,
            popularity,
            freshness,
            user_recent,
            states,
        }
    }

    fn catalog<'a>(
        &'a self,
        vectors: &'a [Option<Vec<f32>>],
        tie_order: Option<&'a [u64]>,
    ) -> Catalog<'a> {
        Catalog {
            vectors,
            popularity: &self.popularity,
            freshness: &self.freshness,
            tie_order,
        }
    }

    /// What recommend() knows about replayed user `u`.
    fn signals(&self, u: usize, cfg: &EvalConfig) -> UserSignals {
        let now = self.now;
        UserSignals {
            interests: self.states[u]
                .as_ref()
                .map_or_else(Vec::new, |s| s.interests_at(now, &cfg.interest)),
            covisit: covisit::covisit_scores(
                &self.user_recent[u],
                |i| self.recent_stats(i, cfg),
                |j| self.counts[*j],
                &cfg.covisit,
            )
            .into_iter()
            .map(|(j, parts)| (j, parts.iter().map(|c| c.value).sum()))
            .collect(),
            covisit_max: None,
        }
    }

    /// What recommend() ranks user `u`'s linked items by when it gathers
    /// candidates (`covisit::link_strengths`).
    fn link_strengths(&self, u: usize, cfg: &EvalConfig) -> HashMap<usize, f64> {
        covisit::link_strengths(
            &self.user_recent[u],
            |i| self.recent_stats(i, cfg),
            &cfg.covisit,
        )
    }

    /// A recent item's decayed count and links at the replay's clock.
    fn recent_stats(&self, i: &usize, cfg: &EvalConfig) -> Option<(f64, Vec<(usize, f64)>)> {
        self.stats.get(i).map(|s| {
            (
                s.count_at(self.now, &cfg.covisit),
                s.links_at(self.now, &cfg.covisit)
                    .map(|(&j, w)| (j, w))
                    .collect(),
            )
        })
    }
}

/// recommend() and, with `cfg.ablations`, its ablations: each without one signal.
fn variants(cfg: &EvalConfig) -> Vec<(&'static str, RankWeights)> {
    let w = cfg.weights;
    let mut v = vec![("recommend", w)];
    if cfg.ablations {
        v.push((
            "recommend without content",
            RankWeights { content: 0.0, ..w },
        ));
        v.push((
            "recommend without co-visitation",
            RankWeights { covisit: 0.0, ..w },
        ));
        v.push((
            "recommend without popularity",
            RankWeights {
                popularity: 0.0,
                ..w
            },
        ));
    }
    v
}

/// What one protocol replays and tests: every replayed history, the tests
/// as (history index, target item), and when the ranking is asked.
struct Split<'a> {
    histories: Vec<&'a [EvalEvent]>,
    tests: Vec<(usize, usize)>,
    now: Option<f64>,
}

fn split<'a>(users: &'a [Vec<EvalEvent>], cfg: &EvalConfig) -> Split<'a> {
    match cfg.protocol {
        Protocol::LeaveLastOut => {
            let mut histories = Vec::new();
            let mut tests = Vec::new();
            for evs in users.iter().filter(|evs| evs.len() > cfg.holdout) {
                let at = evs.len() - cfg.holdout;
                tests.push((histories.len(), evs[at].item));
                histories.push(&evs[..at]);
            }
            Split {
                histories,
                tests,
                now: None,
            }
        }
        Protocol::TimeCut { quantile } => {
            let cut = time_quantile(users, quantile);
            let mut histories = Vec::new();
            let mut tests = Vec::new();
            for evs in users {
                let before = evs.iter().take_while(|e| e.t < cut).count();
                if before == 0 {
                    continue;
                }
                if before < evs.len() {
                    tests.push((histories.len(), evs[before].item));
                }
                histories.push(&evs[..before]);
            }
            Split {
                histories,
                tests,
                now: Some(cut),
            }
        }
    }
}

/// The `quantile` of all event times (nearest rank).
pub fn time_quantile(users: &[Vec<EvalEvent>], quantile: f64) -> f64 {
    let mut times: Vec<f64> = users.iter().flatten().map(|e| e.t).collect();
    if times.is_empty() {
        return 0.0;
    }
    times.sort_by(f64::total_cmp);
    let at = ((times.len() - 1) as f64 * quantile.clamp(0.0, 1.0)).round() as usize;
    times[at]
}

/// recommend() over the full catalog under `cfg.protocol`, with its
/// ablations and the baselines; then (when `new_items` marks any item) the
/// new-item protocol of `evaluate_new_items`.
pub fn evaluate(
    users: &[Vec<EvalEvent>],
    vectors: &[Option<Vec<f32>>],
    new_items: &NewItems,
    cfg: &EvalConfig,
) -> Vec<(String, Metrics)> {
    let n_items = vectors.len();
    let split = split(users, cfg);
    let model = Model::build(&split.histories, vectors, cfg, split.now);
    let catalog = model.catalog(vectors, None);
    let mut raw_counts = vec![0.0f64; n_items];
    for e in split
        .histories
        .iter()
        .flat_map(|h| h.iter())
        .filter(|e| e.weight != 0.0)
    {
        raw_counts[e.item] += 1.0;
    }

    let variants = variants(cfg);
    let mut acc: Vec<MetricsAccumulator> = variants
        .iter()
        .map(|_| MetricsAccumulator::new(cfg.k, n_items))
        .collect();
    let mut pop_acc = MetricsAccumulator::new(cfg.k, n_items);
    let knn = (n_items <= ITEM_KNN_MAX_ITEMS).then(|| ItemKnn::build(&split.histories, n_items));
    let mut knn_acc = MetricsAccumulator::new(cfg.k, n_items);
    let sequential = SequentialCounts::build(&split.histories, n_items);
    let mut seq_acc = MetricsAccumulator::new(cfg.k, n_items);

    // With the ablations, recommend() as large catalogs run it: ranked over
    // the candidates only (content neighbours from the vector index,
    // co-visitation targets, trending items).
    let candidate_path = cfg
        .ablations
        .then(|| CandidatePath::build(vectors, &model.popularity, cfg.candidates));
    let mut candidate_acc = MetricsAccumulator::new(cfg.k, n_items);

    for &(u, target) in &split.tests {
        interrupts::check();
        let train = split.histories[u];
        let seen: HashSet<usize> = train.iter().map(|e| e.item).collect();
        let mut signals = model.signals(u, cfg);
        for (a, (_, weights)) in acc.iter_mut().zip(&variants) {
            let list: Vec<usize> =
                ranking::rank(&catalog, &signals, |i| !seen.contains(&i), cfg.k, weights)
                    .iter()
                    .map(|s| s.item)
                    .collect();
            a.add(&list, target, vectors);
        }
        if let Some(path) = &candidate_path {
            let strengths = model.link_strengths(u, cfg);
            signals.covisit_max = Some(candidates::covisit_max(
                &signals.covisit,
                &candidates::strongest(&strengths, candidates::COVISIT_SCALE_BASE),
            ));
            let pool: HashSet<usize> = path
                .candidates(&signals, &strengths, cfg.candidates, cfg.k)
                .into_iter()
                .collect();
            let list: Vec<usize> = ranking::rank(
                &catalog,
                &signals,
                |i| pool.contains(&i) && !seen.contains(&i),
                cfg.k,
                &cfg.weights,
            )
            .iter()
            .map(|s| s.item)
            .collect();
            candidate_acc.add(&list, target, vectors);
        }
        pop_acc.add(&top_by(&raw_counts, &seen, cfg.k), target, vectors);
        if let Some(knn) = &knn {
            knn_acc.add(&top_by(&knn.scores(train), &seen, cfg.k), target, vectors);
        }
        seq_acc.add(
            &top_by(&sequential.scores(train), &seen, cfg.k),
            target,
            vectors,
        );
    }
    let mut out: Vec<(String, Metrics)> = variants
        .into_iter()
        .map(|(n, _)| n.to_string())
        .zip(acc.iter().map(|a| a.finish()))
        .collect();
    if candidate_path.is_some() {
        out.insert(1, ("recommend (candidates)".into(), candidate_acc.finish()));
    }
    out.push(("popularity".into(), pop_acc.finish()));
    if knn.is_some() {
        out.push(("item-kNN".into(), knn_acc.finish()));
    }
    out.push(("sequential co-visitation".into(), seq_acc.finish()));
    if new_items.any() {
        out.extend(evaluate_new_items(users, vectors, new_items, cfg));
    }
    out
}

/// The candidate path of recommend() over an in-memory copy of the index.
struct CandidatePath {
    index: Option<MemoryIndex>,
    trending: Vec<usize>,
}

impl CandidatePath {
    fn build(
        vectors: &[Option<Vec<f32>>],
        popularity: &[f64],
        limits: candidates::CandidateLimits,
    ) -> CandidatePath {
        let dims = vectors.iter().flatten().map(|v| v.len()).next();
        let embedded = vectors.iter().flatten().count();
        let index = dims.map(|dims| {
            MemoryIndex::build(
                Metric::Cosine,
                dims,
                vectors,
                ivf::default_lists(embedded),
                1,
                1,
            )
        });
        CandidatePath {
            index,
            trending: candidates::trending(popularity, limits.trending),
        }
    }

    fn candidates(
        &self,
        signals: &UserSignals,
        link_strengths: &HashMap<usize, f64>,
        limits: candidates::CandidateLimits,
        k: usize,
    ) -> Vec<usize> {
        candidates::gather(
            &signals.interests,
            link_strengths,
            &self.trending,
            |v, n| match &self.index {
                Some(index) => index.search_estimates(v, n, candidates::CANDIDATE_PROBES),
                None => Vec::new(),
            },
            limits,
            k,
        )
    }
}

/// recommend() with each of `weights` in turn over one replay of
/// `cfg.protocol` (the model is built once): `each` gets every weight
/// vector's metrics as soon as they are known and returns false to stop
/// early (a time budget, say).
pub fn evaluate_weights(
    users: &[Vec<EvalEvent>],
    vectors: &[Option<Vec<f32>>],
    cfg: &EvalConfig,
    weights: &[RankWeights],
    mut each: impl FnMut(usize, Metrics) -> bool,
) {
    let n_items = vectors.len();
    let split = split(users, cfg);
    let model = Model::build(&split.histories, vectors, cfg, split.now);
    let catalog = model.catalog(vectors, None);
    for (w, weights) in weights.iter().enumerate() {
        let mut acc = MetricsAccumulator::new(cfg.k, n_items);
        for &(u, target) in &split.tests {
            interrupts::check();
            let seen: HashSet<usize> = split.histories[u].iter().map(|e| e.item).collect();
            let signals = model.signals(u, cfg);
            let list: Vec<usize> =
                ranking::rank(&catalog, &signals, |i| !seen.contains(&i), cfg.k, weights)
                    .iter()
                    .map(|s| s.item)
                    .collect();
            acc.add(&list, target, vectors);
        }
        if !each(w, acc.finish()) {
            return;
        }
    }
}

/// A fixed 64-bit hash of an item key (FNV-1a, then splitmix64's finaliser so
/// that near keys such as "1" and "2" spread out). The new-item protocol picks
/// and orders items by it, so the SQL function and the offline tuner agree
/// whatever order their catalogs are in.
pub fn key_hash(key: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    mix(h)
}

fn mix(mut h: u64) -> u64 {
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The items the new-item protocol makes new, by catalog index.
#[derive(Debug, Clone, Default)]
pub struct NewItems {
    /// key_hash of each item's key.
    pub hashes: Vec<u64>,
    pub is_new: Vec<bool>,
}

impl NewItems {
    /// The `share` of the items whose key hash falls lowest (0 = none).
    pub fn from_keys<'a>(keys: impl IntoIterator<Item = &'a str>, share: f64) -> NewItems {
        let hashes: Vec<u64> = keys.into_iter().map(key_hash).collect();
        let is_new = hashes
            .iter()
            .map(|h| ((h >> 11) as f64 / (1u64 << 53) as f64) < share)
            .collect();
        NewItems { hashes, is_new }
    }

    fn any(&self) -> bool {
        self.is_new.iter().any(|&n| n)
    }

    /// Pseudo-random tie-break keys for the new items (others are left
    /// alone: they are never candidates), one draw per seed.
    fn tie_keys(&self, seed: u64, keys: &mut [u64]) {
        for (i, key) in keys.iter_mut().enumerate() {
            if self.is_new[i] {
                *key = mix(self.hashes[i] ^ seed);
            }
        }
    }
}

/// New-item protocol: how well recommend() ranks items nobody has an event
/// on yet, which only content can rank. The items marked in `new_items` (and
/// embedded: an item without a vector is not in a live catalog) lose all
/// their events. Each user is tested on the holdout-th from the end of the
/// new items they have (each counted at its first event), with their events
/// before it replayed, if at least one of those is of an old item; the
/// shared model holds every user's replayed events (untested users: all
/// their old events). recommend() ranks the new items only (a "new arrivals
/// for you" list: `filter =>` items without events), excluding the new items
/// the user had before the target; later ones are not known yet and stay
/// candidates. Without content every new item scores the same (no
/// co-visitation, popularity or freshness yet), so the ablation is a random
/// order: "new items: random" is its expected HR and NDCG (coverage and
/// diversity of one shuffle). Coverage here is the share of the new items.
fn evaluate_new_items(
    users: &[Vec<EvalEvent>],
    vectors: &[Option<Vec<f32>>],
    new_items: &NewItems,
    cfg: &EvalConfig,
) -> Vec<(String, Metrics)> {
    let n_items = vectors.len();
    debug_assert_eq!(new_items.is_new.len(), n_items);
    let is_new: Vec<bool> = (0..n_items)
        .map(|i| new_items.is_new.get(i).copied().unwrap_or(false) && vectors[i].is_some())
        .collect();
    let new_list: Vec<usize> = (0..n_items).filter(|&i| is_new[i]).collect();
    let (histories, tests) = plan_new_item_tests(users, |i| is_new[i], cfg.holdout);
    let refs: Vec<&[EvalEvent]> = histories.iter().map(|h| h.as_slice()).collect();
    let model = Model::build(&refs, vectors, cfg, None);
    let mut rng = Lcg(0x5eed);
    // Items with equal embeddings (films embedded by their genres, say) tie;
    // by catalog order they would inherit whatever that order means (low ids
    // are often the popular items). Each user's list is
    // ranked under several tie orders of its own and its hit and NDCG averaged.
    let mut tie_keys = vec![0u64; n_items];
    let mut acc = MetricsAccumulator::new(cfg.k, n_items);
    let mut random_acc = MetricsAccumulator::new(cfg.k, n_items);
    for (t, test) in tests.iter().enumerate() {
        interrupts::check();
        let signals = model.signals(test.user, cfg);
        let eligible = |i: usize| is_new[i] && !test.seen.contains(&i);
        let (mut hit, mut ndcg, mut first) = (0.0, 0.0, Vec::new());
        for rep in 0..NEW_ITEM_TIE_ORDERS {
            new_items.tie_keys(mix((t * NEW_ITEM_TIE_ORDERS + rep) as u64), &mut tie_keys);
            let catalog = model.catalog(vectors, Some(&tie_keys));
            let list: Vec<usize> = ranking::rank(&catalog, &signals, eligible, cfg.k, &cfg.weights)
                .iter()
                .map(|s| s.item)
                .collect();
            hit += metrics::hit(&list, test.target) / NEW_ITEM_TIE_ORDERS as f64;
            ndcg += metrics::ndcg(&list, test.target) / NEW_ITEM_TIE_ORDERS as f64;
            if first.is_empty() {
                first = list;
            }
        }
        acc.add_with(&first, hit, ndcg, vectors);
        // A uniform random list of k from n candidates holds the target with
        // probability k/n, at each rank with probability 1/n.
        let mut pool: Vec<usize> = new_list.iter().copied().filter(|&i| eligible(i)).collect();
        pool.sort_by_key(|&i| tie_keys[i]); // independent of catalog order
        let n = pool.len() as f64;
        let places = cfg.k.min(pool.len());
        let expected_ndcg = (0..places)
            .map(|r| 1.0 / ((r + 2) as f64).log2())
            .sum::<f64>()
            / n;
        rng.shuffle(&mut pool, places);
        pool.truncate(places);
        random_acc.add_with(&pool, places as f64 / n, expected_ndcg, vectors);
    }
    let of_new = |mut m: Metrics| {
        m.coverage *= n_items as f64 / new_list.len().max(1) as f64;
        m
    };
    vec![
        ("new items: recommend".into(), of_new(acc.finish())),
        ("new items: random".into(), of_new(random_acc.finish())),
    ]
}

/// The new-item protocol's replayed histories (one per user, new items
/// removed) and its tests; see `evaluate_new_items`.
fn plan_new_item_tests(
    users: &[Vec<EvalEvent>],
    is_new: impl Fn(usize) -> bool,
    holdout: usize,
) -> (Vec<Vec<EvalEvent>>, Vec<NewItemTest>) {
    let mut histories: Vec<Vec<EvalEvent>> = Vec::with_capacity(users.len());
    let mut tests: Vec<NewItemTest> = Vec::new();
    for evs in users {
        interrupts::check();
        let old = |e: &&EvalEvent| !is_new(e.item);
        let mut firsts = HashSet::new();
        let positions: Vec<usize> = (0..evs.len())
            .filter(|&p| is_new(evs[p].item) && firsts.insert(evs[p].item))
            .collect();
        let at = positions
            .len()
            .checked_sub(holdout)
            .map(|i| positions[i])
            .filter(|&at| evs[..at].iter().any(|e| !is_new(e.item) && e.weight != 0.0));
        let Some(at) = at else {
            histories.push(evs.iter().filter(old).copied().collect());
            continue;
        };
        tests.push(NewItemTest {
            user: histories.len(),
            target: evs[at].item,
            seen: positions
                .iter()
                .take_while(|&&p| p < at)
                .map(|&p| evs[p].item)
                .collect(),
        });
        histories.push(evs[..at].iter().filter(old).copied().collect());
    }
    (histories, tests)
}

/// One user's test in the new-item protocol.
struct NewItemTest {
    /// Index into the replayed histories.
    user: usize,
    target: usize,
    /// New items the user had before the target (the target is never one:
    /// each new item counts at its first event).
    seen: HashSet<usize>,
}

/// Random tie orders per list in the new-item protocol.
const NEW_ITEM_TIE_ORDERS: usize = 8;

/// A 64-bit linear congruential generator (Knuth's MMIX constants): enough
/// for reproducible shuffles, no dependency.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) as usize) % n
    }

    /// Partial Fisher-Yates: the first `places` of `v` become a uniform
    /// random selection, in random order.
    fn shuffle<T>(&mut self, v: &mut [T], places: usize) {
        for p in 0..places.min(v.len()) {
            let q = p + self.below(v.len() - p);
            v.swap(p, q);
        }
    }
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
    fn build(histories: &[&[EvalEvent]], n: usize) -> ItemKnn {
        let mut co = vec![0.0f32; n * n];
        for train in histories {
            interrupts::check();
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
            interrupts::check();
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

/// The sequential co-visitation baseline: plain counts, no decay, of "item
/// j came within `SEQUENTIAL_WINDOW` steps after item i" over the replayed
/// sequences; a user's score for j sums, over their last
/// `SEQUENTIAL_RECENT` items i at recency rank r, `SEQUENTIAL_DECAY^r *
/// pairs(i, j) / sqrt(count_i * count_j)`.
struct SequentialCounts {
    pairs: Vec<HashMap<usize, f64>>,
    counts: Vec<f64>,
}

const SEQUENTIAL_WINDOW: usize = 5;
const SEQUENTIAL_RECENT: usize = 10;
const SEQUENTIAL_DECAY: f64 = 0.8;

impl SequentialCounts {
    fn build(histories: &[&[EvalEvent]], n: usize) -> SequentialCounts {
        let mut pairs: Vec<HashMap<usize, f64>> = vec![HashMap::new(); n];
        let mut counts = vec![0.0; n];
        for h in histories {
            interrupts::check();
            let items: Vec<usize> = positive_items(h).collect();
            for (p, &i) in items.iter().enumerate() {
                counts[i] += 1.0;
                for &j in items[p + 1..].iter().take(SEQUENTIAL_WINDOW) {
                    if j != i {
                        *pairs[i].entry(j).or_default() += 1.0;
                    }
                }
            }
        }
        SequentialCounts { pairs, counts }
    }

    fn scores(&self, train: &[EvalEvent]) -> Vec<f64> {
        let mut s = vec![0.0f64; self.counts.len()];
        let items: Vec<usize> = positive_items(train).collect();
        for (rank, &i) in items.iter().rev().take(SEQUENTIAL_RECENT).enumerate() {
            let r = SEQUENTIAL_DECAY.powi(rank as i32);
            for (&j, &c) in &self.pairs[i] {
                s[j] += r * c / (self.counts[i] * self.counts[j]).sqrt();
            }
        }
        s
    }
}

/// The items of a history's events with a positive weight, in order.
fn positive_items(h: &[EvalEvent]) -> impl Iterator<Item = usize> + '_ {
    h.iter().filter(|e| e.weight > 0.0).map(|e| e.item)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time_test_config() -> EvalConfig {
        EvalConfig {
            k: 10,
            protocol: Protocol::LeaveLastOut,
            holdout: 1,
            weights: RankWeights::default(),
            interest: InterestParams::default(),
            covisit: CovisitParams::default(),
            freshness_half_life_secs: 7.0 * 86_400.0,
            ablations: false,
            candidates: crate::candidates::DEFAULT_LIMITS,
        }
    }

    /// Every user's top 10 from a model of `histories` asked at `asked`
    /// (through the live system's clock rule).
    fn lists_at(
        histories: &[Vec<EvalEvent>],
        vectors: &[Option<Vec<f32>>],
        asked: f64,
    ) -> Vec<Vec<usize>> {
        let cfg = time_test_config();
        let refs: Vec<&[EvalEvent]> = histories.iter().map(|h| h.as_slice()).collect();
        let last = histories
            .iter()
            .flatten()
            .map(|e| e.t)
            .fold(None, |m: Option<f64>, t| Some(m.map_or(t, |m| m.max(t))));
        let model = Model::build(
            &refs,
            vectors,
            &cfg,
            Some(crate::clock::ranking_clock(asked, last)),
        );
        let catalog = model.catalog(vectors, None);
        (0..histories.len())
            .map(|u| {
                let seen: HashSet<usize> = histories[u].iter().map(|e| e.item).collect();
                ranking::rank(
                    &catalog,
                    &model.signals(u, &cfg),
                    |i| !seen.contains(&i),
                    cfg.k,
                    &cfg.weights,
                )
                .iter()
                .map(|s| s.item)
                .collect()
            })
            .collect()
    }

    /// Scores depend only on relative times: shifting every event and the
    /// clock by the same amount (up to several years) leaves every list
    /// unchanged, and so does a quiet period after the last event. Random
    /// histories over several seeds; whole seconds keep the shifts exact.
    #[test]
    fn lists_are_invariant_to_time_shifts_and_quiet_periods() {
        for seed in 1..=6u64 {
            let mut rng = Lcg(seed);
            let n_items = 60;
            let vectors: Vec<Option<Vec<f32>>> = (0..n_items)
                .map(|i| {
                    (i % 7 != 0).then(|| {
                        (0..8)
                            .map(|_| rng.below(1000) as f32 / 1000.0 - 0.5)
                            .collect()
                    })
                })
                .collect();
            let base = 1_500_000_000.0 + rng.below(1_000_000) as f64;
            let histories: Vec<Vec<EvalEvent>> = (0..40)
                .map(|_| {
                    let mut t = base + rng.below(400 * 86_400) as f64;
                    (0..3 + rng.below(25))
                        .map(|_| {
                            // bursts with tied times, and gaps of up to a year
                            t += [0.0, 60.0, 86_400.0 * rng.below(40) as f64, 86_400.0 * 365.0]
                                [rng.below(4)];
                            EvalEvent {
                                item: rng.below(n_items),
                                t,
                                weight: [1.0, 1.0, 2.0, -1.0][rng.below(4)],
                            }
                        })
                        .collect()
                })
                .collect();
            let last = histories
                .iter()
                .flatten()
                .map(|e| e.t)
                .fold(f64::MIN, f64::max);
            let reference = lists_at(&histories, &vectors, last);
            assert_eq!(
                lists_at(&histories, &vectors, last + 3.0 * 365.0 * 86_400.0),
                reference,
                "seed {seed}: a quiet period"
            );
            for shift in [
                1.0,
                86_400.0,
                400.0 * 86_400.0,
                5.0 * 365.0 * 86_400.0 + 17.0,
            ] {
                let shifted: Vec<Vec<EvalEvent>> = histories
                    .iter()
                    .map(|h| {
                        h.iter()
                            .map(|e| EvalEvent {
                                t: e.t + shift,
                                ..*e
                            })
                            .collect()
                    })
                    .collect();
                assert_eq!(
                    lists_at(&shifted, &vectors, last + shift),
                    reference,
                    "seed {seed}: shift {shift}"
                );
            }
        }
    }

    /// The time cut replays only what came before it: events after the cut
    /// never reach the model, and each user is tested on their first event
    /// at or after it.
    #[test]
    fn time_cut_replays_only_the_past() {
        let ev = |item, t| EvalEvent {
            item,
            t,
            weight: 1.0,
        };
        let users = vec![
            vec![ev(0, 1.0), ev(1, 2.0), ev(2, 8.0), ev(3, 9.0)],
            vec![ev(4, 3.0), ev(5, 4.0)],
            vec![ev(6, 7.0), ev(7, 10.0)],
        ];
        let cfg = EvalConfig {
            protocol: Protocol::TimeCut { quantile: 0.5 },
            ..time_test_config()
        };
        // times 1,2,3,4,7,8,9,10: the 0.5 quantile (nearest rank) is 7
        assert_eq!(time_quantile(&users, 0.5), 7.0);
        let s = split(&users, &cfg);
        assert_eq!(s.now, Some(7.0));
        assert_eq!(s.histories.len(), 2, "user 3 has nothing before the cut");
        assert_eq!(s.tests, vec![(0, 2)], "user 2 has nothing after it");
        assert!(s.histories.iter().flat_map(|h| h.iter()).all(|e| e.t < 7.0));
    }

    /// The sequential baseline scores what followed the user's last items.
    #[test]
    fn sequential_baseline_follows_sequences() {
        let ev = |item| EvalEvent {
            item,
            t: 0.0,
            weight: 1.0,
        };
        let a: Vec<EvalEvent> = vec![ev(0), ev(1), ev(2)];
        let b: Vec<EvalEvent> = vec![ev(0), ev(1), ev(3)];
        let c: Vec<EvalEvent> = vec![ev(4), ev(0)];
        let seq = SequentialCounts::build(&[&a, &b, &c], 5);
        let s = seq.scores(&[ev(0)]);
        // 0 was followed by 1 twice (count 0: 3, count 1: 2) and by 2, 3 once each
        assert!((s[1] - 2.0 / 6f64.sqrt()).abs() < 1e-12);
        assert!((s[2] - 1.0 / 3f64.sqrt()).abs() < 1e-12);
        assert_eq!(s[4], 0.0, "4 came before 0, never after");
    }

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
            protocol: Protocol::LeaveLastOut,
            holdout: 1,
            weights: RankWeights::default(),
            interest: InterestParams::default(),
            covisit: CovisitParams::default(),
            freshness_half_life_secs: 86_400.0,
            ablations: true,
            candidates: crate::candidates::DEFAULT_LIMITS,
        };
        let r: HashMap<String, Metrics> = evaluate(&users, &vectors, &NewItems::default(), &cfg)
            .into_iter()
            .collect();
        assert_eq!(r["recommend"].users, 200);
        assert!(r["recommend"].hit_rate > 0.95, "{:?}", r["recommend"]);
        assert!(r["popularity"].hit_rate < 0.5, "{:?}", r["popularity"]);
        assert!(r["recommend without co-visitation"].hit_rate < r["recommend"].hit_rate);
        assert!(r.contains_key("item-kNN"));
    }

    /// Two kinds of items (vectors x or y); each user only ever picks
    /// one kind. On new items (no events) only content can tell the kinds
    /// apart: recommend finds the user's kind, a random order does not.
    #[test]
    fn content_ranks_new_items_random_cannot() {
        let n_items = 200;
        let vectors: Vec<Option<Vec<f32>>> = (0..n_items)
            .map(|i| {
                Some(if i % 2 == 0 {
                    vec![1.0, 0.0]
                } else {
                    vec![0.0, 1.0]
                })
            })
            .collect();
        let keys: Vec<String> = (0..n_items).map(|i| i.to_string()).collect();
        let new_items = NewItems::from_keys(keys.iter().map(|k| k.as_str()), 0.2);
        let mut users = Vec::new();
        for u in 0..100usize {
            users.push(
                (0..12)
                    .map(|p| EvalEvent {
                        item: (u * 13 + p * 6) % (n_items / 2) * 2 + u % 2,
                        t: (u * 100 + p) as f64,
                        weight: 1.0,
                    })
                    .collect::<Vec<_>>(),
            );
        }
        let cfg = EvalConfig {
            k: 5,
            protocol: Protocol::LeaveLastOut,
            holdout: 1,
            weights: RankWeights::default(),
            interest: InterestParams::default(),
            covisit: CovisitParams::default(),
            freshness_half_life_secs: 86_400.0,
            ablations: false,
            candidates: crate::candidates::DEFAULT_LIMITS,
        };
        let r: HashMap<String, Metrics> = evaluate(&users, &vectors, &new_items, &cfg)
            .into_iter()
            .collect();
        let (rec, random) = (&r["new items: recommend"], &r["new items: random"]);
        assert!(rec.users > 50, "most users have a new item: {rec:?}");
        assert_eq!(rec.users, random.users);
        // About 40 new items, half of each kind: knowing the kind doubles the odds.
        assert!(
            rec.hit_rate > 1.5 * random.hit_rate,
            "{rec:?} vs {random:?}"
        );
        assert!(r.contains_key("recommend") && !r.contains_key("recommend without content"));
        // Without any new item the protocol is skipped.
        let r = evaluate(&users, &vectors, &NewItems::default(), &cfg);
        assert!(r.iter().all(|(m, _)| !m.starts_with("new items")));
    }

    #[test]
    fn new_items_are_a_fixed_share_picked_by_key() {
        let keys: Vec<String> = (0..10_000).map(|i| i.to_string()).collect();
        let pick = |share| NewItems::from_keys(keys.iter().map(|k| k.as_str()), share);
        let tenth = pick(0.1);
        let picked = tenth.is_new.iter().filter(|&&n| n).count();
        assert!((900..1100).contains(&picked), "{picked}");
        let twentieth = pick(0.05);
        assert!(
            (0..keys.len()).all(|i| !twentieth.is_new[i] || tenth.is_new[i]),
            "a smaller share picks a subset"
        );
        assert!(!pick(0.0).any());
        // Picks and tie keys follow the keys, not the catalog order.
        let reversed: Vec<&str> = keys.iter().rev().map(|k| k.as_str()).collect();
        let rev = NewItems::from_keys(reversed, 0.1);
        let (mut o, mut ro, mut o2) = (
            vec![0; keys.len()],
            vec![0; keys.len()],
            vec![0; keys.len()],
        );
        tenth.tie_keys(3, &mut o);
        rev.tie_keys(3, &mut ro);
        tenth.tie_keys(4, &mut o2);
        for i in 0..keys.len() {
            assert_eq!(tenth.is_new[i], rev.is_new[keys.len() - 1 - i]);
            assert_eq!(o[i], ro[keys.len() - 1 - i]);
        }
        assert_ne!(o, o2, "another seed, another order");
    }

    #[test]
    fn new_item_tests_use_no_future_and_count_each_item_once() {
        let ev = |item: usize, t: f64| EvalEvent {
            item,
            t,
            weight: 1.0,
        };
        // New items: 10, 11, 12. Old: 1, 2, 3.
        let is_new = |i: usize| i >= 10;
        let users = vec![
            // 11 is repeated: counted at its first event.
            vec![
                ev(1, 1.0),
                ev(10, 2.0),
                ev(2, 3.0),
                ev(11, 4.0),
                ev(3, 5.0),
                ev(12, 6.0),
                ev(11, 7.0),
            ],
            // Only new items before the target: nothing to go on, not tested.
            vec![ev(10, 1.0), ev(11, 2.0), ev(1, 3.0)],
            // No new item: replayed in full, not tested.
            vec![ev(1, 1.0), ev(2, 2.0)],
        ];
        let (histories, tests) = plan_new_item_tests(&users, is_new, 1);
        let items = |h: &[EvalEvent]| h.iter().map(|e| e.item).collect::<Vec<_>>();
        assert_eq!(tests.len(), 1);
        assert_eq!((tests[0].user, tests[0].target), (0, 12));
        assert_eq!(tests[0].seen, HashSet::from([10, 11]));
        assert_eq!(
            items(&histories[0]),
            vec![1, 2, 3],
            "only old events before the target"
        );
        assert_eq!(items(&histories[1]), vec![1]);
        assert_eq!(items(&histories[2]), vec![1, 2]);
        // Validation: the second-to-last new item (11 at t=4); 12 comes later
        // and stays a candidate.
        let (histories, tests) = plan_new_item_tests(&users, is_new, 2);
        assert_eq!(tests[0].target, 11);
        assert_eq!(tests[0].seen, HashSet::from([10]));
        assert_eq!(items(&histories[0]), vec![1, 2]);
        // holdout 3: the target 10 has only old item 1 before it.
        let (_, tests) = plan_new_item_tests(&users, is_new, 3);
        assert_eq!((tests[0].target, tests[0].seen.len()), (10, 0));
        assert!(plan_new_item_tests(&users, is_new, 4).1.is_empty());
    }
}
