#!/usr/bin/env bash
# The main job: a fresh PostgreSQL 15 cluster, pg_interest installed, MovieLens
# item texts embedded inside the database, and items ranked against a free-text
# query and against a user's liked items with ORDER BY ... <=> ... LIMIT.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"; cd "$root"
export PG_INTEREST_RUN=/tmp/pg_interest_run
[[ -n "${SKIP_SETUP:-}" ]] || scripts/setup.sh
source scripts/cluster.sh
ml_dir="$(models/fetch_movielens.sh)"
cluster_start demo 55435
trap 'cluster_stop demo' EXIT

# 60 MovieLens-100K items: "Title (year) Genre, Genre".
head -61 "$ml_dir/ml-100k.item" | tail -60 \
  | awk -F'\t' '{ g=$4; gsub(/ /, ", ", g); printf "%s\t%s\t%s (%s) %s\n", $1, $2, $2, $3, g }' > "$PG_INTEREST_RUN/demo_items.tsv"

psql -X -q -v ON_ERROR_STOP=1 <<SQL
\pset footer off
CREATE EXTENSION pg_interest;
SET search_path = public, interest;

\echo '== 1. The application''s own items table'
CREATE TABLE movies (id int PRIMARY KEY, title text, body text);
\copy movies FROM '$PG_INTEREST_RUN/demo_items.tsv'
SELECT count(*) AS movies FROM movies;

\echo '== 2. Embed every item inside Postgres, in one statement (batched ONNX inference)'
\timing on
ALTER TABLE movies ADD COLUMN e embedding(384);
UPDATE movies m SET e = v.e
FROM unnest((SELECT array_agg(id ORDER BY id) FROM movies),
            embed((SELECT array_agg(body ORDER BY id) FROM movies))) AS v(id, e)
WHERE m.id = v.id;
\timing off
SELECT id, body, left(e::text, 40) || '...' AS embedding FROM movies ORDER BY id LIMIT 3;

\echo '== 3. Rank by a free-text query: ORDER BY e <=> embed(query) LIMIT 5'
SELECT id, title, round((1 - (e <=> embed('a funny animated film for children')))::numeric, 3) AS similarity
FROM movies ORDER BY e <=> embed('a funny animated film for children') LIMIT 5;
SELECT id, title, round((1 - (e <=> embed('dark crime thriller')))::numeric, 3) AS similarity
FROM movies ORDER BY e <=> embed('dark crime thriller') LIMIT 5;

\echo '== 4. Rank for a user from the items they liked (mean of liked embeddings)'
CREATE TABLE likes (user_name text, movie_id int);
INSERT INTO likes VALUES ('alice', 1), ('alice', 8), ('alice', 21),   -- Toy Story, Babe, Muppet Treasure Island
                         ('bob', 11), ('bob', 12), ('bob', 23);       -- Seven, The Usual Suspects, Taxi Driver
SELECT l.user_name, string_agg(m.title, ', ' ORDER BY m.id) AS liked
FROM likes l JOIN movies m ON m.id = l.movie_id GROUP BY 1 ORDER BY 1;
WITH taste AS (
  SELECT l.user_name, l2_normalize(avg(m.e)) AS v FROM likes l JOIN movies m ON m.id = l.movie_id GROUP BY 1
)
SELECT t.user_name, r.rank, r.title, r.similarity
FROM taste t
CROSS JOIN LATERAL (
  SELECT row_number() OVER (ORDER BY m.e <=> t.v) AS rank, m.title,
         round((1 - (m.e <=> t.v))::numeric, 3) AS similarity
  FROM movies m
  WHERE m.id NOT IN (SELECT movie_id FROM likes WHERE user_name = t.user_name)
  ORDER BY m.e <=> t.v LIMIT 5
) r
ORDER BY t.user_name, r.rank;

\echo '== 5. A taste shifts with a new like: alice also likes a thriller'
INSERT INTO likes VALUES ('alice', 11);
SELECT m.title, round((1 - (m.e <=> (SELECT l2_normalize(avg(e)) FROM movies WHERE id IN (SELECT movie_id FROM likes WHERE user_name = 'alice'))))::numeric, 3) AS similarity
FROM movies m WHERE m.id NOT IN (SELECT movie_id FROM likes WHERE user_name = 'alice')
ORDER BY m.e <=> (SELECT l2_normalize(avg(e)) FROM movies WHERE id IN (SELECT movie_id FROM likes WHERE user_name = 'alice'))
LIMIT 5;
SQL
echo "demo: done"
