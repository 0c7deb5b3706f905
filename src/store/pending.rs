//! `pending_events`: events whose item has no embedding yet, kept until it
//! arrives.

use crate::sources::decode_event;
use crate::spi::{column, exec, spi_error};
use interest_core::events::{Event, EventRow};
use pgrx::prelude::*;

pub(crate) fn insert(source_id: i32, events: &[Event]) {
    let (mut u, mut i, mut t, mut w) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for e in events {
        let Some(item) = e.item() else { continue };
        u.push(e.user.clone());
        i.push(item.to_string());
        t.push(e.t);
        w.push(e.weight);
    }
    if u.is_empty() {
        return;
    }
    exec(
        "INSERT INTO interest.pending_events (source_id, user_key, item_key, t, weight) \
         SELECT $1, u, i, t, w FROM unnest($2::text[], $3::text[], $4::float8[], $5::float8[]) AS p(u, i, t, w)",
        &[source_id.into(), u.into(), i.into(), t.into(), w.into()],
    );
}

/// The event sources whose events wait on this items table's items.
pub(crate) fn sources_of_items(item_source: i32) -> Vec<i32> {
    column::<i32>(
        "SELECT id FROM interest.event_sources WHERE item_source_id = $1 ORDER BY id",
        &[item_source.into()],
    )
}

/// Claims (deletes and returns) the events waiting for `keys`, in time order.
pub(crate) fn claim_for_items(source_id: i32, keys: &[String]) -> Vec<EventRow> {
    claim(
        "item_key IN (SELECT unnest($2::text[]))",
        &[source_id.into(), keys.to_vec().into()],
    )
}

/// Claims the events whose item has an embedding by now: it arrived while
/// the event source was locked, and the fold applies them.
pub(crate) fn claim_embedded(source_id: i32, item_source: i32) -> Vec<EventRow> {
    claim(
        "EXISTS (SELECT 1 FROM interest.item_embeddings e WHERE e.source_id = $2::integer AND e.item_key = p.item_key)",
        &[source_id.into(), item_source.into()],
    )
}

fn claim(condition: &str, args: &[pgrx::datum::DatumWithOid]) -> Vec<EventRow> {
    let query = format!(
        "WITH d AS (DELETE FROM interest.pending_events p WHERE source_id = $1 AND {condition} \
                    RETURNING user_key, item_key, t, weight) \
         SELECT user_key, item_key, t, weight, NULL::text AS event_text, NULL::interest.embedding AS embedding \
         FROM d ORDER BY t"
    );
    Spi::connect_mut(|c| {
        c.update(&query, None, args)?
            .map(|r| decode_event(&r))
            .collect::<Result<Vec<_>, pgrx::spi::Error>>()
    })
    .unwrap_or_else(|e| spi_error(e))
}

/// Forgets the users' pending events (`None`: every user of the source).
pub(crate) fn delete(source_id: i32, users: Option<&[String]>) {
    super::states::delete_rows("pending_events", source_id, users);
}
