//! pg_interest: in-database text embeddings, an embedding type with
//! similarity operators, and (later) dynamic user interests.
//!
//! This crate is the thin Postgres layer; the algorithms live in
//! `crates/interest-core` and are tested there without a server.

use pgrx::prelude::*;

mod covisit;
mod embed;
mod embedding_type;
mod errors;
mod fold_worker;
mod gucs;
mod interests;
mod models;
mod operators;
mod recommend;

::pgrx::pg_module_magic!();

// The type and its I/O functions must exist before any function that uses it.
pgrx::extension_sql_file!("../sql/bootstrap.sql", name = "bootstrap", bootstrap);
// Bookkeeping tables and attach/detach (PL/pgSQL; calls into src/interests.rs).
pgrx::extension_sql_file!("../sql/interests.sql", name = "interests");
// Operators, casts, aggregates, the model registry and COMMENTs: after everything.
pgrx::extension_sql_file!("../sql/finalize.sql", name = "finalize", finalize);

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    // Only settings (and, when preloaded, the optional queue folder's
    // registration) here: ONNX Runtime and models load lazily in each
    // backend, so nothing is created in the postmaster or before fork.
    gucs::init();
    fold_worker::register();
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    #[pg_test]
    fn embedding_round_trips_through_text() {
        let out = Spi::get_one::<String>("SELECT '[1, 2.5,-3]'::interest.embedding::text").unwrap();
        assert_eq!(out.as_deref(), Some("[1,2.5,-3]"));
    }

    #[pg_test]
    fn cosine_operator_orders_by_angle() {
        let d = Spi::get_one::<f64>(
            "SELECT '[1,0]'::interest.embedding OPERATOR(interest.<=>) '[0,3]'",
        )
        .unwrap()
        .unwrap();
        assert!((d - 1.0).abs() < 1e-9);
    }

    #[pg_test]
    fn embedding_passes_through_spi_arguments() {
        let e = crate::embedding_type::Embedding::new(vec![3.0, 4.0]);
        let n = Spi::get_one_with_args::<f64>("SELECT interest.norm($1)", &[e.into()]).unwrap();
        assert_eq!(n, Some(5.0));
        let back =
            Spi::get_one::<crate::embedding_type::Embedding>("SELECT '[1,2]'::interest.embedding")
                .unwrap();
        assert_eq!(
            back,
            Some(crate::embedding_type::Embedding::new(vec![1.0, 2.0]))
        );
    }

    #[pg_test]
    fn embed_gives_unit_vectors_of_model_dimension() {
        let (dims, norm) = Spi::get_two::<i32, f64>(
            "SELECT interest.dims(e), interest.norm(e) FROM (SELECT interest.embed('hello world') e) s",
        )
        .unwrap();
        assert_eq!(dims, Some(384));
        assert!((norm.unwrap() - 1.0).abs() < 1e-4);
    }
}

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
