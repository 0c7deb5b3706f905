//! `bookkeeping_errors`, for failures found inside the Rust bookkeeping
//! (the triggers log the errors they catch through `interest._bookkeeping_failed`).

use crate::sources::EventSource;
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

/// The kinds of rows the bookkeeping skips as bad values (the application's
/// rows are stored; the statement's other rows count).
pub(crate) enum BadRows {
    /// Events with an infinite or NaN time or weight, or a weight beyond
    /// `events::MAX_ABS_WEIGHT`.
    NotFinite,
    /// Events with a user or item key longer than `keys::MAX_KEY_BYTES`.
    LongEventKeys,
    /// Items with such a key: not embedded.
    LongItemKeys,
    /// Items whose embedding has another dimension than the table's items
    /// (the given one): not stored.
    OtherDimensions(usize),
}

impl BadRows {
    /// (message, rows, what did not happen to them, what the first key is,
    /// the rule broken, hint)
    fn notice(
        &self,
    ) -> (
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        String,
        &'static str,
    ) {
        match self {
            BadRows::NotFinite => (
                "event with an infinite, NaN or out-of-range time or weight skipped",
                "event(s)", "applied", "user ",
                format!("interests need finite times and weights of magnitude at most {MAX_ABS_WEIGHT:e}."),
                "Store finite times and weights (not 'infinity' or NaN); fix the rows to have them counted.",
            ),
            BadRows::LongEventKeys => (
                "event with an over-long user or item key skipped",
                "event(s)", "applied", "user ",
                format!("user and item keys may have at most {MAX_KEY_BYTES} bytes."),
                "Use shorter keys (an id, or a hash of a long one); fix the rows to have them counted.",
            ),
            BadRows::LongItemKeys => (
                "item with an over-long key not embedded",
                "item(s)", "embedded", "",
                format!("item keys may have at most {MAX_KEY_BYTES} bytes."),
                "Use shorter keys (an id, or a hash of a long one) for the items to be recommended.",
            ),
            BadRows::OtherDimensions(dims) => (
                "item embedding of another dimension not stored",
                "item(s)", "stored", "",
                format!("the table's items have {dims} dimensions, and one table's items share one."),
                "Store embeddings of one model; to change the dimension, detach_items and attach the table again.",
            ),
        }
    }
}

impl SkippedRows {
    /// One WARNING and one bookkeeping_errors row for the statement's
    /// skipped rows of a kind (nothing when there are none).
    pub(crate) fn report(&self, relid: pg_sys::Oid, relname: &str, kind: BadRows) {
        if self.count == 0 {
            return;
        }
        let (message, rows, not_done, first_is, rule, hint) = kind.notice();
        let detail = format!(
            "{} {rows} of {relname} were not {not_done} (first: {first_is}{}); {rule}",
            self.count, self.first
        );
        log_skipped_events(relid, message, message, detail, hint);
    }
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
