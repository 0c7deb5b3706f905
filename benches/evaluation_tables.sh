#!/usr/bin/env bash
# The evaluation tables of the README, on MovieLens-100K (as scripts/demo.sh
# attaches it: items embedded by their genres, ratings as events weighted
# rating - 2.5) and on the synthetic shop (interest.synthetic_items/events,
# seed 1, 1,000 users, 2,000 items, 4 years; items embedded by their titles):
#   - evaluate() under leave-last-out (test: last event; validation: second
#     to last) and under the time cut (test: 0.8; validation: 0.7), with
#     standard errors, recommend against every baseline;
#   - MovieLens live: each user's last rating deleted from the table, then
#     recommend(u) at the real now() (the ratings end in 1998) and one year
#     after: HR@10 and NDCG@10 of the deleted rating.
#   SKIP_SETUP=1 benches/evaluation_tables.sh
set -euo pipefail
source "$(dirname "$0")/../scripts/env.sh"
cluster_start eval_tables 55452
trap 'cluster_stop eval_tables' EXIT
tail -n +2 "$ml_dir/ml-100k.item" | awk -F'\t' '{ g=$4; gsub(/ /, ", ", g); printf "%s\t%s\t%s\t%s\n", $1, $2, $3, g }' > "$PG_INTEREST_RUN/eval_items.tsv"
tail -n +2 "$ml_dir/ml-100k.inter" > "$PG_INTEREST_RUN/eval_ratings.tsv"
chmod 644 "$PG_INTEREST_RUN"/eval_*.tsv
psql -X -q -v ON_ERROR_STOP=1 <<SQL
\pset footer off
SET client_min_messages = warning;
CREATE EXTENSION pg_interest;
SET search_path = public, interest;
CREATE TABLE ml_movies (id int PRIMARY KEY, title text, year text, genres text);
\copy ml_movies FROM '$PG_INTEREST_RUN/eval_items.tsv'
SELECT attach_items('ml_movies', 'id', text => 'genres') > 0 AS attached;
CALL backfill_items('ml_movies', 512);
CREATE TABLE ml_ratings (id bigserial PRIMARY KEY, user_id int, movie_id int, rating real, ts bigint,
                         at timestamptz GENERATED ALWAYS AS (to_timestamp(ts)) STORED,
                         weight real GENERATED ALWAYS AS (rating - 2.5) STORED);
CREATE INDEX ON ml_ratings (user_id);
SELECT attach_events('ml_ratings', 'user_id', 'movie_id', time_column => 'at', weight_column => 'weight',
                     half_life => interval '30 days') > 0 AS attached;
\copy ml_ratings (user_id, movie_id, rating, ts) FROM '$PG_INTEREST_RUN/eval_ratings.tsv'

CREATE TABLE s_items AS SELECT item_id, title FROM synthetic_items();
ALTER TABLE s_items ADD PRIMARY KEY (item_id);
SELECT attach_items('s_items', 'item_id', text => 'title') > 0 AS attached;
CALL backfill_items('s_items', 1000);
CREATE TABLE s_events (id bigserial PRIMARY KEY, user_id int, item_id int, kind text, at timestamptz);
SELECT attach_events('s_events', 'user_id', 'item_id', time_column => 'at', type_column => 'kind', items => 's_items') > 0 AS attached;
INSERT INTO s_events (user_id, item_id, kind, at) SELECT * FROM synthetic_events() ORDER BY at;

CREATE FUNCTION show(data text, protocol text, holdout int, cut float8) RETURNS TABLE (data text, split text, method text, users bigint, "HR@10" text, "NDCG@10" text)
LANGUAGE sql AS \$\$
  SELECT data, CASE WHEN protocol = 'time' THEN 'time cut ' || cut ELSE 'leave-last-out, holdout ' || holdout END,
         method, users, round(hit_rate::numeric, 4) || ' ± ' || round(hit_rate_se::numeric, 4),
         round(ndcg::numeric, 4) || ' ± ' || round(ndcg_se::numeric, 4)
  FROM evaluate(CASE data WHEN 'MovieLens-100K' THEN 'ml_ratings' ELSE 's_events' END::regclass,
                holdout => holdout, protocol => protocol, time_cut => cut, new_items => CASE WHEN protocol = 'time' THEN 0 ELSE 0.1 END)
\$\$;
\echo '== evaluate(): every protocol and data set, default weights'
SELECT * FROM show('MovieLens-100K', 'leave-last-out', 1, 0.8);
SELECT * FROM show('MovieLens-100K', 'leave-last-out', 2, 0.8);
SELECT * FROM show('MovieLens-100K', 'time', 1, 0.8);
SELECT * FROM show('MovieLens-100K', 'time', 1, 0.7);
SELECT * FROM show('synthetic', 'leave-last-out', 1, 0.8);
SELECT * FROM show('synthetic', 'leave-last-out', 2, 0.8);
SELECT * FROM show('synthetic', 'time', 1, 0.8);
SELECT * FROM show('synthetic', 'time', 1, 0.7);

\echo '== recommend() live on MovieLens-100K: each user''s last rating deleted, recommend at now() and a year later'
CREATE TEMP TABLE held AS
SELECT DISTINCT ON (user_id) id, user_id, movie_id FROM ml_ratings ORDER BY user_id, ts DESC, id DESC;
DELETE FROM ml_ratings WHERE id IN (SELECT id FROM held);
SELECT interest.flush('ml_ratings') >= 0 AS flushed;
\timing on
SELECT 'now()' AS asked, count(*) AS users,
       round(avg((r.rank IS NOT NULL)::int)::numeric, 4) AS "HR@10",
       round(avg(coalesce(1 / log(2, r.rank + 1), 0))::numeric, 4) AS "NDCG@10"
FROM held h LEFT JOIN LATERAL (SELECT rank FROM (SELECT row_number() OVER () AS rank, item FROM recommend(h.user_id, 10, 'ml_ratings')) x
                               WHERE x.item = h.movie_id::text) r ON true
UNION ALL
SELECT 'now() + 1 year', count(*), round(avg((r.rank IS NOT NULL)::int)::numeric, 4),
       round(avg(coalesce(1 / log(2, r.rank + 1), 0))::numeric, 4)
FROM held h LEFT JOIN LATERAL (SELECT rank FROM (SELECT row_number() OVER () AS rank, item FROM recommend(h.user_id, 10, 'ml_ratings', as_of => now() + interval '1 year')) x
                               WHERE x.item = h.movie_id::text) r ON true;
\timing off
SQL
