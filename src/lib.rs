//! pg_interest: in-database text embeddings, an embedding type with
//! similarity operators, dynamic user interests and recommendations.
//!
//! This crate is the Postgres layer: types, SQL functions, triggers,
//! settings and storage. The algorithms live in `crates/interest-core` and
//! are tested there without a server.

use pgrx::prelude::*;

// The embedding type, its operators, and the encoder.
mod embed;
mod embedding_type;
mod encoder_graph_worker;
mod ivf;
mod models;
mod operators;
// Plumbing.
mod errors;
mod gucs;
mod locks;
mod spi;
// User interests: attached tables, their bookkeeping, and the read side.
mod evaluate;
mod fold_worker;
mod ingest;
mod maintenance;
mod owner_read;
mod plan_shape;
mod privileges;
mod read;
mod read_only;
mod recommend;
mod sources;
mod sql_install;
mod store;
mod synthetic;
mod triggers;

::pgrx::pg_module_magic!();

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    // Only settings (and, when preloaded, the optional queue folder's
    // registration) here: ONNX Runtime and models load lazily in each
    // backend, so nothing is created in the postmaster or before fork.
    hide_backtraces();
    interest_core::interrupts::register(check_for_interrupts);
    gucs::init();
    ivf::register_options();
    fold_worker::register();
}

/// The core's long loops (ranking, diversity, evaluation) stop for
/// statement_timeout and pg_cancel_backend here.
fn check_for_interrupts() {
    pgrx::check_for_interrupts!();
}

/// pgrx puts a captured Rust backtrace into the DETAIL of every Postgres
/// error that crosses Rust code (an SPI statement that times out, say)
/// whenever RUST_BACKTRACE is set in the server's environment. Clients get
/// the error as PostgreSQL made it instead: std reads RUST_LIB_BACKTRACE
/// first, and caches the answer at the first capture, which is later.
fn hide_backtraces() {
    // SAFETY: _PG_init runs on the backend's (or postmaster's) only thread,
    // before ONNX Runtime or anything else could start another.
    unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    /// statement_timeout and pg_cancel_backend set these flags; the core's
    /// scoring loop must act on them (a catalog of 10 items is scored far
    /// faster than any timeout, so this sets them by hand).
    #[pg_test(error = "canceling statement due to user request")]
    fn a_pending_cancel_stops_ranking() {
        use interest_core::ranking::{rank, Catalog, RankWeights, UserSignals};
        let vectors = vec![Some(vec![1.0f32, 0.0]); 10];
        let zeros = vec![0.0; 10];
        let catalog = Catalog {
            vectors: &vectors,
            popularity: &zeros,
            freshness: &zeros,
            tie_order: None,
        };
        let user = UserSignals {
            interests: vec![(vec![1.0, 0.0], 1.0)],
            covisit: Default::default(),
            covisit_max: None,
        };
        // SAFETY: what a cancel request (SIGINT) sets in this backend.
        unsafe {
            pg_sys::QueryCancelPending = 1;
            pg_sys::InterruptPending = 1;
        }
        rank(&catalog, &user, |_| true, 5, &RankWeights::default());
        // Reached only when ranking ignored the request: withdraw it, so the
        // test fails here rather than being cancelled by a later check.
        unsafe {
            pg_sys::QueryCancelPending = 0;
            pg_sys::InterruptPending = 0;
        }
    }

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

    /// An interest_ivf index that INCLUDEs a text column gives, from its own
    /// pages, the texts of the rows an estimates-only scan returns, in its
    /// order (entries from the build and from later inserts alike, a row
    /// written twice once); one without the text, or whose nearest entries
    /// left a too-long text out, gives none (the caller reads rows instead).
    #[pg_test]
    fn index_keys_are_the_estimates_only_scans_rows() {
        use crate::embedding_type::Embedding;
        let vectors = |n: i64, seed: i64| -> Vec<Vec<f32>> {
            Spi::connect(|c| {
                c.select(
                    &format!("SELECT embedding FROM interest.synthetic_vectors({n}, 16, 30, 0.8, {seed})"),
                    None,
                    &[],
                )
                .unwrap()
                .map(|r| r.get::<Embedding>(1).unwrap().unwrap().into_vec())
                .collect()
            })
        };
        Spi::run("CREATE TABLE kt (k text, e interest.embedding(16))").unwrap();
        Spi::run("INSERT INTO kt SELECT 'built-' || id, embedding FROM interest.synthetic_vectors(1500, 16, 30, 0.8, 7)").unwrap();
        Spi::run("CREATE INDEX kt_keys ON kt USING interest_ivf (e) INCLUDE (k) WITH (lists = 20)")
            .unwrap();
        Spi::run("CREATE INDEX kt_plain ON kt USING interest_ivf (e) WITH (lists = 20)").unwrap();
        Spi::run("INSERT INTO kt SELECT 'inserted-' || id, embedding FROM interest.synthetic_vectors(500, 16, 30, 0.8, 8)").unwrap();
        Spi::run("DROP INDEX kt_plain").unwrap();
        // Rows deleted and written again: two entries each, one text.
        Spi::run("CREATE TEMP TABLE kt_again AS SELECT * FROM kt WHERE k LIKE '%0'").unwrap();
        Spi::run("DELETE FROM kt WHERE k LIKE '%0'").unwrap();
        Spi::run("INSERT INTO kt SELECT * FROM kt_again").unwrap();
        Spi::run("SET LOCAL enable_seqscan = off").unwrap();
        let oid = |name: &str| {
            Spi::get_one::<pg_sys::Oid>(&format!("SELECT '{name}'::regclass::oid"))
                .unwrap()
                .unwrap()
        };
        let index = oid("kt_keys");
        let mut inserted = 0;
        for q in vectors(8, 9) {
            let keys =
                crate::ivf::keys::nearest_keys(index, &q, 45).expect("the index carries keys");
            let rows: Vec<String> = crate::ivf::with_estimates_only(|| {
                Spi::connect(|c| {
                    c.select(
                        "SELECT k FROM kt ORDER BY e OPERATOR(interest.<=>) $1 LIMIT 45",
                        None,
                        &[Embedding::new(q.clone()).into()],
                    )
                    .unwrap()
                    .map(|r| r.get::<String>(1).unwrap().unwrap())
                    .collect()
                })
            });
            assert_eq!(keys.len(), 45);
            assert_eq!(keys, rows);
            inserted += keys.iter().filter(|k| k.starts_with("inserted-")).count();
        }
        assert!(inserted > 0, "no inserted entry among the neighbours");

        Spi::run("CREATE INDEX kt_plain ON kt USING interest_ivf (e) WITH (lists = 20)").unwrap();
        let q = vectors(1, 9).remove(0);
        assert_eq!(
            crate::ivf::keys::nearest_keys(oid("kt_plain"), &q, 10),
            None
        );
        // A text longer than an entry carries, on every row: left out.
        let long = "k".repeat(interest_core::keys::MAX_KEY_BYTES + 1);
        Spi::run(&format!("UPDATE kt SET k = '{long}' || k")).unwrap();
        assert_eq!(crate::ivf::keys::nearest_keys(index, &q, 10), None);
    }

    /// The triggers' SQL fast path queues item events with
    /// `events::sql_item_event_rule`; it must accept exactly what
    /// `EventRow::accept` accepts.
    #[pg_test]
    fn sql_event_rule_agrees_with_the_rust_rule() {
        use interest_core::events::{sql_item_event_rule, EventRow};
        let long = "k".repeat(interest_core::keys::MAX_KEY_BYTES + 1);
        let users = [None, Some("u"), Some(long.as_str())];
        let times = [None, Some(1.0), Some(f64::INFINITY), Some(f64::NAN)];
        let weights = [
            None,
            Some(0.0),
            Some(-3.0),
            Some(2.0),
            Some(f64::NEG_INFINITY),
            Some(f64::NAN),
            Some(1e10),
        ];
        let items = ["i", long.as_str()];
        let mut checked = 0;
        for (user, item) in users
            .iter()
            .flat_map(|u| items.iter().map(move |i| (*u, *i)))
        {
            for t in times {
                for weight in weights {
                    let row = EventRow {
                        user: user.map(str::to_string),
                        item: Some(item.into()),
                        t,
                        weight,
                        ..Default::default()
                    };
                    let sql = format!(
                        "SELECT {} FROM (SELECT $1::text, $2::text, $3::float8, $4::float8) s(u, i, t, w)",
                        sql_item_event_rule("u", "i", "t", "w")
                    );
                    let in_sql = Spi::get_one_with_args::<bool>(
                        &sql,
                        &[user.into(), item.into(), t.into(), weight.into()],
                    )
                    .unwrap()
                    .unwrap_or(false);
                    assert_eq!(
                        in_sql,
                        row.accept().is_some(),
                        "user {user:?}, item of {} bytes, t {t:?}, weight {weight:?}",
                        item.len()
                    );
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 168);
    }

    /// The default model is named once in Rust; the SQL default of embed()
    /// (a pgrx literal) and the built-in registry row must agree with it.
    #[pg_test]
    fn default_model_is_one_name() {
        let default = crate::models::DEFAULT_MODEL;
        let args = Spi::get_one::<String>(
            "SELECT pg_get_function_arguments('interest.embed(text, text)'::regprocedure)",
        )
        .unwrap()
        .unwrap();
        assert!(
            args.contains(&format!("'{default}'")),
            "embed's default: {args}"
        );
        let builtin =
            Spi::get_one::<String>("SELECT name FROM interest.models WHERE builtin").unwrap();
        assert_eq!(builtin.as_deref(), Some(default));
        let sql_default = Spi::get_one::<String>("SELECT interest._default_model()").unwrap();
        assert_eq!(sql_default.as_deref(), Some(default));
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
