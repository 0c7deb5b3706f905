-- Dynamic user interests on the application's own tables.
SET search_path = public, interest;
-- Small statements queue their events (readers fold them on the fly); here
-- only interest.flush() folds the queue, so the bookkeeping tables below are
-- read at known points. The queue's own behaviour is tested further down.
SET interest.fold_interval = 0;

-- the application's items table, with rows before attaching
CREATE TABLE movies (id int PRIMARY KEY, title text, genres text, year int);
INSERT INTO movies VALUES
  (1, 'Toy Story', 'Animation Children Comedy', 1995), (2, 'Seven', 'Crime Thriller', 1995),
  (3, 'Babe', 'Children Comedy Drama', 1995), (4, 'The Usual Suspects', 'Crime Thriller', 1995),
  (5, 'Muppet Treasure Island', 'Adventure Children Comedy Musical', 1996);
SELECT attach_items('movies', 'id', text => $$title || ' (' || year || ') ' || genres$$);
SELECT * FROM item_status;
CALL backfill_items('movies', 2);
CALL backfill_items('movies', 2);   -- resumes: nothing left to embed
SELECT * FROM item_status;
-- new rows are embedded by the trigger; an update of an unrelated column is not re-embedded
INSERT INTO movies VALUES (6, 'Heat', 'Action Crime Thriller', 1995);
CREATE TEMP TABLE emb_before AS SELECT item_key, updated_at FROM interest.item_embeddings;
UPDATE movies SET year = year WHERE id = 2;
UPDATE movies SET title = 'Se7en' WHERE id = 2;
SELECT e.item_key, e.updated_at = b.updated_at AS unchanged FROM interest.item_embeddings e JOIN emb_before b USING (item_key) ORDER BY 1::int;

-- attach errors
SELECT regress.err($$SELECT attach_items('movies', 'id', text => 'title')$$);
SELECT regress.err($$SELECT attach_items('movies', 'nope', text => 'title')$$);
CREATE TABLE shows (id int, title text);
SELECT regress.err($$SELECT attach_items('shows', 'id')$$);
SELECT regress.err($$SELECT attach_items('shows', 'id', text => 'title', model => 'no-model')$$);

-- the application's events table: bigint users, a type and a time column
CREATE TABLE events (user_id bigint, movie_id int, kind text, at timestamptz);
SELECT regress.err($$SELECT attach_events('events', 'user_id', 'movie_id', weights => '[1,2]')$$);
SELECT regress.err($$SELECT attach_events('events', 'user_id', 'movie_id', half_life => '-1 day')$$);
SELECT regress.err($$SELECT attach_events('events', 'user_id')$$);
SELECT regress.err($$SELECT attach_events('events', 'user_id', 'movie_id', items => 'shows')$$);
SELECT attach_events('events', 'user_id', 'movie_id', time_column => 'at', type_column => 'kind') > 0 AS attached;
SELECT regress.err($$SELECT user_vector(1, 'shows')$$);

-- user 1 likes family films, user 2 crime films; one COPY-like multi-row statement
INSERT INTO events VALUES
  (1, 1, 'view', '2024-01-01'), (1, 3, 'purchase', '2024-01-02'), (1, 5, 'click', '2024-01-03'),
  (2, 2, 'view', '2024-01-01'), (2, 4, 'purchase', '2024-01-05');
SELECT user_key, events FROM interest.user_states ORDER BY 1;   -- still queued
SELECT flush('events') AS folded;
SELECT user_key, events FROM interest.user_states ORDER BY 1;
SELECT m.title FROM movies m JOIN interest.item_embeddings e ON e.item_key = m.id::text
 WHERE m.id NOT IN (SELECT movie_id FROM events WHERE user_id = 1)
 ORDER BY e.embedding <=> user_vector(1) LIMIT 1;
SELECT m.title FROM movies m JOIN interest.item_embeddings e ON e.item_key = m.id::text
 WHERE m.id NOT IN (SELECT movie_id FROM events WHERE user_id = 2)
 ORDER BY e.embedding <=> user_vector(2) LIMIT 1;
SELECT user_vector(999) IS NULL AS unknown_user_is_null, user_vector('1')::text = user_vector(1)::text AS text_and_bigint_keys;
-- two tastes become two sub-interests
INSERT INTO events VALUES (1, 2, 'purchase', '2024-02-01'), (1, 4, 'purchase', '2024-02-02');
SELECT slot, round(weight::numeric, 3) AS weight, last_seen, events, recent_items FROM interests(1);
-- sub-interests cluster around the items' mean embedding, fixed at the first event
SELECT dims(center) AS center_dims, round((1 - (center <=> (SELECT avg(embedding) FROM interest.item_embeddings)))::numeric, 6) AS cos_to_mean
FROM interest.event_sources WHERE relid = 'events'::regclass;

-- negative feedback pushes the interest away from the disliked item
CREATE TEMP TABLE u1 AS SELECT user_vector(1) AS v;
INSERT INTO events VALUES (1, 6, 'dislike', '2024-02-03');
SELECT (SELECT embedding FROM interest.item_embeddings WHERE item_key = '6') <=> user_vector(1)
     > (SELECT embedding FROM interest.item_embeddings WHERE item_key = '6') <=> (SELECT v FROM u1) AS pushed_away;

-- an event whose item has no embedding yet is kept, parked, and applied when the item arrives
INSERT INTO events VALUES (3, 7, 'view', '2024-03-01');
SELECT count(*) AS events_rows FROM events WHERE user_id = 3;
SELECT flush('events') AS folded;
SELECT user_key, item_key, weight FROM interest.pending_events;
INSERT INTO movies VALUES (7, 'Babe: Pig in the City', 'Children Comedy', 1998);
SELECT count(*) AS still_pending FROM interest.pending_events;
SELECT user_key, events FROM interest.user_states WHERE user_key = '3';

-- out-of-order arrival gives the same decayed total as a rebuild in time order
INSERT INTO events VALUES (4, 1, 'view', '2024-05-01');
INSERT INTO events VALUES (4, 2, 'view', '2024-01-01');
INSERT INTO events VALUES (4, 3, 'click', '2024-03-01');
SELECT flush('events') AS folded;
CREATE TEMP TABLE incremental AS SELECT user_key, t_ref, total FROM interest.user_states;
SELECT rebuild('events') AS events_replayed;
SELECT extract(epoch FROM half_life) AS interest_half_life FROM interest.event_sources WHERE relid = 'events'::regclass \gset
SELECT i.user_key,
       (i.total <=> s.total) < 1e-5 AS same_direction,
       abs(norm(i.total) * 2 ^ (-(1.7e9 - i.t_ref) / :interest_half_life) - norm(s.total) * 2 ^ (-(1.7e9 - s.t_ref) / :interest_half_life))
         / greatest(norm(s.total) * 2 ^ (-(1.7e9 - s.t_ref) / :interest_half_life), 1e-12) < 1e-5 AS same_magnitude
FROM incremental i JOIN interest.user_states s USING (user_key) ORDER BY 1;

-- DELETE removes an event's contribution: state equals a rebuild without it
DELETE FROM events WHERE user_id = 4 AND movie_id = 3;
CREATE TEMP TABLE after_delete AS SELECT user_key, total FROM interest.user_states WHERE user_key = '4';
SELECT rebuild('events') > 0;
SELECT 1 - (a.total <=> s.total) > 0.99999 AS delete_matches_rebuild, s.events FROM after_delete a JOIN interest.user_states s USING (user_key);

-- cold start: a text profile seeds a user with no events, and fades as events arrive
SELECT set_profile(100, 'gritty crime thrillers and detective stories') AS profile_set;
SELECT m.title FROM movies m JOIN interest.item_embeddings e ON e.item_key = m.id::text
 ORDER BY e.embedding <=> user_vector(100) LIMIT 1;
CREATE TEMP TABLE p AS SELECT embed('gritty crime thrillers and detective stories') AS e, user_vector(100) <=> embed('gritty crime thrillers and detective stories') AS d0;
INSERT INTO events SELECT 100, id, 'purchase', now() + id * interval '1 day' FROM movies WHERE genres LIKE '%Children%';
SELECT (user_vector(100) <=> (SELECT e FROM p)) > (SELECT d0 FROM p) + 0.1 AS profile_faded;
CREATE TEMP TABLE before_rebuild AS SELECT user_vector(100) AS v;
SELECT rebuild('events') > 0 AS rebuilt;
SELECT (user_vector(100) <=> (SELECT v FROM before_rebuild)) < 1e-5 AS rebuild_keeps_profile;
SELECT set_profile(100, NULL) AS profile_set, (user_vector(100) <=> (SELECT v FROM before_rebuild)) > 1e-4 AS profile_removed;
SELECT regress.err($$SELECT set_profile(101, 'x', 'shows')$$);

-- an application role with no rights on the extension's tables can insert events
CREATE ROLE regress_app_writer;
GRANT INSERT, SELECT ON events TO regress_app_writer;
SET ROLE regress_app_writer;
INSERT INTO events VALUES (5, 1, 'view', '2024-06-01');
SELECT regress.err($$SELECT count(*) FROM interest.user_states$$);
SELECT dims(user_vector(5)) AS app_role_reads_its_users;
SELECT flush('events') AS app_role_folds;
RESET ROLE;
SELECT user_key, events FROM interest.user_states WHERE user_key = '5';
-- a role that cannot write the events table cannot forge state
CREATE ROLE regress_outsider;
SELECT id AS events_source FROM interest.event_sources WHERE relid = 'events'::regclass \gset
SET ROLE regress_outsider;
SELECT regress.err(format($$SELECT interest._apply_events(%s, ARRAY['5'], ARRAY['1'], ARRAY[0::float8], ARRAY[1::float8], ARRAY[NULL::text])$$, :events_source));
SELECT regress.err(format($$INSERT INTO interest.event_queue (source_id, user_key, item_key, t, weight) VALUES (%s, '5', '1', 0, 1)$$, :events_source));
RESET ROLE;
-- ... while the writer's own queue rows pass the queue's policy, vectors never do
SET ROLE regress_app_writer;
SELECT regress.err($$INSERT INTO interest.event_queue (source_id, user_key, item_key, t, weight, embedding) VALUES (1, '5', '1', 0, 1, '[1,2]')$$);
SELECT regress.err($$SELECT count(*) FROM interest.event_queue$$);
RESET ROLE;

-- free-text events (searches) with uuid users: the text's embedding is the signal
CREATE TABLE searches (user_id uuid, query text, at timestamptz DEFAULT '2024-07-01');
SELECT attach_events('searches', 'user_id', text_column => 'query', items => 'movies') > 0 AS attached;
INSERT INTO searches (user_id, query) VALUES ('00000000-0000-0000-0000-000000000001', 'gritty detective thriller');
SELECT m.title FROM movies m JOIN interest.item_embeddings e ON e.item_key = m.id::text
 ORDER BY e.embedding <=> user_vector('00000000-0000-0000-0000-000000000001'::uuid, 'searches') LIMIT 2;
SELECT regress.err($$SELECT user_vector(1)$$);

-- bookkeeping trouble never rejects the application's rows
CREATE TABLE tiny_items (id text PRIMARY KEY, e real[]);
SELECT attach_items('tiny_items', 'id', embedding_column => 'e') > 0 AS attached;
INSERT INTO tiny_items VALUES ('a', '{1,0,0}');
CREATE TABLE tiny_events (u text, i text);
SELECT attach_events('tiny_events', 'u', 'i', items => 'tiny_items') > 0 AS attached;
INSERT INTO tiny_events VALUES ('x', 'a');
SELECT dims(user_vector('x', 'tiny_events')) AS byo_dims;
SELECT flush('tiny_events') AS folded;
UPDATE tiny_items SET e = '{1,0}' WHERE id = 'a';
INSERT INTO tiny_events VALUES ('x', 'a');
SELECT dims(user_vector('x', 'tiny_events')) AS mismatch_skipped_on_read;
SELECT flush('tiny_events') AS folded;
SELECT count(*) AS rows_kept FROM tiny_events;
SELECT sqlstate, message FROM interest.bookkeeping_errors ORDER BY id;
-- ... nor does an items text expression that fails: a WARNING, the row is kept
CREATE TABLE fragile (id int PRIMARY KEY);
SELECT attach_items('fragile', 'id', text => $$(10 / (id - 1))::text$$) > 0 AS attached;
INSERT INTO fragile VALUES (1), (2);
SELECT count(*) AS rows_kept, (SELECT count(*) FROM interest.bookkeeping_errors WHERE relid = 'fragile'::regclass) AS errors_logged FROM fragile;
SELECT detach_items('fragile');

-- UPDATE of an event is delete plus insert: the user is recomputed from the table
UPDATE events SET kind = 'dislike' WHERE user_id = 2 AND movie_id = 4;
CREATE TEMP TABLE after_update AS SELECT total FROM interest.user_states s JOIN interest.event_sources es ON es.id = s.source_id
 WHERE es.relid = 'events'::regclass AND user_key = '2';
SELECT rebuild('events') > 0 AS rebuilt;
SELECT (a.total <=> s.total) < 1e-5 AS update_matches_rebuild
FROM after_update a, interest.user_states s JOIN interest.event_sources es ON es.id = s.source_id
WHERE es.relid = 'events'::regclass AND s.user_key = '2';

-- names are quoted: odd table and column names work and inject nothing
CREATE TABLE "Odd ""Items""" ("item id" int PRIMARY KEY, "the; text" text);
INSERT INTO "Odd ""Items""" VALUES (1, 'space opera with starships');
SELECT attach_items('"Odd ""Items"""', 'item id', text => '"the; text"') > 0 AS attached;
CALL backfill_items('"Odd ""Items"""');
CREATE TABLE "Odd Events" ("user); DROP TABLE movies; --" text, "item id" int);
SELECT attach_events('"Odd Events"', 'user); DROP TABLE movies; --', 'item id', items => '"Odd ""Items"""') > 0 AS attached;
INSERT INTO "Odd Events" VALUES ('u1', 1);
SELECT dims(user_vector('u1', '"Odd Events"')) AS odd_names_work, (SELECT count(*) FROM movies) AS movies_still_there;
SELECT detach_events('"Odd Events"'), detach_items('"Odd ""Items"""');

-- attaching requires ownership of the table
CREATE ROLE regress_not_owner;
GRANT USAGE ON SCHEMA public TO regress_not_owner;
SET ROLE regress_not_owner;
SELECT regress.err($$SELECT interest.attach_events('events', 'user_id', 'movie_id')$$);
SELECT regress.err($$SELECT interest.rebuild('events')$$);
RESET ROLE;
REVOKE USAGE ON SCHEMA public FROM regress_not_owner;
DROP ROLE regress_not_owner;

-- the queue: small statements only append their events; user_vector,
-- interests and recommend fold a user's queued events on the fly, and give
-- what a fold then stores
CREATE TABLE clicks (user_id int, movie_id int, at timestamptz);
SELECT attach_events('clicks', 'user_id', 'movie_id', time_column => 'at', items => 'movies', join_similarity => 0.3) > 0 AS attached;
INSERT INTO clicks VALUES (1, 1, '2024-01-01'), (1, 2, '2024-01-02'), (2, 3, '2024-01-03');
INSERT INTO clicks VALUES (1, 4, '2023-12-30');   -- out of order
INSERT INTO clicks VALUES (2, 99, '2024-01-04');  -- no such item yet: waits
CREATE TEMP TABLE queued_reads AS
SELECT u, user_vector(u, 'clicks') AS v, (SELECT array_agg(round(weight::numeric, 6) ORDER BY slot) FROM interests(u, 'clicks')) AS shares
FROM (VALUES (1), (2)) x(u);
SELECT (SELECT count(*) FROM interest.event_queue q JOIN interest.event_sources s ON s.id = q.source_id
        WHERE s.relid = 'clicks'::regclass) AS queued,
       (SELECT count(*) FROM interest.user_states s JOIN interest.event_sources es ON es.id = s.source_id
        WHERE es.relid = 'clicks'::regclass) AS stored_states;
SELECT events, users, queued_events, pending_events, folded_at IS NOT NULL AS folded_before FROM event_status ORDER BY 1;
SELECT flush('clicks') AS folded, flush('clicks') AS folded_again;
SELECT events, users, queued_events, pending_events, folded_at IS NOT NULL AS folded_before FROM event_status WHERE events = 'public.clicks';
SELECT q.u, (q.v <=> user_vector(q.u, 'clicks')) < 1e-6 AS read_equals_fold,
       q.shares = (SELECT array_agg(round(weight::numeric, 6) ORDER BY slot) FROM interests(q.u, 'clicks')) AS same_sub_interests
FROM queued_reads q ORDER BY 1;
SELECT user_key, item_key FROM interest.pending_events p JOIN interest.event_sources s ON s.id = p.source_id
WHERE s.relid = 'clicks'::regclass;
-- every interest.fold_batch events one small statement folds the queue
SET interest.fold_batch = 2;
INSERT INTO clicks VALUES (3, 1, '2024-02-01');
INSERT INTO clicks VALUES (3, 2, '2024-02-02');
SELECT count(*) <= 1 AS folded_by_batch FROM interest.event_queue q JOIN interest.event_sources s ON s.id = q.source_id
WHERE s.relid = 'clicks'::regclass;
-- ... and so does the first small statement after interest.fold_interval
SET interest.fold_batch = 1000000;
SET interest.fold_interval = '50ms';
SELECT pg_sleep(0.1);
INSERT INTO clicks VALUES (3, 3, '2024-02-03');
SELECT count(*) AS queued_after_interval FROM interest.event_queue q JOIN interest.event_sources s ON s.id = q.source_id
WHERE s.relid = 'clicks'::regclass;
-- interest.fold_batch = 0: no queue, every statement applied at once
SET interest.fold_interval = 0;
SET interest.fold_batch = 0;
INSERT INTO clicks VALUES (4, 1, '2024-03-01');
SELECT user_key, events FROM interest.user_states s JOIN interest.event_sources es ON es.id = s.source_id
WHERE es.relid = 'clicks'::regclass AND user_key = '4';
RESET interest.fold_batch;
-- a statement of 64 events or more is applied at once, after its users' queued events
INSERT INTO clicks VALUES (5, 5, '2024-04-01');
INSERT INTO clicks SELECT 5, 1 + g % 6, timestamptz '2024-04-02' + g * interval '1 hour' FROM generate_series(1, 70) g;
SELECT user_key, events FROM interest.user_states s JOIN interest.event_sources es ON es.id = s.source_id
WHERE es.relid = 'clicks'::regclass AND user_key = '5';
SELECT flush('clicks') AS nothing_left;
SELECT regress.err($$SELECT flush('shows')$$);
SELECT detach_events('clicks');

-- detaching removes triggers and bookkeeping, never the application's data
SELECT detach_events('events'), detach_events('events');
SELECT count(*) AS events_kept FROM events;
SELECT count(*) FROM interest.user_states s JOIN interest.event_sources es ON es.id = s.source_id WHERE es.relid = 'events'::regclass;
SELECT tgname FROM pg_trigger WHERE tgrelid = 'events'::regclass;
SELECT detach_events('searches'), detach_events('tiny_events'), detach_items('tiny_items'), detach_items('movies');
SELECT count(*) AS movies_kept FROM movies;
REVOKE ALL ON events FROM regress_app_writer;
DROP ROLE regress_app_writer, regress_outsider;

-- user and item keys compare byte by byte, whatever the database's locale
SELECT count(*) AS key_columns,
       count(*) FILTER (WHERE a.attcollation = 'pg_catalog."C"'::regcollation) AS byte_order
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
WHERE c.relnamespace = 'interest'::regnamespace AND c.relkind IN ('r', 'p')
  AND a.attname IN ('user_key', 'item_key') AND NOT a.attisdropped;
