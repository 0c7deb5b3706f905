-- ---------------------------------------------------------------------------
-- schema.sql: the bookkeeping tables of dynamic user interests, their
-- indexes, the event queue's row-level policy, and the rights on them.
-- Plain DDL, no function bodies: it runs right after bootstrap.sql (it needs
-- only the type interest.embedding). Each table's COMMENT follows it.
--
-- Security design: the trigger functions that attach_* installs on the
-- application's tables run with the rights of the role that inserts (so a
-- user-supplied text expression never runs with more rights than its author),
-- read only the transition tables, and hand arrays to interest._apply_events /
-- interest._items_changed. Those run with the caller's rights and a pinned
-- search_path: they check that the calling role (the current user at entry)
-- may write the source table, then do the bookkeeping with the extension
-- owner's rights (src/privileges.rs), so an application role needs no rights
-- on these tables.
--
-- User and item keys are identifiers, compared byte by byte (COLLATE "C")
-- whatever the database's locale: lookups by key skip the locale's
-- comparison rules, and SQL orders keys as the Rust code does.
-- ---------------------------------------------------------------------------
GRANT USAGE ON SCHEMA interest TO PUBLIC;

CREATE TABLE interest.item_sources (
    id               serial PRIMARY KEY,
    relid            regclass NOT NULL UNIQUE,
    id_column        name NOT NULL,
    text_expr        text,
    embedding_column name,
    model            text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    -- index_items' arguments once it has built the source's vector index:
    -- a dump carries them, the index itself (on this extension's table) it
    -- does not, so a restored database knows to rebuild it.
    vector_index     jsonb,
    CHECK ((text_expr IS NULL) <> (embedding_column IS NULL))
);
COMMENT ON TABLE interest.item_sources IS 'Attached items tables.';
COMMENT ON COLUMN interest.item_sources.vector_index IS 'The arguments of the last interest.index_items that built the source''s vector index (NULL: none built). A restored database has them but not the index: recommend() warns, and the queue folder rebuilds it. A DROP INDEX by hand clears them.';

CREATE TABLE interest.item_embeddings (
    source_id  integer NOT NULL,
    item_key   text COLLATE "C" NOT NULL,
    embedding  interest.embedding NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),  -- for freshness
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_id, item_key)
);
COMMENT ON TABLE interest.item_embeddings IS 'Item embeddings by attached table and item key.';

CREATE TABLE interest.event_sources (
    id              serial PRIMARY KEY,
    relid           regclass NOT NULL UNIQUE,
    -- interest.item_sources(id), or NULL. Not a foreign key: pg_restore -j
    -- loads configuration tables in parallel, in any order, and a key
    -- checked during that load failed the restore; the one delete of an
    -- item source sets it NULL (interest._delete_bookkeeping).
    item_source_id  integer,
    -- the columns read: user, item, time, type, weight, text (NULL: none);
    -- the expressions below are made from them (interest._event_expressions)
    columns         name[] NOT NULL,
    user_expr       text NOT NULL,
    -- "column = $1::type" on the native column, so the application's index on it is used
    user_match      text NOT NULL,
    -- the same for an array of keys: "column = ANY(($1)::type[])"
    user_match_any  text NOT NULL,
    item_expr       text NOT NULL,
    time_expr       text NOT NULL,
    -- user, item, epoch seconds, weight, free text: shared by triggers and rebuild
    select_list     text NOT NULL,
    weights         jsonb NOT NULL,
    -- (at least a minute: shorter half-lives decay a day-old event to nothing)
    half_life       interval NOT NULL CHECK (half_life >= interval '1 minute'),
    max_interests   integer NOT NULL CHECK (max_interests BETWEEN 1 AND 32),
    join_similarity real NOT NULL CHECK (join_similarity BETWEEN -1 AND 1),
    -- the recent count behind popularity halves every this long (of the
    -- table's own clock); tune() may change it (and rebuilds)
    popularity_half_life interval NOT NULL DEFAULT '30 days' CHECK (popularity_half_life >= interval '1 minute'),
    -- the items' mean embedding, fixed at the first event that needs it: the
    -- point sub-interests are clustered around (see interest_state.rs)
    center          interest.embedding,
    -- when the event queue was last folded (interest.fold_interval counts from here)
    folded_at       timestamptz,
    -- recommend()'s weights chosen by interest.tune() (content, covisit,
    -- popularity, freshness), with its validation figures; NULL: the defaults
    rank_weights    jsonb,
    tuned_at        timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE interest.event_sources IS 'Attached events tables and their settings (center: the items'' mean embedding that sub-interests are clustered around, fixed at first use; rank_weights: recommend()''s weights chosen by interest.tune(), NULL for the defaults).';

-- One row per user, one per sub-interest: each holds one 384-d vector (1.5 kB),
-- below the TOAST threshold, so an event rewrites small rows in place.
-- No foreign keys on these hot tables: an FK check takes a KEY SHARE row lock
-- on the parent that the same transaction has just updated, which creates a
-- MultiXact per event (a large share of the per-event CPU). Detach and
-- rebuild delete the rows explicitly instead.
CREATE TABLE interest.user_states (
    source_id  integer NOT NULL,
    user_key   text COLLATE "C" NOT NULL,
    t_ref      double precision NOT NULL,
    total      interest.embedding NOT NULL,
    events     bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_id, user_key)
) WITH (fillfactor = 50);  -- room on the page for HOT updates: every event rewrites the row
COMMENT ON TABLE interest.user_states IS 'Per user: reference time, decayed total vector, event count.';

CREATE TABLE interest.user_interests (
    source_id integer NOT NULL,
    user_key  text COLLATE "C" NOT NULL,
    slot      integer NOT NULL,
    centroid  interest.embedding NOT NULL,
    mass      double precision NOT NULL,
    -- signed decayed weight: centroid - weight * centre is its position
    -- relative to the catalog's centre (for clustering)
    weight    double precision NOT NULL,
    last_seen double precision NOT NULL,
    events    bigint NOT NULL,
    PRIMARY KEY (source_id, user_key, slot)
) WITH (fillfactor = 50);
COMMENT ON TABLE interest.user_interests IS 'Per user and slot: a sub-interest''s decayed sum, mass, signed weight and last event.';

-- Co-visitation: each user's last items (the context new events link with).
CREATE TABLE interest.user_recent (
    source_id integer NOT NULL,
    user_key  text COLLATE "C" NOT NULL,
    items     text[] NOT NULL,
    times     double precision[] NOT NULL,
    PRIMARY KEY (source_id, user_key)
) WITH (fillfactor = 50);
COMMENT ON TABLE interest.user_recent IS 'Per user: the last items, which new events link with (co-visitation) and recommend() scores from.';

-- Per item of an events source: decayed event count, first/last event and its
-- strongest co-visitation links (bounded), all relative to t_ref.
CREATE TABLE interest.item_stats (
    source_id    integer NOT NULL,
    item_key     text COLLATE "C" NOT NULL,
    t_ref        double precision NOT NULL,
    events       double precision NOT NULL,
    first_seen   double precision NOT NULL,
    last_seen    double precision NOT NULL,
    -- the recent count behind popularity (relative to t_ref, halving every
    -- CovisitParams::popularity_half_life_secs)
    recent_events double precision NOT NULL DEFAULT 0,
    -- ItemStats::trend: the order of recent counts at any later clock
    -- (NULL without recent events); its index gives the trending list
    trend        double precision,
    -- The key carries the counts, so recommend() reads its candidates'
    -- counts from the index alone (an index-only scan), not from a key leaf
    -- and a heap page each. Updates move trend and last_seen, which are
    -- indexed, so none is HOT with or without the included columns.
    PRIMARY KEY (source_id, item_key) INCLUDE (t_ref, events, first_seen, last_seen, recent_events)
) WITH (fillfactor = 70);
CREATE INDEX item_stats_trend ON interest.item_stats (source_id, trend DESC, item_key) WHERE trend IS NOT NULL;
CREATE INDEX item_stats_last_seen ON interest.item_stats (source_id, last_seen);
COMMENT ON TABLE interest.item_stats IS 'Per item: event count, recent (decayed) event count for popularity, first and last event (its links are in interest.item_links).';

-- The links live apart from the counts: recommend() reads the counts of
-- hundreds of candidates and the links of a user's few recent items, so the
-- counts stay on a narrow heap. One row per item_stats row, written with it.
CREATE TABLE interest.item_links (
    source_id    integer NOT NULL,
    item_key     text COLLATE "C" NOT NULL,
    -- strongest links first, packed (key length u32, key, weight f32, little
    -- endian; weights relative to item_stats.t_ref): read with
    -- interest._link_keys(links) and interest._link_weights(links)
    links        bytea NOT NULL,
    PRIMARY KEY (source_id, item_key)
) WITH (fillfactor = 50);
COMMENT ON TABLE interest.item_links IS 'Per item: its strongest co-visitation links, packed, relative to the t_ref of its interest.item_stats row.';

-- Events whose item has no embedding yet: kept, counted, applied when it arrives.
CREATE TABLE interest.pending_events (
    source_id  integer NOT NULL,
    user_key   text COLLATE "C" NOT NULL,
    item_key   text COLLATE "C" NOT NULL,
    t          double precision NOT NULL,
    weight     double precision NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE interest.pending_events IS 'Events whose item had no embedding yet; applied when it arrives.';
CREATE INDEX pending_events_item ON interest.pending_events (source_id, item_key);

-- Events of small statements, waiting to be folded into the shared state.
-- A single-row INSERT only appends here (one small row, not ten statements
-- and a page of WAL; README "Performance" has the figures); every
-- interest.fold_batch queued events, one statement folds them all at once
-- (user states, recent lists, counts and co-visitation links, each row
-- rewritten once per batch). Readers (user_vector, interests, recommend)
-- fold a user's queued events on the fly, so what they return is current.
CREATE TABLE interest.event_queue (
    seq       bigserial,               -- arrival order: the order events are folded in
    source_id integer NOT NULL,
    user_key  text COLLATE "C" NOT NULL,
    item_key  text COLLATE "C",
    t         double precision NOT NULL,
    weight    double precision NOT NULL,
    embedding interest.embedding,       -- free-text events: embedded on arrival
    CHECK (weight <> 0),
    -- a bad value queued straight through the policy must not stop every fold
    CHECK (abs(t) < 'infinity' AND abs(weight) < 'infinity'),
    CHECK (item_key IS NOT NULL OR embedding IS NOT NULL)
) WITH (autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_scale_factor = 0);
COMMENT ON TABLE interest.event_queue IS 'Events of small statements waiting to be folded into the shared state (every interest.fold_batch events, or by interest.flush); readers fold a user''s queued events on the fly.';
CREATE INDEX event_queue_user ON interest.event_queue (source_id, user_key);

-- The triggers append item events here with the inserting role's rights: a
-- role may queue events only for a table it may insert into, and never a
-- vector (free-text events are embedded and queued by _apply_events). Such a
-- role could as well call _apply_events; a rebuild recomputes from the table.
-- Reading and deleting stay with the extension's entry points (src/privileges.rs).
ALTER TABLE interest.event_queue ENABLE ROW LEVEL SECURITY;
CREATE POLICY queue_for_writable_tables ON interest.event_queue FOR INSERT TO PUBLIC
    WITH CHECK (embedding IS NULL AND EXISTS (
        SELECT 1 FROM interest.event_sources s
        WHERE s.id = source_id AND pg_catalog.has_table_privilege(s.relid, 'INSERT')));

-- DELETEs, UPDATEs and TRUNCATEs of events whose bookkeeping could not run
-- at once: the source was locked by another transaction, or the application's
-- transaction reads one snapshot throughout (REPEATABLE READ, SERIALIZABLE).
-- The next fold applies them: the users concerned are replayed from the
-- table, and their removed and added visits rewrite the co-visitation counts.
CREATE TABLE interest.rewrite_queue (
    seq       bigserial,
    source_id integer NOT NULL,
    change    text NOT NULL CHECK (change IN ('removed', 'added', 'truncated')),
    user_key  text COLLATE "C" CHECK ((user_key IS NULL) = (change = 'truncated')),
    item_key  text COLLATE "C",
    t         double precision,
    weight    double precision
);
COMMENT ON TABLE interest.rewrite_queue IS 'Deleted, updated and truncated events whose bookkeeping waits for the next fold (the source was locked, or the transaction was REPEATABLE READ or SERIALIZABLE).';
CREATE INDEX rewrite_queue_user ON interest.rewrite_queue (source_id, user_key);

-- recommend()'s per-backend catalogs reload when an items table's count of
-- changes moves. A change appends a row here: updating one shared counter
-- would make concurrent item writers wait on each other until commit. Each
-- writer also folds the committed rows into one (their sum kept), so the
-- table stays small and the count never goes back.
CREATE TABLE interest.catalog_changes (
    source_id integer NOT NULL,
    changes   bigint NOT NULL DEFAULT 1
);
COMMENT ON TABLE interest.catalog_changes IS 'Counts of changes to item embeddings: recommend() reloads its per-backend catalog when the sum moves.';
CREATE INDEX catalog_changes_source ON interest.catalog_changes (source_id);

-- Cold start: a text profile acts as one event at the time it was set, so it
-- seeds a user with no events and fades as real events arrive.
CREATE TABLE interest.user_profiles (
    source_id integer NOT NULL,
    user_key  text COLLATE "C" NOT NULL,
    profile   text NOT NULL,
    embedding interest.embedding NOT NULL,
    set_at    double precision NOT NULL,
    PRIMARY KEY (source_id, user_key)
);
COMMENT ON TABLE interest.user_profiles IS 'Users'' text profiles (cold start) and their embeddings.';

-- Bookkeeping that failed; the application's rows were kept. interest.rebuild() repairs.
CREATE TABLE interest.bookkeeping_errors (
    id         bigserial PRIMARY KEY,
    relid      regclass,
    sqlstate   text NOT NULL,
    message    text NOT NULL,
    detail     text,
    at         timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE interest.bookkeeping_errors IS 'Bookkeeping failures; the application''s rows were kept; interest.rebuild() repairs.';

REVOKE ALL ON interest.item_sources, interest.item_embeddings, interest.event_sources, interest.user_states,
    interest.user_interests, interest.pending_events, interest.user_profiles, interest.bookkeeping_errors,
    interest.user_recent, interest.item_stats, interest.item_links, interest.event_queue, interest.rewrite_queue,
    interest.catalog_changes FROM PUBLIC;
GRANT SELECT ON interest.item_sources, interest.event_sources TO PUBLIC;
-- An attached table's settings (its expressions among them) are visible to
-- the roles with a right on that table, not to every role. The extension's
-- own functions run as a superuser and see every row.
ALTER TABLE interest.event_sources ENABLE ROW LEVEL SECURITY;
CREATE POLICY settings_of_tables_you_use ON interest.event_sources FOR SELECT TO PUBLIC
    USING (pg_catalog.has_table_privilege(relid, 'SELECT, INSERT, UPDATE, DELETE'));
ALTER TABLE interest.item_sources ENABLE ROW LEVEL SECURITY;
CREATE POLICY settings_of_tables_you_use ON interest.item_sources FOR SELECT TO PUBLIC
    USING (pg_catalog.has_table_privilege(relid, 'SELECT, INSERT, UPDATE, DELETE'));
GRANT INSERT (source_id, user_key, item_key, t, weight) ON interest.event_queue TO PUBLIC;
GRANT USAGE ON SEQUENCE interest.event_queue_seq_seq TO PUBLIC;

-- pg_dump keeps the bookkeeping: every table's rows and the sequences that
-- number sources and queued events, so a restore brings back the states,
-- counts, links, profiles and queues as they were. The trigger functions
-- attach_* created are ordinary functions and are dumped with the triggers.
SELECT pg_catalog.pg_extension_config_dump('interest.item_sources', '');
SELECT pg_catalog.pg_extension_config_dump('interest.item_embeddings', '');
SELECT pg_catalog.pg_extension_config_dump('interest.event_sources', '');
SELECT pg_catalog.pg_extension_config_dump('interest.user_states', '');
SELECT pg_catalog.pg_extension_config_dump('interest.user_interests', '');
SELECT pg_catalog.pg_extension_config_dump('interest.user_recent', '');
SELECT pg_catalog.pg_extension_config_dump('interest.item_stats', '');
SELECT pg_catalog.pg_extension_config_dump('interest.item_links', '');
SELECT pg_catalog.pg_extension_config_dump('interest.pending_events', '');
SELECT pg_catalog.pg_extension_config_dump('interest.event_queue', '');
SELECT pg_catalog.pg_extension_config_dump('interest.rewrite_queue', '');
SELECT pg_catalog.pg_extension_config_dump('interest.user_profiles', '');
SELECT pg_catalog.pg_extension_config_dump('interest.bookkeeping_errors', '');
SELECT pg_catalog.pg_extension_config_dump('interest.item_sources_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('interest.event_sources_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('interest.event_queue_seq_seq', '');
SELECT pg_catalog.pg_extension_config_dump('interest.rewrite_queue_seq_seq', '');
SELECT pg_catalog.pg_extension_config_dump('interest.bookkeeping_errors_id_seq', '');
