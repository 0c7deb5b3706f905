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
