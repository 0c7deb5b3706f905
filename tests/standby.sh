#!/usr/bin/env bash
# A streaming hot standby answers the read side: recommend(), explain(),
# user_vector() and interests() give on the standby what they give on the
# primary (queued events included, folded on the fly), without writing.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"; cd "$root"
export PG_INTEREST_RUN=/tmp/pg_interest_run
source scripts/cluster.sh
cluster_start primary 55441 "wal_level = replica" "max_wal_senders = 4" "hot_standby = on"
primary_host=$PGHOST
sd="$(cluster_dir standby)"
stop_all() {
  [[ -f "$sd/data/postmaster.pid" ]] && as_pg_user "$PG_BIN/pg_ctl" -D "$sd/data" -m fast -w stop >/dev/null 2>&1 || true
  cluster_stop primary
}
trap stop_all EXIT
echo "local replication all trust" | as_pg_user tee -a "$(cluster_dir primary)/data/pg_hba.conf" >/dev/null
as_pg_user "$PG_BIN/pg_ctl" -D "$(cluster_dir primary)/data" reload >/dev/null
psql -X -q -v event_id_column='' -f tests/interest_fixture.sql 2>/dev/null
# Applied events, then a few single rows left queued on the primary.
PGOPTIONS="-c interest.fold_batch=100000 -c interest.fold_interval=0" psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
INSERT INTO events SELECT 1 + i % 20, 1 + (i * 13) % 300, (ARRAY['view','click','purchase','dislike'])[1 + i % 4],
  timestamptz '2024-01-01' + i * interval '1 hour' FROM generate_series(1, 1000) i;
INSERT INTO events VALUES (1, 42, 'purchase', '2024-03-01');
INSERT INTO events VALUES (2, 43, 'click', '2024-03-01');
-- A second events table with the items table and its vector index: the
-- standby ranks candidates from the replayed index.
CREATE TABLE clicks (user_id int, item_id int, at timestamptz);
SELECT interest.attach_events('clicks', 'user_id', 'item_id', time_column => 'at', items => 'items') > 0 AS attached;
INSERT INTO clicks SELECT 1 + i % 20, 1 + (i * 7919) % 300, timestamptz '2024-01-01' + i * interval '37 minutes' FROM generate_series(1, 1500) i;
SELECT interest.flush('clicks') > 0 AS flushed;
SELECT interest.index_items('items', lists => 6) AS indexed;
SQL
rm -rf "$sd"; mkdir -p "$sd"; chown "$PG_TEST_USER" "$sd"
as_pg_user "$PG_BIN/pg_basebackup" -h "$primary_host" -p 55441 -U postgres -D "$sd/data" -R -X stream
sed -i "s/^port = .*/port = 55442/; s|^unix_socket_directories = .*|unix_socket_directories = '$sd'|" "$sd/data/postgresql.conf"
as_pg_user "$PG_BIN/pg_ctl" -D "$sd/data" -l "$sd/server.log" -w -t 60 start >/dev/null
# A change after the standby started reaches it through WAL replay.
PGOPTIONS="-c interest.fold_batch=100000 -c interest.fold_interval=0" psql -X -q -c "INSERT INTO events VALUES (3, 44, 'purchase', '2024-03-02')"
lsn=$(psql -X -At -c "SELECT pg_current_wal_lsn()")
for _ in $(seq 1 100); do
  caught=$(PGHOST="$sd" PGPORT=55442 psql -X -At -c "SELECT pg_last_wal_replay_lsn() >= '$lsn'::pg_lsn")
  [[ "$caught" == t ]] && break; sleep 0.1
done
read_side() {
  psql -X -q -At -v ON_ERROR_STOP=1 <<'SQL'
SELECT 'rec ' || u || ' ' || string_agg(r.item || ':' || round(r.score::numeric, 9) || ':' || r.reason, ',' ORDER BY r.score DESC, r.item)
FROM generate_series(1, 20) u, interest.recommend(u, 5, events => 'events', as_of => '2024-04-01') r GROUP BY u ORDER BY u;
SELECT 'vec ' || u || ' ' || round(interest.norm(interest.user_vector(u, 'events'))::numeric, 6) FROM generate_series(1, 20) u;
SELECT 'int ' || u || ' ' || count(*) FROM generate_series(1, 3) u, interest.interests(u, 'events') GROUP BY u ORDER BY u;
SELECT 'exp ' || round(sum(contribution)::numeric, 9) FROM interest.explain(1, 42, events => 'events', as_of => '2024-04-01');
SELECT 'crec ' || u || ' ' || string_agg(r.item || ':' || round(r.score::numeric, 9), ',' ORDER BY r.score DESC, r.item)
FROM generate_series(1, 20) u, interest.recommend(u, 5, events => 'clicks', as_of => '2024-04-01') r GROUP BY u ORDER BY u;
SELECT 'csim ' || string_agg(s.item || ':' || round(s.score::numeric, 9), ',' ORDER BY s.score DESC, s.item)
FROM interest.similar_items(7, 5, events => 'clicks', as_of => '2024-04-01') s;
SELECT 'cexp ' || round(sum(contribution)::numeric, 9) FROM interest.explain(1, 42, events => 'clicks', as_of => '2024-04-01');
SELECT 'catalogs held ' || count(*) FROM interest.cached_catalogs();
SQL
}
read_side > "$PG_INTEREST_RUN/standby.primary" 2>&1
PGHOST="$sd" PGPORT=55442 read_side > "$PG_INTEREST_RUN/standby.replica" 2>&1 || true
recovery=$(PGHOST="$sd" PGPORT=55442 psql -X -At -c "SELECT pg_is_in_recovery()")
queued=$(psql -X -At -c "SELECT count(*) FROM interest.event_queue")
if [[ "$recovery" == t && "$queued" -gt 0 ]] && [[ $(grep -c '^crec ' "$PG_INTEREST_RUN/standby.replica") == 20 ]] \
   && grep -q '^catalogs held 0$' "$PG_INTEREST_RUN/standby.replica" && diff -q "$PG_INTEREST_RUN/standby.primary" "$PG_INTEREST_RUN/standby.replica" >/dev/null; then
  echo "check a hot standby answers recommend, explain, user_vector and interests as the primary does: ok ($(grep -c '^rec ' "$PG_INTEREST_RUN/standby.replica") users, $queued events queued on the primary; from candidates of the replayed vector index too, holding no catalog)"
else
  diff "$PG_INTEREST_RUN/standby.primary" "$PG_INTEREST_RUN/standby.replica" | head -10
  echo "check a hot standby answers recommend, explain, user_vector and interests as the primary does: FAIL (recovery $recovery, queued $queued)"
fi
# The write side refuses a standby up front, with 25006, its own name and a hint.
refusals=$(PGHOST="$sd" PGPORT=55442 psql -X -At -v ON_ERROR_STOP=0 2>&1 <<'SQL'
\set VERBOSITY verbose
SELECT interest.flush('events');
SELECT interest.rebuild('events');
SELECT interest.index_items('items');
SELECT interest.set_profile(1, 'space films', 'events');
SQL
) || true
n_ok=$(grep -c '^ERROR:  25006: interest\.[a-z_]*() cannot run on a hot standby$' <<<"$refusals" || true)
n_hint=$(grep -c '^HINT:  Run it on the primary' <<<"$refusals" || true)
if [[ "$n_ok" == 4 && "$n_hint" == 4 ]]; then
  echo "check flush, rebuild, index_items and set_profile on a standby give 25006 naming themselves, with a hint: ok"
else
  echo "$refusals" | head -20
  echo "check flush, rebuild, index_items and set_profile on a standby give 25006 naming themselves, with a hint: FAIL ($n_ok errors, $n_hint hints)"
fi
