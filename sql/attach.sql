-- ---------------------------------------------------------------------------
-- attach.sql: attaching and detaching application tables (the triggers that
-- keep item embeddings and interest state current), the failure log helper,
-- and backfill_items. PL/pgSQL that calls into the Rust functions only at
-- run time (src/sources.rs, src/triggers/*), so it needs only the tables of
-- schema.sql. Security design: see the header of schema.sql.
-- ---------------------------------------------------------------------------

-- Checked for the caller (src/privileges.rs): the current user of the
-- public function that was called, whichever role's SQL called it.
CREATE FUNCTION interest._require_owner(rel regclass) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM interest._require_table(rel);
    IF NOT interest._caller_owns(rel) THEN
        RAISE EXCEPTION 'must be owner of table %', rel USING ERRCODE = '42501',
            DETAIL = 'Attaching, detaching, backfilling and rebuilding change a table''s triggers or its interest bookkeeping.',
            HINT = 'Run it as the table''s owner.';
    END IF;
END $$;

-- Only tables can be attached: the bookkeeping runs in statement triggers
-- with transition tables, which views, materialized views and foreign
-- tables cannot have.
CREATE FUNCTION interest._require_attachable(rel regclass) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE kind "char" := (SELECT c.relkind FROM pg_class c WHERE c.oid = rel);
BEGIN
    IF kind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '% is not a table', rel USING ERRCODE = '42809',
            DETAIL = format('It is a %s; pg_interest keeps its bookkeeping with statement triggers that read the rows a statement wrote, which only tables have.',
                CASE kind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'f' THEN 'foreign table'
                          WHEN 'S' THEN 'sequence' ELSE 'relation of kind ' || kind::pg_catalog.text END),
            HINT = 'Attach the table the rows are written to.';
    END IF;
END $$;

CREATE FUNCTION interest._column(rel regclass, col name, what text) RETURNS name
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF col IS NULL THEN RETURN NULL; END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = rel AND attname = col AND attnum > 0 AND NOT attisdropped) THEN
        RAISE EXCEPTION 'column "%" of relation % does not exist', col, rel USING ERRCODE = '42703',
            DETAIL = format('It was given as the %s column.', what), HINT = 'Pass the name of an existing column.';
    END IF;
    RETURN col;
END $$;

-- Every caught bookkeeping failure: a row in interest.bookkeeping_errors and
-- a WARNING; `fold` tells a failed fold of the queue (its events stay
-- queued) from failed bookkeeping of a statement (its rows were stored).
CREATE FUNCTION interest._bookkeeping_failed(rel regclass, fold boolean, state text, message text, detail text)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, interest, pg_temp AS $$
BEGIN
    -- Only a role that may write the table logs for it (anyone else gets the
    -- WARNING alone): the log cannot be filled by strangers, and a trigger's
    -- failure handler never fails the application's statement.
    IF interest._caller_may_write(rel) THEN
        PERFORM interest._privileged('log_failure', rel,
            jsonb_build_object('state', state, 'message', message, 'detail', detail));
    END IF;
    IF fold THEN
        RAISE WARNING 'pg_interest: folding the event queue of % failed (%: %); the events stay queued', rel, state, message
            USING DETAIL = coalesce(nullif(detail, ''), format('Folding %s''s queued events failed with SQLSTATE %s.', rel, state)),
                  HINT = 'See interest.bookkeeping_errors; interest.flush() retries, interest.rebuild() recomputes the state.';
    ELSE
        RAISE WARNING 'pg_interest: bookkeeping for % failed (%: %); the rows were stored', rel, state, message
            USING DETAIL = coalesce(nullif(detail, ''), format('The statement''s rows are in %s; their interest bookkeeping failed with SQLSTATE %s.', rel, state)),
                  HINT = 'See interest.bookkeeping_errors; CALL interest.backfill_items() embeds items that were missed, interest.rebuild() recomputes interest states.';
    END IF;
END $$;

-- Whether user_key can be a value of the events table's user column. A key
-- the column cannot hold (recommend('new-1') on an integer column) has no
-- rows there: reads of the user's rows are skipped, not failed. Call it as
-- the role that may run the column type's input function (the table owner
-- or the caller), as the read itself runs.
CREATE FUNCTION interest._user_key_fits(src integer, user_key text) RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    user_type text;
    names_objects boolean;
    fits boolean;
BEGIN
    SELECT format_type(a.atttypid, a.atttypmod),
           (SELECT b.typname LIKE 'reg%' AND b.typnamespace = 'pg_catalog'::pg_catalog.regnamespace
            FROM pg_type t JOIN pg_type b ON b.oid = CASE WHEN t.typbasetype = 0 THEN t.oid ELSE t.typbasetype END
            WHERE t.oid = a.atttypid)
    INTO user_type, names_objects
    FROM interest.event_sources s JOIN pg_attribute a ON a.attrelid = s.relid AND a.attname = s.columns[1]
    WHERE s.id = src;
    IF user_type IS NULL THEN
        RETURN true;
    END IF;
    -- The key must come back unchanged: a cast to varchar(5) truncates, and
    -- users are keyed by their column's text ('007' is not user 7).
    EXECUTE format('SELECT (($1)::%s)::pg_catalog.text = $1', user_type) INTO fits USING user_key;
    RETURN coalesce(fits, false);
EXCEPTION
    WHEN data_exception OR integrity_constraint_violation THEN
        -- Not a value of the type, or refused by a domain's constraint.
        RETURN false;
    WHEN undefined_table OR undefined_object OR undefined_function OR ambiguous_function
         OR invalid_schema_name OR invalid_name OR syntax_error THEN
        -- For the reg* types, a name of nothing; from anything else (a
        -- domain check's own function, say) a real error.
        IF coalesce(names_objects, false) THEN
            RETURN false;
        END IF;
        RAISE;
END $$;
COMMENT ON FUNCTION interest._user_key_fits(integer, text) IS 'Whether a user key is a value of the events table''s user column as it is written there (one that is not has no rows).';

-- The type of a column, through any domains (NULL for no column).
CREATE FUNCTION interest._column_base_type(rel regclass, col name) RETURNS regtype
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    WITH RECURSIVE t(oid, depth) AS (
        SELECT a.atttypid, 0 FROM pg_attribute a WHERE a.attrelid = rel AND a.attname = col AND NOT a.attisdropped
        UNION ALL
        SELECT p.typbasetype, t.depth + 1 FROM t JOIN pg_type p ON p.oid = t.oid WHERE p.typtype = 'd'
    )
    SELECT oid::pg_catalog.regtype FROM t ORDER BY depth DESC LIMIT 1
$$;

-- The expressions an events table is read through, from its columns (user,
-- item, time, type, weight, text; NULL for none) and the type weights:
-- attach_events stores them, _refresh_attached rebuilds them after a RENAME
-- or a change of column type.
CREATE FUNCTION interest._event_expressions(events regclass, cols name[], weights jsonb,
    OUT user_expr text, OUT user_match text, OUT user_match_any text, OUT item_expr text, OUT time_expr text, OUT list text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    user_type text;
    weight_expr text;
    text_expr text;
    time_type regtype := interest._column_base_type(events, cols[3]);
    weight_type regtype := interest._column_base_type(events, cols[5]);
BEGIN
    -- Types the expressions below cannot read would fail every statement's
    -- bookkeeping: refused here, at attach and at ALTER TABLE alike.
    IF time_type NOT IN ('timestamptz'::pg_catalog.regtype, 'timestamp'::pg_catalog.regtype, 'date'::pg_catalog.regtype) THEN
        RAISE EXCEPTION 'time column "%" of % has type %', cols[3], events, time_type USING ERRCODE = '42804',
            DETAIL = 'pg_interest reads an event''s time as a timestamp.',
            HINT = 'Name a column of type timestamptz, timestamp or date, or leave time_column out to use the time of insertion.';
    END IF;
    IF weight_type IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM pg_type t WHERE t.oid = weight_type AND t.typcategory IN ('N', 'S')
        UNION ALL
        SELECT 1 FROM pg_cast c WHERE c.castsource = weight_type AND c.casttarget = 'float8'::pg_catalog.regtype) THEN
        RAISE EXCEPTION 'weight column "%" of % has type %', cols[5], events, weight_type USING ERRCODE = '42804',
            DETAIL = 'pg_interest reads an event''s weight as a number (double precision).',
            HINT = 'Name a numeric column, or give weights per event type with type_column and weights.';
    END IF;
    user_expr := format('(%I)::pg_catalog.text', cols[1]);
    user_type := (SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a WHERE a.attrelid = events AND a.attname = cols[1]);
    user_match := format('%I = ($1)::%s', cols[1], user_type);
    user_match_any := format('%I IN (SELECT unnest(($1)::%s[]))', cols[1], user_type);
    item_expr := CASE WHEN cols[2] IS NULL THEN 'NULL::pg_catalog.text' ELSE format('(%I)::pg_catalog.text', cols[2]) END;
    time_expr := CASE WHEN cols[3] IS NULL THEN 'now()' ELSE format('%I', cols[3]) END;
    weight_expr := concat_ws(' * ',
        -- all but the built-in integers and floats through
        -- interest._event_weight: a word or a number beyond double precision
        -- is one bad value (NaN), logged and skipped, not an error that
        -- would fail the statement's bookkeeping
        CASE WHEN cols[5] IS NULL THEN NULL
             WHEN weight_type IN ('int2'::pg_catalog.regtype, 'int4'::pg_catalog.regtype, 'int8'::pg_catalog.regtype,
                                  'float4'::pg_catalog.regtype, 'float8'::pg_catalog.regtype)
             THEN format('coalesce((%I)::pg_catalog.float8, 1)', cols[5])
             ELSE format('coalesce(interest._event_weight((%I)::pg_catalog.text), 1)', cols[5]) END,
        CASE WHEN cols[4] IS NOT NULL THEN format('coalesce((%L::pg_catalog.jsonb ->> (%I)::pg_catalog.text)::pg_catalog.float8, 1)', weights, cols[4]) END);
    IF weight_expr = '' THEN weight_expr := '1'; END IF;
    text_expr := CASE WHEN cols[6] IS NULL THEN 'NULL::pg_catalog.text' ELSE format('(%I)::pg_catalog.text', cols[6]) END;
    list := interest._event_select_list(user_expr, item_expr, time_expr, weight_expr, text_expr);
END $$;
REVOKE ALL ON FUNCTION interest._event_expressions(regclass, name[], jsonb) FROM PUBLIC;

-- The privileged step of logging a failure (see interest._privileged).
CREATE FUNCTION interest._log_failure(rel regclass, args jsonb) RETURNS integer
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO interest.bookkeeping_errors (relid, sqlstate, message, detail)
    VALUES (rel, args ->> 'state', args ->> 'message', args ->> 'detail') RETURNING NULL::integer
$$;
REVOKE ALL ON FUNCTION interest._log_failure(regclass, jsonb) FROM PUBLIC;

-- Runs the CREATE FUNCTION statements of a source's trigger functions. They
-- are called only as triggers, which never checks EXECUTE: nobody may call
-- them directly. Each depends on the extension (not a member: pg_dump must
-- dump them, the application's triggers name them), so DROP EXTENSION
-- refuses while tables are attached, naming their triggers, and DROP
-- EXTENSION ... CASCADE drops the triggers with them: no trigger is left
-- calling functions that are gone. pg_dump keeps the dependency.
CREATE FUNCTION interest._create_trigger_functions(kind text, src integer, stmts text[]) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    stmt text;
    op text;
BEGIN
    FOREACH stmt IN ARRAY stmts LOOP
        EXECUTE stmt;
    END LOOP;
    FOREACH op IN ARRAY interest._trigger_ops() LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s() FROM PUBLIC', interest._trigger_function(kind, src, op));
        -- (a replaced function lost it: CREATE OR REPLACE renews dependencies)
        EXECUTE format('ALTER FUNCTION %s() DEPENDS ON EXTENSION pg_interest', interest._trigger_function(kind, src, op));
    END LOOP;
END $$;
REVOKE ALL ON FUNCTION interest._create_trigger_functions(text, integer, text[]) FROM PUBLIC;

-- The statements a source's triggers fire on, and the name of the trigger
-- function for one of them: the one definition of both.
CREATE FUNCTION interest._trigger_ops() RETURNS text[]
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$ SELECT ARRAY['ins', 'upd', 'del', 'trunc'] $$;
CREATE FUNCTION interest._trigger_function(kind text, src integer, op text) RETURNS text
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF kind NOT IN ('item', 'event') OR op <> ALL (interest._trigger_ops()) THEN
        RAISE EXCEPTION 'invalid trigger function "%", "%"', kind, op USING ERRCODE = '22023',
            HINT = 'kind is item or event; op is one of interest._trigger_ops().';
    END IF;
    RETURN format('interest.%I', format('_%ss_%s_%s', kind, src, op));
END $$;

-- A source's statement triggers on its table, one per statement kind, and
-- on each of its partitions: a statement that names a partition fires only
-- the partition's triggers. Not TRUNCATE on a partition: emptying one
-- partition is not emptying the table (README "Partitioned tables").
-- Triggers that exist already are kept, so that it also adds those of new
-- partitions; triggers on tables no longer in the tree (a detached
-- partition) are dropped.
CREATE FUNCTION interest._create_triggers(kind text, rel regclass, src integer) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    op text;
    part regclass;
    stale record;
BEGIN
    -- (pg_partition_tree gives no row for a table that is not partitioned;
    -- a foreign partition can have no transition tables, and its rows are
    -- written through the partitioned table or elsewhere)
    FOR part IN SELECT rel UNION ALL SELECT t.relid FROM pg_partition_tree(rel) t JOIN pg_class c ON c.oid = t.relid
                WHERE t.level > 0 AND c.relkind <> 'f' LOOP
        FOREACH op IN ARRAY interest._trigger_ops() LOOP
            CONTINUE WHEN op = 'trunc' AND part <> rel;
            CONTINUE WHEN EXISTS (SELECT 1 FROM pg_trigger g
                                  WHERE g.tgrelid = part AND g.tgname = format('interest_%ss_%s', kind, op));
            EXECUTE format('CREATE TRIGGER %I AFTER %s ON %s %s FOR EACH STATEMENT EXECUTE FUNCTION %s()',
                format('interest_%ss_%s', kind, op),
                CASE op WHEN 'ins' THEN 'INSERT' WHEN 'upd' THEN 'UPDATE' WHEN 'del' THEN 'DELETE' ELSE 'TRUNCATE' END,
                part,
                CASE op WHEN 'ins' THEN 'REFERENCING NEW TABLE AS new_rows' WHEN 'upd' THEN 'REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows'
                        WHEN 'del' THEN 'REFERENCING OLD TABLE AS old_rows' ELSE '' END,
                interest._trigger_function(kind, src, op));
        END LOOP;
    END LOOP;
    FOR stale IN SELECT g.tgname, g.tgrelid::pg_catalog.regclass AS part FROM pg_trigger g
                 WHERE g.tgfoid IN (SELECT to_regproc(interest._trigger_function(kind, src, o)) FROM unnest(interest._trigger_ops()) o)
                   AND g.tgrelid <> rel AND g.tgrelid NOT IN (SELECT t.relid FROM pg_partition_tree(rel) t) LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', stale.tgname, stale.part);
    END LOOP;
END $$;
REVOKE ALL ON FUNCTION interest._create_triggers(text, regclass, integer) FROM PUBLIC;

-- The CREATE FUNCTION statements of an items table's trigger functions,
-- from its stored row: attach_items and _refresh_attached run them.
CREATE FUNCTION interest._item_functions(src integer) RETURNS text[]
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE s interest.item_sources;
BEGIN
    SELECT * INTO STRICT s FROM interest.item_sources WHERE id = src;
    RETURN interest._item_trigger_functions(src, format('(%I)::pg_catalog.text', s.id_column),
        CASE WHEN s.text_expr IS NOT NULL THEN format('(%s)::pg_catalog.text', s.text_expr)
             ELSE format('(%I)::interest.embedding::pg_catalog.text', s.embedding_column) END,
        CASE WHEN s.text_expr IS NOT NULL THEN 'interest._items_changed' ELSE 'interest._items_set' END);
END $$;
REVOKE ALL ON FUNCTION interest._item_functions(integer) FROM PUBLIC;

-- The text expression is the owner's SQL: attach_items checks it with the
-- caller's rights, then interest._register_items (the extension owner's
-- rights: it writes the settings and creates the trigger functions in schema
-- interest) evaluates none of it.
CREATE FUNCTION interest.attach_items(items regclass, id_column name, text text DEFAULT NULL,
                                      model text DEFAULT NULL, embedding_column name DEFAULT NULL)
RETURNS integer LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM interest._require_owner(items);
    IF text IS NOT NULL THEN
        PERFORM interest._column(items, id_column, 'id');
        EXECUTE format('SELECT (%s)::pg_catalog.text FROM %s LIMIT 0', text, items);
    END IF;
    RETURN interest._privileged('attach_items', items, jsonb_build_object('id_column', id_column, 'text', text,
        'model', model, 'embedding_column', embedding_column));
END $$;

CREATE FUNCTION interest._register_items(items regclass, args jsonb) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    id_column name := args ->> 'id_column';
    text text := args ->> 'text';
    model text := coalesce(args ->> 'model', interest._default_model());
    embedding_column name := args ->> 'embedding_column';
    src integer;
BEGIN
    PERFORM interest._require_owner(items);
    PERFORM interest._require_attachable(items);
    IF id_column IS NULL THEN
        RAISE EXCEPTION 'id_column must not be NULL' USING ERRCODE = '22004',
            DETAIL = 'The argument id_column has no meaning as NULL.', HINT = 'Name the column that identifies an item, such as ''id''.';
    END IF;
    PERFORM interest._column(items, id_column, 'id');
    PERFORM interest._column(items, embedding_column, 'embedding');
    IF (text IS NULL) = (embedding_column IS NULL) THEN
        RAISE EXCEPTION 'give exactly one of text and embedding_column' USING ERRCODE = '22023',
            DETAIL = 'text is a column or SQL expression to embed; embedding_column holds precomputed embeddings.',
            HINT = 'For example: interest.attach_items(''movies'', ''id'', text => ''title || '''' '''' || genres'').';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM interest.models m WHERE m.name = model) THEN
        RAISE EXCEPTION 'model "%" does not exist', model USING ERRCODE = '42704',
            DETAIL = 'interest.models lists the registered encoders.', HINT = 'Leave model out for the default, name a row of interest.models, or register one with interest.register_model.';
    END IF;
    IF EXISTS (SELECT 1 FROM interest.item_sources s WHERE s.relid = items) THEN
        RAISE EXCEPTION 'table % is already attached', items USING ERRCODE = '42710',
            DETAIL = 'interest.item_sources has a row for it.', HINT = 'Call interest.detach_items first to change the settings.';
    END IF;
    INSERT INTO interest.item_sources (relid, id_column, text_expr, embedding_column, model)
    VALUES (items, id_column, text, embedding_column, model) RETURNING id INTO src;

    -- The trigger functions (see src/triggers/items.rs).
    PERFORM interest._create_trigger_functions('item', src, interest._item_functions(src));
    PERFORM interest._create_triggers('item', items, src);
    RAISE NOTICE 'attached %; rows that already exist are embedded by CALL interest.backfill_items(%)', items, quote_literal(items::pg_catalog.text);
    RETURN src;
END $$;
REVOKE ALL ON FUNCTION interest._register_items(regclass, jsonb) FROM PUBLIC;
COMMENT ON FUNCTION interest.attach_items(regclass, name, text, text, name) IS
    'Keeps item embeddings current for an existing table (statement triggers): text is a column or SQL expression over the row, or embedding_column holds your own embeddings.';

-- Shared by detach_items and detach_events (through interest._privileged):
-- drops the triggers and their functions, then the bookkeeping; the
-- application's table is untouched. Returns 1 if the table was attached.
CREATE FUNCTION interest._unregister(rel regclass, args jsonb) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    kind text := args ->> 'kind';
    src integer;
    op text;
    trig record;
BEGIN
    PERFORM interest._require_owner(rel);
    IF kind = 'item' THEN SELECT id INTO src FROM interest.item_sources WHERE relid = rel;
    ELSIF kind = 'event' THEN SELECT id INTO src FROM interest.event_sources WHERE relid = rel;
    ELSE
        RAISE EXCEPTION 'invalid source kind "%"', kind USING ERRCODE = '22023', HINT = 'kind is item or event.';
    END IF;
    IF src IS NULL THEN RETURN 0; END IF;
    FOREACH op IN ARRAY interest._trigger_ops() LOOP
        -- on the table and on its partitions
        FOR trig IN SELECT g.tgname, g.tgrelid::pg_catalog.regclass AS part FROM pg_trigger g
                    WHERE g.tgfoid = to_regproc(interest._trigger_function(kind, src, op)) LOOP
            EXECUTE format('DROP TRIGGER %I ON %s', trig.tgname, trig.part);
        END LOOP;
        EXECUTE format('DROP FUNCTION IF EXISTS %s()', interest._trigger_function(kind, src, op));
    END LOOP;
    -- Not on the DROP TABLE path (interest._ddl_dropped): dropping it there
    -- would lock interest.item_embeddings exclusively until the
    -- application's transaction ends, stopping every recommend().
    IF kind = 'item' AND to_regclass('interest.' || interest._items_index_name(src)) IS NOT NULL THEN
        EXECUTE format('DROP INDEX interest.%I', interest._items_index_name(src));
    END IF;
    PERFORM interest._delete_bookkeeping(kind, src);
    RETURN 1;
END $$;
REVOKE ALL ON FUNCTION interest._unregister(regclass, jsonb) FROM PUBLIC;

-- The name of an items table's vector index on interest.item_embeddings.
CREATE FUNCTION interest._items_index_name(source_id integer) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$ SELECT 'item_embeddings_ivf_' || source_id $$;
COMMENT ON FUNCTION interest._items_index_name(integer) IS 'Name of the interest_ivf index that index_items builds for an items source.';

-- index_items' privileged step: (re)builds the source's partial
-- interest_ivf index on interest.item_embeddings. Arguments are data.
CREATE FUNCTION interest._index_items(rel regclass, args jsonb) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    src integer;
    index_name text;
    saved_deadlock_timeout text;
    attempts integer := 0;
    gave_way boolean := false;
    timed_out boolean := false;
    last_attempt boolean;
    caller_lock_ms bigint;
    patience interval;
    started timestamptz;
    lists integer := (args ->> 'lists')::integer;
BEGIN
    PERFORM interest._require_owner(rel);
    -- Rebuilds take turns: the table lock is held by one rebuild at a time
    -- (readers go on, item writes wait as for any index build), so that no
    -- two rebuilds, of one source or of two, each wait for the other's swap.
    -- The source row lock keeps a detach from removing the source meanwhile
    -- (NO KEY: foreign-key checks on it go on).
    LOCK TABLE interest.item_embeddings IN SHARE ROW EXCLUSIVE MODE;
    SELECT id INTO src FROM interest.item_sources WHERE relid = rel FOR NO KEY UPDATE;
    IF src IS NULL THEN
        RAISE EXCEPTION 'table % is not attached as an items table', rel USING ERRCODE = '42704',
            DETAIL = 'index_items indexes the embeddings that attach_items keeps.', HINT = 'Call interest.attach_items first.';
    END IF;
    IF lists IS NOT NULL AND lists NOT BETWEEN 1 AND 16384 THEN
        RAISE EXCEPTION 'lists must be between 1 and 16384' USING ERRCODE = '22023',
            DETAIL = format('Got lists => %s.', lists), HINT = 'Leave it NULL to use the square root of the number of items.';
    END IF;
    index_name := interest._items_index_name(src);
    -- The new index is built beside the old one, which recommend() keeps
    -- using meanwhile (building takes a SHARE lock: item writes wait, reads
    -- do not); only the swap at the end takes the table's exclusive lock.
    -- The key rides in the index, so recommend() reads its neighbours'
    -- keys without their rows (src/ivf/keys.rs).
    EXECUTE format('CREATE INDEX %I ON interest.item_embeddings USING interest_ivf (embedding) INCLUDE (item_key) WITH (lists = %s) WHERE source_id = %s',
        index_name || '_new', coalesce(lists, 0), src);
    -- An application transaction that read item embeddings and now waits
    -- to write one (behind the build's SHARE lock) deadlocks with the swap.
    -- Checking for deadlock at once makes this call, not the application's
    -- transaction, the one that finds the cycle and gives way.
    saved_deadlock_timeout := current_setting('deadlock_timeout');
    BEGIN
        PERFORM set_config('deadlock_timeout', '10ms', true);
    EXCEPTION WHEN insufficient_privilege THEN
        saved_deadlock_timeout := NULL;
    END;
    -- The swap's exclusive lock is asked for in short attempts (50 ms,
    -- then 100, then 200): while a request waits, every new reader
    -- (recommend()) queues behind it, for as long as some open transaction
    -- that read item embeddings lasts. Between attempts readers go on. After
    -- 10 s of attempts (item writes wait all along) the swap waits as any
    -- DDL does; with a lock_timeout of its own the caller gets 55P03 once
    -- that time has passed instead.
    caller_lock_ms := (SELECT setting::bigint FROM pg_settings WHERE name = 'lock_timeout');
    patience := CASE WHEN caller_lock_ms > 0 THEN least(interval '10 s', caller_lock_ms * interval '1 ms')
                     ELSE interval '10 s' END;
    started := clock_timestamp();
    LOOP
        last_attempt := clock_timestamp() - started >= patience;
        IF last_attempt AND caller_lock_ms > 0 THEN
            timed_out := true;
            EXIT;
        END IF;
        PERFORM set_config('lock_timeout',
            CASE WHEN last_attempt THEN caller_lock_ms || 'ms' ELSE least(200, 50 * 2 ^ least(attempts, 2))::integer || 'ms' END, true);
        BEGIN
            IF to_regclass('interest.' || index_name) IS NOT NULL THEN
                EXECUTE format('DROP INDEX interest.%I', index_name);
            END IF;
            EXECUTE format('ALTER INDEX interest.%I RENAME TO %I', index_name || '_new', index_name);
            EXIT;
        EXCEPTION
            WHEN deadlock_detected THEN
                gave_way := true;
                EXIT;
            WHEN lock_not_available THEN
                -- A cycle the deadlock check did not see (deadlock_timeout
                -- could not be lowered, or it formed after the check): a
                -- transaction holding a lock on the table waits for this
                -- one. (A cycle through a third transaction is left to
                -- PostgreSQL's deadlock check.)
                IF EXISTS (SELECT 1 FROM pg_locks l
                           WHERE l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                             AND l.relation = 'interest.item_embeddings'::pg_catalog.regclass AND l.granted
                             AND l.pid <> pg_backend_pid() AND pg_backend_pid() = ANY (pg_blocking_pids(l.pid))) THEN
                    gave_way := true;
                    EXIT;
                END IF;
        END;
        attempts := attempts + 1;
        PERFORM pg_sleep(0.05);
    END LOOP;
    IF timed_out THEN
        RAISE EXCEPTION 'index_items could not swap in the new index within lock_timeout' USING ERRCODE = '55P03',
            DETAIL = format('Transactions that read item embeddings stayed open for %s; the old index is kept.', patience),
            HINT = 'Call interest.index_items again when fewer such transactions are open, or raise lock_timeout.';
    END IF;
    IF gave_way THEN
        RAISE EXCEPTION 'index_items gave way to an application transaction' USING ERRCODE = '40P01',
            DETAIL = 'A transaction that had read item embeddings was waiting to change one while the new index was built; the old index is kept.',
            HINT = 'Call interest.index_items again.';
    END IF;
    PERFORM set_config('lock_timeout', caller_lock_ms || 'ms', true);
    IF saved_deadlock_timeout IS NOT NULL THEN
        PERFORM set_config('deadlock_timeout', saved_deadlock_timeout, true);
    END IF;
    UPDATE interest.item_sources SET vector_index = jsonb_build_object('lists', lists) WHERE id = src;
    RETURN (SELECT count(*) FROM interest.item_embeddings WHERE source_id = src)::integer;
END $$;
REVOKE ALL ON FUNCTION interest._index_items(regclass, jsonb) FROM PUBLIC;

CREATE FUNCTION interest.index_items(items regclass, lists integer DEFAULT NULL) RETURNS integer
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$ SELECT interest._privileged('index_items', items, jsonb_build_object('lists', lists)) $$;
COMMENT ON FUNCTION interest.index_items(regclass, integer) IS 'Builds (or rebuilds) an interest_ivf index over the items table''s embeddings; recommend() then ranks candidates from it (content neighbours, co-visitation, trending) instead of the whole catalog. Run it after backfill_items and again when the catalog has grown a lot. A rebuild builds the new index beside the old one: recommend() keeps using the old one meanwhile, item writes wait; the swap waits for open transactions that read item embeddings in short attempts (recommend() calls wait at most one attempt, item writes wait throughout), then after 10 s as any DDL (55P03 once a lock_timeout of the caller has passed); it gives way (40P01) rather than deadlock an application transaction. Returns the number of items indexed.';

CREATE FUNCTION interest.detach_items(items regclass) RETURNS boolean
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$ SELECT interest._privileged('detach', items, '{"kind": "item"}') = 1 $$;
COMMENT ON FUNCTION interest.detach_items(regclass) IS 'Removes the triggers and bookkeeping of attach_items; the table and its rows are untouched.';

CREATE FUNCTION interest.attach_events(events regclass, user_column name, item_column name DEFAULT NULL,
    time_column name DEFAULT NULL, type_column name DEFAULT NULL, weight_column name DEFAULT NULL,
    weights jsonb DEFAULT '{"view": 1, "click": 2, "purchase": 5, "dislike": -3}',
    text_column name DEFAULT NULL, half_life interval DEFAULT NULL,
    items regclass DEFAULT NULL, max_interests integer DEFAULT NULL, join_similarity real DEFAULT NULL,
    popularity_half_life interval DEFAULT NULL)
RETURNS integer LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    src integer;
    has_rows boolean;
BEGIN
    -- (here: a number beyond double precision cannot even be passed on)
    IF jsonb_typeof(weights) = 'object' AND EXISTS (SELECT 1 FROM jsonb_each(weights) w
            WHERE jsonb_typeof(w.value) = 'number' AND (abs(w.value::numeric) > interest._max_event_weight()::numeric
                  OR (w.value::numeric <> 0 AND abs(w.value::numeric) < 1e-300))) THEN
        RAISE EXCEPTION 'weights must be 0 or of magnitude between 1e-300 and %', interest._max_event_weight()
            USING ERRCODE = '22023', DETAIL = format('Got %s; beyond that range an event''s weight is a bad value or cannot be read.', weights),
            HINT = 'For example: ''{"view": 1, "purchase": 5, "dislike": -3}''.';
    END IF;
    src := interest._privileged('attach_events', events, jsonb_build_object(
        'popularity_half_life', popularity_half_life,
        'user_column', user_column, 'item_column', item_column, 'time_column', time_column,
        'type_column', type_column, 'weight_column', weight_column, 'weights', weights,
        'text_column', text_column, 'half_life', half_life, 'items', items::pg_catalog.oid,
        'max_interests', max_interests, 'join_similarity', join_similarity));
    -- (read as the caller, the table's owner, when they may read it)
    IF has_table_privilege(events, 'SELECT') THEN
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s)', events) INTO has_rows;
    END IF;
    IF has_rows THEN
        RAISE NOTICE 'attached %; the events already in it count once SELECT interest.rebuild(%) has run', events, quote_literal(events::pg_catalog.text);
    END IF;
    RETURN src;
END $$;

-- attach_events' privileged step (settings rows, trigger functions in
-- schema interest; see interest._privileged). It evaluates no SQL of the
-- caller's: column names go through format('%I'), weights are data.
CREATE FUNCTION interest._register_events(events regclass, args jsonb) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    user_column name := args ->> 'user_column';
    item_column name := args ->> 'item_column';
    time_column name := args ->> 'time_column';
    type_column name := args ->> 'type_column';
    weight_column name := args ->> 'weight_column';
    weights jsonb := args -> 'weights';
    text_column name := args ->> 'text_column';
    half_life interval := (args ->> 'half_life')::interval;
    items regclass := (args ->> 'items')::pg_catalog.oid::pg_catalog.regclass;
    max_interests integer := (args ->> 'max_interests')::integer;
    join_similarity real := (args ->> 'join_similarity')::real;
    popularity_half_life interval := (args ->> 'popularity_half_life')::interval;
    src integer;
    item_src integer;
    cols name[];
    e record;
    defaults record;
    bad_setting text;
    bad_rule text;
BEGIN
    -- NULL settings take the defaults of interest_core's InterestParams.
    SELECT * INTO defaults FROM interest._interest_defaults();
    half_life := coalesce(half_life, justify_hours(make_interval(secs => defaults.half_life_secs)));
    max_interests := coalesce(max_interests, defaults.max_interests);
    join_similarity := coalesce(join_similarity, defaults.join_similarity);
    popularity_half_life := coalesce(popularity_half_life, justify_hours(make_interval(secs => defaults.popularity_half_life_secs)));
    PERFORM interest._require_owner(events);
    PERFORM interest._require_attachable(events);
    IF user_column IS NULL THEN
        RAISE EXCEPTION 'user_column must not be NULL' USING ERRCODE = '22004',
            DETAIL = 'The argument user_column has no meaning as NULL.', HINT = 'Name the column that identifies a user, such as ''user_id''.';
    END IF;
    PERFORM interest._column(events, user_column, 'user');
    PERFORM interest._column(events, item_column, 'item');
    PERFORM interest._column(events, time_column, 'time');
    PERFORM interest._column(events, type_column, 'type');
    PERFORM interest._column(events, weight_column, 'weight');
    PERFORM interest._column(events, text_column, 'text');
    IF item_column IS NULL AND text_column IS NULL THEN
        RAISE EXCEPTION 'an events table needs an item column or a text column' USING ERRCODE = '22023',
            DETAIL = 'item_column and text_column are both NULL: no event would have a subject.', HINT = 'Pass item_column => ''item_id'' (or text_column for free-text events such as searches).';
    END IF;
    IF jsonb_typeof(weights) IS DISTINCT FROM 'object'
       OR EXISTS (SELECT 1 FROM jsonb_each(weights) w WHERE jsonb_typeof(w.value) <> 'number') THEN
        RAISE EXCEPTION 'weights must be a JSON object of numbers' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', weights), HINT = 'For example: ''{"view": 1, "purchase": 5, "dislike": -3}''.';
    END IF;
    -- (the half-lives' ranges are the CHECKs of interest.event_sources,
    -- reported by the handler below)
    -- Only items tables the caller may read (this runs with definer rights).
    IF items IS NULL THEN
        SELECT min(id) INTO item_src FROM interest.item_sources
        WHERE interest._caller_may_read(relid) HAVING count(*) = 1;
    ELSE
        SELECT id INTO item_src FROM interest.item_sources WHERE relid = items AND interest._caller_may_read(relid);
        IF NOT FOUND THEN
            RAISE EXCEPTION 'items table % is not attached', items USING ERRCODE = '55000',
                DETAIL = 'interest.item_sources has no row for it that you may read.', HINT = 'Call interest.attach_items first.';
        END IF;
    END IF;
    -- Held against a concurrent detach_items (no foreign key does it).
    PERFORM 1 FROM interest.item_sources WHERE id = item_src FOR KEY SHARE;
    IF item_column IS NOT NULL AND item_src IS NULL THEN
        RAISE EXCEPTION 'no single attached items table for the events'' items' USING ERRCODE = '55000',
            DETAIL = format('%s items tables you may read are attached.', (SELECT count(*) FROM interest.item_sources WHERE interest._caller_may_read(relid))),
            HINT = 'Attach the items table with interest.attach_items, or name it with items => ''...''.';
    END IF;
    IF EXISTS (SELECT 1 FROM interest.event_sources s WHERE s.relid = events) THEN
        RAISE EXCEPTION 'table % is already attached', events USING ERRCODE = '42710',
            DETAIL = 'interest.event_sources has a row for it.', HINT = 'Call interest.detach_events first to change the settings.';
    END IF;

    cols := ARRAY[user_column, item_column, time_column, type_column, weight_column, text_column];
    SELECT * INTO e FROM interest._event_expressions(events, cols, weights);

    BEGIN
        INSERT INTO interest.event_sources (relid, item_source_id, columns, user_expr, user_match, user_match_any, item_expr, time_expr, select_list, weights, half_life, max_interests, join_similarity, popularity_half_life)
        VALUES (events, item_src, cols, e.user_expr, e.user_match, e.user_match_any, e.item_expr, e.time_expr, e.list, weights, half_life, max_interests, join_similarity, popularity_half_life)
        RETURNING id INTO src;
    EXCEPTION WHEN check_violation THEN
        -- A setting out of its range: the table's CHECK constraint is the
        -- one definition of the range, named here with the setting.
        GET STACKED DIAGNOSTICS bad_setting = CONSTRAINT_NAME;
        SELECT pg_get_constraintdef(c.oid) INTO bad_rule FROM pg_constraint c
        WHERE c.conrelid = 'interest.event_sources'::pg_catalog.regclass AND c.conname = bad_setting;
        bad_setting := regexp_replace(bad_setting, '^event_sources_(.*)_check$', '\1');
        RAISE EXCEPTION 'invalid %', bad_setting USING ERRCODE = '22023',
            DETAIL = format('Got %s => %s; it must satisfy %s.', bad_setting, coalesce(args ->> bad_setting, 'NULL'), bad_rule),
            HINT = format('Leave %s out to take its default.', bad_setting);
    END;

    -- The trigger functions (see src/triggers/events.rs): inserts are queued
    -- or applied in one pass; deletes and updates rewrite co-visitation and
    -- recompute the users concerned from the table.
    PERFORM interest._create_trigger_functions('event', src, interest._event_trigger_functions(src, e.list));
    PERFORM interest._create_triggers('event', events, src);
    RETURN src;
END $$;
REVOKE ALL ON FUNCTION interest._register_events(regclass, jsonb) FROM PUBLIC;
COMMENT ON FUNCTION interest.attach_events(regclass, name, name, name, name, name, jsonb, name, interval, regclass, integer, real, interval) IS
    'Maintains every user''s time-decayed, multi-interest state from an existing events table (statement triggers with transition tables).';

CREATE FUNCTION interest.detach_events(events regclass) RETURNS boolean
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$ SELECT interest._privileged('detach', events, '{"kind": "event"}') = 1 $$;
COMMENT ON FUNCTION interest.detach_events(regclass) IS 'Removes the triggers and interest state of attach_events; the table and its rows are untouched.';

-- A source's bookkeeping rows (the application's tables and rows are
-- untouched); callers check who asks.
CREATE FUNCTION interest._delete_bookkeeping(kind text, src integer) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF kind NOT IN ('item', 'event') THEN
        RAISE EXCEPTION 'invalid source kind "%"', kind USING ERRCODE = '22023', HINT = 'kind is item or event.';
    END IF;
    IF kind = 'item' THEN
        DELETE FROM interest.item_embeddings WHERE source_id = src;
        DELETE FROM interest.catalog_changes WHERE source_id = src;
        UPDATE interest.event_sources SET item_source_id = NULL WHERE item_source_id = src;
        DELETE FROM interest.item_sources WHERE id = src;
    ELSE
        DELETE FROM interest.user_interests WHERE source_id = src;
        DELETE FROM interest.user_states WHERE source_id = src;
        DELETE FROM interest.pending_events WHERE source_id = src;
        DELETE FROM interest.user_profiles WHERE source_id = src;
        DELETE FROM interest.user_recent WHERE source_id = src;
        DELETE FROM interest.item_stats WHERE source_id = src;
        DELETE FROM interest.item_links WHERE source_id = src;
        DELETE FROM interest.event_queue WHERE source_id = src;
        DELETE FROM interest.rewrite_queue WHERE source_id = src;
        DELETE FROM interest.event_sources WHERE id = src;
    END IF;
END $$;
REVOKE ALL ON FUNCTION interest._delete_bookkeeping(text, integer) FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- DDL on attached tables (event triggers). DROP TABLE forgets the table's
-- bookkeeping and trigger functions. ALTER TABLE follows renamed tables and
-- columns and changed column types (expressions and trigger functions are
-- rebuilt); dropping a column pg_interest reads is refused, as is a change
-- that breaks an items table's text expression. TRUNCATE: src/triggers.
-- ---------------------------------------------------------------------------

-- Before an ALTER TABLE: the column numbers of every attached column, so
-- that afterwards a renamed column is found by its number.
CREATE FUNCTION interest._ddl_remember_columns() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM set_config('pg_interest.ddl_columns', coalesce((
        SELECT jsonb_object_agg(c.rel, c.cols)::pg_catalog.text FROM (
            SELECT s.relid::pg_catalog.oid::pg_catalog.text AS rel, jsonb_object_agg(a.attname, a.attnum) AS cols
            FROM (SELECT relid, unnest(columns) AS col FROM interest.event_sources
                  UNION SELECT relid, id_column FROM interest.item_sources
                  UNION SELECT relid, embedding_column FROM interest.item_sources) s
            JOIN pg_attribute a ON a.attrelid = s.relid AND a.attname = s.col AND NOT a.attisdropped
            GROUP BY s.relid) c), '{}'), true);
END $$;

-- A stored column's name now: followed through a RENAME by its number.
CREATE FUNCTION interest._column_now(rel regclass, col name, what text) RETURNS name
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    num int2 := (coalesce(nullif(current_setting('pg_interest.ddl_columns', true), ''), '{}')::pg_catalog.jsonb
                 -> rel::pg_catalog.oid::pg_catalog.text ->> col)::int2;
    now_name name;
BEGIN
    IF col IS NULL THEN RETURN NULL; END IF;
    SELECT attname INTO now_name FROM pg_attribute
    WHERE attrelid = rel AND NOT attisdropped AND attnum > 0 AND (attnum = num OR (num IS NULL AND attname = col));
    IF now_name IS NULL THEN
        RAISE EXCEPTION 'column "%" of % is read by pg_interest', col, rel USING ERRCODE = '2BP01',
            DETAIL = format('It is the %s column of the attached table.', what),
            HINT = format('Detach the table first (interest.detach_%s), then attach it again with its new columns.',
                          CASE WHEN what IN ('id', 'embedding') THEN 'items' ELSE 'events' END);
    END IF;
    RETURN now_name;
END $$;

-- After an ALTER TABLE of an attached table: its stored column names,
-- expressions and trigger functions, rebuilt from the table as it is now.
-- A privileged step (interest._privileged: it replaces the trigger functions
-- in schema interest) that evaluates no SQL of the table's owner (catalog
-- reads and format() only).
-- After DDL on an attached table: the triggers of partitions created,
-- attached or detached since. Only when the table has its own triggers: a
-- restore creates them after the table's constraints, whose ALTER TABLE
-- brings us here, and must find none of them made already.
CREATE FUNCTION interest._refresh_partition_triggers(kind text, rel regclass, src integer) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = rel
               AND g.tgfoid = to_regproc(interest._trigger_function(kind, src, 'ins'))) THEN
        PERFORM interest._create_triggers(kind, rel, src);
    END IF;
END $$;
REVOKE ALL ON FUNCTION interest._refresh_partition_triggers(text, regclass, integer) FROM PUBLIC;

CREATE FUNCTION interest._refresh_attached(rel regclass, args jsonb) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, interest, pg_temp AS $$
DECLARE
    s record;
    cols name[];
    e record;
    what text[] := ARRAY['user', 'item', 'time', 'type', 'weight', 'text'];
BEGIN
    PERFORM interest._require_owner(rel);
    FOR s IN SELECT * FROM interest.event_sources WHERE relid = rel LOOP
        SELECT array_agg(interest._column_now(rel, s.columns[i], what[i]) ORDER BY i) INTO cols
        FROM generate_series(1, 6) i;
        SELECT * INTO e FROM interest._event_expressions(rel, cols, s.weights);
        IF cols IS DISTINCT FROM s.columns OR e.list IS DISTINCT FROM s.select_list
           OR e.user_match_any IS DISTINCT FROM s.user_match_any THEN
            UPDATE interest.event_sources SET columns = cols, user_expr = e.user_expr, user_match = e.user_match,
                user_match_any = e.user_match_any, item_expr = e.item_expr, time_expr = e.time_expr, select_list = e.list
            WHERE id = s.id;
            PERFORM interest._create_trigger_functions('event', s.id, interest._event_trigger_functions(s.id, e.list));
        END IF;
        -- partitions attached or detached since
        PERFORM interest._refresh_partition_triggers('event', rel, s.id);
    END LOOP;
    FOR s IN SELECT * FROM interest.item_sources WHERE relid = rel LOOP
        cols := ARRAY[interest._column_now(rel, s.id_column, 'id'), interest._column_now(rel, s.embedding_column, 'embedding')];
        IF cols IS DISTINCT FROM ARRAY[s.id_column, s.embedding_column] THEN
            UPDATE interest.item_sources SET id_column = cols[1], embedding_column = cols[2] WHERE id = s.id;
            PERFORM interest._create_trigger_functions('item', s.id, interest._item_functions(s.id));
        END IF;
        PERFORM interest._refresh_partition_triggers('item', rel, s.id);
    END LOOP;
    RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION interest._refresh_attached(regclass, jsonb) FROM PUBLIC;

-- Runs with the rights of the role that altered the table, who owns it and
-- so sees its settings rows (row_security on: pg_restore turns it off, and
-- a role subject to the settings tables' policies would then be refused). An items table's text expression is checked by
-- evaluating it as the table's owner (interest._check_text_expression).
CREATE FUNCTION interest._ddl_altered() RETURNS event_trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET row_security = on AS $$
DECLARE
    rel regclass;
    expr text;
BEGIN
    FOR rel IN SELECT DISTINCT c.objid::pg_catalog.regclass FROM pg_event_trigger_ddl_commands() c
               WHERE c.classid = 'pg_class'::pg_catalog.regclass
                 AND (c.objid IN (SELECT relid FROM interest.event_sources) OR c.objid IN (SELECT relid FROM interest.item_sources)) LOOP
        PERFORM interest._privileged('refresh', rel, '{}');
        SELECT s.text_expr INTO expr FROM interest.item_sources s WHERE s.relid = rel AND s.text_expr IS NOT NULL;
        CONTINUE WHEN expr IS NULL;
        BEGIN
            PERFORM interest._check_text_expression(rel);
        EXCEPTION WHEN OTHERS THEN
            RAISE EXCEPTION 'the text expression pg_interest embeds for % no longer works', rel USING ERRCODE = '2BP01',
                DETAIL = format('%s: %s', expr, SQLERRM),
                HINT = 'Detach the table first (interest.detach_items), then attach it again with a text expression over its new columns.';
        END;
    END LOOP;
END $$;

-- DROP TABLE (or DROP SCHEMA ... CASCADE, DROP OWNED) of an attached table:
-- its bookkeeping and trigger functions go with it. Only objects PostgreSQL
-- reports dropped are touched, so definer rights give nothing away.
CREATE FUNCTION interest._ddl_dropped() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, interest, pg_temp AS $$
DECLARE
    src record;
    op text;
BEGIN
    FOR src IN SELECT 'event' AS kind, s.id FROM pg_event_trigger_dropped_objects() d
               JOIN interest.event_sources s ON s.relid::pg_catalog.oid = d.objid
               WHERE d.classid = 'pg_class'::pg_catalog.regclass AND d.objsubid = 0
               UNION ALL
               SELECT 'item', s.id FROM pg_event_trigger_dropped_objects() d
               JOIN interest.item_sources s ON s.relid::pg_catalog.oid = d.objid
               WHERE d.classid = 'pg_class'::pg_catalog.regclass AND d.objsubid = 0 LOOP
        FOREACH op IN ARRAY interest._trigger_ops() LOOP
            BEGIN
                EXECUTE format('DROP FUNCTION IF EXISTS %s()', interest._trigger_function(src.kind, src.id, op));
            EXCEPTION WHEN OTHERS THEN
                -- Something else of the user's depends on it: the function
                -- stays (harmless without its trigger); the bookkeeping goes.
                RAISE WARNING 'pg_interest: could not drop %() (%)', interest._trigger_function(src.kind, src.id, op), SQLERRM
                    USING DETAIL = 'The trigger function of a dropped table is still referenced.',
                          HINT = 'Drop it by hand once nothing uses it.';
            END;
        END LOOP;
        PERFORM interest._delete_bookkeeping(src.kind, src.id);
    END LOOP;
    -- A vector index index_items built, dropped by hand: no longer wanted,
    -- so the queue folder does not build it again (index_items' own swap
    -- drops the old index, then records itself).
    UPDATE interest.item_sources s SET vector_index = NULL
    FROM pg_event_trigger_dropped_objects() d
    WHERE d.classid = 'pg_class'::pg_catalog.regclass AND d.objsubid = 0 AND d.object_type = 'index'
      AND d.schema_name = 'interest' AND d.object_name = interest._items_index_name(s.id)
      AND s.vector_index IS NOT NULL;
END $$;

-- CREATE TABLE ... PARTITION OF an attached table (at any depth): the new
-- partition gets the table's triggers (ATTACH PARTITION is an ALTER TABLE of
-- the attached table: interest._ddl_altered).
CREATE FUNCTION interest._ddl_created() RETURNS event_trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET row_security = on AS $$
DECLARE rel regclass;
BEGIN
    FOR rel IN SELECT DISTINCT a.relid FROM pg_event_trigger_ddl_commands() c, pg_partition_ancestors(c.objid) a
               WHERE c.classid = 'pg_class'::pg_catalog.regclass AND c.objsubid = 0 AND a.relid <> c.objid
                 AND (a.relid IN (SELECT relid FROM interest.event_sources) OR a.relid IN (SELECT relid FROM interest.item_sources)) LOOP
        PERFORM interest._privileged('refresh', rel, '{}');
    END LOOP;
END $$;

CREATE EVENT TRIGGER interest_ddl_remember_columns ON ddl_command_start WHEN TAG IN ('ALTER TABLE')
    EXECUTE FUNCTION interest._ddl_remember_columns();
CREATE EVENT TRIGGER interest_ddl_altered ON ddl_command_end WHEN TAG IN ('ALTER TABLE')
    EXECUTE FUNCTION interest._ddl_altered();
CREATE EVENT TRIGGER interest_ddl_created ON ddl_command_end WHEN TAG IN ('CREATE TABLE')
    EXECUTE FUNCTION interest._ddl_created();
CREATE EVENT TRIGGER interest_ddl_dropped ON sql_drop
    EXECUTE FUNCTION interest._ddl_dropped();

-- Embeds the rows that have no embedding yet, batch by batch in key order,
-- committing after each batch: interrupt it at any time, CALL it again to resume.
-- No SET clause: a procedure with one cannot COMMIT. It runs with the caller's
-- rights, and every name in it is schema-qualified or a keyword (so that no
-- temporary type of the caller's stands in for a built-in one).
CREATE PROCEDURE interest.backfill_items(items regclass, batch_size integer DEFAULT 256)
LANGUAGE plpgsql AS $$
DECLARE
    s interest.item_sources;
    id_expr pg_catalog.text; val_expr pg_catalog.text; call pg_catalog.text;
    last_key pg_catalog.text := NULL;
    keys pg_catalog.text[]; vals pg_catalog.text[];
    seen bigint := 0; embedded bigint := 0; total bigint;
    saved_path pg_catalog.text;
BEGIN
    -- A procedure that commits cannot have a SET clause: its search_path is
    -- pinned here, for this transaction and again after each COMMIT, and
    -- the caller's is put back at the end.
    saved_path := pg_catalog.current_setting('search_path');
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    PERFORM interest._require_owner(items);
    PERFORM interest._require_writable('interest.backfill_items()');
    IF batch_size IS NULL OR batch_size < 1 THEN
        RAISE EXCEPTION 'batch_size must be at least 1' USING ERRCODE = '22023',
            DETAIL = pg_catalog.format('Got batch_size => %s.', coalesce(batch_size::pg_catalog.text, 'NULL')), HINT = 'Pass a positive number of rows per batch, or leave it out for the default.';
    END IF;
    SELECT * INTO s FROM interest.item_sources WHERE relid = items;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'table % is not attached', items USING ERRCODE = '55000',
            DETAIL = 'interest.item_sources has no row for it.', HINT = 'Call interest.attach_items first.';
    END IF;
    -- The table is read as its owner (interest._backfill_batch), never with
    -- a superuser caller's rights.
    id_expr := pg_catalog.format('%I', s.id_column);
    val_expr := CASE WHEN s.text_expr IS NOT NULL THEN pg_catalog.format('(%s)::pg_catalog.text', s.text_expr)
                     ELSE pg_catalog.format('(%I)::interest.embedding::pg_catalog.text', s.embedding_column) END;
    call := CASE WHEN s.text_expr IS NOT NULL THEN 'interest._items_changed' ELSE 'interest._items_set' END;
    EXECUTE pg_catalog.format('SELECT pg_catalog.count(*) FROM %s', items) INTO total;
    LOOP
        -- Keyset pagination in the key's own order (int, bigint, text, uuid).
        SELECT b.keys, b.vals INTO keys, vals FROM interest._backfill_batch(items,
            pg_catalog.format('SELECT pg_catalog.array_agg(k ORDER BY o), pg_catalog.array_agg(v ORDER BY o) FROM (SELECT %s::pg_catalog.text, %s, %s FROM %s WHERE $1 IS NULL OR %s > $1::%s ORDER BY 3 LIMIT %s) t(k, v, o)',
                       id_expr, val_expr, id_expr, items, id_expr,
                       pg_catalog.format_type((SELECT a.atttypid FROM pg_catalog.pg_attribute a WHERE a.attrelid OPERATOR(pg_catalog.=) items AND a.attname OPERATOR(pg_catalog.=) s.id_column), NULL),
                       batch_size), last_key) b;
        EXIT WHEN keys IS NULL;
        seen := seen + pg_catalog.cardinality(keys);
        last_key := keys[pg_catalog.cardinality(keys)];
        SELECT m.keys, m.vals INTO keys, vals FROM interest._missing_items(s.id, keys, vals) m;
        IF pg_catalog.cardinality(keys) > 0 THEN
            EXECUTE pg_catalog.format('SELECT %s($1, $2, $3)', call) INTO STRICT embedded USING s.id, keys, vals;
        END IF;
        RAISE NOTICE 'backfill %: % of % rows checked', items, seen, total;
        COMMIT;
        PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    END LOOP;
    PERFORM pg_catalog.set_config('search_path', saved_path, true);
END $$;
COMMENT ON PROCEDURE interest.backfill_items(regclass, integer) IS
    'Embeds existing rows of an attached items table that have no embedding, committing per batch with a NOTICE; CALL it again to resume.';
