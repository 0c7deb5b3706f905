//! `event_queue`: events of small statements, waiting to be folded into the
//! shared state. Appends, claims (delete and return, in arrival order), and
//! the per-backend check of when the queue was last folded.

use super::rewrites;
use crate::embedding_type::Embedding;
use crate::sources::{decode_event, EventSource};
use crate::spi::{exec_cached, one_cached, run_cached, spi_error};
use interest_core::events::{Event, EventRow, Subject};
use pgrx::prelude::*;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The queue's columns under the names `sources::decode_event` reads.
const CLAIMED_COLUMNS: &str = "user_key, item_key, t, weight, NULL::text AS event_text, embedding";

/// Appends accepted events (free texts already embedded, as `Subject::Vector`);
/// returns the sequence numbers they were given.
pub(crate) fn append(source_id: i32, events: Vec<Event>) -> Vec<i64> {
    let (mut u, mut it, mut t, mut w, mut e) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for ev in events {
        let (item, vector) = match ev.subject {
            Subject::Item(item) => (Some(item), None),
            Subject::Vector(v) => (None, Some(Embedding::new(v))),
            // Texts are embedded before they are queued: nothing to store.
            Subject::Text(_) => continue,
        };
        u.push(ev.user);
        it.push(item);
        t.push(ev.t);
        w.push(ev.weight);
        e.push(vector);
    }
    if u.is_empty() {
        return Vec::new();
    }
    run_cached(
        "INSERT INTO interest.event_queue (source_id, user_key, item_key, t, weight, embedding) \
         SELECT $1, u, i, t, w, e FROM unnest($2::text[], $3::text[], $4::float8[], $5::float8[], $6::interest.embedding[]) \
         WITH ORDINALITY AS x(u, i, t, w, e, n) ORDER BY n RETURNING seq",
        &[source_id.into(), u.into(), it.into(), t.into(), w.into(), e.into()],
        |t| t.map(|r| r.get::<i64>(1).map(|v| v.unwrap_or(0))).collect(),
    )
}

/// Claims every queued event of the source (the caller holds the source
/// lock exclusively), in arrival order.
pub(crate) fn claim_all(source_id: i32) -> Vec<EventRow> {
    let sql = format!(
        "WITH claimed AS (DELETE FROM interest.event_queue WHERE source_id = $1 RETURNING *) \
         SELECT {CLAIMED_COLUMNS} FROM claimed ORDER BY seq"
    );
    run_cached(&sql, &[source_id.into()], |t| {
        t.map(|r| decode_event(&r)).collect()
    })
}

/// What `claim_and_read` returns for a set of users.
#[derive(Default)]
pub(crate) struct Claimed {
    /// Their queued events (co-visitation has not counted them).
    pub(crate) queued: Vec<EventRow>,
    /// Their rows in the application's table, in replay order.
    pub(crate) history: Vec<EventRow>,
    /// Their deferred DELETE/UPDATE rows (`store::rewrites`): old rows...
    pub(crate) removed: Vec<EventRow>,
    /// ...and an UPDATE's new rows.
    pub(crate) added: Vec<EventRow>,
}

/// In one statement (one snapshot): claims the users' queued events and
/// deferred rewrites and reads their events from the application's table, in
/// the order a rebuild replays them. A change committed after that snapshot
/// stays queued, and its rows are not read: it is applied later, as a whole.
pub(crate) fn claim_and_read(src: &EventSource, users: &[String]) -> Claimed {
    let query = format!(
        "WITH claimed AS (DELETE FROM interest.event_queue WHERE source_id = $2 AND user_key IN (SELECT unnest($1::text[])) RETURNING *), \
         rewritten AS (DELETE FROM interest.rewrite_queue WHERE source_id = $2 AND user_key IN (SELECT unnest($1::text[])) RETURNING *) \
         SELECT 0 AS part, seq, NULL::int8 AS row_id, {CLAIMED_COLUMNS} FROM claimed \
         UNION ALL \
         SELECT CASE change WHEN '{removed}' THEN 2 ELSE 3 END, seq, NULL, user_key, item_key, t, weight, NULL, NULL FROM rewritten \
         UNION ALL \
         SELECT 1, NULL, row_id, user_key, item_key, t, weight, event_text, NULL::interest.embedding \
         FROM interest._owner_rows($2, $1) \
         ORDER BY part, seq, t, row_id",
        removed = rewrites::REMOVED,
    );
    // The native match (which uses the application's index) may also find
    // keys equal in the column's type but spelled otherwise ('007' for 7):
    // those rows are other bookkeeping users', and are left out.
    let wanted: std::collections::HashSet<&str> = users.iter().map(String::as_str).collect();
    let mut out = Claimed::default();
    Spi::connect_mut(|c| {
        for r in c.update(&query, None, &[users.to_vec().into(), src.id.into()])? {
            let event = decode_event(&r)?;
            match r.get_by_name::<i32, _>("part")? {
                Some(0) => out.queued.push(event),
                Some(2) => out.removed.push(event),
                Some(3) => out.added.push(event),
                _ if event.user.as_deref().is_some_and(|u| wanted.contains(u)) => {
                    out.history.push(event)
                }
                _ => {}
            }
        }
        Ok::<_, pgrx::spi::Error>(())
    })
    .unwrap_or_else(|e| spi_error(e));
    out
}

/// Records that the source's queue was folded now.
pub(crate) fn stamp_folded(source_id: i32) {
    exec_cached(
        "UPDATE interest.event_sources SET folded_at = clock_timestamp() WHERE id = $1",
        &[source_id.into()],
    );
}

thread_local! {
    // Per backend and event source: when this backend last looked at the
    // source's folded_at (or folded). It looks again `interest.fold_interval`
    // later, so the check costs one query per backend per interval, and a
    // quiet table's counts and links are never far behind.
    static LAST_FOLD_CHECK: std::cell::RefCell<HashMap<i32, Instant>> =
        std::cell::RefCell::new(HashMap::new());
}

/// True when the source's queue was last folded (by any backend) at least
/// `interval_ms` ago.
pub(crate) fn fold_interval_passed(source_id: i32, interval_ms: i32) -> bool {
    if interval_ms <= 0 {
        return false;
    }
    let checked_recently = LAST_FOLD_CHECK.with(|m| {
        m.borrow()
            .get(&source_id)
            .is_some_and(|t| t.elapsed() < Duration::from_millis(interval_ms as u64))
    });
    if checked_recently {
        return false;
    }
    note_fold_check(source_id);
    one_cached::<bool>(
        "SELECT coalesce(extract(epoch FROM clock_timestamp() - folded_at) * 1000 >= $2, true) \
         FROM interest.event_sources WHERE id = $1",
        &[source_id.into(), (interval_ms as f64).into()],
    )
    .unwrap_or(false)
}

pub(crate) fn note_fold_check(source_id: i32) {
    LAST_FOLD_CHECK.with(|m| m.borrow_mut().insert(source_id, Instant::now()));
}

/// In one statement (one snapshot), empties the source's queues and reads
/// the whole table in replay order: an event is either read here and dropped
/// from the queue, or committed later and still queued.
pub(crate) fn clear_and_read_table(src: &EventSource) -> Vec<EventRow> {
    let query = "WITH unqueued AS (DELETE FROM interest.event_queue WHERE source_id = $1), \
         unrewritten AS (DELETE FROM interest.rewrite_queue WHERE source_id = $1) \
         SELECT user_key, item_key, t, weight, event_text, NULL::interest.embedding AS embedding \
         FROM interest._owner_rows($1, NULL) ORDER BY t, row_id";
    Spi::connect_mut(|c| {
        c.update(query, None, &[src.id.into()])?
            .map(|r| decode_event(&r))
            .collect::<Result<Vec<_>, pgrx::spi::Error>>()
    })
    .unwrap_or_else(|e| spi_error(e))
}
