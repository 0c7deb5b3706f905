//! The model registry (`interest.models`) and the per-backend cache of loaded
//! encoders. Nothing is loaded in `_PG_init` or in the postmaster: a backend
//! loads ONNX Runtime and a model on its first `embed` call and keeps them.

use crate::errors::{raise, raise_encoder_error};
use crate::gucs;
use interest_core::encoder::{self, Encoder, EncoderConfig, Pooling};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The model `interest.embed` and attached items tables use unless told
/// otherwise (its files are the built-in row of `interest.models`).
pub const DEFAULT_MODEL: &str = "all-MiniLM-L6-v2";

/// The default model's name, for SQL defaults (`attach_items`).
#[pg_extern(immutable, parallel_safe)]
fn _default_model() -> &'static str {
    DEFAULT_MODEL
}

/// Embeds texts with a registered model, in batches of
/// `interest.batch_size`: the bookkeeping's path (items, free-text events,
/// profiles).
pub(crate) fn embed_texts(model: &str, texts: &[&str]) -> Vec<Vec<f32>> {
    if texts.is_empty() {
        return Vec::new();
    }
    let entry = lookup(model);
    let max_tokens = gucs::MAX_TOKENS.get().max(2) as usize;
    let batch = gucs::BATCH_SIZE.get().max(1) as usize;
    with_encoder(&entry, |enc| {
        enc.embed_many(texts, max_tokens, batch, || {})
    })
    .unwrap_or_else(|e| raise_encoder_error(model, e))
}

/// One row of interest.models.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelEntry {
    pub name: String,
    pub dimensions: usize,
    pub model_file: String,
    pub tokenizer_file: String,
    pub model_sha256: String,
    pub tokenizer_sha256: String,
    pub max_tokens: usize,
    pub pooling: Pooling,
    pub normalize: bool,
}

struct Loaded {
    entry: ModelEntry,
    encoder: Encoder,
}

thread_local! {
    // Backends are single-threaded; ORT's own threads never touch this.
    static CACHE: RefCell<HashMap<String, Loaded>> = RefCell::new(HashMap::new());
}

fn expand(path: &str) -> PathBuf {
    // SAFETY: Postgres fills these buffers at start-up; we only read them.
    unsafe {
        if let Some(rest) = path.strip_prefix("$libdir") {
            let lib = std::ffi::CStr::from_ptr(
                std::ptr::addr_of!(pg_sys::pkglib_path) as *const std::ffi::c_char
            )
            .to_string_lossy()
            .into_owned();
            return PathBuf::from(format!("{lib}{rest}"));
        }
        if let Some(rest) = path.strip_prefix("$sharedir") {
            let mut buf = [0 as std::ffi::c_char; pg_sys::MAXPGPATH as usize];
            pg_sys::get_share_path(
                std::ptr::addr_of!(pg_sys::my_exec_path) as *const std::ffi::c_char,
                buf.as_mut_ptr(),
            );
            let share = std::ffi::CStr::from_ptr(buf.as_ptr())
                .to_string_lossy()
                .into_owned();
            return PathBuf::from(format!("{share}{rest}"));
        }
    }
    PathBuf::from(path)
}

/// The directories of interest.model_dir, expanded and canonicalised
/// (directories that do not exist are left out).
pub fn model_dirs() -> Vec<PathBuf> {
    gucs::string_setting(&gucs::MODEL_DIR)
        .split(':')
        .filter(|s| !s.trim().is_empty())
        .filter_map(|s| expand(s.trim()).canonicalize().ok())
        .collect()
}

/// Resolves a registry path: relative paths are looked up in each model
/// directory in turn; the result must lie inside one of them (after symlinks).
pub fn resolve_model_path(file: &str, what: &str) -> PathBuf {
    let dirs = model_dirs();
    let candidates: Vec<PathBuf> = if Path::new(file).is_absolute() {
        vec![PathBuf::from(file)]
    } else {
        dirs.iter().map(|d| d.join(file)).collect()
    };
    let shown = gucs::string_setting(&gucs::MODEL_DIR);
    for candidate in &candidates {
        if let Ok(real) = candidate.canonicalize() {
            if dirs.iter().any(|d| real.starts_with(d)) {
                return real;
            }
            raise(
                PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
                format!("{what} \"{file}\" is outside interest.model_dir"),
                format!("\"{}\" is not inside any of: {shown}", real.display()),
                "Put model files in a directory listed in interest.model_dir (a superuser setting).",
            );
        }
    }
    raise(
        PgSqlErrorCode::ERRCODE_UNDEFINED_FILE,
        format!("{what} \"{file}\" does not exist"),
        format!("Looked in interest.model_dir = '{shown}'."),
        "Install the model files (models/fetch_models.sh for the default model) or fix interest.model_dir.",
    )
}

pub fn lookup(name: &str) -> ModelEntry {
    let row = Spi::connect(|client| {
        let table = client.select(
            "SELECT dimensions, model_file, tokenizer_file, model_sha256, tokenizer_sha256, max_tokens, pooling, normalize \
             FROM interest.models WHERE name = $1",
            Some(1),
            &[name.into()],
        )?;
        if table.is_empty() {
            return Ok::<_, pgrx::spi::Error>(None);
        }
        let t = table.first();
        Ok(Some(ModelEntry {
            name: name.to_string(),
            dimensions: t.get::<i32>(1)?.unwrap_or(0) as usize,
            model_file: t.get::<String>(2)?.unwrap_or_default(),
            tokenizer_file: t.get::<String>(3)?.unwrap_or_default(),
            model_sha256: t.get::<String>(4)?.unwrap_or_default(),
            tokenizer_sha256: t.get::<String>(5)?.unwrap_or_default(),
            max_tokens: t.get::<i32>(6)?.unwrap_or(512) as usize,
            pooling: Pooling::parse(&t.get::<String>(7)?.unwrap_or_default()).unwrap_or(Pooling::Mean),
            normalize: t.get::<bool>(8)?.unwrap_or(true),
        }))
    })
    .unwrap_or_else(|e| {
        raise(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            "could not read interest.models",
            e.to_string(),
            "Is the pg_interest extension installed in this database?",
        )
    });
    row.unwrap_or_else(|| {
        let known: Vec<String> = Spi::connect(|c| {
            c.select("SELECT name FROM interest.models ORDER BY name", None, &[])
                .map(|t| {
                    t.filter_map(|r| r.get::<String>(1).ok().flatten())
                        .collect()
                })
        })
        .unwrap_or_default();
        raise(
            PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            format!("model \"{name}\" does not exist"),
            format!("Registered models: {}.", known.join(", ")),
            "See interest.models; a superuser adds models with interest.register_model().",
        )
    })
}

pub fn runtime() -> &'static interest_core::ort::environment::Environment {
    let library = expand(&gucs::string_setting(&gucs::ONNXRUNTIME_LIBRARY));
    encoder::runtime(&library).unwrap_or_else(|e| raise_encoder_error("", e))
}

fn verify_sha(path: &Path, expected: &str, model: &str) {
    let actual = encoder::file_sha256(path).unwrap_or_else(|e| raise_encoder_error(model, e));
    if !actual.eq_ignore_ascii_case(expected) {
        raise(
            PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
            format!("model \"{model}\": file \"{}\" has changed since it was registered", path.display()),
            format!("Expected sha256 {expected}, found {actual}."),
            "A model name stands for fixed files (embeddings in indexes and generated columns depend on it): restore the file, or register the new file under a new model name.",
        );
    }
}

/// Loads (or reuses) the encoder for `entry` and runs `f` with it.
pub fn with_encoder<T>(entry: &ModelEntry, f: impl FnOnce(&mut Encoder) -> T) -> T {
    let cached = CACHE.with(|c| c.borrow().get(&entry.name).map(|l| l.entry == *entry));
    if cached == Some(false) {
        // The registry row changed (model re-registered): drop the old session.
        CACHE.with(|c| c.borrow_mut().remove(&entry.name));
    }
    if cached != Some(true) {
        let env = runtime();
        let model_path = resolve_model_path(&entry.model_file, "model file");
        let tokenizer_path = resolve_model_path(&entry.tokenizer_file, "tokenizer file");
        verify_sha(&model_path, &entry.model_sha256, &entry.name);
        verify_sha(&tokenizer_path, &entry.tokenizer_sha256, &entry.name);
        let encoder = load_encoder(env, entry, model_path, tokenizer_path);
        if encoder.dimensions() != entry.dimensions {
            raise(
                PgSqlErrorCode::ERRCODE_DATA_EXCEPTION,
                format!(
                    "model \"{}\" produces {} dimensions, but is registered with {}",
                    entry.name,
                    encoder.dimensions(),
                    entry.dimensions
                ),
                "The model file does not match its registry row.",
                "Register the model again under a new name.",
            );
        }
        CACHE.with(|c| {
            c.borrow_mut().insert(
                entry.name.clone(),
                Loaded {
                    entry: entry.clone(),
                    encoder,
                },
            )
        });
    }
    CACHE.with(|c| {
        let mut cache = c.borrow_mut();
        let loaded = cache.get_mut(&entry.name).expect("model was just loaded");
        f(&mut loaded.encoder)
    })
}

/// Optimized encoder graphs live in `$PGDATA/pg_interest_cache`, named for
/// the model and the runtime library (path, size and modification time),
/// built by a short-lived worker (`encoder_graph_worker`).
fn graph_cache(model_sha256: &str) -> interest_core::encoder::GraphCache {
    let library = expand(&gucs::string_setting(&gucs::ONNXRUNTIME_LIBRARY));
    let stamp = std::fs::metadata(&library)
        .map(|m| format!("{}:{:?}", m.len(), m.modified().ok()))
        .unwrap_or_default();
    interest_core::encoder::GraphCache {
        dir: crate::encoder_graph_worker::cache_dir(),
        // verify_sha compared the file with it (in any case).
        model_sha256: model_sha256.to_ascii_lowercase(),
        runtime_tag: format!("{}|{stamp}", library.display()),
        runtime_library: library,
        build_elsewhere: Some(crate::encoder_graph_worker::build_in_worker),
    }
}

pub fn load_encoder(
    env: &interest_core::ort::environment::Environment,
    entry: &ModelEntry,
    model_path: PathBuf,
    tokenizer_path: PathBuf,
) -> Encoder {
    let config = EncoderConfig {
        model_path,
        tokenizer_path,
        pooling: entry.pooling,
        normalize: entry.normalize,
        model_max_tokens: entry.max_tokens,
        intra_op_threads: gucs::INTRA_OP_THREADS.get().max(1) as usize,
        graph_cache: Some(graph_cache(&entry.model_sha256)),
    };
    let encoder =
        Encoder::load(env, config).unwrap_or_else(|e| raise_encoder_error(&entry.name, e));
    if encoder.built_graph_here() {
        pgrx::log!(
            "pg_interest: this backend optimized the graph of model \"{}\" itself (no background worker could)",
            entry.name
        );
    }
    encoder
}

pub fn loaded_models() -> Vec<String> {
    CACHE.with(|c| c.borrow().keys().cloned().collect())
}
