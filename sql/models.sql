-- ---------------------------------------------------------------------------
-- models.sql: the embedding model registry (table, built-in row, dump
-- config, rights) and the COMMENTs on the encoder functions of src/embed.rs.
-- Runs after those functions (`requires` in src/sql_install.rs).
--
-- Model registry: file paths are relative to a directory of interest.model_dir
-- (or absolute inside one); sha256 pins the files a model name stands for.
-- ---------------------------------------------------------------------------
CREATE TABLE interest.models (
    name             text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9._-]{1,63}$'),
    dimensions       integer NOT NULL CHECK (dimensions BETWEEN 1 AND 16000),
    model_file       text NOT NULL,
    tokenizer_file   text NOT NULL,
    model_sha256     text NOT NULL CHECK (model_sha256 ~ '^[0-9a-f]{64}$'),
    tokenizer_sha256 text NOT NULL CHECK (tokenizer_sha256 ~ '^[0-9a-f]{64}$'),
    max_tokens       integer NOT NULL CHECK (max_tokens BETWEEN 2 AND 8192),
    pooling          text NOT NULL CHECK (pooling IN ('mean', 'cls')),
    normalize        boolean NOT NULL,
    builtin          boolean NOT NULL DEFAULT false,
    registered_at    timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE interest.models IS 'Registered embedding models: files (relative to interest.model_dir), sha256, dimension, max tokens, pooling, normalisation.';
INSERT INTO interest.models
    (name, dimensions, model_file, tokenizer_file, model_sha256, tokenizer_sha256, max_tokens, pooling, normalize, builtin)
VALUES
    ('all-MiniLM-L6-v2', 384, 'all-MiniLM-L6-v2/model.onnx', 'all-MiniLM-L6-v2/tokenizer.json',
     '8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6',
     'be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037',
     512, 'mean', true, true);
-- pg_dump keeps user-registered models; the built-in row comes with the extension.
SELECT pg_catalog.pg_extension_config_dump('interest.models', 'WHERE NOT builtin');
REVOKE ALL ON interest.models FROM PUBLIC;
GRANT SELECT ON interest.models TO PUBLIC;
REVOKE EXECUTE ON FUNCTION interest.register_model(text, text, text, text, boolean, integer) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION interest.unregister_model(text) FROM PUBLIC;

COMMENT ON FUNCTION interest.embed(text, text) IS
    'Embeds a text with the named model (default all-MiniLM-L6-v2): mean pooling over the attention mask, L2-normalised. IMMUTABLE: a model name stands for fixed files, checked by sha256.';
COMMENT ON FUNCTION interest.embed(text[], text) IS
    'Embeds many texts in batches of interest.batch_size, each padded to its longest text; NULL elements give NULL.';
COMMENT ON FUNCTION interest.register_model(text, text, text, text, boolean, integer) IS
    'Superuser only: registers a BERT-family ONNX encoder and its tokenizer.json from a directory of interest.model_dir; returns its dimension.';
COMMENT ON FUNCTION interest.unregister_model(text) IS 'Superuser only: removes a registered model (not the default one).';
COMMENT ON FUNCTION interest.loaded_models() IS 'Models this backend has loaded into ONNX Runtime.';
