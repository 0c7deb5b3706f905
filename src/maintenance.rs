//! SQL-callable writes outside the triggers: `interest.rebuild` and
//! `interest.set_profile` (through their SECURITY DEFINER entry points).

use crate::errors::raise;
use crate::ingest;
use crate::locks;
use crate::sources::{_outer_role_owns, load_event_source, writable_event_source};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

/// Recomputes every user's state; only the table's owner may.
#[pg_extern(security_definer, strict, volatile, parallel_unsafe)]
#[search_path(pg_catalog, interest)]
fn _rebuild_all(source_id: i32) -> i64 {
    let src = load_event_source(source_id);
    if !_outer_role_owns(src.relid) {
        raise(
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("must be owner of table {}", src.relname),
            "A full rebuild recomputes every user's interest state.",
            "Run interest.rebuild as the table's owner.",
        );
    }
    // Waits for in-flight incremental updates, holds off new ones.
    locks::lock_source_exclusive(source_id);
    ingest::replay_all(&src)
}

/// Sets (or, with NULL, clears) a user's text profile and recomputes the user.
#[pg_extern(security_definer, volatile, parallel_unsafe)]
#[search_path(pg_catalog, interest)]
fn _set_profile(user_key: &str, profile: Option<&str>, source_id: i32) -> bool {
    let src = writable_event_source(
        source_id,
        pg_sys::ACL_INSERT | pg_sys::ACL_UPDATE,
        "set profiles",
    );
    ingest::set_profile(&src, user_key, profile);
    profile.is_some()
}
