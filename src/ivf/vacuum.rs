//! VACUUM: entries whose rows are dead leave their code pages, then their
//! vectors leave the vector pages (one generic WAL record per page changed),
//! whose free space goes to the free space map for inserts to reuse. A
//! crash between the two leaves only unreferenced vectors.

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
        let mut dead_vectors: Vec<(pg_sys::BlockNumber, pg_sys::OffsetNumber)> = Vec::new();
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
                    dead_vectors.push((entry.vector_block, entry.vector_offset));
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
        remove_vectors(index, (*info).strategy, dead_vectors);
        (*stats).num_index_tuples = kept;
        (*stats).num_pages = blocks;
        stats
    }
}

/// Removes the vectors of removed entries (no entry refers to them any
/// more) and records each page's free space.
unsafe fn remove_vectors(
    index: pg_sys::Relation,
    strategy: pg_sys::BufferAccessStrategy,
    mut dead: Vec<(pg_sys::BlockNumber, pg_sys::OffsetNumber)>,
) {
    if dead.is_empty() {
        return;
    }
    dead.sort_unstable();
    unsafe {
        for same_page in dead.chunk_by(|a, b| a.0 == b.0) {
            pgrx::check_for_interrupts!();
            let block = same_page[0].0;
            let buffer = pg_sys::ReadBufferExtended(
                index,
                pg_sys::ForkNumber::MAIN_FORKNUM,
                block,
                pg_sys::ReadBufferMode::RBM_NORMAL,
                strategy,
            );
            pg_sys::LockBuffer(buffer, pg_sys::BUFFER_LOCK_EXCLUSIVE as i32);
            let page = pg_sys::BufferGetPage(buffer);
            if pages::page_kind(page) == Some(PageKind::Vectors) {
                let mut change = GenericChange::start(index);
                let changed = change.page(buffer, false);
                for &(_, offset) in same_page {
                    if pages::item(changed, offset).is_some() {
                        pages::remove_item_in_place(changed, offset);
                    }
                }
                change.finish();
                pg_sys::RecordPageWithFreeSpace(index, block, pg_sys::PageGetFreeSpace(page));
            }
            pg_sys::UnlockReleaseBuffer(buffer);
        }
        pg_sys::IndexFreeSpaceMapVacuum(index);
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
