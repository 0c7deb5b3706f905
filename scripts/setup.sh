#!/usr/bin/env bash
# Everything a fresh Debian 12 machine needs to build, install and test
# pg_interest. Idempotent: every step checks before it acts.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=../models/pins.env
source "$root/models/pins.env"
export PG_CONFIG="${PG_CONFIG:-/usr/bin/pg_config}"
log() { echo "setup: $*"; }

# 1. System packages (PostgreSQL 15 from Debian, headers, clang for bindgen, sudo to run as another user).
need=()
for pkg in postgresql-15 postgresql-server-dev-15 libclang-dev clang pkg-config sudo unzip; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if ((${#need[@]})); then
  log "installing ${need[*]}"
  if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# 2. cargo-pgrx, matching the pgrx crate.
if ! cargo pgrx --version 2>/dev/null | grep -q "$CARGO_PGRX_VERSION"; then
  log "installing cargo-pgrx $CARGO_PGRX_VERSION (takes a few minutes)"
  cargo install cargo-pgrx --version "$CARGO_PGRX_VERSION" --locked --quiet
fi

# 3. Point pgrx at Debian's PostgreSQL 15 (never download Postgres sources).
if ! grep -qs "pg15 = \"$PG_CONFIG\"" "${PGRX_HOME:-$HOME/.pgrx}/config.toml"; then
  log "cargo pgrx init --pg15 $PG_CONFIG"
  cargo pgrx init --pg15 "$PG_CONFIG" >/dev/null
fi

# 4. ONNX Runtime's library and the default model, verified by sha256.
"$root/models/fetch_models.sh"

# 5. Build and install the extension into Debian's PostgreSQL.
log "building and installing pg_interest (release)"
(cd "$root" && cargo pgrx install --release --pg-config "$PG_CONFIG" >/dev/null)
log "done"
