-- ---------------------------------------------------------------------------
-- api.sql: the public read and write API (user_vector, interests,
-- set_profile, recommend, explain, similar_items, evaluate, flush, rebuild),
-- the queue folder's round, the status views and plan settings, each
-- function followed by its COMMENT. The `finalize` block: its LANGUAGE sql
-- bodies are checked at creation, so it runs after every Rust function.
-- ---------------------------------------------------------------------------

-- ---------------------------------------------------------------------------
-- Read side (keys of type int, bigint, text, uuid...).
-- ---------------------------------------------------------------------------
CREATE FUNCTION interest.user_vector(user_key text, events regclass DEFAULT NULL) RETURNS interest.embedding
LANGUAGE sql STABLE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp AS $$ SELECT interest._user_vector($1, interest._event_source($2::pg_catalog.oid)) $$;
COMMENT ON FUNCTION interest.user_vector(text, regclass) IS
    'A user''s interest vector: sub-interests combined by time-decayed weight; use in ORDER BY e <=> interest.user_vector(u) LIMIT k. NULL for a user with no events.';
CREATE FUNCTION interest.user_vector(user_key anyelement, events regclass DEFAULT NULL) RETURNS interest.embedding
LANGUAGE sql STABLE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp AS $$ SELECT interest._user_vector($1::pg_catalog.text, interest._event_source($2::pg_catalog.oid)) $$;
COMMENT ON FUNCTION interest.user_vector(anyelement, regclass) IS 'user_vector for int, bigint or uuid user keys.';
CREATE FUNCTION interest.interests(user_key text, events regclass DEFAULT NULL)
RETURNS TABLE (slot integer, weight double precision, last_seen timestamptz, events bigint, centroid interest.embedding, recent_items text[])
LANGUAGE sql STABLE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT slot, weight, to_timestamp(last_seen_epoch), events, centroid, recent_items
    FROM interest._interests($1, interest._event_source($2::pg_catalog.oid)) ORDER BY weight DESC, slot
$$;
COMMENT ON FUNCTION interest.interests(text, regclass) IS
    'A user''s sub-interests: share of the decayed weight, last event, event count, unit vector, and the recent items nearest to it.';
CREATE FUNCTION interest.interests(user_key anyelement, events regclass DEFAULT NULL)
RETURNS TABLE (slot integer, weight double precision, last_seen timestamptz, events bigint, centroid interest.embedding, recent_items text[])
LANGUAGE sql STABLE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp AS $$ SELECT * FROM interest.interests($1::pg_catalog.text, $2) $$;
COMMENT ON FUNCTION interest.interests(anyelement, regclass) IS 'interests for int, bigint or uuid user keys.';

-- Cold start.
CREATE FUNCTION interest.set_profile(user_key text, profile text, events regclass DEFAULT NULL) RETURNS boolean
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$ SELECT interest._set_profile($1, $2, interest._event_source($3::pg_catalog.oid)) $$;
COMMENT ON FUNCTION interest.set_profile(text, text, regclass) IS
    'Cold start: a text profile counts as one event at the time it is set, so it seeds a user with no events and fades as events arrive; NULL removes it.';
CREATE FUNCTION interest.set_profile(user_key anyelement, profile text, events regclass DEFAULT NULL) RETURNS boolean
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$ SELECT interest._set_profile($1::pg_catalog.text, $2, interest._event_source($3::pg_catalog.oid)) $$;
COMMENT ON FUNCTION interest.set_profile(anyelement, text, regclass) IS 'set_profile for int, bigint or uuid user keys.';

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
    src integer := interest._event_source(events::pg_catalog.oid);
    allowed pg_catalog.text[];
    q pg_catalog.text;
BEGIN
    -- The caller's predicate, run as they typed it (row-level security on
    -- the items table is applied by interest._recommend itself).
    IF filter IS NOT NULL THEN
        -- (the extension's own names qualified: under the caller's
        -- search_path, an unqualified one could be another role's function)
        SELECT pg_catalog.format('SELECT pg_catalog.array_agg((%I)::pg_catalog.text) FROM %s WHERE (%s)', s.id_column, s.relid, filter) INTO q
        FROM interest.event_sources e JOIN interest.item_sources s ON s.id OPERATOR(pg_catalog.=) e.item_source_id
        WHERE e.id OPERATOR(pg_catalog.=) src;
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
                             exclude_seen, exclude, allowed, extract(epoch FROM as_of)::pg_catalog.float8, balance) r;
END $$;
COMMENT ON FUNCTION interest.recommend(text, integer, regclass, double precision, double precision, double precision, double precision, double precision, boolean, text[], text, timestamptz, double precision) IS
    'Top-k items for a user: content (the cosine to each sub-interest, weighted by its share; balance: the fraction of the list that follows the sub-interests'' shares; a taste with at least 20% of the recent mass is guaranteed floor(balance * k * share) places), co-visitation from the user''s recent items, popularity and freshness, with an MMR diversity knob; seen and excluded items left out; filter is a SQL predicate on the items table applied before ranking. Returns the item key, the score (the sum of interest.explain''s parts) and a reason.';

CREATE FUNCTION interest.recommend(user_key anyelement, k integer DEFAULT 10, events regclass DEFAULT NULL,
    content double precision DEFAULT NULL, covisit double precision DEFAULT NULL,
    popularity double precision DEFAULT NULL, freshness double precision DEFAULT NULL,
    diversity double precision DEFAULT NULL, exclude_seen boolean DEFAULT true, exclude text[] DEFAULT NULL,
    filter text DEFAULT NULL, as_of timestamptz DEFAULT NULL, balance double precision DEFAULT NULL)
RETURNS TABLE (item text, score double precision, reason text)
LANGUAGE sql STABLE AS $$
    SELECT * FROM interest.recommend($1::pg_catalog.text, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
$$;
COMMENT ON FUNCTION interest.recommend(anyelement, integer, regclass, double precision, double precision, double precision, double precision, double precision, boolean, text[], text, timestamptz, double precision) IS
    'recommend for int, bigint or uuid user keys.';

CREATE FUNCTION interest.cached_catalogs() RETURNS TABLE (items regclass, embeddings bigint, bytes bigint)
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT s.relid::pg_catalog.regclass, c.embeddings, c.bytes
    FROM interest._cached_catalogs() c JOIN interest.item_sources s ON s.id = c.source_id ORDER BY 1
$$;
COMMENT ON FUNCTION interest.cached_catalogs() IS
    'The items tables whose embeddings this backend holds in memory (bytes approximate): recommend, explain and similar_items rank every item from such a copy when the source has no vector index (interest.index_items). Empty while calls are served from candidates (a call whose candidates leave fewer than k eligible items even after widening, and evaluate, read the catalog for that call only).';

CREATE FUNCTION interest.explain(user_key text, item text, events regclass DEFAULT NULL,
    content double precision DEFAULT NULL, covisit double precision DEFAULT NULL,
    popularity double precision DEFAULT NULL, freshness double precision DEFAULT NULL, as_of timestamptz DEFAULT NULL)
RETURNS TABLE (component text, detail text, contribution double precision)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM interest._explain(interest._event_source($3::pg_catalog.oid), $1, $2, $4, $5, $6, $7, extract(epoch FROM $8)::pg_catalog.float8)
$$;
COMMENT ON FUNCTION interest.explain(text, text, regclass, double precision, double precision, double precision, double precision, timestamptz) IS
    'Why an item scores what it does for a user: one content row per sub-interest (its share times its cosine; the closest one marked), one row per co-visitation link from the user''s recent items, popularity and freshness; the contributions add up to recommend''s score.';

CREATE FUNCTION interest.explain(user_key anyelement, item anycompatible, events regclass DEFAULT NULL,
    content double precision DEFAULT NULL, covisit double precision DEFAULT NULL,
    popularity double precision DEFAULT NULL, freshness double precision DEFAULT NULL, as_of timestamptz DEFAULT NULL)
RETURNS TABLE (component text, detail text, contribution double precision)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$ SELECT * FROM interest.explain($1::pg_catalog.text, $2::pg_catalog.text, $3, $4, $5, $6, $7, $8) $$;
COMMENT ON FUNCTION interest.explain(anyelement, anycompatible, regclass, double precision, double precision, double precision, double precision, timestamptz) IS
    'explain for int, bigint, uuid or text keys (user and item of any types).';

CREATE FUNCTION interest.similar_items(item text, k integer DEFAULT 10, events regclass DEFAULT NULL,
    content double precision DEFAULT NULL, covisit double precision DEFAULT NULL, as_of timestamptz DEFAULT NULL)
RETURNS TABLE (item text, score double precision)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$ SELECT * FROM interest._similar_items(interest._event_source($3::pg_catalog.oid), $1, $2, $4, $5, extract(epoch FROM $6)::pg_catalog.float8) $$;
COMMENT ON FUNCTION interest.similar_items(text, integer, regclass, double precision, double precision, timestamptz) IS
    'Items like a given one: its co-visitation links (normalised by popularity) plus embedding similarity.';

CREATE FUNCTION interest.similar_items(item anyelement, k integer DEFAULT 10, events regclass DEFAULT NULL,
    content double precision DEFAULT NULL, covisit double precision DEFAULT NULL, as_of timestamptz DEFAULT NULL)
RETURNS TABLE (item text, score double precision)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$ SELECT * FROM interest.similar_items($1::pg_catalog.text, $2, $3, $4, $5, $6) $$;
COMMENT ON FUNCTION interest.similar_items(anyelement, integer, regclass, double precision, double precision, timestamptz) IS
    'similar_items for int, bigint or uuid item keys.';

CREATE FUNCTION interest.evaluate(events regclass, k integer DEFAULT 10, holdout integer DEFAULT 1,
    content double precision DEFAULT NULL, covisit double precision DEFAULT NULL,
    popularity double precision DEFAULT NULL, freshness double precision DEFAULT NULL,
    diversity double precision DEFAULT NULL, ablations boolean DEFAULT true, balance double precision DEFAULT NULL,
    new_items double precision DEFAULT 0.1, protocol text DEFAULT 'leave-last-out', time_cut double precision DEFAULT 0.8)
RETURNS TABLE (method text, users bigint, hit_rate double precision, hit_rate_se double precision,
               ndcg double precision, ndcg_se double precision, coverage double precision, diversity double precision)
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM interest._evaluate(interest._event_source($1::pg_catalog.oid), $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
$$;
COMMENT ON FUNCTION interest.evaluate(regclass, integer, integer, double precision, double precision, double precision, double precision, double precision, boolean, double precision, double precision, text, double precision) IS
    'Offline evaluation with recommend''s code over the full catalog (seen items excluded): HR@k and NDCG@k with their standard errors, item coverage and intra-list diversity, for recommend, its ablations, and the popularity, item-kNN and sequential co-visitation baselines. protocol ''leave-last-out'' replays each user''s events but the held-out one (holdout 1 = last, 2 = second-to-last for validation); protocol ''time'' replays every event before the time_cut quantile of event times, asks at that time, and tests each user on their first event after it (nothing later leaks into links or counts). With new_items > 0 (default 0.1) it also runs the new-item protocol: that share of the items (a fixed hash of the key) loses all its events, each user is tested on one of them among the new items only, where only content can rank ("new items: recommend"), against a random order ("new items: random", what recommend without content amounts to there).';
-- ---------------------------------------------------------------------------
-- Queue folding and repair.
-- ---------------------------------------------------------------------------
-- Folds every queued event of the table into the shared state now (the
-- triggers do it every interest.fold_batch events); returns how many. It
-- waits for the table's bookkeeping lock exclusively: call it alone or first
-- in a transaction (after other bookkeeping in the same transaction, two such
-- callers can deadlock, and one is aborted).
CREATE FUNCTION interest.flush(events regclass) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM interest._require_table(events);
    PERFORM interest._require_writable('interest.flush()');
    RETURN interest._fold_queue(interest._event_source(events::pg_catalog.oid), true);
END $$;
COMMENT ON FUNCTION interest.flush(regclass) IS 'Folds the table''s queued events (from small statements) into the shared state now: user states, counts and co-visitation links; returns how many. The triggers do it every interest.fold_batch events.';

-- The queue folder's round (background worker): every table with queued
-- events, each in a block of its own so that one failure holds up no other.
CREATE FUNCTION interest._fold_all() RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s record;
    n bigint := 0;
    err_detail text;
    failed integer[] := '{}';
BEGIN
    FOR s IN SELECT es.id, es.relid FROM interest.event_sources es
             WHERE EXISTS (SELECT 1 FROM interest.event_queue q WHERE q.source_id = es.id)
                OR EXISTS (SELECT 1 FROM interest.rewrite_queue r WHERE r.source_id = es.id)
                OR EXISTS (SELECT 1 FROM interest.pending_events p JOIN interest.item_embeddings e
                           ON e.source_id = es.item_source_id AND e.item_key = p.item_key WHERE p.source_id = es.id)
             ORDER BY es.id LOOP
        BEGIN
            n := n + interest._fold_queue(s.id, false);
        EXCEPTION WHEN query_canceled OR OTHERS THEN
            failed := failed || s.id;
            GET STACKED DIAGNOSTICS err_detail = PG_EXCEPTION_DETAIL;
            PERFORM interest._bookkeeping_failed(s.relid, true, SQLSTATE, SQLERRM, err_detail);
        END;
    END LOOP;
    -- Queues empty as far as we can see (their events may be uncommitted):
    -- folded now all the same, so small statements leave folding to us.
    UPDATE interest.event_sources SET folded_at = clock_timestamp()
    WHERE id IN (SELECT id FROM interest.event_sources FOR UPDATE SKIP LOCKED)
      AND id <> ALL (failed)
      AND (folded_at IS NULL OR folded_at < clock_timestamp() - interval '100 ms');
    RETURN n;
END $$;
REVOKE ALL ON FUNCTION interest._fold_all() FROM PUBLIC;

-- The queue folder's other round: vector indexes that index_items built and
-- that are gone (a restored database: a dump carries item_sources'
-- vector_index, not the index) are built again with the same arguments,
-- each in a block of its own. Not while pg_restore is loading this database
-- (the embeddings may be half there), nor for a source without embeddings.
-- A lock it cannot have within 5 s fails the attempt (so the worker does
-- not queue behind a long transaction, and writers queue behind it for at
-- most that long before it starts); once started, writes to the items
-- table wait for the build (as for index_items). Returns how many attempts
-- failed.
CREATE FUNCTION interest._rebuild_missing_indexes() RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s record;
    failed integer := 0;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'pg_restore') THEN
        RETURN 0;
    END IF;
    PERFORM set_config('lock_timeout', '5s', true);
    FOR s IN SELECT i.id, i.relid, i.vector_index FROM interest.item_sources i
             WHERE i.vector_index IS NOT NULL
               AND to_regclass('interest.' || interest._items_index_name(i.id)) IS NULL
             ORDER BY i.id LOOP
        BEGIN
            -- (asked apart from the loop's query: a query still open on the
            -- table would forbid the CREATE INDEX; in the block, so a lock
            -- timeout here is one failed attempt too)
            CONTINUE WHEN NOT EXISTS (SELECT 1 FROM interest.item_embeddings e WHERE e.source_id = s.id);
            PERFORM interest._index_items(s.relid, s.vector_index);
            RAISE LOG 'pg_interest: rebuilt the missing vector index of items table %', s.relid;
        EXCEPTION WHEN OTHERS THEN
            failed := failed + 1;
            RAISE WARNING 'pg_interest: could not rebuild the vector index of items table %: %', s.relid, SQLERRM;
        END;
    END LOOP;
    RETURN failed;
END $$;
REVOKE ALL ON FUNCTION interest._rebuild_missing_indexes() FROM PUBLIC;
-- Reads a table as its owner (src/owner_read.rs): for the extension's own functions only.
REVOKE ALL ON FUNCTION interest._owner_rows(integer, text[]) FROM PUBLIC;

CREATE FUNCTION interest.rebuild(events regclass) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE src integer;
BEGIN
    PERFORM interest._require_owner(events);
    PERFORM interest._require_writable('interest.rebuild()');
    SELECT id INTO src FROM interest.event_sources WHERE relid = events;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'table % is not attached', events USING ERRCODE = '55000',
            DETAIL = 'interest.event_sources has no row for it.', HINT = 'Call interest.attach_events first.';
    END IF;
    RETURN interest._rebuild_all(src);
EXCEPTION WHEN data_exception THEN
    -- A value of the table that cannot be read as an event (a weight column
    -- of text holding a word, say): the row is named by the error.
    RAISE EXCEPTION '%', SQLERRM USING ERRCODE = SQLSTATE,
        DETAIL = format('Reading %s through its attached columns failed; the interest state is unchanged.', events),
        HINT = 'Fix or delete the row, or detach the table and attach it again with other columns.';
END $$;
COMMENT ON FUNCTION interest.rebuild(regclass) IS 'Recomputes every user''s interest state from the events table, in time order; returns the number of events read.';

-- ---------------------------------------------------------------------------
-- Status views.
-- ---------------------------------------------------------------------------
CREATE VIEW interest.item_status AS SELECT * FROM interest._item_status();
COMMENT ON VIEW interest.item_status IS 'Attached items tables: estimated rows, embedded items, events waiting for their item''s embedding.';
CREATE VIEW interest.event_status AS SELECT * FROM interest._event_status();
COMMENT ON VIEW interest.event_status IS 'Attached events tables: users with an interest state, events queued by small statements (not yet folded), events waiting for their item''s embedding, and when the queue was last folded.';
-- Each lists only the tables the reader has a right on (see _item_status).
GRANT SELECT ON interest.item_status, interest.event_status TO PUBLIC;

-- The trigger entry points run a handful of fixed statements per event
-- statement through plans cached per backend. Their `= ANY($n)` arguments
-- made the plan cache re-plan on every call (a custom plan looked cheaper),
-- a real share of a single-row insert. The generic plan (index probes) is right
-- for one key and for a COPY's thousands alike.
ALTER FUNCTION interest._apply_events SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION interest._events_rewritten SET plan_cache_mode = force_generic_plan;

-- ---------------------------------------------------------------------------
-- Synthetic data (src/synthetic.rs, crates/interest-core/src/synthetic.rs).
-- ---------------------------------------------------------------------------
CREATE FUNCTION interest.synthetic_items(seed bigint DEFAULT 1, users integer DEFAULT 1000,
    items integer DEFAULT 2000, years double precision DEFAULT 4)
RETURNS TABLE (item_id integer, title text, topic integer, created_at timestamptz)
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT item_id, title, topic, to_timestamp(created_epoch) FROM interest._synthetic_items($1, $2, $3, $4)
$$;
COMMENT ON FUNCTION interest.synthetic_items(bigint, integer, integer, double precision) IS
    'The catalog of a deterministic synthetic shop (same seed and sizes, same rows everywhere): items in series within topics, titles from each topic''s vocabulary, arriving over the years. Pair it with synthetic_events of the same arguments.';
CREATE FUNCTION interest.synthetic_events(seed bigint DEFAULT 1, users integer DEFAULT 1000,
    items integer DEFAULT 2000, years double precision DEFAULT 4)
RETURNS TABLE (user_id integer, item_id integer, kind text, at timestamptz)
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT user_id, item_id, kind, to_timestamp(at_epoch) FROM interest._synthetic_events($1, $2, $3, $4)
$$;
COMMENT ON FUNCTION interest.synthetic_events(bigint, integer, integer, double precision) IS
    'The events of the synthetic shop of synthetic_items with the same arguments: several drifting tastes per user, multi-year histories with quiet gaps, series followed in order, sessions with tied timestamps, some dislikes (kind view, click, purchase or dislike).';

-- ---------------------------------------------------------------------------
-- Tuning (src/evaluate.rs, crates/interest-core/src/tuning.rs).
-- ---------------------------------------------------------------------------
CREATE FUNCTION interest.tune(events regclass, protocol text DEFAULT 'leave-last-out',
    time_cut double precision DEFAULT 0.8, budget interval DEFAULT '3 minutes',
    apply boolean DEFAULT true, k integer DEFAULT 10)
RETURNS TABLE (content double precision, covisit double precision, popularity double precision,
               freshness double precision, popularity_half_life interval, hit_rate double precision,
               hit_rate_se double precision, ndcg double precision, ndcg_se double precision, chosen boolean)
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT t.content, t.covisit, t.popularity, t.freshness, justify_hours(make_interval(secs => t.popularity_half_life_secs)),
           t.hit_rate, t.hit_rate_se, t.ndcg, t.ndcg_se, t.chosen
    FROM interest._tune(interest._event_source($1::pg_catalog.oid), $6, $2, $3, extract(epoch FROM $4)::pg_catalog.float8, $5) t
$$;
COMMENT ON FUNCTION interest.tune(regclass, text, double precision, interval, boolean, integer) IS
    'Picks recommend()''s weights (content, covisit, popularity, freshness), then popularity''s half-life (7, 14, 30 or 90 days), for an events table on a validation split of its own events that never holds what evaluate() tests (leave-last-out: each user''s second-to-last event; time: a cut 0.1 earlier than time_cut), trying a grid (the settings in force first) until the budget (at most 1 hour) is spent, with NOTICE progress. With apply (owner only) the best weights are stored in interest.event_sources.rank_weights, the default of recommend, explain, evaluate and tune itself, and a new half-life in event_sources.popularity_half_life (the table''s counts are then recomputed, as by rebuild); returns every setting tried with its validation HR@k and NDCG@k and standard errors, the chosen one marked.';
CREATE FUNCTION interest.use_default_weights(events regclass) RETURNS boolean
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$ SELECT interest._use_default_weights(interest._event_source($1::pg_catalog.oid)) $$;
COMMENT ON FUNCTION interest.use_default_weights(regclass) IS 'Forgets the weights tune() stored for the table: recommend() goes back to the built-in defaults.';
CREATE FUNCTION interest.set_weights(events regclass, content double precision DEFAULT NULL,
    covisit double precision DEFAULT NULL, popularity double precision DEFAULT NULL,
    freshness double precision DEFAULT NULL) RETURNS boolean
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$ SELECT interest._set_weights(interest._event_source($1::pg_catalog.oid), $2, $3, $4, $5) $$;
COMMENT ON FUNCTION interest.set_weights(regclass, double precision, double precision, double precision, double precision) IS
    'Pins recommend()''s weights for the table by hand (NULL: that weight''s default), stored in interest.event_sources.rank_weights as tune() stores its choice; owner only.';
