#!/usr/bin/env bash
# Prints embedding throughput (pg_interest vs a Python onnxruntime pipeline),
# first-call latency, backend RSS, and exact ORDER BY <=> LIMIT 10 time.
set -euo pipefail
source "$(dirname "$0")/../scripts/env.sh"
venv="$root/.venv"
[[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --no-deps --require-hashes -r tests/requirements.txt
model_dir="$(pg_config --sharedir)/pg_interest/models/all-MiniLM-L6-v2"
cluster_start bench 55434 "max_parallel_workers_per_gather = 2"
trap 'cluster_stop bench' EXIT
psql -X -q -c "CREATE EXTENSION IF NOT EXISTS pg_interest"
"$venv/bin/python" benches/embed_bench.py "$model_dir" "$ml_dir"
