#!/usr/bin/env bash
# Event ingestion with and without pg_interest's triggers, side by side:
#   - COPY of the 100,000 MovieLens-100K ratings as events (one statement),
#   - single-row INSERTs from 4 concurrent clients (pgbench, 20 s each), with
#     durable commits and with synchronous_commit off,
# and the per-event cost of the bookkeeping.
set -euo pipefail
source "$(dirname "$0")/../scripts/env.sh"
DURATION=${DURATION:-20}
# FOLD_WORKER=1: the queue folder (background worker) folds, not the triggers.
worker=()
[[ -z "${FOLD_WORKER:-}" ]] || worker=("shared_preload_libraries = 'pg_interest'" "interest.fold_database = 'postgres'")
cluster_start events_bench 55438 "max_wal_size = 4GB" "checkpoint_timeout = 30min" "${worker[@]}"
trap 'cluster_stop events_bench' EXIT

write_ml_bench_files

psql -X -q -v ON_ERROR_STOP=1 <<SQL
CREATE EXTENSION pg_interest;
CREATE TABLE movies (id int PRIMARY KEY, body text);
\copy movies FROM '$PG_INTEREST_RUN/bench_items.tsv'
SELECT interest.attach_items('movies', 'id', text => 'body');
CALL interest.backfill_items('movies', 1000);
CREATE TABLE plain_events (user_id int, item_id int, rating real, ts bigint, at timestamptz GENERATED ALWAYS AS (to_timestamp(ts)) STORED);
CREATE TABLE events (LIKE plain_events INCLUDING GENERATED);
SELECT interest.attach_events('events', 'user_id', 'item_id', time_column => 'at', weight_column => 'rating');
SQL

calc() { awk "BEGIN { print $* }"; }
copy_secs() { # table
  local t0 t1
  t0=$(date +%s.%N)
  psql -X -q -c "\\copy $1 (user_id, item_id, rating, ts) FROM '$PG_INTEREST_RUN/bench_events.tsv'"
  t1=$(date +%s.%N)
  calc "$t1 - $t0"
}
plain=$(copy_secs plain_events)
attached=$(copy_secs events)
users=$(psql -X -At -c "SELECT count(*) FROM interest.user_states")
echo "setup: MovieLens-100K, 1,682 items embedded (all-MiniLM-L6-v2), 100,000 rating events, 943 users; 2 cores; queue folded by $([[ -n "${FOLD_WORKER:-}" ]] && echo "the queue folder (background worker)" || echo "the triggers")"
echo
echo "COPY of 100,000 events in one statement"
printf "  %-28s %8.2f s %10.0f events/s\n" "without triggers" "$plain" "$(calc "100000 / $plain")"
printf "  %-28s %8.2f s %10.0f events/s   (%s user states)\n" "with pg_interest triggers" "$attached" "$(calc "100000 / $attached")" "$users"
printf "  %-28s %8.1f us per event\n" "bookkeeping cost" "$(calc "($attached - $plain) * 1000000 / 100000")"

cat > "$PG_INTEREST_RUN/insert_plain.sql" <<'S'
\set u random(1, 943)
\set i random(1, 1682)
INSERT INTO plain_events (user_id, item_id, rating, ts) VALUES (:u, :i, 4, 893286638);
S
sed 's/plain_events/events/' "$PG_INTEREST_RUN/insert_plain.sql" > "$PG_INTEREST_RUN/insert_events.sql"
chmod 644 "$PG_INTEREST_RUN"/insert_*.sql
tps() { # script [PGOPTIONS]
  PGOPTIONS="${2:-}" pgbench -n -c 4 -j 2 -T "$DURATION" -f "$1" 2>/dev/null | awk '/^tps/ {print $3; exit}'
}
# Durable commits wait for the WAL flush (the disk sets the pace); with
# synchronous_commit off the CPU does, which shows the bookkeeping's own cost.
for mode in "synchronous_commit = on (durable commits)" "synchronous_commit = off (CPU-bound)"; do
  opts=""; [[ "$mode" == *off* ]] && opts="-c synchronous_commit=off"
  psql -X -q -c "SELECT interest.flush('events')" >/dev/null
  plain_tps=$(tps "$PG_INTEREST_RUN/insert_plain.sql" "$opts")
  events_tps=$(tps "$PG_INTEREST_RUN/insert_events.sql" "$opts")
  echo
  echo "single-row INSERTs, 4 concurrent clients (pgbench, ${DURATION} s each), $mode"
  printf "  %-28s %10.0f inserts/s\n" "without triggers" "$plain_tps"
  printf "  %-28s %10.0f inserts/s   (%.2f of the plain rate)\n" "with pg_interest triggers" "$events_tps" "$(calc "$events_tps / $plain_tps")"
  printf "  %-28s %8.1f us per event (2 cores)\n" "bookkeeping cost" "$(calc "(1 / $events_tps - 1 / $plain_tps) * 2 * 1000000")"
done
folded=$(psql -X -At -c "SELECT interest.flush('events')")
echo
echo "queue: fold_batch $(psql -X -q -At -c "LOAD 'pg_interest'" -c 'SHOW interest.fold_batch'), fold_interval $(psql -X -q -At -c "LOAD 'pg_interest'" -c 'SHOW interest.fold_interval'); $folded events still queued at the end, folded by interest.flush()"
