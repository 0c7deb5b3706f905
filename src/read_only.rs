//! Functions that write pg_interest's bookkeeping refuse a read-only
//! transaction (and a hot standby) up front, naming themselves, with 25006
//! and a hint; otherwise the refusal came from whichever of their statements
//! wrote first, with no hint and a statement the caller never wrote.

use crate::errors::raise;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

/// Raises 25006 when this transaction may not write; `action` names the
/// public function, such as "interest.flush()".
pub fn require_writable(action: &str) {
    // SAFETY: both read backend-local state.
    let (in_recovery, read_only) = unsafe { (pg_sys::RecoveryInProgress(), pg_sys::XactReadOnly) };
    let (place, why, hint) = if in_recovery {
        (
            "on a hot standby",
            "the server is in recovery: only the primary writes it, and replication brings it here",
            "Run it on the primary. recommend(), explain(), similar_items(), interests() and evaluate() answer on a standby.",
        )
    } else if read_only {
        (
            "in a read-only transaction",
            "this transaction is read-only (BEGIN READ ONLY, SET TRANSACTION READ ONLY or default_transaction_read_only)",
            "Run it in a read-write transaction (BEGIN READ WRITE).",
        )
    } else {
        return;
    };
    raise(
        PgSqlErrorCode::ERRCODE_READ_ONLY_SQL_TRANSACTION,
        format!("{action} cannot run {place}"),
        format!("{action} writes pg_interest's bookkeeping; {why}."),
        hint,
    );
}

/// The SQL functions' form of `require_writable`.
#[pg_extern(stable, parallel_safe)]
fn _require_writable(action: &str) {
    require_writable(action);
}
