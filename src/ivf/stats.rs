//! The index's use in `pg_stat_all_indexes`, counted as btree and GiST
//! count theirs (`pgstat_count_index_scan` and `pgstat_count_index_tuples`
//! are C macros): a DBA who looks for unused indexes must see this one
//! used, also when recommend() reads its neighbours' keys without an
//! executor scan (the executor counts the entries a scan returns,
//! `idx_tup_read`, and the rows it fetches through it, `idx_tup_fetch`).

use pgrx::pg_sys;

/// Counts one scan of `index` (`idx_scan`).
///
/// # Safety
/// `index` is an open relation.
pub(super) unsafe fn count_scan(index: pg_sys::Relation) {
    unsafe { with_counts(index, |c| c.t_numscans += 1) }
}

/// Counts `entries` returned by a scan that the executor does not see
/// (`idx_tup_read`).
///
/// # Safety
/// `index` is an open relation.
pub(super) unsafe fn count_entries_returned(index: pg_sys::Relation, entries: usize) {
    unsafe {
        with_counts(index, |c| {
            c.t_tuples_returned += entries as pg_sys::PgStat_Counter
        })
    }
}

unsafe fn with_counts(
    index: pg_sys::Relation,
    count: impl FnOnce(&mut pg_sys::PgStat_TableCounts),
) {
    unsafe {
        // pgstat_should_count_relation: a relation is tied to its counts on
        // first use, unless statistics are off for it.
        if (*index).pgstat_info.is_null() {
            if !(*index).pgstat_enabled {
                return;
            }
            pg_sys::pgstat_assoc_relation(index);
        }
        if let Some(status) = (*index).pgstat_info.as_mut() {
            count(&mut status.t_counts);
        }
    }
}
