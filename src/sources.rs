//! Attached tables as the bookkeeping sees them: event and item sources,
//! their per-backend cache, the privilege guards of the SECURITY DEFINER
//! entry points, and the one decoder of event rows.
//!
//! Every query that reads events (from the application's table through the
//! stored select list, from the queue, from pending events) names its
//! columns `user_key, item_key, t, weight, event_text, embedding`, and
//! `decode_event` reads them by name: no positional contract between the
//! SQL that builds the select list and the Rust that reads it.

use crate::embedding_type::Embedding;
use crate::errors::raise;
use crate::spi::{current, extension_cache, spi_error, ExtensionCache};
use interest_core::events::EventRow;
use interest_core::interest_state::InterestParams;
use pgrx::prelude::*;
use pgrx::spi::SpiHeapTupleData;
use pgrx::PgSqlErrorCode;
use std::rc::Rc;

pub(crate) struct EventSource {
    pub id: i32,
    pub relid: pg_sys::Oid,
    pub relname: String,
    pub item_source_id: Option<i32>,
    /// `column = ($1)::type` on the native column, so the application's index is used.
    pub user_match: String,
    /// `column = ANY(($1)::type[])`, for many users at once.
    pub user_match_any: String,
    pub item_expr: String,
    pub time_expr: String,
    /// The event columns (see the module comment) as expressions over the table.
    pub select_list: String,
    pub params: InterestParams,
}

pub(crate) struct ItemSource {
    pub relid: pg_sys::Oid,
    pub relname: String,
    pub model: String,
}

thread_local! {
    // Settings cached for one transaction (by local transaction id): a
    // RENAME of the table or of its columns (`interest._refresh_attached`)
    // is seen by the next transaction of every backend.
    static EVENT_SOURCES: ExtensionCache<i32, (pg_sys::LocalTransactionId, Rc<EventSource>)> =
        extension_cache();
}

pub(crate) fn load_event_source(id: i32) -> Rc<EventSource> {
    // SAFETY: MyProc is set in every backend that runs SQL functions.
    let lxid = unsafe { (*pg_sys::MyProc).lxid };
    let cached = EVENT_SOURCES.with(|c| current(c).get(&id).cloned());
    if let Some((at, src)) = cached {
        if at == lxid {
            return src;
        }
    }
    let src = Rc::new(read_event_source(id));
    EVENT_SOURCES.with(|c| current(c).insert(id, (lxid, src.clone())));
    src
}

fn read_event_source(id: i32) -> EventSource {
    Spi::connect(|c| {
        let t = c.select(
            "SELECT relid::oid AS relid, relid::regclass::text AS relname, item_source_id, user_match, user_match_any, \
                    item_expr, time_expr, select_list, extract(epoch FROM half_life)::float8 AS half_life_secs, \
                    max_interests, join_similarity::float8 AS join_similarity \
             FROM interest.event_sources WHERE id = $1",
            Some(1),
            &[id.into()],
        )?;
        if t.is_empty() {
            return Ok(None);
        }
        let r = t.first();
        let text = |name: &str| -> Result<String, pgrx::spi::Error> {
            Ok(r.get_by_name::<String, _>(name)?.unwrap_or_default())
        };
        Ok::<_, pgrx::spi::Error>(Some(EventSource {
            id,
            relid: r.get_by_name::<pg_sys::Oid, _>("relid")?.unwrap_or(pg_sys::InvalidOid),
            relname: text("relname")?,
            item_source_id: r.get_by_name::<i32, _>("item_source_id")?,
            user_match: text("user_match")?,
            user_match_any: text("user_match_any")?,
            item_expr: text("item_expr")?,
            time_expr: text("time_expr")?,
            select_list: text("select_list")?,
            params: InterestParams {
                half_life_secs: r.get_by_name::<f64, _>("half_life_secs")?.unwrap_or_default(),
                max_interests: r.get_by_name::<i32, _>("max_interests")?.unwrap_or(1) as usize,
                join_similarity: r.get_by_name::<f64, _>("join_similarity")?.unwrap_or_default() as f32,
            },
        }))
    })
    .unwrap_or_else(|e| spi_error(e))
    .unwrap_or_else(|| {
        raise(
            PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            format!("event source {id} does not exist"),
            "The events table was detached.",
            "Attach it again with interest.attach_events.",
        )
    })
}

pub(crate) fn load_item_source(id: i32) -> ItemSource {
    Spi::connect(|c| {
        let t = c.select(
            "SELECT relid::oid, relid::regclass::text, model FROM interest.item_sources WHERE id = $1",
            Some(1),
            &[id.into()],
        )?;
        if t.is_empty() {
            return Ok(None);
        }
        let r = t.first();
        Ok::<_, pgrx::spi::Error>(Some(ItemSource {
            relid: r.get::<pg_sys::Oid>(1)?.unwrap_or(pg_sys::InvalidOid),
            relname: r.get::<String>(2)?.unwrap_or_default(),
            model: r.get::<String>(3)?.unwrap_or_default(),
        }))
    })
    .unwrap_or_else(|e| spi_error(e))
    .unwrap_or_else(|| {
        raise(
            PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            format!("item source {id} does not exist"),
            "The items table was detached.",
            "Attach it again with interest.attach_items.",
        )
    })
}

/// The model that embeds an event source's free texts: its items table's.
pub(crate) fn text_model(src: &EventSource) -> String {
    src.item_source_id
        .map(|id| load_item_source(id).model)
        .unwrap_or_else(|| crate::models::DEFAULT_MODEL.to_string())
}

/// The select list of an events table: its expressions under the names
/// `decode_event` reads. Called once by `interest.attach_events`.
#[pg_extern(immutable, strict, parallel_safe)]
fn _event_select_list(
    user_expr: &str,
    item_expr: &str,
    time_expr: &str,
    weight_expr: &str,
    text_expr: &str,
) -> String {
    format!(
        "{user_expr} AS user_key, {item_expr} AS item_key, extract(epoch FROM {time_expr})::float8 AS t, \
         ({weight_expr})::float8 AS weight, {text_expr} AS event_text"
    )
}

/// The interest-state settings `attach_events` uses when not given.
#[pg_extern(immutable, parallel_safe)]
fn _interest_defaults() -> TableIterator<
    'static,
    (
        name!(half_life_secs, f64),
        name!(max_interests, i32),
        name!(join_similarity, f32),
    ),
> {
    let d = InterestParams::default();
    TableIterator::once((d.half_life_secs, d.max_interests as i32, d.join_similarity))
}

/// One event row of a query that names the event columns (module comment).
pub(crate) fn decode_event(r: &SpiHeapTupleData<'_>) -> Result<EventRow, pgrx::spi::Error> {
    Ok(EventRow {
        user: r.get_by_name::<String, _>("user_key")?,
        item: r.get_by_name::<String, _>("item_key")?,
        t: r.get_by_name::<f64, _>("t")?,
        weight: r.get_by_name::<f64, _>("weight")?,
        text: r.get_by_name::<String, _>("event_text")?,
        vector: r
            .get_by_name::<Embedding, _>("embedding")?
            .map(Embedding::into_vec),
    })
}

/// The event source for `events` (an attached table's OID), or the only one.
#[pg_extern(stable, parallel_unsafe)]
fn _event_source(events: Option<pg_sys::Oid>) -> i32 {
    let ids: Vec<i32> = match events {
        Some(rel) => crate::spi::column(
            "SELECT id FROM interest.event_sources WHERE relid = $1::regclass",
            &[rel.into()],
        ),
        None => crate::spi::column("SELECT id FROM interest.event_sources ORDER BY id", &[]),
    };
    match (events, ids.as_slice()) {
        (_, [id]) => *id,
        (Some(_), _) => raise(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            "that table is not an attached events table",
            "interest.event_sources has no row for it.",
            "Call interest.attach_events first.",
        ),
        (None, []) => raise(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            "no events table is attached",
            "User interests come from an attached events table.",
            "Call interest.attach_events first.",
        ),
        (None, ids) => raise(
            PgSqlErrorCode::ERRCODE_AMBIGUOUS_PARAMETER,
            "several events tables are attached",
            format!("{} events tables are attached.", ids.len()),
            "Name one with events => 'my_events'.",
        ),
    }
}

// ---- privilege guards --------------------------------------------------------
//
// The `_`-prefixed entry points are SECURITY DEFINER (pinned search_path): an
// application role needs no rights on the bookkeeping tables. Each checks that
// the *calling* role (the outer role, which SECURITY DEFINER does not change)
// may write or read the attached table, so they cannot be used to forge state.

/// Refuses to run a privileged entry point inside a security-restricted
/// operation (ANALYZE, VACUUM, REINDEX, CREATE INDEX, REFRESH MATERIALIZED
/// VIEW evaluating someone else's expressions): there the outer role is not
/// the one whose SQL is running, so no privilege check could be trusted.
pub(crate) fn refuse_in_restricted_operation() {
    // SAFETY: reads backend-local state.
    if unsafe { pg_sys::InSecurityRestrictedOperation() } {
        raise(
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            "pg_interest bookkeeping cannot run inside a security-restricted operation",
            "A maintenance command (ANALYZE, VACUUM, REINDEX, CREATE INDEX or REFRESH MATERIALIZED VIEW) is evaluating an expression that calls it.",
            "Call pg_interest's functions directly, not from index expressions or materialized views.",
        );
    }
}

/// The event source, after checking that the caller may `what` on its table
/// (`mode`: ACL bits, any of which suffices).
pub(crate) fn writable_event_source(id: i32, mode: u32, what: &str) -> Rc<EventSource> {
    refuse_in_restricted_operation();
    let src = load_event_source(id);
    require_privilege(src.relid, &src.relname, mode, what);
    src
}

/// As `writable_event_source`, for an items table.
pub(crate) fn writable_item_source(id: i32, mode: u32, what: &str) -> ItemSource {
    refuse_in_restricted_operation();
    let src = load_item_source(id);
    require_privilege(src.relid, &src.relname, mode, what);
    src
}

/// The event source, after checking that the caller may read its table.
pub(crate) fn readable_event_source(id: i32) -> Rc<EventSource> {
    let src = load_event_source(id);
    require_privilege_of(
        reader_role(),
        src.relid,
        &src.relname,
        pg_sys::ACL_SELECT,
        "read interests",
    );
    src
}

/// Whose read a read function serves: the role that called it. Inside a
/// security-restricted operation (REFRESH MATERIALIZED VIEW of a view over
/// recommend(), say) the outer role is not whose SQL runs, so it is the
/// current role, the view's owner.
pub(crate) fn reader_role() -> pg_sys::Oid {
    // SAFETY: reads backend-local state.
    if unsafe { pg_sys::InSecurityRestrictedOperation() } {
        unsafe { pg_sys::GetUserId() }
    } else {
        outer_role()
    }
}

/// True when row-level security on the table filters what the reader sees.
pub(crate) fn rls_limits_reader(relid: pg_sys::Oid) -> bool {
    // SAFETY: a catalog check for an existing relation, without erroring.
    unsafe {
        pg_sys::check_enable_rls(relid, reader_role(), true)
            == pg_sys::CheckEnableRlsResult::RLS_ENABLED as i32
    }
}

/// The role that called us from outside any SECURITY DEFINER function.
fn outer_role() -> pg_sys::Oid {
    // SAFETY: reads backend-local state.
    unsafe { pg_sys::GetOuterUserId() }
}

fn require_privilege(relid: pg_sys::Oid, relname: &str, mode: u32, what: &str) {
    require_privilege_of(outer_role(), relid, relname, mode, what);
}

fn require_privilege_of(
    role: pg_sys::Oid,
    relid: pg_sys::Oid,
    relname: &str,
    mode: u32,
    what: &str,
) {
    // SAFETY: catalog lookup with valid OIDs; ACLMASK_ANY semantics (any bit of mode).
    let ok = unsafe { pg_sys::pg_class_aclcheck(relid, role, mode as pg_sys::AclMode) }
        == pg_sys::AclResult::ACLCHECK_OK;
    if !ok {
        raise(
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("permission denied to {what} for table {relname}"),
            "Interest bookkeeping for a table may only be changed by roles that may write that table.",
            format!("Grant the role INSERT, UPDATE or DELETE on {relname}."),
        );
    }
}

/// True when the calling (outer) role owns the table; used by detach and rebuild.
#[pg_extern(stable, parallel_unsafe)]
pub(crate) fn _outer_role_owns(rel: pg_sys::Oid) -> bool {
    refuse_in_restricted_operation();
    Spi::get_one_with_args::<bool>(
        "SELECT pg_has_role($1, relowner, 'USAGE') FROM pg_catalog.pg_class WHERE oid = $2",
        &[outer_role().into(), rel.into()],
    )
    .unwrap_or_else(|e| spi_error(e))
    .unwrap_or(false)
}

/// True when the calling (outer) role may read the table: whose items table
/// an events table may be attached to.
#[pg_extern(stable, parallel_unsafe)]
fn _outer_role_may_read(rel: pg_sys::Oid) -> bool {
    // SAFETY: catalog lookup with valid OIDs.
    unsafe {
        pg_sys::pg_class_aclcheck(rel, outer_role(), pg_sys::ACL_SELECT as pg_sys::AclMode)
            == pg_sys::AclResult::ACLCHECK_OK
    }
}

/// True when the calling (outer) role may write the table (INSERT, UPDATE or
/// DELETE): who may log a bookkeeping failure for it.
#[pg_extern(stable, parallel_unsafe)]
fn _outer_role_may_write(rel: pg_sys::Oid) -> bool {
    // SAFETY: reads backend-local state.
    if unsafe { pg_sys::InSecurityRestrictedOperation() } {
        return false;
    }
    let mode = pg_sys::ACL_INSERT | pg_sys::ACL_UPDATE | pg_sys::ACL_DELETE;
    // SAFETY: catalog lookup with valid OIDs; ACLMASK_ANY semantics.
    unsafe {
        pg_sys::pg_class_aclcheck(rel, outer_role(), mode as pg_sys::AclMode)
            == pg_sys::AclResult::ACLCHECK_OK
    }
}
