//! SPI plumbing shared by every bookkeeping module: the per-backend plan
//! cache, caches scoped to the extension's lifetime, one-value helpers and
//! the error a failed bookkeeping query raises. Knows no domain module.
//!
//! Key sets go to statements as one array and are matched with
//! `key IN (SELECT unnest($n))`, never `key = ANY($n)`: PostgreSQL tests
//! `= ANY` of a parameter array element by element for every row it
//! rechecks, which is quadratic when one statement brings hundreds of
//! thousands of events; the unnest form is planned as a join. The one
//! exception is recommend()'s candidates (a few hundred keys, twenty per
//! result for a large k, plus a filter list of at most
//! `candidates::MAX_FILTER_CANDIDATES`): their lookups use `= ANY`, which
//! one scan of the primary key takes whole and sorted (PostgreSQL 15 still
//! descends once per key, but runs one scan rather than one per key).

use crate::errors::raise;
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::{Error as SpiError, SpiTupleTable};
use pgrx::PgSqlErrorCode;
use std::cell::{Cell, RefCell, RefMut};
use std::collections::HashMap;

/// A per-backend map that is emptied when the extension's OID changes
/// (DROP/CREATE EXTENSION in the same backend), so nothing in it outlives
/// the objects it refers to.
pub(crate) type ExtensionCache<K, V> = RefCell<(pg_sys::Oid, HashMap<K, V>)>;

/// An empty cache, for `thread_local!` initialisers.
pub(crate) fn extension_cache<K, V>() -> ExtensionCache<K, V> {
    RefCell::new((pg_sys::InvalidOid, HashMap::new()))
}

/// The cache's map, for the extension as it is now.
pub(crate) fn current<K, V>(cache: &ExtensionCache<K, V>) -> RefMut<'_, HashMap<K, V>> {
    let ext = extension_oid();
    let mut c = cache.borrow_mut();
    if c.0 != ext {
        c.1.clear();
        c.0 = ext;
    }
    RefMut::map(c, |c| &mut c.1)
}

thread_local! {
    // Prepared plans of the hot statements, by (writes, SQL text).
    static PLANS: ExtensionCache<(bool, String), pgrx::spi::OwnedPreparedStatement> = extension_cache();
    // (local transaction id, extension OID): the OID can only change by
    // DROP/CREATE EXTENSION, so one catalog scan per transaction is enough.
    static EXTENSION_OID: Cell<(pg_sys::LocalTransactionId, pg_sys::Oid)> =
        const { Cell::new((0, pg_sys::InvalidOid)) };
}

pub(crate) fn extension_oid() -> pg_sys::Oid {
    // SAFETY: MyProc is set in every backend that runs SQL functions.
    let lxid = unsafe { (*pg_sys::MyProc).lxid };
    let (cached_lxid, cached) = EXTENSION_OID.get();
    if cached_lxid == lxid && cached != pg_sys::InvalidOid {
        return cached;
    }
    // SAFETY: a catalog lookup by name.
    let oid = unsafe { pg_sys::get_extension_oid(c"pg_interest".as_ptr(), true) };
    EXTENSION_OID.set((lxid, oid));
    oid
}

/// Runs a fixed statement through a plan prepared once per backend (argument
/// types from the first call), and hands the result to `f`. Statements that
/// write are planned as such; those that only read run read-only while the
/// transaction has written nothing, so that they work on a hot standby.
fn cached<T>(
    sql: &str,
    args: &[DatumWithOid],
    writes: bool,
    rows: Option<usize>,
    f: impl FnOnce(SpiTupleTable<'_>) -> Result<T, SpiError>,
) -> T {
    let rows = rows.map(|n| n.try_into().unwrap_or(std::ffi::c_long::MAX));
    Spi::connect_mut(|client| {
        PLANS.with(|plans| {
            let mut plans = current(plans);
            let key = (writes, sql.to_string());
            if !plans.contains_key(&key) {
                let oids: Vec<pgrx::PgOid> =
                    args.iter().map(|a| pgrx::PgOid::from(a.oid())).collect();
                let stmt = if writes {
                    client.prepare_mut(sql, &oids)?
                } else {
                    client.prepare(sql, &oids)?
                };
                plans.insert(key.clone(), stmt.keep());
            }
            let stmt = plans.get(&key).expect("plan was just prepared");
            let table = if writes {
                client.update(stmt, rows, args)?
            } else {
                client.select(stmt, rows, args)?
            };
            f(table)
        })
    })
    .unwrap_or_else(|e| spi_error(e))
}

/// A cached statement that writes (`cached`).
pub(crate) fn run_cached<T>(
    sql: &str,
    args: &[DatumWithOid],
    f: impl FnOnce(SpiTupleTable<'_>) -> Result<T, SpiError>,
) -> T {
    cached(sql, args, true, None, f)
}

/// A cached statement that only reads (`cached`).
pub(crate) fn read_cached<T>(
    sql: &str,
    args: &[DatumWithOid],
    f: impl FnOnce(SpiTupleTable<'_>) -> Result<T, SpiError>,
) -> T {
    cached(sql, args, false, None, f)
}

/// A cached read that stops after its first `rows` rows: the executor pulls
/// no more, so a statement whose LIMIT is rounded up (to keep few plans)
/// reads no row it was not asked for.
pub(crate) fn read_cached_first<T>(
    sql: &str,
    args: &[DatumWithOid],
    rows: usize,
    f: impl FnOnce(SpiTupleTable<'_>) -> Result<T, SpiError>,
) -> T {
    cached(sql, args, false, Some(rows), f)
}

/// The first column of the first row of a cached read-only statement.
pub(crate) fn one_read_cached<T: pgrx::datum::FromDatum + pgrx::datum::IntoDatum>(
    sql: &str,
    args: &[DatumWithOid],
) -> Option<T> {
    read_cached(sql, args, |t| {
        Ok(t.into_iter()
            .next()
            .and_then(|r| r.get::<T>(1).ok().flatten()))
    })
}

/// A cached statement run for its effect.
pub(crate) fn exec_cached(sql: &str, args: &[DatumWithOid]) {
    run_cached(sql, args, |_| Ok(()))
}

/// The first column of the first row of a cached statement, if any.
pub(crate) fn one_cached<T: pgrx::datum::FromDatum + pgrx::datum::IntoDatum>(
    sql: &str,
    args: &[DatumWithOid],
) -> Option<T> {
    run_cached(sql, args, |t| {
        Ok(t.into_iter()
            .next()
            .and_then(|r| r.get::<T>(1).ok().flatten()))
    })
}

/// A statement built at run time (it names an application table), run for its effect.
pub(crate) fn exec(sql: &str, args: &[DatumWithOid]) {
    Spi::run_with_args(sql, args).unwrap_or_else(|e| spi_error(e))
}

/// Every first-column value of a one-off query.
pub(crate) fn column<T: pgrx::datum::FromDatum + pgrx::datum::IntoDatum>(
    sql: &str,
    args: &[DatumWithOid],
) -> Vec<T> {
    Spi::connect(|c| {
        c.select(sql, None, args)?
            .filter_map(|r| r.get::<T>(1).transpose())
            .collect::<Result<Vec<T>, SpiError>>()
    })
    .unwrap_or_else(|e| spi_error(e))
}

pub(crate) fn spi_error(e: SpiError) -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
        "pg_interest bookkeeping query failed",
        e.to_string(),
        "",
    )
}

/// A read-only query on the active snapshot, even when the transaction has
/// already written. pgrx's `select` runs read-write (a new snapshot for
/// every query) once the transaction has an xid, which would let a query
/// called from inside another statement see rows that statement did not.
pub(crate) fn select_on_active_snapshot<T>(
    sql: &str,
    args: &[DatumWithOid],
    mut decode: impl FnMut(&pgrx::spi::SpiHeapTupleData<'_>) -> Result<T, SpiError>,
) -> Vec<T> {
    let sql = std::ffi::CString::new(sql).expect("SQL text has no NUL bytes");
    let mut types: Vec<pg_sys::Oid> = args.iter().map(|a| a.oid()).collect();
    let mut values: Vec<pg_sys::Datum> = args
        .iter()
        .map(|a| {
            a.datum()
                .map_or(pg_sys::Datum::from(0usize), |d| d.sans_lifetime())
        })
        .collect();
    let nulls: Vec<std::os::raw::c_char> = args
        .iter()
        .map(|a| if a.datum().is_some() { b' ' } else { b'n' } as std::os::raw::c_char)
        .collect();
    Spi::connect(|_| {
        // SAFETY: SPI is connected; the argument arrays outlive the call, and
        // the result table is read before the connection closes.
        unsafe {
            let status = pg_sys::SPI_execute_with_args(
                sql.as_ptr(),
                args.len() as i32,
                types.as_mut_ptr(),
                values.as_mut_ptr(),
                nulls.as_ptr(),
                true,
                0,
            );
            Spi::check_status(status)?;
            let table = pg_sys::SPI_tuptable;
            if table.is_null() {
                return Ok(Vec::new());
            }
            let rows = std::slice::from_raw_parts((*table).vals, pg_sys::SPI_processed as usize);
            rows.iter()
                .filter_map(|&tuple| {
                    pgrx::spi::SpiHeapTupleData::new((*table).tupdesc, tuple).transpose()
                })
                .map(|row| decode(&row?))
                .collect::<Result<Vec<T>, SpiError>>()
        }
    })
    .unwrap_or_else(|e| spi_error(e))
}

/// A cached read-only statement (`read_cached`) that fetches a few hundred
/// rows by key: when PostgreSQL's generic plan for it is index-only scans
/// it runs as planned (no heap page is read for all-visible rows, as with an
/// application's index on its events' (user, item)); otherwise under
/// `with_prefetching_reads`, which would rule such scans out.
pub(crate) fn read_cached_prefetching<T>(
    sql: &str,
    args: &[DatumWithOid],
    f: impl FnOnce(SpiTupleTable<'_>) -> Result<T, SpiError>,
) -> T {
    if crate::plan_shape::reads_indexes_only(sql, args) {
        read_cached(sql, args, f)
    } else {
        with_prefetching_reads(|| read_cached(sql, args, f))
    }
}

/// Runs `read` with lookups by many keys planned as bitmap scans, whose heap
/// pages are asked of the kernel ahead (`effective_io_concurrency`): on a
/// cold cache a plain index scan reads them one at a time. For statements
/// that fetch a few hundred rows by key (recommend()'s candidates).
fn with_prefetching_reads<T>(read: impl FnOnce() -> T) -> T {
    // SAFETY: settings saved at a new nesting level and restored below, as
    // a function's SET clause does (an ERROR's abort restores them too).
    let nest_level = unsafe { pg_sys::NewGUCNestLevel() };
    for (name, value) in [
        (c"enable_indexscan", c"off"),
        (c"enable_bitmapscan", c"on"),
        (c"effective_io_concurrency", c"64"),
    ] {
        set_at_this_level(name, value);
    }
    let out = read();
    // SAFETY: as above.
    unsafe { pg_sys::AtEOXact_GUC(true, nest_level) };
    out
}

/// Sets a setting at the current GUC nesting level, saved and restored when
/// the level ends (as a function's SET clause does): for callers that opened
/// one with `NewGUCNestLevel`.
pub(crate) fn set_at_this_level(name: &std::ffi::CStr, value: &std::ffi::CStr) {
    // SAFETY: valid C strings; GUC_ACTION_SAVE restores the old value when
    // the caller's nesting level ends, or at an ERROR's abort.
    unsafe {
        pg_sys::set_config_option(
            name.as_ptr(),
            value.as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_SAVE,
            true,
            0,
            false,
        );
    }
}
