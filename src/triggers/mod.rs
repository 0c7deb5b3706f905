//! What the triggers on attached tables run: the trigger functions'
//! PL/pgSQL (generated here, at attach time) and the entry points they call
//! (which check the inserting role's rights, see privileges.rs).

pub(crate) mod events;
pub(crate) mod items;

/// Wraps trigger statements in the failure guard: an error in bookkeeping is
/// logged and reported as a WARNING, never raised to the application. The
/// bodies name their table by `TG_RELID`, never by a stored OID, so they
/// survive pg_dump and restore.
fn guarded(body: &str) -> String {
    guarded_with_fallback(body, "NULL;")
}

/// `guarded`, and after a failure `fallback` in a block of its own: it
/// leaves the statement's rows to the next fold (queued), so that a timeout
/// or a lock wait inside bookkeeping loses nothing; if it fails too, the
/// logged failure stands and `interest.rebuild()` repairs.
fn guarded_with_fallback(body: &str, fallback: &str) -> String {
    format!(
        r#"
DECLARE
    err_detail text;
BEGIN
    BEGIN
        {body}
    -- Not even a statement_timeout inside bookkeeping fails the statement.
    EXCEPTION WHEN query_canceled OR OTHERS THEN
        GET STACKED DIAGNOSTICS err_detail = PG_EXCEPTION_DETAIL;
        PERFORM interest._bookkeeping_failed(TG_RELID::regclass, false, SQLSTATE, SQLERRM, err_detail);
        {}
    END;
    RETURN NULL;
END"#,
        fallback_block(fallback)
    )
}

fn fallback_block(fallback: &str) -> String {
    format!(
        "BEGIN
            {fallback}
        EXCEPTION WHEN query_canceled OR OTHERS THEN
            NULL;
        END;"
    )
}

/// `CREATE OR REPLACE FUNCTION name() RETURNS trigger ...` (replaced when
/// `interest._refresh_attached` follows a RENAME) with `body` dollar-quoted
/// by a tag the body (which holds the owner's expressions) does not contain.
fn trigger_function(name: &str, search_path: &str, body: &str) -> String {
    let tag = (0..)
        .map(|n| format!("$pg_interest_{n}$"))
        .find(|tag| !body.contains(tag.as_str()))
        .unwrap_or_default();
    format!("CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql SET search_path = {search_path}, pg_temp AS {tag}{body}{tag}")
}
