#!/usr/bin/env bash
# recommend() on a large catalog: ITEMS items with their own 384-d
# embeddings (clustered, bring-your-own), EVENTS events from USERS users,
# each user browsing two clusters. Prints p50/p99 over CALLS calls (times
# inside the server) and the backend's proportional memory (PSS, from
# /proc/<pid>/smaps_rollup) before and after, for:
#   - recommend() ranking every item (interest.recommend_candidates = off),
#   - recommend() from candidates after interest.index_items.
#   SKIP_SETUP=1 benches/recommend_scale.sh                             # 200,000 items, 1,000,000 events
#   ITEMS=1000000 EVENTS=10000000 USERS=100000 SKIP_SETUP=1 benches/recommend_scale.sh
# KEEP=1 leaves the server running afterwards.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"; cd "$root"
export PG_INTEREST_RUN=/tmp/pg_interest_run
ITEMS="${ITEMS:-200000}" EVENTS="${EVENTS:-1000000}" USERS="${USERS:-20000}" CALLS="${CALLS:-200}"
[[ -n "${SKIP_SETUP:-}" ]] || scripts/setup.sh
source scripts/cluster.sh
cluster_start recscale 55462 "shared_buffers = 1GB" "maintenance_work_mem = 1GB" "max_wal_size = 8GB" "checkpoint_timeout = 30min"
[[ -n "${KEEP:-}" ]] || trap 'cluster_stop recscale' EXIT
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

# run LABEL SETTINGS: p50/p99 of CALLS calls in one backend, and its PSS growth.
run() {
  local label="$1" settings="$2"
  psql -X -q -At -v ON_ERROR_STOP=1 > "$PG_INTEREST_RUN/recscale.out" <<SQL &
$settings
SELECT pg_backend_pid();
SELECT pg_sleep(1);
CREATE TEMP TABLE lat (ms float8);
DO \$\$
DECLARE t0 timestamptz;
BEGIN
  FOR i IN 1..$CALLS LOOP
    t0 := clock_timestamp();
    PERFORM count(*) FROM interest.recommend((1 + (i * 7919) % $USERS)::text, 10, events => 'clicks');
    INSERT INTO lat VALUES (extract(epoch FROM clock_timestamp() - t0) * 1000);
  END LOOP;
END \$\$;
SELECT format('p50 %s ms   p99 %s ms', round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1),
  round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1)) FROM lat;
SELECT pg_sleep(1);
SQL
  local job=$!
  local pid=""
  for _ in $(seq 1 50); do pid=$(head -1 "$PG_INTEREST_RUN/recscale.out" 2>/dev/null || true); [[ -n "$pid" ]] && break; sleep 0.1; done
  # PSS counts shared_buffers pages the backend touched (Pss_Shmem) besides
  # its own memory (Pss_Anon); both are printed.
  read -r pss0 anon0 <<<"$(awk '/^Pss:/ {p=$2} /^Pss_Anon:/ {a=$2} END {print p, a}' "/proc/$pid/smaps_rollup")"
  local pss=$pss0 anon=$anon0
  while kill -0 "$job" 2>/dev/null; do
    read -r p a <<<"$(awk '/^Pss:/ {p=$2} /^Pss_Anon:/ {a=$2} END {print p, a}' "/proc/$pid/smaps_rollup" 2>/dev/null || echo "$pss $anon")"
    [[ -n "$p" && "$p" -gt "$pss" ]] && pss=$p
    [[ -n "$a" && "$a" -gt "$anon" ]] && anon=$a
    sleep 0.2
  done
  wait "$job"
  printf '%-40s %s   PSS +%d MB (own memory +%d MB)\n' "$label" "$(grep p50 "$PG_INTEREST_RUN/recscale.out")" \
    $(( (pss - pss0) / 1024 )) $(( (anon - anon0) / 1024 ))
}
run "recommend(u, 10), every item ranked:" "SET interest.recommend_candidates = off;"
t0=$(date +%s.%N)
psql -X -q -At -c "SELECT interest.index_items('products')" >/dev/null
echo "index_items('products'): $(echo "$(date +%s.%N) - $t0" | bc | xargs printf '%.1f') s"
run "recommend(u, 10), from candidates:" ""
