#!/usr/bin/env bash
# Sourced by the demo and the benchmarks: repository root as the working
# directory, set-up (unless SKIP_SETUP is set), the cluster helpers, and the
# MovieLens-100K directory in $ml_dir.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"; cd "$root"
export PG_INTEREST_RUN=/tmp/pg_interest_run
[[ -n "${SKIP_SETUP:-}" ]] || scripts/setup.sh
# shellcheck source=cluster.sh
source scripts/cluster.sh
ml_dir="$(models/fetch_movielens.sh)"

# MovieLens-100K as tab-separated files for \copy: items "id<TAB>title (year) genres"
# in bench_items.tsv, ratings "user<TAB>item<TAB>rating<TAB>timestamp" in bench_events.tsv.
write_ml_bench_files() {
  tail -n +2 "$ml_dir/ml-100k.item" | awk -F'\t' '{ g=$4; printf "%s\t%s (%s) %s\n", $1, $2, $3, g }' > "$PG_INTEREST_RUN/bench_items.tsv"
  tail -n +2 "$ml_dir/ml-100k.inter" | awk -F'\t' '{ printf "%s\t%s\t%s\t%s\n", $1, $2, $3, $4 }' > "$PG_INTEREST_RUN/bench_events.tsv"
  chmod 644 "$PG_INTEREST_RUN"/bench_*.tsv
}
