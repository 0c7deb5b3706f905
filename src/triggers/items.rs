//! The items table's triggers: their functions' PL/pgSQL, and the entry
//! points they (and `interest.backfill_items`) call. Only rows whose text
//! (or embedding) changed are embedded again; events that were waiting for
//! an item's embedding are applied when it arrives.

use super::{guarded, trigger_function};
use crate::embedding_type::Embedding;
use crate::ingest;
use crate::models::embed_texts;
use crate::owner_read::ITEM_EXPRESSION_PATH;
use crate::privileges::with_extension_rights;
use crate::sources::writable_item_source;
use crate::sources::ItemSource;
use crate::store::failures::{BadRows, SkippedRows};
use crate::store::items;
use interest_core::keys::key_fits;
use pgrx::prelude::*;

/// The CREATE FUNCTION statements of an items table's trigger functions
/// (`interest._items_<source>_ins/_upd/_del`). `id_expr` and `val_expr` give
/// the key and the text (or the embedding as text) of a row; `call` is the
/// entry point that stores them.
#[pg_extern(immutable, strict, parallel_safe)]
fn _item_trigger_functions(
    source_id: i32,
    id_expr: &str,
    val_expr: &str,
    call: &str,
) -> Vec<String> {
    let insert = format!(
        "PERFORM {call}({source_id}, pg_catalog.array_agg(k), pg_catalog.array_agg(v)) FROM (SELECT {id_expr}, {val_expr} FROM new_rows) s(k, v);"
    );
    let update = format!(
        "PERFORM {call}({source_id}, pg_catalog.array_agg(n.k), pg_catalog.array_agg(n.v)) FROM (SELECT {id_expr}, {val_expr} FROM new_rows) n(k, v) \
         WHERE NOT EXISTS (SELECT 1 FROM (SELECT {id_expr}, ({val_expr})::text FROM old_rows) o(k, v) \
                           WHERE o.k = n.k AND o.v IS NOT DISTINCT FROM n.v::text);\n        \
         PERFORM interest._items_deleted({source_id}, pg_catalog.array_agg(o.k)) FROM (SELECT {id_expr} FROM old_rows) o(k) \
         WHERE NOT EXISTS (SELECT 1 FROM (SELECT {id_expr} FROM new_rows) n(k) WHERE n.k = o.k);"
    );
    let delete =
        format!("PERFORM interest._items_deleted({source_id}, pg_catalog.array_agg(k)) FROM (SELECT {id_expr} FROM old_rows) s(k);");
    let truncate = format!("PERFORM interest._items_truncated({source_id});");
    // The text expression is the owner's SQL over the row, run under the
    // path it was checked with at attach (the extension's names are qualified).
    let name = |op: &str| format!("interest._items_{source_id}_{op}");
    let path = ITEM_EXPRESSION_PATH;
    vec![
        trigger_function(&name("ins"), path, &guarded(&insert)),
        trigger_function(&name("upd"), path, &guarded(&update)),
        trigger_function(&name("del"), path, &guarded(&delete)),
        trigger_function(&name("trunc"), "pg_catalog", &guarded(&truncate)),
    ]
}

/// Embeds changed item texts (NULL text removes the embedding) and applies
/// the events that were waiting for these items.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, interest, pg_temp)]
fn _items_changed(source_id: i32, ids: Vec<Option<String>>, texts: Vec<Option<String>>) -> i64 {
    with_extension_rights(|| {
        let src = writable_item_source(
            source_id,
            pg_sys::ACL_INSERT | pg_sys::ACL_UPDATE,
            "embed items",
        );
        let mut keys = Vec::new();
        let mut present = Vec::new();
        let mut removed = Vec::new();
        let mut long_keys = SkippedRows::default();
        for (k, t) in ids.into_iter().zip(&texts) {
            match (k, t.as_deref()) {
                (Some(k), Some(_)) if !key_fits(&k) => long_keys.add(k),
                (Some(k), Some(t)) => {
                    keys.push(k);
                    present.push(t);
                }
                (Some(k), None) => removed.push(k),
                _ => {}
            }
        }
        long_keys.report(src.relid, &src.relname, BadRows::LongItemKeys);
        let vectors = embed_texts(&src.model, &present);
        store(
            &src,
            source_id,
            keys,
            vectors.into_iter().map(Embedding::new).collect(),
            removed,
        )
    })
}

/// Stores precomputed embeddings (bring your own); NULL removes one.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, interest, pg_temp)]
fn _items_set(source_id: i32, ids: Vec<Option<String>>, embeddings: Vec<Option<String>>) -> i64 {
    with_extension_rights(|| {
        let src = writable_item_source(
            source_id,
            pg_sys::ACL_INSERT | pg_sys::ACL_UPDATE,
            "store item embeddings",
        );
        let mut keys = Vec::new();
        let mut vecs = Vec::new();
        let mut removed = Vec::new();
        let mut long_keys = SkippedRows::default();
        for (k, e) in ids.into_iter().zip(embeddings) {
            match (k, e) {
                (Some(k), Some(_)) if !key_fits(&k) => long_keys.add(k),
                (Some(k), Some(e)) => {
                    // The trigger passes the column cast to interest.embedding, as text.
                    let values = interest_core::text_format::parse(&e)
                        .unwrap_or_else(|err| crate::errors::raise_vector_error(err));
                    keys.push(k);
                    vecs.push(Embedding::new(values));
                }
                (Some(k), None) => removed.push(k),
                _ => {}
            }
        }
        long_keys.report(src.relid, &src.relname, BadRows::LongItemKeys);
        store(&src, source_id, keys, vecs, removed)
    })
}

/// Upserts and removes embeddings, then applies the events waiting for the
/// upserted items; returns how many were upserted. The items of one table
/// share one dimension (the stored items', else the statement's first):
/// an embedding of another is logged and left out, as one such item would
/// fail every ranking and fold that meets it.
fn store(
    src: &ItemSource,
    source_id: i32,
    keys: Vec<String>,
    vectors: Vec<Embedding>,
    removed: Vec<String>,
) -> i64 {
    // (read only when there is something to store: deletes need no dimension)
    let dims = vectors
        .first()
        .map(|first| items::dimensions(source_id).unwrap_or(first.dims()));
    let mut other_dims = SkippedRows::default();
    let (keys, vectors): (Vec<String>, Vec<Embedding>) = keys
        .into_iter()
        .zip(vectors)
        .filter_map(|(k, v)| {
            if Some(v.dims()) == dims {
                Some((k, v))
            } else {
                other_dims.add(k);
                None
            }
        })
        .unzip();
    other_dims.report(
        src.relid,
        &src.relname,
        BadRows::OtherDimensions(dims.unwrap_or(0)),
    );
    let n = items::upsert(source_id, keys.clone(), vectors);
    items::remove(source_id, removed);
    if !keys.is_empty() {
        ingest::apply_pending(source_id, &keys);
    }
    n
}

#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, interest, pg_temp)]
fn _items_deleted(source_id: i32, ids: Vec<Option<String>>) -> i64 {
    with_extension_rights(|| {
        writable_item_source(
            source_id,
            pg_sys::ACL_DELETE | pg_sys::ACL_UPDATE,
            "remove item embeddings",
        );
        items::remove(source_id, ids.into_iter().flatten().collect())
    })
}

/// The items table was truncated: every embedding goes. Users keep what
/// the items contributed: the events happened.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, interest, pg_temp)]
fn _items_truncated(source_id: i32) -> i64 {
    with_extension_rights(|| {
        writable_item_source(source_id, pg_sys::ACL_TRUNCATE, "remove item embeddings");
        items::remove_all(source_id)
    })
}

/// Of the given keys (and values), those whose item has no embedding yet.
#[allow(clippy::type_complexity)]
#[pg_extern(stable, parallel_unsafe)]
#[search_path(pg_catalog, interest, pg_temp)]
fn _missing_items(
    source_id: i32,
    keys: Vec<Option<String>>,
    vals: Vec<Option<String>>,
) -> TableIterator<
    'static,
    (
        name!(keys, Vec<Option<String>>),
        name!(vals, Vec<Option<String>>),
    ),
> {
    with_extension_rights(|| {
        writable_item_source(
            source_id,
            pg_sys::ACL_INSERT | pg_sys::ACL_UPDATE,
            "embed items",
        );
        let present = items::present(source_id, &keys);
        let (k, v): (Vec<_>, Vec<_>) = keys
            .into_iter()
            .zip(vals)
            .filter(|(k, _)| k.as_ref().is_some_and(|k| !present.contains(k)))
            .unzip();
        TableIterator::new(vec![(k, v)])
    })
}
