#!/usr/bin/env bash
# interest_ivf on real sentence embeddings rather than synthetic clusters:
# every word of Debian's wamerican list (~104,000) embedded by the default
# model; 50 of the words and 50 two-word phrases as queries. Prints recall@10
# against an exact scan and the median query time, with the index's
# automatic probes (calibrated by its build: the most lists, and how many
# quiet steps in a row end a scan) and with a fixed eighth of the lists (10
# to 40, the automatic limit before calibration).
#   SKIP_SETUP=1 benches/ivf_words.sh        (KEEP=1 leaves the server running)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"; cd "$root"
export PG_INTEREST_RUN=/tmp/pg_interest_run
[[ -n "${SKIP_SETUP:-}" ]] || scripts/setup.sh
words=/usr/share/dict/words
if [[ ! -f "$words" ]]; then
  apt-get install -y -q wamerican >/dev/null
fi
source scripts/cluster.sh
cluster_start ivfwords 55464 "shared_buffers = 1GB" "maintenance_work_mem = 1GB" "max_parallel_workers_per_gather = 0"
[[ -n "${KEEP:-}" ]] || trap 'cluster_stop ivfwords' EXIT
export PGOPTIONS="-c search_path=public,interest"
cp "$words" "$PG_INTEREST_RUN/words.txt"; chmod 644 "$PG_INTEREST_RUN/words.txt"
psql -X -q -v ON_ERROR_STOP=1 <<SQL
CREATE EXTENSION pg_interest;
CREATE TABLE words (id serial PRIMARY KEY, w text);
COPY words (w) FROM '$PG_INTEREST_RUN/words.txt';
CREATE TABLE items (id int PRIMARY KEY, e interest.embedding(384));
SQL
started=$(date +%s)
# Two sessions, one per core, 512 words a statement.
for part in 0 1; do
  psql -X -q -v ON_ERROR_STOP=1 -c "DO \$\$ DECLARE lo int; BEGIN
    FOR lo IN SELECT g FROM generate_series(1, (SELECT max(id) FROM words), 512) g WHERE (g / 512) % 2 = $part LOOP
      INSERT INTO items SELECT u.id, u.e FROM (SELECT array_agg(id ORDER BY id) ids, interest.embed(array_agg(w ORDER BY id)) es
        FROM words WHERE id >= lo AND id < lo + 512) s, unnest(s.ids, s.es) AS u(id, e);
      COMMIT;
    END LOOP; END \$\$" &
done
wait
echo "data: $(psql -X -At -c "SELECT count(*) FROM items") words of $words embedded by all-MiniLM-L6-v2 in $(( $(date +%s) - started )) s"
psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
VACUUM ANALYZE items;
-- 50 words of the list and 50 phrases of two of them, spread over the list.
CREATE TABLE q_words AS SELECT i AS id, (SELECT e FROM items WHERE id = (i * 15485863) % (SELECT max(id) FROM items) + 1) AS e
  FROM generate_series(1, 50) i;
CREATE TABLE q_phrases AS SELECT i AS id, interest.embed((SELECT w FROM words WHERE id = (i * 7919) % (SELECT max(id) FROM words) + 1)
  || ' ' || (SELECT w FROM words WHERE id = (i * 104729) % (SELECT max(id) FROM words) + 1)) AS e
  FROM generate_series(1, 50) i;
CREATE FUNCTION truth(qt regclass) RETURNS TABLE (id int, ids int[]) LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('enable_indexscan', 'off', true);
  RETURN QUERY EXECUTE format('SELECT q.id, (SELECT array_agg(i.id) FROM (SELECT items.id FROM items ORDER BY items.e <=> q.e LIMIT 10) i) FROM %s q', qt);
END $$;
CREATE TABLE truth_words AS SELECT * FROM truth('q_words');
CREATE TABLE truth_phrases AS SELECT * FROM truth('q_phrases');
-- Recall@10 against the exact scan and the server-side median time.
CREATE FUNCTION run(which text, OUT recall numeric, OUT median_ms numeric) LANGUAGE plpgsql AS $$
DECLARE r record; t0 timestamptz; times float8[] := '{}'; hits int := 0; total int := 0; found int[];
BEGIN
  FOR r IN EXECUTE format('SELECT q.id, q.e, t.ids FROM q_%s q JOIN truth_%s t USING (id) ORDER BY q.id', which, which) LOOP
    t0 := clock_timestamp();
    SELECT array_agg(id) INTO found FROM (SELECT id FROM items ORDER BY e <=> r.e LIMIT 10) s;
    times := times || extract(epoch FROM clock_timestamp() - t0) * 1000;
    hits := hits + (SELECT count(*) FROM unnest(found) x WHERE x = ANY(r.ids));
    total := total + 10;
  END LOOP;
  recall := round(hits::numeric / total, 3);
  SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY t)::numeric, 2) INTO median_ms FROM unnest(times) t;
END $$;
SQL
started=$(date +%s.%N)
psql -X -q -v ON_ERROR_STOP=1 -c "CREATE INDEX items_e ON items USING interest_ivf (e)"
build=$(echo "$(date +%s.%N) - $started" | bc)
IFS='|' read -r lists automatic quiet eighth <<<"$(psql -X -At -c "SELECT lists, automatic_probes, automatic_quiet_steps, least(40, greatest(10, ceil(lists / 8.0)))::int FROM interest.ivf_info('items_e')")"
printf 'interest_ivf build: %.1f s, %s lists\n' "$build" "$lists"
for setting in 0 "$eighth"; do
  label="automatic ($automatic lists, $quiet quiet)"; [[ $setting == 0 ]] || label="fixed $setting lists (an eighth)"
  for which in words phrases; do
    IFS='|' read -r recall median <<<"$(PGOPTIONS="$PGOPTIONS -c interest.ivf_probes=$setting" psql -X -At -c "SELECT recall, median_ms FROM run('$which')")"
    printf '%-32s %-8s recall@10 %s, median %s ms\n' "$label" "$which:" "$recall" "$median"
  done
done
