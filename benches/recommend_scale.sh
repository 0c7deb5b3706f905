#!/usr/bin/env bash
# recommend() on a large catalog: ITEMS items with their own 384-d
# embeddings (clustered, bring-your-own), EVENTS events from USERS users,
# each user browsing two clusters. Prints p50/p99 over CALLS calls (times
# inside the server) and the backend's proportional memory (PSS, from
# /proc/<pid>/smaps_rollup) before and after, for:
#   - recommend() ranking every item (interest.recommend_candidates = off),
#   - recommend() from candidates after interest.index_items, explain() and
#     similar_items() from candidates, recommend() under a filter,
#   then how many catalogs a backend holds (interest.cached_catalogs()).
#   SKIP_SETUP=1 benches/recommend_scale.sh                             # 200,000 items, 1,000,000 events
#   ITEMS=1000000 EVENTS=10000000 USERS=100000 SKIP_SETUP=1 benches/recommend_scale.sh
# KEEP=1 leaves the server running afterwards; REUSE=1 runs again on its data;
# SKIP_EXACT=1 leaves out the run that ranks every item; SHARED_BUFFERS
# (default 1GB) sets the server's shared_buffers, on REUSE=1 too;
# PG_INTEREST_LOCALE=C.UTF-8 makes a new cluster with that locale (default C);
# SETTINGS="SET interest.content_candidates = 50;" applies to the runs from
# candidates; HUGE_PAGES=on puts shared_buffers in huge pages (reserving them, as root,
# when too few are), on REUSE=1 too; COLD=1 ends with recommend() on a restarted
# server whose OS page cache was dropped (as root), as after a reboot.
# The events table has the index on (user_id, product_id) the README advises
# (created on REUSE=1 data that lacks it); SEEN_INDEX=0 drops it, so the seen
# items are read from the heap.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"; cd "$root"
export PG_INTEREST_RUN=/tmp/pg_interest_run
ITEMS="${ITEMS:-200000}" EVENTS="${EVENTS:-1000000}" USERS="${USERS:-20000}" CALLS="${CALLS:-200}"
SHARED_BUFFERS="${SHARED_BUFFERS:-1GB}" HUGE_PAGES="${HUGE_PAGES:-off}"
# CLUSTER names the kept data (a second size can be kept beside the first).
CLUSTER="${CLUSTER:-recscale}" PORT="${PORT:-55462}"
[[ -n "${SKIP_SETUP:-}" ]] || scripts/setup.sh
source scripts/cluster.sh
dir="$(cluster_dir "$CLUSTER")"
reuse=""
if [[ -n "${REUSE:-}" && -f "$dir/data/PG_VERSION" ]]; then
  reuse=1
  # Stopped first: its huge pages count as free only then.
  cluster_stop "$CLUSTER"
fi
[[ "$HUGE_PAGES" != on ]] || reserve_huge_pages "$SHARED_BUFFERS"
if [[ -n "$reuse" ]]; then
  # REUSE=1: the data a KEEP=1 run left, on a restarted server (cold shared buffers).
  as_pg_user "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 -o "-c port=$PORT -c shared_buffers=$SHARED_BUFFERS -c huge_pages=$HUGE_PAGES" start >/dev/null
  export PGHOST="$dir" PGPORT="$PORT" PGUSER=postgres PGDATABASE=postgres
  [[ -n "${KEEP:-}" ]] || trap 'cluster_stop "$CLUSTER"' EXIT
  export PGOPTIONS="-c search_path=public,interest"
else
  cluster_start "$CLUSTER" "$PORT" "shared_buffers = $SHARED_BUFFERS" "huge_pages = $HUGE_PAGES" "maintenance_work_mem = 1GB" "max_wal_size = 8GB" "checkpoint_timeout = 30min"
  [[ -n "${KEEP:-}" ]] || trap 'cluster_stop "$CLUSTER"' EXIT
  export PGOPTIONS="-c search_path=public,interest"
  per_user=$((EVENTS / USERS))
  t0=$(date +%s)
  psql -X -q -v ON_ERROR_STOP=1 <<SQL
  CREATE EXTENSION pg_interest;
  CREATE TABLE products (id int PRIMARY KEY, e interest.embedding(384));
  INSERT INTO products SELECT id, embedding FROM interest.synthetic_vectors($ITEMS, 384, 1000, 1.0, 1);
  SELECT attach_items('products', 'id', embedding_column => 'e') > 0;
  CALL backfill_items('products', 20000);
  CREATE TABLE clicks (user_id int, product_id int, at timestamptz);
  CREATE INDEX ON clicks (user_id);
  CREATE INDEX clicks_seen ON clicks (user_id, product_id);
  SELECT attach_events('clicks', 'user_id', 'product_id', time_column => 'at', items => 'products') > 0;
SQL
  # Items were drawn from 1,000 clusters at random; a user's two tastes are
  # two residues of the item id (products in the same residue class share
  # nothing but the id, so co-visitation carries the signal, content the rest).
  batch=$((USERS / 10))
  for b in $(seq 0 9); do
    psql -X -q -v ON_ERROR_STOP=1 -c "INSERT INTO clicks
      SELECT u, 1 + ((u * 7919 + (n % 2) * 104729 + (n / 2) * 1000 * (1 + u % 3)) % $ITEMS), timestamptz '2026-01-01' + (u * $per_user + n) * interval '1 second'
      FROM generate_series($((b * batch + 1)), $((b * batch + batch))) u, generate_series(1, $per_user) n"
  done
  echo "setup: $ITEMS items, $((USERS * per_user)) events, $USERS users loaded in $(( $(date +%s) - t0 )) s"
  # Autovacuum would otherwise run over the fresh tables during the calls.
  psql -X -q -c "VACUUM ANALYZE"
fi

# run LABEL CLIENTS SETTINGS [CALL]: CLIENTS backends at once, CALLS calls
# each (different users: CALL names the user u and an item it, both text);
# p50/p99 over all calls and the mean growth of each backend's PSS and own
# memory.
run() {
  local label="$1" clients="$2" settings="$3" call="${4:-interest.recommend(u, 10, events => 'clicks')}" jobs=() pids=()
  for c in $(seq 1 "$clients"); do
    psql -X -q -At -v ON_ERROR_STOP=1 > "$PG_INTEREST_RUN/$CLUSTER.$c.out" <<SQL &
$settings
SELECT pg_backend_pid();
SELECT pg_sleep(1);
CREATE TEMP TABLE lat (ms float8);
DO \$\$
DECLARE t0 timestamptz; u text; it text;
BEGIN
  FOR i IN 1..$CALLS LOOP
    u := (1 + (i * 7919 + $c * 104729) % $USERS)::text;
    it := (1 + (i::bigint * 15485863 + $c * 104729) % $ITEMS)::text;
    t0 := clock_timestamp();
    PERFORM count(*) FROM $call;
    INSERT INTO lat VALUES (extract(epoch FROM clock_timestamp() - t0) * 1000);
  END LOOP;
END \$\$;
SELECT 'ms ' || ms FROM lat;
SELECT pg_sleep(1);
SQL
    jobs+=($!)
  done
  for c in $(seq 1 "$clients"); do
    local pid=""
    for _ in $(seq 1 50); do pid=$(head -1 "$PG_INTEREST_RUN/$CLUSTER.$c.out" 2>/dev/null || true); [[ -n "$pid" ]] && break; sleep 0.1; done
    pids+=("$pid")
  done
  # PSS counts the shared_buffers pages a backend touched (Pss_Shmem,
  # divided among the processes that touched them: after a restart a lone
  # backend counts each page whole, after a load the checkpointer shares
  # them) besides its own memory (Pss_Anon). Huge pages are not in PSS:
  # the kernel counts them apart (Shared_Hugetlb, whole 2 MB pages).
  declare -A pss0 anon0 shm0 huge0 pss anon shm huge
  rollup() { awk '/^Pss:/ {p=$2} /^Pss_Anon:/ {a=$2} /^Pss_Shmem:/ {s=$2} /^Shared_Hugetlb:/ {h+=$2} /^Private_Hugetlb:/ {h+=$2} END {print p, a, s, h+0}' "/proc/$1/smaps_rollup" 2>/dev/null || echo "0 0 0 0"; }
  for pid in "${pids[@]}"; do
    read -r pss0[$pid] anon0[$pid] shm0[$pid] huge0[$pid] <<<"$(rollup "$pid")"
    pss[$pid]=${pss0[$pid]} anon[$pid]=${anon0[$pid]} shm[$pid]=${shm0[$pid]} huge[$pid]=${huge0[$pid]}
  done
  while kill -0 "${jobs[0]}" 2>/dev/null; do
    for pid in "${pids[@]}"; do
      read -r p a m h <<<"$(rollup "$pid")"
      [[ -n "$p" && "$p" -gt "${pss[$pid]}" ]] && pss[$pid]=$p
      [[ -n "$a" && "$a" -gt "${anon[$pid]}" ]] && anon[$pid]=$a
      [[ -n "$m" && "$m" -gt "${shm[$pid]}" ]] && shm[$pid]=$m
      [[ -n "$h" && "$h" -gt "${huge[$pid]}" ]] && huge[$pid]=$h
    done
    sleep 0.2
  done
  wait "${jobs[@]}"
  local dp=0 da=0 dm=0 dh=0
  for pid in "${pids[@]}"; do dp=$((dp + pss[$pid] - pss0[$pid])); da=$((da + anon[$pid] - anon0[$pid])); dm=$((dm + shm[$pid] - shm0[$pid])); dh=$((dh + huge[$pid] - huge0[$pid])); done
  printf '%-44s %s   PSS +%d MB (own memory +%d MB, shared_buffers pages +%d MB)' "$label" \
    "$(cat "$PG_INTEREST_RUN/$CLUSTER".*.out | awk '/^ms / {print $2}' | sort -g | awk '{v[NR]=$1} END {printf "p50 %.1f ms   p99 %.1f ms", v[int(NR*0.5)+1], v[int(NR*0.99)+1]}')" \
    $((dp / clients / 1024)) $((da / clients / 1024)) $((dm / clients / 1024))
  if [[ "$HUGE_PAGES" == on ]]; then printf ', huge pages mapped +%d MB (not in PSS)' $((dh / clients / 1024)); fi
  echo
  rm -f "$PG_INTEREST_RUN/$CLUSTER".*.out
}
if [[ "${SEEN_INDEX:-1}" == 0 ]]; then
  psql -X -q -c "DROP INDEX IF EXISTS clicks_seen"
else
  psql -X -q -c "CREATE INDEX IF NOT EXISTS clicks_seen ON clicks (user_id, product_id)" -c "VACUUM ANALYZE clicks"
fi
echo "events table indexes: $(psql -X -At -c "SELECT string_agg(pg_get_indexdef(indexrelid), '; ') FROM pg_index WHERE indrelid = 'clicks'::regclass")"
[[ -n "${SKIP_EXACT:-}" ]] || run "recommend(u, 10), every item ranked:" 1 "SET interest.recommend_candidates = off;"
t0=$(date +%s.%N)
psql -X -q -At -c "SELECT interest.index_items('products')" >/dev/null
echo "index_items('products'): $(echo "$(date +%s.%N) - $t0" | bc | xargs printf '%.1f') s"
# The load and the index wrote ~1 GB: the calls are timed after it is on
# disk, not beside the checkpoint that writes it.
psql -X -q -c "CHECKPOINT"
echo "shared_buffers: $(psql -X -At -c 'SHOW shared_buffers') (huge_pages $HUGE_PAGES), database locale: $(psql -X -At -c 'SHOW lc_collate')"
run "recommend(u, 10), from candidates:" 1 "${SETTINGS:-}"
run "the same, 4 backends at once (each):" 4 "${SETTINGS:-}"
run "explain(u, item), from candidates:" 1 "${SETTINGS:-}" "interest.explain(u, it, events => 'clicks')"
run "similar_items(item, 10), from candidates:" 1 "${SETTINGS:-}" "interest.similar_items(it, 10, events => 'clicks')"
# A filter that allows 6% of the items (a longer list than one that joins
# the candidates whole, from 170,000 items): known users, then users without
# events, whose only candidates are the trending items until the call widens
# its limits.
run "recommend(u, 10, filter => 6% of items):" 1 "${SETTINGS:-}" "interest.recommend(u, 10, events => 'clicks', filter => 'id <= $((ITEMS * 6 / 100))')"
run "the same for a new user:" 1 "${SETTINGS:-}" "interest.recommend('new-' || u, 10, events => 'clicks', filter => 'id <= $((ITEMS * 6 / 100))')"
if [[ -n "${COLD:-}" ]]; then
  # COLD=1: as after a reboot, a restarted server on an emptied OS page
  # cache (as root): every page a call needs is read from disk.
  as_pg_user "$PG_BIN/pg_ctl" -D "$dir/data" -w -t 60 stop >/dev/null
  sync; echo 3 > /proc/sys/vm/drop_caches
  as_pg_user "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 -o "-c port=$PORT -c shared_buffers=$SHARED_BUFFERS -c huge_pages=$HUGE_PAGES" start >/dev/null
  run "recommend(u, 10), cold (OS cache dropped):" 1 "${SETTINGS:-}"
fi
held=$(psql -X -At -v ON_ERROR_STOP=1 -c "SELECT count(*) FROM interest.recommend('1', 10, events => 'clicks')" \
  -c "SELECT count(*) FROM interest.explain('1', '1', events => 'clicks')" \
  -c "SELECT count(*) FROM interest.similar_items('1', 10, events => 'clicks')" \
  -c "SELECT count(*) FROM interest.cached_catalogs()" 2>/dev/null | tail -1) || held="n/a (an older install)"
echo "catalogs a backend holds after recommend, explain and similar_items: $held"
