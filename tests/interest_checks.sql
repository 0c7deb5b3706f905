-- Shared by tests/concurrency.sh and tests/crash.sh: compares every user's
-- incrementally maintained state with interest.rebuild() of the committed
-- events. Prints one line per check: "check <name>: ok|FAIL ...".
\set ON_ERROR_STOP 1
-- the half-lives the stored values decay with, to compare them at a common time
SELECT interest._covisit_half_life_secs() AS covisit_half_life,
       extract(epoch FROM popularity_half_life) AS popularity_half_life FROM interest.event_sources WHERE relid = 'events'::regclass \gset
SELECT extract(epoch FROM half_life) AS interest_half_life FROM interest.event_sources WHERE relid = 'events'::regclass \gset
-- Small statements leave events queued; readers fold them on the fly. What
-- they read now must be what interest.flush() then stores.
CREATE TEMP TABLE read_queued AS
SELECT u::text AS user_key, interest.user_vector(u, 'events') AS v FROM (SELECT DISTINCT user_id AS u FROM events) s;
SELECT count(*) AS queued_before_flush FROM interest.event_queue q JOIN interest.event_sources es ON es.id = q.source_id
WHERE es.relid = 'events'::regclass \gset
SELECT interest.flush('events') AS folded \gset
SELECT format('check reads fold queued events as flush stores them: %s (%s events were queued, %s folded, max cosine distance %s)',
              CASE WHEN :queued_before_flush = :folded AND coalesce(max(r.v OPERATOR(interest.<=>) interest.user_vector(r.user_key, 'events')), 0) < 1e-6
                   THEN 'ok' ELSE 'FAIL' END,
              :queued_before_flush, :folded, to_char(coalesce(max(r.v OPERATOR(interest.<=>) interest.user_vector(r.user_key, 'events')), 0), '9.99EEEE'))
FROM read_queued r;
-- decayed event count per item at a common time (t = 1.7e9 s)
CREATE TEMP TABLE counts_incremental AS
SELECT st.item_key, st.events * 2 ^ ((st.t_ref - 1.7e9) / :'covisit_half_life'::float8) AS n,
       st.recent_events * 2 ^ ((st.t_ref - 1.7e9) / :'popularity_half_life'::float8) AS rn FROM interest.item_stats st
JOIN interest.event_sources es ON es.id = st.source_id WHERE es.relid = 'events'::regclass;
CREATE TEMP TABLE incremental AS
SELECT s.user_key, s.t_ref, s.total, s.events FROM interest.user_states s
JOIN interest.event_sources es ON es.id = s.source_id WHERE es.relid = 'events'::regclass;
SELECT interest.rebuild('events') AS events_replayed \gset
CREATE TEMP TABLE rebuilt AS
SELECT s.user_key, s.t_ref, s.total, s.events FROM interest.user_states s
JOIN interest.event_sources es ON es.id = s.source_id WHERE es.relid = 'events'::regclass;
-- decayed magnitude at a common time (t = 1.7e9 s)
CREATE TEMP TABLE cmp AS
SELECT coalesce(i.user_key, r.user_key) AS user_key,
       i.events AS inc_events, r.events AS reb_events,
       (i.total OPERATOR(interest.<=>) r.total) AS cos_dist,
       abs(interest.norm(i.total) * 2 ^ ((i.t_ref - 1.7e9) / :interest_half_life) - interest.norm(r.total) * 2 ^ ((r.t_ref - 1.7e9) / :interest_half_life))
         / greatest(interest.norm(r.total) * 2 ^ ((r.t_ref - 1.7e9) / :interest_half_life), 1e-12) AS rel_mag
FROM incremental i FULL JOIN rebuilt r USING (user_key);
SELECT format('check every user has a state: %s (%s users incremental, %s rebuilt)',
              CASE WHEN count(*) FILTER (WHERE inc_events IS NULL OR reb_events IS NULL) = 0 THEN 'ok' ELSE 'FAIL' END,
              count(inc_events), count(reb_events)) FROM cmp;
SELECT format('check no lost update (event counts equal): %s (%s events in states, %s in table)',
              CASE WHEN bool_and(inc_events = reb_events) THEN 'ok' ELSE 'FAIL' END,
              sum(inc_events), (SELECT count(*) FROM events)) FROM cmp;
SELECT format('check decayed totals agree within 1e-5: %s (max cosine distance %s, max relative magnitude error %s)',
              CASE WHEN max(cos_dist) < 1e-5 AND max(rel_mag) < 1e-5 THEN 'ok' ELSE 'FAIL' END,
              to_char(max(cos_dist), '9.99EEEE'), to_char(max(rel_mag), '9.99EEEE')) FROM cmp;
SELECT format('check every visit counted once for co-visitation and popularity: %s (%s items, max relative error %s)',
              CASE WHEN coalesce(max(greatest(abs(coalesce(i.n, 0) - coalesce(r.n, 0)) / greatest(r.n, 1e-12),
                                              abs(coalesce(i.rn, 0) - coalesce(r.rn, 0)) / greatest(r.rn, 1e-12))), 0) < 1e-6 THEN 'ok' ELSE 'FAIL' END,
              count(*), to_char(coalesce(max(greatest(abs(coalesce(i.n, 0) - coalesce(r.n, 0)) / greatest(r.n, 1e-12),
                                                      abs(coalesce(i.rn, 0) - coalesce(r.rn, 0)) / greatest(r.rn, 1e-12))), 0), '9.99EEEE'))
FROM counts_incremental i FULL JOIN (
  SELECT st.item_key, st.events * 2 ^ ((st.t_ref - 1.7e9) / :'covisit_half_life'::float8) AS n,
         st.recent_events * 2 ^ ((st.t_ref - 1.7e9) / :'popularity_half_life'::float8) AS rn FROM interest.item_stats st
  JOIN interest.event_sources es ON es.id = st.source_id WHERE es.relid = 'events'::regclass) r USING (item_key);
SELECT format('check no bookkeeping errors: %s (%s)', CASE WHEN count(*) = 0 THEN 'ok' ELSE 'FAIL' END, count(*))
FROM interest.bookkeeping_errors;
