#!/usr/bin/env bash
# The encoder's shared graph file ($PGDATA/pg_interest_cache) is built by a
# short-lived background worker for the backend that first embeds, so no
# backend keeps the optimizer's heap: two backends of an application role
# embedding at once on a fresh server get one worker build and the same
# vectors; with no free worker slot the backend builds the file itself and
# still gets the same vectors.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"; cd "$root"
export PG_INTEREST_RUN=/tmp/pg_interest_run
source scripts/cluster.sh
cluster_start encgraph 55447
trap 'cluster_stop encgraph' EXIT
dir="$(cluster_dir encgraph)"
cache="$dir/data/pg_interest_cache"
check() { local what="$1"; shift; if "$@"; then echo "check $what: ok"; else echo "check $what: FAIL"; fi; }
built() { grep -c 'pg_interest encoder graph: built' "$dir/server.log" || true; }
built_by_backend() { grep -c 'this backend optimized the graph' "$dir/server.log" || true; }

psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
CREATE EXTENSION pg_interest;
CREATE ROLE app LOGIN;
SQL
embed_as() { psql -X -At -U "$1" -c "SELECT interest.embed('a red bicycle for the city')::text"; }
embed_as app > "$PG_INTEREST_RUN/encgraph_1.out" &
embed_as app > "$PG_INTEREST_RUN/encgraph_2.out" &
wait
check "two backends embedding at once got one worker build" [ "$(built)" = 1 ]
check "neither backend optimized the graph itself (both waited for the worker)" [ "$(built_by_backend)" = 0 ]
check "the worker left one graph file and no temporary or request file" \
  [ "$(find "$cache" -name '*.ort' ! -name '*.tmp*' | wc -l)" = 1 -a "$(find "$cache" -name '*.tmp*' -o -name '*.request' | wc -l)" = 0 ]
check "both backends got the same 384-d vector" \
  cmp -s "$PG_INTEREST_RUN/encgraph_1.out" "$PG_INTEREST_RUN/encgraph_2.out"
check "the vector has 384 dimensions" \
  [ "$(tr -d '[]' < "$PG_INTEREST_RUN/encgraph_1.out" | tr ',' '\n' | wc -l)" = 384 ]
check "a later backend maps the file without a new build" \
  bash -c "[ \"\$(psql -X -At -U app -c \"SELECT interest.embed('a red bicycle for the city')::text\")\" = \"\$(cat $PG_INTEREST_RUN/encgraph_1.out)\" ]"
check "still one build" [ "$(built)" = 1 ]

# No worker slot: the backend optimizes and writes the file itself.
echo "max_worker_processes = 0" | as_pg_user tee -a "$dir/data/postgresql.conf" >/dev/null
as_pg_user "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -m fast -w restart >/dev/null
rm -f "$cache"/*.ort
embed_as app > "$PG_INTEREST_RUN/encgraph_3.out"
check "without a worker slot the backend builds the file itself" \
  [ "$(built)" = 1 -a "$(built_by_backend)" = 1 -a "$(find "$cache" -name '*.ort' ! -name '*.tmp*' | wc -l)" = 1 ]
check "and gets the same vector" cmp -s "$PG_INTEREST_RUN/encgraph_1.out" "$PG_INTEREST_RUN/encgraph_3.out"
