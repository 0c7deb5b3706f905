#!/usr/bin/env bash
# The interest_ivf index on real servers: a streaming standby that replays
# the build, inserts and VACUUM (generic WAL, full-page images) and answers
# exactly as the primary; concurrent inserters beside deletes and VACUUM;
# kill -9 during inserts and during a build, then crash recovery; build
# phases in pg_stat_progress_create_index.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"; cd "$root"
export PG_INTEREST_RUN=/tmp/pg_interest_run
source scripts/cluster.sh
cluster_start ivfprimary 55451 "wal_level = replica" "max_wal_senders = 4" "hot_standby = on"
primary_host=$PGHOST
sd="$(cluster_dir ivfstandby)"
stop_all() {
  [[ -f "$sd/data/postmaster.pid" ]] && as_pg_user "$PG_BIN/pg_ctl" -D "$sd/data" -m fast -w stop >/dev/null 2>&1 || true
  cluster_stop ivfprimary
}
trap stop_all EXIT
echo "local replication all trust" | as_pg_user tee -a "$(cluster_dir ivfprimary)/data/pg_hba.conf" >/dev/null
as_pg_user "$PG_BIN/pg_ctl" -D "$(cluster_dir ivfprimary)/data" reload >/dev/null
export PGOPTIONS="-c search_path=public,interest"
check() { echo "check $1: $2"; }
wait_ready() {
  for _ in $(seq 1 120); do psql -X -At -c "SELECT 1" >/dev/null 2>&1 && return 0; sleep 0.5; done
  return 1
}

psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
CREATE EXTENSION pg_interest;
CREATE TABLE t (id bigserial PRIMARY KEY, category int, e interest.embedding);
-- Recall against an exact scan for the queries in q.
CREATE FUNCTION recall(k int DEFAULT 10) RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE r record; found bigint[]; truth bigint[]; hits int := 0; total int := 0;
BEGIN
  FOR r IN SELECT * FROM q ORDER BY id LOOP
    PERFORM set_config('enable_seqscan', 'off', true);
    EXECUTE 'SELECT array_agg(id) FROM (SELECT id FROM t ORDER BY e <=> $1 LIMIT ' || k || ') s' INTO found USING r.e;
    PERFORM set_config('enable_seqscan', 'on', true);
    PERFORM set_config('enable_indexscan', 'off', true);
    EXECUTE 'SELECT array_agg(id) FROM (SELECT id FROM t ORDER BY e <=> $1 LIMIT ' || k || ') s' INTO truth USING r.e;
    PERFORM set_config('enable_indexscan', 'on', true);
    hits := hits + (SELECT count(*) FROM unnest(found) x WHERE x = ANY(truth));
    total := total + array_length(truth, 1);
  END LOOP;
  RETURN round(hits::numeric / total, 3);
END $$;
CREATE TABLE q AS SELECT id, embedding AS e FROM interest.synthetic_vectors(30, 64, 200, 1.0, 99);
SQL
# The standby starts before the index exists: everything reaches it by WAL.
rm -rf "$sd"; mkdir -p "$sd"; chown "$PG_TEST_USER" "$sd"
as_pg_user "$PG_BIN/pg_basebackup" -h "$primary_host" -p 55451 -U postgres -D "$sd/data" -R -X stream -C -S ivf_standby
sed -i "s/^port = .*/port = 55452/; s|^unix_socket_directories = .*|unix_socket_directories = '$sd'|" "$sd/data/postgresql.conf"
as_pg_user "$PG_BIN/pg_ctl" -D "$sd/data" -l "$sd/server.log" -w -t 60 start >/dev/null

# 1. Build phases, seen from another session while a build runs.
psql -X -q -v ON_ERROR_STOP=1 -c "INSERT INTO t (category, e) SELECT id % 10, embedding FROM interest.synthetic_vectors(60000, 64, 200, 1.0, 1)"
( psql -X -q -c "CREATE INDEX t_e ON t USING interest_ivf (e)" ) &
builder=$!
phases=""
while kill -0 "$builder" 2>/dev/null; do
  p=$(psql -X -At -c "SELECT phase FROM pg_stat_progress_create_index" 2>/dev/null || true)
  [[ -n "$p" && "$phases" != *"$p"* ]] && phases="$phases|$p"
  sleep 0.02
done
wait "$builder"
if [[ "$phases" == *"loading tuples"* ]]; then r=ok; else r=FAIL; fi
check "pg_stat_progress_create_index names the build's phases" "$r ($phases)"
r=$(psql -X -At -c "SELECT recall()")
if [[ $(echo "$r >= 0.9" | bc) == 1 ]]; then v=ok; else v=FAIL; fi
check "recall@10 after the build" "$v ($r)"

# Rows, index entries, and rows an index scan reaches (all of them, with
# iterative probing).
counts() {
  PGOPTIONS="$PGOPTIONS -c enable_seqscan=off" psql -X -At -F ' ' -c "SELECT (SELECT count(*) FROM t), (SELECT entries FROM interest.ivf_info('t_e')), (SELECT count(*) FROM (SELECT id FROM t ORDER BY e <=> (SELECT e FROM q LIMIT 1) LIMIT 1000000) s)"
}

# 2. Concurrent inserters beside deletes and VACUUM.
for c in 1 2 3; do
  (
    for s in $(seq 1 60); do
      echo "INSERT INTO t (category, e) SELECT id % 10, embedding FROM interest.synthetic_vectors(25, 64, 200, 1.0, $((c * 1000 + s)));"
    done | psql -X -q -v ON_ERROR_STOP=1 > "$PG_INTEREST_RUN/ivf_inserter$c.log" 2>&1
  ) &
done
(
  for s in $(seq 1 10); do
    echo "DELETE FROM t WHERE id IN (SELECT id FROM t WHERE id % 7 = $((s % 7)) ORDER BY random() LIMIT 1500);"
    echo "VACUUM t;"
  done | psql -X -q -v ON_ERROR_STOP=1 > "$PG_INTEREST_RUN/ivf_vacuum.log" 2>&1
) &
errors=0
for job in $(jobs -p); do
  [[ "$job" == "$builder" ]] && continue
  wait "$job" || errors=$((errors + 1))
done
errors=$((errors + $(cat "$PG_INTEREST_RUN"/ivf_inserter*.log "$PG_INTEREST_RUN/ivf_vacuum.log" | grep -c ERROR || true)))
psql -X -q -c "VACUUM (INDEX_CLEANUP ON) t"
read -r rows entries reachable <<<"$(counts)"
r=$(psql -X -At -c "SELECT recall()")
if [[ $errors == 0 && "$rows" == "$entries" && "$rows" == "$reachable" && $(echo "$r >= 0.9" | bc) == 1 ]]; then v=ok; else v=FAIL; fi
check "3 inserters beside DELETE + VACUUM: no errors, every live row indexed once and reachable, recall kept" "$v ($errors errors, $rows rows, $entries entries, $reachable reachable, recall $r)"

# 3. The standby replays all of it and answers as the primary.
answers() {
  PGOPTIONS="$PGOPTIONS -c enable_seqscan=off" psql -X -At -c "SELECT q.id || ' ' || (SELECT string_agg(id::text, ',') FROM (SELECT id FROM t ORDER BY e <=> q.e LIMIT 10) s) FROM q ORDER BY q.id"
}
# Waits (up to 30 s) until the standby has replayed the primary's WAL, then
# writes both servers' answers.
compare_with_standby() {
  local lsn caught
  lsn=$(psql -X -At -c "SELECT pg_current_wal_lsn()")
  for _ in $(seq 1 300); do
    caught=$(PGHOST="$sd" PGPORT=55452 psql -X -At -c "SELECT pg_last_wal_replay_lsn() >= '$lsn'::pg_lsn" 2>/dev/null || echo f)
    [[ "$caught" == t ]] && break; sleep 0.1
  done
  answers > "$PG_INTEREST_RUN/ivf.primary"
  PGHOST="$sd" PGPORT=55452 answers > "$PG_INTEREST_RUN/ivf.standby" 2>&1 || true
}
compare_with_standby
if [[ -s "$PG_INTEREST_RUN/ivf.primary" ]] && diff -q "$PG_INTEREST_RUN/ivf.primary" "$PG_INTEREST_RUN/ivf.standby" >/dev/null; then v=ok; else v=FAIL; fi
check "a streaming standby replays build, inserts and VACUUM and answers as the primary" "$v ($(wc -l < "$PG_INTEREST_RUN/ivf.standby") queries compared)"

# 4. kill -9 during inserts, then crash recovery.
(
  for s in $(seq 1 400); do
    echo "INSERT INTO t (category, e) SELECT id % 10, embedding FROM interest.synthetic_vectors(20, 64, 200, 1.0, $((50000 + s)));"
  done | PGAPPNAME=ivfloader psql -X -q > "$PG_INTEREST_RUN/ivf_loader.log" 2>&1 || true
) &
loader=$!
before=$(psql -X -At -c "SELECT count(*) FROM t")
for _ in $(seq 1 100); do
  n=$(psql -X -At -c "SELECT count(*) FROM t" 2>/dev/null || echo 0)
  [[ "$n" -ge $((before + 1000)) ]] && break
  sleep 0.1
done
pid=$(psql -X -At -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'ivfloader'")
kill -9 "$pid"
wait "$loader" || true
wait_ready
# INDEX_CLEANUP ON: with as few dead rows as a killed statement leaves,
# VACUUM would otherwise skip the indexes (PostgreSQL's bypass), and the
# entries of the aborted rows would stay until a later VACUUM.
psql -X -q -c "VACUUM (INDEX_CLEANUP ON) t"
read -r rows entries reachable <<<"$(counts)"
r=$(psql -X -At -c "SELECT recall()")
if grep -q "terminated by signal 9" "$(cluster_dir ivfprimary)/server.log" && [[ "$rows" == "$entries" && "$rows" == "$reachable" && $(echo "$r >= 0.9" | bc) == 1 ]]; then v=ok; else v=FAIL; fi
check "kill -9 during inserts: after recovery every committed row is indexed and reachable" "$v ($rows rows, $entries entries, $reachable reachable, recall $r)"

# 5. kill -9 during a build: no index is left, and a new build works.
psql -X -q -c "CREATE TABLE big AS SELECT id, embedding AS e FROM interest.synthetic_vectors(150000, 64, 200, 1.0, 7)"
( PGAPPNAME=ivfbuilder psql -X -q -c "CREATE INDEX big_e ON big USING interest_ivf (e)" > /dev/null 2>&1 || true ) &
builder=$!
for _ in $(seq 1 300); do
  p=$(psql -X -At -c "SELECT phase FROM pg_stat_progress_create_index" 2>/dev/null || true)
  [[ "$p" == *"loading tuples"* ]] && break
  sleep 0.02
done
pid=$(psql -X -At -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'ivfbuilder'")
kill -9 "$pid"
wait "$builder" || true
wait_ready
left=$(psql -X -At -c "SELECT count(*) FROM pg_class WHERE relname = 'big_e'")
psql -X -q -c "CREATE INDEX big_e ON big USING interest_ivf (e)"
entries=$(psql -X -At -c "SELECT entries FROM interest.ivf_info('big_e')")
if [[ "$left" == 0 && "$entries" == 150000 && "$p" == *"loading tuples"* ]]; then v=ok; else v=FAIL; fi
check "kill -9 during a build: no index is left behind and the next build is whole" "$v (killed in '$p', $entries entries after rebuild)"

# 6. The standby followed the crashes too.
compare_with_standby
standby_entries=$(PGHOST="$sd" PGPORT=55452 psql -X -At -c "SELECT entries FROM interest.ivf_info('big_e')" 2>&1 || true)
if diff -q "$PG_INTEREST_RUN/ivf.primary" "$PG_INTEREST_RUN/ivf.standby" >/dev/null && [[ "$standby_entries" == 150000 ]]; then v=ok; else v=FAIL; fi
check "after both crashes the standby still answers as the primary" "$v ($standby_entries entries in the rebuilt index on the standby)"
