//! The included texts (recommend()'s item keys) of a vector's nearest
//! entries, read from the index's code pages alone: no heap page and no
//! vector page is touched, so a caller reads the rows of only those
//! neighbours it goes on to rank. The entries are the ones an
//! estimates-only scan (`scan::with_estimates_only`) returns first, in the
//! same order; like its rows they may include dead or uncommitted ones,
//! which a later read of the rows leaves out.

use super::pages::{self, EntryKey};
use super::scan::{list_ends, prefetch_list, walk_list};
use super::{check_dims, includes_text, shape};
use crate::gucs;
use interest_core::candidates::CANDIDATE_PROBES;
use interest_core::ivf::estimator::PreparedQuery;
use interest_core::ivf::rabitq::{code_bytes, CodeFactors};
use interest_core::ivf::search::{probe_further, CandidatePool};
use pgrx::pg_sys;

/// The included texts of the `n` entries of `index` nearest `vector` by
/// their codes' bounds; None when the index includes no text column, an
/// entry found left its text out (too long), or the query has no direction
/// (the caller reads rows instead).
pub fn nearest_keys(index_oid: pg_sys::Oid, vector: &[f32], n: usize) -> Option<Vec<String>> {
    // SAFETY: the index is opened and closed here; its pages are read under
    // share locks, one at a time.
    unsafe {
        let index = pg_sys::index_open(index_oid, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        let keys = if includes_text(index) {
            read_keys(index, vector, n)
        } else {
            None
        };
        pg_sys::index_close(index, pg_sys::NoLock as pg_sys::LOCKMODE);
        keys
    }
}

/// # Safety
/// `index` is an open interest_ivf index.
unsafe fn read_keys(index: pg_sys::Relation, vector: &[f32], n: usize) -> Option<Vec<String>> {
    let shape = unsafe { shape::load(index) };
    if shape.dims == 0 || n == 0 {
        return Some(Vec::new());
    }
    check_dims(shape.dims, vector.len());
    let query = PreparedQuery::new(shape.metric, &shape.rotation, vector)?;
    let order = interest_core::ivf::search::probe_order(&query, &shape.centres, shape.dims);
    let max_probes = gucs::IVF_MAX_PROBES.get().max(0) as usize;
    let list_limit = match max_probes {
        0 => shape.lists,
        m => m.min(shape.lists),
    }
    .min(order.len());
    let probes = gucs::ivf_probes(shape.lists).min(CANDIDATE_PROBES);
    let rerank = gucs::IVF_RERANK.get().max(1) as usize;
    let bits_len = code_bytes(shape.dims);
    let mut pool: CandidatePool<Option<String>> = CandidatePool::default();
    let mut next_list = 0;
    let mut found: Vec<Option<String>> = Vec::with_capacity(n);
    // As the scan: probe, then take rounds by bound, probing further when
    // the pool runs low.
    while found.len() < n {
        let probed = pool.len() + found.len();
        let more = next_list < list_limit;
        if more && (next_list == 0 || probe_further(probed, found.len(), pool.len(), rerank)) {
            let end = (next_list + probes).min(list_limit);
            let heads: Vec<_> = order[next_list..end]
                .iter()
                .map(|&list| unsafe {
                    let ends = list_ends(index, &shape, list as usize);
                    prefetch_list(index, ends);
                    ends.head
                })
                .collect();
            for (&list, head) in order[next_list..end].iter().zip(heads) {
                pgrx::check_for_interrupts!();
                let list = list as usize;
                let estimator = query.for_list(shape.centre(list), shape.rotated_centre(list));
                unsafe {
                    walk_list(index, head, |bytes| {
                        let entry: pages::CodeEntry = pages::read_struct(bytes);
                        let bits =
                            &bytes[pages::CODE_ENTRY_HEADER..pages::CODE_ENTRY_HEADER + bits_len];
                        let factors = CodeFactors {
                            residual_norm: entry.residual_norm,
                            alignment: entry.alignment,
                        };
                        let key = match pages::entry_key(bytes, bits_len) {
                            EntryKey::Stored(k) => std::str::from_utf8(k).ok().map(str::to_owned),
                            EntryKey::Left | EntryKey::NotIncluded => None,
                        };
                        pool.push(estimator.estimate(bits, factors).1, key);
                    });
                }
            }
            next_list = end;
        } else if pool.is_empty() {
            break;
        }
        found.extend(pool.take_by_bound(rerank).into_iter().map(|(_, k)| k));
    }
    found.truncate(n);
    found.into_iter().collect()
}
