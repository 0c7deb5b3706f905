//! One new row: its vector goes to a vector page with room (space VACUUM
//! freed, else the last vector page) and its entry to its list's last page,
//! or to room VACUUM left on one of the list's first pages, else to a new
//! page at the list's end; each as one generic WAL record (a crash between
//! them leaves only an unreferenced vector).

use super::buffers::{self, GenericChange};
use super::build::code_entry;
use super::pages::{self, ListEnds, PageKind};
use super::{check_dims, check_indexable_dims, embedding_values, included_text, shape};
use pgrx::pg_sys;
use pgrx::prelude::*;

#[pg_guard]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C-unwind" fn aminsert(
    index: pg_sys::Relation,
    values: *mut pg_sys::Datum,
    isnull: *mut bool,
    heap_tid: pg_sys::ItemPointer,
    _heap: pg_sys::Relation,
    _check_unique: pg_sys::IndexUniqueCheck::Type,
    _index_unchanged: bool,
    _index_info: *mut pg_sys::IndexInfo,
) -> bool {
    if unsafe { *isnull } {
        return false;
    }
    let mut vector = unsafe { embedding_values(*values) }.to_vec();
    let mut shape = unsafe { shape::load(index) };
    if !shape.metric.prepare(&mut vector) {
        return false;
    }
    unsafe {
        let (vector_block, vector_offset) = place_vector(index, &vector);
        if shape.dims == 0 {
            // This insert (or a concurrent one) fixed the dimensions of an
            // index built empty.
            shape = shape::load(index);
        }
        let encoded = shape.encoder().encode(&vector);
        let entry = code_entry(&*heap_tid, vector_block, vector_offset, encoded.factors);
        let mut bytes = pages::as_bytes(&entry).to_vec();
        bytes.extend_from_slice(&encoded.bits);
        bytes.extend(included_text(index, values, isnull));
        append_to_list(index, shape.tail_slot(encoded.list as usize), &bytes);
    }
    false
}

/// Stores the vector on a page VACUUM freed room on, else on the last vector
/// page (a new one when full), fixing the index's dimensions if it was built
/// empty. Holds the meta page's lock throughout, which orders concurrent
/// inserts.
unsafe fn place_vector(
    index: pg_sys::Relation,
    vector: &[f32],
) -> (pg_sys::BlockNumber, pg_sys::OffsetNumber) {
    unsafe {
        let meta_buffer = buffers::lock_block(index, pages::META_BLOCK, true);
        let mut meta = buffers::meta_of(pg_sys::BufferGetPage(meta_buffer));
        check_dims(meta.dims as usize, vector.len());
        let set_dims = meta.dims == 0;
        if set_dims {
            check_indexable_dims(vector.len());
            meta.dims = vector.len() as u32;
        }
        let item = pages::floats_as_bytes(vector);
        // The meta page is rewritten below when the map turned out empty.
        let mut meta_changed = set_dims;
        if !set_dims && meta.vectors_freed != 0 {
            // A miss corrects the map's entry for that page, so the next
            // question gets another page.
            for _ in 0..FREED_SPACE_ATTEMPTS {
                match place_in_freed_space(index, item, meta.vector_tail) {
                    FreedSpace::Placed(block, offset) => {
                        pg_sys::UnlockReleaseBuffer(meta_buffer);
                        return (block, offset);
                    }
                    FreedSpace::MapEmpty => {
                        meta.vectors_freed = 0;
                        meta_changed = true;
                        break;
                    }
                    FreedSpace::Missed => {}
                }
            }
        }
        if meta.vector_tail != pages::INVALID_BLOCK {
            let tail = buffers::lock_block(index, meta.vector_tail, true);
            let mut change = GenericChange::start(index);
            let page = change.page(tail, false);
            if let Some(offset) = pages::add_item(page, item) {
                if meta_changed {
                    let meta_page = change.page(meta_buffer, false);
                    pages::overwrite_meta(meta_page, &meta);
                }
                change.finish();
                pg_sys::UnlockReleaseBuffer(tail);
                pg_sys::UnlockReleaseBuffer(meta_buffer);
                return (meta.vector_tail, offset);
            }
            // Full: nothing changed; start over on a new page.
            pg_sys::GenericXLogAbort(change.into_raw());
            pg_sys::UnlockReleaseBuffer(tail);
        }
        let fresh = buffers::new_block(index, pg_sys::ForkNumber::MAIN_FORKNUM);
        let block = pg_sys::BufferGetBlockNumber(fresh);
        let mut change = GenericChange::start(index);
        let page = change.page(fresh, true);
        pages::init_page(page, PageKind::Vectors);
        let offset = pages::add_item(page, item)
            .unwrap_or_else(|| super::corrupt("a vector larger than a page"));
        meta.vector_tail = block;
        let meta_page = change.page(meta_buffer, false);
        pages::overwrite_meta(meta_page, &meta);
        change.finish();
        pg_sys::UnlockReleaseBuffer(fresh);
        pg_sys::UnlockReleaseBuffer(meta_buffer);
        (block, offset)
    }
}

/// How many pages the free space map may name before an insert gives up
/// on freed room and appends (its answers can be stale).
const FREED_SPACE_ATTEMPTS: usize = 3;

enum FreedSpace {
    Placed(pg_sys::BlockNumber, pg_sys::OffsetNumber),
    /// The map names no page with room.
    MapEmpty,
    /// The page it named had no room after all (the map is a hint).
    Missed,
}

/// Puts `item` on a vector page the free space map says has room (VACUUM
/// records them); a page that turns out full or not a vector page is
/// recorded as it is.
unsafe fn place_in_freed_space(
    index: pg_sys::Relation,
    item: &[u8],
    tail: pg_sys::BlockNumber,
) -> FreedSpace {
    unsafe {
        let block = pg_sys::GetPageWithFreeSpace(index, pages::maxalign(item.len()));
        if block == pages::INVALID_BLOCK {
            return FreedSpace::MapEmpty;
        }
        // The meta page is locked by the caller; the map may name a block
        // past the end after a crash.
        if block == pages::META_BLOCK
            || block == tail
            || block
                >= pg_sys::RelationGetNumberOfBlocksInFork(index, pg_sys::ForkNumber::MAIN_FORKNUM)
        {
            pg_sys::RecordPageWithFreeSpace(index, block, 0);
            return FreedSpace::Missed;
        }
        let buffer = buffers::lock_block(index, block, true);
        let page = pg_sys::BufferGetPage(buffer);
        let mut placed = FreedSpace::Missed;
        let mut left = 0;
        if pages::page_kind(page) == Some(PageKind::Vectors) {
            let mut change = GenericChange::start(index);
            match pages::add_item(change.page(buffer, false), item) {
                Some(offset) => {
                    change.finish();
                    placed = FreedSpace::Placed(block, offset);
                }
                None => pg_sys::GenericXLogAbort(change.into_raw()),
            }
            left = pg_sys::PageGetFreeSpace(page);
        }
        pg_sys::UnlockReleaseBuffer(buffer);
        pg_sys::RecordPageWithFreeSpace(index, block, left);
        placed
    }
}

/// How many of a list's pages an insert looks through for room VACUUM left
/// when the list's last page is full: whole lists at the default list count,
/// a bounded walk for the single long list of an index built empty.
const LIST_PAGES_SEARCHED: usize = 32;

/// Adds `entry` to one of the list's pages before `tail` that has room;
/// false when none of the first `LIST_PAGES_SEARCHED` has. An entry's place
/// in its list does not matter to scans, and a scan that already passed the
/// page could not see the new row anyway (it is not yet committed).
unsafe fn add_to_earlier_page(
    index: pg_sys::Relation,
    head: pg_sys::BlockNumber,
    tail: pg_sys::BlockNumber,
    entry: &[u8],
) -> bool {
    unsafe {
        let mut block = head;
        for _ in 0..LIST_PAGES_SEARCHED {
            if block == pages::INVALID_BLOCK || block == tail {
                return false;
            }
            // Read under a share lock, so a walk past full pages does not
            // hold up scans; the exclusive lock only where there is room.
            let buffer = buffers::lock_block(index, block, false);
            let page = pg_sys::BufferGetPage(buffer);
            let next = pages::next_block(page);
            if pg_sys::PageGetFreeSpace(page) >= pages::maxalign(entry.len()) {
                pg_sys::LockBuffer(buffer, pg_sys::BUFFER_LOCK_UNLOCK as i32);
                pg_sys::LockBuffer(buffer, pg_sys::BUFFER_LOCK_EXCLUSIVE as i32);
                let mut change = GenericChange::start(index);
                if pages::add_item(change.page(buffer, false), entry).is_some() {
                    change.finish();
                    pg_sys::UnlockReleaseBuffer(buffer);
                    return true;
                }
                pg_sys::GenericXLogAbort(change.into_raw());
            }
            pg_sys::UnlockReleaseBuffer(buffer);
            block = next;
        }
        false
    }
}

/// Adds an entry at the end of a list, starting or extending its chain.
unsafe fn append_to_list(
    index: pg_sys::Relation,
    tail_slot: (pg_sys::BlockNumber, pg_sys::OffsetNumber),
    entry: &[u8],
) {
    unsafe {
        // The walk over earlier pages runs without the ends record's lock,
        // which other lists share; a second attempt then extends the list.
        let Some((head, tail)) = try_last_page(index, tail_slot, entry) else {
            return;
        };
        if tail != pages::INVALID_BLOCK && add_to_earlier_page(index, head, tail, entry) {
            return;
        }
        extend_list(index, tail_slot, entry);
    }
}

/// Adds `entry` to the list's last page; when it is full (or the list is
/// empty) returns the list's (head, tail) as read.
unsafe fn try_last_page(
    index: pg_sys::Relation,
    (tails_block, tails_offset): (pg_sys::BlockNumber, pg_sys::OffsetNumber),
    entry: &[u8],
) -> Option<(pg_sys::BlockNumber, pg_sys::BlockNumber)> {
    unsafe {
        let tails_buffer = buffers::lock_block(index, tails_block, false);
        let ends: ListEnds = match pages::item(pg_sys::BufferGetPage(tails_buffer), tails_offset) {
            Some(bytes) => pages::read_struct(bytes),
            None => super::corrupt("a list has no ends record"),
        };
        pg_sys::UnlockReleaseBuffer(tails_buffer);
        if ends.tail == pages::INVALID_BLOCK {
            return Some((ends.head, ends.tail));
        }
        let tail = buffers::lock_block(index, ends.tail, true);
        let mut change = GenericChange::start(index);
        let added = pages::add_item(change.page(tail, false), entry).is_some();
        if added {
            change.finish();
        } else {
            pg_sys::GenericXLogAbort(change.into_raw());
        }
        pg_sys::UnlockReleaseBuffer(tail);
        (!added).then_some((ends.head, ends.tail))
    }
}

/// Adds the entry on the list's last page if it fits, else on a new page
/// linked after it (or as the list's first page), in one record, under the
/// ends record's lock.
unsafe fn extend_list(
    index: pg_sys::Relation,
    (tails_block, tails_offset): (pg_sys::BlockNumber, pg_sys::OffsetNumber),
    entry: &[u8],
) {
    unsafe {
        let tails_buffer = buffers::lock_block(index, tails_block, true);
        let ends: ListEnds = match pages::item(pg_sys::BufferGetPage(tails_buffer), tails_offset) {
            Some(bytes) => pages::read_struct(bytes),
            None => super::corrupt("a list has no ends record"),
        };
        let mut full_tail = None;
        if ends.tail != pages::INVALID_BLOCK {
            let tail = buffers::lock_block(index, ends.tail, true);
            let mut change = GenericChange::start(index);
            let page = change.page(tail, false);
            if pages::add_item(page, entry).is_some() {
                change.finish();
                pg_sys::UnlockReleaseBuffer(tail);
                pg_sys::UnlockReleaseBuffer(tails_buffer);
                return;
            }
            pg_sys::GenericXLogAbort(change.into_raw());
            full_tail = Some(tail);
        }
        let fresh = buffers::new_block(index, pg_sys::ForkNumber::MAIN_FORKNUM);
        let block = pg_sys::BufferGetBlockNumber(fresh);
        let mut change = GenericChange::start(index);
        let new_page = change.page(fresh, true);
        pages::init_page(new_page, PageKind::Codes);
        pages::add_item(new_page, entry)
            .unwrap_or_else(|| super::corrupt("an entry larger than a page"));
        if let Some(tail) = full_tail {
            pages::set_next_block(change.page(tail, false), block);
        }
        let head = if full_tail.is_some() {
            ends.head
        } else {
            block
        };
        let tails_page = change.page(tails_buffer, false);
        pages::overwrite_item(
            tails_page,
            tails_offset,
            pages::as_bytes(&ListEnds { head, tail: block }),
        );
        change.finish();
        pg_sys::UnlockReleaseBuffer(fresh);
        if let Some(tail) = full_tail {
            pg_sys::UnlockReleaseBuffer(tail);
        }
        pg_sys::UnlockReleaseBuffer(tails_buffer);
    }
}
