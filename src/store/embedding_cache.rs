//! The embeddings of the items every call of a source takes as candidates
//! (the trending items), kept per backend so that a call does not look them
//! up by key again. An items table's count of changes (`items::version`)
//! keys what is kept: any committed change to its embeddings empties it.
//! Callers pass a count from `items::committed_version`, so a transaction
//! that changed an embedding itself neither uses nor fills it.

use crate::spi::extension_oid;
use pgrx::pg_sys;
use std::cell::RefCell;
use std::collections::HashMap;

/// An item's key, embedding and when it was first embedded (epoch seconds),
/// as `catalog` reads them.
pub(crate) type Row = (String, Vec<f32>, f64);

/// The most bytes of embeddings kept per items table: 2,730 embeddings of
/// 384 dimensions, more than a widened call's 400 trending candidates.
pub(crate) const MAX_KEPT_BYTES: usize = 4 << 20;

struct Kept {
    ext: pg_sys::Oid,
    version: i64,
    rows: HashMap<String, (Vec<f32>, f64)>,
    bytes: usize,
}

fn bytes_of(key: &str, embedding: &[f32]) -> usize {
    key.len() + std::mem::size_of_val(embedding)
}

thread_local! {
    static KEPT: RefCell<HashMap<i32, Kept>> = RefCell::new(HashMap::new());
}

/// The kept embeddings of `keys` for the items table at `version`.
pub(crate) fn get(item_source: i32, version: i64, keys: &[&str]) -> Vec<Row> {
    let ext = extension_oid();
    KEPT.with(|k| {
        let kept = k.borrow();
        let Some(kept) = kept
            .get(&item_source)
            .filter(|c| c.ext == ext && c.version == version)
        else {
            return Vec::new();
        };
        keys.iter()
            .filter_map(|&key| {
                let (e, created) = kept.rows.get(key)?;
                Some((key.to_string(), e.clone(), *created))
            })
            .collect()
    })
}

/// Keeps `rows` (read at `version`), unless together they pass the bound
/// (a call widened far beyond the trending default); what was kept for
/// another version or extension goes, and so does everything when the bound
/// would be passed (a trending list that drifted: this call's list stays).
pub(crate) fn keep(item_source: i32, version: i64, rows: &[&Row]) {
    let bytes: usize = rows.iter().map(|r| bytes_of(&r.0, &r.1)).sum();
    if rows.is_empty() || bytes > MAX_KEPT_BYTES {
        return;
    }
    let ext = extension_oid();
    KEPT.with(|k| {
        let mut all = k.borrow_mut();
        let kept = all.entry(item_source).or_insert_with(|| Kept {
            ext,
            version,
            rows: HashMap::new(),
            bytes: 0,
        });
        if kept.ext != ext || kept.version != version || kept.bytes + bytes > MAX_KEPT_BYTES {
            *kept = Kept {
                ext,
                version,
                rows: HashMap::new(),
                bytes: 0,
            };
        }
        for (key, e, created) in rows.iter().copied() {
            if !kept.rows.contains_key(key) {
                kept.bytes += bytes_of(key, e);
            }
            kept.rows.insert(key.clone(), (e.clone(), *created));
        }
    })
}
