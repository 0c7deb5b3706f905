//! A user's interest state: time-decayed, split into a few sub-interests
//! (decomposition) and recombined by weight (combination).
//!
//! Decay is exact and order-independent: every sum is kept relative to a
//! reference time `t_ref`, so an event at time t adds `w * 2^((t - t_ref)/h) * x`
//! and the value at time `now` is the sum times `2^(-(now - t_ref)/h)`. Sums are
//! commutative, so events arriving out of order give the same total. When the
//! factors grow large, `t_ref` moves forward by a whole number of half-lives,
//! which rescales by an exact power of two and loses nothing.
//!
//! Sub-interests follow the online clustering used by multi-interest
//! recommenders (MIND, ComiRec, PinnerSage): an event joins its nearest
//! centroid by cosine, or opens a new one below `join_similarity`; over
//! capacity, the two closest centroids merge. Unlike the total, the split into
//! centroids depends on event order, as any online clustering does.

use crate::decay;
use crate::kernels;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InterestParams {
    /// Seconds for an event's weight to halve.
    pub half_life_secs: f64,
    /// Most sub-interests kept per user.
    pub max_interests: usize,
    /// Cosine similarity at or above which an event joins an existing centroid.
    pub join_similarity: f32,
}

impl Default for InterestParams {
    fn default() -> Self {
        // 4 interests as in ComiRec's evaluation. The join threshold applies
        // to cosines relative to the catalog's centre (`apply_centered`),
        // where texts of one kind score above it and unrelated ones below.
        InterestParams {
            half_life_secs: 30.0 * 86_400.0,
            max_interests: 4,
            join_similarity: 0.1,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Centroid {
    /// Σ w·2^((t - t_ref)/h)·x over the events it holds.
    pub sum: Vec<f64>,
    /// Σ |w|·2^((t - t_ref)/h): its decayed mass, for combination.
    pub mass: f64,
    /// Σ w·2^((t - t_ref)/h) (signed): with `sum`, gives the centroid's
    /// position relative to the catalog's centre (`sum - weight·centre`).
    pub weight: f64,
    pub last_seen: f64,
    pub events: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InterestState {
    pub t_ref: f64,
    /// Σ over all events (order-independent): the decayed interest vector.
    pub total: Vec<f64>,
    pub centroids: Vec<Centroid>,
    pub events: u64,
}

impl InterestState {
    pub fn new(dims: usize, t_ref: f64) -> InterestState {
        InterestState {
            t_ref,
            total: vec![0.0; dims],
            centroids: Vec::new(),
            events: 0,
        }
    }

    fn factor(&self, t: f64, p: &InterestParams) -> f64 {
        decay::growth(self.t_ref, t, p.half_life_secs)
    }

    /// Moves t_ref forward by whole half-lives so that time t has a factor
    /// below 2^REBASE_EXPONENT; exact, because it scales by a power of two.
    fn rebase_for(&mut self, t: f64, p: &InterestParams) {
        let Some((t_ref, scale)) = decay::rebase(self.t_ref, t, p.half_life_secs) else {
            return;
        };
        self.t_ref = t_ref;
        self.total.iter_mut().for_each(|v| *v *= scale);
        for c in &mut self.centroids {
            c.sum.iter_mut().for_each(|v| *v *= scale);
            c.mass *= scale;
            c.weight *= scale;
        }
    }

    /// Adds one event's contribution, clustering on raw vectors.
    pub fn apply(&mut self, x: &[f32], weight: f64, t: f64, p: &InterestParams) {
        self.apply_centered(x, weight, t, p, None);
    }

    /// Adds one event's contribution. Sums stay in the embedding space; the
    /// clustering decisions (which centroid an event joins, which pair merges)
    /// compare positions relative to `center`, the catalog's mean vector when
    /// known: sentence embeddings of one kind of text share a dominant common
    /// direction (unrelated texts of one kind are far from orthogonal), so raw
    /// cosines put nearly every event into one centroid; relative to the centre
    /// the tastes separate (README, "Dynamic user interests").
    pub fn apply_centered(
        &mut self,
        x: &[f32],
        weight: f64,
        t: f64,
        p: &InterestParams,
        center: Option<&[f32]>,
    ) {
        assert_eq!(
            x.len(),
            self.total.len(),
            "event vector has the wrong dimension"
        );
        let center = center.filter(|c| c.len() == x.len());
        self.rebase_for(t, p);
        let f = weight * self.factor(t, p);
        self.total
            .iter_mut()
            .zip(x)
            .for_each(|(s, v)| *s += f * *v as f64);
        self.events += 1;

        // A like joins a close interest or opens one; a dislike pushes away the
        // interest it points into, and one that matches no interest only
        // counts in the total.
        let xc: Vec<f32> = match center {
            Some(c) => x.iter().zip(c).map(|(a, b)| a - b).collect(),
            None => x.to_vec(),
        };
        match self.nearest(&xc, center) {
            Some((i, sim))
                if (weight >= 0.0 && sim >= p.join_similarity) || (weight < 0.0 && sim > 0.0) =>
            {
                self.add_to(i, x, f, t);
            }
            _ if weight < 0.0 => {}
            _ => {
                self.centroids.push(Centroid {
                    sum: vec![0.0; x.len()],
                    mass: 0.0,
                    weight: 0.0,
                    last_seen: t,
                    events: 0,
                });
                let last = self.centroids.len() - 1;
                self.add_to(last, x, f, t);
                if self.centroids.len() > p.max_interests {
                    self.merge_closest_pair(center);
                }
            }
        }
    }

    fn add_to(&mut self, i: usize, x: &[f32], f: f64, t: f64) {
        let c = &mut self.centroids[i];
        c.sum
            .iter_mut()
            .zip(x)
            .for_each(|(s, v)| *s += f * *v as f64);
        c.mass += f.abs();
        c.weight += f;
        c.last_seen = c.last_seen.max(t);
        c.events += 1;
    }

    /// A centroid's sum, relative to the centre when there is one.
    fn position(c: &Centroid, center: Option<&[f32]>) -> Vec<f64> {
        match center {
            Some(m) => c
                .sum
                .iter()
                .zip(m)
                .map(|(s, m)| s - c.weight * *m as f64)
                .collect(),
            None => c.sum.clone(),
        }
    }

    fn nearest(&self, x: &[f32], center: Option<&[f32]>) -> Option<(usize, f32)> {
        self.centroids
            .iter()
            .enumerate()
            .map(|(i, c)| (i, cosine_f64(&Self::position(c, center), x)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }

    fn merge_closest_pair(&mut self, center: Option<&[f32]>) {
        let n = self.centroids.len();
        let positions: Vec<Vec<f64>> = self
            .centroids
            .iter()
            .map(|c| Self::position(c, center))
            .collect();
        let mut best = (0, 1, f32::NEG_INFINITY);
        for i in 0..n {
            let xi: Vec<f32> = positions[i].iter().map(|v| *v as f32).collect();
            for (j, pj) in positions.iter().enumerate().skip(i + 1) {
                let s = cosine_f64(pj, &xi);
                if s > best.2 {
                    best = (i, j, s);
                }
            }
        }
        let (i, j, _) = best;
        let absorbed = self.centroids.remove(j);
        let c = &mut self.centroids[i];
        c.sum
            .iter_mut()
            .zip(&absorbed.sum)
            .for_each(|(a, b)| *a += b);
        c.mass += absorbed.mass;
        c.weight += absorbed.weight;
        c.last_seen = c.last_seen.max(absorbed.last_seen);
        c.events += absorbed.events;
    }

    /// Decayed mass of each centroid at time `now` (for shares and display).
    pub fn centroid_weights(&self, now: f64, p: &InterestParams) -> Vec<f64> {
        let f = decay::decayed_since(1.0, self.t_ref, now, p.half_life_secs);
        self.centroids.iter().map(|c| c.mass * f).collect()
    }

    /// The combined user vector: each sub-interest's direction weighted by its
    /// decayed mass, normalised. None when there is nothing positive to go on.
    pub fn user_vector(&self) -> Option<Vec<f32>> {
        let mut v = vec![0.0f64; self.total.len()];
        for c in &self.centroids {
            let n = c.sum.iter().map(|x| x * x).sum::<f64>().sqrt();
            if n > 0.0 {
                v.iter_mut()
                    .zip(&c.sum)
                    .for_each(|(a, s)| *a += c.mass * s / n);
            }
        }
        let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        (n > 0.0).then(|| v.iter().map(|x| (x / n) as f32).collect())
    }

    /// Each sub-interest as a unit direction with its share of the decayed
    /// mass at `now` (shares sum to 1); interests with no direction are left out.
    pub fn interests_at(&self, now: f64, p: &InterestParams) -> Vec<(Vec<f32>, f64)> {
        let weights = self.centroid_weights(now, p);
        let mut out: Vec<(Vec<f32>, f64)> = Vec::new();
        for (c, w) in self.centroids.iter().zip(weights) {
            let n = c.sum.iter().map(|x| x * x).sum::<f64>().sqrt();
            if n > 0.0 && w > 0.0 {
                out.push((c.sum.iter().map(|x| (x / n) as f32).collect(), w));
            }
        }
        let total: f64 = out.iter().map(|(_, w)| w).sum();
        out.iter_mut().for_each(|(_, w)| *w /= total);
        out
    }

    /// The order-independent decayed sum at time `now`.
    pub fn total_at(&self, now: f64, p: &InterestParams) -> Vec<f64> {
        let f = decay::decayed_since(1.0, self.t_ref, now, p.half_life_secs);
        self.total.iter().map(|v| v * f).collect()
    }
}

/// One event as a user's state sees it: a vector, a signed weight, a time.
#[derive(Clone, Debug, PartialEq)]
pub struct StateEvent {
    pub vector: Vec<f32>,
    pub weight: f64,
    pub t: f64,
}

/// Applies one user's events to their state (made at the first event when
/// there is none) in time order, ties in arrival order: the one rule for
/// direct applies, folds, rebuilds and reads of queued events, so that they
/// agree. Returns the events skipped for a dimension different from the
/// state's, as (state's, event's): one bad event must not hold up the others.
pub fn apply_in_order(
    state: &mut Option<InterestState>,
    events: &mut [StateEvent],
    p: &InterestParams,
    center: Option<&[f32]>,
) -> Vec<(usize, usize)> {
    events.sort_by(|a, b| a.t.total_cmp(&b.t));
    let mut skipped = Vec::new();
    for e in events.iter() {
        let state = state.get_or_insert_with(|| InterestState::new(e.vector.len(), e.t));
        if e.vector.len() != state.total.len() {
            skipped.push((state.total.len(), e.vector.len()));
            continue;
        }
        state.apply_centered(&e.vector, e.weight, e.t, p, center);
    }
    skipped
}

fn cosine_f64(a: &[f64], b: &[f32]) -> f32 {
    let a32: Vec<f32> = a.iter().map(|v| *v as f32).collect();
    let d = kernels::cosine_distance(&a32, b);
    if d.is_nan() {
        -1.0
    } else {
        (1.0 - d) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> InterestParams {
        InterestParams {
            half_life_secs: 100.0,
            max_interests: 2,
            join_similarity: 0.5,
        }
    }

    #[test]
    fn centring_separates_tastes_that_share_a_common_direction() {
        // Two tastes on either side of a dominant common direction: raw cosine
        // 0.83 (one interest); relative to the catalog's centre, opposite.
        let a = [1.0f32 / 1.09f32.sqrt(), 0.3 / 1.09f32.sqrt(), 0.0];
        let b = [a[0], -a[1], 0.0];
        let center = [a[0], 0.0, 0.0];
        let (mut raw, mut centred) = (InterestState::new(3, 0.0), InterestState::new(3, 0.0));
        for (t, x) in [a, b, a, b].iter().enumerate() {
            raw.apply(x, 1.0, t as f64, &p());
            centred.apply_centered(x, 1.0, t as f64, &p(), Some(&center));
        }
        assert_eq!(raw.centroids.len(), 1);
        assert_eq!(centred.centroids.len(), 2);
        assert_eq!(centred.centroids[0].events, 2);
        // Sums stay in the embedding space: the total is the same either way.
        assert_eq!(raw.total, centred.total);
        assert!((centred.centroids[0].weight - centred.centroids[0].mass).abs() < 1e-12);
    }

    #[test]
    fn decay_halves_per_half_life() {
        let mut s = InterestState::new(2, 0.0);
        s.apply(&[1.0, 0.0], 1.0, 0.0, &p());
        let at_100 = s.total_at(100.0, &p());
        assert!((at_100[0] - 0.5).abs() < 1e-12);
        assert!((s.total_at(300.0, &p())[0] - 0.125).abs() < 1e-12);
    }

    #[test]
    fn total_is_order_independent_even_across_rebases() {
        let events: Vec<([f32; 3], f64, f64)> = (0..50)
            .map(|i| {
                let t = (i * 397 % 50) as f64 * 1000.0; // spans 500 half-lives: forces rebases
                (
                    [(i % 3) as f32, 1.0, (i % 7) as f32 - 3.0],
                    if i % 5 == 0 { -2.0 } else { 1.5 },
                    t,
                )
            })
            .collect();
        let mut forward = InterestState::new(3, 0.0);
        let mut backward = InterestState::new(3, 0.0);
        for (x, w, t) in &events {
            forward.apply(x, *w, *t, &p());
        }
        for (x, w, t) in events.iter().rev() {
            backward.apply(x, *w, *t, &p());
        }
        let now = 49_000.0;
        let (a, b) = (forward.total_at(now, &p()), backward.total_at(now, &p()));
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() <= 1e-5 * x.abs().max(1.0), "{x} vs {y}");
        }
    }

    #[test]
    fn separate_tastes_become_separate_interests_and_capacity_merges() {
        let mut s = InterestState::new(3, 0.0);
        s.apply(&[1.0, 0.0, 0.0], 1.0, 0.0, &p());
        s.apply(&[0.9, 0.1, 0.0], 1.0, 1.0, &p());
        assert_eq!(s.centroids.len(), 1, "similar events share an interest");
        s.apply(&[0.0, 1.0, 0.0], 1.0, 2.0, &p());
        assert_eq!(
            s.centroids.len(),
            2,
            "a different taste opens a new interest"
        );
        s.apply(&[0.0, 0.0, 1.0], 1.0, 3.0, &p());
        assert_eq!(
            s.centroids.len(),
            2,
            "over capacity, the closest pair merges"
        );
        assert_eq!(s.centroids.iter().map(|c| c.events).sum::<u64>(), 4);
    }

    #[test]
    fn negative_feedback_pushes_the_interest_away() {
        let mut s = InterestState::new(2, 0.0);
        s.apply(&[1.0, 0.2], 1.0, 0.0, &p());
        s.apply(&[0.6, 0.8], 1.0, 0.0, &p());
        let before = s.user_vector().unwrap();
        s.apply(&[0.0, 1.0], -1.0, 1.0, &p());
        let after = s.user_vector().unwrap();
        assert!(
            kernels::cosine_distance(&after, &[0.0, 1.0])
                > kernels::cosine_distance(&before, &[0.0, 1.0])
        );
    }

    #[test]
    fn recent_interest_dominates_the_combination() {
        let mut s = InterestState::new(2, 0.0);
        s.apply(&[1.0, 0.0], 1.0, 0.0, &p());
        s.apply(&[0.0, 1.0], 1.0, 500.0, &p());
        let v = s.user_vector().unwrap();
        assert!(
            v[1] > 0.99,
            "five half-lives later the old taste has faded: {v:?}"
        );
        let w = s.centroid_weights(500.0, &p());
        assert!((w[0] - 1.0 / 32.0).abs() < 1e-9 && (w[1] - 1.0).abs() < 1e-9);
    }

    #[test]
    fn apply_in_order_sorts_by_time_and_skips_other_dimensions() {
        let p = p();
        let mut events = vec![
            StateEvent {
                vector: vec![0.0, 1.0],
                weight: 1.0,
                t: 20.0,
            },
            StateEvent {
                vector: vec![1.0, 0.0, 0.0],
                weight: 1.0,
                t: 15.0,
            },
            StateEvent {
                vector: vec![1.0, 0.0],
                weight: 1.0,
                t: 10.0,
            },
        ];
        let mut state = None;
        let skipped = apply_in_order(&mut state, &mut events, &p, None);
        assert_eq!(skipped, vec![(2, 3)]);
        let state = state.unwrap();
        assert_eq!(state.events, 2);
        let mut by_hand = InterestState::new(2, 10.0);
        by_hand.apply(&[1.0, 0.0], 1.0, 10.0, &p);
        by_hand.apply(&[0.0, 1.0], 1.0, 20.0, &p);
        assert_eq!(state, by_hand);
    }
}
