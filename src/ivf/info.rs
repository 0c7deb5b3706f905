//! `interest.ivf_info(index)`: what an interest_ivf index holds, read from
//! its pages (format version, dimensions, metric, lists, live entries,
//! the most lists an automatic scan probes).

use super::buffers;
use super::pages::{self, PageKind};
use crate::errors::raise;
use interest_core::ivf::metric::Metric;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

#[pg_extern(strict)]
#[allow(clippy::type_complexity)]
fn _ivf_info(
    index: pg_sys::Oid,
) -> TableIterator<
    'static,
    (
        name!(format_version, i32),
        name!(dimensions, i32),
        name!(metric, String),
        name!(lists, i32),
        name!(entries, i64),
        name!(pages, i64),
        name!(automatic_probes, i32),
        name!(automatic_quiet_steps, i32),
    ),
> {
    unsafe {
        let relation =
            pg_sys::try_relation_open(index, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        let ours = pg_sys::get_index_am_oid(c"interest_ivf".as_ptr(), true);
        if relation.is_null() || ours == pg_sys::InvalidOid || (*(*relation).rd_rel).relam != ours {
            if !relation.is_null() {
                pg_sys::relation_close(relation, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
            }
            raise(
                PgSqlErrorCode::ERRCODE_WRONG_OBJECT_TYPE,
                "not an interest_ivf index",
                format!(
                    "Relation \"{}\" is not an index of access method interest_ivf.",
                    relation_name(index)
                ),
                "Pass an index created with USING interest_ivf.",
            );
        }
        let blocks =
            pg_sys::RelationGetNumberOfBlocksInFork(relation, pg_sys::ForkNumber::MAIN_FORKNUM);
        // A CREATE INDEX CONCURRENTLY that failed leaves an invalid index
        // with no pages at all.
        if blocks == 0 {
            pg_sys::relation_close(relation, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
            raise(
                PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                format!("index \"{}\" has not been built", relation_name(index)),
                "It has no pages: a CREATE INDEX CONCURRENTLY that failed leaves such an invalid index behind.",
                "DROP INDEX it, or REINDEX it once the cause of the failure is fixed.",
            );
        }
        let meta = buffers::read_meta(relation);
        let mut entries = 0i64;
        for block in 0..blocks {
            let buffer = buffers::lock_block(relation, block, false);
            let page = pg_sys::BufferGetPage(buffer);
            if pages::page_kind(page) == Some(PageKind::Codes) {
                entries += (1..=pages::item_count(page))
                    .filter(|&o| pages::item(page, o).is_some())
                    .count() as i64;
            }
            pg_sys::UnlockReleaseBuffer(buffer);
        }
        pg_sys::relation_close(relation, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        let metric = match Metric::from_code(meta.metric) {
            Some(Metric::Cosine) => "cosine",
            Some(Metric::InnerProduct) => "inner_product",
            Some(Metric::L2) => "l2",
            None => "unknown",
        };
        TableIterator::once((
            meta.version as i32,
            meta.dims as i32,
            metric.to_string(),
            meta.lists as i32,
            entries,
            blocks as i64,
            meta.automatic_probes() as i32,
            meta.quiet_steps() as i32,
        ))
    }
}

fn relation_name(oid: pg_sys::Oid) -> String {
    // SAFETY: get_rel_name returns a palloc'd name or NULL.
    unsafe {
        let name = pg_sys::get_rel_name(oid);
        if name.is_null() {
            u32::from(oid).to_string()
        } else {
            std::ffi::CStr::from_ptr(name)
                .to_string_lossy()
                .into_owned()
        }
    }
}
