#!/usr/bin/env bash
# recommend() latency, measured inside one backend (clock_timestamp around
# each call, so client round trips are not counted), over 1,000 calls for
# random users, on:
#   1. MovieLens-100K: 1,682 items embedded with all-MiniLM-L6-v2, 100,000 ratings;
#   2. a synthetic catalog: 100,000 items with their own random 384-d
#      embeddings (embedding_column) and 1,000,000 events from 20,000 users.
# Baseline in the same run: the plain-SQL ranking
#   ORDER BY e <=> interest.user_vector(u) LIMIT 10 (exact scan, content only).
set -euo pipefail
source "$(dirname "$0")/../scripts/env.sh"
CALLS=${CALLS:-1000}
cluster_start recommend_bench 55441 "max_wal_size = 4GB" "checkpoint_timeout = 30min"
trap 'cluster_stop recommend_bench' EXIT

write_ml_bench_files

# latency USERS_SQL CALL_SQL: p50/p99/mean in ms over $CALLS calls ($1 = user).
latency() {
  psql -X -q -At -v ON_ERROR_STOP=1 <<SQL
SET search_path = public, interest;
CREATE TEMP TABLE lat (ms float8);
DO \$\$
DECLARE usr text; t0 timestamptz; users text[] := ($1);
BEGIN
  PERFORM count(*) FROM ($(echo "$2" | sed "s/\\\$1/users[1]/g")) w;  -- warm: first call loads the catalog
  FOR i IN 1..$CALLS LOOP
    usr := users[1 + (i * 7919) % cardinality(users)];
    t0 := clock_timestamp();
    PERFORM count(*) FROM ($(echo "$2" | sed "s/\\\$1/usr/g")) r;
    INSERT INTO lat VALUES (extract(epoch FROM clock_timestamp() - t0) * 1000);
  END LOOP;
END \$\$;
SELECT format('p50 %s ms   p99 %s ms   mean %s ms',
  round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 2),
  round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 2), round(avg(ms)::numeric, 2)) FROM lat;
SQL
}

psql -X -q -v ON_ERROR_STOP=1 <<SQL
CREATE EXTENSION pg_interest;
SET search_path = public, interest;
CREATE TABLE movies (id int PRIMARY KEY, body text);
\copy movies FROM '$PG_INTEREST_RUN/bench_items.tsv'
SELECT attach_items('movies', 'id', text => 'body') > 0;
CALL backfill_items('movies', 1000);
CREATE TABLE ratings (user_id int, item_id int, rating real, ts bigint, at timestamptz GENERATED ALWAYS AS (to_timestamp(ts)) STORED);
CREATE INDEX ON ratings (user_id);
SELECT attach_events('ratings', 'user_id', 'item_id', time_column => 'at', weight_column => 'rating') > 0;
\copy ratings (user_id, item_id, rating, ts) FROM '$PG_INTEREST_RUN/bench_events.tsv'
SQL
echo "setup: 2 cores; one backend; $CALLS calls per line; k = 10; times inside the server"
echo
echo "1. MovieLens-100K (1,682 items, 100,000 events, 943 users)"
echo "  recommend(u, 10)                        $(latency "SELECT array_agg(user_id::text) FROM (SELECT DISTINCT user_id FROM ratings) s" "SELECT * FROM interest.recommend(\$1, 10, as_of => '1998-04-23')")"
echo "  recommend(u, 10, diversity => 0.3)      $(latency "SELECT array_agg(user_id::text) FROM (SELECT DISTINCT user_id FROM ratings) s" "SELECT * FROM interest.recommend(\$1, 10, diversity => 0.3, as_of => '1998-04-23')")"
# 5,000 single-row events stay queued (about 5 per user): readers fold them.
psql -X -q -v ON_ERROR_STOP=1 -c "SET interest.fold_interval = 0" \
  -c "DO \$\$ BEGIN FOR g IN 1..5000 LOOP INSERT INTO ratings (user_id, item_id, rating, ts) VALUES (1 + (g * 7919) % 943, 1 + (g * 104729) % 1682, 4, 893286638 + g); END LOOP; END \$\$"
echo "  recommend(u, 10), 5,000 events queued   $(latency "SELECT array_agg(user_id::text) FROM (SELECT DISTINCT user_id FROM ratings) s" "SELECT * FROM interest.recommend(\$1, 10, as_of => '1998-04-23')")"
echo "  baseline: ORDER BY e <=> (SELECT user_vector(u)) $(latency "SELECT array_agg(user_id::text) FROM (SELECT DISTINCT user_id FROM ratings) s" "SELECT item_key FROM interest.item_embeddings ORDER BY embedding <=> (SELECT interest.user_vector(\$1)) LIMIT 10")"

[[ -z "${SKIP_SYNTHETIC:-}" ]] || exit 0
echo
echo "2. synthetic: 100,000 items (random 384-d embeddings), 1,000,000 events, 20,000 users"
psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
SET search_path = public, interest;
SELECT detach_events('ratings'), detach_items('movies');
CREATE TABLE products (id int PRIMARY KEY, e embedding(384));
-- Items fall into 500 topics: a topic direction plus a random share of
-- another, so that interests and co-visitation have structure to find.
CREATE TEMP TABLE topics AS
SELECT t, (SELECT array_agg(random() - 0.5) FROM generate_series(1, 384 + t * 0))::real[]::embedding AS d FROM generate_series(0, 499) t;
INSERT INTO products
SELECT i, l2_normalize(a.d + (0.6 * random())::real * b.d)
FROM generate_series(1, 100000) i JOIN topics a ON a.t = i % 500 JOIN topics b ON b.t = (i * 7 + 3) % 500;
SELECT attach_items('products', 'id', embedding_column => 'e') > 0;
CALL backfill_items('products', 10000);
CREATE TABLE clicks (user_id int, product_id int, at timestamptz);
CREATE INDEX ON clicks (user_id);
SELECT attach_events('clicks', 'user_id', 'product_id', time_column => 'at') > 0;
SQL
# Each user browses two topics; 50 events each, in time order; one statement
# per 100,000 events.
t0=$(date +%s.%N)
for b in $(seq 0 9); do
  psql -X -q -v ON_ERROR_STOP=1 -c "INSERT INTO clicks
    SELECT u, 1 + ((u * 31 + (n % 2) * 17) % 500) + 500 * ((u * 7 + n * 13) % 199), timestamptz '2026-01-01' + (u * 50 + n) * interval '1 second'
    FROM generate_series($((b * 2000 + 1)), $((b * 2000 + 2000))) u, generate_series(1, 50) n"
done
t1=$(date +%s.%N)
echo "  load: 1,000,000 events through the triggers (10 statements) in $(awk "BEGIN { printf \"%.1f\", $t1 - $t0 }") s"
echo "  recommend(u, 10)                        $(latency "SELECT array_agg(u::text) FROM generate_series(1, 20000) u" "SELECT * FROM interest.recommend(\$1, 10, events => 'clicks')")"
echo "  baseline: ORDER BY e <=> (SELECT user_vector(u)) $(latency "SELECT array_agg(u::text) FROM generate_series(1, 20000) u" "SELECT id FROM products ORDER BY e <=> (SELECT interest.user_vector(\$1, 'clicks')) LIMIT 10")"
