-- Distances, arithmetic, aggregates, ORDER BY ... LIMIT ranking.
SET search_path = interest, public;

SELECT '[1,0]'::embedding <=> '[0,1]' AS orthogonal,
       '[1,0]'::embedding <=> '[2,0]' AS same_direction,
       '[1,0]'::embedding <=> '[-1,0]' AS opposite,
       '[1,1]'::embedding <=> '[1,0]' AS diag;
SELECT ('[0,0]'::embedding <=> '[1,0]') = 'NaN'::float8 AS zero_vector_is_nan;
SELECT '[1,2,3]'::embedding <#> '[4,5,6]' AS neg_ip, inner_product('[1,2,3]', '[4,5,6]') AS ip;
SELECT '[0,0]'::embedding <-> '[3,4]' AS l2, l2_distance('[1,1]', '[1,1]') AS zero;
SELECT cosine_distance('[1,2]', '[2,4]') < 1e-7 AS parallel;
SELECT norm('[3,4]'), interest.normalize('[3,4]'), l2_normalize('[3,4]'), l2_normalize('[0,0]');
-- unqualified normalize() is SQL's Unicode NORMALIZE, not ours
SELECT pg_typeof(normalize('[3,4]'));
-- 17-element vectors exercise the SIMD body and the scalar tail
SELECT round((v <=> w)::numeric, 6) AS cos17, round((v <-> w)::numeric, 4) AS l2_17, v <#> w AS nip17
FROM (SELECT array_agg(i)::real[]::embedding v, array_agg(18 - i)::real[]::embedding w FROM generate_series(1, 17) i) s;

SELECT '[1,2]'::embedding + '[10,20]', '[1,2]'::embedding - '[10,20]', '[1,2]'::embedding * 0.5, 3 * '[1,2]'::embedding;
SELECT regress.err($$SELECT '[1,2]'::embedding * 'NaN'::float8$$);
SELECT regress.err($$SELECT '[3e38]'::embedding * 10$$);
-- NULL in, NULL out (STRICT)
SELECT ('[1]'::embedding <=> NULL) IS NULL AS a, (NULL::embedding + '[1]') IS NULL AS b, norm(NULL) IS NULL AS c;
-- dimension mismatch: 22000 with detail and hint
SELECT regress.err($$SELECT '[1,2]'::embedding <=> '[1,2,3]'$$);
SELECT regress.err($$SELECT '[1,2]'::embedding <-> '[1,2,3]'$$);
SELECT regress.err($$SELECT '[1,2]'::embedding <#> '[1,2,3]'$$);
SELECT regress.err($$SELECT '[1,2]'::embedding + '[1,2,3]'$$);
SELECT regress.err($$SELECT avg(e) FROM (VALUES ('[1,2]'::embedding), ('[1,2,3]')) v(e)$$);

-- aggregates skip NULLs; empty input gives NULL
SELECT avg(e), sum(e) FROM (VALUES ('[1,2]'::embedding), (NULL), ('[3,6]')) v(e);
SELECT avg(e) IS NULL AS empty_avg, sum(e) IS NULL AS empty_sum FROM (SELECT '[1]'::embedding e WHERE false) s;
SELECT g, avg(e) FROM (VALUES (1, '[1,1]'::embedding), (1, '[3,3]'), (2, '[5,0]')) v(g, e) GROUP BY g ORDER BY g;
-- a weighted moving average, the way users maintain interest vectors by hand
SELECT l2_normalize(0.9 * '[1,0]'::embedding + 0.1 * '[0,1]'::embedding);

-- functions are STRICT, IMMUTABLE, PARALLEL SAFE
SELECT p.proname, p.provolatile, p.proparallel, p.proisstrict
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'interest' AND p.proname IN ('cosine_distance', 'negative_inner_product', 'l2_distance', 'inner_product', 'norm', 'normalize', 'l2_normalize', 'embedding_add', 'embedding_sub', 'embedding_mul')
ORDER BY 1;

-- ranking with ORDER BY ... LIMIT
CREATE TEMP TABLE pts AS
SELECT i AS id, ARRAY[cos(i * 0.1), sin(i * 0.1)]::float8[]::embedding AS e FROM generate_series(0, 62) i;
SELECT id, round((e <=> '[1,0]')::numeric, 4) AS d FROM pts ORDER BY e <=> '[1,0]', id LIMIT 5;
SELECT id FROM pts ORDER BY e <-> '[0,1]' LIMIT 3;
SELECT id FROM pts ORDER BY e <#> '[-1,0]' LIMIT 3;
