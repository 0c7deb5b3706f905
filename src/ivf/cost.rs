//! Planner costs: the index only serves ORDER BY; a scan reads the probed
//! fraction of the index before its first row.

use super::buffers;
use crate::gucs;
use pgrx::pg_sys;
use pgrx::prelude::*;

#[pg_guard]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C-unwind" fn amcostestimate(
    root: *mut pg_sys::PlannerInfo,
    path: *mut pg_sys::IndexPath,
    loop_count: f64,
    startup_cost: *mut pg_sys::Cost,
    total_cost: *mut pg_sys::Cost,
    selectivity: *mut pg_sys::Selectivity,
    correlation: *mut f64,
    index_pages: *mut f64,
) {
    unsafe {
        if (*path).indexorderbys.is_null() {
            // Without ORDER BY the index has nothing to offer.
            *startup_cost = f64::MAX;
            *total_cost = f64::MAX;
            *selectivity = 0.0;
            *correlation = 0.0;
            *index_pages = 0.0;
            return;
        }
        let mut costs = pg_sys::GenericCosts::default();
        pg_sys::genericcostestimate(root, path, loop_count, &mut costs);
        let index = pg_sys::index_open(
            (*(*path).indexinfo).indexoid,
            pg_sys::NoLock as pg_sys::LOCKMODE,
        );
        let lists = buffers::read_meta(index).lists.max(1) as usize;
        pg_sys::index_close(index, pg_sys::NoLock as pg_sys::LOCKMODE);
        // Automatic probes read their first step for most queries (up to
        // automatic_probes lists when the steps go on).
        let probed = (gucs::ivf_probes(lists) as f64 / lists as f64).min(1.0);
        // Every probed list is read before the first row comes out.
        *startup_cost = costs.indexTotalCost * probed;
        *total_cost = costs.indexTotalCost * probed;
        *selectivity = costs.indexSelectivity;
        *correlation = 0.0;
        *index_pages = costs.numIndexPages * probed;
    }
}
