//! The named bookkeeping operations on an event source. Each reads as
//! lock, load, apply (`interest_core`), save:
//!
//! - `queue_new_events`: a small statement's events, appended to the queue;
//! - `apply_new_events`: a large statement's events, with the same users'
//!   queued ones, applied at once;
//! - `fold_queue`: every queued event, under the source lock;
//! - `rewrite_events`: a DELETE or UPDATE, counts and links rewritten and
//!   the users replayed;
//! - `set_profile`, `replay_all`, `apply_pending` (events whose item just
//!   got its embedding).
//!
//! Inside an application's transaction (the triggers) nothing here waits
//! for a lock: work that cannot take the source lock at once is left in the
//! queues (`event_queue`, `rewrite_queue`, `pending_events`) for the next
//! fold. Lock order and keys: `crate::locks`. Entry points and privilege
//! checks: `crate::triggers` and `crate::maintenance`.

use crate::locks::{self, Held};
use crate::models::embed_texts;
use crate::sources::{load_event_source, text_model, EventSource};
use crate::store::covisit::{self, Visit};
use crate::store::{center, failures, items, pending, profiles, queue, rewrites, states};
use interest_core::covisit_history::changed_histories;
use interest_core::events::{group_by_user, Event, EventRow, Rejected, Subject};
use interest_core::fold_policy::crossed_fold_batch;
use interest_core::interest_state::{apply_in_order, Centroid, StateEvent};
use std::collections::{BTreeMap, HashMap};

/// A batch of accepted events, resolved against the item embeddings.
#[derive(Default)]
struct Resolved {
    /// What moves the users' states.
    state_events: Vec<(String, StateEvent)>,
    /// Item events whose item has no embedding yet: they wait in pending_events.
    pending: Vec<Event>,
    /// Every item event, embedded or not and whatever its weight's sign:
    /// co-visitation and popularity count it.
    visits: Vec<Visit>,
}

/// Finds the events' item embeddings and embeds free texts in one batch.
fn resolve(src: &EventSource, events: Vec<Event>) -> Resolved {
    let mut keys: Vec<String> = events
        .iter()
        .filter_map(|e| e.item().map(str::to_string))
        .collect();
    keys.sort();
    keys.dedup();
    let vectors = match src.item_source_id {
        Some(item_source) => items::vectors(item_source, &keys),
        None => HashMap::new(),
    };
    let events = embed_free_texts(src, events);
    let mut out = Resolved::default();
    for e in events {
        match e.subject {
            Subject::Item(ref item) => {
                out.visits.push((e.user.clone(), item.clone(), e.t));
                match vectors.get(item) {
                    Some(v) => out.state_events.push((
                        e.user.clone(),
                        StateEvent {
                            vector: v.clone(),
                            weight: e.weight,
                            t: e.t,
                        },
                    )),
                    None => out.pending.push(e),
                }
            }
            Subject::Vector(vector) => out.state_events.push((
                e.user,
                StateEvent {
                    vector,
                    weight: e.weight,
                    t: e.t,
                },
            )),
            Subject::Text(_) => unreachable!("free texts were embedded"),
        }
    }
    out
}

/// The rows that are events (`EventRow::check`, the one validity rule),
/// for rows read back (queue, table, pending): bad values were logged when
/// they arrived.
fn events(rows: Vec<EventRow>) -> Vec<Event> {
    rows.into_iter().filter_map(EventRow::accept).collect()
}

/// As `events`, for a statement's new rows: those with a bad value (an
/// infinite or NaN time or weight, an over-long key) are logged here, once
/// per kind, at the door.
fn new_events(src: &EventSource, rows: Vec<EventRow>) -> Vec<Event> {
    let mut events = Vec::with_capacity(rows.len());
    let mut not_finite = failures::SkippedRows::default();
    let mut long_keys = failures::SkippedRows::default();
    for row in rows {
        let user = row.user.clone().unwrap_or_default();
        match row.check() {
            Ok(e) => events.push(e),
            Err(Rejected::NotFinite) => not_finite.add(user),
            Err(Rejected::KeyTooLong) => long_keys.add(user),
            Err(_) => {}
        }
    }
    not_finite.report(src.relid, &src.relname, failures::BadRows::NotFinite);
    long_keys.report(src.relid, &src.relname, failures::BadRows::LongEventKeys);
    events
}

/// Free-text events become vector events, embedded in one batch with the
/// model of the source's items.
fn embed_free_texts(src: &EventSource, mut events: Vec<Event>) -> Vec<Event> {
    let texts: Vec<(usize, String)> = events
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match &e.subject {
            Subject::Text(t) => Some((i, t.clone())),
            _ => None,
        })
        .collect();
    if texts.is_empty() {
        return events;
    }
    let refs: Vec<&str> = texts.iter().map(|t| t.1.as_str()).collect();
    let vectors = embed_texts(&text_model(src), &refs);
    for ((i, _), v) in texts.into_iter().zip(vectors) {
        events[i].subject = Subject::Vector(v);
    }
    events
}

/// The item visits among `events`.
fn visits(events: &[Event]) -> Vec<Visit> {
    events
        .iter()
        .filter_map(|e| Some((e.user.clone(), e.item()?.to_string(), e.t)))
        .collect()
}

fn distinct(values: impl Iterator<Item = String>) -> Vec<String> {
    let mut v: Vec<String> = values.collect();
    v.sort();
    v.dedup();
    v
}

/// Loads the users' states, applies their events (in time order, ties in
/// arrival order), saves; the users are locked by the caller.
fn update_states(src: &EventSource, events: Vec<(String, StateEvent)>) {
    if events.is_empty() {
        return;
    }
    let per_user: BTreeMap<String, Vec<(String, StateEvent)>> =
        group_by_user(events, |e| e.0.as_str(), |e| e.1.t);
    let users: Vec<String> = per_user.keys().cloned().collect();
    let center = center::fix(src);
    let center = center.as_deref().map(Vec::as_slice);
    let mut loaded = states::load_states(src.id, &users);
    let stored: HashMap<String, Vec<Centroid>> = loaded
        .iter()
        .map(|(u, s)| (u.clone(), s.centroids.clone()))
        .collect();
    let mut skipped = Vec::new();
    for (user, evs) in per_user {
        let mut evs: Vec<StateEvent> = evs.into_iter().map(|e| e.1).collect();
        let mut state = loaded.remove(&user);
        for (left, right) in apply_in_order(&mut state, &mut evs, &src.params, center) {
            skipped.push((user.clone(), left, right));
        }
        if let Some(state) = state {
            loaded.insert(user, state);
        }
    }
    states::save_states(src.id, &loaded, &stored);
    failures::report_skipped(src, &skipped);
}

/// Saves what a batch does to the shared state when its visits are new.
fn apply_batch(src: &EventSource, batch: Resolved, held: Held) {
    pending::insert(src.id, &batch.pending);
    covisit::count_visits(src.id, batch.visits, held);
    update_states(src, batch.state_events);
}

/// A small statement's events: appended to the queue (free texts embedded
/// now, so a model error is the statement's). True when the statement is
/// due to fold the queue.
pub(crate) fn queue_new_events(src: &EventSource, rows: Vec<EventRow>, fold_batch: i64) -> bool {
    let events = new_events(src, rows);
    let seqs = queue::append(src.id, embed_free_texts(src, events));
    let Some(&last) = seqs.iter().max() else {
        return false;
    };
    fold_due(src.id, last, seqs.len() as i64, fold_batch)
}

/// Whether a statement that has just queued `queued` events, the last one
/// numbered `last_seq`, should fold the queue: it crossed a multiple of
/// `fold_batch`, or the queue was last folded `interest.fold_interval` ago.
pub(crate) fn fold_due(source_id: i32, last_seq: i64, queued: i64, fold_batch: i64) -> bool {
    // Such a transaction would not fold (`locks::try_source_for_trigger`),
    // and the check would read event_sources into its snapshot.
    if locks::in_snapshot_isolation() {
        return false;
    }
    crossed_fold_batch(last_seq, queued, fold_batch)
        || queue::fold_interval_passed(source_id, crate::gucs::FOLD_INTERVAL_MS.get())
}

/// A large statement's events. When the source lock is free at once (see
/// `locks::try_source_for_trigger`) the queue is claimed and applied with
/// them in one pass; otherwise they are queued like a small statement's.
pub(crate) fn apply_new_events(src: &EventSource, rows: Vec<EventRow>) {
    let Some(held) = locks::try_source_for_trigger(src.id) else {
        queue_new_events(src, rows, 0);
        return;
    };
    // Deferred rewrites are left to the fold: they replay users from the
    // table, which already holds this statement's rows.
    let mut all = events(queue::claim_all(src.id));
    all.extend(new_events(src, rows));
    apply_batch(src, resolve(src, all), held);
}

/// Folds the source's deferred rewrites, queued events and the pending
/// events whose item has arrived into the shared state, holding the source
/// lock exclusively (a fold of a thousand events would otherwise take
/// thousands of per-key locks). Without `wait` (the triggers, the queue
/// folder) it gives up at once when the lock is taken or the transaction
/// reads one snapshot throughout. Returns the number of queued events folded.
pub(crate) fn fold_queue(src: &EventSource, wait: bool) -> i64 {
    if wait {
        locks::lock_source_exclusive(src.id);
    } else if locks::try_source_for_trigger(src.id).is_none() {
        return 0;
    }
    queue::note_fold_check(src.id);
    if rewrites::truncated(src.id) {
        queue::stamp_folded(src.id);
        return replay_all(src);
    }
    // Deferred rewrites claim their users' queued events with the table read.
    let deferred = rewrites::users(src.id);
    let claimed_by_rewrites =
        rewrite_users(src, &deferred, Vec::new(), Vec::new(), Held::WholeSource).queued;
    let rows = queue::claim_all(src.id);
    let n = claimed_by_rewrites + rows.len() as i64;
    queue::stamp_folded(src.id);
    apply_batch(src, resolve(src, events(rows)), Held::WholeSource);
    if let Some(item_source) = src.item_source_id {
        apply_arrived(src, pending::claim_embedded(src.id, item_source));
    }
    n
}

/// Deleted (`removed`) or updated (`removed` old rows, `added` new rows)
/// events, from the trigger: rewritten now when the source lock is free at
/// once, else deferred to the next fold. Returns the events replayed.
pub(crate) fn rewrite_events(
    src: &EventSource,
    removed: Vec<EventRow>,
    added: Vec<EventRow>,
) -> i64 {
    let Some(held) = locks::try_source_for_trigger(src.id) else {
        rewrites::defer(src.id, &removed, &added);
        return 0;
    };
    // Earlier deferred rewrites go first: each diff assumes the counts and
    // links already saw every earlier change.
    let users = distinct(
        removed
            .iter()
            .chain(&added)
            .filter_map(|r| r.user.clone())
            .chain(rewrites::users(src.id)),
    );
    rewrite_users(src, &users, removed, added, held).replayed
}

/// What `rewrite_users` did: events read back from the table, and queued
/// events it claimed on the way.
#[derive(Default)]
struct Rewritten {
    replayed: i64,
    queued: i64,
}

/// The users' changed histories: the co-visitation counts and links are
/// taken back or added, then the users' states and recent lists are
/// recomputed from the table. `removed`/`added` are this statement's rows;
/// the users' deferred rewrites and queued events are claimed with the
/// table read, in one snapshot. Returns the events replayed.
fn rewrite_users(
    src: &EventSource,
    users: &[String],
    mut removed: Vec<EventRow>,
    mut added: Vec<EventRow>,
    held: Held,
) -> Rewritten {
    if users.is_empty() {
        return Rewritten::default();
    }
    // Queued events: co-visitation has not counted them yet, so they are
    // "added" below (one round of item locks: a second round could deadlock).
    let claimed = queue::claim_and_read(src, users);
    let queued = claimed.queued.len() as i64;
    removed.extend(claimed.removed);
    added.extend(claimed.added);
    added.extend(claimed.queued);
    let read = claimed.history.len() as i64;
    let history = events(claimed.history);
    let mut now: BTreeMap<String, Vec<(String, f64)>> =
        users.iter().map(|u| (u.clone(), Vec::new())).collect();
    for (user, item, t) in visits(&history) {
        now.entry(user).or_default().push((item, t));
    }
    let histories = changed_histories(now, visits(&events(removed)), visits(&events(added)));
    covisit::rewrite_histories(src.id, histories, held);
    replay_users(src, users, history);
    Rewritten {
        replayed: read,
        queued,
    }
}

/// A TRUNCATE of the events table: the bookkeeping is emptied now when the
/// source lock is free at once, else at the next fold.
pub(crate) fn truncate_events(src: &EventSource) {
    match locks::try_source_for_trigger(src.id) {
        Some(_) => {
            replay_all(src);
        }
        None => rewrites::defer_truncate(src.id),
    }
}

/// Sets (or, with None, clears) a user's text profile, then recomputes the
/// user from the events table plus the profile. An explicit call: it waits
/// for the user's lock.
pub(crate) fn set_profile(src: &EventSource, user_key: &str, profile: Option<&str>) {
    let users = vec![user_key.to_string()];
    let held = locks::lock_users(src.id, &users, 0);
    match profile {
        Some(text) => {
            let model = text_model(src);
            // (checked from the registry before paying for the embedding)
            refuse_other_dimension(src, &model, crate::models::lookup(&model).dimensions);
            let vector = embed_texts(&model, &[text]).remove(0);
            profiles::upsert(src.id, user_key, text, vector);
        }
        None => profiles::remove(src.id, user_key),
    }
    rewrite_users(src, &users, Vec::new(), Vec::new(), held);
}

/// A profile must live in the items' space: items with their own
/// embeddings of another dimension than the text model's are refused (the
/// user's state would mix the two, and every later event of theirs fail).
fn refuse_other_dimension(src: &EventSource, model: &str, dims: usize) {
    let Some(items) = src.item_source_id else {
        return;
    };
    if let Some(item_dims) = crate::store::items::dimensions(items).filter(|&d| d != dims) {
        crate::errors::raise(
            pgrx::PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH,
            format!("a text profile of model {model} cannot join {}", src.relname),
            format!("Its items carry their own {item_dims}-dimensional embeddings; model {model} embeds texts in {dims} dimensions."),
            "Profiles need items embedded by a model (attach_items with text =>), or no profile for this table.",
        );
    }
}

/// Recomputes the users' states and recent lists from `history` (their
/// events as `queue::claim_and_read` read them) plus their profiles. Their
/// counts and links are the caller's to rewrite.
fn replay_users(src: &EventSource, users: &[String], history: Vec<Event>) {
    states::delete(src.id, Some(users));
    pending::delete(src.id, Some(users));
    covisit::delete(src.id, Some(users));
    let mut batch = resolve(src, history);
    batch
        .state_events
        .extend(profiles::load(src.id, Some(users)));
    pending::insert(src.id, &batch.pending);
    covisit::move_recent_lists(src.id, batch.visits);
    update_states(src, batch.state_events);
}

/// Recomputes every user's state, the counts and the links from the events
/// table, in time order: the path of incremental maintenance, on the whole
/// history at once. The caller holds the source lock exclusively.
pub(crate) fn replay_all(src: &EventSource) -> i64 {
    states::delete(src.id, None);
    pending::delete(src.id, None);
    covisit::delete(src.id, None);
    let rows = queue::clear_and_read_table(src);
    let total = rows.len() as i64;
    let mut batch = resolve(src, events(rows));
    batch.state_events.extend(profiles::load(src.id, None));
    apply_batch(src, batch, Held::WholeSource);
    total
}

/// Events that arrived before their item's embedding, applied now that
/// `keys` have one (from the items table's triggers). A source whose lock is
/// not free at once keeps them pending: its next fold applies them.
pub(crate) fn apply_pending(item_source: i32, keys: &[String]) {
    for source_id in pending::sources_of_items(item_source) {
        if locks::try_source_for_trigger(source_id).is_none() {
            continue;
        }
        let src = load_event_source(source_id);
        apply_arrived(&src, pending::claim_for_items(source_id, keys));
    }
}

/// Applies claimed pending events to the users' states (the caller holds
/// the source lock); those whose item is still missing wait again.
fn apply_arrived(src: &EventSource, rows: Vec<EventRow>) {
    if rows.is_empty() {
        return;
    }
    let batch = resolve(src, events(rows));
    // Counted for co-visitation when they arrived.
    pending::insert(src.id, &batch.pending);
    update_states(src, batch.state_events);
}
