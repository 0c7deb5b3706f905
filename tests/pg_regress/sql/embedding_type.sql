-- interest.embedding: literals, output, typmod, casts, binary I/O, bad input.
SET search_path = interest, public;

SELECT '[1,2,3]'::embedding;
SELECT '  [ 1 , -2.5e-1 ,3e2 ]  '::embedding;
SELECT '[0.1,1e-30,1e30,-0]'::embedding;
SELECT NULL::embedding IS NULL AS null_in_null_out;
SELECT '[1,2,3]'::embedding(3);
SELECT dims('[1,2,3,4]'::embedding);
SELECT format_type('embedding'::regtype, 384);

-- malformed literals: 22P02
SELECT regress.err($$SELECT '1,2'::embedding$$);
SELECT regress.err($$SELECT '[1,2'::embedding$$);
SELECT regress.err($$SELECT '[1,,2]'::embedding$$);
SELECT regress.err($$SELECT '[1,abc]'::embedding$$);
-- not finite, empty: 22000; too many dimensions: 54000
SELECT regress.err($$SELECT '[1,NaN]'::embedding$$);
SELECT regress.err($$SELECT '[inf]'::embedding$$);
SELECT regress.err($$SELECT '[1e39]'::embedding$$);
SELECT regress.err($$SELECT '[]'::embedding$$);
SELECT regress.err($$SELECT ('[' || array_to_string(array_fill(1, ARRAY[16001]), ',') || ']')::embedding$$);
SELECT dims(('[' || array_to_string(array_fill(1, ARRAY[16000]), ',') || ']')::embedding) AS max_dims;
-- typmod
SELECT regress.err($$SELECT '[1,2]'::embedding(3)$$);
SELECT regress.err($$SELECT '[1,2]'::embedding(0)$$);
SELECT regress.err($$SELECT '[1,2]'::embedding(16001)$$);
SELECT regress.err($$SELECT '[1,2]'::embedding(2,3)$$);
CREATE TEMP TABLE items3 (id int, e embedding(3));
INSERT INTO items3 VALUES (1, '[1,2,3]');
SELECT regress.err($$INSERT INTO items3 VALUES (2, '[1,2]')$$);
SELECT regress.err($$INSERT INTO items3 VALUES (2, '[1,2]'::embedding)$$);
SELECT * FROM items3;

-- casts from and to arrays
SELECT ARRAY[1,2,3]::real[]::embedding, ARRAY[1.5,2]::float8[]::embedding, ARRAY[4,5]::int[]::embedding;
SELECT '[1,2.5]'::embedding::real[];
INSERT INTO items3 VALUES (3, ARRAY[4,5,6]::real[]);
SELECT regress.err($$SELECT ARRAY[1,NULL]::real[]::embedding$$);
SELECT regress.err($$SELECT ARRAY['NaN']::real[]::embedding$$);
SELECT regress.err($$SELECT ARRAY[]::real[]::embedding$$);
SELECT regress.err($$SELECT ARRAY[1,2]::real[]::embedding(3)$$);

-- binary send/receive round trip (COPY BINARY uses both)
SELECT embedding_send('[1,-2]');
COPY (SELECT id, e FROM items3 ORDER BY id) TO '/tmp/pg_interest_run/regress_items3.bin' (FORMAT binary);
CREATE TEMP TABLE items3_copy (id int, e embedding(3));
COPY items3_copy FROM '/tmp/pg_interest_run/regress_items3.bin' (FORMAT binary);
SELECT a.id, a.e::text = b.e::text AS same, b.e FROM items3 a JOIN items3_copy b USING (id) ORDER BY id;
-- a binary value of the wrong dimension is refused by the column's typmod
CREATE TEMP TABLE items2 (id int, e embedding(2));
SELECT regress.err($$COPY items2 FROM '/tmp/pg_interest_run/regress_items3.bin' (FORMAT binary)$$);

-- the on-disk layout is pgvector's: 8 header bytes + 4 per dimension
SELECT pg_column_size('[1,2,3]'::embedding) AS bytes_3d, pg_column_size(array_fill(0.5::real, ARRAY[384])::embedding) AS bytes_384d;
