-- The model registry: second directory, path checks, privileges, corrupt files.
SET search_path = interest, public;

-- model_dir is a list; the second directory is prepared by tests/run_tests.sh
SET interest.model_dir = '$sharedir/pg_interest/models:/tmp/pg_interest_run/models2';
SELECT register_model('minilm-copy', 'minilm-copy/model.onnx', 'minilm-copy/tokenizer.json') AS dims;
SELECT name, dimensions, model_file, pooling, normalize, builtin FROM models ORDER BY name;
SELECT round((1 - (embed('second directory', 'minilm-copy') <=> embed('second directory')))::numeric, 6) AS same_as_default;
-- a CLS-pooled, unnormalised registration of the same files is a different model
SELECT register_model('minilm-cls', '/tmp/pg_interest_run/models2/minilm-copy/model.onnx',
                      '/tmp/pg_interest_run/models2/minilm-copy/tokenizer.json', pooling => 'cls', l2_normalize => false);
SELECT norm(embed('cls pooling', 'minilm-cls')) > 1.5 AS unnormalised, (embed('cls pooling', 'minilm-cls') <=> embed('cls pooling')) > 0.01 AS differs;

-- bad registrations
SELECT regress.err($$SELECT register_model('minilm-copy', 'minilm-copy/model.onnx', 'minilm-copy/tokenizer.json')$$);
SELECT regress.err($$SELECT register_model('bad name!', 'minilm-copy/model.onnx', 'minilm-copy/tokenizer.json')$$);
SELECT regress.err($$SELECT register_model('x', 'minilm-copy/model.onnx', 'minilm-copy/tokenizer.json', pooling => 'max')$$);
SELECT regress.err($$SELECT register_model('x', 'nowhere/model.onnx', 'minilm-copy/tokenizer.json')$$);
SELECT regress.err($$SELECT register_model('x', '/tmp/pg_interest_run/outside/model.onnx', 'minilm-copy/tokenizer.json')$$);
SELECT regress.err($$SELECT register_model('x', 'minilm-copy/../../outside/model.onnx', 'minilm-copy/tokenizer.json')$$);
SELECT regress.err($$SELECT register_model('x', 'corrupt/model.onnx', 'corrupt/tokenizer.json')$$);
SELECT regress.err($$SELECT register_model('x', 'minilm-copy/model.onnx', 'corrupt/model.onnx')$$);
SELECT regress.err($$SELECT register_model('x', 'wrong-inputs/model.onnx', 'minilm-copy/tokenizer.json')$$);

-- only superusers register models or change model_dir
CREATE ROLE regress_app LOGIN;
GRANT USAGE ON SCHEMA interest TO regress_app;
SET ROLE regress_app;
SELECT regress.err($$SELECT interest.register_model('y', 'minilm-copy/model.onnx', 'minilm-copy/tokenizer.json')$$);
SELECT regress.err($$SET interest.model_dir = '/'$$);
SELECT regress.err($$SET interest.onnxruntime_library = '/tmp/evil.so'$$);
SELECT dims(interest.embed('an application role can embed')) AS app_can_embed;
RESET ROLE;

-- a model file that changes after registration gives an ERROR, and the session keeps working
SELECT register_model('mutable', 'mutable/model.onnx', 'mutable/tokenizer.json') AS dims;
COPY (SELECT 'this is not an onnx model any more') TO '/tmp/pg_interest_run/models2/mutable/model.onnx';
SELECT regress.err($$SELECT embed('x', 'mutable')$$) LIKE 'XX001: model "mutable": file "/tmp/pg_interest_run/models2/mutable/model.onnx" has changed since it was registered%' AS changed_file_refused;
SELECT dims(embed('the session still works')) AS still_works;
SELECT regress.err($$SELECT embed('x', 'mutable')$$) LIKE 'XX001%' AS still_refused;
-- a model that was loaded before its file changed keeps its loaded session
SELECT loaded_models();

-- unregistering
SELECT unregister_model('mutable'), unregister_model('mutable');
SELECT regress.err($$SELECT unregister_model('all-MiniLM-L6-v2')$$);
SELECT regress.err($$SELECT embed('x', 'mutable')$$);
REVOKE USAGE ON SCHEMA interest FROM regress_app;
DROP ROLE regress_app;
