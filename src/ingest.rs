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
//! Lock order and keys: `crate::locks`. Entry points and privilege checks:
//! `crate::triggers` and `crate::maintenance`.

use crate::locks::{self, Held};
use crate::models::embed_texts;
use crate::sources::{load_event_source, text_model, EventSource};
use crate::store::covisit::{self, Visit};
use crate::store::{center, failures, items, pending, profiles, queue, states};
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

/// As `events`, for a statement's new rows: those with an infinite or NaN
/// time or weight are logged here, once, at the door.
fn new_events(src: &EventSource, rows: Vec<EventRow>) -> Vec<Event> {
    let mut events = Vec::with_capacity(rows.len());
    let (mut bad, mut first_bad) = (0, String::new());
    for row in rows {
        let user = row.user.as_deref().unwrap_or_default().to_string();
        match row.check() {
            Ok(e) => events.push(e),
            Err(Rejected::NotFinite) => {
                if bad == 0 {
                    first_bad = user;
                }
                bad += 1;
            }
            Err(_) => {}
        }
    }
    failures::report_not_finite(src, bad, &first_bad);
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
    crossed_fold_batch(last_seq, queued, fold_batch)
        || queue::fold_interval_passed(source_id, crate::gucs::FOLD_INTERVAL_MS.get())
}

/// A large statement's events: its users' queued events are claimed (under
/// the users' locks) and applied first, then the statement's, in one pass.
pub(crate) fn apply_new_events(src: &EventSource, rows: Vec<EventRow>) {
    let users = distinct(rows.iter().filter_map(|r| r.user.clone()));
    // The items co-visitation will lock: the statement's, and each user's
    // recent items its events link with.
    let items = distinct(rows.iter().filter_map(|r| r.item.clone())).len();
    let item_count = items + users.len() * covisit::params().window;
    let held = locks::lock_users(src.id, &users, item_count);
    let mut all = events(queue::claim_users(src.id, &users));
    all.extend(new_events(src, rows));
    apply_batch(src, resolve(src, all), held);
}

/// Folds the source's queued events into the shared state, holding the
/// source lock exclusively (a fold of a thousand events would otherwise take
/// thousands of per-key locks). Without `wait` it gives up at once when the
/// lock is taken: another statement is folding or writing. Returns the
/// number of events folded.
pub(crate) fn fold_queue(src: &EventSource, wait: bool) -> i64 {
    queue::note_fold_check(src.id);
    if wait {
        locks::lock_source_exclusive(src.id);
    } else if !locks::try_lock_source_exclusive(src.id) {
        return 0;
    }
    let rows = queue::claim_all(src.id);
    let n = rows.len() as i64;
    queue::stamp_folded(src.id);
    apply_batch(src, resolve(src, events(rows)), Held::WholeSource);
    n
}

/// Deleted (`removed`) or updated (`removed` old rows, `added` new rows)
/// events: the co-visitation counts and links of the users' changed
/// histories are taken back or added, then the users' states and recent
/// lists are recomputed from the table. Returns the events replayed.
pub(crate) fn rewrite_events(
    src: &EventSource,
    removed: Vec<EventRow>,
    added: Vec<EventRow>,
) -> i64 {
    let users = distinct(removed.iter().chain(&added).filter_map(|r| r.user.clone()));
    if users.is_empty() {
        return 0;
    }
    let held = locks::lock_users(src.id, &users, 0);
    // The users' queued events leave the queue, read with the table in one
    // snapshot: co-visitation has not counted them yet, so they are "added"
    // below (one round of item locks: a second round could deadlock); an
    // event queued after that snapshot stays queued.
    let (queued, history) = queue::claim_and_read(src, &users);
    let read = history.len() as i64;
    let history = events(history);
    let mut now: BTreeMap<String, Vec<(String, f64)>> =
        users.iter().map(|u| (u.clone(), Vec::new())).collect();
    for (user, item, t) in visits(&history) {
        now.entry(user).or_default().push((item, t));
    }
    let mut added = visits(&events(added));
    added.extend(visits(&events(queued)));
    let histories = changed_histories(now, visits(&events(removed)), added);
    covisit::rewrite_histories(src.id, histories, held);
    replay_users(src, &users, history);
    read
}

/// Sets (or, with None, clears) a user's text profile, then recomputes the
/// user from the events table plus the profile.
pub(crate) fn set_profile(src: &EventSource, user_key: &str, profile: Option<&str>) {
    let users = vec![user_key.to_string()];
    let held = locks::lock_users(src.id, &users, 0);
    // The user's queued events are counted for co-visitation now; the state
    // is recomputed below from the same snapshot's table rows.
    let (queued, history) = queue::claim_and_read(src, &users);
    covisit::count_visits(src.id, visits(&events(queued)), held);
    match profile {
        Some(text) => {
            let vector = embed_texts(&text_model(src), &[text]).remove(0);
            profiles::upsert(src.id, user_key, text, vector);
        }
        None => profiles::remove(src.id, user_key),
    }
    replay_users(src, &users, events(history));
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
/// `keys` have one, in time order.
pub(crate) fn apply_pending(item_source: i32, keys: &[String]) {
    for source_id in pending::sources_of_items(item_source) {
        let rows = pending::claim_for_items(source_id, keys);
        if rows.is_empty() {
            continue;
        }
        let src = load_event_source(source_id);
        let batch = resolve(&src, events(rows));
        if !batch.state_events.is_empty() {
            let users = distinct(batch.state_events.iter().map(|e| e.0.clone()));
            locks::lock_users(src.id, &users, 0);
        }
        // Counted for co-visitation when they arrived.
        pending::insert(src.id, &batch.pending);
        update_states(&src, batch.state_events);
    }
}
