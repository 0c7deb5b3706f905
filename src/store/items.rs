//! `item_embeddings`: each attached items table's embeddings, and the
//! version number that tells recommend()'s per-backend catalog to reload.

use crate::embedding_type::Embedding;
use crate::spi::{column, exec, exec_cached, read_cached};
use pgrx::pg_sys;
use std::collections::{HashMap, HashSet};

/// The embeddings of `keys` that exist.
pub(crate) fn vectors(item_source: i32, keys: &[String]) -> HashMap<String, Vec<f32>> {
    if keys.is_empty() {
        return HashMap::new();
    }
    read_cached(
        "SELECT item_key, embedding FROM interest.item_embeddings WHERE source_id = $1 AND item_key IN (SELECT unnest($2::text[]))",
        &[item_source.into(), keys.to_vec().into()],
        |t| {
            t.filter_map(|row| {
                let key = row.get::<String>(1).transpose()?;
                let vector = row.get::<Embedding>(2).transpose()?;
                Some(key.and_then(|k| vector.map(|v| (k, v.into_vec()))))
            })
            .collect::<Result<HashMap<_, _>, _>>()
        },
    )
}

/// Of `keys`, those that have an embedding.
pub(crate) fn present(item_source: i32, keys: &[Option<String>]) -> HashSet<String> {
    column::<String>(
        "SELECT item_key FROM interest.item_embeddings WHERE source_id = $1 AND item_key IN (SELECT unnest($2::text[]))",
        &[item_source.into(), keys.to_vec().into()],
    )
    .into_iter()
    .collect()
}

/// The dimension of the source's stored embeddings (None before the first).
pub(crate) fn dimensions(item_source: i32) -> Option<usize> {
    crate::spi::one_read_cached::<i32>(
        "SELECT interest.dims(embedding) FROM interest.item_embeddings WHERE source_id = $1 LIMIT 1",
        &[item_source.into()],
    )
    .map(|d| d as usize)
}

/// Upserts embeddings; returns how many.
pub(crate) fn upsert(item_source: i32, keys: Vec<String>, vectors: Vec<Embedding>) -> i64 {
    let n = keys.len() as i64;
    if keys.is_empty() {
        return 0;
    }
    bump_version(item_source);
    exec(
        "INSERT INTO interest.item_embeddings (source_id, item_key, embedding, updated_at) \
         SELECT $1, k, e, now() FROM unnest($2::text[], $3::interest.embedding[]) AS x(k, e) \
         ON CONFLICT (source_id, item_key) DO UPDATE SET embedding = excluded.embedding, updated_at = excluded.updated_at",
        &[item_source.into(), keys.into(), vectors.into()],
    );
    n
}

/// Removes embeddings; returns how many existed. Users keep what these
/// items contributed: the events happened.
pub(crate) fn remove(item_source: i32, keys: Vec<String>) -> i64 {
    if keys.is_empty() {
        return 0;
    }
    bump_version(item_source);
    crate::spi::one_cached::<i64>(
        "WITH d AS (DELETE FROM interest.item_embeddings WHERE source_id = $1 AND item_key IN (SELECT unnest($2::text[])) RETURNING 1) \
         SELECT count(*) FROM d",
        &[item_source.into(), keys.into()],
    )
    .unwrap_or(0)
}

/// Removes every embedding of the items table; returns how many existed.
pub(crate) fn remove_all(item_source: i32) -> i64 {
    bump_version(item_source);
    crate::spi::one_cached::<i64>(
        "WITH d AS (DELETE FROM interest.item_embeddings WHERE source_id = $1 RETURNING 1) SELECT count(*) FROM d",
        &[item_source.into()],
    )
    .unwrap_or(0)
}

/// recommend() caches each catalog per backend; this tells it to reload.
/// Appends a change (never waits for another writer) and, under READ
/// COMMITTED, folds the committed changes no other transaction holds into
/// one row, sum kept. Under REPEATABLE READ or SERIALIZABLE it only appends:
/// locking a row another transaction changed since the snapshot would fail
/// the application's statement with a serialization error.
fn bump_version(item_source: i32) {
    // SAFETY: reads backend-local state.
    let read_committed = unsafe { pg_sys::XactIsoLevel } <= pg_sys::XACT_READ_COMMITTED as i32;
    if read_committed {
        exec_cached(
            "WITH folded AS (DELETE FROM interest.catalog_changes WHERE ctid = ANY(ARRAY( \
                 SELECT ctid FROM interest.catalog_changes WHERE source_id = $1 FOR UPDATE SKIP LOCKED)) \
                 RETURNING changes) \
             INSERT INTO interest.catalog_changes (source_id, changes) \
             SELECT $1, coalesce(sum(changes), 0) + 1 FROM folded",
            &[item_source.into()],
        );
    } else {
        exec_cached(
            "INSERT INTO interest.catalog_changes (source_id, changes) VALUES ($1, 1)",
            &[item_source.into()],
        );
    }
    COUNTED_BY.set(top_transaction());
}

thread_local! {
    /// The top-level transaction (full id) that last counted a change here
    /// (`bump_version`); 0: none.
    static COUNTED_BY: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// The items table's count of changes (`version`) when what a backend
/// keeps under it may serve this transaction, and what it reads may be kept
/// under it: None in a transaction that changed an item's embedding itself
/// (in any subtransaction, even one rolled back since). Such a transaction
/// that rolled back would otherwise leave its embeddings under a count that
/// a later commit reaches again.
pub(crate) fn committed_version(item_source: i32) -> Option<i64> {
    let top = top_transaction();
    (top == 0 || COUNTED_BY.get() != top).then(|| version(item_source))
}

fn top_transaction() -> u64 {
    // SAFETY: reads the current transaction's state; no allocation.
    unsafe { pg_sys::GetTopFullTransactionIdIfAny().value }
}

/// How many changes the items table's embeddings have had (`bump_version`).
pub(crate) fn version(item_source: i32) -> i64 {
    crate::spi::one_read_cached::<i64>(
        "SELECT coalesce(sum(changes), 0)::bigint FROM interest.catalog_changes WHERE source_id = $1",
        &[item_source.into()],
    )
    .unwrap_or(0)
}

/// The state of an items source's vector index (interest.index_items).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum VectorIndex {
    /// Built and valid: recommend() may take its candidates from it.
    Valid(pg_sys::Oid),
    /// Built once (item_sources.vector_index) but absent now, as after a
    /// restore: a dump does not carry indexes on the extension's tables.
    Missing,
    /// Never built.
    None,
}

pub(crate) fn vector_index(item_source: i32) -> VectorIndex {
    let (valid, missing) = crate::spi::read_cached(
        "SELECT (SELECT indexrelid FROM pg_catalog.pg_index \
              WHERE indexrelid = pg_catalog.to_regclass('interest.' || interest._items_index_name($1)) AND indisvalid), \
            pg_catalog.to_regclass('interest.' || interest._items_index_name($1)) IS NULL \
             AND coalesce((SELECT vector_index IS NOT NULL FROM interest.item_sources WHERE id = $1), false)",
        &[item_source.into()],
        |mut t| {
            Ok(t.next().map_or((None, false), |r| {
                (
                    r.get::<pg_sys::Oid>(1).ok().flatten(),
                    r.get::<bool>(2).ok().flatten().unwrap_or(false),
                )
            }))
        },
    );
    match (valid, missing) {
        (Some(index), _) => VectorIndex::Valid(index),
        (None, true) => VectorIndex::Missing,
        (None, false) => VectorIndex::None,
    }
}
