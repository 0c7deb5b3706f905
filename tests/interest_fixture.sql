-- Shared by tests/concurrency.sh, tests/crash.sh and tests/fold_worker.sh:
-- 300 items with 32-d vectors in 5 taste clusters (no model needed), and an
-- attached events table; psql variable event_id_column adds a key column.
\set ON_ERROR_STOP 1
\set QUIET 1
CREATE EXTENSION pg_interest;
CREATE TABLE items (id int PRIMARY KEY, e real[]);
INSERT INTO items SELECT i, (SELECT array_agg(CASE WHEN d % 5 = i % 5 THEN 1 ELSE 0 END + random()::real * 0.3) FROM generate_series(1, 32) d WHERE i > 0)
FROM generate_series(1, 300) i;
SELECT interest.attach_items('items', 'id', embedding_column => 'e') AS items_source \gset
CALL interest.backfill_items('items', 100);
CREATE TABLE events (:event_id_column user_id int, item_id int, kind text, at timestamptz);
SELECT interest.attach_events('events', 'user_id', 'item_id', time_column => 'at', type_column => 'kind') AS events_source \gset
