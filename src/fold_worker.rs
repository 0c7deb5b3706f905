//! The queue folder: an optional background worker that folds every events
//! table's queue in its own short transactions, so that small statements
//! never fold (no latency spike, no bookkeeping lock held by a long
//! application transaction) and a table that has gone quiet is folded too.
//! Runs when pg_interest is in `shared_preload_libraries` and
//! `interest.fold_database` names a database; without it the triggers fold.

use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, SignalWakeFlags};
use pgrx::prelude::*;
use std::time::{Duration, Instant};

/// How often the worker looks for vector indexes to rebuild...
const INDEX_CHECK_PERIOD: Duration = Duration::from_secs(30);
/// ...doubling after a round with a failed rebuild, up to this.
const MAX_INDEX_CHECK_PERIOD: Duration = Duration::from_secs(3600);

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
    let mut next_fold = Instant::now() + period();
    let mut next_index_check = Instant::now();
    let mut index_check_period = INDEX_CHECK_PERIOD;
    loop {
        // Missing vector indexes (a restore) are rebuilt, looked for at
        // start and then every INDEX_CHECK_PERIOD (longer after failures),
        // in a transaction of their own.
        if Instant::now() >= next_index_check {
            let failed = BackgroundWorker::transaction(|| {
                if !extension_installed() {
                    return 0;
                }
                Spi::get_one::<i32>("SELECT interest._rebuild_missing_indexes()")
                    .ok()
                    .flatten()
                    .unwrap_or(0)
            });
            index_check_period = if failed > 0 {
                (index_check_period * 2).min(MAX_INDEX_CHECK_PERIOD)
            } else {
                INDEX_CHECK_PERIOD
            };
            next_index_check = Instant::now() + index_check_period;
        }
        // The latch waits whole milliseconds: a shorter wait rounds up, not
        // down to a wait of none (a busy loop until the time comes).
        let wait = next_fold
            .min(next_index_check)
            .saturating_duration_since(Instant::now());
        let wait = Duration::from_millis(wait.as_micros().div_ceil(1000) as u64);
        if !BackgroundWorker::wait_latch(Some(wait)) {
            break;
        }
        if BackgroundWorker::sighup_received() {
            // SAFETY: the documented way for a worker to reread postgresql.conf.
            unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
            // A shorter fold_interval applies now, not after the old period.
            next_fold = next_fold.min(Instant::now() + period());
        }
        if Instant::now() < next_fold {
            continue;
        }
        next_fold = Instant::now() + period();
        // interest._fold_all catches each table's errors (logged in
        // interest.bookkeeping_errors), so one bad queue holds up no other.
        BackgroundWorker::transaction(|| {
            if extension_installed() {
                let _ = Spi::get_one::<i64>("SELECT interest._fold_all()");
            }
        });
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
