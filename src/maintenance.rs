//! SQL-callable writes outside the triggers: `interest.rebuild` and
//! `interest.set_profile` (through their entry points, see privileges.rs).

use crate::errors::{raise, required};
use crate::ingest;
use crate::locks;
use crate::privileges::{refuse_in_restricted_operation, require_owner, with_extension_rights};
use crate::sources::{load_event_source, writable_event_source};
use interest_core::keys::{key_fits, MAX_KEY_BYTES};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

/// Recomputes every user's state; only the table's owner may.
#[pg_extern(strict, volatile, parallel_unsafe)]
#[search_path(pg_catalog, interest, pg_temp)]
fn _rebuild_all(source_id: i32) -> i64 {
    with_extension_rights(|| {
        refuse_in_restricted_operation();
        let src = load_event_source(source_id);
        require_owner(src.relid, &src.relname, "interest.rebuild");
        // Waits for in-flight incremental updates, holds off new ones.
        locks::lock_source_exclusive(source_id);
        ingest::replay_all(&src)
    })
}

/// Sets (or, with NULL, clears) a user's text profile and recomputes the user.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, interest, pg_temp)]
fn _set_profile(user_key: Option<&str>, profile: Option<&str>, source_id: i32) -> bool {
    let user_key = required(user_key, "user_key");
    with_extension_rights(|| {
        let src = writable_event_source(
            source_id,
            pg_sys::ACL_INSERT | pg_sys::ACL_UPDATE,
            "set profiles",
        );
        crate::read_only::require_writable("interest.set_profile()");
        if !key_fits(user_key) {
            raise(
                PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
                "user key too long",
                format!(
                    "The key has {} bytes; user and item keys may have at most {MAX_KEY_BYTES}.",
                    user_key.len()
                ),
                "Use shorter keys (an id, or a hash of a long one).",
            );
        }
        ingest::set_profile(&src, user_key, profile);
        profile.is_some()
    })
}
