//! `interest.embed` and model registration.

use crate::embedding_type::Embedding;
use crate::errors::raise;
use crate::gucs;
use crate::models::{self, ModelEntry, DEFAULT_MODEL};
use interest_core::encoder::{self, Pooling};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

fn max_tokens() -> usize {
    gucs::MAX_TOKENS.get().max(2) as usize
}

/// IMMUTABLE on purpose: a model name stands for fixed files (their sha256 is
/// checked on load), so the same text always gives the same embedding and the
/// function can feed generated columns and expression indexes.
#[pg_extern(immutable, strict, parallel_unsafe, cost = 10000)]
fn embed(text: &str, model: default!(&str, "'all-MiniLM-L6-v2'")) -> Embedding {
    let entry = models::lookup(model);
    let mut out = models::with_encoder(&entry, |enc| enc.embed(&[text], max_tokens()))
        .unwrap_or_else(|e| crate::errors::raise_encoder_error(model, e));
    Embedding::new(out.pop().expect("one text in, one embedding out"))
}

/// Embeds an array in batches of interest.batch_size (sorted by length, each
/// padded to its longest text). NULL elements give NULL embeddings.
#[pg_extern(name = "embed", immutable, strict, parallel_unsafe, cost = 10000)]
fn embed_array(
    texts: Array<&str>,
    model: default!(&str, "'all-MiniLM-L6-v2'"),
) -> Vec<Option<Embedding>> {
    let entry = models::lookup(model);
    let items: Vec<Option<&str>> = texts.iter().collect();
    let present: Vec<&str> = items.iter().flatten().copied().collect();
    let batch = gucs::BATCH_SIZE.get().max(1) as usize;
    let vectors = models::with_encoder(&entry, |enc| {
        enc.embed_many(&present, max_tokens(), batch, || {
            pgrx::check_for_interrupts!();
        })
    })
    .unwrap_or_else(|e| crate::errors::raise_encoder_error(model, e));
    let mut vectors = vectors.into_iter();
    items
        .iter()
        .map(|t| t.map(|_| Embedding::new(vectors.next().expect("one embedding per text"))))
        .collect()
}

fn require_superuser(what: &str) {
    // SAFETY: reads the current role's attributes.
    if !unsafe { pg_sys::superuser() } {
        raise(
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("permission denied to {what}"),
            "Model files are read by the server process, so only superusers may name them.",
            "Ask a superuser to run it.",
        );
    }
}

/// Registers a BERT-family ONNX encoder. The files must lie in a directory of
/// interest.model_dir; they are hashed, loaded and run once before the row is
/// written, so a registered model is known to work.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, interest, pg_temp)]
fn register_model(
    name: &str,
    model_file: &str,
    tokenizer_file: &str,
    pooling: default!(&str, "'mean'"),
    l2_normalize: default!(bool, true),
    max_tokens: default!(i32, 512),
) -> i32 {
    require_superuser("register a model");
    crate::read_only::require_writable("interest.register_model()");
    let valid_name = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if !valid_name {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("invalid model name \"{name}\""),
            "A model name has 1 to 63 characters: letters, digits, '.', '_' or '-'.",
            "Choose a name such as 'my-model-v2'.",
        );
    }
    let pooling = Pooling::parse(pooling).unwrap_or_else(|| {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("unknown pooling \"{pooling}\""),
            "pooling must be 'mean' or 'cls'.",
            "sentence-transformers models use 'mean'.",
        )
    });
    if !(2..=8192).contains(&max_tokens) {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("max_tokens {max_tokens} is out of range"),
            "max_tokens is the model's longest input, from 2 to 8192 tokens.",
            "Use the model's max_position_embeddings (512 for BERT).",
        );
    }
    let exists = Spi::get_one_with_args::<bool>(
        "SELECT EXISTS (SELECT 1 FROM interest.models WHERE name = $1)",
        &[name.into()],
    )
    .ok()
    .flatten()
    .unwrap_or(false);
    if exists {
        raise(
            PgSqlErrorCode::ERRCODE_DUPLICATE_OBJECT,
            format!("model \"{name}\" already exists"),
            "A model name stands for fixed files, so it cannot be registered twice.",
            "Register the new files under a new name, or drop the old one with interest.unregister_model().",
        );
    }
    let model_path = models::resolve_model_path(model_file, "model file");
    let tokenizer_path = models::resolve_model_path(tokenizer_file, "tokenizer file");
    let model_sha = encoder::file_sha256(&model_path)
        .unwrap_or_else(|e| crate::errors::raise_encoder_error(name, e));
    let tokenizer_sha = encoder::file_sha256(&tokenizer_path)
        .unwrap_or_else(|e| crate::errors::raise_encoder_error(name, e));
    let mut entry = ModelEntry {
        name: name.to_string(),
        dimensions: 0,
        model_file: model_path.display().to_string(),
        tokenizer_file: tokenizer_path.display().to_string(),
        model_sha256: model_sha,
        tokenizer_sha256: tokenizer_sha,
        max_tokens: max_tokens as usize,
        pooling,
        normalize: l2_normalize,
    };
    let env = models::runtime();
    let encoder = models::load_encoder(env, &entry, model_path, tokenizer_path);
    entry.dimensions = encoder.dimensions();
    if entry.dimensions == 0 || entry.dimensions > interest_core::MAX_DIMENSIONS {
        raise(
            PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
            format!("model \"{name}\" produces {} dimensions", entry.dimensions),
            format!(
                "Embeddings have 1 to {} dimensions.",
                interest_core::MAX_DIMENSIONS
            ),
            "Use a sentence encoder with a smaller output.",
        );
    }
    Spi::run_with_args(
        "INSERT INTO interest.models (name, dimensions, model_file, tokenizer_file, model_sha256, tokenizer_sha256, max_tokens, pooling, normalize) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[
            entry.name.as_str().into(),
            (entry.dimensions as i32).into(),
            entry.model_file.as_str().into(),
            entry.tokenizer_file.as_str().into(),
            entry.model_sha256.as_str().into(),
            entry.tokenizer_sha256.as_str().into(),
            (entry.max_tokens as i32).into(),
            if pooling == Pooling::Mean { "mean" } else { "cls" }.into(),
            l2_normalize.into(),
        ],
    )
    .unwrap_or_else(|e| {
        raise(PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, "could not write interest.models", e.to_string(), "")
    });
    entry.dimensions as i32
}

#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, interest, pg_temp)]
fn unregister_model(name: &str) -> bool {
    require_superuser("unregister a model");
    crate::read_only::require_writable("interest.unregister_model()");
    if name == DEFAULT_MODEL {
        raise(
            PgSqlErrorCode::ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST,
            format!("cannot unregister the default model \"{name}\""),
            "interest.embed(text) uses it when no model is named.",
            "Drop the extension to remove it.",
        );
    }
    Spi::get_one_with_args::<bool>(
        "WITH d AS (DELETE FROM interest.models WHERE name = $1 RETURNING 1) SELECT EXISTS (SELECT 1 FROM d)",
        &[name.into()],
    )
    .ok()
    .flatten()
    .unwrap_or(false)
}

/// Models this backend has loaded, with the ONNX Runtime state.
#[pg_extern(volatile, parallel_unsafe)]
fn loaded_models() -> Vec<String> {
    let mut names = models::loaded_models();
    names.sort();
    names
}
