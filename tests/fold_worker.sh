#!/usr/bin/env bash
# The queue folder (background worker, interest.fold_database): it folds the
# queues of single-row statements by itself, small statements then never
# fold (so a long application transaction holds no bookkeeping lock), and
# the folded state equals interest.rebuild() of the table.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"; cd "$root"
export PG_INTEREST_RUN=/tmp/pg_interest_run
source scripts/cluster.sh
cluster_start fold_worker 55439 "shared_preload_libraries = 'pg_interest'" \
  "interest.fold_database = 'postgres'" "interest.fold_interval = '400ms'"
trap 'cluster_stop fold_worker' EXIT
psql -X -q -v event_id_column='' -f tests/interest_fixture.sql
running=$(psql -X -At -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_interest queue folder'")
echo "check the queue folder runs: $([[ $running == 1 ]] && echo ok || echo FAIL) ($running worker)"
# 4 clients x 100 single-row statements
for c in 1 2 3 4; do
  ( for r in $(seq 1 100); do
      echo "INSERT INTO events VALUES (1 + (random() * 49)::int, 1 + (random() * 299)::int, 'view', timestamptz '2024-01-01' + random() * interval '100 days');"
    done | psql -X -q -v ON_ERROR_STOP=1 ) &
done
wait
sleep 1.5
queued=$(psql -X -At -c "SELECT count(*) FROM interest.event_queue")
echo "check the worker folded every committed event: $([[ $queued == 0 ]] && echo ok || echo FAIL) ($queued still queued 1.5 s after the last insert)"
# A long transaction of single-row statements: the worker keeps the queue
# fresh, so none of them folds (no exclusive bookkeeping lock is taken).
locks=$(psql -X -At -v ON_ERROR_STOP=1 <<'SQL'
BEGIN;
INSERT INTO events VALUES (1, 1, 'view', '2024-05-01');
SELECT pg_sleep(1);
INSERT INTO events VALUES (1, 2, 'view', '2024-05-02');
SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND mode = 'ExclusiveLock';
COMMIT;
SQL
)
locks=$(echo "$locks" | grep -E '^[0-9]+$' | tail -1)
echo "check small statements leave folding to the worker: $([[ $locks == 0 ]] && echo ok || echo FAIL) ($locks exclusive bookkeeping locks held)"
psql -X -q -At -f tests/interest_checks.sql
