//! The rows behind `interest.synthetic_items` / `interest.synthetic_events`
//! (sql/api.sql turns epochs into timestamps): the core's
//! deterministic synthetic shop (`interest_core::synthetic`) as rows, for
//! tests, benchmarks and trying pg_interest without data of one's own.

use crate::errors::raise;
use interest_core::synthetic::{generate, SyntheticConfig};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

/// Largest sizes accepted: the whole set is generated in memory.
const MAX_USERS: i32 = 200_000;
const MAX_ITEMS: i32 = 1_000_000;

/// An argument outside the range the generators accept.
fn out_of_range(what: &str, got: String, hint: &str) -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        format!("{what} is out of range"),
        format!("Got {got}."),
        hint,
    )
}

fn config(seed: i64, users: i32, items: i32, years: f64) -> SyntheticConfig {
    if !(1..=MAX_USERS).contains(&users) {
        out_of_range(
            "users",
            users.to_string(),
            "Use between 1 and 200000 users.",
        );
    }
    if !(1..=MAX_ITEMS).contains(&items) {
        out_of_range(
            "items",
            items.to_string(),
            "Use between 1 and 1000000 items.",
        );
    }
    if !(years.is_finite() && (0.1..=50.0).contains(&years)) {
        out_of_range("years", years.to_string(), "Use between 0.1 and 50 years.");
    }
    SyntheticConfig {
        seed: seed as u64,
        users: users as usize,
        items: items as usize,
        years,
        ..SyntheticConfig::default()
    }
}

#[pg_extern(immutable, parallel_safe)]
fn _synthetic_items(
    seed: i64,
    users: i32,
    items: i32,
    years: f64,
) -> TableIterator<
    'static,
    (
        name!(item_id, i32),
        name!(title, String),
        name!(topic, i32),
        name!(created_epoch, f64),
    ),
> {
    let (items, _) = generate(&config(seed, users, items, years));
    TableIterator::new(
        items
            .into_iter()
            .map(|i| (i.id as i32 + 1, i.text, i.topic as i32, i.created)),
    )
}

#[pg_extern(immutable, parallel_safe)]
fn _synthetic_events(
    seed: i64,
    users: i32,
    items: i32,
    years: f64,
) -> TableIterator<
    'static,
    (
        name!(user_id, i32),
        name!(item_id, i32),
        name!(kind, String),
        name!(at_epoch, f64),
    ),
> {
    let (_, events) = generate(&config(seed, users, items, years));
    TableIterator::new(events.into_iter().map(|e| {
        (
            e.user as i32 + 1,
            e.item as i32 + 1,
            e.kind.to_string(),
            e.t,
        )
    }))
}

/// Rows of `interest.synthetic_vectors`: clustered unit vectors for index
/// tests and benchmarks (generated as they are read).
#[pg_extern(immutable, parallel_safe)]
fn synthetic_vectors(
    rows: i64,
    dims: default!(i32, 384),
    centres: default!(i32, 1000),
    noise: default!(f64, 1.0),
    seed: default!(i64, 1),
) -> TableIterator<
    'static,
    (
        name!(id, i64),
        name!(embedding, crate::embedding_type::Embedding),
    ),
> {
    if !(0..=100_000_000).contains(&rows) {
        out_of_range(
            "rows",
            rows.to_string(),
            "Use between 0 and 100000000 rows.",
        );
    }
    if !(1..=interest_core::MAX_DIMENSIONS as i32).contains(&dims) {
        out_of_range(
            "dims",
            dims.to_string(),
            "Use between 1 and 16000 dimensions.",
        );
    }
    if !(1..=1_000_000).contains(&centres) {
        out_of_range(
            "centres",
            centres.to_string(),
            "Use between 1 and 1000000 centres.",
        );
    }
    if !(noise.is_finite() && (0.0..=100.0).contains(&noise)) {
        out_of_range(
            "noise",
            noise.to_string(),
            "Use a noise length between 0 and 100.",
        );
    }
    let stream = interest_core::synthetic::ClusteredVectors::new(
        dims as usize,
        centres as usize,
        noise,
        seed as u64,
    );
    TableIterator::new(
        stream
            .take(rows as usize)
            .enumerate()
            .map(|(i, v)| (i as i64 + 1, crate::embedding_type::Embedding::new(v))),
    )
}
