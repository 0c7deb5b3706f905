//! `ORDER BY e <op> q LIMIT k`: the `interest.ivf_probes` lists of nearest
//! centre are probed into a candidate pool ordered by the codes' lower
//! bounds (automatic probes: 10 lists at a time, up to
//! `interest_core::ivf::automatic_probes`, while each step's lists hold
//! entries near the round's rows or fewer quiet steps than the build
//! allows came in a row); each round ranks entries exactly, in
//! bound order, until its rows (10 in the first, `interest.ivf_rerank`
//! after) are the certain nearest of the pool (no bound left could beat
//! them), and returns them nearest first. Rounds go on while the
//! executor asks for rows (a WHERE clause that rejects them); when the pool
//! runs low the next lists are probed, until every list (or
//! `interest.ivf_max_probes`) has been, so a filtered query gets k rows
//! whenever k rows qualify. Rows of a later round may come after rows of
//! lists probed since that are nearer: the order holds within what was
//! probed.

use super::buffers;
use super::pages::{self, ListEnds};
use super::shape::{self, Shape};
use super::stats;
use super::{check_dims, embedding_values};
use crate::gucs;
use interest_core::candidates::CANDIDATE_PROBES;
use interest_core::ivf::estimator::PreparedQuery;
use interest_core::ivf::rabitq::code_bytes;
use interest_core::ivf::search::{
    probe_further, probe_order, round_rows, step_reached_rows, AutomaticSteps, CandidatePool,
};
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::collections::VecDeque;
use std::rc::Rc;

thread_local! {
    static ESTIMATES_ONLY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `body` with this backend's interest_ivf scans returning rows in
/// order of their codes' bounds, without exact distances, probing at most
/// `candidates::CANDIDATE_PROBES` lists first: for callers that rank what
/// they get exactly themselves (recommend()'s candidates).
pub fn with_estimates_only<T>(body: impl FnOnce() -> T) -> T {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            ESTIMATES_ONLY.with(|e| e.set(self.0));
        }
    }
    let _restore = Restore(ESTIMATES_ONLY.with(|e| e.replace(true)));
    body()
}

/// Lists an estimates-only scan of an index with `lists` lists probes at a
/// time.
pub(super) fn estimates_only_probes(lists: usize) -> usize {
    gucs::ivf_probes(lists).min(CANDIDATE_PROBES)
}

#[derive(Clone, Copy)]
struct Candidate {
    heap: pg_sys::ItemPointerData,
    vector_block: pg_sys::BlockNumber,
    vector_offset: pg_sys::OffsetNumber,
    /// Its list's place in the probe order.
    position: u32,
}

struct ScanState {
    shape: Option<Rc<Shape>>,
    /// None: no usable query (NULL, or a zero vector under cosine): every
    /// entry is returned in list order.
    query: Option<Rc<PreparedQuery>>,
    order: Vec<u32>,
    next_list: usize,
    list_limit: usize,
    probes_per_round: usize,
    /// Automatic probes (`interest.ivf_probes` 0): the most lists probed
    /// before a round's rows while the steps reach them (`steps`; at most
    /// `list_limit`); 0 otherwise.
    auto_limit: usize,
    /// The probe order's place where the last step of lists began.
    step_start: usize,
    /// Whether an automatic scan's steps go on (quiet steps in a row).
    steps: AutomaticSteps,
    rerank: usize,
    pool: CandidatePool<Candidate>,
    ready: VecDeque<pg_sys::ItemPointerData>,
    /// Rows given to the executor. Every probed entry is in `pool`, in
    /// `ready` or returned, so what was probed is never counted apart.
    returned: usize,
    /// Whether this scan (since its last rescan) is counted in the
    /// statistics: once, at its first tuple asked for, as btree counts.
    counted: bool,
}

#[pg_guard]
pub unsafe extern "C-unwind" fn ambeginscan(
    index: pg_sys::Relation,
    nkeys: i32,
    norderbys: i32,
) -> pg_sys::IndexScanDesc {
    unsafe {
        let scan = pg_sys::RelationGetIndexScan(index, nkeys, norderbys);
        let state = Box::new(ScanState {
            shape: None,
            query: None,
            order: Vec::new(),
            next_list: 0,
            list_limit: 0,
            probes_per_round: 1,
            auto_limit: 0,
            step_start: 0,
            steps: AutomaticSteps::new(1),
            rerank: 1,
            pool: CandidatePool::default(),
            ready: VecDeque::new(),
            returned: 0,
            counted: false,
        });
        (*scan).opaque = Box::into_raw(state) as *mut std::ffi::c_void;
        scan
    }
}

#[pg_guard]
pub unsafe extern "C-unwind" fn amrescan(
    scan: pg_sys::IndexScanDesc,
    keys: pg_sys::ScanKey,
    nkeys: i32,
    orderbys: pg_sys::ScanKey,
    norderbys: i32,
) {
    unsafe {
        if !keys.is_null() && nkeys > 0 {
            std::ptr::copy(keys, (*scan).keyData, nkeys as usize);
        }
        if !orderbys.is_null() && norderbys > 0 {
            std::ptr::copy(orderbys, (*scan).orderByData, norderbys as usize);
        }
        let state = &mut *((*scan).opaque as *mut ScanState);
        let shape = shape::load((*scan).indexRelation);
        let key = (*scan).orderByData;
        let raw =
            if norderbys > 0 && !key.is_null() && (*key).sk_flags & pg_sys::SK_ISNULL as i32 == 0 {
                Some(embedding_values((*key).sk_argument))
            } else {
                None
            };
        if let Some(raw) = raw {
            check_dims(shape.dims, raw.len());
        }
        state.query = raw
            .filter(|_| shape.dims > 0)
            .and_then(|raw| PreparedQuery::new(shape.metric, &shape.rotation, raw))
            .map(Rc::new);
        state.order = match &state.query {
            Some(query) => probe_order(query, &shape.centres, shape.dims),
            None => (0..shape.lists as u32).collect(),
        };
        state.list_limit = gucs::ivf_list_limit(shape.lists);
        let estimates_only = ESTIMATES_ONLY.with(|e| e.get());
        state.probes_per_round = if estimates_only {
            estimates_only_probes(shape.lists)
        } else {
            gucs::ivf_probes(shape.lists)
        };
        let automatic = gucs::ivf_probes_automatic() && !estimates_only;
        state.auto_limit = if automatic && state.query.is_some() {
            shape.automatic_probes.min(state.list_limit)
        } else {
            0
        };
        state.step_start = 0;
        state.steps = AutomaticSteps::new(shape.quiet_steps);
        state.rerank = gucs::ivf_rerank();
        state.next_list = 0;
        state.pool = CandidatePool::default();
        state.ready.clear();
        state.returned = 0;
        state.counted = false;
        state.shape = Some(shape);
    }
}

#[pg_guard]
pub unsafe extern "C-unwind" fn amgettuple(
    scan: pg_sys::IndexScanDesc,
    _direction: pg_sys::ScanDirection::Type,
) -> bool {
    unsafe {
        let state = &mut *((*scan).opaque as *mut ScanState);
        let index = (*scan).indexRelation;
        if !state.counted {
            stats::count_scan(index);
            state.counted = true;
        }
        loop {
            if let Some(tid) = state.ready.pop_front() {
                state.returned += 1;
                (*scan).xs_heaptid = tid;
                (*scan).xs_recheck = false;
                (*scan).xs_recheckorderby = false;
                return true;
            }
            let more_lists = state.next_list < state.list_limit.min(state.order.len());
            // Probe further lists when the pool runs low, or when the rows
            // asked for (a filter rejecting them) reach out far enough that
            // unprobed lists compete.
            // `ready` is empty here: the probed entries are the pool and the rows returned.
            let probed = state.pool.len() + state.returned;
            let further = probe_further(probed, state.returned, state.pool.len(), state.rerank);
            if more_lists && (state.next_list == 0 || further) {
                probe_step(index, state, state.list_limit);
            } else if state.pool.is_empty() {
                return false;
            }
            let before = state.ready.len();
            rerank_round(index, state);
            prefetch_heap(scan, state.ready.range(before..));
        }
    }
}

/// Probes the next `probes_per_round` lists of the probe order, short of
/// the place `limit` (at most `list_limit`).
unsafe fn probe_step(index: pg_sys::Relation, state: &mut ScanState, limit: usize) {
    let end = (state.next_list + state.probes_per_round)
        .min(limit)
        .min(state.order.len());
    let shape = state.shape.clone().expect("rescan loads the shape");
    unsafe {
        let heads = list_heads(index, &shape, &state.order[state.next_list..end]);
        for (position, head) in (state.next_list..end).zip(heads) {
            pgrx::check_for_interrupts!();
            probe_list(index, state, position, head);
        }
    }
    state.step_start = state.next_list;
    state.next_list = end;
}

/// Asks the kernel for the heap pages of a round's rows before the
/// executor fetches them one by one: on a cold cache their reads overlap.
unsafe fn prefetch_heap<'a>(
    scan: pg_sys::IndexScanDesc,
    tids: impl Iterator<Item = &'a pg_sys::ItemPointerData>,
) {
    unsafe {
        let heap = (*scan).heapRelation;
        if heap.is_null() {
            return;
        }
        for tid in tids {
            let block = pgrx::itemptr::item_pointer_get_block_number_no_check(*tid);
            pg_sys::PrefetchBuffer(heap, pg_sys::ForkNumber::MAIN_FORKNUM, block);
        }
    }
}

/// Moves the pool's nearest entries, ranked exactly, to `ready`.
unsafe fn rerank_round(index: pg_sys::Relation, state: &mut ScanState) {
    let Some(query) = state.query.clone() else {
        let all = state
            .pool
            .next_round(usize::MAX, |batch| vec![0.0; batch.len()]);
        state.ready.extend(all.into_iter().map(|(_, c)| c.heap));
        return;
    };
    if ESTIMATES_ONLY.with(|e| e.get()) {
        let round = state.pool.take_by_bound(state.rerank);
        state.ready.extend(round.into_iter().map(|(_, c)| c.heap));
        return;
    }
    let rows = round_rows(state.returned, state.rerank);
    loop {
        let round = state.pool.next_round(rows, |batch| unsafe {
            exact_distances(index, &query, batch)
        });
        // Automatic probes: the next step of lists before these rows while
        // the steps reach them (or fewer quiet steps than the build allows
        // came in a row).
        let first_new = state.step_start.max(1) as u32;
        if state.next_list < state.auto_limit
            && state.steps.go_on(
                state.step_start,
                step_reached_rows(&state.pool, &round, |c| c.position >= first_new),
            )
        {
            state.pool.put_back(round);
            unsafe { probe_step(index, state, state.auto_limit) };
            continue;
        }
        state.ready.extend(round.into_iter().map(|(_, c)| c.heap));
        return;
    }
}

/// The exact distances of a batch of entries. Every entry's vector page is
/// pinned and its vector asked of the CPU first, then each is ranked under
/// a share lock of its own: the batch's memory reads overlap, and the scan
/// never holds two locks (a pin cannot deadlock with a writer).
unsafe fn exact_distances(
    index: pg_sys::Relation,
    query: &PreparedQuery,
    batch: &[&Candidate],
) -> Vec<f64> {
    unsafe {
        let buffers: Vec<pg_sys::Buffer> = batch
            .iter()
            .map(|c| buffers::pin_block(index, c.vector_block))
            .collect();
        let share = pg_sys::BUFFER_LOCK_SHARE as i32;
        let unlock = pg_sys::BUFFER_LOCK_UNLOCK as i32;
        for (candidate, &buffer) in batch.iter().zip(&buffers) {
            pg_sys::LockBuffer(buffer, share);
            if let Some(bytes) = pages::item(pg_sys::BufferGetPage(buffer), candidate.vector_offset)
            {
                interest_core::kernels::prefetch(bytes);
            }
            pg_sys::LockBuffer(buffer, unlock);
        }
        batch
            .iter()
            .zip(&buffers)
            .map(|(candidate, &buffer)| {
                pg_sys::LockBuffer(buffer, share);
                let distance =
                    match pages::item(pg_sys::BufferGetPage(buffer), candidate.vector_offset) {
                        Some(bytes) => query.distance(&pages::floats_of(bytes)),
                        None => f64::INFINITY,
                    };
                pg_sys::UnlockReleaseBuffer(buffer);
                distance
            })
            .collect()
    }
}

/// The first pages of `lists`, each list's pages asked of the kernel
/// (`prefetch_list`) before any is read.
///
/// # Safety
/// `index` is an open interest_ivf index of `shape`.
pub(super) unsafe fn list_heads(
    index: pg_sys::Relation,
    shape: &Shape,
    lists: &[u32],
) -> Vec<pg_sys::BlockNumber> {
    lists
        .iter()
        .map(|&list| unsafe {
            let ends = list_ends(index, shape, list as usize);
            prefetch_list(index, ends);
            ends.head
        })
        .collect()
}

/// A list's first and last pages.
unsafe fn list_ends(index: pg_sys::Relation, shape: &Shape, list: usize) -> ListEnds {
    let (tails_block, tails_offset) = shape.tail_slot(list);
    unsafe {
        let buffer = buffers::lock_block(index, tails_block, false);
        let ends: ListEnds = match pages::item(pg_sys::BufferGetPage(buffer), tails_offset) {
            Some(bytes) => pages::read_struct(bytes),
            None => super::corrupt("a list has no ends record"),
        };
        pg_sys::UnlockReleaseBuffer(buffer);
        ends
    }
}

/// A list spanning at most this many blocks from its first page to its last
/// is taken to lie on them all (a build writes each list's pages in a row).
const CONTIGUOUS_LIST_BLOCKS: u32 = 64;

/// Asks the kernel for a list's pages before the probe reads them one by
/// one, so the reads of a round's lists overlap on a cold cache: the pages
/// from its first to its last when they lie close (as built), else the
/// first (a list that grew since the build has its later pages elsewhere).
/// A list whose first page is in shared buffers is taken to be cached
/// whole: asking for its other pages would only cost lookups.
unsafe fn prefetch_list(index: pg_sys::Relation, ends: ListEnds) {
    if ends.head == pages::INVALID_BLOCK {
        return;
    }
    unsafe {
        let first = pg_sys::PrefetchBuffer(index, pg_sys::ForkNumber::MAIN_FORKNUM, ends.head);
        if !first.initiated_io {
            return;
        }
        let last = if ends.tail >= ends.head && ends.tail - ends.head < CONTIGUOUS_LIST_BLOCKS {
            ends.tail
        } else {
            ends.head
        };
        for block in ends.head + 1..=last {
            pg_sys::PrefetchBuffer(index, pg_sys::ForkNumber::MAIN_FORKNUM, block);
        }
    }
}

/// How far ahead of the entry it estimates a probe asks the CPU for the
/// next entries (each on a cache line or two of its own).
const PREFETCH_ENTRIES_AHEAD: u16 = 16;

/// Estimates every entry of one list into the pool.
unsafe fn probe_list(
    index: pg_sys::Relation,
    state: &mut ScanState,
    position: usize,
    head: pg_sys::BlockNumber,
) {
    let shape = state.shape.clone().expect("rescan loads the shape");
    let list = state.order[position] as usize;
    let estimator = state
        .query
        .as_ref()
        .map(|q| q.for_list(shape.centre(list), shape.rotated_centre(list)));
    let bits_len = code_bytes(shape.dims);
    unsafe {
        walk_list(index, head, |bytes| {
            let (entry, bits, factors) = pages::read_code_entry(bytes, bits_len);
            let lower = estimator
                .as_ref()
                .map_or(0.0, |e| e.estimate(bits, factors).1);
            let mut heap = pg_sys::ItemPointerData::default();
            heap.ip_blkid.bi_hi = (entry.heap_block >> 16) as u16;
            heap.ip_blkid.bi_lo = (entry.heap_block & 0xffff) as u16;
            heap.ip_posid = entry.heap_offset;
            state.pool.push(
                lower,
                Candidate {
                    heap,
                    vector_block: entry.vector_block,
                    vector_offset: entry.vector_offset,
                    position: position as u32,
                },
            );
        });
    }
}

/// Hands `visit` the bytes of every code entry of the list whose first
/// page is `head`, page by page under a share lock.
///
/// # Safety
/// `index` is an open interest_ivf index and `head` one of its lists'
/// first pages (or INVALID_BLOCK).
pub(super) unsafe fn walk_list(
    index: pg_sys::Relation,
    head: pg_sys::BlockNumber,
    mut visit: impl FnMut(&[u8]),
) {
    let mut block = head;
    // The chain's next page, pinned (not locked) while this one is read so
    // its first lines are on their way (a list's pages are read in a row);
    // pinned only when already in shared buffers, so no read waits under
    // this page's lock.
    let mut pinned_next: Option<pg_sys::Buffer> = None;
    while block != pages::INVALID_BLOCK {
        unsafe {
            let buffer = match pinned_next.take() {
                Some(buffer) => {
                    pg_sys::LockBuffer(buffer, pg_sys::BUFFER_LOCK_SHARE as i32);
                    buffer
                }
                None => buffers::lock_block(index, block, false),
            };
            let page = pg_sys::BufferGetPage(buffer);
            let next = pages::next_block(page);
            if next != pages::INVALID_BLOCK {
                pinned_next = buffers::pin_if_cached(index, next);
                if let Some(ahead) = pinned_next {
                    pages::prefetch_page_ends(pg_sys::BufferGetPage(ahead));
                }
            }
            let count = pages::item_count(page);
            for offset in 1..=count {
                if offset + PREFETCH_ENTRIES_AHEAD <= count {
                    if let Some(ahead) = pages::item(page, offset + PREFETCH_ENTRIES_AHEAD) {
                        interest_core::kernels::prefetch(ahead);
                    }
                }
                if let Some(bytes) = pages::item(page, offset) {
                    visit(bytes);
                }
            }
            block = next;
            pg_sys::UnlockReleaseBuffer(buffer);
        }
    }
}

#[pg_guard]
pub unsafe extern "C-unwind" fn amendscan(scan: pg_sys::IndexScanDesc) {
    unsafe {
        let state = (*scan).opaque as *mut ScanState;
        if !state.is_null() {
            drop(Box::from_raw(state));
            (*scan).opaque = std::ptr::null_mut();
        }
    }
}
