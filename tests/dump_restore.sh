#!/usr/bin/env bash
# pg_dump and pg_restore of a database with attached tables: the restored
# database has the same bookkeeping (states, counts, links, queue), gives the
# same recommendations, and its triggers keep working (new events, deletes,
# then every user's state equals interest.rebuild()).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"; cd "$root"
export PG_INTEREST_RUN=/tmp/pg_interest_run
source scripts/cluster.sh
cluster_start dumprestore 55438
trap 'cluster_stop dumprestore' EXIT
work="$PG_INTEREST_RUN/dumprestore"
as_pg_user createdb source_db
PGDATABASE=source_db psql -X -q -v event_id_column='id bigserial PRIMARY KEY,' -f tests/interest_fixture.sql
# A bulk statement (applied at once), single rows left queued, a delete.
PGDATABASE=source_db PGOPTIONS="-c interest.fold_batch=100000 -c interest.fold_interval=0" psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
INSERT INTO events (user_id, item_id, kind, at)
SELECT 1 + (i % 40), 1 + (i * 7919) % 300, (ARRAY['view','click','purchase','dislike'])[1 + i % 4],
       timestamptz '2024-01-01' + i * interval '37 minutes'
FROM generate_series(1, 2000) i;
INSERT INTO events (user_id, item_id, kind, at) VALUES (1, 5, 'click', '2024-03-01'), (2, 6, 'view', '2024-03-02');
INSERT INTO events (user_id, item_id, kind, at) VALUES (3, 7, 'purchase', '2024-03-03');
DELETE FROM events WHERE id = 10;
-- A partitioned events table with a primary key: a restore adds the key by
-- ALTER TABLE before it creates the triggers (of the table and of each
-- partition), which must then find none made already.
CREATE TABLE parted_events (user_id int, item_id int, at timestamptz, PRIMARY KEY (user_id, item_id, at)) PARTITION BY RANGE (at);
CREATE TABLE parted_events_2024 PARTITION OF parted_events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
SELECT interest.attach_events('parted_events', 'user_id', 'item_id', time_column => 'at', items => 'items') > 0;
CREATE TABLE parted_events_2025 PARTITION OF parted_events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
INSERT INTO parted_events VALUES (1, 1, '2024-02-01'), (2, 2, '2025-02-01');
INSERT INTO parted_events_2025 VALUES (3, 3, '2025-03-01');
SELECT interest.flush('parted_events');
SQL
# What a reader sees: bookkeeping row counts, every user's recommendations.
snapshot() {
  PGDATABASE="$1" psql -X -q -At -v ON_ERROR_STOP=1 <<'SQL'
SELECT 'rows ' || t || ' ' || n FROM (
  SELECT 'user_states' t, count(*) n FROM interest.user_states UNION ALL
  SELECT 'user_interests', count(*) FROM interest.user_interests UNION ALL
  SELECT 'user_recent', count(*) FROM interest.user_recent UNION ALL
  SELECT 'item_links', count(*) FROM interest.item_links UNION ALL
  SELECT 'item_stats', count(*) FROM interest.item_stats UNION ALL
  SELECT 'item_embeddings', count(*) FROM interest.item_embeddings UNION ALL
  SELECT 'event_queue', count(*) FROM interest.event_queue) s ORDER BY t;
SELECT 'rec ' || u || ' ' || string_agg(r.item || ':' || round(r.score::numeric, 9), ',' ORDER BY r.score DESC, r.item)
FROM generate_series(1, 40) u, interest.recommend(u, 5, events => 'events', as_of => '2024-04-01') r GROUP BY u ORDER BY u;
SQL
}
snapshot source_db > "$work.before" 2>&1 || { mkdir -p "$(dirname "$work")"; snapshot source_db > "$work.before"; }
as_pg_user pg_dump -Fc -d source_db -f "$work.dump"
# Restored into a database of another collation (ICU's linguistic en-US),
# as a DBA moving servers may.
as_pg_user createdb --template=template0 --locale-provider=icu --icu-locale=en-US restored_db
as_pg_user pg_restore -j 2 -d restored_db --exit-on-error "$work.dump" > "$work.restore.log" 2>&1 && restored=1 || restored=0
echo "check pg_restore -j 2 of a database with attached tables succeeds: $([[ $restored == 1 ]] && echo ok || { cat "$work.restore.log"; echo FAIL; })"
snapshot restored_db > "$work.after"
queued=$(grep '^rows event_queue' "$work.before" | awk '{print $3}')
if diff -q "$work.before" "$work.after" >/dev/null && [[ "$queued" -gt 0 ]]; then
  echo "check restored bookkeeping and recommendations equal the original: ok ($(grep -c '^rec ' "$work.after") users' lists, $queued queued events carried over)"
else
  diff "$work.before" "$work.after" | head -20
  echo "check restored bookkeeping and recommendations equal the original: FAIL"
fi
# The restored triggers work: new events and a delete, then the usual checks.
PGDATABASE=restored_db psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
INSERT INTO events (user_id, item_id, kind, at) SELECT 1 + (i % 40), 1 + i % 300, 'view', timestamptz '2024-03-10' + i * interval '1 hour' FROM generate_series(1, 100) i;
INSERT INTO events (user_id, item_id, kind, at) VALUES (41, 9, 'click', '2024-03-20');
DELETE FROM events WHERE id = 20;
SQL
PGDATABASE=restored_db psql -X -q -At -f tests/interest_checks.sql
# The partitioned table's triggers came back once each, and rows written
# straight into a partition, old or made after the restore, count.
parted=$(PGDATABASE=restored_db psql -X -q -At -v ON_ERROR_STOP=1 <<'SQL'
INSERT INTO parted_events_2024 VALUES (4, 4, '2024-03-01');
CREATE TABLE parted_events_2026 PARTITION OF parted_events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
INSERT INTO parted_events_2026 VALUES (5, 5, '2026-03-01');
SELECT interest.flush('parted_events') >= 0;
SELECT (SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'interest_events_%' AND tgrelid::regclass::text LIKE 'parted_events%')
    || ' triggers, ' || (SELECT count(*) FROM interest.user_states s JOIN interest.event_sources e ON e.id = s.source_id
                         WHERE e.relid = 'parted_events'::regclass) || ' users';
SQL
)
echo "check a restored partitioned events table keeps its triggers on every partition: $([[ "$(tail -1 <<<"$parted")" == "13 triggers, 5 users" ]] && echo ok || echo "FAIL ($parted)")"

# The vector index: index_items' index lives on the extension's own table,
# which a dump does not carry. The restored database knows it had one
# (item_sources.vector_index): recommend() warns once per backend and ranks
# every item meanwhile, and the queue folder builds it again by itself.
PGDATABASE=source_db psql -X -q -At -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE TABLE clicks (user_id int, item_id int, at timestamptz);
SELECT interest.attach_events('clicks', 'user_id', 'item_id', time_column => 'at', items => 'items');
INSERT INTO clicks SELECT 1 + (i % 40), 1 + (i * 7919) % 300, timestamptz '2024-01-01' + i * interval '37 minutes' FROM generate_series(1, 2000) i;
SELECT interest.flush('clicks');
SELECT interest.index_items('items', lists => 6);
SQL
as_pg_user pg_dump -Fc -d source_db -f "$work.ivf.dump"
as_pg_user createdb indexed_db
as_pg_user pg_restore -d indexed_db --exit-on-error "$work.ivf.dump" > "$work.restore.log" 2>&1 || { cat "$work.restore.log"; echo "check pg_restore of an indexed database: FAIL"; }
warned=$(PGDATABASE=indexed_db psql -X -q -At -c "SELECT count(*) FROM interest.recommend(1, 5, events => 'clicks', as_of => '2024-04-01')" \
  -c "SELECT count(*) FROM interest.recommend(2, 5, events => 'clicks', as_of => '2024-04-01')" 2>&1 | grep -c "WARNING:  the vector index of items table public.items is missing" || true)
echo "check a restored database warns once that its vector index is missing: $([[ $warned == 1 ]] && echo ok || echo "FAIL ($warned warnings)")"
lists() {
  PGDATABASE="$1" psql -X -q -At -v ON_ERROR_STOP=1 -c "SELECT string_agg(u || ':' || r.item, ',' ORDER BY u, r.score DESC, r.item)
    FROM generate_series(1, 40) u, interest.recommend(u, 5, events => 'clicks', as_of => '2024-04-01') r"
}
as_pg_user psql -X -q -d indexed_db -c "LOAD 'pg_interest'" -c "ALTER SYSTEM SET shared_preload_libraries = 'pg_interest'" -c "ALTER SYSTEM SET interest.fold_database = 'indexed_db'"
as_pg_user "$PG_BIN/pg_ctl" -D "$(cluster_dir dumprestore)/data" -l "$(cluster_dir dumprestore)/server.log" -w -t 60 restart >/dev/null
rebuilt=""
for _ in $(seq 1 120); do
  rebuilt=$(PGDATABASE=indexed_db psql -X -q -At -c "SELECT entries FROM interest.ivf_info('interest.' || interest._items_index_name(
      (SELECT id FROM interest.item_sources WHERE relid = 'items'::regclass)))" 2>/dev/null || true)
  [[ -n "$rebuilt" ]] && break
  sleep 0.5
done
if [[ "$rebuilt" == 300 && "$(lists indexed_db)" == "$(lists source_db)" ]]; then
  echo "check the queue folder rebuilds the missing vector index, and recommend() from it equals the original: ok"
else
  echo "check the queue folder rebuilds the missing vector index, and recommend() from it equals the original: FAIL (entries '$rebuilt')"
fi
# The trigger functions depend on the extension in the restored database too
# (pg_dump carries DEPENDS ON EXTENSION): DROP EXTENSION still refuses there.
deps() {
  PGDATABASE="$1" psql -X -q -At -c "SELECT count(*) FROM pg_depend d JOIN pg_extension x ON x.oid = d.refobjid AND x.extname = 'pg_interest'
    WHERE d.deptype = 'x' AND d.classid = 'pg_proc'::regclass"
}
refused=$(PGDATABASE=indexed_db psql -X -q -At -c "DROP EXTENSION pg_interest" 2>&1 | grep -c "ERROR:  cannot drop extension pg_interest because other objects depend on it" || true)
if [[ "$(deps indexed_db)" == "$(deps source_db)" && "$(deps source_db)" -ge 8 && "$refused" == 1 ]]; then
  echo "check restored trigger functions still depend on the extension (DROP EXTENSION refuses): ok ($(deps indexed_db) functions)"
else
  echo "check restored trigger functions still depend on the extension (DROP EXTENSION refuses): FAIL ($(deps source_db) before, $(deps indexed_db) after, refused $refused)"
fi
