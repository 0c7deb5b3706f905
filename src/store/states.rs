//! `user_states` and `user_interests`: each user's interest state, one row
//! per user and one per sub-interest.

use crate::embedding_type::Embedding;
use crate::spi::{exec, run_cached};
use interest_core::interest_state::{Centroid, InterestState};
use pgrx::spi::SpiHeapTupleData;
use std::collections::HashMap;

/// The state columns, as `add_state_row` reads them: a user row joined with
/// one of its sub-interest rows (NULL centroid when it has none).
pub(crate) const STATE_COLUMNS: &str =
    "s.t_ref, s.total, s.events AS user_events, i.centroid, i.mass, \
     i.weight AS interest_weight, i.last_seen, i.events AS interest_events";

/// Adds one joined row to `state`: the user's part at the first row, then
/// one sub-interest per row, in slot order.
pub(crate) fn add_state_row(
    state: &mut Option<InterestState>,
    r: &SpiHeapTupleData<'_>,
) -> Result<(), pgrx::spi::Error> {
    let s = match state {
        Some(s) => s,
        None => state.insert(InterestState {
            t_ref: r.get_by_name::<f64, _>("t_ref")?.unwrap_or(0.0),
            total: widen(r.get_by_name::<Embedding, _>("total")?),
            centroids: Vec::new(),
            events: r.get_by_name::<i64, _>("user_events")?.unwrap_or(0) as u64,
        }),
    };
    if let Some(c) = r.get_by_name::<Embedding, _>("centroid")? {
        s.centroids.push(Centroid {
            sum: widen(Some(c)),
            mass: r.get_by_name::<f64, _>("mass")?.unwrap_or(0.0),
            weight: r.get_by_name::<f64, _>("interest_weight")?.unwrap_or(0.0),
            last_seen: r.get_by_name::<f64, _>("last_seen")?.unwrap_or(0.0),
            events: r.get_by_name::<i64, _>("interest_events")?.unwrap_or(0) as u64,
        });
    }
    Ok(())
}

fn widen(e: Option<Embedding>) -> Vec<f64> {
    e.map(|e| e.into_vec().into_iter().map(f64::from).collect())
        .unwrap_or_default()
}

fn narrow(v: &[f64]) -> Embedding {
    Embedding::new(v.iter().map(|&x| x as f32).collect())
}

pub(crate) fn load_states(source_id: i32, users: &[String]) -> HashMap<String, InterestState> {
    let sql = format!(
        "SELECT s.user_key, {STATE_COLUMNS} \
         FROM interest.user_states s \
         LEFT JOIN interest.user_interests i ON i.source_id = s.source_id AND i.user_key = s.user_key \
         WHERE s.source_id = $1 AND s.user_key IN (SELECT unnest($2::text[])) ORDER BY s.user_key, i.slot"
    );
    run_cached(&sql, &[source_id.into(), users.to_vec().into()], |t| {
        let mut by_user: HashMap<String, Option<InterestState>> = HashMap::new();
        for r in t {
            let user = r.get_by_name::<String, _>("user_key")?.unwrap_or_default();
            add_state_row(by_user.entry(user).or_default(), &r)?;
        }
        Ok(by_user
            .into_iter()
            .filter_map(|(u, s)| Some((u, s?)))
            .collect())
    })
}

/// Writes the users' rows and those sub-interest rows that differ from
/// `stored` (what the table holds): an event changes one sub-interest (or
/// merges two), and rewriting the untouched rows would double its WAL.
pub(crate) fn save_states(
    source_id: i32,
    states: &HashMap<String, InterestState>,
    stored: &HashMap<String, Vec<Centroid>>,
) {
    let (mut users, mut t_refs, mut totals, mut counts, mut slots) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::<i32>::new(),
    );
    let (mut i_users, mut i_slots, mut i_vecs, mut i_mass, mut i_seen, mut i_events, mut i_weights) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::<f64>::new(),
    );
    for (user, s) in states {
        users.push(user.clone());
        t_refs.push(s.t_ref);
        totals.push(narrow(&s.total));
        counts.push(s.events as i64);
        slots.push(s.centroids.len() as i32);
        let before = stored.get(user);
        for (slot, c) in s.centroids.iter().enumerate() {
            if before.and_then(|b| b.get(slot)) == Some(c) {
                continue;
            }
            i_users.push(user.clone());
            i_slots.push(slot as i32);
            i_vecs.push(narrow(&c.sum));
            i_mass.push(c.mass);
            i_seen.push(c.last_seen);
            i_events.push(c.events as i64);
            i_weights.push(c.weight);
        }
    }
    // One statement: upsert the users' rows, drop sub-interests past each
    // user's new count, upsert the rest (disjoint rows, so no conflicts).
    run_cached(
        "WITH st AS ( \
           INSERT INTO interest.user_states (source_id, user_key, t_ref, total, events, updated_at) \
           SELECT $1, u, t, e, n, now() FROM unnest($2::text[], $3::float8[], $4::interest.embedding[], $5::int8[]) AS x(u, t, e, n) \
           ON CONFLICT (source_id, user_key) DO UPDATE \
           SET t_ref = excluded.t_ref, total = excluded.total, events = excluded.events, updated_at = excluded.updated_at \
           RETURNING 1), \
         gone AS ( \
           DELETE FROM interest.user_interests i USING unnest($2::text[], $6::int4[]) AS k(u, n) \
           WHERE i.source_id = $1 AND i.user_key = k.u AND i.slot >= k.n \
           RETURNING 1) \
         INSERT INTO interest.user_interests (source_id, user_key, slot, centroid, mass, weight, last_seen, events) \
         SELECT $1, u, s, c, m, w, l, n \
         FROM unnest($7::text[], $8::int4[], $9::interest.embedding[], $10::float8[], $11::float8[], $12::int8[], $13::float8[]) AS x(u, s, c, m, l, n, w) \
         ON CONFLICT (source_id, user_key, slot) DO UPDATE \
         SET centroid = excluded.centroid, mass = excluded.mass, weight = excluded.weight, last_seen = excluded.last_seen, events = excluded.events",
        &[
            source_id.into(),
            users.into(),
            t_refs.into(),
            totals.into(),
            counts.into(),
            slots.into(),
            i_users.into(),
            i_slots.into(),
            i_vecs.into(),
            i_mass.into(),
            i_seen.into(),
            i_events.into(),
            i_weights.into(),
        ],
        |_| Ok(()),
    );
}

/// Forgets the users' states (`None`: every user of the source).
pub(crate) fn delete(source_id: i32, users: Option<&[String]>) {
    for table in ["user_interests", "user_states"] {
        delete_rows(table, source_id, users);
    }
}

/// Deletes a bookkeeping table's rows of a source, or of some of its users.
pub(crate) fn delete_rows(table: &str, source_id: i32, users: Option<&[String]>) {
    match users {
        Some(users) => exec(
            &format!("DELETE FROM interest.{table} WHERE source_id = $1 AND user_key IN (SELECT unnest($2::text[]))"),
            &[source_id.into(), users.to_vec().into()],
        ),
        None => exec(
            &format!("DELETE FROM interest.{table} WHERE source_id = $1"),
            &[source_id.into()],
        ),
    }
}
