-- Bad values, cancelled bookkeeping and maintenance commands that evaluate
-- someone else's expressions: the application's rows are always kept, and
-- privileged entry points never run inside a security-restricted operation.
SET search_path = public, interest;
SET interest.fold_interval = 0;
CREATE TABLE h_items (id int PRIMARY KEY, title text);
INSERT INTO h_items VALUES (1, 'red running shoes'), (2, 'green tea'), (3, 'blue jeans');
SELECT attach_items('h_items', 'id', text => 'title') > 0 AS attached;
CALL backfill_items('h_items');
CREATE TABLE h_events (id serial PRIMARY KEY, user_id int, item_id int, w float8, at timestamptz);
SELECT attach_events('h_events', 'user_id', 'item_id', time_column => 'at', weight_column => 'w', items => 'h_items') > 0 AS attached;

-- 1. An infinite time or a NaN or infinite weight: the row is stored, the
-- event is logged (WARNING and bookkeeping_errors) and skipped, the other
-- events of the statement are applied, and folds and rebuilds keep working.
DELETE FROM interest.bookkeeping_errors;
INSERT INTO h_events (user_id, item_id, w, at) VALUES
  (1, 1, 1, '2024-01-01'), (1, 2, 'NaN', '2024-01-02'), (1, 3, 1, 'infinity'), (2, 2, '-infinity', '2024-01-03'), (2, 3, 1, '2024-01-04');
SELECT count(*) AS rows_stored FROM h_events;
SELECT sqlstate, message FROM interest.bookkeeping_errors ORDER BY id;
SELECT flush('h_events') AS folded, rebuild('h_events') AS replayed;
SELECT user_key, events FROM interest.user_states s JOIN interest.event_sources e ON e.id = s.source_id
WHERE e.relid = 'h_events'::regclass ORDER BY 1;
-- single-row statements take the same door (not the queue's fast path)
INSERT INTO h_events (user_id, item_id, w, at) VALUES (3, 1, 'infinity', '2024-01-05');
SELECT count(*) AS queued FROM interest.event_queue q JOIN interest.event_sources e ON e.id = q.source_id
WHERE e.relid = 'h_events'::regclass;
-- the queue itself refuses bad values, whoever inserts them
SELECT regress.err($$INSERT INTO interest.event_queue (source_id, user_key, item_key, t, weight)
  SELECT id, '9', '1', 0, 'NaN' FROM interest.event_sources WHERE relid = 'h_events'::regclass$$) LIKE '23514%' AS refused;

-- 2. A statement_timeout that fires inside bookkeeping cancels only the
-- bookkeeping: the items table's text expression sleeps.
CREATE TABLE h_slow (id int PRIMARY KEY, title text);
SELECT attach_items('h_slow', 'id', text => $$title || pg_sleep(0.5)::text$$) > 0 AS attached;
DELETE FROM interest.bookkeeping_errors;
SET statement_timeout = '100ms';
INSERT INTO h_slow VALUES (1, 'slow item');
RESET statement_timeout;
SELECT count(*) AS rows_stored FROM h_slow;
SELECT sqlstate FROM interest.bookkeeping_errors;

-- 3. A maintenance command runs an index expression as the table's owner
-- inside a security-restricted operation; the outer role may be a superuser.
-- The privileged entry points refuse to run there.
CREATE ROLE h_mallory;
CREATE SCHEMA h_mallory AUTHORIZATION h_mallory;
SET ROLE h_mallory;
CREATE FUNCTION h_mallory.sneaky(x int) RETURNS int IMMUTABLE LANGUAGE plpgsql AS $$
BEGIN
  BEGIN
    PERFORM interest._privileged('detach', s.relid, '{"kind": "event"}') FROM interest.event_sources s;
  EXCEPTION WHEN OTHERS THEN NULL;
  END;
  BEGIN
    PERFORM interest._bookkeeping_failed('h_events'::regclass, false, '00000', 'forged', NULL);
  EXCEPTION WHEN OTHERS THEN NULL;
  END;
  RETURN x;
END $$;
CREATE TABLE h_mallory.t (x int);
INSERT INTO h_mallory.t VALUES (1);
CREATE INDEX ON h_mallory.t (h_mallory.sneaky(x));
RESET ROLE;
SELECT count(*) AS sources_before FROM interest.event_sources \gset
DELETE FROM interest.bookkeeping_errors;
ANALYZE h_mallory.t;
SELECT count(*) = :sources_before AS no_source_forgotten FROM interest.event_sources;
SELECT count(*) AS forged_log_rows FROM interest.bookkeeping_errors;
-- called directly by a role that does not own the table: refused
SELECT id AS h_events_src FROM interest.event_sources WHERE relid = 'h_events'::regclass \gset
SET ROLE h_mallory;
SELECT regress.err($$SELECT interest._privileged('detach', 'h_events'::regclass, '{"kind": "event"}')$$) AS not_owner;
SELECT regress.err(format('SELECT interest._delete_bookkeeping(%L, %s)', 'event', :h_events_src)) AS no_execute;
-- and the settings (expressions) of tables she has no right on are hidden from her
SELECT count(*) AS settings_she_sees FROM interest.event_sources;
SELECT count(*) AS item_settings_she_sees FROM interest.item_sources;
-- and a role that may not write a table cannot log failures for it
SELECT interest._bookkeeping_failed('h_events'::regclass, false, '00000', 'forged', NULL);
-- A detach of her own table cannot smuggle SQL through the source kind,
-- and the privileged steps are not hers to call directly.
SELECT regress.err($$SELECT interest._privileged('detach', 'h_mallory.t'::regclass, '{"kind": "event_sources; DROP TABLE h_events; --"}')$$) AS bad_kind;
SELECT regress.err($$SELECT interest._unregister('h_mallory.t', '{"kind": "event"}')$$) AS no_execute;
SELECT regress.err($$SELECT interest._privileged('drop everything', 'h_mallory.t'::regclass, '{}')$$) AS unknown_step;
-- A SECURITY DEFINER function of hers, called by a superuser: the
-- entry points check her (the current user at entry), not the superuser.
CREATE FUNCTION h_mallory.trap(step text, src int) RETURNS text SECURITY DEFINER LANGUAGE plpgsql AS $$
BEGIN
  CASE step
    WHEN 'detach' THEN PERFORM interest.detach_events('public.h_events');
    WHEN 'rebuild' THEN PERFORM interest.rebuild('public.h_events');
    WHEN 'apply' THEN PERFORM interest._apply_events(src, ARRAY['1'], ARRAY['1'], ARRAY[0::float8], ARRAY[1::float8], ARRAY[NULL::text]);
    WHEN 'log' THEN PERFORM interest._bookkeeping_failed('public.h_events'::regclass, false, '00000', 'forged', NULL);
  END CASE;
  RETURN 'ran';
EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
RESET ROLE;
SELECT step, h_mallory.trap(step, :h_events_src) FROM unnest(ARRAY['detach', 'rebuild', 'apply']) step;
SELECT h_mallory.trap('log', :h_events_src) AS logged;
SELECT count(*) AS forged_log_rows FROM interest.bookkeeping_errors;
SELECT count(*) = :sources_before AS no_source_forgotten FROM interest.event_sources;
-- the generated trigger functions are called only as triggers
SELECT count(*) AS trigger_functions, count(*) FILTER (WHERE has_function_privilege('public', p.oid, 'EXECUTE')) AS public_may_call
FROM pg_proc p WHERE p.pronamespace = 'interest'::regnamespace AND p.proname ~ '^_(event|item)s_[0-9]+_';
-- the status views show her no table she has no right on
SET ROLE h_mallory;
SELECT (SELECT count(*) FROM interest.event_status) AS event_tables, (SELECT count(*) FROM interest.item_status) AS item_tables;
RESET ROLE;
DROP FUNCTION h_mallory.trap(text, int);
DROP TABLE h_mallory.t;
DROP FUNCTION h_mallory.sneaky(int);
DROP SCHEMA h_mallory;
DROP ROLE h_mallory;
-- 4. One statement of 1,500 events for 1,500 users takes a bounded number
-- of advisory locks (the whole table's bookkeeping lock instead of one per
-- user and item), and its bookkeeping succeeds.
-- Each user first has ten recent items, which the statement's events link with.
INSERT INTO h_events (user_id, item_id, w, at)
SELECT 1000 + i, 100 + (i * 10 + k) % 5000, 1, '2024-01-15'::timestamptz + k * interval '1 hour'
FROM generate_series(1, 1500) i, generate_series(1, 10) k;
DELETE FROM interest.bookkeeping_errors;
BEGIN;
INSERT INTO h_events (user_id, item_id, w, at) SELECT 1000 + i, 1 + i % 3, 1, '2024-02-01' FROM generate_series(1, 1500) i;
SELECT count(*) <= 2001 AS bounded_locks FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid();
COMMIT;
SELECT count(*) AS errors FROM interest.bookkeeping_errors;
SELECT count(*) AS users FROM interest.user_states s JOIN interest.event_sources e ON e.id = s.source_id
WHERE e.relid = 'h_events'::regclass AND user_key::int > 1000;

-- 5. Reads stay possible inside a maintenance command: a materialized view
-- of recommendations refreshes (checked for the view's owner).
CREATE MATERIALIZED VIEW h_recs AS SELECT * FROM recommend(1, 2, events => 'h_events', as_of => '2024-02-01', exclude_seen => false);
REFRESH MATERIALIZED VIEW h_recs;
SELECT count(*) AS recommended FROM h_recs;
DROP MATERIALIZED VIEW h_recs;

-- 6. A key spelled otherwise ('007' for user 7 of an int column) is another
-- bookkeeping user: setting its profile does not replay user 7's events
-- into it, nor touch user 7.
INSERT INTO h_events (user_id, item_id, w, at) SELECT 7, i, 1, '2024-01-10'::timestamptz + i * interval '1 day' FROM generate_series(1, 3) i;
SELECT flush('h_events') >= 0 AS flushed;
SELECT set_profile('007', 'green tea lover', 'h_events');
SELECT user_key, events FROM interest.user_states s JOIN interest.event_sources e ON e.id = s.source_id
WHERE e.relid = 'h_events'::regclass AND user_key IN ('7', '007') ORDER BY 1;

-- 7. A Postgres error raised inside the extension's Rust code reaches the
-- client as PostgreSQL made it: no Rust backtrace in its DETAIL, even with
-- RUST_BACKTRACE set in the server's environment (tests/run_tests.sh sets it).
-- (a user key whose cast to text raises: a word in a text weight column is
-- no error any more, only a bad value)
CREATE TYPE h_key AS (a int);
CREATE FUNCTION h_key_text(h_key) RETURNS text LANGUAGE plpgsql AS
  $$ BEGIN RAISE EXCEPTION 'this key has no text' USING ERRCODE = '22023'; END $$;
CREATE CAST (h_key AS text) WITH FUNCTION h_key_text(h_key);
CREATE TABLE h_text_weights (user_id h_key, item_id int);
SELECT attach_events('h_text_weights', 'user_id', 'item_id', items => 'h_items') > 0 AS attached;
INSERT INTO h_text_weights VALUES (ROW(1), 1);
SELECT regress.err($$SELECT interest.rebuild('h_text_weights')$$) AS clean_error;
SELECT detach_events('h_text_weights');
DROP TABLE h_text_weights;
DROP CAST (h_key AS text);
DROP FUNCTION h_key_text(h_key);
DROP TYPE h_key;

-- 8. The owner of an attached table redefines a cast its select list uses
-- (an enum of their own, cast to text by their function). The extension's
-- privileged functions read the table as that owner, in a
-- security-restricted operation: the cast never runs as a superuser.
CREATE ROLE h_owner;
CREATE SCHEMA h_app AUTHORIZATION h_owner;
SET ROLE h_owner;
CREATE TABLE h_app.events (user_id int, item_id int, kind text);
CREATE TABLE h_app.cast_log (who name, super boolean, restricted boolean);
RESET ROLE;
SELECT attach_events('h_app.events', 'user_id', 'item_id', type_column => 'kind', items => 'h_items') > 0 AS attached;
SET ROLE h_owner;
CREATE TYPE h_app.kind AS ENUM ('view', 'click');
CREATE FUNCTION h_app.kind_text(k h_app.kind) RETURNS text LANGUAGE plpgsql AS $$
DECLARE restricted boolean := false;
BEGIN
  BEGIN
    EXECUTE 'ALTER ROLE h_owner SUPERUSER';
  EXCEPTION WHEN OTHERS THEN NULL;
  END;
  BEGIN
    EXECUTE 'CREATE TEMP TABLE h_probe (x int)';
    EXECUTE 'DROP TABLE h_probe';
  EXCEPTION WHEN OTHERS THEN restricted := true;
  END;
  INSERT INTO h_app.cast_log SELECT current_user, rolsuper, restricted FROM pg_roles WHERE rolname = current_user;
  RETURN CASE k WHEN 'view' THEN 'view' ELSE 'click' END;
END $$;
CREATE CAST (h_app.kind AS text) WITH FUNCTION h_app.kind_text(h_app.kind);
ALTER TABLE h_app.events ALTER COLUMN kind TYPE h_app.kind USING kind::h_app.kind;
INSERT INTO h_app.events VALUES (1, 1, 'view'), (1, 2, 'click');
DELETE FROM h_app.cast_log;
SELECT interest.rebuild('h_app.events') AS replayed;
RESET ROLE;
SELECT rolsuper AS owner_became_superuser FROM pg_roles WHERE rolname = 'h_owner';
SELECT DISTINCT who, super, restricted FROM h_app.cast_log;
SELECT detach_events('h_app.events');
DROP SCHEMA h_app CASCADE;
DROP ROLE h_owner;

-- 9. A table owner who is not a superuser attaches, uses and detaches their
-- own tables; an application role with DML rights only writes events; a
-- role limited by row-level security reads only the users and items its
-- policies show it.
CREATE ROLE h_shop_owner;
CREATE ROLE h_app_user;
CREATE ROLE h_tenant;
CREATE SCHEMA h_shop AUTHORIZATION h_shop_owner;
GRANT USAGE ON SCHEMA h_shop TO h_app_user, h_tenant;
SET ROLE h_shop_owner;
CREATE TABLE h_shop.items (id int PRIMARY KEY, title text, tenant text);
INSERT INTO h_shop.items VALUES (1, 'red running shoes', 'a'), (2, 'green tea', 'a'), (3, 'blue jeans', 'b'), (4, 'black coffee', 'b');
SELECT interest.attach_items('h_shop.items', 'id', text => 'title') > 0 AS attached;
CALL interest.backfill_items('h_shop.items');
CREATE TABLE h_shop.events (id serial PRIMARY KEY, user_id text, item_id int, tenant text, at timestamptz);
SELECT interest.attach_events('h_shop.events', 'user_id', 'item_id', time_column => 'at', items => 'h_shop.items') > 0 AS attached;
GRANT SELECT, INSERT, UPDATE, DELETE ON h_shop.events TO h_app_user;
GRANT USAGE ON SEQUENCE h_shop.events_id_seq TO h_app_user;
GRANT SELECT ON h_shop.events, h_shop.items TO h_tenant;
ALTER TABLE h_shop.events ENABLE ROW LEVEL SECURITY;
CREATE POLICY app ON h_shop.events TO h_app_user USING (true);
CREATE POLICY tenant_a ON h_shop.events FOR SELECT TO h_tenant USING (tenant = 'a');
ALTER TABLE h_shop.items ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_a ON h_shop.items FOR SELECT TO h_tenant USING (tenant = 'a');
RESET ROLE;
SET ROLE h_app_user;
INSERT INTO h_shop.events (user_id, item_id, tenant, at) VALUES
  ('alice', 1, 'a', '2024-01-01'), ('alice', 2, 'a', '2024-01-02'), ('alice', 3, 'a', '2024-01-03'),
  ('bob', 3, 'b', '2024-01-01'), ('bob', 4, 'b', '2024-01-02');
DELETE FROM h_shop.events WHERE user_id = 'alice' AND item_id = 3;
SELECT count(*) AS settings_app_user_sees FROM interest.event_sources;
RESET ROLE;
SELECT count(*) AS errors FROM interest.bookkeeping_errors WHERE relid = 'h_shop.events'::regclass;
SET ROLE h_shop_owner;
SELECT interest.flush('h_shop.events') >= 0 AS flushed;
SELECT interest.user_vector('bob', 'h_shop.events') IS NOT NULL AS owner_sees_bob;
SELECT count(*) AS recommended FROM interest.recommend('alice', 4, events => 'h_shop.events', exclude_seen => false);
RESET ROLE;
SET ROLE h_tenant;
SELECT interest.user_vector('bob', 'h_shop.events') IS NULL AS bob_hidden,
       interest.user_vector('alice', 'h_shop.events') IS NOT NULL AS alice_visible;
SELECT count(*) FILTER (WHERE item IN ('3', '4')) AS hidden_items_recommended, count(*) AS recommended
FROM interest.recommend('alice', 4, events => 'h_shop.events', exclude_seen => false);
SELECT count(*) FILTER (WHERE component = 'content') AS content_rows_for_bob
FROM interest.explain('bob', '1', events => 'h_shop.events');
SELECT split_part(regress.err($$SELECT * FROM interest.evaluate('h_shop.events')$$), ':', 1) AS evaluate;
-- the functions behind recommend, explain and similar_items apply the
-- items table's policies themselves: calling them directly hides as much
SELECT id AS h_shop_src FROM interest.event_sources WHERE relid = 'h_shop.events'::regclass \gset
SELECT count(*) FILTER (WHERE item IN ('3', '4')) AS hidden_items_direct, count(*) AS recommended
FROM interest._recommend(:h_shop_src, 'alice', 4, NULL, NULL, NULL, NULL, NULL, false, NULL, NULL, NULL, NULL);
SELECT count(*) FILTER (WHERE item IN ('3', '4')) AS hidden_similar, count(*) AS similar
FROM interest.similar_items('1', 4, events => 'h_shop.events');
SELECT split_part(regress.err($$SELECT * FROM interest.explain('alice', '3', events => 'h_shop.events')$$), ':', 1) AS explain_hidden_item;
RESET ROLE;
-- the same from candidates (a vector index): the policies are applied to
-- the candidates' keys, looked up by the id column's own type. Tenant b's
-- new items are close to what alice saw; tenant a's new one is not.
SET ROLE h_shop_owner;
INSERT INTO h_shop.items VALUES (5, 'red trail running shoes', 'b'), (6, 'green tea leaves', 'b'), (7, 'steel boat anchor', 'a');
CALL interest.backfill_items('h_shop.items');
SELECT interest.index_items('h_shop.items', lists => 1) AS indexed;
-- (the owner, whom no policy limits, gets tenant b's items first)
SELECT array_agg(item ORDER BY score DESC) <@ ARRAY['3', '4', '5', '6'] AS owner_gets_hidden_items
FROM interest.recommend('alice', 2, events => 'h_shop.events');
SELECT array_agg(item) <@ ARRAY['3', '4', '5', '6'] AS owner_gets_hidden_similar
FROM interest.similar_items('1', 1, covisit => 0, events => 'h_shop.events');
RESET ROLE;
-- (a new connection: calls served from candidates leave no catalog behind)
\c
SET search_path = public, interest;
SET interest.fold_interval = 0;
SET ROLE h_tenant;
SELECT array_agg(item ORDER BY item) AS tenant_gets FROM interest.recommend('alice', 1, events => 'h_shop.events');
SELECT count(*) FILTER (WHERE item IN ('3', '4', '5', '6')) AS hidden_items_recommended, count(*) AS recommended
FROM interest.recommend('alice', 3, events => 'h_shop.events', exclude_seen => false);
SELECT count(*) FILTER (WHERE item IN ('3', '4', '5', '6')) AS hidden_similar, count(*) AS similar
FROM interest.similar_items('1', 2, covisit => 0, events => 'h_shop.events');
SELECT split_part(regress.err($$SELECT * FROM interest.explain('alice', '3', events => 'h_shop.events')$$), ':', 1) AS explain_hidden_item;
SELECT count(*) FILTER (WHERE component = 'content') AS content_rows_for_alice
FROM interest.explain('alice', '2', events => 'h_shop.events');
SELECT count(*) AS catalogs_held FROM interest.cached_catalogs();
-- A caller's temporary types never stand in for the built-in ones the
-- owner's expressions name (pg_temp is searched last, not first): a domain
-- pg_temp.text whose check raises is never evaluated, as the owner or not.
CREATE FUNCTION pg_temp.h_evil(t pg_catalog.text) RETURNS bool LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'h_evil ran as %', current_user; END $$;
CREATE DOMAIN pg_temp.text AS pg_catalog.text CHECK (pg_temp.h_evil(VALUE));
CREATE DOMAIN pg_temp.float8 AS pg_catalog.float8 CHECK (pg_temp.h_evil(VALUE::pg_catalog.text));
SELECT count(*) AS recommended FROM interest.recommend('alice', 3, events => 'h_shop.events');
SELECT count(*) AS recommended FROM interest.recommend('alice', 3, events => 'h_shop.events', filter => 'id > 0', as_of => now());
SELECT count(*) > 0 AS explained FROM interest.explain('alice', '2', events => 'h_shop.events');
SELECT count(*) AS similar FROM interest.similar_items('1', 2, events => 'h_shop.events');
SELECT interest.user_vector('alice', 'h_shop.events') IS NOT NULL AS alice_visible;
DROP DOMAIN pg_temp.text;
DROP DOMAIN pg_temp.float8;
DROP FUNCTION pg_temp.h_evil;
RESET ROLE;
SELECT user_key, events FROM interest.user_states s JOIN interest.event_sources e ON e.id = s.source_id
WHERE e.relid = 'h_shop.events'::regclass ORDER BY 1;
SET ROLE h_shop_owner;
SELECT interest.detach_events('h_shop.events') AS detached, interest.detach_items('h_shop.items') AS detached;
RESET ROLE;
DROP SCHEMA h_shop CASCADE;
DROP ROLE h_shop_owner, h_app_user, h_tenant;

SELECT detach_events('h_events'), detach_items('h_items'), detach_items('h_slow');
