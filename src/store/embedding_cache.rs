//! The embeddings of the items every call of a source takes as candidates
//! (the trending items), kept per backend so that a call does not look them
//! up by key again. An items table's count of changes (`items::version`)
//! keys what is kept: any committed change to its embeddings empties it,
//! and a transaction that has written anything neither uses nor fills it
//! (`items::version_is_committed`).

use crate::spi::extension_oid;
use pgrx::pg_sys;
use std::cell::RefCell;
use std::collections::HashMap;

/// An item's key, embedding and when it was first embedded (epoch seconds),
/// as `catalog` reads them.
pub(crate) type Row = (String, Vec<f32>, f64);

/// The most embeddings kept per items table (~1.5 kB each at 384
/// dimensions): four widenings of the trending candidates' default fit.
pub(crate) const MAX_KEPT: usize = 2_048;

struct Kept {
    ext: pg_sys::Oid,
    version: i64,
    rows: HashMap<String, (Vec<f32>, f64)>,
}

thread_local! {
    static KEPT: RefCell<HashMap<i32, Kept>> = RefCell::new(HashMap::new());
}

/// The kept embeddings of `keys` for the items table at `version`.
pub(crate) fn get(item_source: i32, version: i64, keys: &[&str]) -> Vec<Row> {
    if !super::items::version_is_committed() {
        return Vec::new();
    }
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

/// Keeps `rows` (read at `version`); what was kept for another version or
/// extension goes, and so does everything when the limit would be passed.
pub(crate) fn keep<'a>(item_source: i32, version: i64, rows: impl Iterator<Item = &'a Row>) {
    if !super::items::version_is_committed() {
        return;
    }
    let ext = extension_oid();
    KEPT.with(|k| {
        let mut all = k.borrow_mut();
        let kept = all.entry(item_source).or_insert_with(|| Kept {
            ext,
            version,
            rows: HashMap::new(),
        });
        if kept.ext != ext || kept.version != version {
            *kept = Kept {
                ext,
                version,
                rows: HashMap::new(),
            };
        }
        for (key, e, created) in rows {
            if kept.rows.len() >= MAX_KEPT && !kept.rows.contains_key(key) {
                // A trending list that drifted: start again from this call's.
                kept.rows.clear();
            }
            kept.rows.insert(key.clone(), (e.clone(), *created));
        }
    })
}
