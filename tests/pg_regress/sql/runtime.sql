-- A missing ONNX Runtime library is a clean, retryable ERROR (run in a fresh backend).
SET search_path = interest, public;
SELECT loaded_models();
SET interest.onnxruntime_library = '/nonexistent/libonnxruntime.so.1.31.1';
SELECT regress.err($$SELECT embed('x')$$);
SELECT regress.err($$SELECT embed('x')$$);
-- a file that is not ONNX Runtime
SET interest.onnxruntime_library = '/tmp/pg_interest_run/models2/minilm-copy/tokenizer.json';
SELECT regress.err($$SELECT embed('x')$$) LIKE '58P01: could not load ONNX Runtime%' AS not_a_library;
RESET interest.onnxruntime_library;
SELECT dims(embed('retry works after the path is fixed')) AS dims;
SELECT loaded_models();
SHOW interest.intra_op_threads;
SHOW interest.max_tokens;
SHOW interest.batch_size;
-- the prefix is reserved: typos are caught
SELECT regress.err($$SET interest.no_such_setting = 1$$);
-- the test server preloads the library (shared_preload_libraries); ONNX Runtime still loads per backend
SHOW shared_preload_libraries;
