//! `interest.tune()`: picks recommend()'s weights on a validation split of
//! the table's own events. The split never holds the events the evaluation
//! protocol tests on: leave-last-out validates on each user's second-to-last
//! event, the time cut on an earlier cut.

use crate::evaluation::{evaluate_weights, EvalConfig, EvalEvent, Protocol};
use crate::metrics::Metrics;
use crate::ranking::RankWeights;

/// How far before the tested time cut the validation cut lies (in quantiles).
pub const VALIDATION_CUT_BEFORE: f64 = 0.1;

/// The validation protocol for a tested protocol.
pub fn validation_config(tested: &EvalConfig) -> EvalConfig {
    match tested.protocol {
        Protocol::LeaveLastOut => EvalConfig {
            holdout: tested.holdout + 1,
            ..*tested
        },
        Protocol::TimeCut { quantile } => EvalConfig {
            protocol: Protocol::TimeCut {
                quantile: (quantile - VALIDATION_CUT_BEFORE).max(VALIDATION_CUT_BEFORE),
            },
            ..*tested
        },
    }
}

/// The weight vectors tried, `base` (the weights in force) first: ties keep
/// it. Co-visitation on or off; content, popularity and freshness over a
/// range each; diversity and balance as in `base`.
pub fn grid(base: RankWeights) -> Vec<RankWeights> {
    let mut out = vec![base];
    for covisit in [1.0, 0.0] {
        for content in [0.0, 0.1, 0.3, 1.0] {
            for popularity in [0.0, 0.1, 0.3, 1.0, 3.0] {
                for freshness in [0.0, 0.05, 0.3] {
                    let w = RankWeights {
                        content,
                        covisit,
                        popularity,
                        freshness,
                        ..base
                    };
                    // Without co-visitation only the ratios of the others
                    // matter: skip multiples of a point already tried.
                    let redundant = covisit == 0.0 && content > 0.0 && popularity > 1.0;
                    if w != base && !redundant {
                        out.push(w);
                    }
                }
            }
        }
    }
    out
}

/// One grid point's validation figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Trial {
    pub weights: RankWeights,
    pub metrics: Metrics,
}

/// Evaluates the grid on the validation split of `tested` until `go_on`
/// says stop (`progress` sees each trial), and returns the trials in grid
/// order with the index of the best: the highest HR + NDCG, the earliest on
/// ties (the weights in force come first).
pub fn tune(
    users: &[Vec<EvalEvent>],
    vectors: &[Option<Vec<f32>>],
    tested: &EvalConfig,
    base: RankWeights,
    mut go_on: impl FnMut(&Trial, usize, usize) -> bool,
) -> (Vec<Trial>, usize) {
    let cfg = validation_config(tested);
    let points = grid(base);
    let mut trials: Vec<Trial> = Vec::new();
    evaluate_weights(users, vectors, &cfg, &points, |i, metrics| {
        trials.push(Trial {
            weights: points[i],
            metrics,
        });
        go_on(&trials[trials.len() - 1], i + 1, points.len())
    });
    let score = |t: &Trial| t.metrics.hit_rate + t.metrics.ndcg;
    let best = (0..trials.len())
        .fold(None, |b: Option<usize>, i| match b {
            Some(j) if score(&trials[j]) >= score(&trials[i]) => Some(j),
            _ => Some(i),
        })
        .unwrap_or(0);
    (trials, best)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::covisit::CovisitParams;
    use crate::evaluation::evaluate;
    use crate::evaluation::NewItems;
    use crate::interest_state::InterestParams;

    fn cfg(protocol: Protocol) -> EvalConfig {
        EvalConfig {
            k: 10,
            protocol,
            holdout: 1,
            weights: RankWeights::default(),
            interest: InterestParams::default(),
            covisit: CovisitParams::default(),
            freshness_half_life_secs: 7.0 * 86_400.0,
            ablations: false,
        }
    }

    #[test]
    fn the_grid_starts_with_the_weights_in_force_and_has_no_duplicates() {
        let g = grid(RankWeights::default());
        assert_eq!(g[0], RankWeights::default());
        for (i, a) in g.iter().enumerate() {
            assert!(g[i + 1..].iter().all(|b| b != a));
        }
        assert!(g.len() > 50 && g.len() < 150, "{} points", g.len());
    }

    #[test]
    fn validation_never_reaches_the_tested_events() {
        assert_eq!(validation_config(&cfg(Protocol::LeaveLastOut)).holdout, 2);
        assert_eq!(
            validation_config(&cfg(Protocol::TimeCut { quantile: 0.8 })).protocol,
            Protocol::TimeCut {
                quantile: 0.8 - VALIDATION_CUT_BEFORE
            }
        );
    }

    /// A world where what everyone picks next is whatever is in fashion
    /// that week (a new hot set of 5 items every week), with no sequence and
    /// no content; every item is on offer from the start, so freshness
    /// tells nothing either. The defaults lean on co-visitation, which links
    /// last week's fashion. Tuned on the time cut's validation split, tune()
    /// must find weights that do better on the tested cut, whose events it
    /// never saw.
    #[test]
    fn tune_beats_wrong_defaults_on_the_test_split() {
        let week = 7.0 * 86_400.0;
        let n_items = 300;
        let mut x: u64 = 7;
        let mut rnd = |n: usize| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((x >> 33) as usize) % n
        };
        let hot = |w: usize, j: usize| (w * 7919 + j * 104_729 + (w * w) % 97) % n_items;
        // the catalog, seen once at the start
        let mut users: Vec<Vec<EvalEvent>> = vec![(0..n_items)
            .map(|item| EvalEvent {
                item,
                t: 0.0,
                weight: 1.0,
            })
            .collect()];
        for _ in 0..800 {
            let start = 1 + rnd(60);
            let len = 4 + rnd(9);
            users.push(
                (0..len)
                    .map(|p| {
                        let w = start + p;
                        let item = if rnd(10) < 8 {
                            hot(w, rnd(5))
                        } else {
                            rnd(n_items)
                        };
                        EvalEvent {
                            item,
                            t: w as f64 * week + rnd(10_000) as f64,
                            weight: 1.0,
                        }
                    })
                    .collect(),
            );
        }
        let vectors: Vec<Option<Vec<f32>>> = vec![None; n_items];
        let tested = cfg(Protocol::TimeCut { quantile: 0.8 });
        let (trials, best) = tune(
            &users,
            &vectors,
            &tested,
            RankWeights::default(),
            |_, _, _| true,
        );
        let chosen = trials[best].weights;
        let on_test = |w: RankWeights| {
            let r = evaluate(
                &users,
                &vectors,
                &NewItems::default(),
                &EvalConfig {
                    weights: w,
                    ..tested
                },
            );
            r.into_iter().find(|(m, _)| m == "recommend").unwrap().1
        };
        let (tuned, default) = (on_test(chosen), on_test(RankWeights::default()));
        assert!(
            tuned.hit_rate > default.hit_rate + 2.0 * tuned.hit_rate_se
                && tuned.ndcg > default.ndcg,
            "tuned {chosen:?}: {tuned:?} vs default {default:?}"
        );
    }

    #[test]
    fn a_budget_stops_the_grid_and_keeps_the_best_so_far() {
        let users: Vec<Vec<EvalEvent>> = (0..20)
            .map(|u| {
                (0..5)
                    .map(|p| EvalEvent {
                        item: (u + p) % 10,
                        t: p as f64,
                        weight: 1.0,
                    })
                    .collect()
            })
            .collect();
        let vectors = vec![None; 10];
        let (trials, best) = tune(
            &users,
            &vectors,
            &cfg(Protocol::LeaveLastOut),
            RankWeights::default(),
            |_, done, _| done < 3,
        );
        assert_eq!(trials.len(), 3);
        assert!(best < 3);
    }
}
