//! `interest_ivf`: an index access method for `interest.embedding` —
//! inverted lists with RaBitQ codes and exact rerank (the algorithms are in
//! `interest_core::ivf`; here are pages, WAL, build, insert, scan, vacuum).
//! Operator classes (sql/ivf.sql): cosine (default), inner product, L2.

mod buffers;
mod build;
mod cost;
pub mod info;
mod insert;
pub mod keys;
mod options;
mod pages;
mod scan;
mod shape;
mod stats;
mod vacuum;

use crate::errors::raise;
use interest_core::ivf::metric::Metric;
use pgrx::prelude::*;
use pgrx::{PgBox, PgSqlErrorCode};

pub use options::register as register_options;
pub use scan::with_estimates_only;

#[pg_extern(sql = "
CREATE FUNCTION interest.interest_ivf_handler(internal) RETURNS index_am_handler
    PARALLEL SAFE IMMUTABLE STRICT LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
")]
fn interest_ivf_handler(_fcinfo: pg_sys::FunctionCallInfo) -> PgBox<pg_sys::IndexAmRoutine> {
    let mut am =
        unsafe { PgBox::<pg_sys::IndexAmRoutine>::alloc_node(pg_sys::NodeTag::T_IndexAmRoutine) };
    am.amstrategies = 0;
    am.amsupport = 1;
    am.amoptsprocnum = 0;
    am.amcanorder = false;
    am.amcanorderbyop = true;
    am.amcanbackward = false;
    am.amcanunique = false;
    am.amcanmulticol = false;
    am.amoptionalkey = true;
    am.amsearcharray = false;
    am.amsearchnulls = false;
    am.amstorage = false;
    am.amclusterable = false;
    am.ampredlocks = false;
    am.amcanparallel = false;
    // An INCLUDEd text column rides in each entry (`keys`).
    am.amcaninclude = true;
    am.amusemaintenanceworkmem = false;
    am.amparallelvacuumoptions = 0;
    am.amkeytype = pg_sys::InvalidOid;

    am.ambuild = Some(build::ambuild);
    am.ambuildempty = Some(build::ambuildempty);
    am.aminsert = Some(insert::aminsert);
    am.ambulkdelete = Some(vacuum::ambulkdelete);
    am.amvacuumcleanup = Some(vacuum::amvacuumcleanup);
    am.amcostestimate = Some(cost::amcostestimate);
    am.amoptions = Some(options::amoptions);
    am.ambuildphasename = Some(build::ambuildphasename);
    am.amvalidate = Some(amvalidate);
    am.ambeginscan = Some(scan::ambeginscan);
    am.amrescan = Some(scan::amrescan);
    am.amgettuple = Some(scan::amgettuple);
    am.amendscan = Some(scan::amendscan);
    am.into_pg_boxed()
}

#[pg_guard]
unsafe extern "C-unwind" fn amvalidate(_opclass: pg_sys::Oid) -> bool {
    true
}

/// The metric of the index's operator class, from its support function.
///
/// # Safety
/// `index` is an open index relation of this access method.
unsafe fn metric_of(index: pg_sys::Relation) -> Metric {
    let name = unsafe {
        let proc = pg_sys::index_getprocid(index, 1, 1);
        let name = pg_sys::get_func_name(proc);
        if name.is_null() {
            String::new()
        } else {
            std::ffi::CStr::from_ptr(name)
                .to_string_lossy()
                .into_owned()
        }
    };
    match name.as_str() {
        "cosine_distance" => Metric::Cosine,
        "negative_inner_product" => Metric::InnerProduct,
        "l2_distance" => Metric::L2,
        other => raise(
            PgSqlErrorCode::ERRCODE_INVALID_OBJECT_DEFINITION,
            "interest_ivf does not know this operator class",
            format!("Its support function 1 is \"{other}\"."),
            "Use interest.embedding_cosine_ops, interest.embedding_ip_ops or interest.embedding_l2_ops.",
        ),
    }
}

/// An indexed value as a slice (valid while the datum is).
///
/// # Safety
/// `datum` is a non-null interest.embedding.
unsafe fn embedding_values<'a>(datum: pg_sys::Datum) -> &'a [f32] {
    use pgrx::FromDatum;
    unsafe {
        crate::embedding_type::EmbeddingRef::from_polymorphic_datum(
            datum,
            false,
            pg_sys::InvalidOid,
        )
        .expect("not null")
        .as_slice()
    }
}

/// Whether the index's first INCLUDEd column (after its one key column)
/// is of type text: its entries then carry each row's text
/// (`keys::nearest_keys`). Otherwise included columns are accepted and not
/// stored (the index returns no columns: no index-only scans).
///
/// # Safety
/// `index` is an open index relation.
unsafe fn includes_text(index: pg_sys::Relation) -> bool {
    unsafe {
        let form = (*index).rd_index;
        if form.is_null() || (*form).indnatts < 2 || (*form).indnkeyatts != 1 {
            return false;
        }
        let att = (*(*index).rd_att).attrs.as_ptr().add(1);
        (*att).atttypid == pg_sys::TEXTOID
    }
}

/// The bytes a row's entry carries for its included text
/// (`pages::entry_key_bytes`): none when the index includes no text.
///
/// # Safety
/// `values` and `isnull` hold the index's columns for one row.
unsafe fn included_text(
    index: pg_sys::Relation,
    values: *const pg_sys::Datum,
    isnull: *const bool,
) -> Vec<u8> {
    unsafe {
        if !includes_text(index) {
            return pages::entry_key_bytes(None);
        }
        if *isnull.add(1) {
            return pages::entry_key_bytes(Some(None));
        }
        let datum = *values.add(1);
        // Sized before it is detoasted: a long text is left out unread.
        let raw = pg_sys::toast_raw_datum_size(datum) - pg_sys::VARHDRSZ;
        if raw > pages::MAX_ENTRY_KEY_BYTES {
            return pages::entry_key_bytes(Some(None));
        }
        let stored = datum.cast_mut_ptr::<pg_sys::varlena>();
        let text = pg_sys::pg_detoast_datum_packed(stored);
        let bytes = pages::entry_key_bytes(Some(Some(pgrx::varlena::varlena_to_byte_slice(text))));
        if text != stored {
            // (a build's callback runs in one memory context for every row)
            pg_sys::pfree(text.cast());
        }
        bytes
    }
}

fn corrupt(what: &str) -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_INDEX_CORRUPTED,
        format!("interest_ivf index is corrupted: {what}"),
        "A page of the index does not have the layout this library writes.",
        "REINDEX the index.",
    )
}

fn check_dims(index_dims: usize, value_dims: usize) {
    if index_dims != 0 && index_dims != value_dims {
        raise(
            PgSqlErrorCode::ERRCODE_DATA_EXCEPTION,
            format!("embedding has {value_dims} dimensions, the interest_ivf index has {index_dims}"),
            "Every embedding in an indexed column must have the index's dimensions.",
            "Give the column a fixed dimension, for example interest.embedding(384), or index a partial or expression index per dimension.",
        )
    }
}

/// Vectors are stored whole on 8 kB pages for the exact rerank.
pub const MAX_INDEXED_DIMENSIONS: usize = 2_000;

fn check_indexable_dims(dims: usize) {
    if dims > MAX_INDEXED_DIMENSIONS {
        raise(
            PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            format!(
                "interest_ivf indexes embeddings of at most {MAX_INDEXED_DIMENSIONS} dimensions"
            ),
            format!("The column holds embeddings of {dims} dimensions."),
            "Reduce the dimension, or order by an exact scan without the index.",
        )
    }
}

/// Threads for the build's k-means and encoding (plain Rust, no Postgres calls).
fn build_threads() -> usize {
    // SAFETY: reading an int GUC variable.
    let workers = unsafe { pg_sys::max_parallel_maintenance_workers }.max(0) as usize;
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    (workers + 1).min(cores).max(1)
}
