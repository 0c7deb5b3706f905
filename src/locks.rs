//! The bookkeeping's advisory-lock scheme, in one place.
//!
//! Inside an application's transaction (every trigger path) bookkeeping never
//! waits for a lock: it takes the source lock exclusively only if it is free
//! at once (`try_source_for_trigger`) and otherwise leaves its work in the
//! queues for the next fold. An application's transaction can then neither
//! deadlock on nor wait for bookkeeping, whatever row locks of its own it
//! holds. The explicit maintenance calls (flush, rebuild, set_profile,
//! attach/detach) wait.
//!
//! Transaction-scoped locks, always taken in this order so that bookkeeping
//! statements never deadlock with each other:
//!   1. the source lock (key pair `(-source, 0)`): shared for per-key work,
//!      exclusive for folds, rebuilds and statements too large for per-key locks;
//!   2. users by lock key (`(source, hashtext(user))`);
//!   3. items by lock key (`(ITEM_LOCK_BASE - source, hashtext(item))`).

use crate::spi::exec_cached;
use crate::spi::one_cached;
use pgrx::pg_sys;

/// Statements touching more keys than this take the source lock exclusively
/// instead of one lock per key (the shared lock table is finite).
pub(crate) const BULK_LOCK_KEYS: usize = 2_000;

/// Item locks live in their own key space, below every source lock.
const ITEM_LOCK_BASE: i32 = -1_000_000;

/// What the caller holds after locking.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Held {
    /// The source lock shared, plus per-key locks.
    PerKey,
    /// The source lock exclusively: no per-key locks needed.
    WholeSource,
}

/// Waits for the source lock exclusively.
pub(crate) fn lock_source_exclusive(source_id: i32) -> Held {
    exec_cached(
        "SELECT pg_catalog.pg_advisory_xact_lock(-$1, 0)",
        &[source_id.into()],
    );
    Held::WholeSource
}

/// Takes the source lock exclusively if it is free at once.
pub(crate) fn try_lock_source_exclusive(source_id: i32) -> bool {
    one_cached::<bool>(
        "SELECT pg_catalog.pg_try_advisory_xact_lock(-$1, 0)",
        &[source_id.into()],
    )
    .unwrap_or(false)
}

/// True when the transaction reads one snapshot throughout (REPEATABLE READ
/// or SERIALIZABLE).
pub(crate) fn in_snapshot_isolation() -> bool {
    // SAFETY: a plain global of the backend, read on its own thread.
    unsafe { pg_sys::XactIsoLevel >= pg_sys::XACT_REPEATABLE_READ as i32 }
}

/// Whether a trigger may write the source's shared state now: its
/// transaction takes a new snapshot per statement (READ COMMITTED) and the
/// source lock was free at once (then it is held exclusively until commit).
/// Under REPEATABLE READ or SERIALIZABLE the snapshot may predate the last
/// fold, and reading the shared state would tie the application's COMMIT
/// to every concurrent fold; such transactions only append to the queues.
pub(crate) fn try_source_for_trigger(source_id: i32) -> Option<Held> {
    if in_snapshot_isolation() || !try_lock_source_exclusive(source_id) {
        return None;
    }
    Some(Held::WholeSource)
}

/// Locks the users of a statement that will also touch `item_count` items:
/// the source lock shared and one lock per user, or the source exclusively
/// when there are too many keys.
pub(crate) fn lock_users(source_id: i32, users: &[String], item_count: usize) -> Held {
    if users.len() + item_count > BULK_LOCK_KEYS {
        return lock_source_exclusive(source_id);
    }
    exec_cached(
        "SELECT pg_catalog.pg_advisory_xact_lock_shared(-$1, 0)",
        &[source_id.into()],
    );
    exec_cached(
        "SELECT count(pg_catalog.pg_advisory_xact_lock($1, h)) \
         FROM (SELECT DISTINCT pg_catalog.hashtext(u) AS h FROM unnest($2::text[]) u ORDER BY 1) s",
        &[source_id.into(), users.to_vec().into()],
    );
    Held::PerKey
}

/// Per-item locks in lock-key order, after the users' (nothing to take when
/// the whole source is held).
pub(crate) fn lock_items(source_id: i32, keys: &[String], held: Held) {
    if held == Held::WholeSource || keys.is_empty() {
        return;
    }
    exec_cached(
        "SELECT count(pg_catalog.pg_advisory_xact_lock($1, h)) \
         FROM (SELECT DISTINCT pg_catalog.hashtext(k) AS h FROM unnest($2::text[]) k ORDER BY 1) s",
        &[(ITEM_LOCK_BASE - source_id).into(), keys.to_vec().into()],
    );
}
