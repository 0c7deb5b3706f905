#!/usr/bin/env bash
# kill -9 of a backend in the middle of a bulk load, then crash recovery: every
# user's state must equal interest.rebuild() of the events that committed
# (bookkeeping commits or rolls back with the events it belongs to).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"; cd "$root"
export PG_INTEREST_RUN=/tmp/pg_interest_run
source scripts/cluster.sh
cluster_start crash 55437
trap 'cluster_stop crash' EXIT
psql -X -q -v event_id_column='' -f tests/interest_fixture.sql
# The loader: 400 statements of 250 events each (applied at once) and 2,000
# single-row statements (queued, folded every interest.fold_batch events),
# each its own transaction.
(
  for s in $(seq 1 400); do
    echo "INSERT INTO events SELECT 1 + (random() * 199)::int, 1 + (random() * 299)::int, (ARRAY['view','click','purchase','dislike'])[1 + (random() * 3)::int], timestamptz '2024-01-01' + random() * interval '365 days' FROM generate_series(1, 250);"
    for r in 1 2 3 4 5; do
      echo "INSERT INTO events VALUES (1 + (random() * 199)::int, 1 + (random() * 299)::int, 'click', timestamptz '2024-01-01' + random() * interval '365 days');"
    done
  done | PGAPPNAME=loader psql -X -q > "$PG_INTEREST_RUN/loader.log" 2>&1 || true
) &
loader=$!
# Wait until some statements have committed, then kill the loader's backend.
for _ in $(seq 1 100); do
  n=$(psql -X -At -c "SELECT count(*) FROM events" 2>/dev/null || echo 0)
  [[ "$n" -ge 5000 ]] && break
  sleep 0.2
done
pid=$(psql -X -At -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'loader'")
echo "crash: killing backend $pid with SIGKILL after $n committed events"
kill -9 "$pid"
wait "$loader" || true
# The postmaster restarts and runs crash recovery.
for _ in $(seq 1 60); do
  if psql -X -At -c "SELECT 1" >/dev/null 2>&1; then break; fi
  sleep 0.5
done
grep -q "terminated by signal 9" "$(cluster_dir crash)/server.log" && recovered=ok || recovered=FAIL
echo "check server went through crash recovery after SIGKILL: $recovered"
echo "crash: $(psql -X -At -c "SELECT count(*) FROM events") events committed before the crash"
psql -X -q -At -f tests/interest_checks.sql
