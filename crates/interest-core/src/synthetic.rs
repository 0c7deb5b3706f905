//! A deterministic synthetic shop for development data beyond MovieLens:
//! several tastes per user that drift, multi-year histories with quiet gaps
//! (some users come back after a year), a catalog that grows over time with
//! item texts built from a vocabulary (one word set per topic, so content
//! carries signal), series inside each topic (the next item of a series
//! follows the last: a sequential signal), a popularity skew, sessions of
//! many events with tied timestamps (bulk imports), and some dislikes.
//! The same seed and sizes give the same data on every machine.

/// Sizes and seed of a synthetic data set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SyntheticConfig {
    pub seed: u64,
    pub users: usize,
    pub items: usize,
    /// Topics (tastes); each has its own vocabulary.
    pub topics: usize,
    /// Years the event history spans.
    pub years: f64,
    /// Epoch seconds of the first event.
    pub start: f64,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        SyntheticConfig {
            seed: 1,
            users: 1_000,
            items: 2_000,
            topics: 24,
            years: 4.0,
            // 2020-01-01T00:00:00Z
            start: 1_577_836_800.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticItem {
    pub id: usize,
    pub text: String,
    pub topic: usize,
    /// Epoch seconds when the item enters the catalog.
    pub created: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticEvent {
    pub user: usize,
    pub item: usize,
    /// Epoch seconds; a bulk session shares one timestamp.
    pub t: f64,
    /// "view", "click", "purchase" or "dislike".
    pub kind: &'static str,
}

const DAY: f64 = 86_400.0;
const SERIES_LEN: usize = 8;
const WORDS_PER_TOPIC: usize = 12;
const SHARED_WORDS: &[&str] = &[
    "new",
    "classic",
    "edition",
    "set",
    "pack",
    "deluxe",
    "mini",
    "pro",
    "series",
    "collection",
    "limited",
    "original",
    "essential",
    "premium",
    "basic",
    "special",
];
const SYLLABLES: &[&str] = &[
    "ka", "lo", "mi", "ren", "tu", "sa", "vo", "pel", "dri", "no", "fa", "zu", "qen", "bri", "tor",
    "lin", "mu", "sha", "gor", "ex",
];
use crate::rng::Rng;

/// The catalog and every user's events, in time order per user.
pub fn generate(cfg: &SyntheticConfig) -> (Vec<SyntheticItem>, Vec<SyntheticEvent>) {
    let mut rng = Rng::new(cfg.seed ^ 0x005e_ed0f_5b09);
    let topics = cfg.topics.max(1);
    let span = cfg.years.max(0.1) * 365.0 * DAY;
    let vocab: Vec<Vec<String>> = (0..topics).map(|_| topic_words(&mut rng)).collect();

    // Items: a third present from the start, the rest arriving over the span;
    // each belongs to a series of its topic (ids in series order).
    let mut items: Vec<SyntheticItem> = Vec::with_capacity(cfg.items);
    let mut by_topic: Vec<Vec<usize>> = vec![Vec::new(); topics];
    while items.len() < cfg.items {
        let topic = rng.below(topics);
        let created = if rng.chance(0.35) {
            cfg.start
        } else {
            cfg.start + rng.unit() * span * 0.95
        };
        let len = (SERIES_LEN / 2 + rng.below(SERIES_LEN)).min(cfg.items - items.len());
        let series_words: Vec<&str> = (0..2)
            .map(|_| vocab[topic][rng.below(WORDS_PER_TOPIC)].as_str())
            .collect();
        for part in 0..len {
            let id = items.len();
            let mut words: Vec<&str> = series_words.clone();
            for _ in 0..2 {
                words.push(vocab[topic][rng.below(WORDS_PER_TOPIC)].as_str());
            }
            words.push(SHARED_WORDS[rng.below(SHARED_WORDS.len())]);
            items.push(SyntheticItem {
                id,
                text: format!("{} {}", words.join(" "), part + 1),
                topic,
                // Later parts of a series come out later.
                created: created + part as f64 * 20.0 * DAY,
            });
            by_topic[topic].push(id);
        }
    }
    // A popularity skew inside each topic: a Zipf-like weight per item.
    let appeal: Vec<f64> = (0..items.len())
        .map(|_| 1.0 / (1.0 + rng.below(50) as f64))
        .collect();

    let mut events = Vec::new();
    for user in 0..cfg.users {
        let mut tastes: Vec<(usize, f64)> = (0..1 + rng.below(3))
            .map(|_| (rng.below(topics), 0.5 + rng.unit()))
            .collect();
        let mut t = cfg.start + rng.unit() * span * 0.7;
        let end = (t + rng.exponential(span * 0.5)).min(cfg.start + span);
        let mut last: Option<usize> = None;
        let mut seen: Vec<bool> = vec![false; items.len()];
        while t < end {
            // Tastes drift: now and then one is replaced by another topic.
            if rng.chance(0.08) {
                let i = rng.below(tastes.len());
                tastes[i].0 = rng.below(topics);
            }
            let bulk = rng.chance(0.25);
            let session = 1 + rng.below(if bulk { 40 } else { 12 });
            for _ in 0..session {
                let Some(item) = next_item(
                    &mut rng, &items, &by_topic, &appeal, &tastes, last, &seen, t,
                ) else {
                    break;
                };
                seen[item] = true;
                let kind = if rng.chance(0.04) {
                    "dislike"
                } else if rng.chance(0.08) {
                    "purchase"
                } else if rng.chance(0.3) {
                    "click"
                } else {
                    "view"
                };
                events.push(SyntheticEvent {
                    user,
                    item,
                    t,
                    kind,
                });
                if kind != "dislike" {
                    last = Some(item);
                }
                if !bulk {
                    t += 30.0 + rng.exponential(240.0);
                }
            }
            // Quiet gaps: mostly days or weeks, sometimes a year.
            t += if rng.chance(0.05) {
                200.0 * DAY + rng.unit() * 300.0 * DAY
            } else {
                rng.exponential(12.0 * DAY)
            };
        }
    }
    (items, events)
}

/// The next item a user picks at time `t`: often the next part of the series
/// they just saw, else an item of one of their tastes (weighted by appeal),
/// else anything popular. Only items already in the catalog, not seen before.
#[allow(clippy::too_many_arguments)]
fn next_item(
    rng: &mut Rng,
    items: &[SyntheticItem],
    by_topic: &[Vec<usize>],
    appeal: &[f64],
    tastes: &[(usize, f64)],
    last: Option<usize>,
    seen: &[bool],
    t: f64,
) -> Option<usize> {
    let available = |i: usize| !seen[i] && items[i].created <= t;
    if let Some(l) = last {
        let next = l + 1;
        if next < items.len()
            && items[next].topic == items[l].topic
            && available(next)
            && rng.chance(0.45)
        {
            return Some(next);
        }
    }
    for _ in 0..8 {
        let pool: &[usize] = if rng.chance(0.85) {
            let total: f64 = tastes.iter().map(|t| t.1).sum();
            let mut pick = rng.unit() * total;
            let topic = tastes
                .iter()
                .find(|(_, w)| {
                    pick -= w;
                    pick < 0.0
                })
                .map_or(tastes[0].0, |t| t.0);
            &by_topic[topic]
        } else {
            &by_topic[rng.below(by_topic.len())]
        };
        if pool.is_empty() {
            continue;
        }
        // Appeal-weighted choice among a few draws.
        let best = (0..6)
            .map(|_| pool[rng.below(pool.len())])
            .filter(|&i| available(i))
            .max_by(|&a, &b| (appeal[a] * rng_key(a, t)).total_cmp(&(appeal[b] * rng_key(b, t))));
        if best.is_some() {
            return best;
        }
    }
    None
}

/// A fixed per-item jitter so that ties between equal appeals break the same way.
fn rng_key(i: usize, t: f64) -> f64 {
    let mut r = Rng::new(i as u64 ^ t.to_bits());
    0.5 + r.unit()
}

fn topic_words(rng: &mut Rng) -> Vec<String> {
    (0..WORDS_PER_TOPIC)
        .map(|_| {
            (0..2 + rng.below(2))
                .map(|_| SYLLABLES[rng.below(SYLLABLES.len())])
                .collect::<String>()
        })
        .collect()
}

/// `n` unit vectors around `centres` random unit centres, each with
/// Gaussian noise of total length about `noise`. The centres depend only
/// on `dims` and `centres`, so vectors drawn with another `seed` (queries)
/// come from the same clusters.
pub fn clustered_vectors(
    n: usize,
    dims: usize,
    centres: usize,
    noise: f64,
    seed: u64,
) -> Vec<Vec<f32>> {
    ClusteredVectors::new(dims, centres, noise, seed)
        .take(n)
        .collect()
}

/// The endless stream behind `clustered_vectors`.
pub struct ClusteredVectors {
    centres: Vec<Vec<f64>>,
    sigma: f64,
    rng: Rng,
}

impl ClusteredVectors {
    pub fn new(dims: usize, centres: usize, noise: f64, seed: u64) -> ClusteredVectors {
        let mut centre_rng = Rng::new(0x00c3_47e5 ^ (dims as u64) << 20 ^ centres as u64);
        let centres = (0..centres.max(1))
            .map(|_| unit((0..dims).map(|_| centre_rng.gaussian()).collect()))
            .collect();
        ClusteredVectors {
            centres,
            sigma: noise / (dims as f64).sqrt(),
            rng: Rng::new(seed ^ 0x005e_ed0f_7ec5),
        }
    }
}

impl Iterator for ClusteredVectors {
    type Item = Vec<f32>;

    fn next(&mut self) -> Option<Vec<f32>> {
        let centre = &self.centres[self.rng.below(self.centres.len())];
        let v = centre
            .iter()
            .map(|c| c + self.sigma * self.rng.gaussian())
            .collect();
        Some(unit(v).into_iter().map(|x| x as f32).collect())
    }
}

fn unit(v: Vec<f64>) -> Vec<f64> {
    let norm = v
        .iter()
        .map(|x| x * x)
        .sum::<f64>()
        .sqrt()
        .max(f64::MIN_POSITIVE);
    v.into_iter().map(|x| x / norm).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> SyntheticConfig {
        SyntheticConfig {
            users: 200,
            items: 400,
            ..SyntheticConfig::default()
        }
    }

    #[test]
    fn same_seed_same_data_other_seed_other_data() {
        let a = generate(&small());
        let b = generate(&small());
        assert_eq!(a, b);
        let c = generate(&SyntheticConfig { seed: 2, ..small() });
        assert_ne!(a.1, c.1);
    }

    #[test]
    fn has_the_shapes_it_promises() {
        let cfg = small();
        let (items, events) = generate(&cfg);
        assert_eq!(items.len(), cfg.items);
        assert!(events.len() > 20 * cfg.users, "{} events", events.len());
        // every event is of an item already in the catalog
        assert!(events.iter().all(|e| items[e.item].created <= e.t));
        // the catalog grows: some items arrive late
        let late = items
            .iter()
            .filter(|i| i.created > cfg.start + 365.0 * DAY)
            .count();
        assert!(late > cfg.items / 4, "{late} late items");
        // multi-year histories, quiet gaps of months, tied timestamps, dislikes
        let mut by_user: Vec<Vec<&SyntheticEvent>> = vec![Vec::new(); cfg.users];
        for e in &events {
            by_user[e.user].push(e);
        }
        let long = by_user
            .iter()
            .filter(|h| h.len() > 1 && h[h.len() - 1].t - h[0].t > 2.0 * 365.0 * DAY)
            .count();
        assert!(long > cfg.users / 10, "{long} users span two years");
        let gaps = by_user
            .iter()
            .filter(|h| h.windows(2).any(|w| w[1].t - w[0].t > 180.0 * DAY))
            .count();
        assert!(gaps > cfg.users / 10, "{gaps} users come back after months");
        let tied = by_user
            .iter()
            .flat_map(|h| h.windows(2))
            .filter(|w| w[0].t == w[1].t)
            .count();
        assert!(tied > events.len() / 10, "{tied} tied pairs");
        assert!(events.iter().any(|e| e.kind == "dislike"));
        // per user, time never goes back
        assert!(by_user
            .iter()
            .all(|h| h.windows(2).all(|w| w[0].t <= w[1].t)));
    }
}
