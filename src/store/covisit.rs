//! `user_recent`, `item_stats` and `item_links`: each user's last items, and
//! each item's decayed count and strongest co-visitation links. Loads them, applies
//! `interest_core::covisit`, saves. The caller holds the users' locks
//! (`crate::locks`); item locks are taken here, after them.

use crate::errors::raise;
use crate::locks::{self, Held};
use crate::spi::{read_cached, run_cached};
use interest_core::array_literal::{float_array_literal, text_array_literal};
use interest_core::covisit::{push_recent, CovisitParams, ItemGraph, ItemStats};
use interest_core::covisit_history::{sort_visits, HistoryChange};
use interest_core::events::group_by_user;
use interest_core::interner::Interner;
use interest_core::link_codec;
use pgrx::prelude::*;
use std::collections::HashMap;

/// A visit for co-visitation and popularity: (user, item, time).
pub(crate) type Visit = (String, String, f64);

/// The source's co-visitation and popularity settings.
pub(crate) fn params(source_id: i32) -> CovisitParams {
    crate::sources::load_event_source(source_id).covisit
}

/// Each user's recent list, as stored.
type RecentLists = HashMap<String, (Vec<String>, Vec<f64>)>;

/// The visits per user in apply order, with those users' recent lists; None
/// when there are no visits.
fn with_recent_lists(source_id: i32, visits: Vec<Visit>) -> Option<(PerUser, RecentLists)> {
    if visits.is_empty() {
        return None;
    }
    let per_user = per_user(visits);
    let users: Vec<String> = per_user.keys().cloned().collect();
    let recent = load_recent(source_id, &users);
    Some((per_user, recent))
}

type PerUser = std::collections::BTreeMap<String, Vec<(String, f64)>>;

/// Each user's visits in the order co-visitation sees them
/// (`covisit_history::visit_order`: by time, same-time visits by item).
fn per_user(visits: Vec<Visit>) -> PerUser {
    let mut per_user: PerUser = group_by_user(visits, |v| v.0.as_str(), |v| v.2)
        .into_iter()
        .map(|(u, vs)| (u, vs.into_iter().map(|(_, i, t)| (i, t)).collect()))
        .collect();
    per_user.values_mut().for_each(|v| sort_visits(v));
    per_user
}

/// New visits: counted, linked with each user's recent items, and appended
/// to the recent lists.
pub(crate) fn count_visits(source_id: i32, visits: Vec<Visit>, held: Held) {
    let Some((per_user, mut recent)) = with_recent_lists(source_id, visits) else {
        return;
    };
    let p = params(source_id);
    let users: Vec<String> = per_user.keys().cloned().collect();
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
    lock_bounded(source_id, &keys, held);
    // Item keys become small integers for the statement: the graph then
    // hashes and copies integers, not strings.
    let mut ids = Interner::default();
    let mut graph: ItemGraph<u32> = ItemGraph::default();
    for (k, s) in load_item_stats(source_id, &keys, |j| ids.id_of(j)) {
        graph.insert(ids.id(k), s);
    }
    let mut recent_after: HashMap<String, (Vec<String>, Vec<f64>)> =
        HashMap::with_capacity(per_user.len());
    for (user, evs) in per_user {
        let (items, mut times) = recent.remove(&user).unwrap_or_default();
        let mut items: Vec<u32> = items.into_iter().map(|k| ids.id(k)).collect();
        for (item, t) in evs {
            let item = ids.id(item);
            graph.observe(&mut items, &mut times, &item, t, &p);
        }
        let items = items.into_iter().map(|i| ids.key(i).to_string()).collect();
        recent_after.insert(user, (items, times));
    }
    save_recent(source_id, recent_after);
    save_graph(source_id, graph, &ids, &p);
}

/// Visits already counted (a user replayed after a DELETE or UPDATE, whose
/// counts and links `rewrite_histories` has rewritten): only the users'
/// recent lists move.
pub(crate) fn move_recent_lists(source_id: i32, visits: Vec<Visit>) {
    let Some((per_user, mut recent)) = with_recent_lists(source_id, visits) else {
        return;
    };
    let p = params(source_id);
    for (user, evs) in per_user {
        let (items, times) = recent.entry(user).or_default();
        for (item, t) in evs {
            push_recent(items, times, item, t, &p);
        }
    }
    save_recent(source_id, recent);
}

/// Deleted or updated events: each user's visit history went from `before`
/// to `after` ((item, time) in order); their counts and links are taken back
/// or added (`ItemGraph::rewrite_history`). Users are locked by the caller.
pub(crate) fn rewrite_histories(source_id: i32, histories: Vec<HistoryChange>, held: Held) {
    let p = params(source_id);
    let mut keys: Vec<String> = histories
        .iter()
        .flat_map(|(b, a)| b.iter().chain(a).map(|(i, _)| i.clone()))
        .collect();
    keys.sort();
    keys.dedup();
    if keys.is_empty() {
        return;
    }
    lock_bounded(source_id, &keys, held);
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

/// Per-item locks, or, for more keys than `locks::BULK_LOCK_KEYS`, the whole
/// source exclusively (an upgrade of our shared lock; two such statements at
/// once can deadlock, and the loser's bookkeeping is then recorded as
/// failed): a statement never takes more than that many item locks.
fn lock_bounded(source_id: i32, keys: &[String], held: Held) {
    let held = if held == Held::PerKey && keys.len() > locks::BULK_LOCK_KEYS {
        locks::lock_source_exclusive(source_id)
    } else {
        held
    };
    locks::lock_items(source_id, keys, held);
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
            let stats = ItemStats {
                t_ref: s.t_ref,
                count: s.count,
                recent: s.recent,
                first_seen: s.first_seen,
                last_seen: s.last_seen,
                links,
            };
            (ids.key(k).to_string(), stats)
        })
        .collect();
    save_item_stats(source_id, stats, p);
}

pub(crate) fn load_recent(source_id: i32, users: &[String]) -> RecentLists {
    run_cached(
        "SELECT user_key, items, times FROM interest.user_recent WHERE source_id = $1 AND user_key IN (SELECT unnest($2::text[]))",
        &[source_id.into(), users.to_vec().into()],
        |t| {
            t.map(|r| {
                Ok((
                    r.get::<String>(1)?.unwrap_or_default(),
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

/// The stats rows of `keys` with their links, each link's key mapped by
/// `link_key` straight from the packed bytes (no String per link).
pub(crate) fn load_item_stats<K>(
    source_id: i32,
    keys: &[String],
    mut link_key: impl FnMut(&str) -> K,
) -> Vec<(String, ItemStats<K>)> {
    read_cached(
        "SELECT s.item_key, s.t_ref, s.events, s.first_seen, s.last_seen, s.recent_events, l.links \
         FROM interest.item_stats s LEFT JOIN interest.item_links l USING (source_id, item_key) \
         WHERE s.source_id = $1 AND s.item_key IN (SELECT unnest($2::text[]))",
        &[source_id.into(), keys.to_vec().into()],
        |t| {
            t.map(|r| {
                let packed: &[u8] = r.get::<&[u8]>(7)?.unwrap_or_default();
                let links = unpack(packed)
                    .into_iter()
                    .map(|(k, w)| (link_key(k), w as f64))
                    .collect();
                stats_row(&r, links)
            })
            .collect()
        },
    )
}

fn save_item_stats(source_id: i32, stats: HashMap<String, ItemStats<String>>, p: &CovisitParams) {
    let n = stats.len();
    let (mut keys, mut t_refs, mut counts, mut recents, mut firsts, mut lasts, mut links) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::<Vec<u8>>::with_capacity(n),
    );
    let mut trends = Vec::<Option<f64>>::with_capacity(n);
    for (k, s) in stats {
        trends.push(s.trend(p));
        keys.push(k);
        t_refs.push(s.t_ref);
        counts.push(s.count);
        recents.push(s.recent);
        firsts.push(s.first_seen);
        lasts.push(s.last_seen);
        links.push(link_codec::encode(
            s.links.iter().map(|(l, w)| (l.as_str(), *w as f32)),
        ));
    }
    run_cached(
        "INSERT INTO interest.item_links (source_id, item_key, links) \
         SELECT $1, k, p FROM unnest($2::text[], $3::bytea[]) AS x(k, p) \
         ON CONFLICT (source_id, item_key) DO UPDATE SET links = excluded.links",
        &[source_id.into(), keys.clone().into(), links.into()],
        |_| Ok(()),
    );
    run_cached(
        "INSERT INTO interest.item_stats (source_id, item_key, t_ref, events, recent_events, first_seen, last_seen, trend) \
         SELECT $1, k, t, c, r, f, l, tr \
         FROM unnest($2::text[], $3::float8[], $4::float8[], $5::float8[], $6::float8[], $7::float8[], $8::float8[]) AS x(k, t, c, r, f, l, tr) \
         ON CONFLICT (source_id, item_key) DO UPDATE SET t_ref = excluded.t_ref, events = excluded.events, \
           recent_events = excluded.recent_events, first_seen = excluded.first_seen, last_seen = excluded.last_seen, \
           trend = excluded.trend",
        &[
            source_id.into(),
            keys.into(),
            t_refs.into(),
            counts.into(),
            recents.into(),
            firsts.into(),
            lasts.into(),
            trends.into(),
        ],
        |_| Ok(()),
    );
}

/// One `item_stats` row: key, reference time, count, first and last event,
/// recent count in columns 1 to 6, with its links decoded by the caller.
pub(super) fn stats_row<K>(
    r: &pgrx::spi::SpiHeapTupleData<'_>,
    links: Vec<(K, f64)>,
) -> Result<(String, ItemStats<K>), pgrx::spi::Error> {
    let stats = ItemStats {
        t_ref: r.get::<f64>(2)?.unwrap_or(0.0),
        count: r.get::<f64>(3)?.unwrap_or(0.0),
        first_seen: r.get::<f64>(4)?.unwrap_or(0.0),
        last_seen: r.get::<f64>(5)?.unwrap_or(0.0),
        recent: r.get::<f64>(6)?.unwrap_or(0.0),
        links,
    };
    Ok((r.get::<String>(1)?.unwrap_or_default(), stats))
}

/// Every item's stored count, reference time and first appearance (for
/// popularity, freshness and the normalisation of co-visitation scores).
pub(crate) fn load_all_counts(source_id: i32) -> Vec<(String, ItemStats<String>)> {
    read_cached(
        "SELECT item_key, t_ref, events, first_seen, last_seen, recent_events FROM interest.item_stats WHERE source_id = $1",
        &[source_id.into()],
        |t| {
            t.map(|r| stats_row(&r, Vec::new()))
            .collect()
        },
    )
}

/// The stored counts of `keys` (recommend()'s candidates, a bounded set:
/// `= ANY`, see src/spi.rs).
pub(crate) fn load_counts(source_id: i32, keys: &[String]) -> Vec<(String, ItemStats<String>)> {
    if keys.is_empty() {
        return Vec::new();
    }
    crate::spi::read_cached_prefetching(
        "SELECT item_key, t_ref, events, first_seen, last_seen, recent_events FROM interest.item_stats \
         WHERE source_id = $1 AND item_key = ANY ($2::text[])",
        &[source_id.into(), keys.to_vec().into()],
        |t| t.map(|r| stats_row(&r, Vec::new())).collect(),
    )
}

/// Forgets the users' recent lists (`None`: the source's, with every item's stats).
pub(crate) fn delete(source_id: i32, users: Option<&[String]>) {
    super::states::delete_rows("user_recent", source_id, users);
    if users.is_none() {
        super::states::delete_rows("item_stats", source_id, None);
        super::states::delete_rows("item_links", source_id, None);
    }
}

fn unpack(packed: &[u8]) -> Vec<(&str, f32)> {
    link_codec::decode(packed).unwrap_or_else(|| {
        raise(
            pgrx::PgSqlErrorCode::ERRCODE_INVALID_BINARY_REPRESENTATION,
            "malformed packed co-visitation links",
            format!(
                "{} bytes that are not (length, key, weight) records.",
                packed.len()
            ),
            "Only interest.item_links.links holds packed link lists.",
        )
    })
}

/// The keys of a packed link list (`interest.item_links.links`), strongest first.
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

/// The co-visitation half-life in seconds: tests and tools that compare
/// stored counts (each relative to its own t_ref) decay them with it.
#[pg_extern(immutable, parallel_safe)]
fn _covisit_half_life_secs() -> f64 {
    CovisitParams::default().half_life_secs
}
