//! Distances, arithmetic and aggregates over `interest.embedding`. Operator,
//! cast and aggregate definitions are in sql/type_objects.sql.

use crate::embedding_type::{check_same_dims, Embedding, EmbeddingRef};
use crate::errors::raise;
use interest_core::kernels;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

#[pg_extern(immutable, strict, parallel_safe)]
fn cosine_distance(a: EmbeddingRef<'_>, b: EmbeddingRef<'_>) -> f64 {
    check_same_dims(a.as_slice(), b.as_slice());
    kernels::cosine_distance(a.as_slice(), b.as_slice())
}

#[pg_extern(immutable, strict, parallel_safe)]
fn inner_product(a: EmbeddingRef<'_>, b: EmbeddingRef<'_>) -> f64 {
    check_same_dims(a.as_slice(), b.as_slice());
    kernels::dot(a.as_slice(), b.as_slice()) as f64
}

#[pg_extern(immutable, strict, parallel_safe)]
fn negative_inner_product(a: EmbeddingRef<'_>, b: EmbeddingRef<'_>) -> f64 {
    check_same_dims(a.as_slice(), b.as_slice());
    kernels::negative_inner_product(a.as_slice(), b.as_slice())
}

#[pg_extern(immutable, strict, parallel_safe)]
fn l2_distance(a: EmbeddingRef<'_>, b: EmbeddingRef<'_>) -> f64 {
    check_same_dims(a.as_slice(), b.as_slice());
    kernels::l2_distance(a.as_slice(), b.as_slice())
}

#[pg_extern(immutable, strict, parallel_safe)]
fn norm(a: EmbeddingRef<'_>) -> f64 {
    kernels::norm(a.as_slice())
}

#[pg_extern(immutable, strict, parallel_safe)]
fn dims(a: EmbeddingRef<'_>) -> i32 {
    a.dims() as i32
}

#[pg_extern(immutable, strict, parallel_safe)]
fn normalize(a: EmbeddingRef<'_>) -> Embedding {
    let mut v = a.as_slice().to_vec();
    kernels::normalize_in_place(&mut v);
    Embedding::new(v)
}

/// Same as `interest.normalize`, under pgvector's name. `normalize(x)` written
/// without a schema is SQL-standard syntax for Unicode normalisation, so the
/// grammar sends it to pg_catalog.normalize(text); this name has no such clash.
#[pg_extern(immutable, strict, parallel_safe)]
fn l2_normalize(a: EmbeddingRef<'_>) -> Embedding {
    normalize(a)
}

#[pg_extern(immutable, strict, parallel_safe)]
fn embedding_add(a: EmbeddingRef<'_>, b: EmbeddingRef<'_>) -> Embedding {
    check_same_dims(a.as_slice(), b.as_slice());
    Embedding::new(
        a.as_slice()
            .iter()
            .zip(b.as_slice())
            .map(|(x, y)| x + y)
            .collect(),
    )
}

#[pg_extern(immutable, strict, parallel_safe)]
fn embedding_sub(a: EmbeddingRef<'_>, b: EmbeddingRef<'_>) -> Embedding {
    check_same_dims(a.as_slice(), b.as_slice());
    Embedding::new(
        a.as_slice()
            .iter()
            .zip(b.as_slice())
            .map(|(x, y)| x - y)
            .collect(),
    )
}

/// Scalar multiple; used for weighted sums and moving averages.
#[pg_extern(immutable, strict, parallel_safe)]
fn embedding_mul(a: EmbeddingRef<'_>, s: f64) -> Embedding {
    if !s.is_finite() {
        raise(
            PgSqlErrorCode::ERRCODE_DATA_EXCEPTION,
            "cannot multiply an embedding by NaN or infinity",
            format!("The factor is {s}."),
            "Use a finite factor.",
        );
    }
    let out: Vec<f32> = a
        .as_slice()
        .iter()
        .map(|x| (*x as f64 * s) as f32)
        .collect();
    if out.iter().any(|x| !x.is_finite()) {
        raise(
            PgSqlErrorCode::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
            "embedding element out of range after multiplication",
            format!("The factor {s} overflows float4."),
            "Use a smaller factor, or normalize the embedding first.",
        );
    }
    Embedding::new(out)
}

#[pg_extern(immutable, strict, parallel_safe)]
fn scalar_mul_embedding(s: f64, a: EmbeddingRef<'_>) -> Embedding {
    embedding_mul(a, s)
}

// ---- aggregates: state is float8[] = {count, sum_1, ..., sum_n} -------------

#[pg_extern(immutable, strict, parallel_safe)]
fn embedding_accum(state: Vec<f64>, e: EmbeddingRef<'_>) -> Vec<f64> {
    let mut state = state;
    if state.len() <= 1 {
        state = vec![0.0; e.dims() + 1];
    } else if state.len() != e.dims() + 1 {
        crate::errors::dimension_mismatch(state.len() - 1, e.dims());
    }
    state[0] += 1.0;
    state[1..]
        .iter_mut()
        .zip(e.as_slice())
        .for_each(|(s, x)| *s += *x as f64);
    state
}

#[pg_extern(immutable, strict, parallel_safe)]
fn embedding_combine(a: Vec<f64>, b: Vec<f64>) -> Vec<f64> {
    if a.len() <= 1 {
        return b;
    }
    if b.len() <= 1 {
        return a;
    }
    if a.len() != b.len() {
        crate::errors::dimension_mismatch(a.len() - 1, b.len() - 1);
    }
    a.iter().zip(&b).map(|(x, y)| x + y).collect()
}

fn finish(state: &[f64], divide: bool) -> Option<Embedding> {
    if state.len() <= 1 || state[0] == 0.0 {
        return None;
    }
    let count = if divide { state[0] } else { 1.0 };
    let values: Vec<f32> = state[1..].iter().map(|s| (s / count) as f32).collect();
    if values.iter().any(|v| !v.is_finite()) {
        raise(
            PgSqlErrorCode::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
            "embedding sum out of range",
            "An element of the sum does not fit in float4.",
            "Normalize the embeddings before summing them, or use avg().",
        );
    }
    Some(Embedding::new(values))
}

#[pg_extern(immutable, strict, parallel_safe)]
fn embedding_avg_final(state: Vec<f64>) -> Option<Embedding> {
    finish(&state, true)
}

#[pg_extern(immutable, strict, parallel_safe)]
fn embedding_sum_final(state: Vec<f64>) -> Option<Embedding> {
    finish(&state, false)
}
