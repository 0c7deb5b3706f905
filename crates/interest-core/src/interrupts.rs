//! Cancellation points for long loops (ranking a catalog, the diversity
//! selection, offline evaluation). The host registers what a check does;
//! in the extension it is Postgres' CHECK_FOR_INTERRUPTS, so that
//! statement_timeout and pg_cancel_backend stop these loops. Without a host
//! (plain `cargo test`) a check does nothing.

use std::sync::OnceLock;

static HOOK: OnceLock<fn()> = OnceLock::new();

/// Sets the check, once per process; later calls are ignored.
pub fn register(check: fn()) {
    let _ = HOOK.set(check);
}

/// Runs the host's check: it may not return (the host cancels by unwinding).
#[inline]
pub fn check() {
    if let Some(check) = HOOK.get() {
        check()
    }
}

/// How many items a scoring loop handles between two checks.
pub const ITEMS_PER_CHECK: usize = 4096;

/// `check()` every `ITEMS_PER_CHECK`-th index.
#[inline]
pub fn check_every(i: usize) {
    if i.is_multiple_of(ITEMS_PER_CHECK) {
        check();
    }
}
