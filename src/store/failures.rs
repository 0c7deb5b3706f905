//! `bookkeeping_errors`, for failures found inside the Rust bookkeeping
//! (the triggers log the errors they catch through `interest._bookkeeping_failed`).

use crate::sources::EventSource;
use crate::spi::exec;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::PgSqlErrorCode;

/// Events left out of users' states because their vector's dimension
/// differs from the state's, as (user, state's, event's): a WARNING and a
/// row in bookkeeping_errors. One bad event must not hold up the others.
pub(crate) fn report_skipped(src: &EventSource, skipped: &[(String, usize, usize)]) {
    let Some((user, left, right)) = skipped.first() else {
        return;
    };
    let message = format!("different embedding dimensions {left} and {right}");
    let detail = format!(
        "{} event(s) were not applied to the users' interests (first: user {user}); the user's state has {left} dimensions, the event's item {right}.",
        skipped.len()
    );
    let warning = format!("event of {} not applied ({message})", src.relname);
    log_skipped_events(src, &message, &warning, detail,
        "Items and text events of one events table must use one model; interest.rebuild() recomputes the state.");
}

/// Rows skipped for an infinite or NaN time or weight: a WARNING and a row
/// in bookkeeping_errors. The application's rows are stored; the rest of the
/// statement's events are applied.
pub(crate) fn report_not_finite(src: &EventSource, count: usize, first_user: &str) {
    if count == 0 {
        return;
    }
    let message = "event with an infinite or NaN time or weight skipped";
    let detail = format!(
        "{count} event(s) of {} were not applied (first: user {first_user}); interests need finite times and weights.",
        src.relname
    );
    log_skipped_events(src, message, message, detail,
        "Store finite times and weights (not 'infinity' or NaN); fix the rows to have them counted.");
}

/// Data-exception (22000) events skipped by the bookkeeping: a row in
/// bookkeeping_errors and a WARNING saying the application's rows were stored.
fn log_skipped_events(src: &EventSource, message: &str, warning: &str, detail: String, hint: &str) {
    exec(
        "INSERT INTO interest.bookkeeping_errors (relid, sqlstate, message, detail) VALUES ($1::oid::regclass, '22000', $2, $3)",
        &[src.relid.into(), message.into(), detail.clone().into()],
    );
    ErrorReport::new(
        PgSqlErrorCode::ERRCODE_DATA_EXCEPTION,
        format!("pg_interest: {warning}; the rows were stored"),
        "pg_interest",
    )
    .set_detail(detail)
    .set_hint(hint)
    .report(pgrx::PgLogLevel::WARNING);
}
