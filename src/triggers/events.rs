//! The events table's triggers: their functions' PL/pgSQL, and the entry
//! points they call. INSERT: a small statement of item events (the common
//! single-row INSERT) appends them to `interest.event_queue` in plain SQL,
//! with the inserting role's rights (the queue's row-level policy admits
//! rows only for tables that role may insert into): no call into the
//! library, no locks. Large statements, free-text events and
//! `interest.fold_batch = 0` go through `_apply_events`. Either way the
//! statement may then be due to fold the queue; the fold runs in a block of
//! its own, so that if it fails the statement's events stay queued. DELETE
//! and UPDATE: `_events_rewritten`; TRUNCATE: `_events_truncated`.

use super::{fallback_block, guarded, guarded_with_fallback, trigger_function};
use crate::errors::raise;
use crate::ingest;
use crate::privileges::with_extension_rights;
use crate::sources::writable_event_source;
use interest_core::events::{
    sql_bad_value, sql_item_event_rule, EventRow, DEFAULT_WEIGHT, DIRECT_APPLY_EVENTS,
};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

/// The CREATE FUNCTION statements of an events table's trigger functions
/// (`interest._events_<source>_ins/_del/_upd`); `list` is its select list.
#[pg_extern(immutable, strict, parallel_safe)]
fn _event_trigger_functions(source_id: i32, list: &str) -> Vec<String> {
    let rows = |table: &str| format!("(SELECT {list} FROM {table}) s(u, i, t, w, x)");
    let new_rows = rows("new_rows");
    let old_rows = rows("old_rows");
    let rule = sql_item_event_rule("u", "i", "t", "w");
    let bad_value = sql_bad_value("u", "i", "t", "w");
    let queue_insert = format!(
        "INSERT INTO interest.event_queue (source_id, user_key, item_key, t, weight)
            SELECT {source_id}, u, i, t, coalesce(w, {DEFAULT_WEIGHT}) FROM {new_rows} WHERE {rule};"
    );
    let requeue = fallback_block(&queue_insert);
    let insert = format!(
        r#"
DECLARE
    err_detail text;
    fold boolean := false;
    n bigint;
    has_text boolean;
    has_bad boolean;
    queued bigint;
BEGIN
    BEGIN
        -- Free texts need embedding and bad values a log entry: not the fast path.
        SELECT count(*), coalesce(bool_or(i IS NULL AND x IS NOT NULL), false), coalesce(bool_or({bad_value}), false)
        INTO n, has_text, has_bad FROM {new_rows};
        IF n >= {DIRECT_APPLY_EVENTS} OR has_text OR has_bad
           OR coalesce(current_setting('interest.fold_batch', true), '') = '0' THEN
            SELECT interest._apply_events({source_id}, array_agg(u), array_agg(i), array_agg(t), array_agg(w), array_agg(x))
            INTO fold FROM {new_rows};
        ELSE
            {queue_insert}
            GET DIAGNOSTICS queued = ROW_COUNT;
            IF queued > 0 THEN
                fold := interest._fold_due({source_id}, pg_catalog.currval('interest.event_queue_seq_seq'), queued);
            END IF;
        END IF;
    -- Bookkeeping never fails the application's statement: not even a
    -- statement_timeout that fires inside it (the rows stay stored). The
    -- statement's item events then wait in the queue for the next fold.
    EXCEPTION WHEN query_canceled OR OTHERS THEN
        GET STACKED DIAGNOSTICS err_detail = PG_EXCEPTION_DETAIL;
        PERFORM interest._bookkeeping_failed(TG_RELID::regclass, false, SQLSTATE, SQLERRM, err_detail);
        {requeue}
    END;
    IF fold THEN
        BEGIN
            PERFORM interest._fold_queue({source_id}, false);
        -- The fold is optional work: even a statement_timeout that fires
        -- during it cancels only the fold, never the application's rows.
        EXCEPTION WHEN query_canceled OR OTHERS THEN
            GET STACKED DIAGNOSTICS err_detail = PG_EXCEPTION_DETAIL;
            PERFORM interest._bookkeeping_failed(TG_RELID::regclass, true, SQLSTATE, SQLERRM, err_detail);
        END;
    END IF;
    RETURN NULL;
END"#
    );
    let aggregated = |rows: &str| {
        format!(
            "(SELECT array_agg(u) u, array_agg(i) i, array_agg(t) t, array_agg(w) w FROM {rows})"
        )
    };
    // After a failure the same arrays go to the rewrite queue (deferred).
    let delete = |deferred: bool| {
        format!(
            "PERFORM interest._events_rewritten({source_id}, {deferred}, o.u, o.i, o.t, o.w, NULL, NULL, NULL, NULL) FROM {} o;",
            aggregated(&old_rows)
        )
    };
    let update = |deferred: bool| {
        format!(
            "PERFORM interest._events_rewritten({source_id}, {deferred}, o.u, o.i, o.t, o.w, n.u, n.i, n.t, n.w) FROM {} o, {} n;",
            aggregated(&old_rows),
            aggregated(&new_rows)
        )
    };
    let truncate = format!("PERFORM interest._events_truncated({source_id});");
    let name = |op: &str| format!("interest._events_{source_id}_{op}");
    vec![
        trigger_function(&name("ins"), "pg_catalog", &insert),
        trigger_function(
            &name("del"),
            "pg_catalog",
            &guarded_with_fallback(&delete(false), &delete(true)),
        ),
        trigger_function(
            &name("upd"),
            "pg_catalog",
            &guarded_with_fallback(&update(false), &update(true)),
        ),
        trigger_function(&name("trunc"), "pg_catalog", &guarded(&truncate)),
    ]
}

/// An event's weight from a text or numeric column: NaN (a bad value,
/// logged and skipped by the validity rule) for a word or a number beyond
/// double precision, where a cast would fail the statement's bookkeeping.
#[pg_extern(immutable, strict, parallel_safe)]
fn _event_weight(value: &str) -> f64 {
    match value.trim().parse::<f64>() {
        Ok(w) if w.is_finite() => w,
        _ => f64::NAN,
    }
}

/// The largest magnitude of an event's weight (`events::MAX_ABS_WEIGHT`),
/// for the SQL that checks attach_events' weights.
#[pg_extern(immutable, parallel_safe)]
fn _max_event_weight() -> f64 {
    interest_core::events::MAX_ABS_WEIGHT
}

/// Event rows from the trigger's arrays (one element per row).
fn event_rows(
    users: Vec<Option<String>>,
    items: Vec<Option<String>>,
    times: Vec<Option<f64>>,
    weights: Vec<Option<f64>>,
    texts: Option<Vec<Option<String>>>,
) -> Vec<EventRow> {
    let n = users.len();
    let texts = texts.unwrap_or_else(|| vec![None; n]);
    if items.len() != n || times.len() != n || weights.len() != n || texts.len() != n {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            "event arrays differ in length",
            format!(
                "users {n}, items {}, times {}, weights {}, texts {}",
                items.len(),
                times.len(),
                weights.len(),
                texts.len()
            ),
            "Pass one element per event in every array.",
        );
    }
    users
        .into_iter()
        .zip(items)
        .zip(times)
        .zip(weights)
        .zip(texts)
        .map(|((((user, item), t), weight), text)| EventRow {
            user,
            item,
            t,
            weight,
            text,
            vector: None,
        })
        .collect()
}

/// A statement's new events. Small statements queue them (returns true when
/// the queue is due to be folded: the trigger then calls `_fold_queue` in a
/// block of its own); large ones, or with `interest.fold_batch = 0`, are
/// applied at once.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, interest, pg_temp)]
fn _apply_events(
    source_id: i32,
    users: Vec<Option<String>>,
    items: Vec<Option<String>>,
    times: Vec<Option<f64>>,
    weights: Vec<Option<f64>>,
    texts: Vec<Option<String>>,
) -> bool {
    with_extension_rights(|| {
        let src = writable_event_source(source_id, pg_sys::ACL_INSERT, "apply events");
        let rows = event_rows(users, items, times, weights, Some(texts));
        let fold_batch = crate::gucs::FOLD_BATCH.get();
        if fold_batch == 0 || rows.len() >= DIRECT_APPLY_EVENTS {
            ingest::apply_new_events(&src, rows);
            false
        } else {
            ingest::queue_new_events(&src, rows, fold_batch as i64)
        }
    })
}

/// Whether a statement that has just queued `queued` events, the last one
/// numbered `last_seq`, should fold the queue (`ingest::fold_due`). Called
/// by the triggers' SQL fast path.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, interest, pg_temp)]
fn _fold_due(source_id: i32, last_seq: i64, queued: i64) -> bool {
    ingest::fold_due(
        source_id,
        last_seq,
        queued,
        crate::gucs::FOLD_BATCH.get() as i64,
    )
}

/// Folds the source's queued events (`ingest::fold_queue`); from the
/// trigger without waiting, from `interest.flush` waiting for the lock.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, interest, pg_temp)]
fn _fold_queue(source_id: i32, wait: bool) -> i64 {
    with_extension_rights(|| {
        let src = writable_event_source(source_id, pg_sys::ACL_INSERT, "fold queued events");
        ingest::fold_queue(&src, wait)
    })
}

/// Event rows from a trigger's arrays that may be NULL (no rows).
fn rows_of(
    users: Option<Vec<Option<String>>>,
    items: Option<Vec<Option<String>>>,
    times: Option<Vec<Option<f64>>>,
    weights: Option<Vec<Option<f64>>>,
) -> Vec<EventRow> {
    event_rows(
        users.unwrap_or_default(),
        items.unwrap_or_default(),
        times.unwrap_or_default(),
        weights.unwrap_or_default(),
        None,
    )
}

/// Deleted or updated events (the old and the new rows' user, item, time,
/// weight): `ingest::rewrite_events`; with `deferred` (the guard's fallback
/// after a failure) left to the next fold, as when the source is locked.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, interest, pg_temp)]
#[allow(clippy::too_many_arguments)]
fn _events_rewritten(
    source_id: i32,
    deferred: bool,
    old_users: Option<Vec<Option<String>>>,
    old_items: Option<Vec<Option<String>>>,
    old_times: Option<Vec<Option<f64>>>,
    old_weights: Option<Vec<Option<f64>>>,
    new_users: Option<Vec<Option<String>>>,
    new_items: Option<Vec<Option<String>>>,
    new_times: Option<Vec<Option<f64>>>,
    new_weights: Option<Vec<Option<f64>>>,
) -> i64 {
    with_extension_rights(|| {
        let src = writable_event_source(
            source_id,
            pg_sys::ACL_DELETE | pg_sys::ACL_UPDATE,
            "rewrite events",
        );
        let removed = rows_of(old_users, old_items, old_times, old_weights);
        let added = rows_of(new_users, new_items, new_times, new_weights);
        if deferred {
            crate::store::rewrites::defer(src.id, &removed, &added);
            return 0;
        }
        ingest::rewrite_events(&src, removed, added)
    })
}

/// The events table was truncated: its bookkeeping is emptied
/// (`ingest::truncate_events`).
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, interest, pg_temp)]
fn _events_truncated(source_id: i32) {
    with_extension_rights(|| {
        let src = writable_event_source(source_id, pg_sys::ACL_TRUNCATE, "empty the bookkeeping");
        ingest::truncate_events(&src);
    })
}
