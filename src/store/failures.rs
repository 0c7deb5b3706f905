//! `bookkeeping_errors`, for failures found inside the Rust bookkeeping
//! (the triggers log the errors they catch through `interest._bookkeeping_failed`).

use crate::sources::{EventSource, ItemSource};
use crate::spi::exec;
use interest_core::events::MAX_ABS_WEIGHT;
use interest_core::keys::MAX_KEY_BYTES;
use pgrx::pg_sys;
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
    log_skipped_events(src.relid, &message, &warning, detail,
        "Items and text events of one events table must use one model; interest.rebuild() recomputes the state.");
}

/// Rows of one statement skipped for one kind of bad value: how many, and
/// the first one's user (or item) key, shortened for the log.
#[derive(Default)]
pub(crate) struct SkippedRows {
    pub count: usize,
    pub first: String,
}

impl SkippedRows {
    pub fn add(&mut self, key: String) {
        if self.count == 0 {
            self.first = shortened(&key);
        }
        self.count += 1;
    }
}

/// A key as a log line shows it: at most 40 characters, then how long it was.
fn shortened(key: &str) -> String {
    match key.char_indices().nth(40) {
        None => key.to_string(),
        Some((end, _)) => format!("{}... ({} bytes)", &key[..end], key.len()),
    }
}

/// How a kind of skipped rows is logged.
struct SkipNotice<'a> {
    message: &'a str,
    /// What the rows are and what did not happen to them ("event(s)", "applied").
    rows: &'a str,
    not_done: &'a str,
    /// What the first row's key is ("user ", or "" for an item's own key).
    first_is: &'a str,
    rule: String,
    hint: &'a str,
}

impl SkippedRows {
    /// One WARNING and one bookkeeping_errors row for the statement's
    /// skipped rows of a kind (nothing when there are none).
    fn report(&self, relid: pg_sys::Oid, relname: &str, n: SkipNotice) {
        if self.count == 0 {
            return;
        }
        let detail = format!(
            "{} {} of {relname} were not {} (first: {}{}); {}",
            self.count, n.rows, n.not_done, n.first_is, self.first, n.rule
        );
        log_skipped_events(relid, n.message, n.message, detail, n.hint);
    }
}

/// Rows skipped for an infinite or NaN time or weight, or a weight beyond
/// `events::MAX_ABS_WEIGHT`. The application's
/// rows are stored; the rest of the statement's events are applied.
pub(crate) fn report_not_finite(src: &EventSource, skipped: &SkippedRows) {
    skipped.report(src.relid, &src.relname, SkipNotice {
        message: "event with an infinite, NaN or out-of-range time or weight skipped",
        rows: "event(s)",
        not_done: "applied",
        first_is: "user ",
        rule: format!("interests need finite times and weights of magnitude at most {MAX_ABS_WEIGHT:e}."),
        hint: "Store finite times and weights (not 'infinity' or NaN); fix the rows to have them counted.",
    });
}

/// Rows skipped for a user or item key longer than `keys::MAX_KEY_BYTES`.
pub(crate) fn report_long_event_keys(src: &EventSource, skipped: &SkippedRows) {
    skipped.report(src.relid, &src.relname, SkipNotice {
        message: "event with an over-long user or item key skipped",
        rows: "event(s)",
        not_done: "applied",
        first_is: "user ",
        rule: format!("user and item keys may have at most {MAX_KEY_BYTES} bytes."),
        hint: "Use shorter keys (an id, or a hash of a long one); fix the rows to have them counted.",
    });
}

/// Item rows skipped for a key longer than `keys::MAX_KEY_BYTES`: their
/// embeddings are not stored, the statement's other items are.
pub(crate) fn report_long_item_keys(src: &ItemSource, skipped: &SkippedRows) {
    skipped.report(src.relid, &src.relname, SkipNotice {
        message: "item with an over-long key not embedded",
        rows: "item(s)",
        not_done: "embedded",
        first_is: "",
        rule: format!("item keys may have at most {MAX_KEY_BYTES} bytes."),
        hint: "Use shorter keys (an id, or a hash of a long one) for the items to be recommended.",
    });
}

/// Data-exception (22000) rows skipped by the bookkeeping: a row in
/// bookkeeping_errors and a WARNING saying the application's rows were stored.
fn log_skipped_events(
    relid: pg_sys::Oid,
    message: &str,
    warning: &str,
    detail: String,
    hint: &str,
) {
    exec(
        "INSERT INTO interest.bookkeeping_errors (relid, sqlstate, message, detail) VALUES ($1::oid::regclass, '22000', $2, $3)",
        &[relid.into(), message.into(), detail.clone().into()],
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

/// Item rows whose embedding has another dimension than the table's items:
/// not stored, the statement's other items are.
pub(crate) fn report_other_dimensions(src: &ItemSource, skipped: &SkippedRows, dims: usize) {
    skipped.report(src.relid, &src.relname, SkipNotice {
        message: "item embedding of another dimension not stored",
        rows: "item(s)",
        not_done: "stored",
        first_is: "",
        rule: format!("the table's items have {dims} dimensions, and one table's items share one."),
        hint: "Store embeddings of one model; to change the dimension, detach_items and attach the table again.",
    });
}
