//! Attached tables as the bookkeeping sees them: event and item sources,
//! their per-backend cache, the checked loads of the entry points (see
//! privileges.rs), and the one decoder of event rows.
//!
//! Every query that reads events (from the application's table through the
//! stored select list, from the queue, from pending events) names its
//! columns `user_key, item_key, t, weight, event_text, embedding`, and
//! `decode_event` reads them by name: no positional contract between the
//! SQL that builds the select list and the Rust that reads it.

use crate::embedding_type::Embedding;
use crate::errors::raise;
use crate::privileges::{refuse_in_restricted_operation, require_privilege};
use crate::spi::{current, extension_cache, spi_error, ExtensionCache};
use interest_core::covisit::{CovisitParams, POPULARITY_HALF_LIFE_SECS};
use interest_core::events::EventRow;
use interest_core::interest_state::InterestParams;
use interest_core::ranking::RankWeights;
use interest_core::weights::WeightOverrides;
use pgrx::prelude::*;
use pgrx::spi::SpiHeapTupleData;
use pgrx::PgSqlErrorCode;
use std::rc::Rc;

pub(crate) struct EventSource {
    pub id: i32,
    pub relid: pg_sys::Oid,
    pub relname: String,
    pub item_source_id: Option<i32>,
    /// `column = ($1)::type` on the native column, so the application's index is used.
    pub user_match: String,
    /// `column IN (SELECT unnest(($1)::type[]))`, for many users at once.
    pub user_match_any: String,
    pub item_expr: String,
    pub time_expr: String,
    /// The event columns (see the module comment) as expressions over the table.
    pub select_list: String,
    pub params: InterestParams,
    /// recommend()'s weights for this table: those tune() chose, or the defaults.
    pub rank_weights: RankWeights,
    /// Co-visitation and popularity settings: the defaults with the
    /// table's popularity half-life.
    pub covisit: CovisitParams,
}

pub(crate) struct ItemSource {
    pub relid: pg_sys::Oid,
    pub relname: String,
    pub id_column: String,
    pub model: String,
}

thread_local! {
    // Settings cached for one transaction (by local transaction id): a
    // RENAME of the table or of its columns (`interest._refresh_attached`)
    // is seen by the next transaction of every backend.
    static EVENT_SOURCES: ExtensionCache<i32, (pg_sys::LocalTransactionId, Rc<EventSource>)> =
        extension_cache();
}

pub(crate) fn load_event_source(id: i32) -> Rc<EventSource> {
    // SAFETY: MyProc is set in every backend that runs SQL functions.
    let lxid = unsafe { (*pg_sys::MyProc).lxid };
    let cached = EVENT_SOURCES.with(|c| current(c).get(&id).cloned());
    if let Some((at, src)) = cached {
        if at == lxid {
            return src;
        }
    }
    let src = Rc::new(read_event_source(id));
    EVENT_SOURCES.with(|c| current(c).insert(id, (lxid, src.clone())));
    src
}

/// Drops the cached settings of a source this transaction changed.
pub(crate) fn forget_cached_event_source(id: i32) {
    EVENT_SOURCES.with(|c| current(c).remove(&id));
}

fn read_event_source(id: i32) -> EventSource {
    Spi::connect(|c| {
        let t = c.select(
            "SELECT relid::oid AS relid, relid::regclass::text AS relname, item_source_id, user_match, user_match_any, \
                    item_expr, time_expr, select_list, extract(epoch FROM half_life)::float8 AS half_life_secs, \
                    max_interests, join_similarity::float8 AS join_similarity, \
                    extract(epoch FROM popularity_half_life)::float8 AS popularity_half_life_secs, \
                    (rank_weights ->> 'content')::float8 AS w_content, (rank_weights ->> 'covisit')::float8 AS w_covisit, \
                    (rank_weights ->> 'popularity')::float8 AS w_popularity, (rank_weights ->> 'freshness')::float8 AS w_freshness \
             FROM interest.event_sources WHERE id = $1",
            Some(1),
            &[id.into()],
        )?;
        if t.is_empty() {
            return Ok(None);
        }
        let r = t.first();
        let text = |name: &str| -> Result<String, pgrx::spi::Error> {
            Ok(r.get_by_name::<String, _>(name)?.unwrap_or_default())
        };
        Ok::<_, pgrx::spi::Error>(Some(EventSource {
            id,
            relid: r.get_by_name::<pg_sys::Oid, _>("relid")?.unwrap_or(pg_sys::InvalidOid),
            relname: text("relname")?,
            item_source_id: r.get_by_name::<i32, _>("item_source_id")?,
            user_match: text("user_match")?,
            user_match_any: text("user_match_any")?,
            item_expr: text("item_expr")?,
            time_expr: text("time_expr")?,
            select_list: text("select_list")?,
            params: InterestParams {
                half_life_secs: r.get_by_name::<f64, _>("half_life_secs")?.unwrap_or_default(),
                max_interests: r.get_by_name::<i32, _>("max_interests")?.unwrap_or(1) as usize,
                join_similarity: r.get_by_name::<f64, _>("join_similarity")?.unwrap_or_default() as f32,
            },
            covisit: CovisitParams {
                popularity_half_life_secs: r
                    .get_by_name::<f64, _>("popularity_half_life_secs")?
                    .unwrap_or(POPULARITY_HALF_LIFE_SECS),
                ..CovisitParams::default()
            },
            // Weights tune() stored, over the defaults; checked again on use.
            rank_weights: RankWeights::default()
                .overridden(&WeightOverrides {
                    content: r.get_by_name::<f64, _>("w_content")?,
                    covisit: r.get_by_name::<f64, _>("w_covisit")?,
                    popularity: r.get_by_name::<f64, _>("w_popularity")?,
                    freshness: r.get_by_name::<f64, _>("w_freshness")?,
                    ..Default::default()
                })
                .unwrap_or_default(),
        }))
    })
    .unwrap_or_else(|e| spi_error(e))
    .unwrap_or_else(|| {
        raise(
            PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            format!("event source {id} does not exist"),
            "The events table was detached.",
            "Attach it again with interest.attach_events.",
        )
    })
}

pub(crate) fn load_item_source(id: i32) -> ItemSource {
    Spi::connect(|c| {
        let t = c.select(
            "SELECT relid::oid, relid::regclass::text, model, id_column::text FROM interest.item_sources WHERE id = $1",
            Some(1),
            &[id.into()],
        )?;
        if t.is_empty() {
            return Ok(None);
        }
        let r = t.first();
        Ok::<_, pgrx::spi::Error>(Some(ItemSource {
            relid: r.get::<pg_sys::Oid>(1)?.unwrap_or(pg_sys::InvalidOid),
            relname: r.get::<String>(2)?.unwrap_or_default(),
            model: r.get::<String>(3)?.unwrap_or_default(),
            id_column: r.get::<String>(4)?.unwrap_or_default(),
        }))
    })
    .unwrap_or_else(|e| spi_error(e))
    .unwrap_or_else(|| {
        raise(
            PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            format!("item source {id} does not exist"),
            "The items table was detached.",
            "Attach it again with interest.attach_items.",
        )
    })
}

/// The model that embeds an event source's free texts: its items table's.
pub(crate) fn text_model(src: &EventSource) -> String {
    src.item_source_id
        .map(|id| load_item_source(id).model)
        .unwrap_or_else(|| crate::models::DEFAULT_MODEL.to_string())
}

/// The select list of an events table: its expressions under the names
/// `decode_event` reads. Called once by `interest.attach_events`.
#[pg_extern(immutable, strict, parallel_safe)]
fn _event_select_list(
    user_expr: &str,
    item_expr: &str,
    time_expr: &str,
    weight_expr: &str,
    text_expr: &str,
) -> String {
    format!(
        "{user_expr} AS user_key, {item_expr} AS item_key, extract(epoch FROM {time_expr})::float8 AS t, \
         ({weight_expr})::float8 AS weight, {text_expr} AS event_text"
    )
}

/// The settings `attach_events` uses when not given.
#[pg_extern(immutable, parallel_safe)]
fn _interest_defaults() -> TableIterator<
    'static,
    (
        name!(half_life_secs, f64),
        name!(max_interests, i32),
        name!(join_similarity, f32),
        name!(popularity_half_life_secs, f64),
    ),
> {
    let d = InterestParams::default();
    TableIterator::once((
        d.half_life_secs,
        d.max_interests as i32,
        d.join_similarity,
        POPULARITY_HALF_LIFE_SECS,
    ))
}

/// One event row of a query that names the event columns (module comment).
pub(crate) fn decode_event(r: &SpiHeapTupleData<'_>) -> Result<EventRow, pgrx::spi::Error> {
    Ok(EventRow {
        user: r.get_by_name::<String, _>("user_key")?,
        item: r.get_by_name::<String, _>("item_key")?,
        t: r.get_by_name::<f64, _>("t")?,
        weight: r.get_by_name::<f64, _>("weight")?,
        text: r.get_by_name::<String, _>("event_text")?,
        vector: r
            .get_by_name::<Embedding, _>("embedding")?
            .map(Embedding::into_vec),
    })
}

/// The event source for `events` (an attached table's OID), or the only one.
#[pg_extern(stable, parallel_unsafe)]
#[search_path(pg_catalog, interest, pg_temp)]
fn _event_source(events: Option<pg_sys::Oid>) -> i32 {
    let ids: Vec<i32> = match events {
        Some(rel) => crate::spi::column(
            "SELECT id FROM interest.event_sources WHERE relid = $1::regclass",
            &[rel.into()],
        ),
        None => crate::spi::column("SELECT id FROM interest.event_sources ORDER BY id", &[]),
    };
    match (events, ids.as_slice()) {
        (_, [id]) => *id,
        (Some(rel), _) => {
            // interest.event_sources shows a role only the tables it has a
            // right on: to anyone else an attached table looks unattached.
            let name = crate::spi::one_read_cached::<String>("SELECT $1::regclass::text", &[rel.into()])
                .unwrap_or_default();
            let any_right = pg_sys::ACL_SELECT | pg_sys::ACL_INSERT | pg_sys::ACL_UPDATE | pg_sys::ACL_DELETE;
            if !crate::privileges::caller_has(rel, any_right) {
                raise(
                    PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
                    format!("permission denied for table {name}"),
                    "Interests and recommendations from an events table are for roles with a right on it.",
                    format!("Ask the table's owner to GRANT SELECT ON {name} to your role (INSERT for flush(); set_weights(), use_default_weights(), tune() with apply and rebuild() are for the owner)."),
                )
            }
            raise(
                PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                format!("table {name} is not an attached events table"),
                "interest.event_sources has no row for it.",
                "Call interest.attach_events first.",
            )
        }
        (None, []) => raise(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            "no events table is attached that this role has a right on",
            "User interests come from an attached events table; a role sees those it has a right on.",
            "Name the table (events => 'my_events') to be told what right is missing, or attach one with interest.attach_events.",
        ),
        (None, ids) => raise(
            PgSqlErrorCode::ERRCODE_AMBIGUOUS_PARAMETER,
            "several events tables are attached",
            format!("{} events tables are attached.", ids.len()),
            "Name one with events => 'my_events'.",
        ),
    }
}

/// The event source, after checking that the caller may `what` on its table
/// (`mode`: ACL bits, any of which suffices).
pub(crate) fn writable_event_source(id: i32, mode: u32, what: &str) -> Rc<EventSource> {
    refuse_in_restricted_operation();
    let src = load_event_source(id);
    require_privilege(src.relid, &src.relname, mode, what);
    src
}

/// As `writable_event_source`, for an items table.
pub(crate) fn writable_item_source(id: i32, mode: u32, what: &str) -> ItemSource {
    refuse_in_restricted_operation();
    let src = load_item_source(id);
    require_privilege(src.relid, &src.relname, mode, what);
    src
}

/// The event source, after checking that the caller may read its table.
pub(crate) fn readable_event_source(id: i32) -> Rc<EventSource> {
    let src = load_event_source(id);
    require_privilege(
        src.relid,
        &src.relname,
        pg_sys::ACL_SELECT,
        "read interests",
    );
    src
}
