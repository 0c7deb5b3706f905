-- DDL on attached tables: RENAME of tables and columns and column type
-- changes are followed; dropping a column pg_interest reads, or breaking an
-- items table's text expression, is refused with 2BP01; TRUNCATE empties the
-- bookkeeping; DROP TABLE forgets it. Changes made under REPEATABLE READ
-- are deferred to the next fold, and readers see them at once.
SET search_path = public, interest;
SET interest.fold_interval = 0;
CREATE TABLE d_items (id int PRIMARY KEY, title text);
INSERT INTO d_items VALUES (1, 'red running shoes'), (2, 'green tea'), (3, 'blue jeans'), (4, 'black coffee');
SELECT attach_items('d_items', 'id', text => 'title') > 0 AS attached;
CALL backfill_items('d_items');
CREATE TABLE d_events (id serial PRIMARY KEY, user_id int, item_id int, at timestamptz);
SELECT attach_events('d_events', 'user_id', 'item_id', time_column => 'at', items => 'd_items') > 0 AS attached;
INSERT INTO d_events (user_id, item_id, at) SELECT u, i, '2024-01-01'::timestamptz + (u * 4 + i) * interval '1 hour'
FROM generate_series(1, 3) u, generate_series(1, 4) i;
SELECT flush('d_events') AS folded;
CREATE FUNCTION pg_temp.events_of(rel regclass, u int) RETURNS bigint LANGUAGE sql AS $$
  SELECT s.events FROM interest.user_states s JOIN interest.event_sources e ON e.id = s.source_id
  WHERE e.relid = rel AND s.user_key = u::text $$;
SELECT pg_temp.events_of('d_events', 1) AS user_1_events;

-- 1. RENAME of the table and of its user column, then a type change: the
-- bookkeeping follows (same session, so the per-backend caches too).
ALTER TABLE d_events RENAME TO d_events2;
ALTER TABLE d_events2 RENAME COLUMN user_id TO customer_id;
INSERT INTO d_events2 (customer_id, item_id, at) VALUES (1, 2, '2024-02-01');
SELECT flush('d_events2') AS folded;
ALTER TABLE d_events2 ALTER COLUMN customer_id TYPE bigint;
INSERT INTO d_events2 (customer_id, item_id, at) VALUES (1, 3, '2024-02-02');
DELETE FROM d_events2 WHERE customer_id = 1 AND at = '2024-02-01';
SELECT flush('d_events2') AS folded;
SELECT pg_temp.events_of('d_events2', 1) AS user_1_events;
SELECT columns, user_match FROM interest.event_sources WHERE relid = 'd_events2'::regclass;
SELECT rebuild('d_events2') AS replayed;
SELECT count(*) AS errors FROM interest.bookkeeping_errors WHERE relid = 'd_events2'::regclass;

-- 2. Dropping a column pg_interest reads is refused; other columns may go.
SELECT regress.err('ALTER TABLE d_events2 DROP COLUMN item_id') AS drop_item_column;
ALTER TABLE d_events2 ADD COLUMN note text;
ALTER TABLE d_events2 DROP COLUMN note;
-- an items table: its key column is followed, its text expression checked
ALTER TABLE d_items RENAME COLUMN id TO item_no;
SELECT id_column FROM interest.item_sources WHERE relid = 'd_items'::regclass;
INSERT INTO d_items VALUES (5, 'green jacket');
SELECT count(*) AS embedded FROM interest.item_embeddings e JOIN interest.item_sources s ON s.id = e.source_id
WHERE s.relid = 'd_items'::regclass;
SELECT regress.err('ALTER TABLE d_items RENAME COLUMN title TO name') AS rename_text_column;

-- 3. Under REPEATABLE READ the bookkeeping of a DELETE is deferred (the
-- transaction's snapshot may predate the last fold); readers see it at once.
BEGIN ISOLATION LEVEL REPEATABLE READ;
DELETE FROM d_events2 WHERE customer_id = 2 AND item_id IN (1, 2);
COMMIT;
SELECT count(*) AS deferred_rows FROM interest.rewrite_queue q JOIN interest.event_sources e ON e.id = q.source_id
WHERE e.relid = 'd_events2'::regclass;
SELECT interest.user_vector(2, 'd_events2') <=> (SELECT interest.user_vector(2, 'd_events2')) < 1e-6 AS stable_read;
CREATE TEMP TABLE d_read AS SELECT interest.user_vector(2, 'd_events2') AS v;
SELECT flush('d_events2') >= 0 AS flushed;
SELECT count(*) AS deferred_rows FROM interest.rewrite_queue q JOIN interest.event_sources e ON e.id = q.source_id
WHERE e.relid = 'd_events2'::regclass;
SELECT pg_temp.events_of('d_events2', 2) AS user_2_events;
SELECT (SELECT v FROM d_read) <=> interest.user_vector(2, 'd_events2') < 1e-5 AS read_before_fold_equals_fold;

-- 4. TRUNCATE: the bookkeeping is emptied (deferred under REPEATABLE READ).
BEGIN ISOLATION LEVEL REPEATABLE READ;
TRUNCATE d_events2;
COMMIT;
SELECT interest.user_vector(1, 'd_events2') IS NULL AS reader_sees_truncate;
SELECT flush('d_events2') >= 0 AS flushed;
SELECT count(*) AS states FROM interest.user_states s JOIN interest.event_sources e ON e.id = s.source_id
WHERE e.relid = 'd_events2'::regclass;
INSERT INTO d_events2 (customer_id, item_id, at) VALUES (7, 1, '2024-03-01');
TRUNCATE d_events2;
SELECT count(s.user_key) AS states, (SELECT count(*) FROM interest.event_queue q WHERE q.source_id = e.id) AS queued
FROM interest.event_sources e LEFT JOIN interest.user_states s ON e.id = s.source_id
WHERE e.relid = 'd_events2'::regclass GROUP BY e.id;
TRUNCATE d_items CASCADE;
SELECT count(*) AS embeddings FROM interest.item_embeddings e JOIN interest.item_sources s ON s.id = e.source_id
WHERE s.relid = 'd_items'::regclass;

-- 5. DROP TABLE forgets the bookkeeping and the trigger functions.
SELECT id AS events_src FROM interest.event_sources WHERE relid = 'd_events2'::regclass \gset
SELECT id AS items_src FROM interest.item_sources WHERE relid = 'd_items'::regclass \gset
SELECT count(*) AS trigger_functions_before FROM pg_proc WHERE proname LIKE '\_events\_' || :events_src || '\_%';
DROP TABLE d_events2;
SELECT count(*) AS sources FROM interest.event_sources WHERE id = :events_src;
SELECT count(*) AS trigger_functions FROM pg_proc WHERE proname LIKE '\_events\_' || :events_src || '\_%';
DROP TABLE d_items;
SELECT count(*) AS item_sources FROM interest.item_sources WHERE id = :items_src;
SELECT count(*) AS leftover_rows FROM interest.user_states WHERE source_id = :events_src;

-- 6. A partitioned events table (two levels): rows written through the
-- parent or straight into a partition, created before the attach or after
-- (CREATE TABLE ... PARTITION OF, ATTACH PARTITION), all count, as a rebuild
-- from the table counts them; a detached partition loses the triggers; detach
-- removes them everywhere.
CREATE TABLE d_items3 (id int PRIMARY KEY, title text);
INSERT INTO d_items3 VALUES (1, 'red running shoes'), (2, 'green tea'), (3, 'blue jeans');
SELECT attach_items('d_items3', 'id', text => 'title') > 0 AS attached;
CALL backfill_items('d_items3');
CREATE TABLE d_parted (user_id int, item_id int, at timestamptz) PARTITION BY RANGE (at);
CREATE TABLE d_parted_2024 PARTITION OF d_parted FOR VALUES FROM ('2024-01-01') TO ('2025-01-01') PARTITION BY HASH (user_id);
CREATE TABLE d_parted_2024_a PARTITION OF d_parted_2024 FOR VALUES WITH (modulus 2, remainder 0);
CREATE TABLE d_parted_2024_b PARTITION OF d_parted_2024 FOR VALUES WITH (modulus 2, remainder 1);
SELECT attach_events('d_parted', 'user_id', 'item_id', time_column => 'at', items => 'd_items3') > 0 AS attached;
SELECT tgrelid::regclass AS partition, count(*) AS triggers FROM pg_trigger WHERE tgname LIKE 'interest\_events\_%'
  AND tgrelid::regclass::text LIKE 'd\_parted%' GROUP BY 1 ORDER BY 1;
INSERT INTO d_parted VALUES (1, 1, '2024-05-01');
INSERT INTO d_parted_2024 VALUES (2, 2, '2024-05-02');
INSERT INTO d_parted_2024_b SELECT u, 1 + u % 3, '2024-06-01' FROM generate_series(10, 200) u WHERE satisfies_hash_partition('d_parted_2024'::regclass, 2, 1, u);
CREATE TABLE d_parted_2025 PARTITION OF d_parted FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE d_parted_2026 (user_id int, item_id int, at timestamptz);
ALTER TABLE d_parted ATTACH PARTITION d_parted_2026 FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
INSERT INTO d_parted_2025 VALUES (3, 3, '2025-05-01');
INSERT INTO d_parted_2026 VALUES (4, 1, '2026-05-01'), (4, 2, '2026-05-02');
UPDATE d_parted_2024_b SET item_id = 2 WHERE user_id = 11;
DELETE FROM d_parted_2026 WHERE item_id = 2;
SELECT flush('d_parted') >= 0 AS flushed;
CREATE TEMP TABLE d_parted_states AS SELECT user_key, events, t_ref FROM interest.user_states s JOIN interest.event_sources e ON e.id = s.source_id
WHERE e.relid = 'd_parted'::regclass;
SELECT count(*) AS users, count(*) FILTER (WHERE user_key IN ('1', '2', '3', '4')) AS written_four_ways FROM d_parted_states;
SELECT rebuild('d_parted') AS replayed;
CREATE TEMP VIEW d_parted_rebuilt AS SELECT user_key, events, t_ref FROM interest.user_states s JOIN interest.event_sources e ON e.id = s.source_id
WHERE e.relid = 'd_parted'::regclass;
SELECT (SELECT count(*) FROM (TABLE d_parted_states EXCEPT TABLE d_parted_rebuilt) a)
     + (SELECT count(*) FROM (TABLE d_parted_rebuilt EXCEPT TABLE d_parted_states) b) AS differ_from_rebuild;
ALTER TABLE d_parted DETACH PARTITION d_parted_2026;
SELECT count(*) AS triggers_on_detached FROM pg_trigger WHERE tgrelid = 'd_parted_2026'::regclass AND tgname LIKE 'interest%';
SELECT detach_events('d_parted');
SELECT count(*) AS triggers_left FROM pg_trigger WHERE tgname LIKE 'interest%' AND tgrelid::regclass::text LIKE 'd\_parted%';
DROP VIEW d_parted_rebuilt;
DROP TABLE d_parted, d_parted_2026;
SELECT detach_items('d_items3');
DROP TABLE d_items3;

-- 7. DROP EXTENSION refuses while tables are attached, naming their triggers
-- (2BP01); with CASCADE their triggers go with it, the tables stay and take
-- writes (before, every write failed: its triggers called functions that
-- were gone). (Its columns of type interest.embedding would go too: they
-- are the extension's type.)
CREATE TABLE d_drop_items (id int PRIMARY KEY, e real[]);
SELECT attach_items('d_drop_items', 'id', embedding_column => 'e') > 0 AS attached;
CREATE TABLE d_drop_events (u int, i int);
SELECT attach_events('d_drop_events', 'u', 'i', items => 'd_drop_items') > 0 AS attached;
SELECT split_part(regress.err('DROP EXTENSION pg_interest'), ':', 1) AS drop_refused,
       regress.err('DROP EXTENSION pg_interest') LIKE '%trigger interest_events_ins on table d_drop_events depends on%' AS names_the_trigger;
SELECT count(*) AS depending_functions FROM pg_depend d JOIN pg_proc p ON d.classid = 'pg_proc'::regclass AND p.oid = d.objid
WHERE d.deptype = 'x' AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_interest')
  AND p.oid IN (SELECT to_regproc(interest._trigger_function(k, s.id, op)) FROM unnest(interest._trigger_ops()) op,
                    (VALUES ('item', (SELECT id FROM interest.item_sources WHERE relid = 'd_drop_items'::regclass)),
                            ('event', (SELECT id FROM interest.event_sources WHERE relid = 'd_drop_events'::regclass))) s(k, id));
BEGIN;
SET LOCAL client_min_messages = warning;
DROP EXTENSION pg_interest CASCADE;
SELECT count(*) AS triggers_left FROM pg_trigger WHERE tgrelid IN ('d_drop_items'::regclass, 'd_drop_events'::regclass) AND NOT tgisinternal;
INSERT INTO d_drop_items VALUES (1, NULL);
INSERT INTO d_drop_events VALUES (1, 1);
SELECT count(*) AS rows_written FROM d_drop_events;
ROLLBACK;
SELECT detach_events('d_drop_events'), detach_items('d_drop_items');
DROP TABLE d_drop_events, d_drop_items;

-- 8. detach_items drops index_items' vector index; DROP TABLE leaves it (a
-- DROP INDEX there would lock interest.item_embeddings until the
-- application's transaction ends) and the README says how to drop it.
CREATE TABLE d_ix_items (id int PRIMARY KEY, e real[]);
SELECT attach_items('d_ix_items', 'id', embedding_column => 'e') > 0 AS attached;
INSERT INTO d_ix_items SELECT g, ARRAY[g, 1, 0]::real[] FROM generate_series(1, 50) g;
CREATE TEMP TABLE d_ix AS SELECT interest._items_index_name(id) AS name FROM interest.item_sources WHERE relid = 'd_ix_items'::regclass;
SELECT index_items('d_ix_items', lists => 2) AS indexed;
SELECT count(*) AS index_before FROM pg_class c JOIN d_ix ON c.relname = d_ix.name;
SELECT detach_items('d_ix_items');
SELECT count(*) AS index_after_detach FROM pg_class c JOIN d_ix ON c.relname = d_ix.name;
DROP TABLE d_ix_items, d_ix;
