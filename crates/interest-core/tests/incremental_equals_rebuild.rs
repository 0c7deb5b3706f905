//! Incremental maintenance must agree with a rebuild: the extension applies
//! events statement by statement (and takes deleted or updated ones back),
//! `interest.rebuild()` replays the surviving events in one pass, and users
//! must not be able to tell which of the two produced their state.
//!
//! The bookkeeping below is the extension's, without Postgres: a batch is
//! accepted by `EventRow::accept`, its visits are counted and linked in a
//! graph loaded with the touched items' stats (`count_visits`), and its
//! events are grouped with `group_by_user` and applied with `apply_in_order`;
//! a DELETE or UPDATE rewrites the touched users' histories
//! (`changed_histories`, `ItemGraph::rewrite_history`) and replays those
//! users from their surviving events.
//!
//! What must hold whatever the arrival order: decayed totals, event counts
//! and item counts (sums, so order-independent). Centroids, links and recent
//! lists depend on the order events are seen in, so they must agree only
//! when each batch comes after the previous one in time.
//!
//! Storage rounding is not modelled: the tables keep totals, centroid sums
//! and link weights as f32, which only the Postgres tests see.

use interest_core::covisit::{push_recent, CovisitParams, ItemGraph, ItemStats};
use interest_core::covisit_history::{changed_histories, sort_visits};
use interest_core::decay;
use interest_core::events::{group_by_user, EventRow, Subject};
use interest_core::interest_state::{apply_in_order, InterestParams, InterestState, StateEvent};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet, HashMap};

const DIMS: usize = 4;
const TOLERANCE: f64 = 1e-6;

/// A row of the events table. Free-text events carry their embedding.
#[derive(Clone, Debug)]
struct Row {
    user: String,
    item: Option<String>,
    t: f64,
    weight: Option<f64>,
    vector: Option<Vec<f32>>,
}

impl Row {
    fn as_event_row(&self) -> EventRow {
        EventRow {
            user: Some(self.user.clone()),
            item: self.item.clone(),
            t: Some(self.t),
            weight: self.weight,
            text: None,
            vector: self.vector.clone(),
        }
    }
}

/// A visit for co-visitation: (user, item, time).
type Visit = (String, String, f64);

struct Setup {
    item_vectors: HashMap<String, Vec<f32>>,
    interest: InterestParams,
    covisit: CovisitParams,
    center: Option<Vec<f32>>,
}

/// The accepted rows as co-visitation and the states see them (the
/// extension's `resolve`; every item here has an embedding).
fn resolve(rows: &[Row], setup: &Setup) -> (Vec<Visit>, Vec<(String, StateEvent)>) {
    let (mut visits, mut state_events) = (Vec::new(), Vec::new());
    for e in rows.iter().filter_map(|r| r.as_event_row().accept()) {
        let vector = match &e.subject {
            Subject::Item(item) => {
                visits.push((e.user.clone(), item.clone(), e.t));
                setup.item_vectors[item].clone()
            }
            Subject::Vector(v) => v.clone(),
            Subject::Text(_) => unreachable!("rows carry embeddings"),
        };
        let event = StateEvent {
            vector,
            weight: e.weight,
            t: e.t,
        };
        state_events.push((e.user, event));
    }
    (visits, state_events)
}

fn per_user_visits(visits: Vec<Visit>) -> BTreeMap<String, Vec<(String, f64)>> {
    group_by_user(visits, |v| v.0.as_str(), |v| v.2)
        .into_iter()
        .map(|(u, vs)| {
            let mut vs: Vec<(String, f64)> = vs.into_iter().map(|(_, i, t)| (i, t)).collect();
            sort_visits(&mut vs);
            (u, vs)
        })
        .collect()
}

/// What the extension's tables hold.
#[derive(Default)]
struct Bookkeeping {
    states: BTreeMap<String, InterestState>,
    recent: BTreeMap<String, (Vec<String>, Vec<f64>)>,
    stats: HashMap<String, ItemStats<String>>,
}

impl Bookkeeping {
    /// New events (a direct apply, a fold, or a rebuild's single pass).
    fn apply_batch(&mut self, rows: &[Row], setup: &Setup) {
        let (visits, state_events) = resolve(rows, setup);
        self.count_visits(visits, &setup.covisit);
        self.update_states(state_events, setup);
    }

    /// The stats of `keys` that exist, loaded into a graph.
    fn load_graph(&self, keys: &BTreeSet<String>) -> ItemGraph<String> {
        let mut graph = ItemGraph::default();
        for k in keys {
            if let Some(s) = self.stats.get(k) {
                graph.insert(k.clone(), s.clone());
            }
        }
        graph
    }

    fn save_graph(&mut self, graph: ItemGraph<String>, p: &CovisitParams) {
        self.stats.extend(graph.finish(p));
    }

    fn count_visits(&mut self, visits: Vec<Visit>, p: &CovisitParams) {
        if visits.is_empty() {
            return;
        }
        let per_user = per_user_visits(visits);
        let mut keys: BTreeSet<String> = per_user.values().flatten().map(|v| v.0.clone()).collect();
        for u in per_user.keys() {
            if let Some((items, _)) = self.recent.get(u) {
                keys.extend(items.iter().rev().take(p.window).cloned());
            }
        }
        let mut graph = self.load_graph(&keys);
        for (user, visits) in per_user {
            let (items, times) = self.recent.entry(user).or_default();
            for (item, t) in visits {
                graph.observe(items, times, &item, t, p);
            }
        }
        self.save_graph(graph, p);
    }

    fn update_states(&mut self, events: Vec<(String, StateEvent)>, setup: &Setup) {
        for (user, events) in group_by_user(events, |e| e.0.as_str(), |e| e.1.t) {
            let mut events: Vec<StateEvent> = events.into_iter().map(|e| e.1).collect();
            let mut state = self.states.remove(&user);
            let skipped = apply_in_order(
                &mut state,
                &mut events,
                &setup.interest,
                setup.center.as_deref(),
            );
            assert!(skipped.is_empty(), "all vectors have {DIMS} dimensions");
            if let Some(state) = state {
                self.states.insert(user, state);
            }
        }
    }

    /// A DELETE or UPDATE: `removed` rows left the table, `added` rows
    /// joined it, `table` is the table after the statement.
    fn rewrite(&mut self, table: &[Row], removed: &[Row], added: &[Row], setup: &Setup) {
        let p = &setup.covisit;
        let users: BTreeSet<String> = removed
            .iter()
            .chain(added)
            .map(|r| r.user.clone())
            .collect();
        // The touched users' rows as the extension reads them: by time, ties
        // in table order.
        let mut history: Vec<Row> = table
            .iter()
            .filter(|r| users.contains(&r.user))
            .cloned()
            .collect();
        history.sort_by(|a, b| a.t.total_cmp(&b.t));
        let visits = |rows: &[Row]| resolve(rows, setup).0;
        let mut now: BTreeMap<String, Vec<(String, f64)>> =
            users.iter().map(|u| (u.clone(), Vec::new())).collect();
        for (user, item, t) in visits(&history) {
            now.entry(user).or_default().push((item, t));
        }
        let histories = changed_histories(now, visits(removed), visits(added));
        let keys: BTreeSet<String> = histories
            .iter()
            .flat_map(|(b, a)| b.iter().chain(a).map(|v| v.0.clone()))
            .collect();
        let mut graph = self.load_graph(&keys);
        for (before, after) in &histories {
            graph.rewrite_history(before, after, p);
        }
        self.save_graph(graph, p);
        // Replay: the users' states and recent lists from their surviving rows.
        for u in &users {
            self.states.remove(u);
            self.recent.remove(u);
        }
        let (visits, state_events) = resolve(&history, setup);
        for (user, visits) in per_user_visits(visits) {
            let (items, times) = self.recent.entry(user).or_default();
            for (item, t) in visits {
                push_recent(items, times, item, t, p);
            }
        }
        self.update_states(state_events, setup);
    }
}

/// One change of a DELETE or UPDATE statement, to the surviving row at
/// `index % rows`.
#[derive(Clone, Debug)]
enum Change {
    Delete,
    /// The item (None: the row becomes a free-text event, with no text when
    /// it had none, so it stops counting).
    SetItem(Option<usize>),
    SetWeight(Option<f64>),
}

/// (user, item (None: free text with this vector), time, weight, vector).
type RawEvent = (usize, Option<usize>, f64, Option<f64>, Vec<f32>);

#[derive(Clone, Debug)]
struct Scenario {
    users: usize,
    item_vectors: Vec<Vec<f32>>,
    events: Vec<RawEvent>,
    /// Batch boundaries: a batch ends after event i when cuts[i].
    cuts: Vec<bool>,
    /// Statements after batch `.0` (modulo the batches), each changing rows
    /// `(index, change)`.
    statements: Vec<(usize, Vec<(usize, Change)>)>,
    /// Each batch comes after the previous one in time.
    time_ordered: bool,
    half_life: f64,
    max_interests: usize,
    center: Option<Vec<f32>>,
}

fn vector() -> impl Strategy<Value = Vec<f32>> {
    prop::collection::vec(-1.0f32..1.0, DIMS)
}

fn weight() -> impl Strategy<Value = Option<f64>> {
    prop_oneof![
        Just(None),
        Just(Some(0.0)),
        Just(Some(-2.0)),
        Just(Some(-0.5)),
        Just(Some(0.5)),
        Just(Some(1.0)),
        Just(Some(3.0)),
    ]
}

fn change(items: usize) -> impl Strategy<Value = Change> {
    prop_oneof![
        3 => Just(Change::Delete),
        1 => prop::option::weighted(0.9, 0..items).prop_map(Change::SetItem),
        1 => weight().prop_map(Change::SetWeight),
    ]
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (1usize..=3, 2usize..=5).prop_flat_map(|(users, items)| {
        let event = (
            0..users,
            prop::option::weighted(0.85, 0..items),
            0u32..40,
            weight(),
            vector(),
        );
        (
            prop::collection::vec(vector(), items),
            prop::collection::vec(event, 1..30),
            prop::collection::vec(prop::bool::weighted(0.25), 30),
            prop::collection::vec(
                (
                    any::<usize>(),
                    prop::collection::vec((any::<usize>(), change(items)), 1..3),
                ),
                0..4,
            ),
            any::<bool>(),
            prop_oneof![Just(10.0), Just(100.0), Just(1e6)],
            1usize..=3,
            prop::option::of(vector()),
            prop::collection::vec(any::<u32>(), 30),
        )
            .prop_map(
                move |(
                    item_vectors,
                    raw,
                    cuts,
                    statements,
                    time_ordered,
                    half_life,
                    max_interests,
                    center,
                    shuffle,
                )| {
                    // Times on a coarse grid, so ties happen (rewrites too).
                    let mut events: Vec<_> = raw
                        .into_iter()
                        .map(|(u, i, t, w, v)| (u, i, t as f64 * 10.0, w, v))
                        .collect();
                    let cuts = cuts[..events.len()].to_vec();
                    if time_ordered {
                        // Batches in time order; arrival within a batch shuffled.
                        events.sort_by(|a, b| a.2.total_cmp(&b.2));
                        let mut start = 0;
                        for end in 0..events.len() {
                            if cuts[end] || end + 1 == events.len() {
                                let batch = &mut events[start..=end];
                                let mut keyed: Vec<_> =
                                    batch.iter().cloned().zip(&shuffle[start..=end]).collect();
                                keyed.sort_by_key(|e| *e.1);
                                for (slot, (e, _)) in batch.iter_mut().zip(keyed) {
                                    *slot = e;
                                }
                                start = end + 1;
                            }
                        }
                        // "In time order" means each batch after the last:
                        // a tie across two batches is arrival order, which
                        // a rebuild cannot know.
                        let mut batch = 0.0;
                        for (n, e) in events.iter_mut().enumerate() {
                            e.2 += batch * 1e-3;
                            if cuts[n] {
                                batch += 1.0;
                            }
                        }
                    }
                    Scenario {
                        users,
                        item_vectors,
                        events,
                        cuts,
                        statements,
                        time_ordered,
                        half_life,
                        max_interests,
                        center,
                    }
                },
            )
    })
}

fn setup(s: &Scenario) -> Setup {
    Setup {
        item_vectors: s
            .item_vectors
            .iter()
            .enumerate()
            .map(|(i, v)| (item_key(i), v.clone()))
            .collect(),
        interest: InterestParams {
            half_life_secs: s.half_life,
            max_interests: s.max_interests,
            join_similarity: 0.1,
        },
        // Few items and a generous link bound: no link is ever pruned, so
        // rewriting a history is exact (`ItemGraph::rewrite_history`).
        covisit: CovisitParams {
            window: 3,
            recent_kept: 4,
            max_links: 100,
            half_life_secs: s.half_life,
            ..CovisitParams::default()
        },
        center: s.center.clone(),
    }
}

fn item_key(i: usize) -> String {
    format!("item{i}")
}

fn rows(s: &Scenario) -> Vec<Row> {
    s.events
        .iter()
        .map(|(u, i, t, w, v)| Row {
            user: format!("user{}", u % s.users),
            item: i.map(item_key),
            t: *t,
            weight: *w,
            vector: i.is_none().then(|| v.clone()),
        })
        .collect()
}

/// Runs the statements of `s` incrementally. Returns the bookkeeping, the
/// surviving table and every row that was ever in it.
fn incremental(s: &Scenario, setup: &Setup) -> (Bookkeeping, Vec<Row>, Vec<Row>) {
    let mut batches: Vec<Vec<Row>> = vec![Vec::new()];
    for (row, cut) in rows(s).into_iter().zip(&s.cuts) {
        batches.last_mut().expect("never empty").push(row);
        if *cut {
            batches.push(Vec::new());
        }
    }
    batches.retain(|b| !b.is_empty());
    let mut book = Bookkeeping::default();
    let (mut table, mut ever): (Vec<Row>, Vec<Row>) = (Vec::new(), Vec::new());
    for (n, batch) in batches.iter().enumerate() {
        book.apply_batch(batch, setup);
        ever.extend(batch.iter().cloned());
        table.extend(batch.iter().cloned());
        for (_, changes) in s.statements.iter().filter(|st| st.0 % batches.len() == n) {
            rewrite(&mut book, &mut table, &mut ever, changes, setup);
        }
    }
    (book, table, ever)
}

fn rewrite(
    book: &mut Bookkeeping,
    table: &mut Vec<Row>,
    ever: &mut Vec<Row>,
    changes: &[(usize, Change)],
    setup: &Setup,
) {
    if table.is_empty() {
        return;
    }
    let mut touched = BTreeMap::new();
    for (index, change) in changes {
        touched.entry(index % table.len()).or_insert(change);
    }
    let (mut removed, mut added) = (Vec::new(), Vec::new());
    for (&index, change) in touched.iter().rev() {
        let old = table[index].clone();
        removed.push(old.clone());
        match change {
            Change::Delete => {
                table.remove(index);
            }
            Change::SetItem(item) => {
                let new = Row {
                    item: item.map(item_key),
                    vector: old.vector.clone(),
                    ..old
                };
                added.push(new.clone());
                table[index] = new;
            }
            Change::SetWeight(weight) => {
                let new = Row {
                    weight: *weight,
                    ..old
                };
                added.push(new.clone());
                table[index] = new;
            }
        }
    }
    ever.extend(added.iter().cloned());
    book.rewrite(table, &removed, &added, setup);
}

fn rebuild(table: &[Row], setup: &Setup) -> Bookkeeping {
    let mut sorted = table.to_vec();
    sorted.sort_by(|a, b| a.t.total_cmp(&b.t));
    let mut book = Bookkeeping::default();
    book.apply_batch(&sorted, setup);
    book
}

/// |a - b| within TOLERANCE of `scale` (the magnitude of what was summed,
/// so that cancellation does not make a near-zero result fail).
fn close(a: f64, b: f64, scale: f64) -> bool {
    (a - b).abs() <= TOLERANCE * scale.max(a.abs()).max(b.abs()) + f64::MIN_POSITIVE
}

/// Σ |w|·decay·max|x| over a user's accepted events, at `now`.
fn user_scales(table: &[Row], now: f64, setup: &Setup) -> HashMap<String, f64> {
    let mut out: HashMap<String, f64> = HashMap::new();
    for (user, e) in resolve(table, setup).1 {
        let x = e.vector.iter().fold(0.0f64, |m, v| m.max(v.abs() as f64));
        let d = decay::decayed(1.0, e.t, now, setup.interest.half_life_secs);
        *out.entry(user).or_default() += e.weight.abs() * d * x;
    }
    out
}

/// Σ decay over every visit an item ever had, deleted ones included.
fn visit_scales(ever: &[Row], now: f64, setup: &Setup) -> HashMap<String, f64> {
    let mut out: HashMap<String, f64> = HashMap::new();
    for (_, item, t) in resolve(ever, setup).0 {
        *out.entry(item).or_default() += decay::decayed(1.0, t, now, setup.covisit.half_life_secs);
    }
    out
}

fn check(s: &Scenario) -> Result<(), TestCaseError> {
    let setup = setup(s);
    let (inc, table, ever) = incremental(s, &setup);
    let full = rebuild(&table, &setup);
    let now = s.events.iter().map(|e| e.2).fold(0.0, f64::max) + 5.0;
    let (ip, cp) = (&setup.interest, &setup.covisit);

    let user_scale = user_scales(&table, now, &setup);
    prop_assert_eq!(
        inc.states.keys().collect::<Vec<_>>(),
        full.states.keys().collect::<Vec<_>>(),
        "users with a state"
    );
    for (user, a) in &inc.states {
        let b = &full.states[user];
        let scale = user_scale.get(user).copied().unwrap_or(0.0);
        prop_assert_eq!(a.events, b.events, "events of {}", user);
        for (x, y) in a.total_at(now, ip).iter().zip(b.total_at(now, ip)) {
            prop_assert!(close(*x, y, scale), "total of {user}: {x} vs {y}");
        }
        if s.time_ordered {
            prop_assert_eq!(
                a.centroids.len(),
                b.centroids.len(),
                "centroids of {}",
                user
            );
            let (fa, fb) = (
                decay::decayed(1.0, a.t_ref, now, ip.half_life_secs),
                decay::decayed(1.0, b.t_ref, now, ip.half_life_secs),
            );
            for (ca, cb) in a.centroids.iter().zip(&b.centroids) {
                prop_assert_eq!(ca.events, cb.events);
                prop_assert_eq!(ca.last_seen, cb.last_seen);
                prop_assert!(close(ca.mass * fa, cb.mass * fb, scale));
                prop_assert!(close(ca.weight * fa, cb.weight * fb, scale));
                for (x, y) in ca.sum.iter().zip(&cb.sum) {
                    prop_assert!(close(x * fa, y * fb, scale), "centroid of {user}");
                }
            }
        }
    }

    let visit_scale = visit_scales(&ever, now, &setup);
    let items: BTreeSet<&String> = inc.stats.keys().chain(full.stats.keys()).collect();
    for item in items {
        let count = |b: &Bookkeeping| b.stats.get(item).map_or(0.0, |s| s.count_at(now, cp));
        let scale = visit_scale.get(item).copied().unwrap_or(0.0);
        let (a, b) = (count(&inc), count(&full));
        prop_assert!(close(a, b, scale), "count of {item}: {a} vs {b}");
        if s.time_ordered {
            let links = |b: &Bookkeeping| -> BTreeMap<String, f64> {
                b.stats.get(item).map_or_else(BTreeMap::new, |s| {
                    let d = s.decay_to(now, cp);
                    s.links.iter().map(|(j, w)| (j.clone(), w * d)).collect()
                })
            };
            let (la, lb) = (links(&inc), links(&full));
            let targets: BTreeSet<&String> = la.keys().chain(lb.keys()).collect();
            for j in targets {
                // A link gets weight at the visits of its two ends.
                let scale = scale + visit_scale.get(j).copied().unwrap_or(0.0);
                let (x, y) = (
                    la.get(j).copied().unwrap_or(0.0),
                    lb.get(j).copied().unwrap_or(0.0),
                );
                prop_assert!(close(x, y, scale), "link {item} -> {j}: {x} vs {y}");
            }
        }
    }
    if s.time_ordered {
        prop_assert_eq!(&inc.recent, &full.recent, "recent lists");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn incremental_maintenance_equals_a_rebuild(s in scenario()) {
        check(&s)?;
    }
}

/// A DELETE of one of two same-time visits: `changed_histories` must put it
/// back where the graph saw it (same-time visits go in item order), or part
/// of its links stays behind.
#[test]
fn a_deleted_visit_among_same_time_visits() {
    let setup = Setup {
        item_vectors: HashMap::from([("a".into(), vec![1.0; DIMS]), ("b".into(), vec![1.0; DIMS])]),
        interest: InterestParams::default(),
        covisit: CovisitParams::default(),
        center: None,
    };
    let row = |item: &str| Row {
        user: "u".into(),
        item: Some(item.into()),
        t: 1.0,
        weight: None,
        vector: None,
    };
    let mut book = Bookkeeping::default();
    book.apply_batch(&[row("a"), row("b")], &setup);
    book.rewrite(&[row("b")], &[row("a")], &[], &setup);
    let links_of_a = book
        .stats
        .get("a")
        .map(|s| s.links.clone())
        .unwrap_or_default();
    assert!(links_of_a.is_empty(), "a deleted visit left {links_of_a:?}");
}
