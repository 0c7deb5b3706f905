//! VACUUM: entries whose rows are dead leave their code pages (where later
//! entries of the same list take their room), then their vectors leave the
//! vector pages (one generic WAL record per page changed), whose free space
//! goes to the free space map for inserts to reuse. A crash between the two
//! leaves only unreferenced vectors. Every VACUUM records every vector
//! page's room again: the map is not WAL-logged, so a crash or a failover
//! may lose it.

use super::buffers::{self, GenericChange};
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
        let mut room = FreedRoom::new(index);
        // 8 bytes per dead entry: VACUUM calls this once per batch of dead
        // rows that maintenance_work_mem holds.
        let mut dead_vectors: Vec<(pg_sys::BlockNumber, pg_sys::OffsetNumber)> = Vec::new();
        for block in 0..blocks {
            pgrx::check_for_interrupts!();
            let buffer = buffers::lock_block_with(index, block, true, (*info).strategy);
            let page = pg_sys::BufferGetPage(buffer);
            match pages::page_kind(page) {
                Some(PageKind::Codes) => {}
                Some(PageKind::Vectors) => {
                    room.record(block, page);
                    pg_sys::UnlockReleaseBuffer(buffer);
                    continue;
                }
                _ => {
                    pg_sys::UnlockReleaseBuffer(buffer);
                    continue;
                }
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
        remove_vectors(index, (*info).strategy, dead_vectors, &mut room);
        room.publish();
        (*stats).num_index_tuples = kept;
        (*stats).num_pages = blocks;
        stats
    }
}

/// Room on vector pages, recorded in the free space map, and whether any
/// page other than the last one can take a vector.
struct FreedRoom {
    index: pg_sys::Relation,
    tail: pg_sys::BlockNumber,
    vector_bytes: usize,
    any: bool,
}

impl FreedRoom {
    unsafe fn new(index: pg_sys::Relation) -> FreedRoom {
        let meta = unsafe { buffers::read_meta(index) };
        FreedRoom {
            index,
            tail: meta.vector_tail,
            vector_bytes: pages::maxalign(meta.dims as usize * size_of::<f32>()),
            any: false,
        }
    }

    /// # Safety
    /// `page` is block `block`, a vector page, locked.
    unsafe fn record(&mut self, block: pg_sys::BlockNumber, page: pg_sys::Page) {
        if block == self.tail {
            return;
        }
        let free = unsafe { pg_sys::PageGetFreeSpace(page) };
        unsafe { pg_sys::RecordPageWithFreeSpace(self.index, block, free) };
        self.any |= self.vector_bytes > 0 && free >= self.vector_bytes;
    }

    /// Makes the recorded room findable, and tells inserts to look for it.
    unsafe fn publish(self) {
        unsafe {
            pg_sys::IndexFreeSpaceMapVacuum(self.index);
            if !self.any {
                return;
            }
            let meta_buffer = buffers::lock_block(self.index, pages::META_BLOCK, true);
            let mut meta = buffers::meta_of(pg_sys::BufferGetPage(meta_buffer));
            if meta.vectors_freed == 0 {
                meta.vectors_freed = 1;
                let mut change = GenericChange::start(self.index);
                pages::overwrite_meta(change.page(meta_buffer, false), &meta);
                change.finish();
            }
            pg_sys::UnlockReleaseBuffer(meta_buffer);
        }
    }
}

/// Removes the vectors of removed entries (no entry refers to them any
/// more) and records each page's free space. A cancel here, as a crash,
/// leaves only unreferenced vectors: room lost until REINDEX, nothing wrong.
unsafe fn remove_vectors(
    index: pg_sys::Relation,
    strategy: pg_sys::BufferAccessStrategy,
    mut dead: Vec<(pg_sys::BlockNumber, pg_sys::OffsetNumber)>,
    room: &mut FreedRoom,
) {
    if dead.is_empty() {
        return;
    }
    dead.sort_unstable();
    unsafe {
        for same_page in dead.chunk_by(|a, b| a.0 == b.0) {
            pgrx::check_for_interrupts!();
            let block = same_page[0].0;
            let buffer = buffers::lock_block_with(index, block, true, strategy);
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
                room.record(block, page);
            }
            pg_sys::UnlockReleaseBuffer(buffer);
        }
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
