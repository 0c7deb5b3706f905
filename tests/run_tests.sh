#!/usr/bin/env bash
# The one test command: sets up a fresh machine (scripts/setup.sh), then runs
#   0. style gates: cargo fmt --check and clippy -D warnings over the workspace,
#   1. pure-Rust unit tests (crates/interest-core; the encoder test loads the real model),
#   2. pg_regress SQL tests against a real server run by an unprivileged user,
#   3. #[pg_test] tests through cargo pgrx test,
#   4. scripts against real servers: 8 concurrent clients, a kill -9 crash, the queue folder,
#      pg_dump and pg_restore of a database with attached tables, a streaming hot standby,
#      application transactions, the vector index, the encoder graph worker.
# Exits non-zero when any test fails; the last line is "N passed, N failed".
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export PG_INTEREST_RUN=/tmp/pg_interest_run
# shellcheck source=../scripts/cluster.sh
source scripts/cluster.sh
# shellcheck source=../models/pins.env
source models/pins.env

passed=0; failed=0; failures=()
# record NAME STATUS LOG: adds the individual test counts found in LOG (cargo's
# "test result" lines or pg_regress' summary); a stage that failed without a
# count (a build error, say) counts as one failure.
record() {
  local name="$1" status="$2" log="$3" p f
  # (grep finds nothing in pg_regress' log: `|| true` keeps pipefail from ending the run)
  p=$({ grep -oE 'test result: [a-zA-Z]+\. [0-9]+ passed; [0-9]+ failed' "$log" || true; } | awk '{s+=$4} END {print s+0}')
  f=$({ grep -oE 'test result: [a-zA-Z]+\. [0-9]+ passed; [0-9]+ failed' "$log" || true; } | awk '{s+=$6} END {print s+0}')
  if grep -qE 'All [0-9]+ tests passed' "$log"; then p=$((p + $(grep -oE 'All [0-9]+ tests passed' "$log" | awk '{print $2}'))); fi
  if grep -qE '[0-9]+ of [0-9]+ tests failed' "$log"; then
    read -r rf rt < <(grep -oE '[0-9]+ of [0-9]+ tests failed' "$log" | awk '{print $1, $3}')
    f=$((f + rf)); p=$((p + rt - rf))
  fi
  # tests/concurrency.sh and tests/crash.sh print "check <what>: ok|FAIL"
  p=$((p + $(grep -cE '^check .*: ok' "$log" || true)))
  f=$((f + $(grep -cE '^check .*: FAIL' "$log" || true)))
  if [[ "$status" != 0 && "$f" == 0 ]]; then f=1; fi
  passed=$((passed + p)); failed=$((failed + f))
  if [[ "$status" == 0 ]]; then echo "ok: $name ($p passed)"; else failures+=("$name"); echo "FAILED: $name ($f failed)"; fi
}

[[ -n "${SKIP_SETUP:-}" ]] || scripts/setup.sh

# ---- 0. style gates ----------------------------------------------------------
set +e
{ cargo fmt --all --check && cargo clippy --release --workspace --all-targets -- -D warnings; } \
  > /tmp/pg_interest_lint.log 2>&1
status=$?
set -e
if [[ $status == 0 ]]; then verdict=ok; else tail -40 /tmp/pg_interest_lint.log; verdict=FAIL; fi
echo "check cargo fmt --check and clippy -D warnings: $verdict" | tee -a /tmp/pg_interest_lint.log
record "style gates" "$status" /tmp/pg_interest_lint.log

# ---- 1. unit tests ---------------------------------------------------------
share="$(pg_config --sharedir)"; pkglib="$(pg_config --pkglibdir)"
export PG_INTEREST_ORT_LIB="$pkglib/pg_interest/$ORT_LIB"
export PG_INTEREST_MODEL_DIR="$share/pg_interest/models/all-MiniLM-L6-v2"
set +e
cargo test --release -p interest-core 2>&1 | tee /tmp/pg_interest_unit.log | grep -E '^(test |test result)' 
status=${PIPESTATUS[0]}
set -e
record "unit tests (interest-core)" "$status" /tmp/pg_interest_unit.log

# ---- 2. pg_regress ---------------------------------------------------------
ensure_test_user
mkdir -p "$PG_INTEREST_RUN"; chmod 755 "$PG_INTEREST_RUN"
venv="$root/.venv"
if [[ ! -x "$venv/bin/python" ]]; then python3 -m venv "$venv"; fi
"$venv/bin/pip" install --quiet --no-deps --require-hashes -r tests/requirements.txt
mkdir -p "$PG_INTEREST_RUN/fixtures"
"$venv/bin/python" tests/make_embedding_fixtures.py "$PG_INTEREST_MODEL_DIR" "$PG_INTEREST_RUN/fixtures/embeddings.tsv"

# A second model directory: a good copy, a corrupt model, a model with the wrong
# inputs (a tiny graph shipped in the onnxruntime wheel), and one to corrupt later.
m2="$PG_INTEREST_RUN/models2"; rm -rf "$m2" "$PG_INTEREST_RUN/outside"
mkdir -p "$m2/minilm-copy" "$m2/corrupt" "$m2/wrong-inputs" "$m2/mutable" "$PG_INTEREST_RUN/outside"
cp "$PG_INTEREST_MODEL_DIR/model.onnx" "$PG_INTEREST_MODEL_DIR/tokenizer.json" "$m2/minilm-copy/"
cp "$PG_INTEREST_MODEL_DIR/model.onnx" "$PG_INTEREST_MODEL_DIR/tokenizer.json" "$m2/mutable/"
head -c 100000 "$PG_INTEREST_MODEL_DIR/model.onnx" > "$m2/corrupt/model.onnx"
cp "$PG_INTEREST_MODEL_DIR/tokenizer.json" "$m2/corrupt/tokenizer.json"
unzip -p "${PG_INTEREST_CACHE:-$HOME/.cache/pg_interest}/$ORT_WHEEL" onnxruntime/datasets/mul_1.onnx > "$m2/wrong-inputs/model.onnx"
cp "$PG_INTEREST_MODEL_DIR/model.onnx" "$PG_INTEREST_RUN/outside/model.onnx"
chown -R "$PG_TEST_USER" "$m2" "$PG_INTEREST_RUN/fixtures"

# Preloaded in the postmaster: proves _PG_init loads nothing that breaks after fork.
cluster_start regress 55433 "shared_preload_libraries = 'pg_interest'"
regress_out="$PG_INTEREST_RUN/regress_out"; rm -rf "$regress_out"; mkdir -p "$regress_out"; chown "$PG_TEST_USER" "$regress_out"
tests=$(cd tests/pg_regress/sql && ls *.sql | sed 's/\.sql$//' | sort)
set +e
"$(pg_config --pkglibdir)/pgxs/src/test/regress/pg_regress" \
  --inputdir=tests/pg_regress --outputdir="$regress_out" \
  --host="$PGHOST" --port="$PGPORT" --user=postgres \
  --dbname=pg_interest_regress --load-extension=pg_interest $tests 2>&1 | tee /tmp/pg_interest_regress.log
status=${PIPESTATUS[0]}
set -e
if [[ $status -ne 0 && -f "$regress_out/regression.diffs" ]]; then head -200 "$regress_out/regression.diffs"; fi
record "pg_regress SQL tests" "$status" /tmp/pg_interest_regress.log
cluster_stop regress

# ---- 3. #[pg_test] ---------------------------------------------------------
pgdata="$PG_INTEREST_RUN/pgrx-test-data"
rm -rf "$pgdata"; mkdir -p "$pgdata"; chown "$PG_TEST_USER" "$pgdata"
set +e
CARGO_PGRX_TEST_RUNAS="$PG_TEST_USER" CARGO_PGRX_TEST_PGDATA="$pgdata" \
  cargo pgrx test --release pg15 2>&1 | tee /tmp/pg_interest_pgtest.log | grep -E '^(test |test result)'
status=${PIPESTATUS[0]}
set -e
record "#[pg_test] tests" "$status" /tmp/pg_interest_pgtest.log

# ---- 4. a real server under concurrent clients, and a crash ---------------
for script in concurrency crash fold_worker dump_restore standby app_transactions ivf_index encoder_worker; do
  set +e
  "tests/$script.sh" 2>&1 | tee "/tmp/pg_interest_$script.log" | grep -E '^(check|crash:)'
  status=${PIPESTATUS[0]}
  set -e
  if grep -qE '^check .*: FAIL' "/tmp/pg_interest_$script.log"; then status=1; fi
  record "$script script" "$status" "/tmp/pg_interest_$script.log"
done

echo
if ((failed)); then printf 'failed: %s\n' "${failures[@]}"; fi
echo "$passed passed, $failed failed"
((failed == 0))
