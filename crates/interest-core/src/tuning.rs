//! `interest.tune()`: picks recommend()'s weights, then popularity's
//! half-life, on a validation split of the table's own events. The split
//! never holds the events the evaluation protocol tests on: leave-last-out
//! validates on each user's second-to-last event, the time cut on an
//! earlier cut.

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

/// Popularity half-lives tried with the best weights (seconds).
pub const POPULARITY_HALF_LIVES: [f64; 4] = [
    7.0 * 86_400.0,
    14.0 * 86_400.0,
    30.0 * 86_400.0,
    90.0 * 86_400.0,
];

/// One grid point's validation figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Trial {
    pub weights: RankWeights,
    pub popularity_half_life_secs: f64,
    pub metrics: Metrics,
}

/// Evaluates the weight grid on the validation split of `tested` (with its
/// popularity half-life), then the best weights with each other half-life
/// of `POPULARITY_HALF_LIVES`, until `go_on` says stop (it sees each trial,
/// the trials done and the total). Returns the trials in order with the
/// index of the best: the highest HR + NDCG, the earliest on ties (the
/// settings in force come first).
pub fn tune(
    users: &[Vec<EvalEvent>],
    vectors: &[Option<Vec<f32>>],
    tested: &EvalConfig,
    base: RankWeights,
    mut go_on: impl FnMut(&Trial, usize, usize) -> bool,
) -> (Vec<Trial>, usize) {
    let cfg = validation_config(tested);
    let in_force = cfg.covisit.popularity_half_life_secs;
    let other_half_lives: Vec<f64> = POPULARITY_HALF_LIVES
        .into_iter()
        .filter(|&h| h != in_force)
        .collect();
    let points = grid(base);
    let total = points.len() + other_half_lives.len();
    let mut trials: Vec<Trial> = Vec::new();
    let mut stopped = false;
    evaluate_weights(users, vectors, &cfg, &points, |i, metrics| {
        trials.push(Trial {
            weights: points[i],
            popularity_half_life_secs: in_force,
            metrics,
        });
        stopped = !go_on(&trials[trials.len() - 1], i + 1, total);
        !stopped
    });
    let best_weights = trials[best_of(&trials)].weights;
    for h in other_half_lives {
        if stopped {
            break;
        }
        let with_h = EvalConfig {
            covisit: crate::covisit::CovisitParams {
                popularity_half_life_secs: h,
                ..cfg.covisit
            },
            ..cfg
        };
        evaluate_weights(users, vectors, &with_h, &[best_weights], |_, metrics| {
            trials.push(Trial {
                weights: best_weights,
                popularity_half_life_secs: h,
                metrics,
            });
            stopped = !go_on(&trials[trials.len() - 1], trials.len(), total);
            !stopped
        });
    }
    let best = best_of(&trials);
    (trials, best)
}

/// The highest HR + NDCG, the earliest on ties.
fn best_of(trials: &[Trial]) -> usize {
    let score = |t: &Trial| t.metrics.hit_rate + t.metrics.ndcg;
    (0..trials.len())
        .fold(None, |b: Option<usize>, i| match b {
            Some(j) if score(&trials[j]) >= score(&trials[i]) => Some(j),
            _ => Some(i),
        })
        .unwrap_or(0)
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
            candidates: crate::candidates::DEFAULT_LIMITS,
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

    /// The synthetic shop, with the weights in force wrong for it (content
    /// and freshness only, where the series make co-visitation the signal):
    /// tune(), on the validation split, must find weights that beat them on
    /// the test split (each user's last event), which it never saw.
    #[test]
    fn tune_beats_wrong_weights_on_the_test_split() {
        use crate::synthetic::{generate, SyntheticConfig};
        let synthetic = SyntheticConfig {
            users: 300,
            items: 600,
            ..SyntheticConfig::default()
        };
        let (items, events) = generate(&synthetic);
        // content: each item near its topic's direction
        let vectors: Vec<Option<Vec<f32>>> = items
            .iter()
            .map(|i| {
                Some(
                    (0..synthetic.topics)
                        .map(|d| {
                            if d == i.topic {
                                1.0
                            } else {
                                0.1 * ((i.id * 31 + d * 17) % 7) as f32 / 7.0
                            }
                        })
                        .collect(),
                )
            })
            .collect();
        let mut users: Vec<Vec<EvalEvent>> = vec![Vec::new(); synthetic.users];
        for e in &events {
            let weight = if e.kind == "dislike" { -3.0 } else { 1.0 };
            users[e.user].push(EvalEvent {
                item: e.item,
                t: e.t,
                weight,
            });
        }
        let wrong = RankWeights {
            content: 1.0,
            covisit: 0.0,
            popularity: 0.0,
            freshness: 0.3,
            ..RankWeights::default()
        };
        let tested = EvalConfig {
            weights: wrong,
            ..cfg(Protocol::LeaveLastOut)
        };
        let (trials, best) = tune(&users, &vectors, &tested, wrong, |_, _, _| true);
        let chosen = trials[best].weights;
        assert!(chosen.covisit > 0.0, "{chosen:?}");
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
        let (tuned, before) = (on_test(chosen), on_test(wrong));
        assert!(
            tuned.hit_rate > before.hit_rate + 2.0 * tuned.hit_rate_se && tuned.ndcg > before.ndcg,
            "tuned {chosen:?}: {tuned:?} vs the weights in force {before:?}"
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
