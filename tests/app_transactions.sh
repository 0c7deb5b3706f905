#!/usr/bin/env bash
# The bookkeeping must never make the application's own transactions fail,
# deadlock, lose events or wait without bound:
#   1. deadlock through bookkeeping locks: T2 writes events, then waits for an
#      account row T1 holds; T1 then writes events for the same users (a bulk
#      INSERT, a DELETE, single rows folding under fold_batch = 5). Without the
#      extension T2 merely waits for T1; both must commit.
#   2. a transaction of the extension holding its locks (flush, a bulk INSERT)
#      for 3 s: another session's inserts, deletes and updates, under
#      lock_timeout = 200ms, finish at once and without error.
#   3. REPEATABLE READ: two concurrent bulk (and folding single-row)
#      transactions for the same users; no event may be lost.
#   4. SERIALIZABLE: 4 sessions x 30 transactions with folds due often and a
#      flush every 0.1 s; no application statement or COMMIT may fail.
#   5. REPEATABLE READ item writers while a READ COMMITTED writer changes
#      items too: every item change is recorded, no statement fails.
#   6. index_items rebuilding the items' vector index while an application
#      transaction holds an item write: recommend() keeps answering from the
#      old index (under lock_timeout = 500ms) while the rebuild waits.
#   7. two index_items calls for one source at once: both succeed.
#   8. an application transaction that read recommendations, then changes an
#      item while index_items waits to build: it commits; the rebuild gives
#      way with 40P01 and a hint.
#   9. an open transaction that read recommendations while index_items waits
#      to swap in the new index: other sessions' recommend() calls (under
#      lock_timeout = 500ms) do not queue behind the swap; it ends after.
#  10. the same with the caller's lock_timeout = 1s: index_items stops with
#      55P03 and a hint; the old index stays and answers.
# After each case: flush, then every user's state must equal interest.rebuild().
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"; cd "$root"
export PG_INTEREST_RUN=/tmp/pg_interest_run
source scripts/cluster.sh
cluster_start app_txn 55443 "max_connections = 40" "deadlock_timeout = 100ms"
trap 'cluster_stop app_txn' EXIT
L="$(cluster_dir app_txn)/logs"; mkdir -p "$L"
psql -X -q -v event_id_column='id bigserial PRIMARY KEY,' -f tests/interest_fixture.sql

q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }
rows() { q -c "SELECT count(*) FROM events"; }
bk_mark() { q -c "SELECT coalesce(max(id), 0) FROM interest.bookkeeping_errors"; }
# failed application statements in session logs (a deadlock, a serialization
# failure, a timeout are all ERRORs), and what the bookkeeping caught and
# turned into WARNINGs (the rows were stored; its own deadlock or lock wait)
errors_in() { cat "$@" | grep -c -E '(ERROR|FATAL):' || true; }
warnings_in() { cat "$@" | grep -c -E 'WARNING: +pg_interest' || true; }
matching_in() { local pat="$1"; shift; cat "$@" | grep -c -E "$pat" || true; }
verdict() { if "$@"; then echo ok; else echo FAIL; fi; }
# A background session: name, PGOPTIONS, psql flags...; script on stdin. A
# statement_timeout bounds any wait (a wait of 15 s is a failure anyway).
session() {
  local name="$1" opts="$2"; shift 2
  if PGOPTIONS="-c statement_timeout=15s $opts" timeout 60 psql -X -q -At "$@" > "$L/$name.log" 2>&1; then
    echo 0 > "$L/$name.rc"
  else
    echo $? > "$L/$name.rc"
  fi
}
rc() { cat "$L/$1.rc"; }

# n events for users 1..30 (each user hit), existing items, random types and times
bulk() { echo "INSERT INTO events (user_id, item_id, kind, at) SELECT 1 + g % 30, 1 + (random() * 299)::int, (ARRAY['view','click','purchase','dislike'])[1 + (random() * 3)::int], timestamptz '2024-01-01' + random() * interval '200 days' FROM generate_series(1, $1) g;"; }
one() { echo "INSERT INTO events (user_id, item_id, kind, at) VALUES (1 + (random() * 29)::int, 1 + (random() * 299)::int, 'click', timestamptz '2024-01-01' + random() * interval '200 days');"; }
singles() { for _ in $(seq 1 "$1"); do one; done; }

# Flush, then compare every user's state with a rebuild (event counts per user,
# decayed totals), the sum of counted events with the table's rows.
state_check() {
  q -v label="$1" -v mark="$2" <<'SQL'
SELECT interest.flush('events') AS folded \gset
CREATE TEMP TABLE inc AS SELECT s.user_key, s.events, s.total, s.t_ref FROM interest.user_states s
  JOIN interest.event_sources es ON es.id = s.source_id WHERE es.relid = 'events'::regclass;
SELECT count(*) AS queued FROM interest.event_queue q JOIN interest.event_sources es ON es.id = q.source_id
  WHERE es.relid = 'events'::regclass \gset
SELECT count(*) AS bk, coalesce(string_agg(DISTINCT sqlstate, ','), 'none') AS bk_states
  FROM interest.bookkeeping_errors WHERE id > :mark \gset
SELECT count(*) AS table_rows FROM events \gset
SELECT extract(epoch FROM half_life) AS hl FROM interest.event_sources WHERE relid = 'events'::regclass \gset
SELECT interest.rebuild('events') AS replayed \gset
CREATE TEMP TABLE reb AS SELECT s.user_key, s.events, s.total, s.t_ref FROM interest.user_states s
  JOIN interest.event_sources es ON es.id = s.source_id WHERE es.relid = 'events'::regclass;
CREATE TEMP TABLE cmp AS
SELECT coalesce(i.user_key, r.user_key) AS user_key, i.events AS inc_events, r.events AS reb_events,
       (i.total OPERATOR(interest.<=>) r.total) AS cos_dist,
       abs(interest.norm(i.total) * 2 ^ ((i.t_ref - 1.7e9) / :hl) - interest.norm(r.total) * 2 ^ ((r.t_ref - 1.7e9) / :hl))
         / greatest(interest.norm(r.total) * 2 ^ ((r.t_ref - 1.7e9) / :hl), 1e-12) AS rel_mag
FROM inc i FULL JOIN reb r USING (user_key);
SELECT format('check %s: state equals rebuild after flush: %s (%s events in states, %s rebuilt, %s rows in table, %s of %s users differ, %s left queued, max cosine distance %s, max relative magnitude error %s; %s bookkeeping errors [%s])',
              :'label',
              CASE WHEN count(*) FILTER (WHERE inc_events IS DISTINCT FROM reb_events) = 0
                        AND coalesce(sum(inc_events), 0) = :table_rows AND :queued = 0
                        AND coalesce(max(cos_dist), 0) < 1e-5 AND coalesce(max(rel_mag), 0) < 1e-5
                   THEN 'ok' ELSE 'FAIL' END,
              coalesce(sum(inc_events), 0), coalesce(sum(reb_events), 0), :table_rows,
              count(*) FILTER (WHERE inc_events IS DISTINCT FROM reb_events), count(*), :queued,
              to_char(coalesce(max(cos_dist), 0), '9.99EEEE'), to_char(coalesce(max(rel_mag), 0), '9.99EEEE'),
              :bk, :'bk_states')
FROM cmp;
SQL
}

q <<SQL
CREATE TABLE accounts (id int PRIMARY KEY, n int);
INSERT INTO accounts VALUES (1, 0), (2, 0);
CREATE TABLE app_done (c int);
$(bulk 600)
SQL

# ---- 1. deadlock through bookkeeping locks ---------------------------------
# deadlock_case LABEL OPTS T2_FIRST T1_SECOND EXPECTED_ROW_DELTA
deadlock_case() {
  local label="$1" opts="$2" first="$3" second="$4" expect="$5"
  local before mark t0 t1 errs dl warns n delta
  q -c "UPDATE accounts SET n = 0"
  before=$(rows); mark=$(bk_mark); t0=$(now)
  session "dl_t2" "$opts" <<SQL &
BEGIN;
$first
SELECT pg_sleep(1);
UPDATE accounts SET n = n + 1 WHERE id = 1;
COMMIT;
SQL
  session "dl_t1" "$opts" <<SQL &
SELECT pg_sleep(0.3);
BEGIN;
UPDATE accounts SET n = n + 1 WHERE id = 1;
SELECT pg_sleep(1.5);
$second
COMMIT;
SQL
  wait; t1=$(now)
  errs=$(errors_in "$L/dl_t1.log" "$L/dl_t2.log"); warns=$(warnings_in "$L/dl_t1.log" "$L/dl_t2.log")
  dl=$(matching_in 'deadlock detected' "$L/dl_t1.log" "$L/dl_t2.log")
  n=$(q -c "SELECT n FROM accounts WHERE id = 1"); delta=$(( $(rows) - before ))
  echo "check deadlock via bookkeeping locks ($label): both application transactions commit without deadlock: $(verdict test "$(rc dl_t1)$(rc dl_t2)" = 00 -a "$errs" = 0 -a "$dl" = 0 -a "$n" = 2 -a "$delta" = "$expect" -a "$(lt "$(secs "$t0" "$t1")" 10 && echo y)" = y) (T1 rc $(rc dl_t1), T2 rc $(rc dl_t2), $errs errors and $dl deadlocks in logs, $warns bookkeeping warnings, account n=$n of 2, rows +$delta of +$expect, $(secs "$t0" "$t1") s)"
  grep -h -m2 -E 'ERROR|deadlock' "$L/dl_t1.log" "$L/dl_t2.log" | sed 's/^/  /' || true
  state_check "deadlock via bookkeeping locks ($label)" "$mark"
}
deadlock_case "bulk INSERT vs bulk INSERT" "" "$(bulk 100)" "$(bulk 100)" 200
deadlock_case "bulk INSERT vs DELETE" "" "$(bulk 100)" \
  "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE user_id BETWEEN 1 AND 30 ORDER BY id LIMIT 10);" 90
deadlock_case "single rows, fold_batch 5" "-c interest.fold_batch=5 -c interest.fold_interval=0" "$(singles 20)" "$(singles 20)" 40

# ---- 2. an application transaction does not wait on bookkeeping -----------
# nowait_case LABEL HOLDER_SQL HOLDER_ROWS
nowait_case() {
  local label="$1" holder="$2" hrows="$3"
  local before mark errs waits delta elapsed open expect
  before=$(rows); mark=$(bk_mark)
  session "nw_a" "" -v ON_ERROR_STOP=1 <<SQL &
BEGIN;
$holder
SELECT 'app_txn_holder', pg_sleep(3);
COMMIT;
SQL
  session "nw_b" "" <<SQL &
SET lock_timeout = '200ms';
SELECT pg_sleep(0.4);
SELECT clock_timestamp() AS t0 \gset
$(singles 5)
$(bulk 100)
DELETE FROM events WHERE id IN (SELECT id FROM events WHERE user_id BETWEEN 1 AND 30 ORDER BY id LIMIT 5);
UPDATE events SET kind = 'purchase', at = at + interval '1 hour' WHERE id IN (SELECT id FROM events WHERE user_id BETWEEN 1 AND 30 ORDER BY id LIMIT 5);
SELECT 'elapsed', round(extract(epoch FROM clock_timestamp() - :'t0'::timestamptz)::numeric, 3);
SELECT 'holder_open', count(*) FROM pg_stat_activity WHERE query LIKE '%app_txn_holder%' AND state = 'active' AND pid <> pg_backend_pid();
SQL
  wait
  errs=$(errors_in "$L/nw_a.log" "$L/nw_b.log")
  waits=$(matching_in '55P03|lock timeout' "$L/nw_b.log")
  elapsed=$(awk -F'|' '$1 == "elapsed" { print $2 }' "$L/nw_b.log"); elapsed=${elapsed:-99}
  open=$(awk -F'|' '$1 == "holder_open" { print $2 }' "$L/nw_b.log"); open=${open:-0}
  delta=$(( $(rows) - before )); expect=$((hrows + 5 + 100 - 5))
  echo "check application does not wait on bookkeeping ($label): inserts, delete and update succeed at once while it holds: $(verdict test "$(rc nw_a)$(rc nw_b)" = 00 -a "$errs" = 0 -a "$waits" = 0 -a "$open" = 1 -a "$delta" = "$expect" -a "$(lt "$elapsed" 1.5 && echo y)" = y) ($errs errors in logs, $waits lock timeouts caught by bookkeeping, elapsed ${elapsed} s of < 1.5 s, holder still open at the end: $open, rows +$delta of +$expect)"
  grep -h -m2 -E 'ERROR|WARNING' "$L/nw_a.log" "$L/nw_b.log" | sed 's/^/  /' || true
  state_check "application does not wait on bookkeeping ($label)" "$mark"
}
nowait_case "flush held open 3 s" "SELECT interest.flush('events');" 0
nowait_case "bulk INSERT held open 3 s" "$(bulk 100)" 100

# ---- 3. REPEATABLE READ ----------------------------------------------------
# rr_case LABEL OPTS SQL ROWS_PER_SESSION
rr_case() {
  local label="$1" opts="$2" body="$3" per="$4"
  local before mark t0 t1 errs warns delta
  before=$(rows); mark=$(bk_mark); t0=$(now)
  for s in 1 2; do
    session "rr_$s" "$opts" -v ON_ERROR_STOP=1 <<SQL &
BEGIN ISOLATION LEVEL REPEATABLE READ;
$body
SELECT pg_sleep(0.5);
COMMIT;
SQL
  done
  wait; t1=$(now)
  errs=$(errors_in "$L/rr_1.log" "$L/rr_2.log"); warns=$(warnings_in "$L/rr_1.log" "$L/rr_2.log"); delta=$(( $(rows) - before ))
  echo "check repeatable read ($label): both transactions commit: $(verdict test "$(rc rr_1)$(rc rr_2)" = 00 -a "$errs" = 0 -a "$delta" = $((2 * per)) -a "$(lt "$(secs "$t0" "$t1")" 10 && echo y)" = y) ($errs errors in logs, $warns bookkeeping warnings, rows +$delta of +$((2 * per)), $(secs "$t0" "$t1") s)"
  grep -h -m2 -E 'ERROR|WARNING' "$L/rr_1.log" "$L/rr_2.log" | sed 's/^/  /' || true
  state_check "repeatable read ($label)" "$mark"
}
rr_case "64-event statements" "" "$(bulk 64)" 64
rr_case "20 single rows, fold_batch 5" "-c interest.fold_batch=5 -c interest.fold_interval=0" "$(singles 20)" 20

# ---- 4. SERIALIZABLE with folds due often and a flusher --------------------
before=$(rows); mark=$(bk_mark); expect=0
for c in 1 2 3 4; do
  for t in $(seq 1 30); do
    echo "BEGIN ISOLATION LEVEL SERIALIZABLE;"
    singles $((1 + t % 3)); expect=$((expect + 1 + t % 3))
    if ((t % 10 == 0)); then bulk 70; expect=$((expect + 70)); fi
    echo "COMMIT;"
    echo "SELECT pg_sleep(0.02);"
  done > "$L/ser_$c.sql"
  echo "INSERT INTO app_done VALUES ($c);" >> "$L/ser_$c.sql"
done
t0=$(now)
for c in 1 2 3 4; do
  session "ser_$c" "-c interest.fold_batch=5 -c interest.fold_interval=50" -f "$L/ser_$c.sql" &
done
for _ in $(seq 1 150); do
  echo "SELECT interest.flush('events');"
  echo "SELECT pg_sleep(0.1);"
  echo "SELECT count(*) >= 4 AS done FROM app_done \\gset"
  echo "\\if :done"; echo "\\q"; echo "\\endif"
done | session ser_flusher "" &
wait; t1=$(now)
errs=$(errors_in "$L"/ser_[1-4].log); serial=$(matching_in 'ERROR: +could not serialize' "$L"/ser_[1-4].log)
warns=$(warnings_in "$L"/ser_[1-4].log)
flusher_errs=$(errors_in "$L/ser_flusher.log"); flushes=$(grep -c -E '^[0-9]+$' "$L/ser_flusher.log" || true)
delta=$(( $(rows) - before ))
echo "check serializable (4 x 30 transactions, folds due often, flush every 0.1 s): no application statement or COMMIT fails: $(verdict test "$(rc ser_1)$(rc ser_2)$(rc ser_3)$(rc ser_4)" = 0000 -a "$errs" = 0 -a "$delta" = "$expect" -a "$(lt "$(secs "$t0" "$t1")" 30 && echo y)" = y) ($errs errors in logs, $serial of them serialization failures, $warns bookkeeping warnings, rows +$delta of +$expect, $flushes flushes with $flusher_errs errors, $(secs "$t0" "$t1") s)"
cat "$L"/ser_[1-4].log | grep -m3 -E 'ERROR' | sed 's/^/  /' || true
state_check "serializable (4 x 30 transactions, folds due often, flush every 0.1 s)" "$mark"
# ---- 5. REPEATABLE READ item writers (last: it changes item vectors) ------
# The RR sessions take their snapshot, wait while a READ COMMITTED session
# changes items (folding the catalog's change counter), then change items.
mark=$(bk_mark); t0=$(now)
for s in 1 2; do
  session "rr_items_$s" "" -v ON_ERROR_STOP=1 <<SQL &
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT count(*) FROM items;
SELECT pg_sleep(0.6);
UPDATE items SET e = array_append(e[1:31], 0.5) WHERE id % 10 = $s;
COMMIT;
SQL
done
session rr_items_rc "" -v ON_ERROR_STOP=1 <<'SQL' &
SELECT pg_sleep(0.2);
UPDATE items SET e = array_append(e[1:31], 0.25) WHERE id % 10 = 3;
UPDATE items SET e = array_append(e[1:31], 0.25) WHERE id % 10 = 4;
SQL
wait; t1=$(now)
errs=$(errors_in "$L"/rr_items_*.log); warns=$(warnings_in "$L"/rr_items_*.log)
stale=$(q -c "SELECT count(*) FROM items i JOIN interest.item_embeddings e ON e.item_key = i.id::text WHERE i.id % 10 BETWEEN 1 AND 4 AND (translate(e.embedding::text, '[]', '{}')::real[])[32] NOT IN (0.5, 0.25)")
logged=$(q -c "SELECT count(*) FROM interest.bookkeeping_errors WHERE id > $mark")
echo "check repeatable read item writers beside a read committed one: every change recorded, nothing fails: $(verdict test "$(rc rr_items_1)$(rc rr_items_2)$(rc rr_items_rc)" = 000 -a "$errs" = 0 -a "$warns" = 0 -a "$stale" = 0 -a "$logged" = 0) ($errs errors, $warns bookkeeping warnings, $logged logged failures, $stale stale embeddings, $(secs "$t0" "$t1") s)"
grep -h -m2 -E 'ERROR|WARNING' "$L"/rr_items_*.log | sed 's/^/  /' || true

# An application transaction holding an item write for 2 s, and an
# index_items call that starts 0.3 s later (and waits for it to build).
item_write_held() {
  session "$1" "" -v ON_ERROR_STOP=1 <<SQL &
BEGIN;
UPDATE items SET e = array_append(e[1:31], $2) WHERE id = 7;
SELECT pg_sleep(2);
COMMIT;
SQL
}
rebuild_behind() {
  session "$1" "" "${@:2}" <<'SQL' &
SELECT pg_sleep(0.3);
SELECT 'indexed', interest.index_items('items');
SQL
}
q -c "SELECT interest.index_items('items')" >/dev/null
item_write_held ix_writer 0.75
rebuild_behind ix_build -v ON_ERROR_STOP=1
session ix_reader "" -v ON_ERROR_STOP=1 <<'SQL' &
SET lock_timeout = '500ms';
SELECT pg_sleep(0.8);
SELECT 'rebuild_waiting', count(*) FROM pg_stat_activity WHERE query LIKE '%index_items%' AND wait_event_type = 'Lock' AND pid <> pg_backend_pid();
SELECT 'recommended', count(*) FROM interest.recommend('1', 10, events => 'events');
SQL
wait
field() { awk -F'|' -v k="$2" '$1 == k { print $2 }' "$L/$1.log"; }
echo "check recommend() answers while index_items rebuilds behind an application's item write: $(verdict test "$(rc ix_writer)$(rc ix_build)$(rc ix_reader)" = 000 -a "$(field ix_reader rebuild_waiting)" = 1 -a "$(field ix_reader recommended)" = 10 -a "$(field ix_build indexed)" -gt 0) (rebuild waiting: $(field ix_reader rebuild_waiting), recommended $(field ix_reader recommended) of 10, indexed $(field ix_build indexed))"
grep -h -m2 -E 'ERROR|WARNING' "$L"/ix_*.log | sed 's/^/  /' || true

# 7. index_items calls at once take turns: two for one source, one for another.
q -c "CREATE TABLE items2 (id int PRIMARY KEY, e real[]); INSERT INTO items2 SELECT id, e FROM items; SELECT interest.attach_items('items2', 'id', embedding_column => 'e')" >/dev/null
for s in 1 2 3; do
  table=items; [[ $s == 3 ]] && table=items2
  session "ix_twice_$s" "" -v ON_ERROR_STOP=1 <<SQL &
SELECT 'indexed', interest.index_items('$table');
SQL
done
wait
left=$(q -c "SELECT count(*) FROM pg_class WHERE relname LIKE 'item_embeddings_ivf_%'")
echo "check three index_items calls at once (two sources) all succeed and leave one index per source: $(verdict test "$(rc ix_twice_1)$(rc ix_twice_2)$(rc ix_twice_3)" = 000 -a "$left" = 2) (indexes left: $left)"
q -c "SELECT interest.detach_items('items2'); DROP TABLE items2" >/dev/null
grep -h -m2 -E 'ERROR|WARNING' "$L"/ix_twice_*.log | sed 's/^/  /' || true

# 8. An application transaction that read recommendations, then changes an
#    item while index_items builds: the rebuild gives way (40P01, with a
#    hint), never the application; the old index stays and answers.
item_write_held dl_writer 0.125
rebuild_behind dl_build -v VERBOSITY=verbose
session dl_app "" -v ON_ERROR_STOP=1 <<'SQL' &
SELECT pg_sleep(0.6);
BEGIN;
SELECT 'recommended', count(*) FROM interest.recommend('1', 10, events => 'events');
UPDATE items SET e = array_append(e[1:31], 0.125) WHERE id = 8;
COMMIT;
SQL
wait
gave_way=$(matching_in '40P01.*gave way' "$L/dl_build.log")
after=$(q -c "SELECT count(*) FROM interest.recommend('1', 10, events => 'events')")
left=$(q -c "SELECT count(*) FROM pg_class WHERE relname LIKE 'item_embeddings_ivf_%'")
echo "check an application transaction that read, then writes an item during index_items commits; the rebuild gives way: $(verdict test "$(rc dl_writer)$(rc dl_app)" = 00 -a "$(errors_in "$L/dl_writer.log" "$L/dl_app.log")" = 0 -a "$gave_way" = 1 -a "$after" = 10 -a "$left" = 1) (rebuild gave way: $gave_way, recommended afterwards $after of 10, indexes left $left)"
grep -h -m3 -E 'ERROR|HINT' "$L"/dl_*.log | sed 's/^/  /' || true

# A transaction that read recommendations and stays open for 3 s, and an
# index_items call (after SETTINGS) that starts once that transaction holds
# its lock on the embeddings.
reader_open() {
  session "$1" "" -v ON_ERROR_STOP=1 <<'SQL' &
BEGIN;
SELECT 'recommended', count(*) FROM interest.recommend('2', 10, events => 'events');
SELECT pg_sleep(3);
COMMIT;
SQL
}
rebuild_after_reader() {
  session "$1" "" "${@:3}" <<SQL &
DO \$\$ BEGIN
  FOR i IN 1..200 LOOP
    EXIT WHEN EXISTS (SELECT 1 FROM pg_locks WHERE relation = 'interest.item_embeddings'::regclass AND granted AND pid <> pg_backend_pid());
    PERFORM pg_sleep(0.01);
  END LOOP;
END \$\$;
$2
SELECT 'indexed', interest.index_items('items');
SQL
}

# 9. A transaction that read recommendations stays open for 3 s while
#    index_items swaps: new readers go on between the swap's short attempts.
reader_open sw_holder
rebuild_after_reader sw_build "" -v ON_ERROR_STOP=1
session sw_reader "" -v ON_ERROR_STOP=1 <<'SQL' &
SET lock_timeout = '500ms';
SELECT pg_sleep(1.2);
SELECT 'rebuilding', count(*) FROM pg_stat_activity WHERE query LIKE '%index_items%' AND state = 'active' AND pid <> pg_backend_pid();
SELECT 'recommended', sum(n) FROM (SELECT (SELECT count(*) FROM interest.recommend(u::text, 10, events => 'events')) AS n FROM generate_series(3, 12) u) c;
SQL
wait
echo "check recommend() calls do not queue behind index_items' swap while a reader's transaction is open: $(verdict test "$(rc sw_holder)$(rc sw_build)$(rc sw_reader)" = 000 -a "$(field sw_reader rebuilding)" = 1 -a "$(field sw_reader recommended)" = 100 -a "$(field sw_build indexed)" -gt 0) (rebuilding: $(field sw_reader rebuilding), recommended $(field sw_reader recommended) of 100, indexed $(field sw_build indexed))"
grep -h -m3 -E 'ERROR|HINT' "$L"/sw_*.log | sed 's/^/  /' || true

# 10. The same with a lock_timeout of the caller's (1 s): index_items stops
#     with 55P03 and a hint once it has passed; the old index stays.
reader_open lt_holder
rebuild_after_reader lt_build "SET lock_timeout = '1s';" -v VERBOSITY=verbose
wait
timed_out=$(matching_in '55P03.*could not swap' "$L/lt_build.log")
left=$(q -c "SELECT string_agg(relname, ',') FROM pg_class WHERE relname LIKE 'item_embeddings_ivf_%'")
after=$(q -c "SELECT count(*) FROM interest.recommend('1', 10, events => 'events')")
echo "check index_items under the caller's lock_timeout stops with 55P03 while a reader's transaction stays open; the old index stays: $(verdict test "$(rc lt_holder)" = 0 -a "$timed_out" = 1 -a "$(matching_in 'HINT' "$L/lt_build.log")" = 1 -a "$after" = 10 -a "${left//[0-9]/}" = item_embeddings_ivf_) (55P03: $timed_out, indexes left: $left, recommended afterwards $after of 10)"
grep -h -m3 -E 'ERROR|HINT' "$L"/lt_*.log | sed 's/^/  /' || true
exit 0
