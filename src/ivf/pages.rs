//! The index's pages. Every page is a standard page (line pointers, free
//! space between `pd_lower` and `pd_upper`) with an 8-byte special area
//! naming its kind and the next page of its chain, so generic WAL can log
//! each change compactly and standbys replay it without this library.
//!
//! Layout: block 0 the meta page; then the centre pages (one item per list
//! centre, in list order) and the tail pages (one `ListEnds` item per list);
//! then vector pages (the prepared vectors, for exact rerank) and code pages
//! (chains of `CodeEntry`, one chain per list), interleaved as they grow.

use pgrx::pg_sys;
use std::mem::size_of;

/// Bumped whenever the layout changes; the version builds write. Version
/// 3: a code entry of an index with an INCLUDEd text column carries the
/// row's text after its code (`entry_key`).
pub const FORMAT_VERSION: u32 = 3;
/// The oldest version this library reads: version 1 differs only by a
/// shorter meta item (no calibrated probes), read as if they were 0.
pub const OLDEST_READABLE_VERSION: u32 = 1;
const MAGIC: u32 = 0x1f7e_5a11;

pub const META_BLOCK: pg_sys::BlockNumber = 0;
pub const INVALID_BLOCK: pg_sys::BlockNumber = pg_sys::InvalidBlockNumber;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum PageKind {
    Meta = 1,
    Centres = 2,
    Tails = 3,
    Vectors = 4,
    Codes = 5,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct Special {
    next: pg_sys::BlockNumber,
    kind: u16,
    _unused: u16,
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Meta {
    pub magic: u32,
    pub version: u32,
    /// 0 until the first vector when built on an empty table.
    pub dims: u32,
    pub metric: u32,
    pub lists: u32,
    /// Whether the single list of an index built empty has a zero centre.
    pub zero_centre: u32,
    pub seed: u64,
    /// Changes with every build, so backends know their cached centres.
    pub build_id: u64,
    pub centres_start: pg_sys::BlockNumber,
    pub tails_start: pg_sys::BlockNumber,
    pub vector_tail: pg_sys::BlockNumber,
    /// 1 once VACUUM has recorded room on vector pages in the free space
    /// map; inserts look there only then (0 in indexes of older releases).
    pub vectors_freed: u32,
    /// The most lists the build measured an automatic scan needs on this
    /// data (`calibrate::Calibration::probes`; 0 in version 1 indexes).
    pub calibrated_probes: u32,
    /// Quiet steps in a row that end an automatic scan
    /// (`calibrate::Calibration::quiet_steps`; 0, read as 1, in indexes
    /// built before it was measured).
    pub calibrated_quiet_steps: u32,
}

impl Meta {
    pub fn new(dims: u32, metric: u32, lists: u32, seed: u64, build_id: u64) -> Meta {
        Meta {
            magic: MAGIC,
            version: FORMAT_VERSION,
            dims,
            metric,
            lists,
            zero_centre: 0,
            seed,
            build_id,
            centres_start: INVALID_BLOCK,
            tails_start: INVALID_BLOCK,
            vector_tail: INVALID_BLOCK,
            vectors_freed: 0,
            calibrated_probes: 0,
            calibrated_quiet_steps: 0,
        }
    }

    pub fn is_ours(&self) -> bool {
        self.magic == MAGIC
    }

    /// The most lists an automatic scan probes (`ivf::automatic_probes` of
    /// the lists and the build's calibrated limit).
    pub fn automatic_probes(&self) -> usize {
        interest_core::ivf::automatic_probes(self.lists as usize, self.calibrated_probes as usize)
    }

    /// Quiet steps in a row that end an automatic scan; 1 in indexes built
    /// before they were measured (the field was 0).
    pub fn quiet_steps(&self) -> usize {
        (self.calibrated_quiet_steps as usize).max(1)
    }
}

/// First and last code page of a list (INVALID_BLOCK while empty).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ListEnds {
    pub head: pg_sys::BlockNumber,
    pub tail: pg_sys::BlockNumber,
}

/// One indexed row: where it is, where its vector is, its code's factors;
/// the code's bytes follow.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct CodeEntry {
    pub heap_block: pg_sys::BlockNumber,
    pub heap_offset: u16,
    pub vector_offset: u16,
    pub vector_block: pg_sys::BlockNumber,
    pub residual_norm: f32,
    pub alignment: f32,
}

pub const CODE_ENTRY_HEADER: usize = size_of::<CodeEntry>();

/// A code entry's header, its code (`code_len` bytes) and the code's
/// factors.
pub fn read_code_entry(
    bytes: &[u8],
    code_len: usize,
) -> (CodeEntry, &[u8], interest_core::ivf::rabitq::CodeFactors) {
    let entry: CodeEntry = read_struct(bytes);
    let factors = interest_core::ivf::rabitq::CodeFactors {
        residual_norm: entry.residual_norm,
        alignment: entry.alignment,
    };
    (
        entry,
        &bytes[CODE_ENTRY_HEADER..CODE_ENTRY_HEADER + code_len],
        factors,
    )
}

/// The longest included text a code entry carries: the longest item key
/// the bookkeeping stores. A longer one is left out (the entry says so),
/// and readers of keys fall back to the rows.
pub const MAX_ENTRY_KEY_BYTES: usize = interest_core::keys::MAX_KEY_BYTES;

/// The bytes a code entry carries after its code for an included text
/// (None: the index includes none; Some(None): NULL or too long): a flag
/// (1 stored, 0 left out), then the text.
pub fn entry_key_bytes(key: Option<Option<&[u8]>>) -> Vec<u8> {
    match key {
        None => Vec::new(),
        Some(Some(k)) if k.len() <= MAX_ENTRY_KEY_BYTES => {
            let mut out = Vec::with_capacity(1 + k.len());
            out.push(1);
            out.extend_from_slice(k);
            out
        }
        Some(_) => vec![0],
    }
}

/// What a code entry (its item's bytes; `code_len` bytes of code) says of
/// its row's included text.
#[derive(Debug, PartialEq, Eq)]
pub enum EntryKey<'a> {
    /// The index includes no text (or was built before version 3).
    NotIncluded,
    /// Too long to carry, or NULL.
    Left,
    Stored(&'a [u8]),
}

pub fn entry_key(bytes: &[u8], code_len: usize) -> EntryKey<'_> {
    match bytes.get(CODE_ENTRY_HEADER + code_len..) {
        None | Some([]) => EntryKey::NotIncluded,
        Some([1, key @ ..]) => EntryKey::Stored(key),
        Some(_) => EntryKey::Left,
    }
}

pub fn tails_per_page() -> u32 {
    let usable = pg_sys::BLCKSZ as usize - page_header_size() - size_of::<Special>();
    (usable / (maxalign(size_of::<ListEnds>()) + size_of::<pg_sys::ItemIdData>())) as u32
}

pub fn maxalign(n: usize) -> usize {
    n.div_ceil(8) * 8
}

fn page_header_size() -> usize {
    std::mem::offset_of!(pg_sys::PageHeaderData, pd_linp)
}

/// Initializes `page` as an empty page of `kind`.
///
/// # Safety
/// `page` points at a BLCKSZ buffer the caller may write.
pub unsafe fn init_page(page: pg_sys::Page, kind: PageKind) {
    unsafe {
        pg_sys::PageInit(page, pg_sys::BLCKSZ as usize, size_of::<Special>());
        let special = pg_sys::PageGetSpecialPointer(page) as *mut Special;
        *special = Special {
            next: INVALID_BLOCK,
            kind: kind as u16,
            _unused: 0,
        };
    }
}

/// # Safety
/// `page` is a pinned, locked page of this index.
pub unsafe fn page_kind(page: pg_sys::Page) -> Option<PageKind> {
    unsafe {
        if pg_sys::PageIsNew(page) {
            return None;
        }
        let special = *(pg_sys::PageGetSpecialPointer(page) as *const Special);
        [
            PageKind::Meta,
            PageKind::Centres,
            PageKind::Tails,
            PageKind::Vectors,
            PageKind::Codes,
        ]
        .into_iter()
        .find(|k| *k as u16 == special.kind)
    }
}

/// # Safety
/// As `page_kind`.
pub unsafe fn next_block(page: pg_sys::Page) -> pg_sys::BlockNumber {
    unsafe { (*(pg_sys::PageGetSpecialPointer(page) as *const Special)).next }
}

/// # Safety
/// As `page_kind`, and the page is locked for writing.
pub unsafe fn set_next_block(page: pg_sys::Page, next: pg_sys::BlockNumber) {
    unsafe { (*(pg_sys::PageGetSpecialPointer(page) as *mut Special)).next = next }
}

/// Adds an item; None when it does not fit.
///
/// # Safety
/// `page` is initialized and locked for writing.
pub unsafe fn add_item(page: pg_sys::Page, item: &[u8]) -> Option<pg_sys::OffsetNumber> {
    unsafe {
        if pg_sys::PageGetFreeSpace(page) < maxalign(item.len()) {
            return None;
        }
        let offset = pg_sys::PageAddItemExtended(
            page,
            item.as_ptr() as pg_sys::Item,
            item.len(),
            pg_sys::InvalidOffsetNumber,
            0,
        );
        (offset != pg_sys::InvalidOffsetNumber).then_some(offset)
    }
}

/// Removes the item at `offset`, keeping every other item at its offset
/// (code entries refer to vectors by offset); a later `add_item` reuses the
/// slot.
///
/// # Safety
/// As `add_item`; `offset` holds an item.
pub unsafe fn remove_item_in_place(page: pg_sys::Page, offset: pg_sys::OffsetNumber) {
    unsafe {
        pg_sys::PageIndexTupleDeleteNoCompact(page, offset);
        // The hint that makes PageAddItemExtended look for unused slots.
        (*(page as *mut pg_sys::PageHeaderData)).pd_flags |= pg_sys::PD_HAS_FREE_LINES as u16;
    }
}

/// The bytes of the item at `offset` (1-based), if it is in use.
///
/// # Safety
/// `page` is pinned and locked; the slice lives while the lock is held.
pub unsafe fn item<'a>(page: pg_sys::Page, offset: pg_sys::OffsetNumber) -> Option<&'a [u8]> {
    unsafe {
        if offset == 0 || offset > pg_sys::PageGetMaxOffsetNumber(page) {
            return None;
        }
        let id = pg_sys::PageGetItemId(page, offset);
        if (*id).lp_flags() != pg_sys::LP_NORMAL {
            return None;
        }
        let data = pg_sys::PageGetItem(page, id) as *const u8;
        Some(std::slice::from_raw_parts(data, (*id).lp_len() as usize))
    }
}

/// # Safety
/// As `item`.
pub unsafe fn item_count(page: pg_sys::Page) -> pg_sys::OffsetNumber {
    unsafe { pg_sys::PageGetMaxOffsetNumber(page) }
}

/// The meta item's value; a shorter item of an older version leaves the
/// fields it lacks 0.
pub fn read_meta_item(bytes: &[u8]) -> Meta {
    let mut full = [0u8; size_of::<Meta>()];
    let n = bytes.len().min(full.len());
    full[..n].copy_from_slice(&bytes[..n]);
    read_struct(&full)
}

/// Writes `meta` over the meta item, as much of it as the item holds (an
/// index of an older version keeps its shorter item).
///
/// # Safety
/// As `overwrite_item`; the page is the meta page.
pub unsafe fn overwrite_meta(page: pg_sys::Page, meta: &Meta) {
    unsafe {
        let id = pg_sys::PageGetItemId(page, 1);
        let held = ((*id).lp_len() as usize).min(size_of::<Meta>());
        overwrite_item(page, 1, &as_bytes(meta)[..held]);
    }
}

/// Reads a `T` from item bytes written by `as_bytes`.
pub fn read_struct<T: Copy>(bytes: &[u8]) -> T {
    assert!(bytes.len() >= size_of::<T>());
    // SAFETY: length checked; T is a plain repr(C) value read unaligned.
    unsafe { std::ptr::read_unaligned(bytes.as_ptr() as *const T) }
}

pub fn as_bytes<T: Copy>(value: &T) -> &[u8] {
    // SAFETY: T is a plain repr(C) value without padding we rely on.
    unsafe { std::slice::from_raw_parts(value as *const T as *const u8, size_of::<T>()) }
}

pub fn floats_as_bytes(values: &[f32]) -> &[u8] {
    // SAFETY: f32 has no invalid bit patterns and u8 has alignment 1.
    unsafe { std::slice::from_raw_parts(values.as_ptr() as *const u8, values.len() * 4) }
}

/// Bytes at each end of a page `prefetch_page_ends` asks the CPU for.
const PREFETCH_PAGE_BYTES: usize = 512;

/// Asks the CPU for a page's header and line pointers and for its last
/// bytes (where its first items lie), without reading it: for a page
/// pinned ahead of the one being read, whose lock is not held.
pub fn prefetch_page_ends(page: pg_sys::Page) {
    let size = pg_sys::BLCKSZ as usize;
    let start = page as *const u8;
    interest_core::kernels::prefetch_lines(start, PREFETCH_PAGE_BYTES);
    interest_core::kernels::prefetch_lines(
        start.wrapping_add(size - PREFETCH_PAGE_BYTES),
        PREFETCH_PAGE_BYTES,
    );
}

/// The floats of an item in place (items start MAXALIGNed), or a copy.
pub fn floats_of(bytes: &[u8]) -> std::borrow::Cow<'_, [f32]> {
    if (bytes.as_ptr() as usize).is_multiple_of(std::mem::align_of::<f32>()) {
        // SAFETY: aligned, in bounds, and f32 has no invalid bit patterns.
        std::borrow::Cow::Borrowed(unsafe {
            std::slice::from_raw_parts(bytes.as_ptr() as *const f32, bytes.len() / 4)
        })
    } else {
        std::borrow::Cow::Owned(bytes_to_floats(bytes))
    }
}

pub fn bytes_to_floats(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Overwrites the item at `offset` with bytes of the same length.
///
/// # Safety
/// `page` is locked for writing (and registered with generic WAL when the
/// change must be logged).
pub unsafe fn overwrite_item(page: pg_sys::Page, offset: pg_sys::OffsetNumber, bytes: &[u8]) {
    unsafe {
        let id = pg_sys::PageGetItemId(page, offset);
        assert_eq!((*id).lp_len() as usize, bytes.len(), "item size changed");
        let data = pg_sys::PageGetItem(page, id) as *mut u8;
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), data, bytes.len());
    }
}
