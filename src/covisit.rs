//! Co-visitation bookkeeping in the event triggers: loads the users' recent
//! lists and the touched items' stats, applies `interest_core::covisit`, saves.
//! Called with the users (and, per key or for the whole source, the items)
//! already locked by `interests::lock_users`.

use crate::errors::raise;
use crate::interests::run_cached;
use interest_core::covisit::{push_recent, CovisitParams, ItemGraph, ItemStats};
use interest_core::link_codec;
use pgrx::prelude::*;
use std::collections::{BTreeMap, HashMap};

pub(crate) fn params() -> CovisitParams {
    CovisitParams::default()
}

/// `visits` are (user, item, time). With `count_links`, items are counted
/// and linked; otherwise only the users' recent lists move. `whole_source`:
/// the caller holds the source lock exclusively, so no per-item locks.
pub(crate) fn update(
    source_id: i32,
    visits: Vec<(String, String, f64)>,
    count_links: bool,
    whole_source: bool,
) {
    if visits.is_empty() {
        return;
    }
    let p = params();
    let mut per_user: BTreeMap<String, Vec<(String, f64)>> = BTreeMap::new();
    for (u, i, t) in visits {
        per_user.entry(u).or_default().push((i, t));
    }
    for evs in per_user.values_mut() {
        evs.sort_by(|a, b| a.1.total_cmp(&b.1)); // stable: ties keep table order
    }
    let users: Vec<String> = per_user.keys().cloned().collect();
    let mut recent = load_recent(source_id, &users);
    if !count_links {
        for (user, evs) in per_user {
            let (items, times) = recent.entry(user).or_default();
            for (item, t) in evs {
                push_recent(items, times, item, t, &p);
            }
        }
        save_recent(source_id, recent);
        return;
    }
    let mut keys: Vec<String> = per_user
        .values()
        .flatten()
        .map(|(i, _)| i.clone())
        .collect();
    for u in &users {
        if let Some((items, _)) = recent.get(u) {
            keys.extend(items.iter().rev().take(p.window).cloned());
        }
    }
    keys.sort();
    keys.dedup();
    if !whole_source {
        lock_items(source_id, &keys);
    }
    // Item keys become small integers for the statement: the graph then
    // hashes and copies integers, not strings (a COPY makes millions of links).
    let mut ids = Interner::default();
    let mut graph: ItemGraph<u32> = ItemGraph::default();
    for (k, s) in load_item_stats(source_id, &keys, |j| ids.id_of(j)) {
        graph.insert(ids.id(k), s);
    }
    let mut recent_ids: HashMap<String, (Vec<u32>, Vec<f64>)> =
        HashMap::with_capacity(per_user.len());
    for (user, evs) in per_user {
        let (items, times) = recent.remove(&user).unwrap_or_default();
        let mut items: Vec<u32> = items.into_iter().map(|k| ids.id(k)).collect();
        let mut times = times;
        for (item, t) in evs {
            let item = ids.id(item);
            graph.observe(&mut items, &mut times, &item, t, &p);
        }
        recent_ids.insert(user, (items, times));
    }
    let recent: HashMap<String, (Vec<String>, Vec<f64>)> = recent_ids
        .into_iter()
        .map(|(u, (items, times))| {
            (
                u,
                (
                    items.into_iter().map(|i| ids.key(i).to_string()).collect(),
                    times,
                ),
            )
        })
        .collect();
    save_recent(source_id, recent);
    save_graph(source_id, graph, &ids, &p);
}

/// Per-item locks, in lock-key order (after the users' locks).
fn lock_items(source_id: i32, keys: &[String]) {
    run_cached(
        "SELECT count(pg_catalog.pg_advisory_xact_lock(-1000000 - $1, h)) \
         FROM (SELECT DISTINCT pg_catalog.hashtext(k) AS h FROM unnest($2::text[]) k ORDER BY 1) s",
        &[source_id.into(), keys.to_vec().into()],
        |_| Ok(()),
    );
}

/// Deleted or updated events: each user's visit history went from `before`
/// to `after` ((item, time) in order); their counts and links are taken back
/// or added (`ItemGraph::rewrite_history`). Users are locked by the caller.
pub(crate) fn rewrite_histories(
    source_id: i32,
    histories: Vec<(Vec<(String, f64)>, Vec<(String, f64)>)>,
    whole_source: bool,
) {
    let p = params();
    let mut keys: Vec<String> = histories
        .iter()
        .flat_map(|(b, a)| b.iter().chain(a).map(|(i, _)| i.clone()))
        .collect();
    keys.sort();
    keys.dedup();
    if keys.is_empty() {
        return;
    }
    if !whole_source && keys.len() <= 2_000 {
        lock_items(source_id, &keys);
    } else {
        // Too many keys for per-item locks: the whole source, exclusively
        // (an upgrade of our shared lock; two such statements at once can
        // deadlock, and the loser's bookkeeping is then recorded as failed).
        // Rare: it takes a delete touching the histories of 2,000 items.
        run_cached(
            "SELECT pg_catalog.pg_advisory_xact_lock(-$1, 0)",
            &[source_id.into()],
            |_| Ok(()),
        );
    }
    let mut ids = Interner::default();
    let mut graph: ItemGraph<u32> = ItemGraph::default();
    for (k, s) in load_item_stats(source_id, &keys, |j| ids.id_of(j)) {
        graph.insert(ids.id(k), s);
    }
    for (before, after) in histories {
        let before: Vec<(u32, f64)> = before.into_iter().map(|(i, t)| (ids.id(i), t)).collect();
        let after: Vec<(u32, f64)> = after.into_iter().map(|(i, t)| (ids.id(i), t)).collect();
        graph.rewrite_history(&before, &after, &p);
    }
    save_graph(source_id, graph, &ids, &p);
}

fn save_graph(source_id: i32, graph: ItemGraph<u32>, ids: &Interner, p: &CovisitParams) {
    let stats: HashMap<String, ItemStats<String>> = graph
        .finish(p)
        .into_iter()
        .map(|(k, s)| {
            let links = s
                .links
                .into_iter()
                .map(|(j, w)| (ids.key(j).to_string(), w))
                .collect();
            (
                ids.key(k).to_string(),
                ItemStats {
                    t_ref: s.t_ref,
                    count: s.count,
                    first_seen: s.first_seen,
                    last_seen: s.last_seen,
                    links,
                },
            )
        })
        .collect();
    save_item_stats(source_id, stats);
}

#[derive(Default)]
struct Interner {
    ids: HashMap<String, u32>,
    keys: Vec<String>,
}

impl Interner {
    fn id(&mut self, key: String) -> u32 {
        if let Some(&i) = self.ids.get(&key) {
            return i;
        }
        let i = self.keys.len() as u32;
        self.keys.push(key.clone());
        self.ids.insert(key, i);
        i
    }

    /// As `id`, allocating only for a key not seen before.
    fn id_of(&mut self, key: &str) -> u32 {
        match self.ids.get(key) {
            Some(&i) => i,
            None => self.id(key.to_string()),
        }
    }

    fn key(&self, id: u32) -> &str {
        &self.keys[id as usize]
    }
}

pub(crate) fn load_recent(
    source_id: i32,
    users: &[String],
) -> HashMap<String, (Vec<String>, Vec<f64>)> {
    run_cached(
        "SELECT user_key, items, times FROM interest.user_recent WHERE source_id = $1 AND user_key = ANY($2)",
        &[source_id.into(), users.to_vec().into()],
        |t| {
            t.map(|r| {
                Ok((
                    r.get::<String>(1)?.unwrap(),
                    (
                        r.get::<Vec<String>>(2)?.unwrap_or_default(),
                        r.get::<Vec<f64>>(3)?.unwrap_or_default(),
                    ),
                ))
            })
            .collect()
        },
    )
}

fn save_recent(source_id: i32, recent: HashMap<String, (Vec<String>, Vec<f64>)>) {
    // Ragged arrays travel as one array literal per row: slicing one long
    // flat text[] would walk it from the start for every row (quadratic).
    let (mut users, mut items, mut times) = (Vec::new(), Vec::new(), Vec::new());
    for (u, (i, t)) in recent {
        users.push(u);
        items.push(text_array_literal(&i));
        times.push(float_array_literal(&t));
    }
    run_cached(
        "INSERT INTO interest.user_recent (source_id, user_key, items, times) \
         SELECT $1, u, i::text[], t::float8[] FROM unnest($2::text[], $3::text[], $4::text[]) AS x(u, i, t) \
         ON CONFLICT (source_id, user_key) DO UPDATE SET items = excluded.items, times = excluded.times",
        &[source_id.into(), users.into(), items.into(), times.into()],
        |_| Ok(()),
    );
}

/// `{"a","b\"c"}`: a Postgres array literal with every element quoted.
fn text_array_literal(items: &[String]) -> String {
    let mut out = String::with_capacity(2 + items.iter().map(|s| s.len() + 3).sum::<usize>());
    out.push('{');
    for (n, s) in items.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        out.push('"');
        for c in s.chars() {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
    }
    out.push('}');
    out
}

/// `{1.5e0,2.5e-3}`: exponent form keeps tiny decayed values short; exact round trip.
fn float_array_literal<T: std::fmt::LowerExp>(values: &[T]) -> String {
    let body: Vec<String> = values.iter().map(|v| format!("{v:e}")).collect();
    format!("{{{}}}", body.join(","))
}

/// The stats rows of `keys`, with each link's key mapped by `link_key`
/// straight from the packed bytes (no String per link).
pub(crate) fn load_item_stats<K>(
    source_id: i32,
    keys: &[String],
    mut link_key: impl FnMut(&str) -> K,
) -> Vec<(String, ItemStats<K>)> {
    run_cached(
        "SELECT item_key, t_ref, events, first_seen, last_seen, links \
         FROM interest.item_stats WHERE source_id = $1 AND item_key = ANY($2)",
        &[source_id.into(), keys.to_vec().into()],
        |t| {
            t.map(|r| {
                let packed: &[u8] = r.get::<&[u8]>(6)?.unwrap_or_default();
                let links = unpack(packed)
                    .into_iter()
                    .map(|(k, w)| (link_key(k), w as f64))
                    .collect();
                Ok((
                    r.get::<String>(1)?.unwrap(),
                    ItemStats {
                        t_ref: r.get::<f64>(2)?.unwrap(),
                        count: r.get::<f64>(3)?.unwrap(),
                        first_seen: r.get::<f64>(4)?.unwrap(),
                        last_seen: r.get::<f64>(5)?.unwrap(),
                        links,
                    },
                ))
            })
            .collect()
        },
    )
}

fn save_item_stats(source_id: i32, stats: HashMap<String, ItemStats<String>>) {
    let n = stats.len();
    let (mut keys, mut t_refs, mut counts, mut firsts, mut lasts) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    // Each item's links are stored packed (link_codec).
    let mut links: Vec<Vec<u8>> = Vec::with_capacity(n);
    for (k, s) in stats {
        keys.push(k);
        t_refs.push(s.t_ref);
        counts.push(s.count);
        firsts.push(s.first_seen);
        lasts.push(s.last_seen);
        links.push(link_codec::encode(
            s.links.iter().map(|(l, w)| (l.as_str(), *w as f32)),
        ));
    }
    run_cached(
        "INSERT INTO interest.item_stats (source_id, item_key, t_ref, events, first_seen, last_seen, links) \
         SELECT $1, k, t, c, f, l, p \
         FROM unnest($2::text[], $3::float8[], $4::float8[], $5::float8[], $6::float8[], $7::bytea[]) AS x(k, t, c, f, l, p) \
         ON CONFLICT (source_id, item_key) DO UPDATE SET t_ref = excluded.t_ref, events = excluded.events, \
           first_seen = excluded.first_seen, last_seen = excluded.last_seen, links = excluded.links",
        &[
            source_id.into(),
            keys.into(),
            t_refs.into(),
            counts.into(),
            firsts.into(),
            lasts.into(),
            links.into(),
        ],
        |_| Ok(()),
    );
}

fn unpack(packed: &[u8]) -> Vec<(&str, f32)> {
    link_codec::decode(packed).unwrap_or_else(|| {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_BINARY_REPRESENTATION,
            "malformed packed co-visitation links",
            format!(
                "{} bytes that are not (length, key, weight) records.",
                packed.len()
            ),
            "Only interest.item_stats.links holds packed link lists.",
        )
    })
}

/// The keys of a packed link list (`interest.item_stats.links`), strongest first.
#[pg_extern(immutable, strict, parallel_safe)]
fn _link_keys(packed: &[u8]) -> Vec<String> {
    unpack(packed)
        .into_iter()
        .map(|(k, _)| k.to_string())
        .collect()
}

/// The weights of a packed link list, in the order of `_link_keys` (relative
/// to the row's t_ref).
#[pg_extern(immutable, strict, parallel_safe)]
fn _link_weights(packed: &[u8]) -> Vec<f32> {
    unpack(packed).into_iter().map(|(_, w)| w).collect()
}

/// Every item's decayed count and first appearance (for popularity,
/// freshness and the normalisation of co-visitation scores).
pub(crate) fn load_all_counts(source_id: i32) -> Vec<(String, f64, f64, f64)> {
    run_cached(
        "SELECT item_key, t_ref, events, first_seen FROM interest.item_stats WHERE source_id = $1",
        &[source_id.into()],
        |t| {
            t.map(|r| {
                Ok((
                    r.get::<String>(1)?.unwrap(),
                    r.get::<f64>(2)?.unwrap(),
                    r.get::<f64>(3)?.unwrap(),
                    r.get::<f64>(4)?.unwrap(),
                ))
            })
            .collect()
        },
    )
}
