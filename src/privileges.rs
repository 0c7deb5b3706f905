//! Who may do what. The entry points that touch the bookkeeping tables run
//! with the rights of whoever calls them (no SECURITY DEFINER): each notes
//! its caller, the current user at entry, checks that role's rights on the
//! attached table, and only then does the bookkeeping with the extension
//! owner's rights (`with_extension_rights`). The current user at entry is
//! the role whose SQL called: inside another role's SECURITY DEFINER
//! function it is that function's owner, never the session's outer role, so
//! a function of someone else's cannot borrow a superuser's rights.

use crate::errors::raise;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;
use std::cell::Cell;

thread_local! {
    // The caller of the innermost entry point running now, if any.
    static CALLER: Cell<Option<pg_sys::Oid>> = const { Cell::new(None) };
}

/// The role a privilege check is for: the caller of the entry point running
/// now or, outside one, the current user.
pub(crate) fn caller() -> pg_sys::Oid {
    // SAFETY: reads backend-local state.
    CALLER
        .get()
        .unwrap_or_else(|| unsafe { pg_sys::GetUserId() })
}

/// Runs an entry point's `body` with the extension owner's rights, its
/// caller noted for `caller()`. On an ERROR the (sub)transaction's abort
/// restores the user and security context; the guard restores the caller.
pub(crate) fn with_extension_rights<R>(body: impl FnOnce() -> R) -> R {
    struct RestoreCaller(Option<pg_sys::Oid>);
    impl Drop for RestoreCaller {
        fn drop(&mut self) {
            CALLER.set(self.0);
        }
    }
    let (mut saved_user, mut saved_context) = (pg_sys::InvalidOid, 0);
    // SAFETY: reads backend-local state.
    unsafe { pg_sys::GetUserIdAndSecContext(&mut saved_user, &mut saved_context) };
    let _restore = RestoreCaller(CALLER.replace(Some(saved_user)));
    let owner = extension_owner();
    // SAFETY: switched and restored as PostgreSQL's SECURITY DEFINER call
    // handler does; SECURITY_LOCAL_USERID_CHANGE forbids SET ROLE meanwhile.
    unsafe {
        pg_sys::SetUserIdAndSecContext(
            owner,
            saved_context | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32,
        )
    };
    let out = body();
    // SAFETY: as above.
    unsafe { pg_sys::SetUserIdAndSecContext(saved_user, saved_context) };
    out
}

fn extension_owner() -> pg_sys::Oid {
    crate::spi::one_read_cached::<pg_sys::Oid>(
        "SELECT extowner FROM pg_catalog.pg_extension WHERE oid = $1",
        &[crate::spi::extension_oid().into()],
    )
    .unwrap_or_else(|| {
        raise(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            "extension pg_interest is not installed",
            "pg_catalog.pg_extension has no row for it.",
            "CREATE EXTENSION pg_interest;",
        )
    })
}

/// Refuses to run a privileged entry point inside a security-restricted
/// operation (ANALYZE, VACUUM, REINDEX, CREATE INDEX, REFRESH MATERIALIZED
/// VIEW evaluating someone else's expressions): bookkeeping is never a side
/// effect of maintenance.
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

/// Raises 42501 unless the caller holds one of `mode`'s rights on the table.
pub(crate) fn require_privilege(relid: pg_sys::Oid, relname: &str, mode: u32, what: &str) {
    if caller_has(relid, mode) {
        return;
    }
    let rights: Vec<&str> = [
        (pg_sys::ACL_SELECT, "SELECT"),
        (pg_sys::ACL_INSERT, "INSERT"),
        (pg_sys::ACL_UPDATE, "UPDATE"),
        (pg_sys::ACL_DELETE, "DELETE"),
    ]
    .into_iter()
    .filter(|(bit, _)| mode & bit != 0)
    .map(|(_, name)| name)
    .collect();
    let detail = if mode == pg_sys::ACL_SELECT {
        "Interest state of a table may only be read by roles that may read that table."
    } else {
        "Interest bookkeeping for a table may only be changed by roles that may write that table."
    };
    raise(
        PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
        format!("permission denied to {what} for table {relname}"),
        detail,
        format!("Grant the role {} on {relname}.", rights.join(" or ")),
    );
}

/// Raises 42501 unless the caller owns the table (or is a member of its owner).
pub(crate) fn require_owner(relid: pg_sys::Oid, relname: &str, what: &str) {
    if !_caller_owns(relid) {
        raise(
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("must be owner of table {relname}"),
            format!("{what} changes the table's interest bookkeeping."),
            "Run it as the table's owner.",
        );
    }
}

pub(crate) fn caller_has(relid: pg_sys::Oid, mode: u32) -> bool {
    // SAFETY: catalog lookup with valid OIDs; ACLMASK_ANY semantics (any bit of mode).
    let result = unsafe { pg_sys::pg_class_aclcheck(relid, caller(), mode as pg_sys::AclMode) };
    result == pg_sys::AclResult::ACLCHECK_OK
}

/// True when row-level security on the table filters what the caller sees.
pub(crate) fn rls_limits_caller(relid: pg_sys::Oid) -> bool {
    // SAFETY: a catalog check for an existing relation, without erroring.
    unsafe {
        pg_sys::check_enable_rls(relid, caller(), true)
            == pg_sys::CheckEnableRlsResult::RLS_ENABLED as i32
    }
}

/// True when the caller owns the table (or is a member of its owner).
#[pg_extern(stable, parallel_unsafe)]
pub(crate) fn _caller_owns(rel: pg_sys::Oid) -> bool {
    refuse_in_restricted_operation();
    // SAFETY: catalog lookups with valid OIDs.
    unsafe { pg_sys::get_rel_relkind(rel) != 0 && pg_sys::pg_class_ownercheck(rel, caller()) }
}

/// True when the caller may read the table: whose items table an events
/// table may be attached to.
#[pg_extern(stable, parallel_unsafe)]
fn _caller_may_read(rel: pg_sys::Oid) -> bool {
    caller_has(rel, pg_sys::ACL_SELECT)
}

/// True when the caller may write the table (INSERT, UPDATE or DELETE):
/// who may log a bookkeeping failure for it.
#[pg_extern(stable, parallel_unsafe)]
fn _caller_may_write(rel: pg_sys::Oid) -> bool {
    // SAFETY: reads backend-local state.
    if unsafe { pg_sys::InSecurityRestrictedOperation() } {
        return false;
    }
    caller_has(
        rel,
        pg_sys::ACL_INSERT | pg_sys::ACL_UPDATE | pg_sys::ACL_DELETE,
    )
}

/// The SQL-level privileged steps: attaching, detaching, following DDL and
/// logging a failure write the settings and create or drop the trigger
/// functions in schema interest. Each is a plain PL/pgSQL function that
/// PUBLIC may not execute; this is its only way in, for a caller with the
/// right named here, with the extension owner's rights. Every argument is
/// data (`args`), no statement text comes from the caller.
const PRIVILEGED_STEPS: &[(&str, Right, &str)] = &[
    (
        "attach_items",
        Right::Own,
        "SELECT interest._register_items($1, $2)",
    ),
    (
        "attach_events",
        Right::Own,
        "SELECT interest._register_events($1, $2)",
    ),
    ("detach", Right::Own, "SELECT interest._unregister($1, $2)"),
    (
        "index_items",
        Right::Own,
        "SELECT interest._index_items($1, $2)",
    ),
    (
        "refresh",
        Right::Own,
        "SELECT interest._refresh_attached($1, $2)",
    ),
    (
        "log_failure",
        Right::Write,
        "SELECT interest._log_failure($1, $2)",
    ),
];

#[derive(Clone, Copy)]
enum Right {
    Own,
    Write,
}

/// Refuses a NULL table argument of the SQL functions (22004).
#[pg_extern(immutable, parallel_safe)]
fn _require_table(rel: Option<pg_sys::Oid>) {
    crate::errors::required(rel, "table");
}

/// Runs one of `PRIVILEGED_STEPS` on `rel` for its caller.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, interest, pg_temp)]
fn _privileged(step: &str, rel: Option<pg_sys::Oid>, args: pgrx::JsonB) -> Option<i32> {
    refuse_in_restricted_operation();
    let rel = crate::errors::required(rel, "table");
    let public_name = match step {
        "attach_items" => Some("interest.attach_items()"),
        "attach_events" => Some("interest.attach_events()"),
        "detach" if args.0["kind"] == "event" => Some("interest.detach_events()"),
        "detach" => Some("interest.detach_items()"),
        "index_items" => Some("interest.index_items()"),
        // (DDL and writes to the table, which a read-only transaction cannot run)
        _ => None,
    };
    if let Some(name) = public_name {
        crate::read_only::require_writable(name);
    }
    let Some(&(_, right, sql)) = PRIVILEGED_STEPS.iter().find(|(name, _, _)| *name == step) else {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("unknown privileged step \"{step}\""),
            "Only pg_interest's own functions call interest._privileged.",
            "Call attach_items, attach_events, detach_items or detach_events.",
        )
    };
    let relname = crate::spi::one_read_cached::<String>("SELECT $1::regclass::text", &[rel.into()])
        .unwrap_or_default();
    match right {
        Right::Own => require_owner(rel, &relname, step),
        Right::Write => require_privilege(
            rel,
            &relname,
            pg_sys::ACL_INSERT | pg_sys::ACL_UPDATE | pg_sys::ACL_DELETE,
            "log bookkeeping failures",
        ),
    }
    with_extension_rights(|| {
        Spi::get_one_with_args::<i32>(sql, &[rel.into(), args.into()])
            .unwrap_or_else(|e| crate::spi::spi_error(e))
    })
}
