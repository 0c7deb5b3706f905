//! The encoder's graph, optimized once per server and shared by every
//! backend. ONNX Runtime's optimizations at load time give each backend a
//! private copy of the weights. Instead the first backend saves the
//! optimized graph in ORT format under a cache directory, and every backend
//! maps that file read-only and runs it with its weights in place: the
//! weights are page-cache pages all backends share, and no backend
//! optimizes again.
//!
//! The file name carries the model's sha256 and a tag of the runtime
//! library, so a new model or runtime gets a new file; a file that does not
//! load is removed and rebuilt by the next load. Level 2 optimizations
//! only: they do not depend on the CPU, so a file that a base backup copies
//! to a standby still fits there.

use crate::signal_mask::with_signals_blocked;
use ort::environment::Environment;
use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};
use ort::session::InMemorySession;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// A session over a mapped file; the session is dropped before the mapping.
pub struct MappedSession {
    pub session: InMemorySession<'static>,
    _mapping: Mapping,
}

struct Mapping {
    ptr: *mut libc::c_void,
    len: usize,
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: ptr/len came from a successful mmap and are unmapped once.
        unsafe { libc::munmap(self.ptr, self.len) };
    }
}

/// The cache file for a model's bytes under `dir`.
pub fn cache_file(dir: &Path, model_bytes: &[u8], runtime_tag: &str) -> PathBuf {
    cache_file_of(dir, &hex::encode(Sha256::digest(model_bytes)), runtime_tag)
}

/// The cache file for the model whose sha256 (hex) is `model` under `dir`.
pub fn cache_file_of(dir: &Path, model: &str, runtime_tag: &str) -> PathBuf {
    let runtime = hex::encode(Sha256::digest(runtime_tag.as_bytes()));
    // "w8a": graphs with int8 weights kept int8 and int8 arithmetic for the
    // wide ones (crate::int8_weights); a graph of another rewrite is
    // another file.
    dir.join(format!("{}-{}-l2w8a.ort", &model[..32], &runtime[..12]))
}

/// What a process that builds a cache file for a backend needs to know;
/// written next to the file (`BuildRequest::write`), read by
/// `build_requested`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildRequest {
    pub model_path: PathBuf,
    pub runtime_library: PathBuf,
    /// `GraphCache::runtime_tag`: with the model's sha256 it names the file,
    /// so the builder can tell the model it reads is the one asked for.
    pub runtime_tag: String,
    pub intra_op_threads: usize,
}

impl BuildRequest {
    fn path(file: &Path) -> PathBuf {
        file.with_extension("request")
    }

    /// Writes the request for `file` (through a temporary name).
    pub fn write(&self, file: &Path) -> Result<(), String> {
        let dir = file.parent().ok_or("cache file has no directory")?;
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let text = serde_json::to_vec(self).map_err(|e| e.to_string())?;
        let path = Self::path(file);
        let tmp = path.with_extension(format!("request{}", std::process::id()));
        std::fs::write(&tmp, text).map_err(|e| format!("{}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, &path).map_err(|e| format!("{}: {e}", path.display()))
    }

    fn read(file: &Path) -> Result<BuildRequest, String> {
        let path = Self::path(file);
        let text = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// Builds `file` as its request (`BuildRequest`) says: the body of the
/// short-lived process that optimizes for a backend. One process at a time
/// per file (a lock file); a file already there is left alone (false).
pub fn build_requested(file: &Path) -> Result<bool, String> {
    let _lock = lock(&file.with_extension("lock"))?;
    if file.is_file() {
        return Ok(false);
    }
    remove_stale_temporaries(file);
    let request = BuildRequest::read(file)?;
    let model = std::fs::read(&request.model_path)
        .map_err(|e| format!("{}: {e}", request.model_path.display()))?;
    let runtime = || crate::encoder::runtime(&request.runtime_library).map_err(|e| e.to_string());
    with_signals_blocked(|| {
        build_graph(
            runtime,
            &model,
            file,
            &request.runtime_tag,
            request.intra_op_threads,
        )
    })?;
    let _ = std::fs::remove_file(BuildRequest::path(file));
    Ok(true)
}

/// Removes temporary files of `file` that a killed build left (older than
/// any build takes; a live one elsewhere is left alone).
fn remove_stale_temporaries(file: &Path) {
    const STALE: std::time::Duration = std::time::Duration::from_secs(600);
    let Some(stem) = file.file_stem().and_then(|s| s.to_str()) else {
        return;
    };
    let prefix = format!("{stem}.tmp");
    remove_siblings(file, |name, entry| {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE);
        old && name.starts_with(&prefix)
    });
}

/// Removes the files in `file`'s directory whose name (and entry) `doomed`
/// picks; errors are ignored (another process may remove them first).
fn remove_siblings(file: &Path, doomed: impl Fn(&str, &std::fs::DirEntry) -> bool) {
    let Some(dir) = file.parent() else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name.to_str().is_some_and(|n| doomed(n, &entry)) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Holds an exclusive lock on `path` until dropped (closing the file).
fn lock(path: &Path) -> Result<std::fs::File, String> {
    use std::os::fd::AsRawFd;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    // SAFETY: flock on a descriptor this function owns.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(format!("{}: flock failed", path.display()));
    }
    Ok(f)
}

/// Writes the optimized graph of the model `model_bytes` to `file`: with
/// its int8 weights kept int8 (`crate::int8_weights`) when it has them and
/// the runtime takes that graph, else the model as it is. Only when these
/// bytes (under `runtime_tag`) give `file`'s name: a model file replaced
/// since the name was chosen must not be saved as the old model's graph
/// (checked before `runtime` is asked for the environment).
pub fn build_graph<'e>(
    runtime: impl FnOnce() -> Result<&'e Environment, String>,
    model_bytes: &[u8],
    file: &Path,
    runtime_tag: &str,
    threads: usize,
) -> Result<(), String> {
    let dir = file.parent().ok_or("cache file has no directory")?;
    if cache_file(dir, model_bytes, runtime_tag) != file {
        return Err("not the model the cache file was named for (changed since)".into());
    }
    let env = runtime()?;
    let base = || crate::encoder::session_builder(env, threads).map_err(|e| e.to_string());
    if let Some((kept, _)) = crate::int8_weights::keep_int8_weights(model_bytes) {
        if build(base()?, &kept, file).is_ok() {
            return Ok(());
        }
    }
    build(base()?, model_bytes, file)
}

/// Removes the graphs of the same model that an older rewrite or runtime
/// saved next to `file`: the runtime tag changes when the library is
/// replaced, so they would pile up. (A session that SETs another runtime
/// library builds its graph again; a backend still mapping one keeps its
/// pages until it exits.)
fn remove_superseded(file: &Path) {
    let Some(name) = file.file_name().and_then(|n| n.to_str()) else {
        return;
    };
    let Some((model, _)) = name.split_once('-') else {
        return;
    };
    let same_model = format!("{model}-");
    remove_siblings(file, |other, _| {
        let graph = other.ends_with(".ort") && !other.contains(".tmp");
        graph && other != name && other.starts_with(&same_model)
    });
}

/// Writes the optimized graph of `model` to `file` (through a temporary
/// name, so readers never see half a file).
pub fn build(builder: SessionBuilder, model: &[u8], file: &Path) -> Result<(), String> {
    let dir = file.parent().ok_or("cache file has no directory")?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    // ONNX Runtime picks the saved format by the extension: keep ".ort".
    let tmp = file.with_extension(format!("tmp{}.ort", std::process::id()));
    let write = || -> Result<(), String> {
        let text = |e: &dyn std::fmt::Display| e.to_string();
        let mut builder = builder
            .with_optimization_level(GraphOptimizationLevel::Level2)
            .map_err(|e| text(&e))?
            .with_optimized_model_path(&tmp)
            .map_err(|e| text(&e))?;
        drop(builder.commit_from_memory(model).map_err(|e| text(&e))?);
        std::fs::rename(&tmp, file).map_err(|e| format!("{}: {e}", file.display()))?;
        remove_superseded(file);
        Ok(())
    };
    let result = write();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// A session over the mapped `file`, running the saved graph as it is.
pub fn open(
    env: &Environment,
    builder: impl FnOnce(&Environment) -> ort::Result<SessionBuilder>,
    file: &Path,
) -> Result<MappedSession, String> {
    let mapping = map(file)?;
    // SAFETY: the slice lives as long as `mapping`, which MappedSession
    // keeps and drops after the session.
    let bytes: &'static [u8] =
        unsafe { std::slice::from_raw_parts(mapping.ptr as *const u8, mapping.len) };
    let text = |e: &dyn std::fmt::Display| e.to_string();
    let mut builder = builder(env)
        .map_err(|e| text(&e))?
        .with_optimization_level(GraphOptimizationLevel::Disable)
        .map_err(|e| text(&e))?;
    let session = builder
        .commit_from_memory_directly(bytes)
        .map_err(|e| text(&e))?;
    Ok(MappedSession {
        session,
        _mapping: mapping,
    })
}

fn map(file: &Path) -> Result<Mapping, String> {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let len = f.metadata().map_err(|e| e.to_string())?.len() as usize;
    if len == 0 {
        return Err(format!("{}: empty", file.display()));
    }
    // SAFETY: a read-only shared mapping of a file only ever replaced by rename.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(format!("{}: mmap failed", file.display()));
    }
    Ok(Mapping { ptr, len })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_follow_model_and_runtime() {
        let dir = Path::new("/cache");
        let a = cache_file(dir, b"model a", "runtime 1");
        assert_eq!(a, cache_file(dir, b"model a", "runtime 1"));
        assert_ne!(a, cache_file(dir, b"model b", "runtime 1"));
        assert_ne!(a, cache_file(dir, b"model a", "runtime 2"));
        assert_eq!(a.extension().unwrap(), "ort");
    }

    #[test]
    fn a_request_reads_back_as_written() {
        let dir = std::env::temp_dir().join(format!("encoder_cache_test_{}", std::process::id()));
        let file = cache_file(&dir, b"model", "runtime");
        let model = dir.join("m.onnx");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&model, b"other model").unwrap();
        let request = BuildRequest {
            model_path: model.clone(),
            runtime_library: PathBuf::from("/lib/libonnxruntime.so"),
            runtime_tag: "runtime".into(),
            intra_op_threads: 2,
        };
        request.write(&file).unwrap();
        assert_eq!(BuildRequest::read(&file).unwrap(), request);
        // The file is named for b"model": the one on disk is another.
        let err = build_requested(&file).unwrap_err();
        assert!(err.contains("not the model"), "{err}");
        // The right model, but no runtime at that path (unless another test
        // loaded one already, then not a model): an error, and no file.
        std::fs::write(&model, b"model").unwrap();
        match build_requested(&file) {
            Err(err) => assert!(!err.contains("not the model"), "{err}"),
            Ok(built) => panic!("built ({built}) from bytes that are no model"),
        }
        assert!(!file.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_new_graph_removes_older_graphs_of_its_model_only() {
        let dir = std::env::temp_dir().join(format!("encoder_cache_old_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = cache_file(&dir, b"model", "runtime");
        let name = file.file_name().unwrap().to_str().unwrap().to_string();
        let model = name.split_once('-').unwrap().0;
        let older = dir.join(format!("{model}-0123456789ab-l2w8.ort"));
        let other_model = cache_file(&dir, b"another model", "runtime");
        let building = dir.join(format!("{model}-0123456789ab-l2w8.tmp42.ort"));
        let lock = file.with_extension("lock");
        for f in [&file, &older, &other_model, &building, &lock] {
            std::fs::write(f, b"x").unwrap();
        }
        remove_superseded(&file);
        assert!(!older.exists(), "an older graph of the model is removed");
        for kept in [&file, &other_model, &building, &lock] {
            assert!(kept.exists(), "{} kept", kept.display());
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
