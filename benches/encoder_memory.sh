#!/usr/bin/env bash
# Memory of backends that embed: one backend, then two alive together, each embeds
# 512 short texts (16 calls of embed(text[]) with 32 texts); printed per
# backend: proportional memory (PSS) growth from /proc/<pid>/smaps_rollup,
# split into its own memory (Pss_Anon) and shared file pages (Pss_File),
# and the throughput. The first backend of a fresh server also optimizes the
# model and writes $PGDATA/pg_interest_cache (its peak); later backends map
# that file. Two backends alive together share its pages. Last, a backend
# alone embeds 64 long texts (cut at 256 tokens).
#   SKIP_SETUP=1 benches/encoder_memory.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"; cd "$root"
export PG_INTEREST_RUN=/tmp/pg_interest_run
[[ -n "${SKIP_SETUP:-}" ]] || scripts/setup.sh
source scripts/cluster.sh
cluster_start encmem 55463
trap 'cluster_stop encmem' EXIT
psql -X -q -c "CREATE EXTENSION pg_interest"
rollup() { awk '/^Pss:/ {p=$2} /^Pss_Anon:/ {a=$2} /^Pss_File:/ {f=$2} END {print p, a, f}' "/proc/$1/smaps_rollup"; }
# A backend embedding $2 batches of 32 texts: short product titles, or
# ("long") reviews cut at 256 tokens (interest.max_tokens' default).
SHORT="'a short product title number ' || (b * 32 + i) || ' with some words about running shoes and tea'"
LONG="repeat('a long review of product ' || (b * 32 + i) || ' that goes on about the fit, the colour and the price; ', 30)"
backend() {
  local name="$1" batches="${2:-16}" text="$SHORT"
  [[ "$name" == long ]] && text="$LONG"
  psql -X -q -At > "$PG_INTEREST_RUN/encmem_$name.out" <<SQL &
SELECT pg_backend_pid();
SELECT pg_sleep(1);
SELECT 'ms ' || round(extract(epoch FROM clock_timestamp()) * 1000);
SELECT count(*) FROM generate_series(1, $batches) b,
  LATERAL unnest(interest.embed(ARRAY(SELECT $text FROM generate_series(1, 32) i))) e;
SELECT 'ms ' || round(extract(epoch FROM clock_timestamp()) * 1000);
SELECT pg_sleep(3);
SQL
}
report() {
  local name="$1" pid="$2" before="$3" job="$4" texts="${5:-512}"
  local peak=($before) last=($before)
  while kill -0 "$job" 2>/dev/null; do
    read -r p a f <<<"$(rollup "$pid" 2>/dev/null || echo "${last[*]}")"
    [[ -n "$p" ]] && last=("$p" "$a" "$f")
    [[ -n "$p" && "$p" -gt "${peak[0]}" ]] && peak=("$p" "$a" "$f")
    sleep 0.1
  done
  read -r p0 a0 f0 <<<"$before"
  local t0 t1; t0=$(grep '^ms ' "$PG_INTEREST_RUN/encmem_$name.out" | head -1 | cut -c4-); t1=$(grep '^ms ' "$PG_INTEREST_RUN/encmem_$name.out" | tail -1 | cut -c4-)
  printf '%-7s backend: PSS +%d MB at peak, +%d MB after (own memory +%d MB, shared file pages +%d MB), %d texts/s\n' "$name" \
    $(( (peak[0] - p0) / 1024 )) $(( (last[0] - p0) / 1024 )) $(( (last[1] - a0) / 1024 )) $(( (last[2] - f0) / 1024 )) $(( texts * 1000 / (t1 - t0) ))
}
# The first backend alone (it writes the cache), then two together.
start() {
  backend "$1" "${2:-16}"; jobs_[$1]=$!
  pid_[$1]=""; for _ in $(seq 1 50); do pid_[$1]=$(head -1 "$PG_INTEREST_RUN/encmem_$1.out" 2>/dev/null || true); [[ -n "${pid_[$1]}" ]] && break; sleep 0.1; done
  before_[$1]=$(rollup "${pid_[$1]}")
}
declare -A jobs_ pid_ before_
start first; report first "${pid_[first]}" "${before_[first]}" "${jobs_[first]}"
start second; start third
report second "${pid_[second]}" "${before_[second]}" "${jobs_[second]}" > "$PG_INTEREST_RUN/encmem_second.report" &
report third "${pid_[third]}" "${before_[third]}" "${jobs_[third]}"
wait
cat "$PG_INTEREST_RUN/encmem_second.report"
# A backend alone that embeds 64 texts of 256 tokens (batches of long texts
# hold the most activations at once).
start long 2; report long "${pid_[long]}" "${before_[long]}" "${jobs_[long]}" 64
