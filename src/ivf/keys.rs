//! The included texts (recommend()'s item keys) of a vector's nearest
//! entries, read from the index's code pages alone: no heap page and no
//! vector page is touched, so a caller reads the rows of only those
//! neighbours it goes on to rank. The entries are taken in the order an
//! estimates-only scan (`scan::with_estimates_only`) returns them, each
//! text once: a row rewritten since the last VACUUM has an entry per
//! version, one text. Without the heap, an entry of a row deleted (or not
//! yet committed) still counts until VACUUM; a later read of its row
//! leaves it out.

use super::pages::{self, EntryKey};
use super::scan::{estimates_only_probes, list_heads, walk_list};
use super::stats;
use super::{check_dims, includes_text, shape};
use crate::gucs;
use interest_core::ivf::estimator::PreparedQuery;
use interest_core::ivf::rabitq::code_bytes;
use interest_core::ivf::search::{probe_further, probe_order, CandidatePool};
use pgrx::pg_sys;
use std::collections::HashSet;

/// The included texts of the `n` entries of `index` nearest `vector` by
/// their codes' bounds, each once; None when the index includes no text
/// column, one of those entries carries none (too long, NULL, not UTF-8),
/// or the query has no direction (the caller reads rows instead).
pub fn nearest_keys(index_oid: pg_sys::Oid, vector: &[f32], n: usize) -> Option<Vec<String>> {
    let share = pg_sys::AccessShareLock as pg_sys::LOCKMODE;
    // SAFETY: the table is locked before its index, as a scan does; the
    // index's pages are read under share locks, one at a time.
    unsafe {
        pg_sys::LockRelationOid(pg_sys::IndexGetRelation(index_oid, false), share);
        let index = pg_sys::index_open(index_oid, share);
        let keys = if includes_text(index) {
            let keys = read_keys(index, vector, n);
            // Without keys the caller scans through the executor, which
            // counts that scan.
            if let Some(found) = &keys {
                stats::count_scan(index);
                stats::count_entries_returned(index, found.len());
            }
            keys
        } else {
            None
        };
        pg_sys::index_close(index, pg_sys::NoLock as pg_sys::LOCKMODE);
        keys
    }
}

/// Where an entry's text is in `Texts::bytes`; None when it carries none.
type TextSpan = Option<(u32, u32)>;

/// The probed entries' texts, back to back (one allocation, not one per
/// entry: a probe reads thousands).
#[derive(Default)]
struct Texts {
    bytes: Vec<u8>,
}

impl Texts {
    fn keep(&mut self, text: &[u8]) -> TextSpan {
        let start = self.bytes.len() as u32;
        self.bytes.extend_from_slice(text);
        Some((start, text.len() as u32))
    }

    fn get(&self, span: TextSpan) -> Option<&str> {
        let (start, len) = span?;
        std::str::from_utf8(&self.bytes[start as usize..(start + len) as usize]).ok()
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
    let order = probe_order(&query, &shape.centres, shape.dims);
    let list_limit = gucs::ivf_list_limit(shape.lists).min(order.len());
    let probes = estimates_only_probes(shape.lists);
    let rerank = gucs::ivf_rerank();
    let bits_len = code_bytes(shape.dims);
    let mut texts = Texts::default();
    let mut pool: CandidatePool<TextSpan> = CandidatePool::default();
    let mut next_list = 0;
    let mut taken = 0;
    let mut found: Vec<String> = Vec::with_capacity(n);
    let mut seen: HashSet<String> = HashSet::with_capacity(n);
    // As the scan: probe, then take rounds by bound, probing further when
    // the pool runs low (`taken` plays the rows it returned).
    while found.len() < n {
        let probed = pool.len() + taken;
        if next_list < list_limit
            && (next_list == 0 || probe_further(probed, taken, pool.len(), rerank))
        {
            let end = (next_list + probes).min(list_limit);
            let heads = unsafe { list_heads(index, &shape, &order[next_list..end]) };
            for (&list, head) in order[next_list..end].iter().zip(heads) {
                pgrx::check_for_interrupts!();
                let list = list as usize;
                let estimator = query.for_list(shape.centre(list), shape.rotated_centre(list));
                unsafe {
                    walk_list(index, head, |bytes| {
                        let (_, bits, factors) = pages::read_code_entry(bytes, bits_len);
                        let text = match pages::entry_key(bytes, bits_len) {
                            EntryKey::Stored(text) => texts.keep(text),
                            EntryKey::Left | EntryKey::NotIncluded => None,
                        };
                        pool.push(estimator.estimate(bits, factors).1, text);
                    });
                }
            }
            next_list = end;
        } else if pool.is_empty() {
            break;
        }
        for (_, span) in pool.take_by_bound(rerank) {
            taken += 1;
            if found.len() == n {
                continue;
            }
            let key = texts.get(span)?;
            if seen.insert(key.to_string()) {
                found.push(key.to_string());
            }
        }
    }
    Some(found)
}
