//! CREATE INDEX / REINDEX: one pass samples vectors for k-means, a second
//! assigns and encodes every vector (in batches, on build threads) and
//! writes the vector pages; then each list's code pages are written in one
//! run. Pages are written without WAL and logged as full images at the end
//! (a crash before commit leaves only an unreferenced file).

use super::buffers;
use super::pages::{self, CodeEntry, ListEnds, Meta, PageKind};
use super::shape::tail_slot;
use super::{
    build_threads, check_dims, check_indexable_dims, embedding_values, included_text, metric_of,
    options,
};
use interest_core::ivf::calibrate::{calibrate, Sample, CALIBRATION_QUERIES};
use interest_core::ivf::encode::{rotate_centres, Encoder};
use interest_core::ivf::metric::Metric;
use interest_core::ivf::rotation::Rotation;
use interest_core::ivf::{
    default_lists, kmeans, training_sample_size, AUTO_PROBE_STEP, KMEANS_ITERATIONS,
};
use interest_core::rng::Rng;
use pgrx::pg_sys;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::{PgLogLevel, PgSqlErrorCode};

const PHASE_SAMPLING: i64 = 2;
const PHASE_TRAINING: i64 = 3;
const PHASE_LOADING: i64 = 4;
const PHASE_WRITING: i64 = 5;
const PHASE_LOGGING: i64 = 6;

/// Seeds k-means and the rotation: the same rows in the same order give
/// the same index everywhere.
const BUILD_SEED: u64 = 0x1f7e_5eed_0000_0001;

/// Vectors encoded per batch of the second pass.
const BATCH: usize = 2_048;

#[pg_guard]
pub unsafe extern "C-unwind" fn ambuildphasename(phase: i64) -> *mut std::ffi::c_char {
    let name: &'static std::ffi::CStr = match phase {
        1 => c"initializing",
        PHASE_SAMPLING => c"sampling vectors",
        PHASE_TRAINING => c"computing list centres",
        PHASE_LOADING => c"loading tuples",
        PHASE_WRITING => c"writing lists",
        PHASE_LOGGING => c"logging pages",
        _ => return std::ptr::null_mut(),
    };
    name.as_ptr() as *mut std::ffi::c_char
}

fn progress(param: u32, value: i64) {
    // SAFETY: updates this backend's progress slot.
    unsafe { pg_sys::pgstat_progress_update_param(param as i32, value) };
}

#[pg_guard]
pub unsafe extern "C-unwind" fn ambuild(
    heap: pg_sys::Relation,
    index: pg_sys::Relation,
    index_info: *mut pg_sys::IndexInfo,
) -> *mut pg_sys::IndexBuildResult {
    let metric = unsafe { metric_of(index) };
    let lists_option = unsafe { options::lists(index) };
    progress(pg_sys::PROGRESS_CREATEIDX_SUBPHASE, PHASE_SAMPLING);
    let mut sampler = Sampler {
        metric,
        dims: 0,
        seen: 0,
        capacity: 0,
        lists_option,
        sample: Vec::new(),
        rng: Rng::new(0x5a3e_11e5),
        scratch: Vec::new(),
    };
    let heap_tuples = unsafe {
        pg_sys::table_index_build_scan(
            heap,
            index,
            index_info,
            true,
            true,
            Some(sample_callback),
            &mut sampler as *mut Sampler as *mut std::ffi::c_void,
            std::ptr::null_mut(),
        )
    };
    let build_id = new_build_id(index);
    let indexed = if sampler.seen == 0 {
        unsafe { write_empty(index, pg_sys::ForkNumber::MAIN_FORKNUM, metric, build_id) };
        notice_few_lists(
            "interest_ivf index built on no rows has one list".into(),
            "Lists are chosen when the index is built; rows added later all go to that one list, and every search reads them all.".into(),
            REINDEX_WITH_DATA,
        );
        0
    } else {
        unsafe { build_lists(heap, index, index_info, metric, sampler, build_id) }
    };
    unsafe {
        if (*(*index).rd_rel).relpersistence == pg_sys::RELPERSISTENCE_PERMANENT as std::ffi::c_char
        {
            progress(pg_sys::PROGRESS_CREATEIDX_SUBPHASE, PHASE_LOGGING);
            log_all_pages(index, pg_sys::ForkNumber::MAIN_FORKNUM);
        }
        let result = pg_sys::palloc0(std::mem::size_of::<pg_sys::IndexBuildResult>())
            as *mut pg_sys::IndexBuildResult;
        (*result).heap_tuples = heap_tuples;
        (*result).index_tuples = indexed as f64;
        result
    }
}

const REINDEX_WITH_DATA: &str =
    "REINDEX the index once the table holds its data (for an items table, call interest.index_items again).";

/// A NOTICE that the index was built with fewer lists than its data will
/// want: searches stay right but read more of the index until a rebuild.
fn notice_few_lists(message: String, detail: String, hint: &str) {
    // Only for a CREATE INDEX or REINDEX: TRUNCATE, VACUUM FULL and CLUSTER
    // rebuild the index too, and nobody asked them for lists.
    // SAFETY: MyBEEntry is this backend's own status entry (or NULL).
    let asked = unsafe {
        pg_sys::MyBEEntry.is_null()
            || (*pg_sys::MyBEEntry).st_progress_command
                == pg_sys::ProgressCommandType::PROGRESS_COMMAND_CREATE_INDEX
    };
    if !asked {
        return;
    }
    ErrorReport::new(
        PgSqlErrorCode::ERRCODE_SUCCESSFUL_COMPLETION,
        message,
        "pg_interest",
    )
    .set_detail(detail)
    .set_hint(hint)
    .report(PgLogLevel::NOTICE);
}

/// The init fork of an unlogged table's index: an empty index.
#[pg_guard]
pub unsafe extern "C-unwind" fn ambuildempty(index: pg_sys::Relation) {
    let metric = unsafe { metric_of(index) };
    let build_id = new_build_id(index);
    unsafe {
        write_empty(index, pg_sys::ForkNumber::INIT_FORKNUM, metric, build_id);
        log_all_pages(index, pg_sys::ForkNumber::INIT_FORKNUM);
    }
}

fn new_build_id(index: pg_sys::Relation) -> u64 {
    // SAFETY: reads the clock, the pid and the relation's oid.
    unsafe {
        let now = pg_sys::GetCurrentTimestamp() as u64;
        Rng::new(
            now ^ ((pg_sys::MyProcPid as u64) << 40) ^ (u32::from((*index).rd_id) as u64) << 20,
        )
        .next_u64()
    }
}

unsafe fn log_all_pages(index: pg_sys::Relation, fork: pg_sys::ForkNumber::Type) {
    unsafe {
        let blocks = pg_sys::RelationGetNumberOfBlocksInFork(index, fork);
        if blocks > 0 {
            pg_sys::log_newpage_range(index, fork, 0, blocks, true);
        }
    }
}

struct Sampler {
    metric: Metric,
    dims: usize,
    seen: usize,
    capacity: usize,
    lists_option: usize,
    sample: Vec<f32>,
    rng: Rng,
    scratch: Vec<f32>,
}

#[pg_guard]
unsafe extern "C-unwind" fn sample_callback(
    _index: pg_sys::Relation,
    _tid: pg_sys::ItemPointer,
    values: *mut pg_sys::Datum,
    isnull: *mut bool,
    _alive: bool,
    state: *mut std::ffi::c_void,
) {
    let sampler = unsafe { &mut *(state as *mut Sampler) };
    if unsafe { *isnull } {
        return;
    }
    let raw = unsafe { embedding_values(*values) };
    if sampler.dims == 0 {
        check_indexable_dims(raw.len());
        sampler.dims = raw.len();
        sampler.capacity = sample_capacity(sampler.dims, sampler.lists_option);
    }
    check_dims(sampler.dims, raw.len());
    sampler.scratch.clear();
    sampler.scratch.extend_from_slice(raw);
    if !sampler.metric.prepare(&mut sampler.scratch) {
        return;
    }
    sampler.seen += 1;
    let dims = sampler.dims;
    if sampler.sample.len() < sampler.capacity * dims {
        sampler.sample.extend_from_slice(&sampler.scratch);
    } else {
        let slot = sampler.rng.below(sampler.seen);
        if slot < sampler.capacity {
            sampler.sample[slot * dims..(slot + 1) * dims].copy_from_slice(&sampler.scratch);
        }
    }
}

/// Vectors kept for k-means: what the largest list count needs, within
/// maintenance_work_mem.
fn sample_capacity(dims: usize, lists_option: usize) -> usize {
    let wanted = if lists_option > 0 {
        training_sample_size(lists_option)
    } else {
        262_144
    };
    // SAFETY: reading an int GUC variable (kB).
    let budget_bytes = unsafe { pg_sys::maintenance_work_mem }.max(1024) as usize * 1024;
    wanted.min((budget_bytes / (dims * 4)).max(1_024))
}

/// Shuffles the sample's rows so that its first rows are a random draw
/// (the sample holds the table's first rows in order until it is full, so
/// a prefix would train on rows of one kind when the table is sorted), in
/// place; returns (training rows, held-out rows): held out for the
/// calibration, up to `calibrate::CALIBRATION_QUERIES` and a tenth of the
/// sample while `lists` rows are left to train, none when that is under
/// `MIN_HELD_OUT` (it then asks with the training rows themselves).
fn shuffle_sample(
    sample: &mut [f32],
    dims: usize,
    training: usize,
    lists: usize,
    rng: &mut Rng,
) -> (usize, usize) {
    let rows = sample.len() / dims;
    let held = CALIBRATION_QUERIES
        .min(rows / 10)
        .min(rows.saturating_sub(lists));
    let held = if held < MIN_HELD_OUT { 0 } else { held };
    let training = training.min(rows - held);
    for i in 0..training + held {
        let j = i + rng.below(rows - i);
        if j != i {
            let (head, tail) = sample.split_at_mut(j * dims);
            head[i * dims..(i + 1) * dims].swap_with_slice(&mut tail[..dims]);
        }
    }
    (training, held)
}

/// Fewer held-out rows than this say too little: the calibration asks with
/// the training rows instead.
const MIN_HELD_OUT: usize = 20;

#[allow(clippy::too_many_arguments)]
unsafe fn build_lists(
    heap: pg_sys::Relation,
    index: pg_sys::Relation,
    index_info: *mut pg_sys::IndexInfo,
    metric: Metric,
    mut sampler: Sampler,
    build_id: u64,
) -> usize {
    let dims = sampler.dims;
    let sampled = sampler.sample.len() / dims;
    let wanted_lists = if sampler.lists_option > 0 {
        sampler.lists_option
    } else {
        default_lists(sampler.seen)
    };
    let lists = wanted_lists.min(sampled).max(1);
    progress(pg_sys::PROGRESS_CREATEIDX_SUBPHASE, PHASE_TRAINING);
    progress(pg_sys::PROGRESS_CREATEIDX_TUPLES_TOTAL, sampler.seen as i64);
    let (training_rows, held_rows) = shuffle_sample(
        &mut sampler.sample,
        dims,
        training_sample_size(lists).min(sampled),
        lists,
        &mut sampler.rng,
    );
    let training = &sampler.sample[..training_rows * dims];
    let held_out = &sampler.sample[training_rows * dims..(training_rows + held_rows) * dims];
    let threads = build_threads();
    let seed = BUILD_SEED;
    let centres = kmeans::train(
        training,
        dims,
        lists,
        KMEANS_ITERATIONS,
        metric.spherical(),
        seed,
        threads,
    );
    let rotation = Rotation::new(dims, seed);
    let calibration = calibrate(
        &Sample {
            metric,
            dims,
            vectors: training,
            lists_of: &kmeans::assign(training, &centres, dims, threads),
            centres: &centres,
            rotation: &rotation,
            rows: sampler.seen,
            held_out: (!held_out.is_empty()).then_some(held_out),
        },
        AUTO_PROBE_STEP,
        threads,
        || {
            pgrx::check_for_interrupts!();
        },
    );
    drop(sampler.sample);
    let lists = centres.len() / dims;
    if sampler.lists_option > lists {
        let message = format!(
            "interest_ivf index has {lists} lists, fewer than the {} asked",
            sampler.lists_option
        );
        if sampled < sampler.seen {
            notice_few_lists(
                message,
                format!("maintenance_work_mem held a training sample of {sampled} of the {} rows; a list needs at least one sampled row to train its centre.", sampler.seen),
                "Raise maintenance_work_mem for the build (the sample is 4 bytes per dimension per row) and REINDEX the index.",
            );
        } else {
            notice_few_lists(
                message,
                format!(
                    "{} rows were indexed; a list needs at least one row to train its centre.",
                    sampler.seen
                ),
                REINDEX_WITH_DATA,
            );
        }
    }
    let rotated_centres = rotate_centres(&rotation, &centres);

    let fork = pg_sys::ForkNumber::MAIN_FORKNUM;
    let mut meta = Meta::new(dims as u32, metric.code(), lists as u32, seed, build_id);
    meta.calibrated_probes = calibration.probes as u32;
    meta.calibrated_quiet_steps = calibration.quiet_steps as u32;
    unsafe {
        let meta_buffer = buffers::new_block(index, fork);
        assert_eq!(pg_sys::BufferGetBlockNumber(meta_buffer), pages::META_BLOCK);
        pages::init_page(pg_sys::BufferGetPage(meta_buffer), PageKind::Meta);
        pages::add_item(pg_sys::BufferGetPage(meta_buffer), pages::as_bytes(&meta))
            .expect("meta fits");
        pg_sys::MarkBufferDirty(meta_buffer);
        pg_sys::UnlockReleaseBuffer(meta_buffer);

        let mut centre_pages = PageAppender::new(index, fork, PageKind::Centres);
        for centre in centres.chunks_exact(dims) {
            centre_pages.append(pages::floats_as_bytes(centre));
        }
        meta.centres_start = centre_pages.first;
        centre_pages.close();
        meta.tails_start = write_tails(
            index,
            fork,
            &vec![(pages::INVALID_BLOCK, pages::INVALID_BLOCK); lists],
        );
    }

    progress(pg_sys::PROGRESS_CREATEIDX_SUBPHASE, PHASE_LOADING);
    let mut loader = Loader {
        encoder: Encoder {
            dims,
            centres: &centres,
            rotated_centres: &rotated_centres,
            rotation: &rotation,
        },
        metric,
        threads,
        vectors: Vec::with_capacity(BATCH * dims),
        tids: Vec::with_capacity(BATCH),
        keys: Vec::with_capacity(BATCH),
        vector_pages: PageAppender::new(index, fork, PageKind::Vectors),
        lists: vec![Vec::new(); lists],
        loaded: 0,
        scratch: Vec::new(),
    };
    unsafe {
        pg_sys::table_index_build_scan(
            heap,
            index,
            index_info,
            true,
            true,
            Some(load_callback),
            &mut loader as *mut Loader as *mut std::ffi::c_void,
            std::ptr::null_mut(),
        );
    }
    loader.flush();
    let loaded = loader.loaded;
    meta.vector_tail = loader.vector_pages.last;
    loader.vector_pages.close();

    progress(pg_sys::PROGRESS_CREATEIDX_SUBPHASE, PHASE_WRITING);
    let mut ends = Vec::with_capacity(lists);
    for entries in &loader.lists {
        pgrx::check_for_interrupts!();
        if entries.is_empty() {
            ends.push((pages::INVALID_BLOCK, pages::INVALID_BLOCK));
            continue;
        }
        let mut code_pages = unsafe { PageAppender::new(index, fork, PageKind::Codes) };
        let mut rest = entries.as_slice();
        while let Some((len, after)) = rest.split_first_chunk::<2>() {
            let (entry, next) = after.split_at(u16::from_ne_bytes(*len) as usize);
            code_pages.append(entry);
            rest = next;
        }
        ends.push((code_pages.first, code_pages.last));
        code_pages.close();
    }
    unsafe {
        update_tails(index, meta.tails_start, &ends);
        let meta_buffer = buffers::lock_block(index, pages::META_BLOCK, true);
        pages::overwrite_meta(pg_sys::BufferGetPage(meta_buffer), &meta);
        pg_sys::MarkBufferDirty(meta_buffer);
        pg_sys::UnlockReleaseBuffer(meta_buffer);
    }
    loaded
}

struct Loader<'a> {
    encoder: Encoder<'a>,
    metric: Metric,
    threads: usize,
    vectors: Vec<f32>,
    tids: Vec<pg_sys::ItemPointerData>,
    vector_pages: PageAppender,
    /// Per list, its entries back to back, each after its length (u16).
    lists: Vec<Vec<u8>>,
    /// The included text of each row in `tids` (`pages::entry_key_bytes`).
    keys: Vec<Vec<u8>>,
    loaded: usize,
    scratch: Vec<f32>,
}

impl Loader<'_> {
    fn flush(&mut self) {
        if self.tids.is_empty() {
            return;
        }
        let dims = self.encoder.dims;
        let encoded = self.encoder.encode_batch(&self.vectors, self.threads);
        for (((encoded, tid), vector), key) in encoded
            .iter()
            .zip(&self.tids)
            .zip(self.vectors.chunks_exact(dims))
            .zip(&self.keys)
        {
            let (vector_block, vector_offset) =
                self.vector_pages.append(pages::floats_as_bytes(vector));
            let entry = code_entry(tid, vector_block, vector_offset, encoded.factors);
            let list = &mut self.lists[encoded.list as usize];
            let len = pages::CODE_ENTRY_HEADER + encoded.bits.len() + key.len();
            let len = u16::try_from(len).expect("an entry fits a page");
            list.extend_from_slice(&len.to_ne_bytes());
            list.extend_from_slice(pages::as_bytes(&entry));
            list.extend_from_slice(&encoded.bits);
            list.extend_from_slice(key);
        }
        self.loaded += self.tids.len();
        progress(pg_sys::PROGRESS_CREATEIDX_TUPLES_DONE, self.loaded as i64);
        self.vectors.clear();
        self.tids.clear();
        self.keys.clear();
    }
}

pub fn code_entry(
    tid: &pg_sys::ItemPointerData,
    vector_block: pg_sys::BlockNumber,
    vector_offset: pg_sys::OffsetNumber,
    factors: interest_core::ivf::rabitq::CodeFactors,
) -> CodeEntry {
    CodeEntry {
        heap_block: unsafe { pgrx::itemptr::item_pointer_get_block_number_no_check(*tid) },
        heap_offset: tid.ip_posid,
        vector_offset,
        vector_block,
        residual_norm: factors.residual_norm,
        alignment: factors.alignment,
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn load_callback(
    index: pg_sys::Relation,
    tid: pg_sys::ItemPointer,
    values: *mut pg_sys::Datum,
    isnull: *mut bool,
    _alive: bool,
    state: *mut std::ffi::c_void,
) {
    let loader = unsafe { &mut *(state as *mut Loader) };
    if unsafe { *isnull } {
        return;
    }
    let raw = unsafe { embedding_values(*values) };
    check_dims(loader.encoder.dims, raw.len());
    loader.scratch.clear();
    loader.scratch.extend_from_slice(raw);
    if !loader.metric.prepare(&mut loader.scratch) {
        return;
    }
    loader.vectors.extend_from_slice(&loader.scratch);
    loader.tids.push(unsafe { *tid });
    loader
        .keys
        .push(unsafe { included_text(index, values, isnull) });
    if loader.tids.len() >= BATCH {
        loader.flush();
    }
}

/// Writes the tail pages (one `ListEnds` per list); returns the first block.
unsafe fn write_tails(
    index: pg_sys::Relation,
    fork: pg_sys::ForkNumber::Type,
    ends: &[(pg_sys::BlockNumber, pg_sys::BlockNumber)],
) -> pg_sys::BlockNumber {
    let per_page = pages::tails_per_page() as usize;
    let mut first = pages::INVALID_BLOCK;
    for chunk in ends.chunks(per_page) {
        unsafe {
            let buffer = buffers::new_block(index, fork);
            let page = pg_sys::BufferGetPage(buffer);
            pages::init_page(page, PageKind::Tails);
            for &(head, tail) in chunk {
                pages::add_item(page, pages::as_bytes(&ListEnds { head, tail }))
                    .expect("sized to fit");
            }
            if first == pages::INVALID_BLOCK {
                first = pg_sys::BufferGetBlockNumber(buffer);
            }
            pg_sys::MarkBufferDirty(buffer);
            pg_sys::UnlockReleaseBuffer(buffer);
        }
    }
    first
}

unsafe fn update_tails(
    index: pg_sys::Relation,
    tails_start: pg_sys::BlockNumber,
    ends: &[(pg_sys::BlockNumber, pg_sys::BlockNumber)],
) {
    let per_page = pages::tails_per_page() as usize;
    for (page_index, chunk) in ends.chunks(per_page).enumerate() {
        unsafe {
            let (block, _) = tail_slot(tails_start, page_index * per_page);
            let buffer = buffers::lock_block(index, block, true);
            let page = pg_sys::BufferGetPage(buffer);
            for (i, &(head, tail)) in chunk.iter().enumerate() {
                pages::overwrite_item(
                    page,
                    (i + 1) as pg_sys::OffsetNumber,
                    pages::as_bytes(&ListEnds { head, tail }),
                );
            }
            pg_sys::MarkBufferDirty(buffer);
            pg_sys::UnlockReleaseBuffer(buffer);
        }
    }
}

/// An index with no vectors yet: one list with a zero centre; the first
/// insert fixes the dimensions.
unsafe fn write_empty(
    index: pg_sys::Relation,
    fork: pg_sys::ForkNumber::Type,
    metric: Metric,
    build_id: u64,
) {
    let mut meta = Meta::new(0, metric.code(), 1, BUILD_SEED, build_id);
    meta.zero_centre = 1;
    unsafe {
        let meta_buffer = buffers::new_block(index, fork);
        pages::init_page(pg_sys::BufferGetPage(meta_buffer), PageKind::Meta);
        meta.tails_start = pg_sys::BufferGetBlockNumber(meta_buffer) + 1;
        pages::add_item(pg_sys::BufferGetPage(meta_buffer), pages::as_bytes(&meta))
            .expect("meta fits");
        pg_sys::MarkBufferDirty(meta_buffer);
        pg_sys::UnlockReleaseBuffer(meta_buffer);
        let tails = write_tails(index, fork, &[(pages::INVALID_BLOCK, pages::INVALID_BLOCK)]);
        assert_eq!(tails, meta.tails_start);
    }
}

/// Appends items to a chain of new pages of one kind (build only: no WAL).
struct PageAppender {
    index: pg_sys::Relation,
    fork: pg_sys::ForkNumber::Type,
    kind: PageKind,
    buffer: Option<pg_sys::Buffer>,
    first: pg_sys::BlockNumber,
    last: pg_sys::BlockNumber,
}

impl PageAppender {
    unsafe fn new(
        index: pg_sys::Relation,
        fork: pg_sys::ForkNumber::Type,
        kind: PageKind,
    ) -> PageAppender {
        PageAppender {
            index,
            fork,
            kind,
            buffer: None,
            first: pages::INVALID_BLOCK,
            last: pages::INVALID_BLOCK,
        }
    }

    fn append(&mut self, item: &[u8]) -> (pg_sys::BlockNumber, pg_sys::OffsetNumber) {
        unsafe {
            if let Some(buffer) = self.buffer {
                if let Some(offset) = pages::add_item(pg_sys::BufferGetPage(buffer), item) {
                    return (self.last, offset);
                }
            }
            let buffer = buffers::new_block(self.index, self.fork);
            let block = pg_sys::BufferGetBlockNumber(buffer);
            let page = pg_sys::BufferGetPage(buffer);
            pages::init_page(page, self.kind);
            if let Some(previous) = self.buffer.take() {
                pages::set_next_block(pg_sys::BufferGetPage(previous), block);
                pg_sys::MarkBufferDirty(previous);
                pg_sys::UnlockReleaseBuffer(previous);
            }
            if self.first == pages::INVALID_BLOCK {
                self.first = block;
            }
            self.last = block;
            self.buffer = Some(buffer);
            let offset = pages::add_item(page, item)
                .unwrap_or_else(|| super::corrupt("an item larger than a page"));
            (block, offset)
        }
    }

    fn close(mut self) {
        if let Some(buffer) = self.buffer.take() {
            unsafe {
                pg_sys::MarkBufferDirty(buffer);
                pg_sys::UnlockReleaseBuffer(buffer);
            }
        }
    }
}
