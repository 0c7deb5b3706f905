//! What the triggers on attached tables run: the trigger functions'
//! PL/pgSQL (generated here, at attach time) and the SECURITY DEFINER entry
//! points they call.

pub(crate) mod events;
pub(crate) mod items;

/// Wraps trigger statements in the failure guard: an error in bookkeeping is
/// logged and reported as a WARNING, never raised to the application.
fn guarded(body: &str, rel: pgrx::pg_sys::Oid) -> String {
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
        PERFORM interest._bookkeeping_failed({rel}::oid::regclass, false, SQLSTATE, SQLERRM, err_detail);
    END;
    RETURN NULL;
END"#,
        rel = rel.to_u32()
    )
}

/// `CREATE FUNCTION name() RETURNS trigger ...` with `body` dollar-quoted.
fn trigger_function(name: &str, search_path: &str, body: &str) -> String {
    assert!(
        !body.contains("$pg_interest$"),
        "trigger body holds its own quote tag"
    );
    format!(
        "CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql SET search_path = {search_path} AS $pg_interest${body}$pg_interest$"
    )
}
