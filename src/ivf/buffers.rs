//! Buffer access and generic WAL for the index's pages.

use super::pages::{self, Meta, PageKind};
use pgrx::pg_sys;

/// Reads `block` of the main fork and locks it.
///
/// # Safety
/// `index` is an open index relation.
pub unsafe fn lock_block(
    index: pg_sys::Relation,
    block: pg_sys::BlockNumber,
    exclusive: bool,
) -> pg_sys::Buffer {
    unsafe { lock_block_with(index, block, exclusive, std::ptr::null_mut()) }
}

/// Reads `block` of the main fork and pins it, without a lock.
///
/// # Safety
/// `index` is an open index relation.
pub unsafe fn pin_block(index: pg_sys::Relation, block: pg_sys::BlockNumber) -> pg_sys::Buffer {
    unsafe { pin_block_with(index, block, std::ptr::null_mut()) }
}

/// `pin_block` through a buffer access strategy.
///
/// # Safety
/// As `pin_block`; `strategy` is null or a live strategy.
unsafe fn pin_block_with(
    index: pg_sys::Relation,
    block: pg_sys::BlockNumber,
    strategy: pg_sys::BufferAccessStrategy,
) -> pg_sys::Buffer {
    unsafe {
        pg_sys::ReadBufferExtended(
            index,
            pg_sys::ForkNumber::MAIN_FORKNUM,
            block,
            pg_sys::ReadBufferMode::RBM_NORMAL,
            strategy,
        )
    }
}

/// Pins `block` of the main fork when it is in shared buffers, without a
/// lock and without waiting for a read (the kernel is asked for it
/// otherwise).
///
/// # Safety
/// `index` is an open index relation.
pub unsafe fn pin_if_cached(
    index: pg_sys::Relation,
    block: pg_sys::BlockNumber,
) -> Option<pg_sys::Buffer> {
    unsafe {
        let found = pg_sys::PrefetchBuffer(index, pg_sys::ForkNumber::MAIN_FORKNUM, block);
        let cached = found.recent_buffer != pg_sys::InvalidBuffer as pg_sys::Buffer
            && pg_sys::ReadRecentBuffer(
                (*index).rd_node,
                pg_sys::ForkNumber::MAIN_FORKNUM,
                block,
                found.recent_buffer,
            );
        cached.then_some(found.recent_buffer)
    }
}

/// `lock_block` through a buffer access strategy (VACUUM's ring).
///
/// # Safety
/// As `lock_block`; `strategy` is null or a live strategy.
pub unsafe fn lock_block_with(
    index: pg_sys::Relation,
    block: pg_sys::BlockNumber,
    exclusive: bool,
    strategy: pg_sys::BufferAccessStrategy,
) -> pg_sys::Buffer {
    unsafe {
        let buffer = pin_block_with(index, block, strategy);
        let mode = if exclusive {
            pg_sys::BUFFER_LOCK_EXCLUSIVE
        } else {
            pg_sys::BUFFER_LOCK_SHARE
        };
        pg_sys::LockBuffer(buffer, mode as i32);
        buffer
    }
}

/// Adds a page to `fork` and returns its buffer, locked exclusively.
///
/// # Safety
/// `index` is an open index relation.
pub unsafe fn new_block(index: pg_sys::Relation, fork: pg_sys::ForkNumber::Type) -> pg_sys::Buffer {
    unsafe {
        pg_sys::LockRelationForExtension(index, pg_sys::ExclusiveLock as pg_sys::LOCKMODE);
        let buffer = pg_sys::ReadBufferExtended(
            index,
            fork,
            pg_sys::InvalidBlockNumber,
            pg_sys::ReadBufferMode::RBM_NORMAL,
            std::ptr::null_mut(),
        );
        pg_sys::UnlockRelationForExtension(index, pg_sys::ExclusiveLock as pg_sys::LOCKMODE);
        pg_sys::LockBuffer(buffer, pg_sys::BUFFER_LOCK_EXCLUSIVE as i32);
        buffer
    }
}

/// One atomic change of up to four pages, logged as a generic WAL record
/// (applied without logging on unlogged and temporary indexes).
pub struct GenericChange {
    state: *mut pg_sys::GenericXLogState,
}

impl GenericChange {
    /// # Safety
    /// `index` is an open index relation.
    pub unsafe fn start(index: pg_sys::Relation) -> GenericChange {
        GenericChange {
            state: unsafe { pg_sys::GenericXLogStart(index) },
        }
    }

    /// The page to modify in place of the buffer's; `fresh` logs a full
    /// image (for pages initialized in this change).
    ///
    /// # Safety
    /// `buffer` is locked exclusively.
    pub unsafe fn page(&mut self, buffer: pg_sys::Buffer, fresh: bool) -> pg_sys::Page {
        let flags = if fresh {
            pg_sys::GENERIC_XLOG_FULL_IMAGE as i32
        } else {
            0
        };
        unsafe { pg_sys::GenericXLogRegisterBuffer(self.state, buffer, flags) }
    }

    /// Hands the state to `GenericXLogAbort` (nothing is applied).
    pub fn into_raw(self) -> *mut pg_sys::GenericXLogState {
        self.state
    }

    pub fn finish(self) {
        // SAFETY: the state came from GenericXLogStart and is finished once.
        unsafe { pg_sys::GenericXLogFinish(self.state) };
    }
}

/// The meta page's contents.
///
/// # Safety
/// `index` is an open index relation of this access method.
pub unsafe fn read_meta(index: pg_sys::Relation) -> Meta {
    unsafe {
        let buffer = lock_block(index, pages::META_BLOCK, false);
        let meta = meta_of(pg_sys::BufferGetPage(buffer));
        pg_sys::UnlockReleaseBuffer(buffer);
        meta
    }
}

/// # Safety
/// `page` is the locked meta page.
pub unsafe fn meta_of(page: pg_sys::Page) -> Meta {
    unsafe {
        let bytes = match (pages::page_kind(page), pages::item(page, 1)) {
            (Some(PageKind::Meta), Some(bytes)) => bytes,
            _ => crate::ivf::corrupt("the meta page is missing"),
        };
        let meta = pages::read_meta_item(bytes);
        if !meta.is_ours() {
            crate::ivf::corrupt("the meta page has no interest_ivf signature");
        }
        if !(pages::OLDEST_READABLE_VERSION..=pages::FORMAT_VERSION).contains(&meta.version) {
            crate::errors::raise(
                pgrx::PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                format!(
                    "interest_ivf index has format version {}, this library reads versions {} to {}",
                    meta.version,
                    pages::OLDEST_READABLE_VERSION,
                    pages::FORMAT_VERSION
                ),
                "The index was built by another version of pg_interest.",
                "REINDEX the index.",
            );
        }
        meta
    }
}
