#!/usr/bin/env bash
# 8 concurrent clients insert (single rows and multi-row statements), dislike
# and delete events for the same users, in random time order, against a real
# server; small folds (every 50 queued events or 200 ms) race with the rest. Then every user's state must equal interest.rebuild() of the table:
# no lost update, no deadlock, no bookkeeping error.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"; cd "$root"
export PG_INTEREST_RUN=/tmp/pg_interest_run
source scripts/cluster.sh
CLIENTS=${CLIENTS:-8}; ROUNDS=${ROUNDS:-60}
cluster_start concurrency 55436 "max_connections = 40" "deadlock_timeout = 100ms"
trap 'cluster_stop concurrency' EXIT
psql -X -q -v event_id_column='id bigserial PRIMARY KEY,' -f tests/interest_fixture.sql
pids=()
for c in $(seq 1 "$CLIENTS"); do
  (
    for r in $(seq 1 "$ROUNDS"); do
      case $((r % 4)) in
        0) # a multi-row statement touching many users (forces multi-user locking)
           echo "INSERT INTO events (user_id, item_id, kind, at) SELECT 1 + (random() * 29)::int, 1 + (random() * 299)::int, (ARRAY['view','click','purchase','dislike'])[1 + (random() * 3)::int], timestamptz '2024-01-01' + random() * interval '200 days' FROM generate_series(1, 25);" ;;
        1) # a delete of a random event: that user is recomputed from the table
           echo "DELETE FROM events WHERE id = (SELECT id FROM events WHERE user_id = 1 + (random() * 29)::int ORDER BY random() LIMIT 1);" ;;
        *) # single-row inserts
           echo "INSERT INTO events (user_id, item_id, kind, at) VALUES (1 + (random() * 29)::int, 1 + (random() * 299)::int, 'view', timestamptz '2024-01-01' + random() * interval '200 days');" ;;
      esac
    done | PGOPTIONS="-c interest.fold_batch=50 -c interest.fold_interval=200" \
      psql -X -q -v ON_ERROR_STOP=1 > "$PG_INTEREST_RUN/client_$c.log" 2>&1
  ) &
  pids+=($!)
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
errors=$(cat "$PG_INTEREST_RUN"/client_*.log | grep -c -E 'ERROR|deadlock' || true)
echo "check clients finished without error or deadlock: $([[ $status == 0 && $errors == 0 ]] && echo ok || echo FAIL) ($CLIENTS clients x $ROUNDS statements, $errors errors)"
psql -X -q -At -f tests/interest_checks.sql
