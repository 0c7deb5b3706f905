#!/usr/bin/env bash
# How recommend()'s default weights were chosen: a grid on MovieLens-100K's
# validation split (each user's second-to-last event held out, the last never
# seen), with the same evaluation code as interest.evaluate(), run offline by
# crates/interest-core/examples/tune_movielens.rs over item vectors embedded
# by the extension. Prints every grid point (best first by HR@10 + NDCG@10),
# then the defaults on both splits with ablations.
#   GRID="content=0.03,0.05,0.1 popularity=0.05,0.1" benches/tune_weights.sh
set -euo pipefail
source "$(dirname "$0")/../scripts/env.sh"
GRID=${GRID:-"content=0,0.05,0.1,0.2,0.3 popularity=0.05,0.1,0.2 freshness=0,0.05"}
cluster_start tune_bench 55441
trap 'cluster_stop tune_bench' EXIT

# Items embedded exactly as scripts/demo.sh attaches them (by genres).
tail -n +2 "$ml_dir/ml-100k.item" | awk -F'\t' '{ g=$4; gsub(/ /, ", ", g); printf "%s\t%s\t%s\t%s\n", $1, $2, $3, g }' > "$PG_INTEREST_RUN/tune_items.tsv"
chmod 644 "$PG_INTEREST_RUN/tune_items.tsv"
rm -f "$PG_INTEREST_RUN/tune_vectors.tsv"
psql -X -q -v ON_ERROR_STOP=1 <<SQL
CREATE EXTENSION pg_interest;
CREATE TABLE ml_movies (id int PRIMARY KEY, title text, year text, genres text);
\copy ml_movies FROM '$PG_INTEREST_RUN/tune_items.tsv'
\copy (SELECT id, interest.embed(genres)::text FROM ml_movies ORDER BY id) TO '$PG_INTEREST_RUN/tune_vectors.tsv'
SQL

cargo build --release -q -p interest-core --example tune_movielens
tune=target/release/examples/tune_movielens
echo "validation grid ($GRID), weight = rating - 2.5, half-life 30 days, k = 10:"
# shellcheck disable=SC2086
"$tune" "$PG_INTEREST_RUN/tune_vectors.tsv" "$ml_dir/ml-100k.inter" holdout=2 $GRID \
  | awk '/^#/ { sub(/ \([0-9.]+ s\)/, ""); label = substr($0, 3) } $1 == "recommend" && $2 ~ /^HR/ { printf "%.4f  HR@10 %s  NDCG@10 %s  %s\n", $3 + $6, $3, $6, label }' \
  | sort -r | head -15
echo
echo "defaults (RankWeights::default), both splits:"
"$tune" "$PG_INTEREST_RUN/tune_vectors.tsv" "$ml_dir/ml-100k.inter" holdout=2,1
