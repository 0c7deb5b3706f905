//! The sentence encoder: a BERT-family ONNX model run through ONNX Runtime,
//! with a Hugging Face `tokenizer.json`.
//!
//! Nothing here knows about Postgres. The caller decides when to load (lazily,
//! once per process) and turns `EncoderError`s into SQL errors.

use crate::pooling;
use crate::signal_mask::with_signals_blocked;
use ndarray::Array2;
use once_cell::sync::OnceCell;
use ort::environment::Environment;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::TensorRef;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use tokenizers::{Tokenizer, TruncationParams};

/// What went wrong, sorted by who can fix it.
#[derive(Debug, Clone, PartialEq)]
pub enum EncoderError {
    /// ONNX Runtime's shared library could not be loaded (missing, wrong version).
    Runtime(String),
    /// A model or tokenizer file could not be read.
    FileMissing { path: PathBuf, message: String },
    /// The file was read but is not a usable model or tokenizer.
    BadModel { path: PathBuf, message: String },
    /// The model's inputs or outputs are not those of a BERT-style encoder.
    UnsupportedSignature(String),
    /// Inference or tokenisation failed on this input.
    Inference(String),
}

impl std::fmt::Display for EncoderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EncoderError::Runtime(m) => write!(f, "could not load ONNX Runtime: {m}"),
            EncoderError::FileMissing { path, message } => {
                write!(f, "could not read \"{}\": {message}", path.display())
            }
            EncoderError::BadModel { path, message } => write!(
                f,
                "\"{}\" is not a usable model file: {message}",
                path.display()
            ),
            EncoderError::UnsupportedSignature(m) => write!(f, "unsupported model signature: {m}"),
            EncoderError::Inference(m) => write!(f, "embedding failed: {m}"),
        }
    }
}

impl std::error::Error for EncoderError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    Mean,
    Cls,
}

impl Pooling {
    pub fn parse(s: &str) -> Option<Pooling> {
        match s {
            "mean" => Some(Pooling::Mean),
            "cls" => Some(Pooling::Cls),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct EncoderConfig {
    pub model_path: PathBuf,
    pub tokenizer_path: PathBuf,
    pub pooling: Pooling,
    pub normalize: bool,
    /// The model's own limit on sequence length (position embeddings).
    pub model_max_tokens: usize,
    pub intra_op_threads: usize,
    /// Where the optimized graph is kept and shared (`encoder_cache`);
    /// None: each session optimizes the model for itself.
    pub graph_cache: Option<GraphCache>,
}

#[derive(Debug, Clone)]
pub struct GraphCache {
    pub dir: PathBuf,
    /// The model file's sha256 (hex), as the caller verified it; with the
    /// runtime tag it names the cache file.
    pub model_sha256: String,
    /// Names the ONNX Runtime build, so another runtime gets its own file.
    pub runtime_tag: String,
    /// The runtime library, for a process that builds the file for us.
    pub runtime_library: PathBuf,
    /// Runs `encoder_cache::build_requested(file)` in another process and
    /// waits for it; false when no such process could run. Optimizing leaves
    /// the process that does it with ~100 MB of heap it never returns, so a
    /// short-lived process does it and the backend only maps the result.
    pub build_elsewhere: Option<fn(&Path) -> bool>,
}

/// The session an encoder runs: its own, or one over the shared cache file.
enum RunSession {
    Owned(Session),
    Mapped(crate::encoder_cache::MappedSession),
}

impl RunSession {
    fn session(&self) -> &Session {
        match self {
            RunSession::Owned(s) => s,
            RunSession::Mapped(m) => &m.session,
        }
    }
}

// once_cell for `get_or_try_init` (not stable in std): a failed load leaves
// the cell empty, so a later call can try again.
static ENVIRONMENT: OnceCell<Environment> = OnceCell::new();

/// Token ids, attention mask and token type ids of one text.
type Tokens = (Vec<i64>, Vec<i64>, Vec<i64>);

/// Loads ONNX Runtime from `library` and creates the process's one environment.
///
/// A failure leaves nothing behind, so a later call (after the administrator
/// fixed the path) can succeed. Once loaded, the library stays for the life of
/// the process; a different `library` path is then ignored.
pub fn runtime(library: &Path) -> Result<&'static Environment, EncoderError> {
    ENVIRONMENT.get_or_try_init(|| {
        if !library.is_file() {
            return Err(EncoderError::Runtime(format!(
                "no file at \"{}\"",
                library.display()
            )));
        }
        let builder = ort::init_from(library).map_err(|e| EncoderError::Runtime(e.to_string()))?;
        with_signals_blocked(|| builder.with_name("pg_interest").build())
            .map_err(|e| EncoderError::Runtime(e.to_string()))
    })
}

/// The fields of a Hugging Face `config.json` that bound what the encoder may do.
#[derive(Debug, Deserialize)]
struct ModelConfigFile {
    max_position_embeddings: Option<usize>,
}

/// The model's own sequence limit from the `config.json` beside the model,
/// when there is one: a longer input would index past the position table.
pub fn config_max_positions(model_path: &Path) -> Option<usize> {
    let text = std::fs::read_to_string(model_path.parent()?.join("config.json")).ok()?;
    serde_json::from_str::<ModelConfigFile>(&text)
        .ok()?
        .max_position_embeddings
}

pub fn runtime_loaded() -> bool {
    ENVIRONMENT.get().is_some()
}

/// sha256 of a file, hex-encoded; used to pin model files.
pub fn file_sha256(path: &Path) -> Result<String, EncoderError> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|e| EncoderError::FileMissing {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| EncoderError::FileMissing {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

pub struct Encoder {
    session: RunSession,
    tokenizer: Tokenizer,
    config: EncoderConfig,
    has_token_type_ids: bool,
    output_name: String,
    dimensions: usize,
    pad_id: i64,
    truncation: usize,
    /// This process optimized the shared graph file itself (no other
    /// process could build it for this load).
    built_graph_here: bool,
}

impl Encoder {
    pub fn load(env: &Environment, config: EncoderConfig) -> Result<Encoder, EncoderError> {
        let mut tokenizer = Tokenizer::from_file(&config.tokenizer_path).map_err(|e| {
            if config.tokenizer_path.is_file() {
                EncoderError::BadModel {
                    path: config.tokenizer_path.clone(),
                    message: e.to_string(),
                }
            } else {
                EncoderError::FileMissing {
                    path: config.tokenizer_path.clone(),
                    message: e.to_string(),
                }
            }
        })?;
        // The shipped tokenizer.json pads every input to a fixed length; we pad
        // per batch ourselves, to the longest input only.
        let pad_id = tokenizer
            .get_padding()
            .map(|p| p.pad_id as i64)
            .unwrap_or(0);
        tokenizer.with_padding(None);

        let read_model = || {
            std::fs::read(&config.model_path).map_err(|e| EncoderError::FileMissing {
                path: config.model_path.clone(),
                message: e.to_string(),
            })
        };
        let bad_model = |e: ort::Error| EncoderError::BadModel {
            path: config.model_path.clone(),
            message: e.to_string(),
        };
        let threads = config.intra_op_threads.max(1);
        let base = |env: &Environment| session_builder(env, threads);
        // A backend that maps the saved graph never reads the model's bytes.
        let cache_file = match config.graph_cache.as_ref() {
            None => None,
            Some(cache) => {
                let file = crate::encoder_cache::cache_file_of(
                    &cache.dir,
                    &cache.model_sha256,
                    &cache.runtime_tag,
                );
                if !file.is_file() {
                    if let Some(build_elsewhere) = cache.build_elsewhere {
                        // Outside with_signals_blocked: the wait for the other
                        // process needs this thread's signals.
                        let request = crate::encoder_cache::BuildRequest {
                            model_path: config.model_path.clone(),
                            runtime_library: cache.runtime_library.clone(),
                            runtime_tag: cache.runtime_tag.clone(),
                            intra_op_threads: threads,
                        };
                        if request.write(&file).is_ok() {
                            build_elsewhere(&file);
                        }
                    }
                }
                Some(file)
            }
        };
        let mut built_graph_here = false;
        let mut mapped = None;
        if let Some(file) = &cache_file {
            use crate::encoder_cache;
            if let (false, Some(cache)) = (file.is_file(), config.graph_cache.as_ref()) {
                // No other process built it: this one does.
                let model_bytes = read_model()?;
                built_graph_here = with_signals_blocked(|| {
                    encoder_cache::build_graph(
                        || Ok(env),
                        &model_bytes,
                        file,
                        &cache.runtime_tag,
                        threads,
                    )
                    .is_ok()
                });
            }
            match with_signals_blocked(|| encoder_cache::open(env, base, file)) {
                Ok(session) => mapped = Some(RunSession::Mapped(session)),
                Err(_) if file.is_file() => {
                    // Damaged or from another runtime: the next load rebuilds it.
                    let _ = std::fs::remove_file(file);
                }
                Err(_) => {}
            }
        }
        let session = match mapped {
            Some(session) => session,
            None => {
                // The graph ONNX Runtime optimizes: int8 weights kept int8
                // when the model has them.
                let model_bytes = read_model()?;
                let owned = |bytes: &[u8]| {
                    base(env)?
                        .with_optimization_level(GraphOptimizationLevel::Level3)?
                        .commit_from_memory(bytes)
                };
                with_signals_blocked(|| {
                    match crate::int8_weights::keep_int8_weights(&model_bytes) {
                        Some((kept, _)) => owned(&kept).or_else(|_| owned(&model_bytes)),
                        None => owned(&model_bytes),
                    }
                })
                .map(RunSession::Owned)
                .map_err(bad_model)?
            }
        };
        // Buffers of the build or of an optimizing session are gone.
        release_free_heap();

        let input_names: Vec<String> = session
            .session()
            .inputs()
            .iter()
            .map(|i| i.name().to_string())
            .collect();
        for required in ["input_ids", "attention_mask"] {
            if !input_names.iter().any(|n| n == required) {
                return Err(EncoderError::UnsupportedSignature(format!(
                    "the model has no input \"{required}\" (its inputs are {input_names:?})"
                )));
            }
        }
        if let Some(extra) = input_names
            .iter()
            .find(|n| !["input_ids", "attention_mask", "token_type_ids"].contains(&n.as_str()))
        {
            return Err(EncoderError::UnsupportedSignature(format!(
                "the model has input \"{extra}\"; a BERT-style encoder takes only input_ids, attention_mask and token_type_ids"
            )));
        }
        let has_token_type_ids = input_names.iter().any(|n| n == "token_type_ids");
        let output_name = session
            .session()
            .outputs()
            .first()
            .map(|o| o.name().to_string())
            .ok_or_else(|| EncoderError::UnsupportedSignature("the model has no outputs".into()))?;

        let mut config = config;
        if let Some(limit) = config_max_positions(&config.model_path) {
            config.model_max_tokens = config.model_max_tokens.min(limit);
        }
        let truncation = config.model_max_tokens;
        let mut encoder = Encoder {
            session,
            tokenizer,
            config,
            has_token_type_ids,
            output_name,
            dimensions: 0,
            pad_id,
            truncation: 0,
            built_graph_here,
        };
        encoder.set_truncation(truncation)?;
        // One probe run tells the output dimension and proves the graph runs.
        let probe = encoder.embed(&["pg_interest"], truncation)?;
        encoder.dimensions = probe[0].len();
        Ok(encoder)
    }

    /// Whether this load optimized the shared graph file in this process.
    pub fn built_graph_here(&self) -> bool {
        self.built_graph_here
    }

    pub fn dimensions(&self) -> usize {
        self.dimensions
    }

    fn set_truncation(&mut self, max_tokens: usize) -> Result<(), EncoderError> {
        let max_tokens = max_tokens.clamp(2, self.config.model_max_tokens.max(2));
        if max_tokens != self.truncation {
            self.tokenizer
                .with_truncation(Some(TruncationParams {
                    max_length: max_tokens,
                    ..Default::default()
                }))
                .map_err(|e| EncoderError::Inference(e.to_string()))?;
            self.truncation = max_tokens;
        }
        Ok(())
    }

    /// Token ids, attention mask and type ids of one text, unpadded.
    fn tokenize(&self, text: &str) -> Result<Tokens, EncoderError> {
        let enc = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| EncoderError::Inference(e.to_string()))?;
        let ids = enc.get_ids().iter().map(|&x| x as i64).collect();
        let mask = enc.get_attention_mask().iter().map(|&x| x as i64).collect();
        let types = enc.get_type_ids().iter().map(|&x| x as i64).collect();
        Ok((ids, mask, types))
    }

    /// Embeds one batch in a single run, padded to its longest text.
    pub fn embed(
        &mut self,
        texts: &[&str],
        max_tokens: usize,
    ) -> Result<Vec<Vec<f32>>, EncoderError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        self.set_truncation(max_tokens)?;
        let tokenized = texts
            .iter()
            .map(|t| self.tokenize(t))
            .collect::<Result<Vec<_>, _>>()?;
        let refs: Vec<&Tokens> = tokenized.iter().collect();
        let vectors = self.run_batch(&refs);
        release_free_heap();
        vectors
    }

    /// One inference call over already tokenized texts, padded to the longest.
    fn run_batch(&mut self, tokenized: &[&Tokens]) -> Result<Vec<Vec<f32>>, EncoderError> {
        let batch = tokenized.len();
        let seq = tokenized
            .iter()
            .map(|t| t.0.len())
            .max()
            .unwrap_or(1)
            .max(1);
        let mut ids = Array2::<i64>::from_elem((batch, seq), self.pad_id);
        let mut mask = Array2::<i64>::zeros((batch, seq));
        let mut types = Array2::<i64>::zeros((batch, seq));
        for (row, (i, m, t)) in tokenized.iter().map(|t| (&t.0, &t.1, &t.2)).enumerate() {
            for col in 0..i.len() {
                ids[[row, col]] = i[col];
                mask[[row, col]] = m[col];
                types[[row, col]] = t[col];
            }
        }
        let run_err = |e: ort::Error| EncoderError::Inference(e.to_string());
        let mut inputs = vec![
            (
                "input_ids",
                TensorRef::from_array_view(&ids)
                    .map_err(run_err)?
                    .into_dyn(),
            ),
            (
                "attention_mask",
                TensorRef::from_array_view(&mask)
                    .map_err(run_err)?
                    .into_dyn(),
            ),
        ];
        if self.has_token_type_ids {
            inputs.push((
                "token_type_ids",
                TensorRef::from_array_view(&types)
                    .map_err(run_err)?
                    .into_dyn(),
            ));
        }
        let outputs = match &mut self.session {
            RunSession::Owned(s) => s.run(inputs),
            RunSession::Mapped(m) => m.session.run(inputs),
        }
        .map_err(run_err)?;
        let (shape, data) = outputs[self.output_name.as_str()]
            .try_extract_tensor::<f32>()
            .map_err(run_err)?;
        let shape: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
        let mask_flat: Vec<i64> = mask.iter().copied().collect();
        match shape.as_slice() {
            [b, s, d] if *b == batch && *s == seq => Ok(match self.config.pooling {
                Pooling::Mean => pooling::mean_pool(data, &mask_flat, batch, seq, *d, self.config.normalize),
                Pooling::Cls => pooling::cls_pool(data, batch, seq, *d, self.config.normalize),
            }),
            // Already pooled by the graph (a sentence_embedding output).
            [b, d] if *b == batch => Ok(data
                .chunks_exact(*d)
                .map(|row| {
                    let mut v = row.to_vec();
                    if self.config.normalize {
                        crate::kernels::normalize_in_place(&mut v);
                    }
                    v
                })
                .collect()),
            other => Err(EncoderError::UnsupportedSignature(format!(
                "output \"{}\" has shape {other:?}; expected [batch, sequence, dimensions] or [batch, dimensions]",
                self.output_name
            ))),
        }
    }

    /// Embeds many texts: tokenized first, sorted by token count so that each
    /// sub-batch pads as little as possible, run at most `batch_size` at a time
    /// (fewer when long: `attention_batches`), and
    /// returned in the caller's order. `between` runs after each sub-batch (the
    /// caller checks for cancellation there).
    pub fn embed_many(
        &mut self,
        texts: &[&str],
        max_tokens: usize,
        batch_size: usize,
        mut between: impl FnMut(),
    ) -> Result<Vec<Vec<f32>>, EncoderError> {
        self.set_truncation(max_tokens)?;
        let tokenized = texts
            .iter()
            .map(|t| self.tokenize(t))
            .collect::<Result<Vec<_>, _>>()?;
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| tokenized[i].0.len());
        let mut out: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
        let lengths: Vec<usize> = order.iter().map(|&i| tokenized[i].0.len()).collect();
        for range in attention_batches(&lengths, batch_size) {
            let chunk = &order[range];
            let batch: Vec<&Tokens> = chunk.iter().map(|&i| &tokenized[i]).collect();
            let vectors = self.run_batch(&batch)?;
            for (&i, v) in chunk.iter().zip(vectors) {
                out[i] = v;
            }
            between();
        }
        release_free_heap();
        Ok(out)
    }
}

/// The session options every encoder session shares.
pub(crate) fn session_builder(
    env: &Environment,
    threads: usize,
) -> ort::Result<ort::session::builder::SessionBuilder> {
    Ok(Session::builder(env)?
        .with_intra_threads(threads)?
        .with_inter_threads(1)?
        // Spinning workers would burn a core that other backends need.
        .with_intra_op_spinning(false)?
        // An arena keeps the largest batch's activations for the backend's
        // lifetime; plain malloc gives them back (release_free_heap), at no
        // cost in speed for an encoder this size.
        .with_execution_providers([ort::ep::CPU::default().with_arena_allocator(false).build()])?
        .with_memory_pattern(false)?)
}

/// Gives the heap pages a run freed back to the system. Inference frees
/// large buffers (activations, weights widened block by block) that malloc
/// would otherwise keep for the backend's lifetime.
fn release_free_heap() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases free pages.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Padded tokens per batch (texts × longest): the activations ONNX
/// Runtime allocates for a run grow with them, and a bigger batch is no
/// faster (`benches/embed_bench.sh`).
pub const MAX_BATCH_TOKENS: usize = 512;

/// A batch's attention scores hold texts × longest² values per head (and
/// the graph keeps several such tensors of all heads at once); long texts
/// also run faster in small batches, whose tensors stay in cache
/// (`benches/encoder_memory.sh` prints a backend embedding long texts).
pub const MAX_ATTENTION_CELLS: usize = 1 << 15;

/// Consecutive ranges of texts sorted by token count (`lengths`, ascending):
/// at most `batch_size` texts each, and within `MAX_BATCH_TOKENS` and
/// `MAX_ATTENTION_CELLS` (a single text is always a batch of its own,
/// whatever its length).
pub fn attention_batches(lengths: &[usize], batch_size: usize) -> Vec<std::ops::Range<usize>> {
    let within = |texts: usize, longest: usize| {
        texts * longest <= MAX_BATCH_TOKENS && texts * longest * longest <= MAX_ATTENTION_CELLS
    };
    let mut out = Vec::new();
    let mut start = 0;
    while start < lengths.len() {
        let mut end = start + 1;
        while end < lengths.len()
            && end - start < batch_size.max(1)
            && within(end + 1 - start, lengths[end])
        {
            end += 1;
        }
        out.push(start..end);
        start = end;
    }
    out
}

#[cfg(test)]
mod attention_batch_tests {
    use super::*;

    #[test]
    fn batches_respect_the_count_and_the_attention_budget() {
        let short = vec![16; 1000];
        let cut = attention_batches(&short, 16);
        assert_eq!(cut.len(), 63, "batch_size binds: 16 texts of 16 tokens");
        let cut = attention_batches(&short, 256);
        assert!(cut
            .iter()
            .all(|r| r.len() == (MAX_BATCH_TOKENS / 16).min(1000 - r.start)));
        let medium = vec![64; 100];
        let cut = attention_batches(&medium, 4096);
        let per_batch = MAX_ATTENTION_CELLS / (64 * 64);
        assert!(per_batch >= 2);
        assert!(cut.iter().all(|r| r.len() <= per_batch));
        assert_eq!(cut.iter().map(|r| r.len()).sum::<usize>(), 100);
        let long = vec![1024; 3];
        assert_eq!(
            attention_batches(&long, 32).len(),
            3,
            "one text too long for the budget is a batch of its own"
        );
        // ranges are consecutive and cover everything once
        let mixed: Vec<usize> = (1..=600).collect();
        let cut = attention_batches(&mixed, 64);
        assert_eq!(cut.first().unwrap().start, 0);
        assert_eq!(cut.last().unwrap().end, 600);
        assert!(cut.windows(2).all(|w| w[0].end == w[1].start));
        for r in &cut {
            let longest = mixed[r.end - 1];
            assert!(
                r.len() == 1
                    || (r.len() * longest <= MAX_BATCH_TOKENS
                        && r.len() * longest * longest <= MAX_ATTENTION_CELLS)
            );
        }
    }
}
