//! The search loop's pieces, shared by the in-memory index and the access
//! method: which lists to probe first, and the pool of estimated entries
//! the next exact rerank takes its candidates from.

use super::estimator::PreparedQuery;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Lists ordered nearest centre first.
pub fn probe_order(query: &PreparedQuery, centres: &[f32], dims: usize) -> Vec<u32> {
    let mut keyed: Vec<(f32, u32)> = centres
        .chunks_exact(dims)
        .enumerate()
        .map(|(list, centre)| (query.centre_distance(centre), list as u32))
        .collect();
    keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    keyed.into_iter().map(|(_, list)| list).collect()
}

/// Entries a scan keeps probed for each row it has returned. A scan whose
/// executor keeps asking for rows (a WHERE clause that rejects most, or a
/// large LIMIT) returns rows ever farther out; once they are more than this
/// fraction of what it probed, entries of lists not yet probed compete with
/// them, so it probes the next lists before its pool runs dry.
pub const PROBED_PER_RETURNED: usize = 8;

/// Whether a scan that has probed `probed` entries and returned `returned`
/// rows probes its next lists before the next round: when its pool holds
/// fewer than a round (`rerank`), or the rows returned are no longer the
/// nearest few of what it probed.
pub fn probe_further(probed: usize, returned: usize, pool: usize, rerank: usize) -> bool {
    pool < rerank || returned.saturating_mul(PROBED_PER_RETURNED) > probed
}

/// Rows the first round of a scan makes certain (at most
/// `interest.ivf_rerank`): the LIMIT most queries ask. Each row more in a
/// round raises the distance no bound left may beat, so a larger first
/// round ranks more entries exactly for the same ten rows.
pub const FIRST_ROUND_ROWS: usize = 10;

/// Rows the next round makes certain, after `returned` rows.
pub fn round_rows(returned: usize, rerank: usize) -> usize {
    if returned == 0 {
        rerank.clamp(1, FIRST_ROUND_ROWS)
    } else {
        rerank.max(1)
    }
}

/// Whether an automatic scan probes its next lists before it returns
/// `round` (its rows, nearest first): when a row, or an entry whose bound
/// could beat the last row, lies in a list of the last step (`is_new`: that
/// step's lists, leaving out the nearest list of all, which always holds
/// candidates). Lists lie farther out with every step, and hold near
/// entries ever more rarely, so steps that reached no row end the probing
/// (`AutomaticSteps`: as many in a row as the build measured the data
/// allows, one on clustered data).
pub fn step_reached_rows<T>(
    pool: &CandidatePool<T>,
    round: &[(f64, T)],
    is_new: impl Fn(&T) -> bool,
) -> bool {
    let Some((last, _)) = round.last() else {
        return false;
    };
    round.iter().any(|(_, item)| is_new(item)) || pool.any_below(*last, is_new)
}

/// Whether an automatic scan goes on to its next step of lists: while its
/// steps reach the rows (`step_reached_rows`), and past steps that reach
/// none until `quiet_steps` of them come in a row. Where neighbours spread
/// over many lists a quiet step can come before one that holds a
/// neighbour; the build measures how many to allow
/// (`calibrate::Calibration::quiet_steps`).
#[derive(Debug, Clone)]
pub struct AutomaticSteps {
    quiet_steps: usize,
    quiet: usize,
    judged: Option<usize>,
}

impl AutomaticSteps {
    pub fn new(quiet_steps: usize) -> AutomaticSteps {
        AutomaticSteps {
            quiet_steps: quiet_steps.max(1),
            quiet: 0,
            judged: None,
        }
    }

    /// Judges the step that starts at list position `step_start`; a step
    /// judged again (a later round of the same scan) counts once as quiet.
    pub fn go_on(&mut self, step_start: usize, reached: bool) -> bool {
        if reached {
            self.quiet = 0;
        } else if self.judged != Some(step_start) {
            self.quiet += 1;
        }
        self.judged = Some(step_start);
        self.quiet < self.quiet_steps
    }
}

/// Entries scanned by their codes, waiting for an exact distance, ordered
/// by the lower bound of their distance.
pub struct CandidatePool<T> {
    heap: BinaryHeap<Pending<T>>,
}

struct Pending<T> {
    /// The pool's order: the code's bound, or the exact distance once known.
    lower: f64,
    /// The code's bound, kept once the exact distance is known (a row put
    /// back by `put_back` has its distance here: its step was judged).
    bound: f32,
    exact: Option<f64>,
    item: T,
}

impl<T> PartialEq for Pending<T> {
    fn eq(&self, other: &Self) -> bool {
        self.lower.total_cmp(&other.lower).is_eq()
    }
}
impl<T> Eq for Pending<T> {}
impl<T> PartialOrd for Pending<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Pending<T> {
    // Reversed: BinaryHeap is a max-heap, the pool pops the lowest bound.
    fn cmp(&self, other: &Self) -> Ordering {
        other.lower.total_cmp(&self.lower)
    }
}

impl<T> Default for CandidatePool<T> {
    fn default() -> Self {
        CandidatePool {
            heap: BinaryHeap::new(),
        }
    }
}

impl<T> CandidatePool<T> {
    /// Adds an entry whose distance is at least `lower` (with high probability).
    pub fn push(&mut self, lower: f32, item: T) {
        self.heap.push(Pending {
            lower: lower as f64,
            bound: lower,
            exact: None,
            item,
        });
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Whether an entry that `matches` has a code's bound below `distance`
    /// (also one ranked since, whose exact distance turned out larger).
    pub fn any_below(&self, distance: f64, matches: impl Fn(&T) -> bool) -> bool {
        self.heap
            .iter()
            .any(|pending| (pending.bound as f64) < distance && matches(&pending.item))
    }

    /// Returns a round's rows to the pool, their exact distances kept (and
    /// taken as their bounds).
    pub fn put_back(&mut self, rows: Vec<(f64, T)>) {
        self.heap
            .extend(rows.into_iter().map(|(distance, item)| Pending {
                lower: distance,
                bound: distance as f32,
                exact: Some(distance),
                item,
            }));
    }

    /// The `want` entries of lowest bound, without exact distances (for
    /// callers that rank the results themselves).
    pub fn take_by_bound(&mut self, want: usize) -> Vec<(f64, T)> {
        let mut out = Vec::with_capacity(want.min(self.heap.len()));
        while out.len() < want {
            let Some(pending) = self.heap.pop() else {
                break;
            };
            out.push((pending.exact.unwrap_or(pending.lower), pending.item));
        }
        out
    }

    /// The `want` nearest entries of the pool, nearest first, by exact
    /// distance: entries are ranked exactly in order of their bounds until
    /// no bound left could beat the `want`-th distance found. Entries ranked
    /// but not returned go back with their exact distance.
    ///
    /// `exact` ranks up to `RERANK_BATCH` entries at a time (in bound
    /// order), so a caller can fetch their vectors together and overlap the
    /// memory reads; the last batch may rank a few entries more than needed.
    pub fn next_round(
        &mut self,
        want: usize,
        mut exact: impl FnMut(&[&T]) -> Vec<f64>,
    ) -> Vec<(f64, T)> {
        let want = want.max(1);
        let mut best: BinaryHeap<Ranked<T>> = BinaryHeap::new();
        let mut batch: Vec<Pending<T>> = Vec::with_capacity(RERANK_BATCH);
        loop {
            let worst = (best.len() >= want).then(|| best.peek().expect("want >= 1").distance);
            while batch.len() < RERANK_BATCH {
                let Some(top) = self.heap.peek() else {
                    break;
                };
                let still_short = best.len() + batch.len() < want;
                if !still_short && worst.is_none_or(|worst| top.lower >= worst) {
                    break;
                }
                batch.push(self.heap.pop().expect("peeked"));
            }
            if batch.is_empty() {
                break;
            }
            let unranked: Vec<&T> = batch
                .iter()
                .filter(|p| p.exact.is_none())
                .map(|p| &p.item)
                .collect();
            let mut distances = if unranked.is_empty() {
                Vec::new()
            } else {
                exact(&unranked)
            }
            .into_iter();
            for pending in batch.drain(..) {
                let distance = pending.exact.unwrap_or_else(|| {
                    let d = distances
                        .next()
                        .expect("exact returns one distance per entry");
                    // An overflowed distance ranks last (a NaN put back
                    // would never stop a round).
                    if d.is_nan() {
                        f64::INFINITY
                    } else {
                        d
                    }
                });
                best.push(Ranked {
                    distance,
                    bound: pending.bound,
                    item: pending.item,
                });
                if best.len() > want {
                    let worst = best.pop().expect("more than want");
                    self.heap.push(Pending {
                        lower: worst.distance,
                        bound: worst.bound,
                        exact: Some(worst.distance),
                        item: worst.item,
                    });
                }
            }
        }
        best.into_sorted_vec()
            .into_iter()
            .map(|r| (r.distance, r.item))
            .collect()
    }
}

/// Entries `CandidatePool::next_round` ranks exactly together.
pub const RERANK_BATCH: usize = 16;

struct Ranked<T> {
    distance: f64,
    bound: f32,
    item: T,
}

impl<T> PartialEq for Ranked<T> {
    fn eq(&self, other: &Self) -> bool {
        self.distance.total_cmp(&other.distance).is_eq()
    }
}
impl<T> Eq for Ranked<T> {}
impl<T> PartialOrd for Ranked<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Ranked<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.distance.total_cmp(&other.distance)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_further_when_the_pool_runs_low_or_rows_run_far() {
        // An unfiltered LIMIT 10 of 40-row rounds from 2,500 probed entries: no.
        assert!(!probe_further(2_500, 40, 2_460, 40));
        // A pool with less than a round left: yes.
        assert!(probe_further(2_500, 40, 39, 40));
        // A filter that rejected most rows: 400 returned of 2,500 probed.
        assert!(probe_further(2_500, 400, 2_100, 40));
        assert!(!probe_further(
            2_500,
            2_500 / PROBED_PER_RETURNED,
            2_000,
            40
        ));
        // Huge counts saturate instead of overflowing.
        assert!(!probe_further(usize::MAX, usize::MAX, usize::MAX, 40));
    }

    #[test]
    fn quiet_steps_end_the_steps_only_when_they_come_in_a_row() {
        let mut one = AutomaticSteps::new(1);
        assert!(one.go_on(0, true));
        assert!(!one.go_on(10, false));
        // 0 is read as 1: a quiet step always ends a scan that allows none.
        assert!(!AutomaticSteps::new(0).go_on(0, false));
        let mut three = AutomaticSteps::new(3);
        assert!(three.go_on(0, false));
        assert!(three.go_on(10, false));
        assert!(
            three.go_on(20, true),
            "a step that reaches rows starts the count again"
        );
        assert!(three.go_on(30, false));
        assert!(three.go_on(40, false));
        assert!(!three.go_on(50, false));
        // A later round of the same scan judges the last step again: still
        // quiet, the scan stays stopped...
        assert!(!three.go_on(50, false));
        // ...reaching the later round's rows, it starts the count again.
        assert!(three.go_on(50, true));
        assert!(three.go_on(60, false));
    }

    #[test]
    fn a_step_reaches_the_rows_through_a_row_or_a_bound() {
        // Items: (list position, true distance); bounds 0.5 below the truth.
        let pool_of = |entries: &[(usize, f64)]| {
            let mut pool = CandidatePool::default();
            for &(position, d) in entries {
                pool.push((d - 0.5) as f32, (position, d));
            }
            pool
        };
        let exact = |batch: &[&(usize, f64)]| batch.iter().map(|e| e.1).collect();
        let in_step = |e: &(usize, f64)| (10..20).contains(&e.0);
        // Rows 1.0 and 2.0 from lists 0 and 3; the step's only entry (list
        // 14) has a bound of 8.5: it reached nothing.
        let mut pool = pool_of(&[(0, 1.0), (3, 2.0), (14, 9.0)]);
        let round = pool.next_round(2, exact);
        assert!(!step_reached_rows(&pool, &round, in_step));
        // List 12's entry is a row.
        let mut pool = pool_of(&[(0, 1.0), (12, 1.5), (3, 2.0)]);
        let round = pool.next_round(2, exact);
        assert!(step_reached_rows(&pool, &round, in_step));
        // List 12's entry was ranked (bound 1.9 below the second row's 2.0)
        // and is farther (2.3): its bound still counts.
        let mut pool = pool_of(&[(0, 1.0), (3, 2.0), (12, 2.4)]);
        let round = pool.next_round(2, exact);
        assert_eq!(
            round.iter().map(|r| r.0).collect::<Vec<_>>(),
            vec![1.0, 2.0]
        );
        assert!(step_reached_rows(&pool, &round, in_step));
        // Put back, the rows come again, ranked already.
        pool.put_back(round);
        let again = pool.next_round(3, |_| panic!("every entry near enough was ranked"));
        assert_eq!(
            again.iter().map(|r| r.0).collect::<Vec<_>>(),
            vec![1.0, 2.0, 2.4]
        );
        // An empty round reaches nothing.
        assert!(!step_reached_rows(&pool, &[], |_| true));
    }

    #[test]
    fn a_nan_distance_ranks_last_and_ends() {
        let mut pool = CandidatePool::default();
        for (i, lower) in [0.0f32, 0.1, 0.2].into_iter().enumerate() {
            pool.push(lower, i);
        }
        let exact = |batch: &[&usize]| {
            batch
                .iter()
                .map(|&&i| if i == 0 { f64::NAN } else { i as f64 })
                .collect()
        };
        let round = pool.next_round(2, exact);
        assert_eq!(round.iter().map(|r| r.1).collect::<Vec<_>>(), vec![1, 2]);
        let rest = pool.next_round(2, exact);
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].0, f64::INFINITY);
    }

    #[test]
    fn the_first_round_is_the_common_limit() {
        assert_eq!(round_rows(0, 40), FIRST_ROUND_ROWS);
        assert_eq!(round_rows(0, 3), 3);
        assert_eq!(round_rows(0, 0), 1);
        assert_eq!(round_rows(10, 40), 40);
        assert_eq!(round_rows(10, 0), 1);
    }

    #[test]
    fn rounds_return_the_nearest_and_keep_the_rest() {
        // Bounds 0.5 below the truth: ranking stops at the first bound that
        // cannot beat the second best.
        let truth = [5.0, 1.0, 4.0, 2.0, 3.0];
        let mut pool = CandidatePool::default();
        for (i, d) in truth.iter().enumerate() {
            pool.push((d - 0.5) as f32, i);
        }
        let mut ranked = 0;
        let first = pool.next_round(2, |batch| {
            ranked += batch.len();
            batch.iter().map(|&&i| truth[i]).collect()
        });
        assert_eq!(
            first.iter().map(|(_, i)| *i).collect::<Vec<_>>(),
            vec![1, 3]
        );
        assert_eq!(ranked, 2, "the next bound (2.5) cannot beat 2.0");
        let rest = pool.next_round(10, |batch| batch.iter().map(|&&i| truth[i]).collect());
        assert_eq!(
            rest.iter().map(|(_, i)| *i).collect::<Vec<_>>(),
            vec![4, 2, 0]
        );
        assert!(pool.is_empty());
    }

    #[test]
    fn loose_bounds_rank_more() {
        let truth: Vec<f64> = (0..100).map(|i| i as f64).collect();
        let mut pool = CandidatePool::default();
        for (i, d) in truth.iter().enumerate() {
            pool.push((d - 20.0) as f32, i);
        }
        let mut ranked = 0;
        let got = pool.next_round(10, |batch| {
            ranked += batch.len();
            batch.iter().map(|&&i| truth[i]).collect()
        });
        assert_eq!(
            got.iter().map(|(_, i)| *i).collect::<Vec<_>>(),
            (0..10).collect::<Vec<_>>()
        );
        assert_eq!(
            ranked, 29,
            "every entry whose bound is below the 10th distance (9)"
        );
    }
}
