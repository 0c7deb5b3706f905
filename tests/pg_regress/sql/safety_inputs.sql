-- Inputs a new DBA gives: over-long keys, NULL arguments, columns of the
-- wrong type, settings out of range, times out of range, mixed key types, and
-- roles without rights. Each gets a real SQLSTATE with a detail and a hint
-- (never XX000), and no application row is ever lost to one.
SET search_path = public, interest;
SET interest.fold_interval = 0;
CREATE TABLE k_items (sku text PRIMARY KEY, title text);
SELECT attach_items('k_items', 'sku', text => 'title') > 0 AS attached;
CREATE TABLE k_events (id serial PRIMARY KEY, customer text, sku text, at timestamptz, w float8);
SELECT attach_events('k_events', 'customer', 'sku', time_column => 'at', weight_column => 'w', items => 'k_items') > 0 AS attached;

-- 1. Keys longer than 1,024 bytes would not fit the bookkeeping's indexes:
-- such items and events are stored, logged once per statement, and skipped;
-- the statement's other rows count, and folds and rebuilds keep working.
DELETE FROM interest.bookkeeping_errors;
INSERT INTO k_items VALUES ('shoe', 'red running shoes'), (repeat('x', 6000), 'blue jeans'), ('tea', 'green tea'),
  (repeat('é', 512), 'black coffee'), (repeat('é', 513), 'white coffee');
SELECT count(*) AS item_rows, (SELECT count(*) FROM interest.item_embeddings e JOIN interest.item_sources s ON s.id = e.source_id
  WHERE s.relid = 'k_items'::regclass) AS embedded FROM k_items;
-- a single-row statement (the queue's fast path) and a bulk one
INSERT INTO k_events (customer, sku, at) VALUES ('ann', repeat('x', 6000), '2024-01-01');
INSERT INTO k_events (customer, sku, at) VALUES ('ann', 'shoe', '2024-01-02');
INSERT INTO k_events (customer, sku, at)
SELECT CASE WHEN g % 10 = 0 THEN repeat('u', 2000) ELSE 'c' || g END, CASE WHEN g % 7 = 0 THEN repeat('y', 1025) ELSE 'tea' END,
       '2024-01-03'::timestamptz + g * interval '1 minute'
FROM generate_series(1, 100) g;
SELECT count(*) AS event_rows FROM k_events;
SELECT sqlstate, message, left(detail, 60) AS detail FROM interest.bookkeeping_errors ORDER BY id;
SELECT flush('k_events') >= 0 AS flushed, rebuild('k_events') AS replayed;
SELECT count(*) AS users FROM interest.user_states s JOIN interest.event_sources e ON e.id = s.source_id
WHERE e.relid = 'k_events'::regclass;
SELECT count(*) AS errors_after_fold FROM interest.bookkeeping_errors WHERE message NOT LIKE '%over-long%';
SELECT count(*) > 0 AS recommends FROM recommend('ann', 2, events => 'k_events');
-- such a key queued straight through the queue's policy (the triggers never
-- queue one) is left out by the fold, as the validity rule says: the fold
-- and the next ones work (pending_events, whose index holds item keys,
-- would refuse it)
INSERT INTO interest.event_queue (source_id, user_key, item_key, t, weight)
SELECT id, 'ann', repeat('z', 2000), 1.7e9, 1 FROM interest.event_sources WHERE relid = 'k_events'::regclass;
SELECT flush('k_events') >= 0 AS folded;
SELECT (SELECT count(*) FROM interest.event_queue q JOIN interest.event_sources e ON e.id = q.source_id WHERE e.relid = 'k_events'::regclass) AS left_queued,
       (SELECT count(*) FROM interest.pending_events p JOIN interest.event_sources e ON e.id = p.source_id WHERE e.relid = 'k_events'::regclass) AS pending;
INSERT INTO k_events (customer, sku, at) VALUES ('zed', 'tea', '2024-01-05');
SELECT flush('k_events') AS folded_next;
SELECT regress.err($$SELECT set_profile(repeat('u', 1025), 'likes tea', 'k_events')$$);
-- a finite weight too large for single-precision states is a bad value too
DELETE FROM interest.bookkeeping_errors;
INSERT INTO k_events (customer, sku, at, w) VALUES ('heavy', 'tea', '2024-01-04', 1e45);
INSERT INTO k_events (customer, sku, at, w) SELECT 'heavy', 'shoe', '2024-01-04'::timestamptz + g * interval '1 s', CASE WHEN g = 1 THEN -1e300 ELSE 1 END
FROM generate_series(1, 70) g;
SELECT message FROM interest.bookkeeping_errors ORDER BY id;
SELECT flush('k_events') >= 0 AS flushed, rebuild('k_events') > 0 AS rebuilt;
SELECT events FROM interests('heavy', 'k_events');

-- 2. NULL where NULL means nothing: 22004 naming the argument. Every public
-- function is called with NULL in each argument in turn (other arguments
-- valid, each call rolled back): none answers XX000.
CREATE FUNCTION pg_temp.sample(t regtype) RETURNS text LANGUAGE sql AS $$
SELECT CASE t::text
  WHEN 'regclass' THEN $q$'k_events'::regclass$q$ WHEN 'text' THEN $q$'true'::text$q$ WHEN 'name' THEN $q$'customer'::name$q$
  WHEN 'integer' THEN '3' WHEN 'bigint' THEN '1::bigint' WHEN 'double precision' THEN '0.5::float8' WHEN 'real' THEN '0.5::real'
  WHEN 'boolean' THEN 'false' WHEN 'timestamp with time zone' THEN 'now()' WHEN 'interval' THEN $q$'1 second'::interval$q$
  WHEN 'jsonb' THEN $q$'{}'::jsonb$q$ WHEN 'text[]' THEN $q$'{}'::text[]$q$ WHEN 'anyelement' THEN $q$'ann'::text$q$
  WHEN 'anycompatible' THEN $q$'shoe'::text$q$ WHEN 'interest.embedding' THEN $q$'[1,0]'::interest.embedding$q$
  WHEN 'real[]' THEN $q$'{1,0}'::real[]$q$ END $$;
CREATE FUNCTION pg_temp.null_answers() RETURNS TABLE (fn text, arg int, state text, message text) LANGUAGE plpgsql AS $$
DECLARE f record; args text[]; q text;
BEGIN
  FOR f IN SELECT p.proname, p.prokind, p.proargtypes::regtype[] AS types, p.pronargs FROM pg_proc p
           WHERE p.pronamespace = 'interest'::regnamespace AND p.proname NOT LIKE '\_%' AND p.pronargs > 0
             AND p.prokind IN ('f', 'p') AND p.prorettype NOT IN ('trigger'::regtype, 'internal'::regtype, 'index_am_handler'::regtype)
             AND NOT 'internal'::regtype = ANY (p.proargtypes::regtype[])
           ORDER BY 1, 3 LOOP
    FOR i IN 1..f.pronargs LOOP
      SELECT array_agg(CASE WHEN j = i THEN 'NULL::' || f.types[j - 1]::text
                            ELSE coalesce(pg_temp.sample(f.types[j - 1]), 'NULL::' || f.types[j - 1]::text) END ORDER BY j)
      INTO args FROM generate_series(1, f.pronargs) j;
      q := format(CASE f.prokind WHEN 'p' THEN 'CALL interest.%I(%s)' ELSE 'SELECT * FROM interest.%I(%s)' END,
                  f.proname, array_to_string(args, ', '));
      BEGIN
        EXECUTE q;
        RAISE EXCEPTION USING ERRCODE = 'P0005', MESSAGE = 'rolled back';
      EXCEPTION WHEN OTHERS THEN
        fn := f.proname || '(' || array_to_string(f.types, ', ') || ')'; arg := i; state := SQLSTATE; message := SQLERRM;
        RETURN NEXT;
      END;
    END LOOP;
  END LOOP;
END $$;
CREATE TEMP TABLE null_answers AS SELECT * FROM pg_temp.null_answers();
SELECT count(DISTINCT fn) > 30 AS functions_called, count(*) > 100 AS calls FROM null_answers;
SELECT fn, arg, message FROM null_answers WHERE state = 'XX000' ORDER BY 1, 2;
SELECT fn, arg, message FROM null_answers WHERE state = '22004' AND fn ~ '^(recommend|explain|similar_items|evaluate|set_profile|flush)\(' ORDER BY 1, 2;
SELECT regress.err($$SELECT * FROM recommend(NULL::text, 3, events => 'k_events')$$);
SELECT regress.err($$SELECT * FROM recommend('ann', NULL, events => 'k_events')$$);
-- a user without events gets the cold-start list, as the hint says
SELECT count(*) > 0 AS cold_start FROM recommend('', 2, events => 'k_events');

-- 3. Columns an events table cannot be read through are refused at attach
-- and at ALTER TABLE (42804), not at every insert afterwards.
CREATE DOMAIN k_moment AS timestamptz;
CREATE TABLE k_bad (u int, i text, at_text text, at k_moment, w_bool boolean, w_text text, w numeric);
SELECT regress.err($$SELECT attach_events('k_bad', 'u', 'i', time_column => 'at_text', items => 'k_items')$$);
SELECT regress.err($$SELECT attach_events('k_bad', 'u', 'i', weight_column => 'w_bool', items => 'k_items')$$);
SELECT attach_events('k_bad', 'u', 'i', time_column => 'at', weight_column => 'w', items => 'k_items') > 0 AS domain_and_numeric_attach;
SELECT regress.err($$ALTER TABLE k_bad ALTER COLUMN at TYPE text$$);
SELECT format_type(atttypid, atttypmod) AS time_column_type FROM pg_attribute WHERE attrelid = 'k_bad'::regclass AND attname = 'at';
SELECT detach_events('k_bad');
-- a text weight column is read per row (a row holding a word fails alone)
SELECT attach_events('k_bad', 'u', 'i', weight_column => 'w_text', items => 'k_items') > 0 AS text_weight_attach;
SELECT detach_events('k_bad');

-- only tables have the statement triggers pg_interest needs
CREATE VIEW k_bad_view AS SELECT * FROM k_bad;
SELECT regress.err($$SELECT attach_events('k_bad_view', 'u', 'i', items => 'k_items')$$);
SELECT regress.err($$SELECT attach_items('k_bad_view', 'i', text => 'i')$$);
DROP VIEW k_bad_view;

-- 4. Settings out of range: 22023 naming the range.
SELECT regress.err($$SELECT attach_events('k_bad', 'u', 'i', max_interests => 0, items => 'k_items')$$);
SELECT regress.err($$SELECT attach_events('k_bad', 'u', 'i', join_similarity => 5, items => 'k_items')$$);
SELECT count(*) AS attached FROM interest.event_sources WHERE relid = 'k_bad'::regclass;

-- 5. A ranking time far before the events is taken as 256 half-lives before
-- the last one (finite scores, the same list); an infinite one is refused.
SELECT count(*) AS rows, bool_and(score = score AND abs(score) < 'infinity') AS finite_scores, bool_and(reason <> '') AS reasons
FROM recommend('ann', 3, events => 'k_events', as_of => '1900-01-01');
SELECT (SELECT array_agg(item ORDER BY score DESC, item) FROM recommend('ann', 3, events => 'k_events', as_of => '1900-01-01'))
     = (SELECT array_agg(item ORDER BY score DESC, item) FROM recommend('ann', 3, events => 'k_events', as_of => '0001-01-01')) AS same_list;
SELECT bool_and(contribution = contribution) AS finite_parts FROM explain('ann', 'tea', events => 'k_events', as_of => '1900-01-01');
SELECT regress.err($$SELECT * FROM recommend('ann', 3, events => 'k_events', as_of => '-infinity')$$);

-- 6. Keys of different types: a uuid user and a text item.
CREATE TABLE k_uuid_events (customer uuid, sku text, at timestamptz);
SELECT attach_events('k_uuid_events', 'customer', 'sku', time_column => 'at', items => 'k_items') > 0 AS attached;
INSERT INTO k_uuid_events VALUES ('00000000-0000-0000-0000-000000000001', 'shoe', '2024-01-01'), ('00000000-0000-0000-0000-000000000001', 'tea', '2024-01-02');
SELECT component FROM explain('00000000-0000-0000-0000-000000000001'::uuid, 'tea'::text, events => 'k_uuid_events')
WHERE component = 'content' LIMIT 1;
SELECT detach_events('k_uuid_events');

-- 7. Bring-your-own embeddings of another dimension than the table's items
-- are logged and left out (one would fail every ranking and fold meeting it).
CREATE TABLE k_vec_items (id int PRIMARY KEY, e real[]);
INSERT INTO k_vec_items SELECT g, ARRAY[cos(g), sin(g), 0.5]::real[] FROM generate_series(1, 30) g;
SELECT attach_items('k_vec_items', 'id', embedding_column => 'e') > 0 AS attached;
CALL backfill_items('k_vec_items');
INSERT INTO k_vec_items VALUES (40, '{1,0}'), (41, '{1,0,0}');
SELECT count(*) AS embedded FROM interest.item_embeddings e JOIN interest.item_sources s ON s.id = e.source_id
WHERE s.relid = 'k_vec_items'::regclass;
-- 8. Taking back every co-visit of a link removes it, rounding included: a
-- residue of single-precision rounding must not become the largest link
-- that scores are divided by (a review saw it score 1.0).
CREATE TABLE k_visits (id serial, user_id int, item_id int, at timestamptz);
SELECT attach_events('k_visits', 'user_id', 'item_id', time_column => 'at', items => 'k_vec_items') > 0 AS attached;
INSERT INTO k_visits (user_id, item_id, at) SELECT 1, i, '2024-01-01'::timestamptz + i * interval '1 min' FROM unnest('{11,12,13,14,15,16,17}'::int[]) i;
INSERT INTO k_visits (user_id, item_id, at) SELECT 2, i, '2024-01-02'::timestamptz + i * interval '1 min' FROM unnest('{17,13,16,11}'::int[]) i;
SELECT flush('k_visits') >= 0 AS flushed;
DELETE FROM k_visits WHERE item_id = 13 AND user_id = 2;
DELETE FROM k_visits WHERE item_id = 13;
SELECT max(score) AS covisit_left_for_13 FROM similar_items(13, 3, events => 'k_visits', content => 0);
SELECT detach_events('k_visits'), detach_items('k_vec_items');

-- 9. Roles: the status views list the tables a role has a right on (the
-- owner and an application role see theirs, a stranger none); a role with no
-- right on an events table is told so (42501), not that it is unattached.
CREATE ROLE k_owner;
CREATE ROLE k_app;
CREATE ROLE k_stranger;
CREATE SCHEMA k_shop AUTHORIZATION k_owner;
SET ROLE k_owner;
CREATE TABLE k_shop.items (id text PRIMARY KEY, e interest.embedding);
SELECT attach_items('k_shop.items', 'id', embedding_column => 'e') > 0 AS attached;
CREATE TABLE k_shop.events (u int, i text, at timestamptz DEFAULT now());
SELECT attach_events('k_shop.events', 'u', 'i', items => 'k_shop.items') > 0 AS attached;
GRANT USAGE ON SCHEMA k_shop TO k_app, k_stranger;
GRANT INSERT ON k_shop.events TO k_app;
SELECT events FROM interest.event_status WHERE events LIKE 'k_shop.%';
RESET ROLE;
SET ROLE k_app;
INSERT INTO k_shop.events (u, i) VALUES (1, 'shoe');
SELECT events FROM interest.event_status;
SELECT flush('k_shop.events') >= 0 AS app_may_flush;
RESET ROLE;
SET ROLE k_stranger;
SELECT count(*) AS tables_seen FROM interest.event_status;
SELECT count(*) AS item_tables_seen FROM interest.item_status;
SELECT regress.err($$SELECT * FROM interest.recommend(1, 3, events => 'k_shop.events')$$);
SELECT regress.err($$SELECT interest.flush('k_shop.events')$$) LIKE '42501%' AS flush_refused;
RESET ROLE;
SET ROLE k_owner;
SELECT detach_events('k_shop.events'), detach_items('k_shop.items');
RESET ROLE;
DROP SCHEMA k_shop CASCADE;
DROP ROLE k_owner, k_app, k_stranger;

-- 10. A read-only transaction: every function that writes bookkeeping refuses
-- up front with 25006, naming itself, with a hint; the read side answers.
BEGIN READ ONLY;
SELECT regress.err($$SELECT interest.flush('k_events')$$);
SELECT regress.err($$SELECT interest.rebuild('k_events')$$);
SELECT regress.err($$SELECT interest.set_profile('ann', 'tea', 'k_events')$$);
SELECT regress.err($$SELECT interest.set_weights('k_events', content => 1)$$);
SELECT regress.err($$SELECT interest.use_default_weights('k_events')$$);
SELECT regress.err($$SELECT interest.index_items('k_items')$$);
SELECT regress.err($$SELECT interest.attach_items('k_items', 'sku', text => 'title')$$);
SELECT regress.err($$SELECT interest.detach_events('k_events')$$);
SELECT regress.err($$CALL interest.backfill_items('k_items')$$);
SELECT count(*) >= 0 AS recommend_answers FROM interest.recommend('ann', 3, events => 'k_events');
ROLLBACK;

-- 11. An event dated far ahead (a typo'd year) moves no other row's clock:
-- before, it pulled the ranking clock to itself, and every other user's
-- content and popularity decayed to nothing. Now the clock stops at now()
-- and no value read back in time grows.
CREATE TABLE f_items (sku text PRIMARY KEY, title text);
SELECT attach_items('f_items', 'sku', text => 'title') > 0 AS attached;
INSERT INTO f_items VALUES ('tea', 'green tea'), ('coffee', 'black coffee'), ('cocoa', 'hot cocoa'),
  ('shoe', 'red running shoes'), ('boot', 'leather boots'), ('sock', 'wool socks');
CREATE TABLE f_events (customer text, sku text, at timestamptz);
SELECT attach_events('f_events', 'customer', 'sku', time_column => 'at', items => 'f_items') > 0 AS attached;
INSERT INTO f_events SELECT 'c' || (g % 5), (ARRAY['tea', 'coffee', 'shoe', 'tea', 'boot'])[1 + g % 5],
  now() - interval '30 days' + g * interval '1 hour' FROM generate_series(1, 60) g;
INSERT INTO f_events VALUES ('ann', 'tea', now() - interval '1 day');
INSERT INTO f_events VALUES ('zed', 'sock', '4000-01-01');
SELECT flush('f_events') >= 0 AS flushed;
SELECT count(*) AS items, bool_and(score > 0 AND score < 'infinity') AS finite_positive
FROM interest.recommend('ann', 4, events => 'f_events', as_of => now());
SELECT component, contribution > 0 AS counts FROM interest.explain('ann', 'coffee', events => 'f_events', as_of => now())
WHERE component IN ('popularity', 'content') ORDER BY component;
SELECT count(*) AS finite_scores FROM interest.recommend('ann', 4, events => 'f_events', as_of => '0001-01-01')
WHERE score = score AND score < 'infinity';
SELECT detach_events('f_events'), detach_items('f_items');
DROP TABLE f_events, f_items;

-- 12. Functions on the caller's search_path that match more closely than
-- the built-ins the extension calls (in another role's schema, such as public
-- owned by the database owner since PostgreSQL 15) never run inside the
-- extension's code: each would stop the call here. Before, recommend()'s
-- filter ran format and array_agg, index_items jsonb_build_object,
-- backfill_items cardinality and the items triggers array_agg from public,
-- with the caller's rights (a superuser's).
CREATE FUNCTION public.format(text, name, regclass, text) RETURNS text LANGUAGE plpgsql AS
  $$ BEGIN RAISE EXCEPTION 'shadowing format ran'; END $$;
CREATE FUNCTION public.jsonb_build_object(text, integer) RETURNS jsonb LANGUAGE plpgsql AS
  $$ BEGIN RAISE EXCEPTION 'shadowing jsonb_build_object ran'; END $$;
CREATE FUNCTION public.cardinality(text[]) RETURNS integer LANGUAGE plpgsql AS
  $$ BEGIN RAISE EXCEPTION 'shadowing cardinality ran'; END $$;
CREATE FUNCTION public.agg_step(text[], text) RETURNS text[] LANGUAGE plpgsql AS
  $$ BEGIN RAISE EXCEPTION 'shadowing array_agg ran'; END $$;
CREATE AGGREGATE public.array_agg(text) (sfunc = public.agg_step, stype = text[]);
SELECT count(*) >= 0 AS filtered FROM interest.recommend('ann', 3, events => 'k_events', filter => 'true');
SELECT interest.index_items('k_items', lists => 1) > 0 AS indexed;
INSERT INTO k_items VALUES ('kettle', 'a steel kettle');
CALL interest.backfill_items('k_items');
SELECT count(*) AS kettle_embedded FROM interest.item_embeddings e JOIN interest.item_sources s ON s.id = e.source_id
WHERE s.relid = 'k_items'::regclass AND e.item_key = 'kettle';
DROP AGGREGATE public.array_agg(text);
DROP FUNCTION public.agg_step(text[], text), public.format(text, name, regclass, text),
  public.jsonb_build_object(text, integer), public.cardinality(text[]);

-- 13. A timeout inside bookkeeping loses nothing: the statement's rows are
-- stored and its item events wait in the queue for the next fold (before,
-- they were dropped until a rebuild). Embedding 500 free texts overruns the
-- 40 ms statement_timeout; their 100 item events are folded by flush().
CREATE TABLE t_events (u text, sku text, note text, at timestamptz DEFAULT now());
SELECT attach_events('t_events', 'u', 'sku', time_column => 'at', text_column => 'note', items => 'k_items') > 0 AS attached;
SET statement_timeout = '40ms';
INSERT INTO t_events (u, sku, note)
SELECT 'u' || (g % 5), CASE WHEN g <= 100 THEN 'tea' END, CASE WHEN g > 100 THEN 'a long walk in the hills number ' || g END
FROM generate_series(1, 600) g;
RESET statement_timeout;
SELECT count(*) AS rows_stored FROM t_events;
SELECT flush('t_events') AS folded;
SELECT sum(s.events) AS events_counted FROM interest.user_states s JOIN interest.event_sources e ON e.id = s.source_id
WHERE e.relid = 't_events'::regclass;
-- A DELETE whose bookkeeping fails is deferred likewise: the rewrite queue
-- holds it, and the next fold replays the users.
SET statement_timeout = '40ms';
UPDATE t_events SET note = note || ' again' WHERE note IS NOT NULL;
RESET statement_timeout;
DELETE FROM t_events WHERE sku = 'tea' AND u = 'u1';
SELECT flush('t_events') >= 0 AS folded, (SELECT count(*) FROM t_events WHERE sku = 'tea') AS item_rows;
SELECT sum(s.events) AS events_counted FROM interest.user_states s JOIN interest.event_sources e ON e.id = s.source_id
WHERE e.relid = 't_events'::regclass;
SELECT detach_events('t_events');
DROP TABLE t_events;

-- 14. Weights and settings that would break bookkeeping later are refused at
-- attach, or read as one bad value: a word or a huge number in a text or
-- numeric weight column is skipped, the statement's other rows count
-- (before, the whole statement's bookkeeping failed); a weight beyond 1e9 or
-- beyond double precision (XX000 before) and a half-life under a minute
-- (NaN scores before) are refused; a text profile for items with their own
-- embeddings of another dimension is refused.
CREATE TABLE w_events (u text, sku text, w text);
SELECT attach_events('w_events', 'u', 'sku', weight_column => 'w', items => 'k_items') > 0 AS attached;
DELETE FROM interest.bookkeeping_errors;
INSERT INTO w_events SELECT 'u' || (g % 3), 'tea', CASE g % 4 WHEN 0 THEN 'abc' WHEN 1 THEN '1e400' ELSE ' 2 ' END
FROM generate_series(1, 80) g;
SELECT flush('w_events') >= 0 AS flushed, (SELECT sum(s.events) FROM interest.user_states s JOIN interest.event_sources e ON e.id = s.source_id
  WHERE e.relid = 'w_events'::regclass) AS events_counted, (SELECT count(*) FROM interest.bookkeeping_errors) AS logged;
SELECT detach_events('w_events');
SELECT regress.err($$SELECT attach_events('w_events', 'u', 'sku', weights => '{"view": 1e400}')$$);
SELECT regress.err($$SELECT attach_events('w_events', 'u', 'sku', weights => '{"view": 2e9}')$$);
SELECT regress.err($$SELECT attach_events('w_events', 'u', 'sku', half_life => '1 microsecond')$$);
DROP TABLE w_events;
CREATE TABLE v_items (id int PRIMARY KEY, e real[]);
SELECT attach_items('v_items', 'id', embedding_column => 'e') > 0 AS attached;
INSERT INTO v_items VALUES (1, '{1,0,0}'), (2, '{0,1,0}');
CREATE TABLE v_events (u int, i int);
SELECT attach_events('v_events', 'u', 'i', items => 'v_items') > 0 AS attached;
SELECT regress.err($$SELECT set_profile(7, 'space films', 'v_events')$$);
SELECT detach_events('v_events'), detach_items('v_items');
DROP TABLE v_events, v_items;

-- 15. More NULLs (22004 where a row of the bookkeeping leaked into a 23502,
-- or NULL came back), and attaching an events table that has rows says how
-- they come to count.
SELECT regress.err($$SELECT interest.user_vector(NULL::text, 'k_events')$$);
SELECT regress.err($$SELECT * FROM interest.interests(NULL::text, 'k_events')$$);
CREATE TABLE n_table (id int, u int, note text);
INSERT INTO n_table VALUES (1, 1, 'x');
SELECT regress.err($$SELECT interest.attach_items('n_table', NULL, text => 'note')$$);
SELECT regress.err($$SELECT interest.attach_events('n_table', NULL, 'id')$$);
SELECT attach_events('n_table', 'u', 'id', items => 'k_items') > 0 AS attached;
SELECT detach_events('n_table');
DROP TABLE n_table;

SELECT detach_events('k_events'), detach_items('k_items');
