//! The encoder graph builder: a short-lived background worker that optimizes
//! a model into its shared cache file (`interest_core::encoder_cache`) for
//! the backend that asked, then exits. Optimizing leaves a process with heap
//! it never gives back; a worker that exits returns it all, and the backend
//! only maps the finished file. Without a free worker slot the backend
//! builds the file itself, as before.

use pgrx::bgworkers::BackgroundWorkerBuilder;
use pgrx::prelude::*;
use std::path::{Path, PathBuf};

/// The cache directory, `$PGDATA/pg_interest_cache`.
pub(crate) fn cache_dir() -> PathBuf {
    // SAFETY: DataDir is set before any backend or worker runs our code.
    let data_dir = unsafe { std::ffi::CStr::from_ptr(pg_sys::DataDir) }
        .to_string_lossy()
        .into_owned();
    PathBuf::from(data_dir).join("pg_interest_cache")
}

/// `GraphCache::build_elsewhere`: starts the worker for `file` (a name in
/// `cache_dir()`; its request is written) and waits until it has exited.
pub(crate) fn build_in_worker(file: &Path) -> bool {
    let Some(name) = file.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    // bgw_extra holds 127 bytes and a NUL.
    if name.len() >= 128 || file.parent() != Some(cache_dir().as_path()) {
        return false;
    }
    let worker = BackgroundWorkerBuilder::new("pg_interest encoder graph")
        .set_type("pg_interest encoder graph")
        .set_library("pg_interest")
        .set_function("pg_interest_encoder_graph_main")
        .set_extra(name)
        // SAFETY: this backend's pid, read from its own global.
        .set_notify_pid(unsafe { pg_sys::MyProcPid })
        .load_dynamic();
    match worker {
        Ok(worker) => worker.wait_for_shutdown().is_ok(),
        Err(_) => false,
    }
}

#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn pg_interest_encoder_graph_main(_arg: pg_sys::Datum) {
    // Signals stay blocked (as a worker starts): a build takes seconds and
    // is not to be cut short halfway; it reads no table and runs no SQL.
    let name = pgrx::bgworkers::BackgroundWorker::get_extra().to_string();
    if name.is_empty() || name.contains('/') {
        return;
    }
    let file = cache_dir().join(name);
    let started = std::time::Instant::now();
    match interest_core::encoder_cache::build_requested(&file) {
        Ok(true) => log!(
            "pg_interest encoder graph: built \"{}\" in {:.1} s",
            file.display(),
            started.elapsed().as_secs_f64()
        ),
        Ok(false) => {}
        // The backend that asked builds it itself and reports what fails.
        Err(message) => log!("pg_interest encoder graph: {message}"),
    }
}
