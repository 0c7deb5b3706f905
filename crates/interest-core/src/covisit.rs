//! Co-visitation: item-to-item links learned from the order of users' events,
//! plus each item's decayed event count (popularity).
//!
//! An event links the new item with the user's `window` previous items:
//! forward (earlier item -> new item) with weight `1 / distance^distance_power`
//! and backward with `backward_weight` times that. By default links and counts
//! are plain sums over the users' sequences: no wall-clock decay, so a link
//! made years ago weighs what a link made today does, and scores depend on
//! no clock (the measurements behind this are in the README). A finite
//! `half_life_secs` decays them instead; values are then kept relative to the
//! item's `t_ref` (moved only by whole half-lives), so adding at any time is
//! a multiply-add and the result does not depend on arrival order (up to
//! rounding). Each item keeps only its `max_links` strongest links: storage
//! is bounded per item.
//!
//! Scores are cosine-normalised (`link / sqrt((count_i + 1)(count_j + 1))`):
//! raw counts favour blockbusters (the validation figures are in the README).

use crate::decay;
use std::collections::HashMap;
use std::hash::Hash;

/// What is left of a link after a retraction, as a share of the link before
/// it, below which it is the rounding of single-precision storage (with a
/// margin) and removed. Relative to the link, not to one co-visit: a link
/// decayed below a co-visit's weight is no residue.
pub const LINK_RESIDUE: f64 = 1e-6;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CovisitParams {
    /// How many previous items of the user a new event links with.
    pub window: usize,
    /// Weight of the backward link (new item -> earlier item).
    pub backward_weight: f64,
    /// Link weight is 1 / distance^distance_power.
    pub distance_power: f64,
    /// Seconds for a link or a count to halve; infinite: no decay.
    pub half_life_secs: f64,
    /// Seconds for the recent count behind popularity to halve.
    pub popularity_half_life_secs: f64,
    /// Links kept per item (the strongest).
    pub max_links: usize,
    /// Recent items kept per user (for linking and for scoring).
    pub recent_kept: usize,
    /// Score weight of the p-th most recent item: recency_decay^p.
    pub recency_decay: f64,
}

impl Default for CovisitParams {
    fn default() -> Self {
        // Tuned on MovieLens-100K's validation split (second-to-last event),
        // never on the held-out last events.
        CovisitParams {
            window: 10,
            backward_weight: 0.5,
            distance_power: 0.5,
            half_life_secs: f64::INFINITY,
            popularity_half_life_secs: POPULARITY_HALF_LIFE_SECS,
            max_links: 100,
            recent_kept: 20,
            recency_decay: 0.8,
        }
    }
}

/// Popularity counts the recent events: a count that halves every 30 days
/// of the source's own clock (see `clock`).
pub const POPULARITY_HALF_LIFE_SECS: f64 = 30.0 * 86_400.0;

/// One item's event count and strongest links (decayed with
/// `half_life_secs`), and its recent count (decayed with
/// `popularity_half_life_secs`), each relative to `t_ref`.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemStats<K> {
    pub t_ref: f64,
    pub count: f64,
    pub recent: f64,
    pub first_seen: f64,
    pub last_seen: f64,
    pub links: Vec<(K, f64)>,
}

impl<K: Clone + Eq + Hash> ItemStats<K> {
    pub fn new(t: f64) -> Self {
        ItemStats {
            t_ref: t,
            count: 0.0,
            recent: 0.0,
            first_seen: t,
            last_seen: t,
            links: Vec::new(),
        }
    }

    /// Keeps factors below 2^32: when `t` is further ahead, t_ref moves
    /// forward by whole half-lives of the shorter half-life (an exact
    /// power-of-two rescale for its values). Rare, so an event costs O(1),
    /// not a pass over the links.
    fn rebase(&mut self, t: f64, p: &CovisitParams) {
        let shortest = p.half_life_secs.min(p.popularity_half_life_secs);
        let Some((t_ref, _)) = decay::rebase(self.t_ref, t, shortest) else {
            return;
        };
        let scale = decay::decayed(1.0, self.t_ref, t_ref, p.half_life_secs);
        self.count *= scale;
        self.links.iter_mut().for_each(|l| l.1 *= scale);
        self.recent *= decay::decayed(1.0, self.t_ref, t_ref, p.popularity_half_life_secs);
        self.t_ref = t_ref;
    }

    fn factor(&self, t: f64, p: &CovisitParams) -> f64 {
        decay::growth(self.t_ref, t, p.half_life_secs)
    }

    pub fn add_event(&mut self, t: f64, p: &CovisitParams) {
        self.rebase(t, p);
        self.count += self.factor(t, p);
        self.recent += decay::growth(self.t_ref, t, p.popularity_half_life_secs);
        self.first_seen = self.first_seen.min(t);
        self.last_seen = self.last_seen.max(t);
    }

    /// Adds to the link towards `to` (`weight` in co-visits at `t`); `index` maps keys to positions in
    /// `links` (built by `link_index`) so bulk loads stay linear.
    pub fn add_link(
        &mut self,
        to: &K,
        weight: f64,
        t: f64,
        p: &CovisitParams,
        index: &mut HashMap<K, usize>,
    ) {
        self.rebase(t, p);
        let unit = self.factor(t, p);
        let w = weight * unit;
        match index.get(to) {
            Some(&i) => {
                let before = self.links[i].1;
                self.links[i].1 += w;
                // A retraction that cancels the link removes it (at the next
                // prune), rounding residue included: links are stored in
                // single precision, so what is left of a cancelled link is
                // rounding, yet the largest link is what scores are divided by.
                if w < 0.0 && self.links[i].1 <= LINK_RESIDUE * before.abs().max(-w) {
                    self.links[i].1 = 0.0;
                }
            }
            // Retracting a link that was pruned away: nothing to take back.
            None if w <= 0.0 => {}
            None => {
                index.insert(to.clone(), self.links.len());
                self.links.push((to.clone(), w));
            }
        }
        // Prune lazily at twice the bound: amortised O(1) per link.
        if self.links.len() > 2 * p.max_links.max(1) {
            self.prune(p.max_links);
            *index = self.link_index();
        }
    }

    pub fn link_index(&self) -> HashMap<K, usize> {
        self.links
            .iter()
            .enumerate()
            .map(|(i, (k, _))| (k.clone(), i))
            .collect()
    }

    /// Keeps the `max` strongest (positive) links, strongest first.
    pub fn prune(&mut self, max: usize) {
        self.links.retain(|l| l.1 > 0.0);
        self.links.sort_by(|a, b| b.1.total_cmp(&a.1));
        self.links.truncate(max);
    }

    /// Takes back one event counted by `add_event` (first/last seen stay).
    pub fn remove_event(&mut self, t: f64, p: &CovisitParams) {
        self.rebase(t, p);
        let f = self.factor(t, p);
        self.count -= f;
        if self.count <= 1e-9 * f {
            self.count = 0.0;
        }
        let g = decay::growth(self.t_ref, t, p.popularity_half_life_secs);
        self.recent -= g;
        if self.recent <= 1e-9 * g {
            self.recent = 0.0;
        }
    }

    pub fn count_at(&self, now: f64, p: &CovisitParams) -> f64 {
        self.count * self.decay_to(now, p)
    }

    /// The recent count behind popularity, at `now`. Asked before the
    /// item's last event (`as_of` in the past), it is the count at that
    /// event: the later events cannot be told apart any more, but none
    /// weighs more than 1.
    pub fn recent_at(&self, now: f64, p: &CovisitParams) -> f64 {
        decay::decayed_since(
            self.recent,
            self.t_ref,
            now.max(self.last_seen),
            p.popularity_half_life_secs,
        )
    }

    /// The item's place among trending items, stored and indexed so the
    /// trending list is read from the top of an index, not a scan: at any
    /// clock past every item's last event, items with a larger trend have
    /// a larger recent count (log2 of the count at clock 0). None without
    /// recent events.
    pub fn trend(&self, p: &CovisitParams) -> Option<f64> {
        (self.recent > 0.0).then(|| self.recent.log2() + self.t_ref / p.popularity_half_life_secs)
    }

    /// Decay factor from t_ref to `now`, for reading link weights at `now`
    /// (`decay::decayed_since`: at most 1).
    pub fn decay_to(&self, now: f64, p: &CovisitParams) -> f64 {
        decay::decayed_since(1.0, self.t_ref, now, p.half_life_secs)
    }

    /// The item's links with their weights at `now` (stored relative to t_ref).
    pub fn links_at(&self, now: f64, p: &CovisitParams) -> impl Iterator<Item = (&K, f64)> {
        let f = self.decay_to(now, p);
        self.links.iter().map(move |(j, w)| (j, w * f))
    }
}

/// The links one new event makes with the user's previous items (`recent`,
/// oldest first): (from, to, weight).
pub fn links_for_event<K: Clone + Eq>(
    recent: &[K],
    new: &K,
    p: &CovisitParams,
) -> Vec<(K, K, f64)> {
    let mut out = Vec::with_capacity(2 * p.window);
    for d in 1..=p.window.min(recent.len()) {
        let prev = &recent[recent.len() - d];
        if prev == new {
            continue;
        }
        let w = (d as f64).powf(-p.distance_power);
        out.push((prev.clone(), new.clone(), w));
        if p.backward_weight > 0.0 {
            out.push((new.clone(), prev.clone(), w * p.backward_weight));
        }
    }
    out
}

/// Appends an item to a user's recent list, keeping the last `recent_kept`.
pub fn push_recent<K>(
    recent: &mut Vec<K>,
    times: &mut Vec<f64>,
    item: K,
    t: f64,
    p: &CovisitParams,
) {
    recent.push(item);
    times.push(t);
    if recent.len() > p.recent_kept {
        let cut = recent.len() - p.recent_kept;
        recent.drain(..cut);
        times.drain(..cut);
    }
}

/// The co-visitation graph of a set of items: their stats plus a key index
/// per item for fast link updates. The triggers load the rows a statement
/// touches into one; offline evaluation builds one for the whole catalog.
pub struct ItemGraph<K> {
    pub items: HashMap<K, ItemStats<K>>,
    index: HashMap<K, HashMap<K, usize>>,
}

impl<K: Clone + Eq + Hash> Default for ItemGraph<K> {
    fn default() -> Self {
        ItemGraph {
            items: HashMap::new(),
            index: HashMap::new(),
        }
    }
}

impl<K: Clone + Eq + Hash> ItemGraph<K> {
    pub fn insert(&mut self, key: K, stats: ItemStats<K>) {
        self.index.remove(&key);
        self.items.insert(key, stats);
    }

    /// One event of a user: counts the item, links it with the user's
    /// previous items, and appends it to the user's recent list.
    pub fn observe(
        &mut self,
        recent: &mut Vec<K>,
        times: &mut Vec<f64>,
        item: &K,
        t: f64,
        p: &CovisitParams,
    ) {
        self.items
            .entry(item.clone())
            .or_insert_with(|| ItemStats::new(t))
            .add_event(t, p);
        for (from, to, w) in links_for_event(recent, item, p) {
            let stats = self
                .items
                .entry(from.clone())
                .or_insert_with(|| ItemStats::new(t));
            let index = self.index.entry(from).or_insert_with(|| stats.link_index());
            stats.add_link(&to, w, t, p, index);
        }
        push_recent(recent, times, item.clone(), t, p);
    }

    /// A user's history changed from `before` to `after` (each (item, time)
    /// in order): takes back the counts and links only `before` made and adds
    /// those only `after` makes. Events before the first difference made the
    /// same links in both and are skipped. Links already pruned away cannot be
    /// taken back, so this is exact while items hold fewer than `max_links`.
    pub fn rewrite_history(&mut self, before: &[(K, f64)], after: &[(K, f64)], p: &CovisitParams) {
        let same = |a: &(K, f64), b: &(K, f64)| a.0 == b.0 && a.1 == b.1;
        let first = before
            .iter()
            .zip(after)
            .take_while(|(a, b)| same(a, b))
            .count();
        // Trailing events whose window lies in the common suffix link alike.
        let common_suffix = before[first..]
            .iter()
            .rev()
            .zip(after[first..].iter().rev())
            .take_while(|(a, b)| same(a, b))
            .count();
        for (seq, sign) in [(before, -1.0), (after, 1.0)] {
            let end = (seq.len() - common_suffix + p.window).min(seq.len());
            for pos in first..end {
                let (item, t) = (&seq[pos].0, seq[pos].1);
                let stats = self
                    .items
                    .entry(item.clone())
                    .or_insert_with(|| ItemStats::new(t));
                if sign > 0.0 {
                    stats.add_event(t, p);
                } else {
                    stats.remove_event(t, p);
                }
                let window: Vec<K> = seq[pos.saturating_sub(p.window)..pos]
                    .iter()
                    .map(|e| e.0.clone())
                    .collect();
                for (from, to, w) in links_for_event(&window, item, p) {
                    let stats = self
                        .items
                        .entry(from.clone())
                        .or_insert_with(|| ItemStats::new(t));
                    let index = self.index.entry(from).or_insert_with(|| stats.link_index());
                    stats.add_link(&to, sign * w, t, p, index);
                }
            }
        }
    }

    /// Applies the bound to every item (strongest links first) and returns the stats.
    pub fn finish(mut self, p: &CovisitParams) -> HashMap<K, ItemStats<K>> {
        for s in self.items.values_mut() {
            s.prune(p.max_links);
        }
        self.items
    }
}

/// One recent item's contribution to a candidate's co-visitation score.
#[derive(Debug, Clone, PartialEq)]
pub struct CovisitContribution<K> {
    pub via: K,
    pub value: f64,
}

/// Each linked item's co-visitation score before its own count
/// normalises it: what candidate gathering ranks linked items by, since
/// the counts of linked items are read only once they are candidates.
pub fn link_strengths<K: Clone + Eq + Hash>(
    recent: &[K],
    stats_of: impl Fn(&K) -> Option<(f64, Vec<(K, f64)>)>,
    p: &CovisitParams,
) -> HashMap<K, f64> {
    covisit_scores(recent, stats_of, |_| 0.0, p)
        .into_iter()
        .map(|(j, parts)| (j, parts.iter().map(|c| c.value).sum()))
        .collect()
}

/// Co-visitation scores of candidates from the user's recent items (oldest
/// first): sum over recent items i at recency rank r of
/// recency_decay^r * link(i, j) / sqrt((count_i + 1)(count_j + 1)), with
/// each term kept for explanations. `stats_of` gives a recent item's stats,
/// `count_of` a candidate's decayed count at `now`.
pub fn covisit_scores<K: Clone + Eq + Hash>(
    recent: &[K],
    stats_of: impl Fn(&K) -> Option<(f64, Vec<(K, f64)>)>,
    count_of: impl Fn(&K) -> f64,
    p: &CovisitParams,
) -> HashMap<K, Vec<CovisitContribution<K>>> {
    let mut out: HashMap<K, Vec<CovisitContribution<K>>> = HashMap::new();
    for (rank, item) in recent.iter().rev().enumerate() {
        let Some((count_i, links)) = stats_of(item) else {
            continue;
        };
        let r = p.recency_decay.powi(rank as i32);
        for (j, w) in links {
            let value = r * w / ((count_i + 1.0) * (count_of(&j) + 1.0)).sqrt();
            if value > 0.0 {
                out.entry(j).or_default().push(CovisitContribution {
                    via: item.clone(),
                    value,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> CovisitParams {
        CovisitParams {
            window: 2,
            backward_weight: 0.5,
            distance_power: 1.0,
            half_life_secs: 100.0,
            popularity_half_life_secs: 50.0,
            max_links: 2,
            recent_kept: 3,
            recency_decay: 0.5,
        }
    }

    proptest::proptest! {
        #[test]
        fn trend_orders_items_as_their_recent_counts_do_later(
            events_a in proptest::collection::vec(0.0f64..1e6, 1..20),
            events_b in proptest::collection::vec(0.0f64..1e6, 1..20),
            later in 0.0f64..1e6,
        ) {
            let p = CovisitParams { popularity_half_life_secs: 86_400.0, ..p() };
            let item = |events: &[f64]| {
                let mut events = events.to_vec();
                events.sort_by(f64::total_cmp);
                let mut s = ItemStats::<u32>::new(events[0]);
                events.iter().for_each(|&t| s.add_event(t, &p));
                s
            };
            let (a, b) = (item(&events_a), item(&events_b));
            let clock = a.last_seen.max(b.last_seen) + later;
            let (ra, rb) = (a.recent_at(clock, &p), b.recent_at(clock, &p));
            let (ta, tb) = (a.trend(&p).unwrap(), b.trend(&p).unwrap());
            if (ra - rb).abs() > 1e-9 * ra.max(rb) {
                proptest::prop_assert_eq!(ra > rb, ta > tb, "recent {} vs {}, trend {} vs {}", ra, rb, ta, tb);
            }
        }
    }

    #[test]
    fn no_recent_events_no_trend() {
        assert_eq!(ItemStats::<u32>::new(5.0).trend(&p()), None);
    }

    #[test]
    fn links_decay_with_distance_and_skip_self() {
        let l = links_for_event(&[1, 2, 3], &4, &p());
        assert_eq!(l, vec![(3, 4, 1.0), (4, 3, 0.5), (2, 4, 0.5), (4, 2, 0.25)]);
        let l = links_for_event(&[4, 5], &5, &p());
        assert_eq!(
            l,
            vec![(4, 5, 0.5), (5, 4, 0.25)],
            "a repeat does not link to itself"
        );
    }

    #[test]
    fn rewriting_a_history_equals_building_the_new_one() {
        let p = CovisitParams {
            max_links: 50,
            ..p()
        };
        let other: Vec<(u32, f64)> = vec![(1, 0.0), (2, 5.0), (3, 6.0)];
        let before: Vec<(u32, f64)> = vec![(1, 1.0), (2, 2.0), (4, 3.0), (3, 4.0), (5, 9.0)];
        let after: Vec<(u32, f64)> = vec![(1, 1.0), (2, 2.0), (3, 4.0), (5, 9.0)]; // 4 deleted
        check_rewrite(&p, &other, &before, &after);
        // A long history, an early event deleted and one updated to another
        // item: the common prefix and suffix are skipped.
        let before: Vec<(u32, f64)> = (0..30).map(|i| (i % 11 + 1, i as f64)).collect();
        let mut after = before.clone();
        after.remove(3);
        after[10].0 = 7;
        check_rewrite(&p, &other, &before, &after);
    }

    fn check_rewrite(
        p: &CovisitParams,
        other: &[(u32, f64)],
        before: &[(u32, f64)],
        after: &[(u32, f64)],
    ) {
        // Read after every event, as rankings are.
        const CLOCK: f64 = 30.0;
        let p = *p;
        let build = |histories: &[&[(u32, f64)]]| {
            let mut g: ItemGraph<u32> = ItemGraph::default();
            for h in histories {
                let (mut r, mut t) = (Vec::new(), Vec::new());
                for (i, ti) in h.iter() {
                    g.observe(&mut r, &mut t, i, *ti, &p);
                }
            }
            g
        };
        let mut rewritten = build(&[other, before]);
        rewritten.rewrite_history(before, after, &p);
        let rewritten = rewritten.finish(&p);
        let fresh = build(&[other, after]).finish(&p);
        for (k, s) in &fresh {
            let r = &rewritten[k];
            assert!(
                (r.count_at(CLOCK, &p) - s.count_at(CLOCK, &p)).abs() < 1e-9,
                "count of {k}"
            );
            let mut a: Vec<(u32, f64)> = r
                .links
                .iter()
                .map(|&(j, w)| (j, w * r.decay_to(CLOCK, &p)))
                .collect();
            let mut b: Vec<(u32, f64)> = s
                .links
                .iter()
                .map(|&(j, w)| (j, w * s.decay_to(CLOCK, &p)))
                .collect();
            a.sort_by_key(|l| l.0);
            b.sort_by_key(|l| l.0);
            assert_eq!(a.len(), b.len(), "links of {k}: {a:?} vs {b:?}");
            for (x, y) in a.iter().zip(&b) {
                assert_eq!(x.0, y.0);
                assert!((x.1 - y.1).abs() < 1e-9);
            }
        }
        // An item left without events keeps a row with nothing in it.
        for (k, r) in &rewritten {
            if !fresh.contains_key(k) {
                assert!(
                    r.count_at(CLOCK, &p).abs() < 1e-9 && r.links.is_empty(),
                    "{k}"
                );
            }
        }
    }

    #[test]
    fn counts_and_links_are_order_independent() {
        let events = [
            (0.0, 1.0),
            (250.0, 2.0),
            (40.0, 1.0),
            (400.0, 3.0),
            (10.0, 0.5),
        ];
        let run = |order: Vec<&(f64, f64)>| {
            let mut s: ItemStats<u32> = ItemStats::new(order[0].0);
            let mut idx = HashMap::new();
            for &(t, w) in order {
                s.add_event(t, &p());
                s.add_link(&7, w, t, &p(), &mut idx);
            }
            (
                s.count_at(500.0, &p()),
                s.links[0].1 * s.decay_to(500.0, &p()),
            )
        };
        let a = run(events.iter().collect());
        let b = run(events.iter().rev().collect());
        assert!(
            (a.0 - b.0).abs() < 1e-12 && (a.1 - b.1).abs() < 1e-12,
            "{a:?} {b:?}"
        );
        // Exact value: counts 2^-5 + 2^-2.5 + 2^-4.6 + 2^-1 + 2^-4.9.
        let expect: f64 = [0.0, 250.0, 40.0, 400.0, 10.0]
            .iter()
            .map(|t| (-(500.0 - t) / 100.0f64).exp2())
            .sum();
        assert!((a.0 - expect).abs() < 1e-12);
    }

    #[test]
    fn rebasing_over_many_half_lives_keeps_values() {
        // 100 half-lives apart: forces power-of-two rebases in one order only.
        let mut a: ItemStats<u32> = ItemStats::new(0.0);
        let mut b: ItemStats<u32> = ItemStats::new(10_000.0);
        let (mut ia, mut ib) = (HashMap::new(), HashMap::new());
        for t in [0.0, 5_000.0, 10_000.0] {
            a.add_event(t, &p());
            a.add_link(&1, 1.0, t, &p(), &mut ia);
        }
        for t in [10_000.0, 5_000.0, 0.0] {
            b.add_event(t, &p());
            b.add_link(&1, 1.0, t, &p(), &mut ib);
        }
        let now = 10_000.0;
        let expect = 1.0 + (-50.0f64).exp2() + (-100.0f64).exp2();
        for s in [&a, &b] {
            assert!((s.count_at(now, &p()) - expect).abs() < 1e-12);
            assert!((s.links[0].1 * s.decay_to(now, &p()) - expect).abs() < 1e-12);
        }
    }

    #[test]
    fn recent_counts_halve_and_never_grow_in_the_past() {
        let mut s: ItemStats<u32> = ItemStats::new(0.0);
        s.add_event(0.0, &p());
        s.add_event(100.0, &p());
        // popularity half-life 50: at 100, 0.25 + 1; at 150, half that
        assert!((s.recent_at(100.0, &p()) - 1.25).abs() < 1e-12);
        assert!((s.recent_at(150.0, &p()) - 0.625).abs() < 1e-12);
        // asked at 0, before the last event: no event weighs more than 1
        assert!((s.recent_at(0.0, &p()) - 1.25).abs() < 1e-12);
    }

    #[test]
    fn links_are_bounded_keeping_the_strongest() {
        let mut s: ItemStats<u32> = ItemStats::new(0.0);
        let mut idx = HashMap::new();
        for (k, w) in [(1, 5.0), (2, 1.0), (3, 4.0), (4, 0.5), (5, 3.0)] {
            s.add_link(&k, w, 0.0, &p(), &mut idx);
        }
        s.prune(p().max_links);
        assert_eq!(s.links, vec![(1, 5.0), (3, 4.0)]);
    }

    #[test]
    fn recent_list_keeps_the_last_items() {
        let (mut r, mut t) = (Vec::new(), Vec::new());
        for i in 0..5 {
            push_recent(&mut r, &mut t, i, i as f64, &p());
        }
        assert_eq!(r, vec![2, 3, 4]);
        assert_eq!(t, vec![2.0, 3.0, 4.0]);
    }

    #[test]
    fn scores_weight_recent_items_and_normalise_by_popularity() {
        // Recent items 10 (older) and 20 (latest); both link to 1 and 2.
        let stats = |k: &u32| match k {
            10 => Some((3.0, vec![(1, 4.0), (2, 4.0)])),
            20 => Some((0.0, vec![(1, 1.0)])),
            _ => None,
        };
        let count = |k: &u32| if *k == 1 { 3.0 } else { 0.0 };
        let s = covisit_scores(&[10, 20], stats, count, &p());
        let total = |k: u32| s[&k].iter().map(|c| c.value).sum::<f64>();
        // item 1: 1/sqrt(1*4) + 0.5*4/sqrt(4*4) = 0.5 + 0.5; item 2: 0.5*4/sqrt(4*1) = 1.0
        assert!((total(1) - 1.0).abs() < 1e-12 && (total(2) - 1.0).abs() < 1e-12);
        assert_eq!(
            s[&1].len(),
            2,
            "each recent item's term is kept for explanations"
        );
    }

    #[test]
    fn link_strengths_are_scores_before_the_linked_items_count() {
        let stats = |k: &u32| match k {
            10 => Some((3.0, vec![(1, 4.0), (2, 4.0)])),
            20 => Some((0.0, vec![(1, 1.0)])),
            _ => None,
        };
        let strengths = link_strengths(&[10, 20], stats, &p());
        // item 1: 1/sqrt(1) + 0.5*4/sqrt(4) = 2; item 2: 0.5*4/sqrt(4) = 1;
        // item 1's own count (3) would halve its score, not its strength.
        assert_eq!(strengths.len(), 2);
        assert!((strengths[&1] - 2.0).abs() < 1e-12 && (strengths[&2] - 1.0).abs() < 1e-12);
    }
}
