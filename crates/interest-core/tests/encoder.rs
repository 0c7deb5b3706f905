//! The encoder against the real model, without Postgres. The test command
//! (tests/run_tests.sh) sets PG_INTEREST_ORT_LIB and PG_INTEREST_MODEL_DIR
//! after installing both; they are required, so this test cannot pass vacuously.

use interest_core::encoder::{self, Encoder, EncoderConfig, EncoderError, Pooling};
use interest_core::{int8_weights, kernels};
use ndarray::Array2;
use ort::session::Session;
use ort::value::TensorRef;
use std::path::{Path, PathBuf};

/// The model with every `MatMulNBits` set to fp32 arithmetic
/// (`accuracy_level` 0); everything else as it was.
fn with_fp32_arithmetic(model: &[u8]) -> Vec<u8> {
    use onnx_protobuf::{Message, ModelProto};
    let mut m = ModelProto::parse_from_bytes(model).unwrap();
    let graph = m.graph.as_mut().unwrap();
    let mut changed = 0;
    for node in graph.node.iter_mut().filter(|n| n.op_type == "MatMulNBits") {
        for attr in node
            .attribute
            .iter_mut()
            .filter(|a| a.name == "accuracy_level")
        {
            attr.i = 0;
            changed += 1;
        }
    }
    assert_eq!(changed, 36, "six projections in each of six layers");
    m.write_to_bytes().unwrap()
}

fn required_env(name: &str) -> PathBuf {
    PathBuf::from(
        std::env::var(name)
            .unwrap_or_else(|_| panic!("{name} must be set (tests/run_tests.sh sets it)")),
    )
}

fn config(dir: &Path) -> EncoderConfig {
    EncoderConfig {
        model_path: dir.join("model.onnx"),
        tokenizer_path: dir.join("tokenizer.json"),
        pooling: Pooling::Mean,
        normalize: true,
        model_max_tokens: 512,
        intra_op_threads: 1,
        graph_cache: None,
    }
}

// One test function: ONNX Runtime's environment is process-wide, so the
// failure-then-retry sequence must run in a fixed order.
#[test]
fn encoder_end_to_end() {
    let lib = required_env("PG_INTEREST_ORT_LIB");
    let dir = required_env("PG_INTEREST_MODEL_DIR");

    // A missing library is an error, and a later call with the right path works.
    let missing = encoder::runtime(&PathBuf::from("/nonexistent/libonnxruntime.so"));
    assert!(
        matches!(missing, Err(EncoderError::Runtime(_))),
        "{:?}",
        missing.err()
    );
    let not_a_library = encoder::runtime(&dir.join("tokenizer.json"));
    assert!(matches!(not_a_library, Err(EncoderError::Runtime(_))));
    assert!(!encoder::runtime_loaded());
    let env = encoder::runtime(&lib).expect("ONNX Runtime loads from the pinned wheel");
    assert!(encoder::runtime_loaded());

    let mut enc = Encoder::load(env, config(&dir)).expect("default model loads");
    assert_eq!(enc.dimensions(), 384);

    // Unit length, deterministic, and padding does not leak into the pooled vector.
    let alone = enc.embed(&["Toy Story (1995)"], 256).unwrap().remove(0);
    assert!((kernels::norm(&alone) - 1.0).abs() < 1e-4);
    let padded = enc
        .embed(
            &[
                "Toy Story (1995)",
                "a much longer sentence that makes the batch pad the first text a lot",
            ],
            256,
        )
        .unwrap()
        .remove(0);
    // Padding masks the extra tokens out; only the int8 kernels' tiling
    // (which depends on the batch's row count) moves the result, slightly.
    let moved = kernels::cosine_distance(&alone, &padded);
    assert!(moved < 1e-4, "padding changed the embedding by {moved}");

    // embed_many sorts by length internally but returns the caller's order.
    let texts = [
        "zebra crossing",
        "a",
        "the longest text of the three by far, really",
        "",
    ];
    let many = enc.embed_many(&texts, 256, 2, || {}).unwrap();
    for (t, v) in texts.iter().zip(&many) {
        let single = enc.embed(&[t], 256).unwrap().remove(0);
        assert!(
            kernels::cosine_distance(&single, v) < 1e-4,
            "order or padding broke for {t:?}"
        );
    }

    // Semantics: related sentences are closer than unrelated ones.
    let v = enc
        .embed(
            &[
                "a cat sleeps on the sofa",
                "a kitten naps on the couch",
                "interest rates rose",
            ],
            256,
        )
        .unwrap();
    assert!(kernels::cosine_distance(&v[0], &v[1]) < kernels::cosine_distance(&v[0], &v[2]));

    // Truncation: texts that agree on the first max_tokens tokens embed the same.
    let long_a = "word ".repeat(300);
    let long_b = "word ".repeat(400);
    let a = enc.embed(&[&long_a], 16).unwrap().remove(0);
    let b = enc.embed(&[&long_b], 16).unwrap().remove(0);
    assert!(kernels::cosine_distance(&a, &b) < 1e-6);
    let short = enc.embed(&["word word"], 16).unwrap().remove(0);
    assert!(kernels::cosine_distance(&a, &short) > 1e-4);

    // Int8 weights kept int8 (MatMulNBits, int8 arithmetic for the wide
    // matrices) give, token by token, what ONNX Runtime's own folding into
    // fp32 gives.
    let original = std::fs::read(dir.join("model.onnx")).unwrap();
    let (kept, count) =
        int8_weights::keep_int8_weights(&original).expect("the default model has int8 weights");
    assert_eq!(
        count, 38,
        "six projections in each of six layers, word and position tables"
    );
    let run = |model: &[u8]| -> Vec<f32> {
        let mut session = Session::builder(env)
            .unwrap()
            .commit_from_memory(model)
            .unwrap();
        let ids = Array2::<i64>::from_shape_fn((2, 12), |(i, j)| {
            101 + ((i * 12 + j) * 997 % 20_000) as i64
        });
        let mask = Array2::<i64>::ones((2, 12));
        let types = Array2::<i64>::zeros((2, 12));
        let inputs = vec![
            (
                "input_ids",
                TensorRef::from_array_view(&ids).unwrap().into_dyn(),
            ),
            (
                "attention_mask",
                TensorRef::from_array_view(&mask).unwrap().into_dyn(),
            ),
            (
                "token_type_ids",
                TensorRef::from_array_view(&types).unwrap().into_dyn(),
            ),
        ];
        let outputs = session.run(inputs).unwrap();
        outputs[0].try_extract_tensor::<f32>().unwrap().1.to_vec()
    };
    let worst_against = |folded: &[f32], other: &[f32]| {
        folded
            .chunks(384)
            .zip(other.chunks(384))
            .map(|(a, b)| kernels::cosine_distance(a, b))
            .fold(0.0f64, f64::max)
    };
    let folded = run(&original);
    assert_eq!(folded.len(), 2 * 12 * 384);
    // With fp32 arithmetic everywhere the kept weights are exactly the
    // folded ones (W * scale): only the order of additions differs. This
    // holds the rewrite's layout, scales and zero point to the letter.
    let worst = worst_against(&folded, &run(&with_fp32_arithmetic(&kept)));
    assert!(
        worst < 1e-6,
        "with fp32 arithmetic a token's output moved by a cosine distance of {worst}"
    );
    // int8 activations in the wide matrices move it a little.
    let worst = worst_against(&folded, &run(&kept));
    assert!(
        worst < 1e-3,
        "a token's output moved by a cosine distance of {worst}"
    );

    // Broken files are errors, not crashes.
    let tmp = std::env::temp_dir().join(format!("interest-core-test-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::write(tmp.join("model.onnx"), b"not a model").unwrap();
    std::fs::copy(dir.join("tokenizer.json"), tmp.join("tokenizer.json")).unwrap();
    assert!(matches!(
        Encoder::load(env, config(&tmp)),
        Err(EncoderError::BadModel { .. })
    ));
    std::fs::write(tmp.join("tokenizer.json"), b"{ not json").unwrap();
    assert!(matches!(
        Encoder::load(env, config(&tmp)),
        Err(EncoderError::BadModel { .. })
    ));
    std::fs::remove_file(tmp.join("tokenizer.json")).unwrap();
    assert!(matches!(
        Encoder::load(env, config(&tmp)),
        Err(EncoderError::FileMissing { .. })
    ));
    std::fs::remove_dir_all(&tmp).unwrap();

    // config.json beside the model bounds the sequence length (BERT: 512 positions).
    assert_eq!(
        encoder::config_max_positions(&dir.join("model.onnx")),
        Some(512)
    );
    assert_eq!(
        encoder::config_max_positions(&std::env::temp_dir().join("none/model.onnx")),
        None
    );

    // The sha256 the registry pins for the default model.
    let pinned = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6";
    assert_eq!(
        encoder::file_sha256(&dir.join("model.onnx")).unwrap(),
        pinned
    );

    // The graph cache: a graph is saved under the model's sha256, and only
    // when the bytes read are that model (a file replaced after the caller
    // checked it loads, but nothing is saved under the old name).
    let cache_dir =
        std::env::temp_dir().join(format!("interest-core-cache-{}", std::process::id()));
    std::fs::create_dir_all(&cache_dir).unwrap();
    let cached = |model_sha256: &str| EncoderConfig {
        graph_cache: Some(encoder::GraphCache {
            dir: cache_dir.clone(),
            model_sha256: model_sha256.into(),
            runtime_tag: "test".into(),
            runtime_library: lib.clone(),
            build_elsewhere: None,
        }),
        ..config(&dir)
    };
    let graphs = || {
        std::fs::read_dir(&cache_dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".ort"))
            .count()
    };
    let mut replaced = Encoder::load(env, cached(&"0".repeat(64))).expect("loads unmapped");
    assert_eq!(
        graphs(),
        0,
        "a graph saved under a sha the bytes do not have"
    );
    let mut mapped = Encoder::load(env, cached(pinned)).expect("loads mapped");
    assert_eq!(graphs(), 1);
    let from_mapped = mapped.embed(&["Toy Story (1995)"], 256).unwrap().remove(0);
    let from_unmapped = replaced
        .embed(&["Toy Story (1995)"], 256)
        .unwrap()
        .remove(0);
    assert!(kernels::cosine_distance(&from_mapped, &alone) < 1e-6);
    assert!(kernels::cosine_distance(&from_unmapped, &alone) < 1e-6);
    std::fs::remove_dir_all(&cache_dir).unwrap();
}
