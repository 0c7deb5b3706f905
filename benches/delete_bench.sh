#!/usr/bin/env bash
# Deleting one event from a large events table, with and without the
# triggers: the DELETE trigger replays the user from the table, so it must
# find the user's rows through the application's index on the user column.
# Prints the median of 20 single-row deletes for each table.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"; cd "$root"
export PG_INTEREST_RUN=/tmp/pg_interest_run
source scripts/cluster.sh
ROWS=${ROWS:-1000000}
cluster_start delete_bench 55440 "max_wal_size = 4GB"
trap 'cluster_stop delete_bench' EXIT
psql -X -q -v ON_ERROR_STOP=1 -v rows="$ROWS" <<'SQL'
CREATE EXTENSION pg_interest;
CREATE TABLE items (id int PRIMARY KEY, e real[]);
INSERT INTO items SELECT i, ARRAY[(i % 7)::real, (i % 11)::real, 1] FROM generate_series(1, 5000) i;
SELECT interest.attach_items('items', 'id', embedding_column => 'e') IS NOT NULL AS attached \gset
CALL interest.backfill_items('items', 5000);
CREATE TABLE plain (id bigserial PRIMARY KEY, user_id int, item_id int, at timestamptz);
CREATE INDEX ON plain (user_id);
INSERT INTO plain (user_id, item_id, at)
SELECT 1 + (i::bigint * 7919) % 20000, 1 + (i::bigint * 104729) % 5000, timestamptz '2020-01-01' + i * interval '1 minute'
FROM generate_series(1, :rows) i;
CREATE TABLE events (LIKE plain INCLUDING ALL);
SELECT interest.attach_events('events', 'user_id', 'item_id', time_column => 'at') IS NOT NULL AS attached \gset
INSERT INTO events (user_id, item_id, at) SELECT user_id, item_id, at FROM plain;
ANALYZE plain; ANALYZE events;
SQL
median_ms() { # table
  for n in $(seq 1 20); do
    psql -X -q -At -c "EXPLAIN (ANALYZE, FORMAT JSON) DELETE FROM $1 WHERE id = (SELECT min(id) FROM $1 WHERE user_id = $((n * 97)))" \
      | python3 -c 'import json,sys; p=json.load(sys.stdin)[0]; print(p["Execution Time"])'
  done | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}
echo "rows: $ROWS events, 20,000 users, index on user_id"
echo "delete of one event, median of 20, without triggers: $(median_ms plain) ms"
echo "delete of one event, median of 20, with the triggers: $(median_ms events) ms"
