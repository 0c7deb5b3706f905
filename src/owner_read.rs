//! Reads of an application's table by the extension's privileged code. The
//! stored select list holds casts and operators that the table's owner can
//! redefine (a cast from an enum of their own, say), so the table is read as
//! its owner inside a security-restricted operation, as PostgreSQL runs
//! REFRESH MATERIALIZED VIEW and ANALYZE: the owner's SQL never runs with the
//! extension owner's rights, and cannot change the session (SET ROLE,
//! temporary objects) of whoever triggered the read.

use crate::privileges::{caller, rls_limits_caller};
use crate::sources::{decode_event, load_event_source, load_item_source, EventSource};
use interest_core::events::EventRow;
use pgrx::prelude::*;
use pgrx::spi::quote_identifier;
use std::collections::HashSet;

/// Runs `read` as the owner of `relid`, in a security-restricted operation.
pub(crate) fn as_table_owner<R>(relid: pg_sys::Oid, read: impl FnOnce() -> R) -> R {
    as_role(table_owner(relid), read)
}

/// Runs `read` as `role`, in a security-restricted operation. On an ERROR
/// the (sub)transaction's abort restores the role, the security context and
/// the settings; on return they are restored here.
pub(crate) fn as_role<R>(role: pg_sys::Oid, read: impl FnOnce() -> R) -> R {
    let (mut saved_user, mut saved_context) = (pg_sys::InvalidOid, 0);
    // SAFETY: backend-local state, switched and restored as PostgreSQL's own
    // REFRESH MATERIALIZED VIEW does.
    let nest_level = unsafe {
        pg_sys::GetUserIdAndSecContext(&mut saved_user, &mut saved_context);
        pg_sys::SetUserIdAndSecContext(
            role,
            saved_context
                | pg_sys::SECURITY_RESTRICTED_OPERATION as i32
                | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32,
        );
        pg_sys::NewGUCNestLevel()
    };
    let out = read();
    // SAFETY: as above.
    unsafe {
        pg_sys::AtEOXact_GUC(false, nest_level);
        pg_sys::SetUserIdAndSecContext(saved_user, saved_context);
    }
    out
}

fn table_owner(relid: pg_sys::Oid) -> pg_sys::Oid {
    crate::spi::one_read_cached::<pg_sys::Oid>(
        "SELECT relowner FROM pg_catalog.pg_class WHERE oid = $1",
        &[relid.into()],
    )
    .unwrap_or_else(|| {
        crate::errors::raise(
            pgrx::PgSqlErrorCode::ERRCODE_UNDEFINED_TABLE,
            format!("table with OID {} does not exist", relid.to_u32()),
            "An attached table was dropped while it was being read.",
            "Run the statement again.",
        )
    })
}

/// The events of `users` (all users when None) in the source's table, read
/// as its owner with the active snapshot (`SELECT`s are read-only SPI), each
/// with its position (`row_id`, the ctid as a number) for replay order.
pub(crate) fn owner_rows(src: &EventSource, users: Option<&[String]>) -> Vec<(EventRow, i64)> {
    let row_id = "((ctid::text::point)[0]::int8 * 65536 + (ctid::text::point)[1]::int8) AS row_id";
    let sql = match users {
        Some(_) => format!(
            "SELECT {list}, NULL::interest.embedding AS embedding, {row_id} FROM {rel} WHERE {users}",
            list = src.select_list,
            rel = src.relname,
            users = src.user_match_any
        ),
        None => format!(
            "SELECT {list}, NULL::interest.embedding AS embedding, {row_id} FROM {rel}",
            list = src.select_list,
            rel = src.relname
        ),
    };
    let args: Vec<pgrx::datum::DatumWithOid> = match users {
        Some(users) => vec![users.to_vec().into()],
        None => Vec::new(),
    };
    as_table_owner(src.relid, || {
        crate::spi::select_on_active_snapshot(&sql, &args, |r| {
            Ok((
                decode_event(r)?,
                r.get_by_name::<i64, _>("row_id")?.unwrap_or(0),
            ))
        })
    })
}

/// `owner_rows` as a set-returning function, so that one statement can
/// claim queued events and read the table on one snapshot. EXECUTE is
/// revoked from PUBLIC: only the extension's own functions call it.
#[allow(clippy::type_complexity)]
#[pg_extern(stable, parallel_unsafe)]
#[search_path(pg_catalog, interest, pg_temp)]
fn _owner_rows(
    source_id: i32,
    users: Option<Vec<String>>,
) -> TableIterator<
    'static,
    (
        name!(user_key, Option<String>),
        name!(item_key, Option<String>),
        name!(t, Option<f64>),
        name!(weight, Option<f64>),
        name!(event_text, Option<String>),
        name!(row_id, i64),
    ),
> {
    let src = load_event_source(source_id);
    let rows = owner_rows(&src, users.as_deref());
    TableIterator::new(
        rows.into_iter()
            .map(|(e, row_id)| (e.user, e.item, e.t, e.weight, e.text, row_id)),
    )
}

/// Under row-level security on the events table, a reader sees a user only
/// when at least one of the user's rows is visible to them (checked with the
/// reader's own rights); otherwise the user reads as unknown.
pub(crate) fn reader_sees_user(src: &EventSource, user_key: &str) -> bool {
    if !rls_limits_caller(src.relid) {
        return true;
    }
    let sql = format!(
        "SELECT EXISTS (SELECT 1 FROM {rel} WHERE {user_match})",
        rel = src.relname,
        user_match = src.user_match
    );
    as_role(caller(), || {
        user_key_fits(src, user_key)
            && crate::spi::one_read_cached::<bool>(&sql, &[user_key.into()]).unwrap_or(false)
    })
}

/// Whether `user_key` can be a value of the events table's user column (a
/// key it cannot hold has no rows: `recommend('new-1')` on an integer
/// column is a user without events, not an error). Run as the role that
/// reads the rows.
pub(crate) fn user_key_fits(src: &EventSource, user_key: &str) -> bool {
    crate::spi::one_read_cached::<bool>(
        "SELECT interest._user_key_fits($1, $2)",
        &[src.id.into(), user_key.into()],
    )
    .unwrap_or(true)
}

/// Under row-level security on the items table, which of `keys` the caller
/// may see (read with the caller's own rights, so their policies apply);
/// None when nothing hides items from them. A few keys are looked up by the
/// id column's own type (so its index serves them); many, by reading the
/// table.
pub(crate) fn items_visible_to_caller(
    src: &EventSource,
    keys: &[String],
) -> Option<HashSet<String>> {
    let items = load_item_source(src.item_source_id?);
    if !rls_limits_caller(items.relid) {
        return None;
    }
    let id = quote_identifier(&items.id_column);
    let rel = &items.relname;
    if keys.len() > interest_core::candidates::MAX_FILTER_CANDIDATES {
        let sql = format!("SELECT ({id})::text FROM {rel}");
        return Some(as_role(caller(), || {
            crate::spi::column::<String>(&sql, &[])
                .into_iter()
                .collect()
        }));
    }
    // A built-in type's own `=` (its index serves the lookup); any other
    // type (whose `=` this search_path may not see) compares as text.
    let builtin_type = crate::spi::one_read_cached::<String>(
        "SELECT pg_catalog.format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_attribute a \
         JOIN pg_catalog.pg_type t ON t.oid = a.atttypid \
         WHERE a.attrelid = $1 AND a.attname = $2 AND t.typnamespace = 'pg_catalog'::regnamespace",
        &[items.relid.into(), items.id_column.clone().into()],
    );
    let sql = match builtin_type {
        Some(ty) => format!("SELECT ({id})::text FROM {rel} WHERE {id} = ANY ($1::text[]::{ty}[])"),
        None => format!("SELECT ({id})::text FROM {rel} WHERE ({id})::text = ANY ($1::text[])"),
    };
    Some(as_role(caller(), || {
        crate::spi::column::<String>(&sql, &[keys.to_vec().into()])
            .into_iter()
            .collect()
    }))
}

/// Evaluates an attached items table's text expression over none of its
/// rows, as the table's owner: after an ALTER TABLE, whether it still
/// compiles. Errors as the expression does.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, interest, pg_temp)]
fn _check_text_expression(rel: pg_sys::Oid) {
    crate::privileges::with_extension_rights(|| {
        let Some(expr) = crate::spi::one_read_cached::<String>(
            "SELECT text_expr FROM interest.item_sources WHERE relid = $1::regclass",
            &[rel.into()],
        ) else {
            return;
        };
        let relname =
            crate::spi::one_read_cached::<String>("SELECT $1::regclass::text", &[rel.into()])
                .unwrap_or_default();
        crate::privileges::require_owner(rel, &relname, "ALTER TABLE");
        let sql = format!("SELECT ({expr})::text FROM {relname} LIMIT 0");
        as_table_owner(rel, || crate::spi::column::<String>(&sql, &[]));
    })
}

/// The search_path an items table's text expression runs under, in its
/// triggers and in `interest.backfill_items` alike (then `pg_temp`, last):
/// the one it was checked under at attach. Not `public`: a function there
/// with a closer signature than a built-in (`||(text, integer)`) would run
/// inside every write to the table, with the writer's rights.
pub(crate) const ITEM_EXPRESSION_PATH: &str = "pg_catalog";

/// One batch of `interest.backfill_items`: its keyset query over the items
/// table (`$1` the last key read, NULL at the start), run as the table's
/// owner in a security-restricted operation, so the owner's text expression
/// never runs with the rights of a superuser who calls the procedure. For
/// the table's owner (or a superuser) only: they may read it anyway.
#[allow(clippy::type_complexity)]
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, interest, pg_temp)]
fn _backfill_batch(
    items: pg_sys::Oid,
    query: &str,
    after: Option<String>,
) -> TableIterator<
    'static,
    (
        name!(keys, Option<Vec<Option<String>>>),
        name!(vals, Option<Vec<Option<String>>>),
    ),
> {
    if !crate::privileges::_caller_owns(items) {
        crate::errors::raise(
            pgrx::PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            "must be owner of the items table",
            "interest.backfill_items reads the table as its owner.",
            "Run CALL interest.backfill_items as the table's owner.",
        );
    }
    let batch = as_table_owner(items, || {
        // (at as_role's GUC nesting level, which restores it)
        let path =
            std::ffi::CString::new(format!("{ITEM_EXPRESSION_PATH}, pg_temp")).unwrap_or_default();
        crate::spi::set_at_this_level(c"search_path", &path);
        Spi::connect(|c| {
            let t = c.select(query, Some(1), &[after.into()])?;
            if t.is_empty() {
                return Ok((None, None));
            }
            let r = t.first();
            Ok::<_, pgrx::spi::Error>((r.get(1)?, r.get(2)?))
        })
        .unwrap_or_else(|e| crate::spi::spi_error(e))
    });
    TableIterator::once(batch)
}
