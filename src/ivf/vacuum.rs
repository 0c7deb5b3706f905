//! VACUUM: entries whose rows are dead leave their code pages (one generic
//! WAL record per page changed). Their vectors stay on the vector pages
//! until REINDEX; no scan reaches them.

use super::buffers::GenericChange;
use super::pages::{self, CodeEntry, PageKind};
use pgrx::pg_sys;
use pgrx::prelude::*;

#[pg_guard]
pub unsafe extern "C-unwind" fn ambulkdelete(
    info: *mut pg_sys::IndexVacuumInfo,
    stats: *mut pg_sys::IndexBulkDeleteResult,
    callback: pg_sys::IndexBulkDeleteCallback,
    callback_state: *mut std::ffi::c_void,
) -> *mut pg_sys::IndexBulkDeleteResult {
    unsafe {
        let stats = stats_or_new(stats);
        let index = (*info).index;
        let blocks =
            pg_sys::RelationGetNumberOfBlocksInFork(index, pg_sys::ForkNumber::MAIN_FORKNUM);
        let mut kept = 0f64;
        for block in 0..blocks {
            pgrx::check_for_interrupts!();
            let buffer = pg_sys::ReadBufferExtended(
                index,
                pg_sys::ForkNumber::MAIN_FORKNUM,
                block,
                pg_sys::ReadBufferMode::RBM_NORMAL,
                (*info).strategy,
            );
            pg_sys::LockBuffer(buffer, pg_sys::BUFFER_LOCK_EXCLUSIVE as i32);
            let page = pg_sys::BufferGetPage(buffer);
            if pages::page_kind(page) != Some(PageKind::Codes) {
                pg_sys::UnlockReleaseBuffer(buffer);
                continue;
            }
            let mut dead: Vec<pg_sys::OffsetNumber> = Vec::new();
            for offset in 1..=pages::item_count(page) {
                let Some(bytes) = pages::item(page, offset) else {
                    continue;
                };
                let entry: CodeEntry = pages::read_struct(bytes);
                let mut tid = pg_sys::ItemPointerData::default();
                tid.ip_blkid.bi_hi = (entry.heap_block >> 16) as u16;
                tid.ip_blkid.bi_lo = (entry.heap_block & 0xffff) as u16;
                tid.ip_posid = entry.heap_offset;
                let remove = match callback {
                    Some(is_dead) => is_dead(&mut tid, callback_state),
                    None => false,
                };
                if remove {
                    dead.push(offset);
                } else {
                    kept += 1.0;
                }
            }
            if !dead.is_empty() {
                let mut change = GenericChange::start(index);
                let changed = change.page(buffer, false);
                pg_sys::PageIndexMultiDelete(changed, dead.as_mut_ptr(), dead.len() as i32);
                change.finish();
                (*stats).tuples_removed += dead.len() as f64;
            }
            pg_sys::UnlockReleaseBuffer(buffer);
        }
        (*stats).num_index_tuples = kept;
        (*stats).num_pages = blocks;
        stats
    }
}

#[pg_guard]
pub unsafe extern "C-unwind" fn amvacuumcleanup(
    info: *mut pg_sys::IndexVacuumInfo,
    stats: *mut pg_sys::IndexBulkDeleteResult,
) -> *mut pg_sys::IndexBulkDeleteResult {
    unsafe {
        if (*info).analyze_only {
            return stats;
        }
        if stats.is_null() {
            // No bulk delete ran: count the entries.
            return ambulkdelete(info, std::ptr::null_mut(), None, std::ptr::null_mut());
        }
        let index = (*info).index;
        (*stats).num_pages =
            pg_sys::RelationGetNumberOfBlocksInFork(index, pg_sys::ForkNumber::MAIN_FORKNUM);
        stats
    }
}

unsafe fn stats_or_new(
    stats: *mut pg_sys::IndexBulkDeleteResult,
) -> *mut pg_sys::IndexBulkDeleteResult {
    if stats.is_null() {
        unsafe {
            pg_sys::palloc0(std::mem::size_of::<pg_sys::IndexBulkDeleteResult>())
                as *mut pg_sys::IndexBulkDeleteResult
        }
    } else {
        stats
    }
}
