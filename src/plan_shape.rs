//! How PostgreSQL plans a read: whether every table it touches is read
//! through index-only scans, or whether it scans a given index. Asked of
//! the statement's generic plan, kept per backend, which the plan cache
//! re-plans when an index is created or dropped, so the answer follows the
//! application's indexes.

use crate::spi::{current, extension_cache, ExtensionCache};
use pgrx::datum::DatumWithOid;
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::PgList;
use std::ptr::NonNull;

/// An SPI plan kept for the backend's life (freed when the cache drops it).
struct KeptPlan(NonNull<pg_sys::_SPI_plan>);

impl Drop for KeptPlan {
    fn drop(&mut self) {
        // SAFETY: the plan was kept by SPI_keepplan and is freed once.
        unsafe {
            pg_sys::SPI_freeplan(self.0.as_ptr());
        }
    }
}

thread_local! {
    static PLANS: ExtensionCache<String, KeptPlan> = extension_cache();
}

/// The scans a plan tree holds.
#[derive(Default)]
struct Scans {
    index_only: bool,
    other: bool,
    /// The indexes of its (plain) index scans.
    index_scans: Vec<pg_sys::Oid>,
}

/// Whether `sql` (with `args`' types) is planned as index-only scans and
/// nothing else that reads a table: for such a plan the heap is read only
/// for rows the visibility map does not show all-visible.
pub(crate) fn reads_indexes_only(sql: &str, args: &[DatumWithOid]) -> bool {
    scans_of(sql, args).is_some_and(|s| s.index_only && !s.other)
}

/// Whether `sql` (with `args`' types) is planned with an index scan of
/// `index`.
pub(crate) fn scans_index(sql: &str, args: &[DatumWithOid], index: pg_sys::Oid) -> bool {
    scans_of(sql, args).is_some_and(|s| s.index_scans.contains(&index))
}

/// The scans of `sql`'s generic plan; None when it cannot be planned alone.
fn scans_of(sql: &str, args: &[DatumWithOid]) -> Option<Scans> {
    Spi::connect(|_| {
        PLANS.with(|plans| {
            let mut plans = current(plans);
            if !plans.contains_key(sql) {
                plans.insert(sql.to_string(), prepare(sql, args)?);
            }
            let plan = plans.get(sql).expect("plan was just prepared").0;
            let mut scans = Scans::default();
            // SAFETY: SPI is connected and the plan is kept; the cached plan
            // is released before returning, under the resource owner that
            // SPI_plan_get_cached_plan registered it with.
            unsafe {
                let cached = pg_sys::SPI_plan_get_cached_plan(plan.as_ptr());
                if cached.is_null() {
                    return None;
                }
                for stmt in PgList::<pg_sys::Node>::from_pg((*cached).stmt_list).iter_ptr() {
                    if (*stmt).type_ == pg_sys::NodeTag::T_PlannedStmt {
                        let stmt = stmt as *mut pg_sys::PlannedStmt;
                        collect(&mut scans, (*stmt).planTree);
                        for sub in PgList::<pg_sys::Plan>::from_pg((*stmt).subplans).iter_ptr() {
                            collect(&mut scans, sub);
                        }
                    } else {
                        scans.other = true;
                    }
                }
                pg_sys::ReleaseCachedPlan(cached, pg_sys::CurrentResourceOwner);
            }
            Some(scans)
        })
    })
}

/// `sql` prepared and kept; None for a statement that is not one plannable
/// query (then the caller reads it as it would have anyway).
fn prepare(sql: &str, args: &[DatumWithOid]) -> Option<KeptPlan> {
    let text = std::ffi::CString::new(sql).ok()?;
    let mut types: Vec<pg_sys::Oid> = args.iter().map(|a| a.oid()).collect();
    // SAFETY: SPI is connected; the text and types outlive the call.
    unsafe {
        let plan = pg_sys::SPI_prepare(text.as_ptr(), types.len() as i32, types.as_mut_ptr());
        let plan = NonNull::new(plan)?;
        if pg_sys::SPI_keepplan(plan.as_ptr()) != 0 {
            pg_sys::SPI_freeplan(plan.as_ptr());
            return None;
        }
        Some(KeptPlan(plan))
    }
}

/// Notes the scans under `plan`.
///
/// # Safety
/// `plan` is null or a valid plan tree.
unsafe fn collect(scans: &mut Scans, plan: *mut pg_sys::Plan) {
    use pg_sys::NodeTag::*;
    if plan.is_null() {
        return;
    }
    let children: Vec<*mut pg_sys::Plan> = match (*plan).type_ {
        T_IndexOnlyScan => {
            scans.index_only = true;
            Vec::new()
        }
        T_IndexScan => {
            scans.other = true;
            scans
                .index_scans
                .push((*(plan as *mut pg_sys::IndexScan)).indexid);
            Vec::new()
        }
        T_SeqScan | T_SampleScan | T_BitmapHeapScan | T_TidScan | T_TidRangeScan
        | T_ForeignScan | T_CustomScan => {
            scans.other = true;
            Vec::new()
        }
        T_Append => PgList::from_pg((*(plan as *mut pg_sys::Append)).appendplans)
            .iter_ptr()
            .collect(),
        T_MergeAppend => PgList::from_pg((*(plan as *mut pg_sys::MergeAppend)).mergeplans)
            .iter_ptr()
            .collect(),
        T_SubqueryScan => vec![(*(plan as *mut pg_sys::SubqueryScan)).subplan],
        _ => Vec::new(),
    };
    for child in children {
        collect(scans, child);
    }
    collect(scans, (*plan).lefttree);
    collect(scans, (*plan).righttree);
}
