//! `rewrite_queue`: DELETEs, UPDATEs and TRUNCATEs of events whose
//! bookkeeping could not run at once (the source was locked, or the
//! application's transaction is REPEATABLE READ or SERIALIZABLE). The next
//! fold applies them; `queue::claim_and_read` claims a user's rows in the
//! same snapshot as the table rows they are replayed from.

use crate::spi::{column, exec, one_cached};
use interest_core::events::EventRow;
use interest_core::keys::key_fits;

/// What a deferred row records.
pub(crate) const REMOVED: &str = "removed";
pub(crate) const ADDED: &str = "added";
const TRUNCATED: &str = "truncated";

/// Records a statement's removed and added event rows (rows without a user
/// concern no one).
pub(crate) fn defer(source_id: i32, removed: &[EventRow], added: &[EventRow]) {
    let (mut change, mut u, mut i, mut t, mut w) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (kind, rows) in [(REMOVED, removed), (ADDED, added)] {
        // (an over-long key would not fit the queue's index; such rows were
        // never counted, so there is nothing to take back)
        let fits = |r: &&EventRow| {
            r.user.as_deref().is_some_and(key_fits) && r.item.as_deref().is_none_or(key_fits)
        };
        for row in rows.iter().filter(fits) {
            change.push(kind.to_string());
            u.push(row.user.clone());
            i.push(row.item.clone());
            t.push(row.t);
            w.push(row.weight);
        }
    }
    if u.is_empty() {
        return;
    }
    exec(
        "INSERT INTO interest.rewrite_queue (source_id, change, user_key, item_key, t, weight) \
         SELECT $1, c, u, i, t, w FROM unnest($2::text[], $3::text[], $4::text[], $5::float8[], $6::float8[]) AS x(c, u, i, t, w)",
        &[source_id.into(), change.into(), u.into(), i.into(), t.into(), w.into()],
    );
}

/// Records that the table was truncated: the next fold replays it whole.
pub(crate) fn defer_truncate(source_id: i32) {
    exec(
        "INSERT INTO interest.rewrite_queue (source_id, change) VALUES ($1, 'truncated')",
        &[source_id.into()],
    );
}

/// True when a TRUNCATE waits to be applied.
pub(crate) fn truncated(source_id: i32) -> bool {
    one_cached::<bool>(
        "SELECT EXISTS (SELECT 1 FROM interest.rewrite_queue WHERE source_id = $1 AND change = $2)",
        &[source_id.into(), TRUNCATED.into()],
    )
    .unwrap_or(false)
}

/// The users with deferred changes.
pub(crate) fn users(source_id: i32) -> Vec<String> {
    column::<String>(
        "SELECT DISTINCT user_key FROM interest.rewrite_queue WHERE source_id = $1 AND user_key IS NOT NULL ORDER BY 1",
        &[source_id.into()],
    )
}

/// True when the user has a deferred change (or the table a TRUNCATE):
/// readers then replay the user from the table.
pub(crate) fn pending_for(source_id: i32, user_key: &str) -> bool {
    crate::spi::one_read_cached::<bool>(
        "SELECT EXISTS (SELECT 1 FROM interest.rewrite_queue WHERE source_id = $1 \
                        AND (user_key = $2 OR change = 'truncated'))",
        &[source_id.into(), user_key.into()],
    )
    .unwrap_or(false)
}
