//! `CREATE INDEX ... USING interest_ivf (e) WITH (lists = N)`.

use pgrx::pg_sys;
use std::sync::atomic::{AtomicU32, Ordering};

/// 0: chosen from the table's size at build time.
#[repr(C)]
struct IvfOptions {
    varlena_header: i32,
    lists: i32,
}

static RELOPT_KIND: AtomicU32 = AtomicU32::new(0);

/// Registers the options; from _PG_init.
pub fn register() {
    // SAFETY: called once per process from _PG_init, before any index use.
    unsafe {
        let kind = pg_sys::add_reloption_kind();
        RELOPT_KIND.store(kind, Ordering::Relaxed);
        pg_sys::add_int_reloption(
            kind,
            c"lists".as_ptr(),
            c"Number of inverted lists (0: the square root of the rows at build time)".as_ptr(),
            0,
            0,
            16_384,
            pg_sys::AccessExclusiveLock as pg_sys::LOCKMODE,
        );
    }
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn amoptions(
    reloptions: pg_sys::Datum,
    validate: bool,
) -> *mut pg_sys::bytea {
    let table = [pg_sys::relopt_parse_elt {
        optname: c"lists".as_ptr(),
        opttype: pg_sys::relopt_type::RELOPT_TYPE_INT,
        offset: std::mem::offset_of!(IvfOptions, lists) as i32,
    }];
    unsafe {
        pg_sys::build_reloptions(
            reloptions,
            validate,
            RELOPT_KIND.load(Ordering::Relaxed),
            std::mem::size_of::<IvfOptions>(),
            table.as_ptr(),
            table.len() as i32,
        ) as *mut pg_sys::bytea
    }
}

/// The `lists` option of `index`, 0 when not set.
///
/// # Safety
/// `index` is an open index relation of this access method.
pub unsafe fn lists(index: pg_sys::Relation) -> usize {
    unsafe {
        let options = (*index).rd_options as *const IvfOptions;
        if options.is_null() {
            0
        } else {
            (*options).lists.max(0) as usize
        }
    }
}
