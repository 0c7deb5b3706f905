#!/usr/bin/env bash
# interest_ivf against exact scans on clustered unit vectors, printed beside
# the pgvector 0.8.6 figures measured on this machine for issue 15 (pgvector
# is not in Debian 12's archive, so they are quoted, not rerun).
#   SKIP_SETUP=1 benches/ivf_bench.sh                 # 100,000 x 384, 1,000 centres
#   ROWS=1000000 SKIP_SETUP=1 benches/ivf_bench.sh    # a million
# Settings: ROWS DIMS CENTRES NOISE QUERIES, the sweep: PROBES RERANKS, and
# CHURN (rounds of rewriting every vector, then VACUUM); HUGE_PAGES=on puts
# the 2 GB shared_buffers in huge pages (reserving them, as root).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"; cd "$root"
export PG_INTEREST_RUN=/tmp/pg_interest_run
ROWS="${ROWS:-100000}" DIMS="${DIMS:-384}" CENTRES="${CENTRES:-1000}" NOISE="${NOISE:-1.0}" QUERIES="${QUERIES:-50}"
[[ -n "${SKIP_SETUP:-}" ]] || scripts/setup.sh
source scripts/cluster.sh
HUGE_PAGES="${HUGE_PAGES:-off}"
cluster_stop ivfbench   # its huge pages count as free only then
[[ "$HUGE_PAGES" != on ]] || reserve_huge_pages 2GB
cluster_start ivfbench 55461 "shared_buffers = 2GB" "huge_pages = $HUGE_PAGES" "maintenance_work_mem = 1GB" "max_parallel_workers_per_gather = 0"
trap 'cluster_stop ivfbench' EXIT
export PGOPTIONS="-c search_path=public,interest"
psql -X -q -v ON_ERROR_STOP=1 <<SQL
CREATE EXTENSION pg_interest;
CREATE TABLE items (id bigint, e interest.embedding($DIMS));
INSERT INTO items SELECT id, embedding FROM interest.synthetic_vectors($ROWS, $DIMS, $CENTRES, $NOISE, 1);
CREATE TABLE q AS SELECT id, embedding AS e FROM interest.synthetic_vectors($QUERIES, $DIMS, $CENTRES, $NOISE, 2);
VACUUM ANALYZE items;
-- Server-side median time of the k-NN queries of q and their recall against truth.
CREATE FUNCTION run(k int DEFAULT 10, OUT recall numeric, OUT median_ms numeric) LANGUAGE plpgsql AS \$\$
DECLARE r record; t0 timestamptz; times float8[] := '{}'; hits int := 0; total int := 0; found bigint[];
BEGIN
  FOR r IN SELECT q.id, q.e, truth.ids FROM q JOIN truth USING (id) ORDER BY q.id LOOP
    t0 := clock_timestamp();
    SELECT array_agg(id) INTO found FROM (SELECT id FROM items ORDER BY e <=> r.e LIMIT k) s;
    times := times || extract(epoch FROM clock_timestamp() - t0) * 1000;
    hits := hits + (SELECT count(*) FROM unnest(found) x WHERE x = ANY(r.ids));
    total := total + k;
  END LOOP;
  recall := round(hits::numeric / total, 3);
  SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY t)::numeric, 2) INTO median_ms FROM unnest(times) t;
END \$\$;
SQL
echo "data: $ROWS clustered unit vectors of $DIMS dimensions ($CENTRES centres, noise $NOISE), $QUERIES queries, k = 10"
# Ground truth and the exact scan's time (one worker, no index).
psql -X -q -v ON_ERROR_STOP=1 -c "CREATE TABLE truth AS SELECT q.id, (SELECT array_agg(id) FROM (SELECT id FROM items ORDER BY items.e <=> q.e LIMIT 10) s) ids FROM q"
exact=$(psql -X -At -c "SELECT median_ms FROM run()")
echo "exact scan, one worker:             median ${exact} ms   (pgvector exact scan: 101 ms on 100,000 x 384)"
started=$(date +%s.%N)
psql -X -q -v ON_ERROR_STOP=1 -c "CREATE INDEX items_e ON items USING interest_ivf (e)"
build=$(echo "$(date +%s.%N) - $started" | bc)
IFS='|' read -r size lists <<<"$(psql -X -At -c "SELECT pg_size_pretty(pg_relation_size('items_e')), (SELECT lists FROM interest.ivf_info('items_e'))")"
printf 'interest_ivf build:                 %.1f s, index %s, %s lists   (pgvector HNSW m 16, ef_construction 64: 25.4 s, 195 MB)\n' "$build" "$size" "$lists"
# The build's pages are written out first, so the checkpoint it triggers
# does not compete with the timed queries for the two cores.
psql -X -q -c "CHECKPOINT"
psql -X -q -At -c "SELECT 1 FROM run()" >/dev/null   # warm the cache
for probes in ${PROBES:-0 10 20 40 80}; do
  for rerank in ${RERANKS:-40 100}; do
    read -r recall median <<<"$(PGOPTIONS="$PGOPTIONS -c interest.ivf_probes=$probes -c interest.ivf_rerank=$rerank" psql -X -At -F ' ' -c "SELECT * FROM run()")"
    label="$probes"; [[ $probes == 0 ]] && label="auto ($(psql -X -At -c "SELECT automatic_probes || CASE automatic_quiet_steps WHEN 1 THEN '' ELSE ', ' || automatic_quiet_steps || ' quiet' END FROM interest.ivf_info('items_e')"))"
    default=""; [[ $probes == 0 && $rerank == 40 ]] && default="   <- defaults"
    printf 'interest_ivf probes %-9s rerank %3d:  recall@10 %s, median %s ms%s\n' "$label" "$rerank" "$recall" "$median" "$default"
  done
done
echo "pgvector HNSW (same machine, issue 15): recall@10 0.925 at 1.8 ms (ef_search 40), 0.935 at 2.0 ms (100), 0.945 at 3.8 ms (200)"
# The build leaves every index page in shared_buffers; after a restart the
# pool holds only the pages the queries read, which lie closer together in
# memory (fewer address translations per query).
as_pg_user "$PG_BIN/pg_ctl" -D "$(cluster_dir ivfbench)/data" -l "$(cluster_dir ivfbench)/server.log" -w -t 60 restart >/dev/null
psql -X -q -At -c "SELECT 1 FROM run()" >/dev/null
read -r recall median <<<"$(psql -X -At -F ' ' -c "SELECT * FROM run()")"
printf 'defaults after a restart (huge_pages %s):  recall@10 %s, median %s ms\n' "$HUGE_PAGES" "$recall" "$median"
# CHURN=N: every row's vector rewritten, then VACUUM, N times; the index's
# size and recall after each round (VACUUM frees dead vectors' room for
# later inserts).
for round in $(seq 1 "${CHURN:-0}"); do
  started=$(date +%s.%N)
  psql -X -q -v ON_ERROR_STOP=1 -c "UPDATE items SET e = e * 1.001" -c "VACUUM items"
  took=$(echo "$(date +%s.%N) - $started" | bc)
  read -r recall median <<<"$(psql -X -At -F ' ' -c "SELECT * FROM run()")"
  printf 'after rewrite + VACUUM %d (%.1f s):   index %s, recall@10 %s, median %s ms\n' "$round" "$took" \
    "$(psql -X -At -c "SELECT pg_size_pretty(pg_relation_size('items_e'))")" "$recall" "$median"
done
