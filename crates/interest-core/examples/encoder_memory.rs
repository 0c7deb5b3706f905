//! How much memory an ONNX Runtime session of the encoder takes, by session
//! option: resident set before and after loading and after embedding 256
//! short texts in batches of 32, and the throughput (issue 15, part 3).
//!   encoder_memory ORT_LIB MODEL_DIR OPT_LEVEL(0-3) PREPACKING(0|1) ARENA(0|1)
//! ARENA toggles both the memory pattern and the CPU arena allocator.
//! MODE=save:FILE.ort writes the session's optimized graph in ORT format;
//! MODE=mmap:FILE.ort loads such a file from a shared read-only mapping with
//! its weights used in place (no graph optimization at load). TRIM=1 gives
//! free heap pages back after the texts, as the encoder does after a call.
use interest_core::encoder::runtime;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::Tensor;
use std::path::Path;

/// Anonymous (private) memory: what a backend does not share.
fn rss_mb() -> f64 {
    let s = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap();
    let kb: f64 = s
        .lines()
        .find(|l| l.starts_with("Pss_Anon:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let env = runtime(Path::new(&a[1])).unwrap();
    let dir = Path::new(&a[2]);
    let level = match a[3].as_str() {
        "0" => GraphOptimizationLevel::Disable,
        "1" => GraphOptimizationLevel::Level1,
        "2" => GraphOptimizationLevel::Level2,
        _ => GraphOptimizationLevel::Level3,
    };
    let before = rss_mb();
    let mode = std::env::var("MODE").unwrap_or_default();
    let mut builder = Session::builder(env)
        .unwrap()
        .with_optimization_level(level)
        .unwrap()
        .with_intra_threads(1)
        .unwrap()
        .with_prepacking(a[4] == "1")
        .unwrap()
        .with_memory_pattern(a[5] == "1")
        .unwrap()
        .with_execution_providers([ort::ep::CPU::default()
            .with_arena_allocator(a[5] == "1")
            .build()])
        .unwrap();
    // The loop below runs on a Session or an InMemorySession alike.
    macro_rules! measure {
        ($session:expr) => {{
            let session = &mut $session;
        let mut tok = tokenizers::Tokenizer::from_file(dir.join("tokenizer.json")).unwrap();
        tok.with_padding(None);
        let texts: Vec<String> = (0..256)
            .map(|i| {
                format!("a short product title number {i} with some words about running shoes and tea")
            })
            .collect();
        let t0 = std::time::Instant::now();
        for chunk in texts.chunks(32) {
            let enc = tok.encode_batch(chunk.to_vec(), true).unwrap();
            let len = enc.iter().map(|e| e.get_ids().len()).max().unwrap();
            let (mut ids, mut mask, mut types) = (Vec::new(), Vec::new(), Vec::new());
            for e in &enc {
                for p in 0..len {
                    ids.push(*e.get_ids().get(p).unwrap_or(&0) as i64);
                    mask.push(*e.get_attention_mask().get(p).unwrap_or(&0) as i64);
                    types.push(0i64);
                }
            }
            let shape = [chunk.len(), len];
            let out = session
                .run(ort::inputs![
                    "input_ids" => Tensor::from_array((shape, ids)).unwrap(),
                    "attention_mask" => Tensor::from_array((shape, mask)).unwrap(),
                    "token_type_ids" => Tensor::from_array((shape, types)).unwrap()
                ])
                .unwrap();
            drop(out);
        }

            let secs = t0.elapsed().as_secs_f64();
            // TRIM=1: give free heap pages back, as a backend does after a call.
            if std::env::var("TRIM").is_ok() {
                // SAFETY: malloc_trim only releases free pages.
                unsafe { libc::malloc_trim(0) };
            }
            secs
        }};
    }
    let (loaded, secs);
    if let Some(path) = mode.strip_prefix("mmap:") {
        let file = std::fs::File::open(path).unwrap();
        let len = file.metadata().unwrap().len() as usize;
        // SAFETY: a read-only shared mapping of a file nobody rewrites.
        let mapped: &[u8] = unsafe {
            use std::os::fd::AsRawFd;
            let p = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            );
            assert_ne!(p, libc::MAP_FAILED);
            std::slice::from_raw_parts(p as *const u8, len)
        };
        let mut session = builder.commit_from_memory_directly(mapped).unwrap();
        loaded = rss_mb();
        secs = measure!(session);
    } else {
        if let Some(path) = mode.strip_prefix("save:") {
            if std::env::var("SAVE_AS_BACKEND").is_ok() {
                builder = builder
                    .with_inter_threads(1)
                    .unwrap()
                    .with_intra_op_spinning(false)
                    .unwrap();
            }
            builder = builder.with_optimized_model_path(path).unwrap();
        }
        let mut session = builder.commit_from_file(dir.join("model.onnx")).unwrap();
        loaded = rss_mb();
        secs = measure!(session);
    }
    println!(
        "level {} prepacking {} arena {}: before {:.0} MB, loaded {:.0} MB (+{:.0}), after 256 texts {:.0} MB (+{:.0}), {:.0} texts/s",
        a[3], a[4], a[5], before, loaded, loaded - before, rss_mb(), rss_mb() - before, 256.0 / secs
    );
}
