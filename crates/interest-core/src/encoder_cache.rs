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

use ort::environment::Environment;
use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};
use ort::session::InMemorySession;
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
    let model = hex::encode(Sha256::digest(model_bytes));
    let runtime = hex::encode(Sha256::digest(runtime_tag.as_bytes()));
    // "w8": graphs with int8 weights kept int8 (crate::int8_weights).
    dir.join(format!("{}-{}-l2w8.ort", &model[..32], &runtime[..12]))
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
        std::fs::rename(&tmp, file).map_err(|e| format!("{}: {e}", file.display()))
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
        .map_err(|e| text(&e))?
        // Prepacked weights would be private copies; the point is sharing.
        .with_prepacking(false)
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
}
