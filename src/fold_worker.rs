//! The queue folder: an optional background worker that folds every events
//! table's queue in its own short transactions, so that small statements
//! never fold (no latency spike, no bookkeeping lock held by a long
//! application transaction) and a table that has gone quiet is folded too.
//! Runs when pg_interest is in `shared_preload_libraries` and
//! `interest.fold_database` names a database; without it the triggers fold.

use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, SignalWakeFlags};
use pgrx::prelude::*;
use std::time::{Duration, Instant};

/// How often the worker looks for vector indexes to rebuild.
const INDEX_CHECK_PERIOD: Duration = Duration::from_secs(30);

/// Registers the worker; called from `_PG_init` while preloading.
pub fn register() {
    // SAFETY: a flag the postmaster sets while loading preload libraries.
    if !unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        return;
    }
    if crate::gucs::string_setting(&crate::gucs::FOLD_DATABASE).is_empty() {
        return;
    }
    BackgroundWorkerBuilder::new("pg_interest queue folder")
        .set_type("pg_interest queue folder")
        .set_function("pg_interest_fold_worker_main")
        .set_library("pg_interest")
        .enable_spi_access()
        .set_restart_time(Some(Duration::from_secs(10)))
        .load();
}

/// How often the worker looks at the queues: twice per `interest.fold_interval`,
/// so a queue is folded before a small statement would find it overdue.
fn period() -> Duration {
    let interval = crate::gucs::FOLD_INTERVAL_MS.get().max(0) as u64;
    Duration::from_millis(if interval == 0 {
        1000
    } else {
        (interval / 2).max(100)
    })
}

#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn pg_interest_fold_worker_main(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    let database = crate::gucs::string_setting(&crate::gucs::FOLD_DATABASE);
    BackgroundWorker::connect_worker_to_spi(Some(&database), None);
    log!("pg_interest queue folder started in database \"{database}\"");
    let mut indexes_checked: Option<Instant> = None;
    while BackgroundWorker::wait_latch(Some(period())) {
        if BackgroundWorker::sighup_received() {
            // SAFETY: the documented way for a worker to reread postgresql.conf.
            unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
        }
        // interest._fold_all catches each table's errors (logged in
        // interest.bookkeeping_errors), so one bad queue holds up no other.
        BackgroundWorker::transaction(|| {
            if extension_installed() {
                let _ = Spi::get_one::<i64>("SELECT interest._fold_all()");
            }
        });
        // Missing vector indexes (a restore) are rebuilt, looked for at
        // start and then every INDEX_CHECK_PERIOD, in a transaction of their own.
        if indexes_checked.is_none_or(|t| t.elapsed() >= INDEX_CHECK_PERIOD) {
            indexes_checked = Some(Instant::now());
            BackgroundWorker::transaction(|| {
                if extension_installed() {
                    let _ = Spi::get_one::<i32>("SELECT interest._rebuild_missing_indexes()");
                }
            });
        }
    }
    log!("pg_interest queue folder stopped");
}

fn extension_installed() -> bool {
    Spi::get_one::<bool>(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_interest')",
    )
    .ok()
    .flatten()
    .unwrap_or(false)
}
