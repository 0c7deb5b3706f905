-- interest.embed: the in-database sentence encoder.
SET search_path = interest, public;

-- the default model is registered by CREATE EXTENSION
SELECT name, dimensions, model_file, tokenizer_file, max_tokens, pooling, normalize, builtin FROM models ORDER BY name;
SELECT dims(embed('hello world')) AS dims, round(norm(embed('hello world'))::numeric, 5) AS norm;
SELECT embed(NULL::text) IS NULL AS null_text, embed('x', NULL) IS NULL AS null_model;
SELECT dims(embed('')) AS empty_string_dims;
-- deterministic: the same text gives the same vector, alone or in a batch
SELECT embed('Toy Story (1995)')::text = embed('Toy Story (1995)')::text AS deterministic;
SELECT round((1 - (embed('Toy Story (1995)') <=> (embed(ARRAY['a much longer text that forces padding of the shorter one in the same batch', 'Toy Story (1995)']))[2]))::numeric, 5) AS batch_vs_single;
-- batches keep order and NULLs
SELECT o, e IS NULL AS is_null, dims(e) FROM unnest(embed(ARRAY['first', NULL, 'third', ''])) WITH ORDINALITY u(e, o) ORDER BY o;
SELECT cardinality(embed(ARRAY[]::text[])) AS empty_batch;
SELECT embed(NULL::text[]) IS NULL AS null_array;
-- semantics: related texts are closer than unrelated ones
SELECT (embed('a film about toys that come alive') <=> embed('Toy Story (1995) Animation|Children''s|Comedy'))
     < (embed('a film about toys that come alive') <=> embed('Schindler''s List (1993) Drama|War')) AS toys_closer;
-- truncation: at interest.max_tokens (default 256), capped at the model's 512
SELECT embed(repeat('word ', 300))::text = embed(repeat('word ', 400))::text AS truncated_at_256;
SET interest.max_tokens = 8;
SELECT embed('one two three four five six seven eight nine ten')::text = embed('one two three four five six seven eight nine ten eleven twelve')::text AS truncated_at_8;
SET interest.max_tokens = 100000;
RESET interest.max_tokens;
SET interest.max_tokens = 8192;
SELECT embed(repeat('word ', 600))::text = embed(repeat('word ', 700))::text AS capped_at_model_limit;
RESET interest.max_tokens;
-- batch size does not change results: batches of one text are exactly embed(text)
SET interest.batch_size = 1;
SELECT (embed(ARRAY['alpha', 'beta gamma delta']))[2]::text = embed('beta gamma delta')::text AS batch_size_1;
RESET interest.batch_size;

-- unknown model: 42704 with the registered names
SELECT regress.err($$SELECT embed('x', 'no-such-model')$$);

-- correctness against an independent Python pipeline (onnxruntime + tokenizers + numpy pooling)
CREATE TEMP TABLE reference (id int, t text, n_tokens int, e embedding);
COPY reference FROM '/tmp/pg_interest_run/fixtures/embeddings.tsv';
SELECT count(*) AS texts, count(*) FILTER (WHERE n_tokens = 256) AS truncated,
       min(1 - (embed(t) <=> e)) >= 0.999 AS single_ok
FROM reference;
SELECT min(1 - (x <=> r.e)) >= 0.999 AS batch_ok
FROM reference r
JOIN unnest(embed((SELECT array_agg(t ORDER BY id) FROM reference))) WITH ORDINALITY u(x, o) ON o = r.id + 1;

-- IMMUTABLE: usable in generated columns and expression indexes; PARALLEL UNSAFE: it reads
-- the model registry through SPI, and workers must not each load the model
SELECT provolatile, proparallel, proisstrict FROM pg_proc WHERE oid = 'interest.embed(text, text)'::regprocedure;
CREATE TEMP TABLE docs (id int PRIMARY KEY, body text, e embedding(384) GENERATED ALWAYS AS (embed(body)) STORED);
INSERT INTO docs (id, body) VALUES
  (1, 'The cat sat on the mat.'), (2, 'Stock markets fell sharply today.'),
  (3, 'A kitten is sleeping on the rug.'), (4, 'The central bank raised interest rates.');
SELECT id FROM docs ORDER BY e <=> embed('a small cat resting'), id LIMIT 2;
SELECT id FROM docs ORDER BY e <=> embed('finance and the economy'), id LIMIT 2;
UPDATE docs SET body = 'Dogs love to play fetch.' WHERE id = 1;
SELECT id FROM docs ORDER BY e <=> embed('puppies playing with a ball'), id LIMIT 1;
CREATE INDEX docs_norm ON docs ((norm(embed(body))));
