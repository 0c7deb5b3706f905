//! Offline grid search over ranking and co-visitation settings on a
//! recbole-format interaction file, with the same `evaluation::evaluate` as
//! `interest.evaluate()`. Used to choose the defaults on the validation split
//! (holdout=2); see benches/tune_weights.sh.
//!
//!   tune_movielens VECTORS.tsv DATA.inter [key=v1,v2,...]...
//!
//! VECTORS.tsv: `item_id<TAB>[x1,x2,...]` (e.g. `\copy` of `embed(...)::text`).
//! DATA.inter: recbole's `user_id:token item_id:token rating:float timestamp:float`.
//! Each key takes a comma-separated list; every combination is evaluated.
//! Keys: holdout time_cut (a quantile of event times: the time-cut protocol) k content covisit popularity freshness balance window backward
//! distance_power covisit_half_life_days popularity_half_life_days max_links recent_kept recency_decay
//! half_life_days max_interests join_similarity rating_offset new_items.

use interest_core::covisit::CovisitParams;
use interest_core::evaluation::{evaluate, EvalConfig, EvalEvent, NewItems, Protocol};
use interest_core::interest_state::InterestParams;
use interest_core::ranking::RankWeights;
use std::collections::{BTreeMap, HashMap};

const KEYS: &[(&str, f64)] = &[
    ("holdout", 2.0),
    ("time_cut", f64::NAN),
    ("k", 10.0),
    ("content", f64::NAN),
    ("covisit", f64::NAN),
    ("popularity", f64::NAN),
    ("freshness", f64::NAN),
    ("balance", f64::NAN),
    ("window", f64::NAN),
    ("backward", f64::NAN),
    ("distance_power", f64::NAN),
    ("covisit_half_life_days", f64::NAN),
    ("popularity_half_life_days", f64::NAN),
    ("max_links", f64::NAN),
    ("recent_kept", f64::NAN),
    ("recency_decay", f64::NAN),
    ("half_life_days", 30.0),
    ("max_interests", f64::NAN),
    ("join_similarity", f64::NAN),
    ("rating_offset", 2.5),
    ("new_items", interest_core::evaluation::NEW_ITEMS_SHARE),
];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!(
            "usage: {} VECTORS.tsv DATA.inter [key=v1,v2,...]...",
            args[0]
        );
        std::process::exit(2);
    }
    let (vectors, index) = read_vectors(&args[1]);
    let raw = read_interactions(&args[2]);

    let mut grid: Vec<(String, Vec<f64>)> = Vec::new();
    for a in &args[3..] {
        let (k, vs) = a
            .split_once('=')
            .unwrap_or_else(|| die(&format!("bad argument {a}")));
        if !KEYS.iter().any(|(n, _)| *n == k) {
            die(&format!("unknown key {k}"));
        }
        let values = vs
            .split(',')
            .map(|v| {
                v.parse()
                    .unwrap_or_else(|_| die(&format!("bad value {v} for {k}")))
            })
            .collect();
        grid.push((k.to_string(), values));
    }
    let mut combos: Vec<HashMap<String, f64>> = vec![HashMap::new()];
    for (k, values) in &grid {
        combos = combos
            .into_iter()
            .flat_map(|c| {
                values.iter().map(move |v| {
                    let mut c = c.clone();
                    c.insert(k.clone(), *v);
                    c
                })
            })
            .collect();
    }
    let varied: Vec<&String> = grid
        .iter()
        .filter(|(_, v)| v.len() > 1)
        .map(|(k, _)| k)
        .collect();
    for combo in combos {
        let get = |k: &str| {
            combo
                .get(k)
                .copied()
                .unwrap_or_else(|| KEYS.iter().find(|(n, _)| *n == k).unwrap().1)
        };
        let or = |k: &str, d: f64| {
            let v = get(k);
            if v.is_nan() {
                d
            } else {
                v
            }
        };
        let (w0, c0, i0) = (
            RankWeights::default(),
            CovisitParams::default(),
            InterestParams::default(),
        );
        let cfg = EvalConfig {
            k: get("k") as usize,
            protocol: if get("time_cut").is_nan() {
                Protocol::LeaveLastOut
            } else {
                Protocol::TimeCut {
                    quantile: get("time_cut"),
                }
            },
            holdout: get("holdout") as usize,
            weights: RankWeights {
                content: or("content", w0.content),
                covisit: or("covisit", w0.covisit),
                popularity: or("popularity", w0.popularity),
                freshness: or("freshness", w0.freshness),
                diversity: 0.0,
                balance: or("balance", w0.balance),
            },
            interest: InterestParams {
                half_life_secs: get("half_life_days") * 86_400.0,
                max_interests: or("max_interests", i0.max_interests as f64) as usize,
                join_similarity: or("join_similarity", i0.join_similarity as f64) as f32,
            },
            covisit: CovisitParams {
                window: or("window", c0.window as f64) as usize,
                backward_weight: or("backward", c0.backward_weight),
                distance_power: or("distance_power", c0.distance_power),
                half_life_secs: or("covisit_half_life_days", c0.half_life_secs / 86_400.0)
                    * 86_400.0,
                popularity_half_life_secs: or(
                    "popularity_half_life_days",
                    c0.popularity_half_life_secs / 86_400.0,
                ) * 86_400.0,
                max_links: or("max_links", c0.max_links as f64) as usize,
                recent_kept: or("recent_kept", c0.recent_kept as f64) as usize,
                recency_decay: or("recency_decay", c0.recency_decay),
            },
            freshness_half_life_secs: 7.0 * 86_400.0,
            ablations: true,
            candidates: interest_core::candidates::DEFAULT_LIMITS,
        };
        let users = user_sequences(&raw, &index, get("rating_offset"));
        let t0 = std::time::Instant::now();
        let mut keys = vec![""; vectors.len()];
        for (key, &i) in &index {
            keys[i] = key.as_str();
        }
        let new_items = NewItems::from_keys(keys, get("new_items"));
        let results = evaluate(&users, &vectors, &new_items, &cfg);
        let label: Vec<String> = varied.iter().map(|k| format!("{k}={}", get(k))).collect();
        println!(
            "# {} ({:.1} s)",
            label.join(" "),
            t0.elapsed().as_secs_f64()
        );
        for (method, m) in results {
            println!(
                "  {method:<44} HR@{} {:.4} ±{:.4}  NDCG@{} {:.4} ±{:.4}  coverage {:.3}  ILD {:.3}  users {}",
                cfg.k, m.hit_rate, m.hit_rate_se, cfg.k, m.ndcg, m.ndcg_se, m.coverage, m.diversity, m.users
            );
        }
    }
}

fn die(msg: &str) -> ! {
    eprintln!("tune_movielens: {msg}");
    std::process::exit(2);
}

fn read_vectors(path: &str) -> (Vec<Option<Vec<f32>>>, HashMap<String, usize>) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| die(&format!("{path}: {e}")));
    let (mut vectors, mut index) = (Vec::new(), HashMap::new());
    for line in text.lines() {
        let (id, v) = line
            .split_once('\t')
            .unwrap_or_else(|| die("vectors: expected id<TAB>[...]"));
        let v: Vec<f32> = v
            .trim_matches(|c| c == '[' || c == ']')
            .split(',')
            .map(|x| x.parse().unwrap_or_else(|_| die("vectors: bad number")))
            .collect();
        index.insert(id.to_string(), vectors.len());
        vectors.push(Some(v));
    }
    (vectors, index)
}

/// (user, item, rating, timestamp) in file order.
fn read_interactions(path: &str) -> Vec<(String, String, f64, f64)> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| die(&format!("{path}: {e}")));
    text.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let num = |s: &str| {
                s.parse::<f64>()
                    .unwrap_or_else(|_| die("interactions: bad number"))
            };
            (f[0].to_string(), f[1].to_string(), num(f[2]), num(f[3]))
        })
        .collect()
}

/// Each user's events by time, ties in file order (as `interest.evaluate`
/// orders by time, then ctid); weight = rating - offset.
fn user_sequences(
    raw: &[(String, String, f64, f64)],
    index: &HashMap<String, usize>,
    rating_offset: f64,
) -> Vec<Vec<EvalEvent>> {
    let mut per_user: BTreeMap<&str, Vec<EvalEvent>> = BTreeMap::new();
    for (u, i, r, t) in raw {
        let Some(&item) = index.get(i) else { continue };
        per_user.entry(u).or_default().push(EvalEvent {
            item,
            t: *t,
            weight: r - rating_offset,
        });
    }
    per_user
        .into_values()
        .map(|mut evs| {
            evs.sort_by(|a, b| a.t.total_cmp(&b.t));
            evs
        })
        .collect()
}
