-- ---------------------------------------------------------------------------
-- Operators: all STRICT, IMMUTABLE, PARALLEL SAFE through their functions.
-- ---------------------------------------------------------------------------
CREATE OPERATOR interest.<=> (
    LEFTARG = interest.embedding, RIGHTARG = interest.embedding,
    FUNCTION = interest.cosine_distance, COMMUTATOR = OPERATOR(interest.<=>)
);
CREATE OPERATOR interest.<#> (
    LEFTARG = interest.embedding, RIGHTARG = interest.embedding,
    FUNCTION = interest.negative_inner_product, COMMUTATOR = OPERATOR(interest.<#>)
);
CREATE OPERATOR interest.<-> (
    LEFTARG = interest.embedding, RIGHTARG = interest.embedding,
    FUNCTION = interest.l2_distance, COMMUTATOR = OPERATOR(interest.<->)
);
CREATE OPERATOR interest.+ (
    LEFTARG = interest.embedding, RIGHTARG = interest.embedding,
    FUNCTION = interest.embedding_add, COMMUTATOR = OPERATOR(interest.+)
);
CREATE OPERATOR interest.- (
    LEFTARG = interest.embedding, RIGHTARG = interest.embedding,
    FUNCTION = interest.embedding_sub
);
CREATE OPERATOR interest.* (
    LEFTARG = interest.embedding, RIGHTARG = double precision,
    FUNCTION = interest.embedding_mul, COMMUTATOR = OPERATOR(interest.*)
);
CREATE OPERATOR interest.* (
    LEFTARG = double precision, RIGHTARG = interest.embedding,
    FUNCTION = interest.scalar_mul_embedding, COMMUTATOR = OPERATOR(interest.*)
);

-- ---------------------------------------------------------------------------
-- Casts: typmod coercion, arrays in and out.
-- ---------------------------------------------------------------------------
CREATE CAST (interest.embedding AS interest.embedding)
    WITH FUNCTION interest.embedding(interest.embedding, integer, boolean) AS IMPLICIT;
CREATE CAST (real[] AS interest.embedding)
    WITH FUNCTION interest.real_array_to_embedding(real[], integer, boolean) AS ASSIGNMENT;
CREATE CAST (double precision[] AS interest.embedding)
    WITH FUNCTION interest.double_array_to_embedding(double precision[], integer, boolean) AS ASSIGNMENT;
CREATE CAST (integer[] AS interest.embedding)
    WITH FUNCTION interest.integer_array_to_embedding(integer[], integer, boolean) AS ASSIGNMENT;
CREATE CAST (interest.embedding AS real[])
    WITH FUNCTION interest.embedding_to_real_array(interest.embedding, integer, boolean) AS ASSIGNMENT;

-- ---------------------------------------------------------------------------
-- Aggregates: state is float8[] {count, sums...}, parallel-combinable.
-- ---------------------------------------------------------------------------
CREATE AGGREGATE interest.avg(interest.embedding) (
    SFUNC = interest.embedding_accum, STYPE = double precision[], INITCOND = '{0}',
    FINALFUNC = interest.embedding_avg_final, COMBINEFUNC = interest.embedding_combine,
    PARALLEL = SAFE
);
CREATE AGGREGATE interest.sum(interest.embedding) (
    SFUNC = interest.embedding_accum, STYPE = double precision[], INITCOND = '{0}',
    FINALFUNC = interest.embedding_sum_final, COMBINEFUNC = interest.embedding_combine,
    PARALLEL = SAFE
);

-- ---------------------------------------------------------------------------
-- Model registry. File paths are relative to a directory of interest.model_dir
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

-- ---------------------------------------------------------------------------
-- Documentation of every public object.
-- ---------------------------------------------------------------------------
COMMENT ON TYPE interest.embedding IS
    'Dense float4 vector (1 to 16000 dimensions) with pgvector''s memory layout; text form [1,2,3]; embedding(n) checks the dimension.';
COMMENT ON FUNCTION interest.embedding_in(cstring, oid, integer) IS 'Input function of interest.embedding.';
COMMENT ON FUNCTION interest.embedding_out(interest.embedding) IS 'Output function of interest.embedding.';
COMMENT ON FUNCTION interest.embedding_typmod_in(cstring[]) IS 'Type modifier (dimension) input of interest.embedding.';
COMMENT ON FUNCTION interest.embedding_recv(internal, oid, integer) IS 'Binary input: int16 dim, int16 0, float4 values (big-endian).';
COMMENT ON FUNCTION interest.embedding_send(interest.embedding) IS 'Binary output: int16 dim, int16 0, float4 values (big-endian).';
COMMENT ON FUNCTION interest.embedding(interest.embedding, integer, boolean) IS 'Checks an embedding against a declared dimension embedding(n).';
COMMENT ON FUNCTION interest.real_array_to_embedding(real[], integer, boolean) IS 'Cast real[] to embedding (no NULLs, finite values).';
COMMENT ON FUNCTION interest.double_array_to_embedding(double precision[], integer, boolean) IS 'Cast double precision[] to embedding.';
COMMENT ON FUNCTION interest.integer_array_to_embedding(integer[], integer, boolean) IS 'Cast integer[] to embedding.';
COMMENT ON FUNCTION interest.embedding_to_real_array(interest.embedding, integer, boolean) IS 'Cast embedding to real[].';
COMMENT ON FUNCTION interest.cosine_distance(interest.embedding, interest.embedding) IS 'Cosine distance 1 - cos(a, b), from 0 to 2; NaN when either vector is zero. Operator <=>.';
COMMENT ON FUNCTION interest.inner_product(interest.embedding, interest.embedding) IS 'Inner product a·b.';
COMMENT ON FUNCTION interest.negative_inner_product(interest.embedding, interest.embedding) IS 'Negative inner product -(a·b), so that ascending order ranks the largest product first. Operator <#>.';
COMMENT ON FUNCTION interest.l2_distance(interest.embedding, interest.embedding) IS 'Euclidean distance. Operator <->.';
COMMENT ON FUNCTION interest.norm(interest.embedding) IS 'Euclidean norm.';
COMMENT ON FUNCTION interest.dims(interest.embedding) IS 'Number of dimensions.';
COMMENT ON FUNCTION interest.normalize(interest.embedding) IS 'The embedding scaled to unit length (a zero vector stays zero). Write it schema-qualified: unqualified normalize(x) is SQL syntax for Unicode normalisation.';
COMMENT ON FUNCTION interest.l2_normalize(interest.embedding) IS 'The embedding scaled to unit length (pgvector''s name; no clash with SQL''s NORMALIZE).';
COMMENT ON FUNCTION interest.embedding_add(interest.embedding, interest.embedding) IS 'Element-wise sum. Operator +.';
COMMENT ON FUNCTION interest.embedding_sub(interest.embedding, interest.embedding) IS 'Element-wise difference. Operator -.';
COMMENT ON FUNCTION interest.embedding_mul(interest.embedding, double precision) IS 'Scalar multiple. Operator *.';
COMMENT ON FUNCTION interest.scalar_mul_embedding(double precision, interest.embedding) IS 'Scalar multiple. Operator *.';
COMMENT ON FUNCTION interest.embedding_accum(double precision[], interest.embedding) IS 'State function of avg(embedding) and sum(embedding).';
COMMENT ON FUNCTION interest.embedding_combine(double precision[], double precision[]) IS 'Combine function of avg(embedding) and sum(embedding).';
COMMENT ON FUNCTION interest.embedding_avg_final(double precision[]) IS 'Final function of avg(embedding).';
COMMENT ON FUNCTION interest.embedding_sum_final(double precision[]) IS 'Final function of sum(embedding).';
COMMENT ON AGGREGATE interest.avg(interest.embedding) IS 'Element-wise mean of embeddings (NULLs skipped).';
COMMENT ON AGGREGATE interest.sum(interest.embedding) IS 'Element-wise sum of embeddings (NULLs skipped).';
COMMENT ON OPERATOR interest.<=> (interest.embedding, interest.embedding) IS 'Cosine distance: ORDER BY e <=> q LIMIT k ranks by similarity.';
COMMENT ON OPERATOR interest.<#> (interest.embedding, interest.embedding) IS 'Negative inner product.';
COMMENT ON OPERATOR interest.<-> (interest.embedding, interest.embedding) IS 'Euclidean distance.';
COMMENT ON OPERATOR interest.+ (interest.embedding, interest.embedding) IS 'Element-wise sum.';
COMMENT ON OPERATOR interest.- (interest.embedding, interest.embedding) IS 'Element-wise difference.';
COMMENT ON OPERATOR interest.* (interest.embedding, double precision) IS 'Scalar multiple.';
COMMENT ON OPERATOR interest.* (double precision, interest.embedding) IS 'Scalar multiple.';
COMMENT ON FUNCTION interest.embed(text, text) IS
    'Embeds a text with the named model (default all-MiniLM-L6-v2): mean pooling over the attention mask, L2-normalised. IMMUTABLE: a model name stands for fixed files, checked by sha256.';
COMMENT ON FUNCTION interest.embed(text[], text) IS
    'Embeds many texts in batches of interest.batch_size, each padded to its longest text; NULL elements give NULL.';
COMMENT ON FUNCTION interest.register_model(text, text, text, text, boolean, integer) IS
    'Superuser only: registers a BERT-family ONNX encoder and its tokenizer.json from a directory of interest.model_dir; returns its dimension.';
COMMENT ON FUNCTION interest.unregister_model(text) IS 'Superuser only: removes a registered model (not the default one).';
COMMENT ON FUNCTION interest.loaded_models() IS 'Models this backend has loaded into ONNX Runtime.';
COMMENT ON TABLE interest.models IS 'Registered embedding models: files (relative to interest.model_dir), sha256, dimension, max tokens, pooling, normalisation.';

-- ---------------------------------------------------------------------------
-- Dynamic user interests: read side (keys of type int, bigint, text, uuid...).
-- ---------------------------------------------------------------------------
CREATE FUNCTION interest.user_vector(user_key text, events regclass DEFAULT NULL) RETURNS interest.embedding
LANGUAGE sql STABLE PARALLEL UNSAFE AS $$ SELECT interest._user_vector($1, interest._event_source($2::oid)) $$;
CREATE FUNCTION interest.user_vector(user_key anyelement, events regclass DEFAULT NULL) RETURNS interest.embedding
LANGUAGE sql STABLE PARALLEL UNSAFE AS $$ SELECT interest._user_vector($1::text, interest._event_source($2::oid)) $$;
CREATE FUNCTION interest.interests(user_key text, events regclass DEFAULT NULL)
RETURNS TABLE (slot integer, weight double precision, last_seen timestamptz, events bigint, centroid interest.embedding, recent_items text[])
LANGUAGE sql STABLE PARALLEL UNSAFE AS $$
    SELECT slot, weight, to_timestamp(last_seen_epoch), events, centroid, recent_items
    FROM interest._interests($1, interest._event_source($2::oid)) ORDER BY weight DESC, slot
$$;
CREATE FUNCTION interest.interests(user_key anyelement, events regclass DEFAULT NULL)
RETURNS TABLE (slot integer, weight double precision, last_seen timestamptz, events bigint, centroid interest.embedding, recent_items text[])
LANGUAGE sql STABLE PARALLEL UNSAFE AS $$ SELECT * FROM interest.interests($1::text, $2) $$;

COMMENT ON FUNCTION interest.user_vector(text, regclass) IS
    'A user''s interest vector: sub-interests combined by time-decayed weight; use in ORDER BY e <=> interest.user_vector(u) LIMIT k. NULL for a user with no events.';
COMMENT ON FUNCTION interest.user_vector(anyelement, regclass) IS 'user_vector for int, bigint or uuid user keys.';
COMMENT ON FUNCTION interest.interests(text, regclass) IS
    'A user''s sub-interests: share of the decayed weight, last event, event count, unit vector, and the recent items nearest to it.';
COMMENT ON FUNCTION interest.interests(anyelement, regclass) IS 'interests for int, bigint or uuid user keys.';
COMMENT ON FUNCTION interest.attach_items(regclass, name, text, text, name) IS
    'Keeps item embeddings current for an existing table (statement triggers): text is a column or SQL expression over the row, or embedding_column holds your own embeddings.';
COMMENT ON FUNCTION interest.detach_items(regclass) IS 'Removes the triggers and bookkeeping of attach_items; the table and its rows are untouched.';
COMMENT ON FUNCTION interest.attach_events(regclass, name, name, name, name, name, jsonb, name, interval, regclass, integer, real) IS
    'Maintains every user''s time-decayed, multi-interest state from an existing events table (statement triggers with transition tables).';
COMMENT ON FUNCTION interest.detach_events(regclass) IS 'Removes the triggers and interest state of attach_events; the table and its rows are untouched.';
COMMENT ON FUNCTION interest.rebuild(regclass) IS 'Recomputes every user''s interest state from the events table, in time order; returns the number of events read.';
COMMENT ON FUNCTION interest.flush(regclass) IS 'Folds the table''s queued events (from small statements) into the shared state now: user states, counts and co-visitation links; returns how many. The triggers do it every interest.fold_batch events.';
COMMENT ON TABLE interest.event_queue IS 'Events of small statements waiting to be folded into the shared state (every interest.fold_batch events, or by interest.flush); readers fold a user''s queued events on the fly.';
COMMENT ON TABLE interest.item_sources IS 'Attached items tables.';
COMMENT ON TABLE interest.item_embeddings IS 'Item embeddings by attached table and item key.';
COMMENT ON TABLE interest.event_sources IS 'Attached events tables and their settings (center: the items'' mean embedding that sub-interests are clustered around, fixed at first use).';
COMMENT ON TABLE interest.user_states IS 'Per user: reference time, decayed total vector, event count.';
COMMENT ON TABLE interest.user_interests IS 'Per user and slot: a sub-interest''s decayed sum, mass, signed weight and last event.';
COMMENT ON TABLE interest.pending_events IS 'Events whose item had no embedding yet; applied when it arrives.';
COMMENT ON TABLE interest.bookkeeping_errors IS 'Bookkeeping failures; the application''s rows were kept; interest.rebuild() repairs.';
CREATE VIEW interest.item_status AS SELECT * FROM interest._item_status();
COMMENT ON VIEW interest.item_status IS 'Attached items tables: estimated rows, embedded items, events waiting for their item''s embedding.';
CREATE VIEW interest.event_status AS SELECT * FROM interest._event_status();
COMMENT ON VIEW interest.event_status IS 'Attached events tables: users with an interest state, events queued by small statements (not yet folded), events waiting for their item''s embedding, and when the queue was last folded.';
COMMENT ON PROCEDURE interest.backfill_items(regclass, integer) IS
    'Embeds existing rows of an attached items table that have no embedding, committing per batch with a NOTICE; CALL it again to resume.';


CREATE FUNCTION interest.set_profile(user_key text, profile text, events regclass DEFAULT NULL) RETURNS boolean
LANGUAGE sql VOLATILE AS $$ SELECT interest._set_profile($1, $2, interest._event_source($3::oid)) $$;
CREATE FUNCTION interest.set_profile(user_key anyelement, profile text, events regclass DEFAULT NULL) RETURNS boolean
LANGUAGE sql VOLATILE AS $$ SELECT interest._set_profile($1::text, $2, interest._event_source($3::oid)) $$;
COMMENT ON FUNCTION interest.set_profile(text, text, regclass) IS
    'Cold start: a text profile counts as one event at the time it is set, so it seeds a user with no events and fades as events arrive; NULL removes it.';
COMMENT ON FUNCTION interest.set_profile(anyelement, text, regclass) IS 'set_profile for int, bigint or uuid user keys.';
COMMENT ON TABLE interest.user_profiles IS 'Users'' text profiles (cold start) and their embeddings.';

-- ---------------------------------------------------------------------------
-- Recommendations. A weight left NULL takes its default, defined once in Rust
-- (RankWeights::default; see README "Recommendations").
-- ---------------------------------------------------------------------------
CREATE FUNCTION interest.recommend(user_key text, k integer DEFAULT 10, events regclass DEFAULT NULL,
    content double precision DEFAULT NULL, covisit double precision DEFAULT NULL,
    popularity double precision DEFAULT NULL, freshness double precision DEFAULT NULL,
    diversity double precision DEFAULT NULL, exclude_seen boolean DEFAULT true, exclude text[] DEFAULT NULL,
    filter text DEFAULT NULL, as_of timestamptz DEFAULT NULL, balance double precision DEFAULT NULL)
RETURNS TABLE (item text, score double precision, reason text)
-- Invoker rights and the caller's search_path: `filter` is the caller's own
-- SQL over the items table, so it runs exactly as if they had typed it.
LANGUAGE plpgsql STABLE AS $$
DECLARE
    src integer := interest._event_source(events::oid);
    allowed text[];
    q text;
BEGIN
    IF filter IS NOT NULL THEN
        SELECT format('SELECT array_agg((%I)::text) FROM %s WHERE (%s)', s.id_column, s.relid, filter) INTO q
        FROM interest.event_sources e JOIN interest.item_sources s ON s.id = e.item_source_id WHERE e.id = src;
        IF q IS NULL THEN
            RAISE EXCEPTION 'filter needs an attached items table' USING ERRCODE = '55000',
                DETAIL = 'The events table has no items table to apply the predicate to.',
                HINT = 'Attach the items table with interest.attach_items, or leave filter out.';
        END IF;
        EXECUTE q INTO allowed;
        allowed := coalesce(allowed, '{}');
    END IF;
    RETURN QUERY SELECT r.item, r.score, r.reason
    FROM interest._recommend(src, user_key, k, content, covisit, popularity, freshness, diversity,
                             exclude_seen, exclude, allowed, extract(epoch FROM as_of)::float8, balance) r;
END $$;
CREATE FUNCTION interest.recommend(user_key anyelement, k integer DEFAULT 10, events regclass DEFAULT NULL,
    content double precision DEFAULT NULL, covisit double precision DEFAULT NULL,
    popularity double precision DEFAULT NULL, freshness double precision DEFAULT NULL,
    diversity double precision DEFAULT NULL, exclude_seen boolean DEFAULT true, exclude text[] DEFAULT NULL,
    filter text DEFAULT NULL, as_of timestamptz DEFAULT NULL, balance double precision DEFAULT NULL)
RETURNS TABLE (item text, score double precision, reason text)
LANGUAGE sql STABLE AS $$
    SELECT * FROM interest.recommend($1::text, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
$$;
COMMENT ON FUNCTION interest.recommend(text, integer, regclass, double precision, double precision, double precision, double precision, double precision, boolean, text[], text, timestamptz, double precision) IS
    'Top-k items for a user: content (the cosine to each sub-interest, weighted by its share; balance: the fraction of the list that follows the sub-interests'' shares; a taste with at least 20% of the recent mass is guaranteed floor(balance * k * share) places), co-visitation from the user''s recent items, popularity and freshness, with an MMR diversity knob; seen and excluded items left out; filter is a SQL predicate on the items table applied before ranking. Returns the item key, the score (the sum of interest.explain''s parts) and a reason.';
COMMENT ON FUNCTION interest.recommend(anyelement, integer, regclass, double precision, double precision, double precision, double precision, double precision, boolean, text[], text, timestamptz, double precision) IS
    'recommend for int, bigint or uuid user keys.';

CREATE FUNCTION interest.explain(user_key text, item text, events regclass DEFAULT NULL,
    content double precision DEFAULT NULL, covisit double precision DEFAULT NULL,
    popularity double precision DEFAULT NULL, freshness double precision DEFAULT NULL, as_of timestamptz DEFAULT NULL)
RETURNS TABLE (component text, detail text, contribution double precision)
LANGUAGE sql STABLE AS $$
    SELECT * FROM interest._explain(interest._event_source($3::oid), $1, $2, $4, $5, $6, $7, extract(epoch FROM $8)::float8)
$$;
CREATE FUNCTION interest.explain(user_key anyelement, item anyelement, events regclass DEFAULT NULL,
    content double precision DEFAULT NULL, covisit double precision DEFAULT NULL,
    popularity double precision DEFAULT NULL, freshness double precision DEFAULT NULL, as_of timestamptz DEFAULT NULL)
RETURNS TABLE (component text, detail text, contribution double precision)
LANGUAGE sql STABLE AS $$ SELECT * FROM interest.explain($1::text, $2::text, $3, $4, $5, $6, $7, $8) $$;
COMMENT ON FUNCTION interest.explain(text, text, regclass, double precision, double precision, double precision, double precision, timestamptz) IS
    'Why an item scores what it does for a user: one content row per sub-interest (its share times its cosine; the closest one marked), one row per co-visitation link from the user''s recent items, popularity and freshness; the contributions add up to recommend''s score.';
COMMENT ON FUNCTION interest.explain(anyelement, anyelement, regclass, double precision, double precision, double precision, double precision, timestamptz) IS
    'explain for int, bigint or uuid keys (user and item of the same type).';

CREATE FUNCTION interest.similar_items(item text, k integer DEFAULT 10, events regclass DEFAULT NULL,
    content double precision DEFAULT NULL, covisit double precision DEFAULT NULL, as_of timestamptz DEFAULT NULL)
RETURNS TABLE (item text, score double precision)
LANGUAGE sql STABLE AS $$ SELECT * FROM interest._similar_items(interest._event_source($3::oid), $1, $2, $4, $5, extract(epoch FROM $6)::float8) $$;
CREATE FUNCTION interest.similar_items(item anyelement, k integer DEFAULT 10, events regclass DEFAULT NULL,
    content double precision DEFAULT NULL, covisit double precision DEFAULT NULL, as_of timestamptz DEFAULT NULL)
RETURNS TABLE (item text, score double precision)
LANGUAGE sql STABLE AS $$ SELECT * FROM interest.similar_items($1::text, $2, $3, $4, $5, $6) $$;
COMMENT ON FUNCTION interest.similar_items(text, integer, regclass, double precision, double precision, timestamptz) IS
    'Items like a given one: its co-visitation links (normalised by popularity) plus embedding similarity.';
COMMENT ON FUNCTION interest.similar_items(anyelement, integer, regclass, double precision, double precision, timestamptz) IS
    'similar_items for int, bigint or uuid item keys.';

CREATE FUNCTION interest.evaluate(events regclass, k integer DEFAULT 10, holdout integer DEFAULT 1,
    content double precision DEFAULT NULL, covisit double precision DEFAULT NULL,
    popularity double precision DEFAULT NULL, freshness double precision DEFAULT NULL,
    diversity double precision DEFAULT NULL, ablations boolean DEFAULT true, balance double precision DEFAULT NULL,
    new_items double precision DEFAULT 0.1)
RETURNS TABLE (method text, users bigint, hit_rate double precision, ndcg double precision,
               coverage double precision, diversity double precision)
LANGUAGE sql VOLATILE AS $$
    SELECT * FROM interest._evaluate(interest._event_source($1::oid), $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
$$;
COMMENT ON FUNCTION interest.evaluate(regclass, integer, integer, double precision, double precision, double precision, double precision, double precision, boolean, double precision, double precision) IS
    'Leave-last-out offline evaluation: replays each user''s events but the held-out one (holdout 1 = last, 2 = second-to-last for validation), ranks the full catalog with recommend''s code (seen items excluded) and returns HR@k, NDCG@k, item coverage and intra-list diversity, with ablations and popularity and item-kNN baselines. With new_items > 0 (default 0.1) it also runs the new-item protocol: that share of the items (a fixed hash of the key) loses all its events, each user is tested on one of them among the new items only, where only content can rank ("new items: recommend"), against a random order ("new items: random", what recommend without content amounts to there).';
COMMENT ON TABLE interest.user_recent IS 'Per user: the last items, which new events link with (co-visitation) and recommend() scores from.';
COMMENT ON TABLE interest.item_stats IS 'Per item: decayed event count, first and last event, and its strongest co-visitation links.';

-- The trigger entry points run a handful of fixed statements per event
-- statement through plans cached per backend. Their `= ANY($n)` arguments
-- made the plan cache re-plan on every call (a custom plan looked cheaper):
-- about 15% of a single-row insert. The generic plan (index probes) is right
-- for one key and for a COPY's thousands alike.
ALTER FUNCTION interest._apply_events SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION interest._events_rewritten SET plan_cache_mode = force_generic_plan;
