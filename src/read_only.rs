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
    if in_recovery {
        raise(
            PgSqlErrorCode::ERRCODE_READ_ONLY_SQL_TRANSACTION,
            format!("{action} cannot run on a hot standby"),
            format!("The server is in recovery: {action} writes pg_interest's bookkeeping, which only the primary writes and replication brings here."),
            "Run it on the primary. recommend(), explain(), similar_items(), interests() and evaluate() answer on a standby.",
        );
    }
    if read_only {
        raise(
            PgSqlErrorCode::ERRCODE_READ_ONLY_SQL_TRANSACTION,
            format!("{action} cannot run in a read-only transaction"),
            format!("{action} writes pg_interest's bookkeeping; this transaction is read-only (BEGIN READ ONLY, SET TRANSACTION READ ONLY or default_transaction_read_only)."),
            "Run it in a read-write transaction (BEGIN READ WRITE).",
        );
    }
}

/// The SQL functions' form of `require_writable`.
#[pg_extern(stable, parallel_safe)]
fn _require_writable(action: &str) {
    require_writable(action);
}
