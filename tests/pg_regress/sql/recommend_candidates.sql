-- recommend() from candidates: index_items builds the source's vector index;
-- recommend() then ranks content neighbours, co-visitation targets and
-- trending items only, and agrees with the exact path.
SET search_path = public, interest;
SET interest.fold_interval = 0;

-- A shop with its own embeddings (clustered) and the synthetic events.
CREATE TABLE c_items (item_id int PRIMARY KEY, e embedding(32));
INSERT INTO c_items SELECT id, embedding FROM synthetic_vectors(600, 32, 30, 0.8, 5);
SELECT attach_items('c_items', 'item_id', embedding_column => 'e') > 0 AS attached;
CALL backfill_items('c_items', 1000);
CREATE TABLE c_events (user_id int, item_id int, kind text, at timestamptz);
SELECT attach_events('c_events', 'user_id', 'item_id', time_column => 'at', type_column => 'kind', items => 'c_items') > 0 AS attached;
INSERT INTO c_events SELECT user_id, 1 + (item_id - 1) % 600, kind, at FROM synthetic_events(3, 120, 600) ORDER BY at;

-- 1. The index: one per items table, on its embeddings only.
SELECT index_items('c_items') AS indexed;
SELECT dimensions, metric, lists, entries FROM ivf_info(('interest.' || interest._items_index_name(
    (SELECT id FROM interest.item_sources WHERE relid = 'c_items'::regclass)))::regclass);

-- 2. The candidate path agrees with ranking every item.
CREATE TEMP TABLE via_candidates AS
SELECT u, array_agg(item ORDER BY score DESC, item) AS items FROM generate_series(1, 120) u, recommend(u, 10, events => 'c_events') GROUP BY u;
SET interest.recommend_candidates = off;
CREATE TEMP TABLE via_all AS
SELECT u, array_agg(item ORDER BY score DESC, item) AS items FROM generate_series(1, 120) u, recommend(u, 10, events => 'c_events') GROUP BY u;
RESET interest.recommend_candidates;
SELECT count(*) AS users, avg(cardinality(c.items)) AS items_per_list,
       avg((SELECT count(*) FROM unnest(c.items) x WHERE x = ANY(a.items)))::numeric(4, 2) >= 9.0 AS nearly_the_same_lists
FROM via_candidates c JOIN via_all a USING (u);
-- Fewer candidates per call (interest.content_candidates, covisit_candidates):
-- lists stay full and close to ranking every item; the settings are bounded.
SHOW interest.content_candidates;
SHOW interest.covisit_candidates;
SET interest.content_candidates = 40;
SET interest.covisit_candidates = 40;
CREATE TEMP TABLE via_fewer AS
SELECT u, array_agg(item ORDER BY score DESC, item) AS items FROM generate_series(1, 120) u, recommend(u, 10, events => 'c_events') GROUP BY u;
SELECT count(*) AS users, avg(cardinality(f.items)) AS items_per_list,
       avg((SELECT count(*) FROM unnest(f.items) x WHERE x = ANY(a.items)))::numeric(4, 2) >= 8.0 AS close_to_every_item,
       count(*) FILTER (WHERE f.items <> c.items) > 0 AS some_lists_changed
FROM via_fewer f JOIN via_all a USING (u) JOIN via_candidates c USING (u);
RESET interest.content_candidates;
RESET interest.covisit_candidates;
SELECT regress.err($$SET interest.content_candidates = 5$$) AS too_few;
SELECT regress.err($$SET interest.covisit_candidates = 100000$$) AS too_many;

-- The trending candidates come from the top of an index on item_stats: each
-- stored trend is log2 of the recent count at clock 0, so at any later clock
-- items with larger trends have larger recent counts.
SELECT count(*) AS items_with_stats,
       count(*) FILTER (WHERE (s.trend IS NULL) <> (s.recent_events <= 0)
           OR abs(s.trend - (log(2, s.recent_events::numeric)::float8 + s.t_ref / extract(epoch FROM e.popularity_half_life)::float8)) > 1e-9) AS wrong_trends
FROM interest.item_stats s JOIN interest.event_sources e ON e.id = s.source_id WHERE e.relid = 'c_events'::regclass;
-- (small tables are read whole; the plan shows the index serves the order)
SET enable_seqscan = off;
SET enable_bitmapscan = off;
EXPLAIN (COSTS OFF) SELECT item_key FROM interest.item_stats WHERE source_id = 1 AND trend IS NOT NULL ORDER BY trend DESC, item_key LIMIT 100;
EXPLAIN (COSTS OFF) SELECT max(last_seen) FROM interest.item_stats WHERE source_id = 1;
RESET enable_seqscan;
RESET enable_bitmapscan;

-- 3. Filters and exclusions come before the ranking: a short filter list is
-- ranked whole; a filter that leaves fewer candidates than k still fills
-- the list from every item.
CREATE TEMP TABLE filtered AS
SELECT 'short' AS f, array_agg(item ORDER BY score DESC, item) AS items FROM recommend(1, 10, events => 'c_events', filter => 'item_id IN (5, 17, 301, 302)')
UNION ALL
SELECT 'long', array_agg(item ORDER BY score DESC, item) FROM recommend(2, 10, events => 'c_events', filter => 'item_id % 7 = 0')
UNION ALL
SELECT 'few', array_agg(item ORDER BY score DESC, item) FROM recommend(4, 10, events => 'c_events', filter => 'item_id % 97 = 0', exclude_seen => false);
SET interest.recommend_candidates = off;
SELECT f, cardinality(items) AS rows,
       items = (CASE f WHEN 'short' THEN (SELECT array_agg(item ORDER BY score DESC, item) FROM recommend(1, 10, events => 'c_events', filter => 'item_id IN (5, 17, 301, 302)'))
                       WHEN 'long' THEN (SELECT array_agg(item ORDER BY score DESC, item) FROM recommend(2, 10, events => 'c_events', filter => 'item_id % 7 = 0'))
                       ELSE (SELECT array_agg(item ORDER BY score DESC, item) FROM recommend(4, 10, events => 'c_events', filter => 'item_id % 97 = 0', exclude_seen => false)) END) AS same_as_ranking_all,
       (SELECT bool_and(CASE f WHEN 'long' THEN x::int % 7 = 0 WHEN 'few' THEN x::int % 97 = 0 ELSE x IN ('5', '17', '301', '302') END) FROM unnest(items) x) AS all_allowed
FROM filtered ORDER BY f;
RESET interest.recommend_candidates;
SELECT count(*) FILTER (WHERE item IN ('1', '2', '3')) AS excluded_items_returned
FROM recommend(3, 10, events => 'c_events', exclude => ARRAY['1', '2', '3']);
-- A key the integer user column cannot hold is a user without events (the
-- trending items, from candidates), not an error.
SELECT count(*) AS rows, count(*) FILTER (WHERE reason LIKE '%popular%') = count(*) AS all_popular
FROM recommend('new-visitor', 5, events => 'c_events');
-- A key must also come back unchanged from the column's type (varchar(3)
-- truncates 'abcdef' to the user abc; '007' is not user 7, whose key is
-- '7') and pass a domain's CHECK; one that does not is a user without
-- events too, whose list leaves in the items abc has seen.
CREATE DOMAIN positive_id AS int CHECK (VALUE > 0);
CREATE TABLE k_events (user_id positive_id, item_id int);
CREATE TABLE v_events (shopper varchar(3), item_id int);
CREATE TABLE r_events (who regclass, item_id int);
SELECT attach_events('k_events', 'user_id', 'item_id') > 0 AS attached,
       attach_events('v_events', 'shopper', 'item_id') > 0 AS attached_too,
       attach_events('r_events', 'who', 'item_id') > 0 AS attached_three;
INSERT INTO k_events VALUES (5, 1), (5, 2), (6, 1), (6, 3), (7, 1), (7, 2);
INSERT INTO v_events VALUES ('abc', 1), ('abc', 2), ('abd', 1), ('abd', 3);
SELECT t, k, interest._user_key_fits(s.id, k) AS fits
FROM (VALUES ('k_events', '5'), ('k_events', '-5'), ('k_events', '007'), ('k_events', 'x'),
             ('v_events', 'abc'), ('v_events', 'abcdef'), ('v_events', 'ab'),
             ('r_events', 'public.r_events'), ('r_events', 'no_such_table'), ('r_events', 'no_such_schema.t')) v(t, k)
JOIN interest.event_sources s ON s.relid = t::regclass ORDER BY t, k;
-- (a name error from anything but a reg* type is not taken for "no such
-- user": a domain check whose function reads a missing table fails)
CREATE FUNCTION b_check(int) RETURNS bool LANGUAGE plpgsql AS $$ BEGIN PERFORM 1 FROM b_missing; RETURN true; END $$;
CREATE DOMAIN b_id AS int CHECK (b_check(VALUE));
CREATE TABLE b_events (user_id b_id, item_id int);
SELECT attach_events('b_events', 'user_id', 'item_id') > 0 AS attached;
SELECT split_part(regress.err($$SELECT * FROM recommend('5', 3, events => 'b_events')$$), ' | ', 1) AS broken_domain;
SELECT detach_events('b_events') AS detached;
DROP TABLE b_events;
DROP DOMAIN b_id;
DROP FUNCTION b_check;
SELECT (SELECT array_agg(item ORDER BY item) FROM recommend('-5', 3, events => 'k_events')) AS domain_refused,
       (SELECT array_agg(item ORDER BY item) FROM recommend('007', 3, events => 'k_events')) AS not_user_7,
       (SELECT array_agg(item ORDER BY item) FROM recommend('7', 3, events => 'k_events')) AS user_7,
       (SELECT array_agg(item ORDER BY item) FROM recommend('abcdef', 3, events => 'v_events')) AS not_user_abc,
       (SELECT array_agg(item ORDER BY item) FROM recommend('abc', 3, events => 'v_events')) AS user_abc;
-- The same for a reader under row-level security, who sees user 5 only: a
-- user hidden from them has no events either (not even seen items). One who
-- sees a single row of user 5's sees the user whole: both seen items stay
-- out of a list that leaves out every item but 1, 2 and 3.
CREATE ROLE k_reader;
GRANT SELECT ON k_events TO k_reader;
ALTER TABLE k_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY only_5 ON k_events FOR SELECT TO k_reader USING (user_id = 5);
SET ROLE k_reader;
SELECT (SELECT array_agg(item ORDER BY item) FROM recommend('x', 3, events => 'k_events')) AS not_a_key,
       (SELECT array_agg(item ORDER BY item) FROM recommend('6', 3, events => 'k_events')) AS hidden_user,
       (SELECT array_agg(item ORDER BY item) FROM recommend('5', 3, events => 'k_events')) AS user_5;
RESET ROLE;
ALTER POLICY only_5 ON k_events USING (user_id = 5 AND item_id = 1);
SET ROLE k_reader;
SELECT (SELECT count(*) FROM k_events) AS rows_seen,
       (SELECT array_agg(item ORDER BY item) FROM recommend('5', 3, events => 'k_events', exclude => ARRAY(SELECT i::text FROM generate_series(4, 600) i))) AS user_5_partly_seen;
RESET ROLE;
SELECT detach_events('k_events') AND detach_events('v_events') AND detach_events('r_events') AS detached;
DROP TABLE k_events, v_events, r_events;
DROP ROLE k_reader;
DROP DOMAIN positive_id;
-- When exclusions leave fewer than k of the candidates, the call asks again
-- with wider limits, not every item (that would read the whole catalog, and
-- a DEBUG line says so); the
-- lists stay close to exact. A new connection holds no catalog.
\c
SET search_path = public, interest;
SET interest.fold_interval = 0;
SELECT count(*) AS catalogs_held FROM cached_catalogs();
SET interest.content_candidates = 20;
SET interest.covisit_candidates = 0;
CREATE TEMP TABLE far AS SELECT array_agg(i::text) AS keys FROM generate_series(1, 600) i WHERE i % 50 <> 0;
CREATE TEMP TABLE widened (u int, items text[]);
SET client_min_messages = debug1;
INSERT INTO widened
SELECT u, array_agg(item ORDER BY score DESC, item) AS items
FROM generate_series(5, 8) u, recommend(u, 5, events => 'c_events', exclude => (SELECT keys FROM far)) GROUP BY u;
RESET client_min_messages;
SELECT count(*) AS catalogs_held FROM cached_catalogs();
SET interest.recommend_candidates = off;
SELECT count(*) AS users, min(cardinality(w.items)) AS fewest_rows,
       avg((SELECT count(*) FROM unnest(w.items) x WHERE x IN (SELECT item FROM recommend(w.u, 5, events => 'c_events', exclude => (SELECT keys FROM far)))))
           >= 4.0 AS nearly_the_same_lists
FROM widened w;
RESET interest.recommend_candidates;
RESET interest.content_candidates;
RESET interest.covisit_candidates;
-- (ranking every item, as just now, holds the catalog)
SELECT items, embeddings, bytes > 600 * 32 * 4 AS holds_the_vectors FROM cached_catalogs();
\c
SET search_path = public, interest;
SET interest.fold_interval = 0;

-- explain() reads the context recommend() reads (the user's candidates and
-- the item), so its parts add up to the score from candidates.
SELECT count(*) AS rows,
       bool_and(abs(r.score - (SELECT sum(contribution) FROM explain(u::text, r.item, events => 'c_events'))) < 1e-9) AS explain_adds_up
FROM generate_series(1, 30) u, recommend(u, 3, events => 'c_events') r;
-- ...also when the call widened its candidates from limits of 20, and
-- explain() reads its own under the default limits (the scales depend on
-- neither; the DEBUG lines show the rounds).
SET interest.content_candidates = 20;
SET interest.covisit_candidates = 20;
CREATE TEMP TABLE widened_scores (u int, item text, score float8);
SET client_min_messages = debug1;
INSERT INTO widened_scores
SELECT u, r.item, r.score FROM generate_series(1, 8) u,
     recommend(u, 5, events => 'c_events', exclude => ARRAY(SELECT i::text FROM generate_series(1, 600) i WHERE i % 50 <> 0)) r;
RESET client_min_messages;
RESET interest.content_candidates;
RESET interest.covisit_candidates;
SELECT count(*) AS rows,
       bool_and(abs(r.score - (SELECT sum(contribution) FROM explain(u::text, r.item, events => 'c_events'))) < 1e-9) AS explain_adds_up,
       count(*) FILTER (WHERE EXISTS (SELECT 1 FROM explain(u::text, r.item, events => 'c_events') WHERE component = 'co-visitation')) > 0 AS some_from_covisitation
FROM widened_scores r;
-- ...and when even the widest candidates leave fewer than k: a catalog of
-- 1,500 items, more than the widest content limit (1,280 for one
-- interest), where the items allowed are the farthest from the user's one
-- interest (one has events, linked from the user's item; the others none).
-- The call ranks every item on the clock and co-visitation scale explain()
-- uses, also after an event newer than this connection's trending list.
CREATE TABLE g_items (item_id int PRIMARY KEY, e embedding(8));
INSERT INTO g_items SELECT id, embedding FROM synthetic_vectors(1500, 8, 10, 0.8, 7);
SELECT attach_items('g_items', 'item_id', embedding_column => 'e') > 0 AS attached;
CALL backfill_items('g_items', 2000);
SELECT index_items('g_items') AS indexed;
CREATE TABLE g_events (user_id int, item_id int, at timestamptz);
SELECT attach_events('g_events', 'user_id', 'item_id', time_column => 'at', items => 'g_items') > 0 AS attached;
CREATE TEMP TABLE g_far AS
SELECT array_agg(item_id::text ORDER BY item_id) AS keys
FROM (SELECT item_id FROM g_items ORDER BY e <=> (SELECT e FROM g_items WHERE item_id = 1) DESC LIMIT 6) f;
INSERT INTO g_events
SELECT 1, 1, '2026-01-01 00:00+00'::timestamptz UNION ALL
SELECT 2, 1, '2026-01-01 00:00+00' UNION ALL
SELECT 2, (keys[1])::int, '2026-01-01 00:01+00' FROM g_far UNION ALL
SELECT u, 2 + u % 8, '2026-01-01 00:02+00' FROM generate_series(3, 40) u;
SELECT flush('g_events') AS folded, (SELECT count(*) FROM recommend(1, 5, events => 'g_events')) AS rows;
INSERT INTO g_events VALUES (41, 4, '2026-01-03 00:00+00');
SELECT flush('g_events') AS folded;
SET interest.content_candidates = 20;
SET interest.covisit_candidates = 0;
CREATE TEMP TABLE g_rows (item text, score float8);
SET client_min_messages = debug1;
INSERT INTO g_rows
SELECT r.item, r.score FROM recommend(1, 5, events => 'g_events',
    exclude => ARRAY(SELECT i::text FROM generate_series(1, 1500) i WHERE NOT EXISTS (SELECT 1 FROM g_far WHERE i::text = ANY (keys)))) r;
RESET client_min_messages;
RESET interest.content_candidates;
RESET interest.covisit_candidates;
SELECT count(*) AS rows, bool_and(EXISTS (SELECT 1 FROM g_far WHERE item = ANY (keys))) AS far_items,
       bool_and(abs(r.score - (SELECT sum(contribution) FROM explain('1', r.item, events => 'g_events'))) < 1e-9) AS explain_adds_up,
       count(*) FILTER (WHERE EXISTS (SELECT 1 FROM explain('1', r.item, events => 'g_events') WHERE component = 'co-visitation')) AS from_covisitation
FROM g_rows r;
-- (the fallback read the catalog for its call only)
SELECT count(*) AS catalogs_held FROM cached_catalogs();
-- The clock and popularity's scale (the source's most popular item now) are
-- read afresh by each call: an item that became the hottest after this
-- connection read its trending list (and is neither a neighbour nor a link
-- of the user's) sets the scale of explain() from candidates as it does when
-- every item is ranked.
INSERT INTO g_events SELECT u, (keys[2])::int, '2026-01-03 00:00+00' FROM g_far, generate_series(100, 149) u;
SELECT flush('g_events') AS folded;
CREATE TEMP TABLE g_popularity AS
SELECT 'candidates' AS path, i AS item, (SELECT contribution FROM explain('1', i, events => 'g_events') WHERE component = 'popularity') AS part
FROM unnest(ARRAY['5', (SELECT keys[2] FROM g_far)]) i;
SET interest.recommend_candidates = off;
INSERT INTO g_popularity
SELECT 'every item', i, (SELECT contribution FROM explain('1', i, events => 'g_events') WHERE component = 'popularity')
FROM unnest(ARRAY['5', (SELECT keys[2] FROM g_far)]) i;
RESET interest.recommend_candidates;
SELECT count(*) AS items,
       bool_and(abs(c.part - a.part) < 1e-12) AS same_popularity,
       bool_and(c.part > 0) AS popular,
       count(*) FILTER (WHERE c.part > 0.99 * (SELECT max(part) FROM g_popularity)) AS hottest
FROM g_popularity c JOIN g_popularity a USING (item) WHERE c.path = 'candidates' AND a.path = 'every item';
SELECT detach_events('g_events') AND detach_items('g_items') AS detached;
DROP TABLE g_events, g_items;
\c
SET search_path = public, interest;
SET interest.fold_interval = 0;
-- similar_items() from the item's neighbours and links: as from every item.
CREATE TEMP TABLE similar_c AS
SELECT i, array_agg(item ORDER BY score DESC, item) AS items, array_agg(round(score::numeric, 9) ORDER BY score DESC, item) AS scores
FROM generate_series(1, 600, 15) i, similar_items(i, 10, events => 'c_events') GROUP BY i;
SELECT count(*) AS catalogs_held FROM cached_catalogs();
SET interest.recommend_candidates = off;
SELECT count(*) AS items, min(cardinality(c.items)) AS fewest_rows,
       count(*) FILTER (WHERE (c.items, c.scores) = (SELECT array_agg(item ORDER BY score DESC, item), array_agg(round(score::numeric, 9) ORDER BY score DESC, item)
                                                     FROM similar_items(c.i, 10, events => 'c_events'))) AS same_as_ranking_all
FROM similar_c c;
RESET interest.recommend_candidates;
SELECT regress.err($$SELECT * FROM similar_items(100000, 10, events => 'c_events')$$) AS unknown_item;

-- The neighbours' keys from the index (src/ivf/keys.rs), taken when their
-- statement is planned through the index as on a large catalog (forced
-- here: no other plan is left): the same lists and scores as from the
-- neighbours' rows, which the same index built without the keys gives,
-- though no row is fetched through the index. Both count as scans of the
-- index in its statistics (each of the 120 users has a taste, so at least
-- one scan a call, besides one per similar_items call).
SELECT index_items('c_items') AS reindexed;
SELECT interest._items_index_name(id) AS c_index, id AS c_source FROM interest.item_sources WHERE relid = 'c_items'::regclass \gset
SELECT lists AS c_lists FROM ivf_info(('interest.' || :'c_index')::regclass) \gset
-- (a view, so that each read calls the functions under the session's plan settings)
CREATE VIEW neighbour_lists AS
SELECT 'recommend' AS call, u AS arg, array_agg(item ORDER BY score DESC, item) AS items,
       array_agg(round(score::numeric, 9) ORDER BY score DESC, item) AS scores
FROM generate_series(1, 120) u, recommend(u, 10, events => 'c_events') GROUP BY u
UNION ALL
SELECT 'similar_items', i, array_agg(item ORDER BY score DESC, item), array_agg(round(score::numeric, 9) ORDER BY score DESC, item)
FROM generate_series(1, 600, 15) i, similar_items(i, 10, events => 'c_events') GROUP BY i;
SELECT idx_scan AS scans_before, idx_tup_read AS read_before, idx_tup_fetch AS fetched_before FROM pg_stat_all_indexes WHERE indexrelid = ('interest.' || :'c_index')::regclass \gset
\c
SET search_path = public, interest;
SET interest.fold_interval = 0;
\set forced_index_plan 'SET enable_seqscan = off; SET enable_bitmapscan = off; SET enable_sort = off;'
:forced_index_plan
CREATE TABLE lists_by_keys AS SELECT * FROM neighbour_lists;
SELECT pg_stat_force_next_flush();
SELECT idx_scan - :scans_before >= 160 AS keys_count_as_scans, idx_tup_read - :read_before >= 160 * 10 AS entries_read,
       idx_tup_fetch - :fetched_before AS rows_fetched
FROM pg_stat_all_indexes WHERE indexrelid = ('interest.' || :'c_index')::regclass;
DROP INDEX interest.:"c_index";
CREATE INDEX :"c_index" ON interest.item_embeddings USING interest_ivf (embedding) WITH (lists = :c_lists) WHERE source_id = :c_source;
\c
SET search_path = public, interest;
SET interest.fold_interval = 0;
:forced_index_plan
CREATE TEMP TABLE lists_by_rows AS SELECT * FROM neighbour_lists;
SELECT pg_stat_force_next_flush();
SELECT idx_scan >= 160 AS rows_count_as_scans, idx_tup_fetch >= 160 * 10 AS rows_fetched
FROM pg_stat_all_indexes WHERE indexrelid = ('interest.' || :'c_index')::regclass;
SELECT k.call, count(*) AS lists, min(cardinality(k.items)) AS fewest_rows,
       count(*) FILTER (WHERE (k.items, k.scores) = (r.items, r.scores)) AS same_as_from_rows
FROM lists_by_keys k JOIN lists_by_rows r USING (call, arg) GROUP BY k.call ORDER BY k.call;
DROP TABLE lists_by_keys;
DROP VIEW neighbour_lists;
RESET enable_seqscan;
RESET enable_bitmapscan;
RESET enable_sort;
SELECT index_items('c_items') AS reindexed;

-- The embeddings of the trending items, which a connection keeps between
-- calls, follow the items table: a vector changed since is ranked as it is
-- now (the same score as ranking every item), also inside the transaction
-- that changed it; one changed in a transaction that rolled back is never
-- kept, even after a later change brings the table's count of changes back
-- to the number that transaction saw (the catalog a connection keeps when
-- it ranks every item follows the same rule), also when that transaction
-- called recommend() in a savepoint of its own. The hottest item gets vectors opposite
-- to the user's two best content matches, so that it is a candidate as a
-- trending item (read by key), never as a content neighbour.
SELECT item_key AS hot FROM interest.item_stats s JOIN interest.event_sources e ON e.id = s.source_id
WHERE e.relid = 'c_events'::regclass AND s.trend IS NOT NULL ORDER BY s.trend DESC, s.item_key LIMIT 1 \gset
CREATE TEMP TABLE opposite AS
SELECT row_number() OVER (ORDER BY r.score DESC, r.item) AS n,
       (SELECT array_agg(-x) FROM unnest(i.e::real[]) x)::embedding AS e
FROM recommend(7, 2, events => 'c_events', content => 1, covisit => 0, popularity => 0, freshness => 0) r
JOIN c_items i ON i.item_id::text = r.item;
SELECT score AS hot_before FROM recommend(7, 1, events => 'c_events', exclude_seen => false, filter => 'item_id = ' || :'hot') \gset
UPDATE c_items SET e = (SELECT e FROM opposite WHERE n = 1) WHERE item_id = :'hot'::int;
SELECT score AS hot_after FROM recommend(7, 1, events => 'c_events', exclude_seen => false, filter => 'item_id = ' || :'hot') \gset
SET interest.recommend_candidates = off;
SELECT abs(score - :hot_after) < 1e-9 AS changed_vector_ranked_as_now, abs(:hot_after - :hot_before) > 1e-6 AS score_moved
FROM recommend(7, 1, events => 'c_events', exclude_seen => false, filter => 'item_id = ' || :'hot');
RESET interest.recommend_candidates;
BEGIN;
UPDATE c_items SET e = (SELECT e FROM opposite WHERE n = 2) WHERE item_id = :'hot'::int;
-- (in a savepoint, as drivers that roll back a failed statement run each)
SAVEPOINT each_statement;
SELECT score AS hot_in_txn FROM recommend(7, 1, events => 'c_events', exclude_seen => false, filter => 'item_id = ' || :'hot') \gset
SET LOCAL interest.recommend_candidates = off;
SELECT abs(score - :hot_in_txn) < 1e-9 AS in_txn_ranked_as_now, abs(:hot_in_txn - :hot_after) > 1e-6 AS in_txn_score_moved
FROM recommend(7, 1, events => 'c_events', exclude_seen => false, filter => 'item_id = ' || :'hot');
ROLLBACK;
-- (an item no user has events on: no interest changes with it)
UPDATE c_items SET e = (SELECT e FROM opposite WHERE n = 2)
WHERE item_id = (SELECT min(item_id) FROM c_items i WHERE NOT EXISTS (SELECT 1 FROM c_events v WHERE v.item_id = i.item_id));
SELECT score AS hot_final FROM recommend(7, 1, events => 'c_events', exclude_seen => false, filter => 'item_id = ' || :'hot') \gset
SET interest.recommend_candidates = off;
SELECT abs(score - :hot_final) < 1e-9 AS rolled_back_vector_not_kept, abs(:hot_final - :hot_after) < 1e-9 AS as_before_the_transaction,
       abs(score - :hot_after) < 1e-9 AS every_item_as_before_too
FROM recommend(7, 1, events => 'c_events', exclude_seen => false, filter => 'item_id = ' || :'hot');
RESET interest.recommend_candidates;

-- 4. evaluate() reports the candidate path beside the exact one.
SELECT method, users > 0 AS has_users FROM evaluate('c_events', k => 10, new_items => 0)
WHERE method IN ('recommend', 'recommend (candidates)') ORDER BY method;
SELECT abs((SELECT hit_rate FROM evaluate('c_events', new_items => 0) WHERE method = 'recommend')
         - (SELECT hit_rate FROM evaluate('c_events', new_items => 0) WHERE method = 'recommend (candidates)')) < 0.05 AS within_noise;

-- 5. Rights and errors: only the owner indexes; a table that is not
-- attached; a bad list count. Detaching drops the index.
CREATE ROLE c_other;
GRANT SELECT ON c_items TO c_other;
SET ROLE c_other;
SELECT split_part(regress.err($$SELECT interest.index_items('c_items')$$), ':', 1) AS not_owner;
RESET ROLE;
REVOKE ALL ON c_items FROM c_other;
DROP ROLE c_other;
SELECT regress.err($$SELECT index_items('c_events')$$) AS not_items;
SELECT regress.err($$SELECT index_items('c_items', lists => 0)$$) AS bad_lists;
SELECT vector_index FROM interest.item_sources WHERE relid = 'c_items'::regclass;
-- Dropped by hand, the index is no longer wanted: vector_index is cleared
-- (so the queue folder does not build it again) and recommend() ranks every
-- item without a word.
DO $$ BEGIN EXECUTE format('DROP INDEX interest.%I', interest._items_index_name((SELECT id FROM interest.item_sources WHERE relid = 'c_items'::regclass))); END $$;
SELECT vector_index IS NULL AS forgotten FROM interest.item_sources WHERE relid = 'c_items'::regclass;
SELECT count(*) AS rows FROM recommend(1, 5, events => 'c_events');
-- Recorded but gone, as in a restored database (a dump carries
-- vector_index, not the index): recommend() warns once per backend.
UPDATE interest.item_sources SET vector_index = '{"lists": 8}' WHERE relid = 'c_items'::regclass;
SELECT count(*) AS rows FROM recommend(1, 5, events => 'c_events');
SELECT count(*) AS rows FROM recommend(2, 5, events => 'c_events');
SELECT index_items('c_items', lists => 8) AS rebuilt;
SELECT vector_index FROM interest.item_sources WHERE relid = 'c_items'::regclass;
-- the rebuild replaced the index under its name (built beside it, then swapped)
SELECT c.relname = interest._items_index_name(s.id) AS same_name, (interest.ivf_info(c.oid)).lists
FROM pg_class c, interest.item_sources s WHERE s.relid = 'c_items'::regclass AND c.relname ~ ('^' || interest._items_index_name(s.id) || '(_new)?$');
SELECT detach_events('c_events'), detach_items('c_items');
SELECT count(*) AS indexes_left FROM pg_class WHERE relname LIKE 'item_embeddings_ivf_%';
