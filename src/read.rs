//! The read side of user interests: what a reader sees of a user (state and
//! recent items with their queued events folded in), `user_vector`,
//! `interests`, and the status views.

use crate::embedding_type::Embedding;
use crate::models::embed_texts;
use crate::owner_read::{as_table_owner, owner_rows, reader_sees_user};
use crate::privileges::with_extension_rights;
use crate::sources::text_model;
use crate::sources::{decode_event, readable_event_source, EventSource};
use crate::spi::{read_cached, spi_error};
use crate::store::{center, items, profiles, rewrites, states};
use interest_core::events::{Event, EventRow, Subject};
use interest_core::interest_state::InterestState;
use interest_core::interest_summary::summarize;
use interest_core::queued_overlay::{overlay_queued, QueuedEvent};
use pgrx::prelude::*;
use std::collections::HashMap;

/// What readers see of a user: the stored state and recent items with the
/// user's queued events folded in, exactly as the next fold will store them.
pub(crate) struct UserView {
    pub state: Option<InterestState>,
    /// Most recent last (the context co-visitation scores from).
    pub recent: Vec<String>,
}

pub(crate) fn load_user(src: &EventSource, user_key: &str) -> UserView {
    if !reader_sees_user(src, user_key) {
        return UserView {
            state: None,
            recent: Vec::new(),
        };
    }
    if rewrites::pending_for(src.id, user_key) {
        return replayed_user(src, user_key);
    }
    // One statement, so one snapshot: a fold that commits meanwhile can
    // neither hide a queued event nor count it twice.
    let sql = format!(
        "SELECT 0 AS part, i.slot, {state}, \
                NULL::int8 AS seq, NULL::text AS user_key, NULL::text AS item_key, NULL::float8 AS t, \
                NULL::float8 AS weight, NULL::text AS event_text, NULL::interest.embedding AS embedding, \
                NULL::text[] AS recent_items, NULL::float8[] AS recent_times \
         FROM interest.user_states s \
         LEFT JOIN interest.user_interests i ON i.source_id = s.source_id AND i.user_key = s.user_key \
         WHERE s.source_id = $1 AND s.user_key = $2 \
         UNION ALL \
         SELECT 1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
                q.seq, q.user_key, q.item_key, q.t, q.weight, NULL, q.embedding, NULL, NULL \
         FROM interest.event_queue q WHERE q.source_id = $1 AND q.user_key = $2 \
         UNION ALL \
         SELECT 2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
                NULL, NULL, NULL, NULL, NULL, NULL, NULL, r.items, r.times \
         FROM interest.user_recent r WHERE r.source_id = $1 AND r.user_key = $2 \
         ORDER BY part, slot, seq",
        state = states::STATE_COLUMNS
    );
    let (mut state, queued, (mut recent_items, mut recent_times)) =
        read_cached(&sql, &[src.id.into(), user_key.into()], |t| {
            let mut state: Option<InterestState> = None;
            let mut queued = Vec::new();
            let mut recent = (Vec::new(), Vec::new());
            for r in t {
                match r.get_by_name::<i32, _>("part")? {
                    Some(0) => states::add_state_row(&mut state, &r)?,
                    Some(1) => {
                        let e = decode_event(&r)?;
                        queued.push(QueuedEvent {
                            item: e.item,
                            t: e.t.unwrap_or(0.0),
                            weight: e.weight.unwrap_or(0.0),
                            vector: e.vector,
                        });
                    }
                    _ => {
                        recent = (
                            r.get_by_name::<Vec<String>, _>("recent_items")?
                                .unwrap_or_default(),
                            r.get_by_name::<Vec<f64>, _>("recent_times")?
                                .unwrap_or_default(),
                        )
                    }
                }
            }
            Ok((state, queued, recent))
        });
    if !queued.is_empty() {
        let keys: Vec<String> = queued.iter().filter_map(|q| q.item.clone()).collect();
        let vectors = match src.item_source_id {
            Some(item_source) => items::vectors(item_source, &keys),
            None => HashMap::new(),
        };
        let center = center::peek(src);
        overlay_queued(
            &mut state,
            &mut recent_items,
            &mut recent_times,
            queued,
            |item| vectors.get(item).cloned(),
            &src.params,
            &src.covisit,
            center.as_deref().map(Vec::as_slice),
        );
    }
    UserView {
        state,
        recent: recent_items,
    }
}

/// A user with a deferred DELETE, UPDATE or TRUNCATE: replayed from the
/// table and the profile, as the next fold will do (its queued events are
/// table rows too).
fn replayed_user(src: &EventSource, user_key: &str) -> UserView {
    let mut rows = owner_rows(src, Some(&[user_key.to_string()]));
    rows.sort_by(|(a, ra), (b, rb)| {
        let t = |e: &EventRow| e.t.unwrap_or(f64::INFINITY);
        t(a).total_cmp(&t(b)).then(ra.cmp(rb))
    });
    let rows = rows.into_iter().map(|(e, _)| e);
    // Keys equal in the column's type but spelled otherwise are other users.
    let events: Vec<Event> = rows
        .into_iter()
        .filter(|r| r.user.as_deref() == Some(user_key))
        .filter_map(EventRow::accept)
        .collect();
    let texts: Vec<&str> = events
        .iter()
        .filter_map(|e| match &e.subject {
            Subject::Text(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    let mut embedded = if texts.is_empty() {
        Vec::new()
    } else {
        embed_texts(&text_model(src), &texts)
    }
    .into_iter();
    let mut history: Vec<QueuedEvent> = events
        .iter()
        .map(|e| {
            let (item, vector) = match &e.subject {
                Subject::Item(item) => (Some(item.clone()), None),
                Subject::Vector(v) => (None, Some(v.clone())),
                Subject::Text(_) => (None, embedded.next()),
            };
            QueuedEvent {
                item,
                t: e.t,
                weight: e.weight,
                vector,
            }
        })
        .collect();
    history.extend(
        profiles::load(src.id, Some(&[user_key.to_string()]))
            .into_iter()
            .map(|(_, p)| QueuedEvent {
                item: None,
                t: p.t,
                weight: p.weight,
                vector: Some(p.vector),
            }),
    );
    let keys: Vec<String> = history.iter().filter_map(|q| q.item.clone()).collect();
    let vectors = match src.item_source_id {
        Some(item_source) => items::vectors(item_source, &keys),
        None => HashMap::new(),
    };
    let center = center::peek(src);
    let (mut state, mut recent_items, mut recent_times) = (None, Vec::new(), Vec::new());
    overlay_queued(
        &mut state,
        &mut recent_items,
        &mut recent_times,
        history,
        |item| vectors.get(item).cloned(),
        &src.params,
        &src.covisit,
        center.as_deref().map(Vec::as_slice),
    );
    UserView {
        state,
        recent: recent_items,
    }
}

/// The user's interest vector: sub-interests combined by decayed weight.
/// NULL for a user with no (applied) events.
#[pg_extern(stable, parallel_unsafe)]
#[search_path(pg_catalog, interest, pg_temp)]
fn _user_vector(user_key: Option<&str>, source_id: i32) -> Option<Embedding> {
    let user_key = crate::errors::required(user_key, "user_key");
    with_extension_rights(|| {
        let src = readable_event_source(source_id);
        let state = load_user(&src, user_key).state?;
        state.user_vector().map(Embedding::new)
    })
}

/// Recent items `interests()` names per sub-interest.
const NEAREST_RECENT_ITEMS: usize = 3;

/// Each sub-interest of a user: its vector, share of the decayed weight, last
/// event, event count, and the user's recent items nearest to it.
#[pg_extern(stable, parallel_unsafe)]
#[search_path(pg_catalog, interest, pg_temp)]
fn _interests(
    user_key: Option<&str>,
    source_id: i32,
) -> TableIterator<
    'static,
    (
        name!(slot, i32),
        name!(weight, f64),
        name!(last_seen_epoch, f64),
        name!(events, i64),
        name!(centroid, Embedding),
        name!(recent_items, Vec<String>),
    ),
> {
    let user_key = crate::errors::required(user_key, "user_key");
    with_extension_rights(|| {
        let src = readable_event_source(source_id);
        let Some(state) = load_user(&src, user_key).state else {
            return TableIterator::new(Vec::new());
        };
        // The user's 50 most recent items and their vectors.
        let recent_sql = format!(
            "SELECT i FROM (SELECT {item} AS i, max({time}) AS t FROM {rel} WHERE {user} AND {item} IS NOT NULL \
             GROUP BY 1 ORDER BY 2 DESC LIMIT 50) s",
            item = src.item_expr,
            time = src.time_expr,
            rel = src.relname,
            user = src.user_match
        );
        let recent: Vec<String> = as_table_owner(src.relid, || {
            crate::spi::column(&recent_sql, &[user_key.into()])
        });
        let vectors = match src.item_source_id {
            Some(item_source) => items::vectors(item_source, &recent),
            None => HashMap::new(),
        };
        let recent: Vec<(String, Vec<f32>)> = recent
            .into_iter()
            .filter_map(|k| vectors.get(&k).cloned().map(|v| (k, v)))
            .collect();
        let rows: Vec<_> = summarize(&state, &recent, NEAREST_RECENT_ITEMS)
            .into_iter()
            .map(|s| {
                let row = (s.slot as i32, s.share, s.last_seen, s.events as i64);
                (
                    row.0,
                    row.1,
                    row.2,
                    row.3,
                    Embedding::new(s.direction),
                    s.nearest_recent,
                )
            })
            .collect();
        TableIterator::new(rows)
    })
}

/// Per attached items table: rows (estimate), embedded items, events waiting for items.
#[pg_extern(stable, parallel_unsafe)]
#[search_path(pg_catalog, interest, pg_temp)]
fn _item_status() -> TableIterator<
    'static,
    (
        name!(items, String),
        name!(row_estimate, i64),
        name!(embedded, i64),
        name!(pending_events, i64),
    ),
> {
    with_extension_rights(|| {
        let rows = Spi::connect(|c| {
            c.select(
                "SELECT s.relid::regclass::text, greatest(c.reltuples, 0)::int8, \
                        (SELECT count(*) FROM interest.item_embeddings e WHERE e.source_id = s.id), \
                        (SELECT count(*) FROM interest.pending_events p JOIN interest.event_sources es ON es.id = p.source_id WHERE es.item_source_id = s.id) \
                 FROM interest.item_sources s JOIN pg_class c ON c.oid = s.relid \
             WHERE pg_catalog.has_table_privilege($1, s.relid, 'SELECT, INSERT, UPDATE, DELETE') ORDER BY 1",
                None,
                &[crate::privileges::caller().into()],
            )?
            .map(|r| {
                Ok((
                    r.get::<String>(1)?.unwrap_or_default(),
                    r.get::<i64>(2)?.unwrap_or(0),
                    r.get::<i64>(3)?.unwrap_or(0),
                    r.get::<i64>(4)?.unwrap_or(0),
                ))
            })
            .collect::<Result<Vec<_>, pgrx::spi::Error>>()
        })
        .unwrap_or_else(|e| spi_error(e));
        TableIterator::new(rows)
    })
}

/// Per attached events table: users with a state, queued events, events
/// waiting for their item, the last fold.
#[pg_extern(stable, parallel_unsafe)]
#[search_path(pg_catalog, interest, pg_temp)]
fn _event_status() -> TableIterator<
    'static,
    (
        name!(events, String),
        name!(users, i64),
        name!(queued_events, i64),
        name!(pending_events, i64),
        name!(folded_at, Option<pgrx::datum::TimestampWithTimeZone>),
    ),
> {
    with_extension_rights(|| {
        let rows = Spi::connect(|c| {
            c.select(
                "SELECT s.relid::regclass::text, \
                        (SELECT count(*) FROM interest.user_states u WHERE u.source_id = s.id), \
                        (SELECT count(*) FROM interest.event_queue q WHERE q.source_id = s.id), \
                        (SELECT count(*) FROM interest.pending_events p WHERE p.source_id = s.id), \
                        s.folded_at \
                 FROM interest.event_sources s \
             WHERE pg_catalog.has_table_privilege($1, s.relid, 'SELECT, INSERT, UPDATE, DELETE') ORDER BY 1",
                None,
                &[crate::privileges::caller().into()],
            )?
            .map(|r| {
                Ok((
                    r.get::<String>(1)?.unwrap_or_default(),
                    r.get::<i64>(2)?.unwrap_or(0),
                    r.get::<i64>(3)?.unwrap_or(0),
                    r.get::<i64>(4)?.unwrap_or(0),
                    r.get::<pgrx::datum::TimestampWithTimeZone>(5)?,
                ))
            })
            .collect::<Result<Vec<_>, pgrx::spi::Error>>()
        })
        .unwrap_or_else(|e| spi_error(e));
        TableIterator::new(rows)
    })
}
