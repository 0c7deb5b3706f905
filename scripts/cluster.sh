#!/usr/bin/env bash
# A throw-away PostgreSQL 15 cluster owned by an unprivileged user (Postgres
# refuses to run as root), listening only on a unix socket in its own directory.
#   scripts/cluster.sh start NAME PORT   -> prints nothing; PGHOST/PGPORT to use: DIR, PORT
#   scripts/cluster.sh stop NAME
# Source it to get `cluster_start`, `cluster_stop`, `as_pg_user`.
set -euo pipefail
PG_BIN="${PG_BIN:-$(/usr/bin/pg_config --bindir)}"
PG_TEST_USER="${PG_TEST_USER:-pginterest}"

ensure_test_user() {
  if ! id "$PG_TEST_USER" >/dev/null 2>&1; then
    useradd --system --create-home --shell /bin/bash "$PG_TEST_USER"
  fi
}

as_pg_user() {
  if [[ $(id -un) == "$PG_TEST_USER" ]]; then "$@"; else sudo -u "$PG_TEST_USER" --preserve-env=PGHOST,PGPORT,PGDATABASE,PGUSER "$@"; fi
}

cluster_dir() { echo "${PG_INTEREST_RUN:-/tmp/pg_interest_run}/$1"; }

# cluster_start NAME PORT [extra postgresql.conf lines...]
# PG_INTEREST_LOCALE (default C) is the cluster's locale, e.g. C.UTF-8.
cluster_start() {
  local name="$1" port="$2"; shift 2
  local dir; dir="$(cluster_dir "$name")"
  ensure_test_user
  cluster_stop "$name" || true
  rm -rf "$dir"; mkdir -p "$dir"; chown "$PG_TEST_USER" "$dir" "$(dirname "$dir")" 2>/dev/null || true
  chmod 755 "$(dirname "$dir")"
  as_pg_user "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth=trust --no-sync -E UTF8 --locale="${PG_INTEREST_LOCALE:-C}" >/dev/null
  {
    echo "listen_addresses = ''"
    echo "unix_socket_directories = '$dir'"
    echo "port = $port"
    echo "fsync = on"
    echo "max_connections = 50"
    echo "shared_buffers = 256MB"
    echo "lc_messages = 'C'"
    for line in "$@"; do echo "$line"; done
  } | as_pg_user tee -a "$dir/data/postgresql.conf" >/dev/null
  # RUST_BACKTRACE as a developer's shell may have it: no client may ever see a backtrace.
  as_pg_user env RUST_BACKTRACE=1 "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null
  export PGHOST="$dir" PGPORT="$port" PGUSER=postgres PGDATABASE=postgres
}

cluster_stop() {
  local dir; dir="$(cluster_dir "$1")"
  if [[ -f "$dir/data/postmaster.pid" ]]; then
    as_pg_user "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
}

# reserve_huge_pages SHARED_BUFFERS: makes sure the kernel has free huge
# pages for that much shared_buffers (PostgreSQL's units; a bare number counts
# 8 kB pages) and about 200 MB of the server's other shared memory, raising
# vm.nr_hugepages when it can (as root); fails with a message when it cannot.
reserve_huge_pages() {
  local size="$1" bytes page want free
  case "$size" in
    *kB) bytes=$(( ${size%kB} * 1024 )) ;;
    *MB) bytes=$(( ${size%MB} * 1024 * 1024 )) ;;
    *GB) bytes=$(( ${size%GB} * 1024 * 1024 * 1024 )) ;;
    *TB) bytes=$(( ${size%TB} * 1024 * 1024 * 1024 * 1024 )) ;;
    *[0-9]) bytes=$(( size * 8192 )) ;;
    *) echo "shared_buffers $size: give kB, MB, GB or TB" >&2; return 1 ;;
  esac
  page=$(awk '/^Hugepagesize:/ {print $2 * 1024}' /proc/meminfo)
  want=$(( (bytes + 200 * 1024 * 1024) / page ))
  # Free and not reserved by a running server.
  free_huge_pages() { awk '/^HugePages_Free:/ {f=$2} /^HugePages_Rsvd:/ {r=$2} END {print f - r}' /proc/meminfo; }
  free=$(free_huge_pages)
  if (( free < want )); then
    echo $(( $(cat /proc/sys/vm/nr_hugepages) + want - free )) > /proc/sys/vm/nr_hugepages 2>/dev/null || true
    free=$(free_huge_pages)
    (( free >= want )) || { echo "huge_pages = on needs $want free huge pages; the kernel has $free (vm.nr_hugepages, as root)" >&2; return 1; }
  fi
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  case "${1:-}" in
    start) cluster_start "$2" "$3"; echo "PGHOST=$PGHOST PGPORT=$PGPORT" ;;
    stop) cluster_stop "$2" ;;
    *) echo "usage: $0 start NAME PORT | stop NAME" >&2; exit 2 ;;
  esac
fi
