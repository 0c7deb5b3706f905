//! Bookkeeping for dynamic user interests: the functions the attached tables'
//! triggers call, and the read side (user_vector, interests). The state math
//! is `interest_core::interest_state`; this file loads, locks and saves.
//!
//! The `_`-prefixed functions are SECURITY DEFINER (pinned search_path): an
//! application role needs no rights on the bookkeeping tables. Each checks
//! that the *calling* role (the outer role, which SECURITY DEFINER does not
//! change) may write the attached table, so they cannot be used to forge state.

use crate::covisit;
use crate::embedding_type::Embedding;
use crate::errors::raise;
use crate::models;
use interest_core::interest_state::{Centroid, InterestParams, InterestState};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;
use std::collections::{BTreeMap, HashMap};

pub(crate) struct EventSource {
    pub id: i32,
    pub relid: pg_sys::Oid,
    pub relname: String,
    pub item_source_id: Option<i32>,
    pub user_expr: String,
    pub user_match: String,
    pub item_expr: String,
    pub time_expr: String,
    pub select_list: String,
    pub params: InterestParams,
}

/// One event ready to apply: its user, vector, weight and time (epoch seconds).
struct Resolved {
    user: String,
    vector: Vec<f32>,
    weight: f64,
    t: f64,
}

thread_local! {
    // Per backend: prepared plans of the hot statements and the event-source
    // settings (a source id is never reused while the extension lives: detach
    // and attach give a new id). Both are dropped when the extension's OID
    // changes (DROP/CREATE EXTENSION in the same backend).
    static PLANS: ExtensionCache<String, pgrx::spi::OwnedPreparedStatement> =
        std::cell::RefCell::new((pg_sys::InvalidOid, HashMap::new()));
    static SOURCES: ExtensionCache<i32, std::rc::Rc<EventSource>> =
        std::cell::RefCell::new((pg_sys::InvalidOid, HashMap::new()));
}

/// A per-backend map that is emptied when the extension's OID changes, so
/// nothing in it outlives the objects it refers to.
type ExtensionCache<K, V> = std::cell::RefCell<(pg_sys::Oid, HashMap<K, V>)>;

/// The cache's map, for the extension as it is now.
fn current<K, V>(cache: &ExtensionCache<K, V>) -> std::cell::RefMut<'_, HashMap<K, V>> {
    let ext = extension_oid();
    let mut c = cache.borrow_mut();
    if c.0 != ext {
        c.1.clear();
        c.0 = ext;
    }
    std::cell::RefMut::map(c, |c| &mut c.1)
}

thread_local! {
    // (local transaction id, extension OID): get_extension_oid scans
    // pg_extension, which was 4% of a single-row insert; the OID can only
    // change by DROP/CREATE EXTENSION, so once per transaction is enough.
    static EXTENSION_OID: std::cell::Cell<(pg_sys::LocalTransactionId, pg_sys::Oid)> =
        const { std::cell::Cell::new((0, pg_sys::InvalidOid)) };
}

pub(crate) fn extension_oid() -> pg_sys::Oid {
    // SAFETY: MyProc is set in every backend that runs SQL functions.
    let lxid = unsafe { (*pg_sys::MyProc).lxid };
    let (cached_lxid, cached) = EXTENSION_OID.get();
    if cached_lxid == lxid && cached != pg_sys::InvalidOid {
        return cached;
    }
    // SAFETY: a catalog lookup by name.
    let oid = unsafe { pg_sys::get_extension_oid(c"pg_interest".as_ptr(), true) };
    EXTENSION_OID.set((lxid, oid));
    oid
}

/// Runs a fixed statement through a plan prepared once per backend (argument
/// types from the first call), and hands the result to `f`.
pub(crate) fn run_cached<T>(
    sql: &str,
    args: &[pgrx::datum::DatumWithOid],
    f: impl FnOnce(pgrx::spi::SpiTupleTable<'_>) -> Result<T, pgrx::spi::Error>,
) -> T {
    Spi::connect_mut(|client| {
        PLANS.with(|plans| {
            let mut plans = current(plans);
            if !plans.contains_key(sql) {
                let oids: Vec<pgrx::PgOid> =
                    args.iter().map(|a| pgrx::PgOid::from(a.oid())).collect();
                let stmt = client.prepare_mut(sql, &oids)?.keep();
                plans.insert(sql.to_string(), stmt);
            }
            let stmt = plans.get(sql).expect("plan was just prepared");
            let table = client.update(stmt, None, args)?;
            f(table)
        })
    })
    .unwrap_or_else(|e| spi_error(e))
}

pub(crate) fn spi_error(e: pgrx::spi::Error) -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
        "pg_interest bookkeeping query failed",
        e.to_string(),
        "",
    )
}

pub(crate) fn load_event_source(id: i32) -> std::rc::Rc<EventSource> {
    let cached = SOURCES.with(|c| current(c).get(&id).cloned());
    if let Some(src) = cached {
        return src;
    }
    let src = std::rc::Rc::new(read_event_source(id));
    SOURCES.with(|c| current(c).insert(id, src.clone()));
    src
}

fn read_event_source(id: i32) -> EventSource {
    Spi::connect(|c| {
        let t = c.select(
            "SELECT relid::oid, relid::regclass::text, item_source_id, user_expr, item_expr, time_expr, select_list, \
                    extract(epoch FROM half_life)::float8, max_interests, join_similarity::float8, user_match \
             FROM interest.event_sources WHERE id = $1",
            Some(1),
            &[id.into()],
        )?;
        if t.is_empty() {
            return Ok(None);
        }
        let r = t.first();
        Ok::<_, pgrx::spi::Error>(Some(EventSource {
            id,
            relid: r.get::<pg_sys::Oid>(1)?.unwrap(),
            relname: r.get::<String>(2)?.unwrap(),
            item_source_id: r.get::<i32>(3)?,
            user_expr: r.get::<String>(4)?.unwrap(),
            user_match: r.get::<String>(11)?.unwrap(),
            item_expr: r.get::<String>(5)?.unwrap(),
            time_expr: r.get::<String>(6)?.unwrap(),
            select_list: r.get::<String>(7)?.unwrap(),
            params: InterestParams {
                half_life_secs: r.get::<f64>(8)?.unwrap(),
                max_interests: r.get::<i32>(9)?.unwrap() as usize,
                join_similarity: r.get::<f64>(10)?.unwrap() as f32,
            },
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

/// The event source, after checking that the outside caller may `what` on
/// its table (`mode`: ACL bits): the SECURITY DEFINER entry points' guard.
fn writable_event_source(id: i32, mode: u32, what: &str) -> std::rc::Rc<EventSource> {
    let src = load_event_source(id);
    require_privilege(src.relid, &src.relname, mode, what);
    src
}

/// As `writable_event_source`, for an items table.
fn writable_item_source(id: i32, mode: u32, what: &str) -> ItemSource {
    let src = load_item_source(id);
    require_privilege(src.relid, &src.relname, mode, what);
    src
}

/// The role that called us from outside any SECURITY DEFINER function.
fn outer_role() -> pg_sys::Oid {
    // SAFETY: reads backend-local state.
    unsafe { pg_sys::GetOuterUserId() }
}

fn require_privilege(relid: pg_sys::Oid, relname: &str, mode: u32, what: &str) {
    // SAFETY: catalog lookup with valid OIDs; ACLMASK_ANY semantics (any bit of mode).
    let ok = unsafe { pg_sys::pg_class_aclcheck(relid, outer_role(), mode as pg_sys::AclMode) }
        == pg_sys::AclResult::ACLCHECK_OK;
    if !ok {
        raise(
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("permission denied to {what} for table {relname}"),
            "Interest bookkeeping for a table may only be changed by roles that may write that table.",
            format!("Grant the role INSERT, UPDATE or DELETE on {relname}."),
        );
    }
}

/// True when the calling (outer) role owns the table; used by detach and rebuild.
#[pg_extern(stable, parallel_unsafe)]
fn _outer_role_owns(rel: pg_sys::Oid) -> bool {
    Spi::get_one_with_args::<bool>(
        "SELECT pg_has_role($1, relowner, 'USAGE') FROM pg_catalog.pg_class WHERE oid = $2",
        &[outer_role().into(), rel.into()],
    )
    .unwrap_or_else(|e| spi_error(e))
    .unwrap_or(false)
}

fn item_vectors(item_source: i32, keys: &[String]) -> HashMap<String, Vec<f32>> {
    if keys.is_empty() {
        return HashMap::new();
    }
    run_cached(
        "SELECT item_key, embedding FROM interest.item_embeddings WHERE source_id = $1 AND item_key = ANY($2)",
        &[item_source.into(), keys.to_vec().into()],
        |t| {
            t.map(|row| Ok((row.get::<String>(1)?.unwrap(), row.get::<Embedding>(2)?.unwrap().into_vec())))
                .collect::<Result<HashMap<_, _>, _>>()
        },
    )
}

fn item_model(item_source: Option<i32>) -> String {
    item_source
        .and_then(|id| {
            Spi::get_one_with_args::<String>(
                "SELECT model FROM interest.item_sources WHERE id = $1",
                &[id.into()],
            )
            .ok()
            .flatten()
        })
        .unwrap_or_else(|| "all-MiniLM-L6-v2".to_string())
}

fn embed_texts(model: &str, texts: &[&str]) -> Vec<Vec<f32>> {
    if texts.is_empty() {
        return Vec::new();
    }
    let entry = models::lookup(model);
    let max_tokens = crate::gucs::MAX_TOKENS.get().max(2) as usize;
    let batch = crate::gucs::BATCH_SIZE.get().max(1) as usize;
    models::with_encoder(&entry, |enc| {
        enc.embed_many(texts, max_tokens, batch, || {})
    })
    .unwrap_or_else(|e| crate::errors::raise_encoder_error(model, e))
}

/// A statement's (or the queue's) event rows, column by column; `vectors`
/// holds free-text events' embeddings when they were embedded already
/// (queued events), else it is empty.
#[derive(Default)]
struct EventRows {
    users: Vec<Option<String>>,
    items: Vec<Option<String>>,
    times: Vec<Option<f64>>,
    weights: Vec<Option<f64>>,
    texts: Vec<Option<String>>,
    vectors: Vec<Option<Vec<f32>>>,
}

impl EventRows {
    fn len(&self) -> usize {
        self.users.len()
    }

    /// Appends the event in columns `first..first + 6` of an SPI row:
    /// user, item, time, weight, text, embedding.
    fn push_spi(
        &mut self,
        r: &pgrx::spi::SpiHeapTupleData<'_>,
        first: usize,
    ) -> Result<(), pgrx::spi::Error> {
        self.users.push(r.get::<String>(first)?);
        self.items.push(r.get::<String>(first + 1)?);
        self.times.push(r.get::<f64>(first + 2)?);
        self.weights.push(r.get::<f64>(first + 3)?);
        self.texts.push(r.get::<String>(first + 4)?);
        self.vectors
            .push(r.get::<Embedding>(first + 5)?.map(|e| e.into_vec()));
        Ok(())
    }

    /// Appends `other`'s rows after ours.
    fn extend(&mut self, other: EventRows) {
        let (n, m) = (self.len(), other.len());
        self.vectors.resize(n, None);
        let mut vectors = other.vectors;
        vectors.resize(m, None);
        self.vectors.extend(vectors);
        self.users.extend(other.users);
        self.items.extend(other.items);
        self.times.extend(other.times);
        self.weights.extend(other.weights);
        self.texts.extend(other.texts);
    }
}

/// Statements with at least this many events apply them at once (a bulk
/// load is one pass); smaller ones only queue theirs (see `enqueue`).
pub(crate) const DIRECT_APPLY_EVENTS: usize = 64;

/// A statement's new events. Small statements queue them (returns true when
/// the queue is due to be folded: the trigger then calls `_fold_queue` in a
/// block of its own); large ones, or with `interest.fold_batch = 0`, are
/// applied at once, after the queued events of the same users.
#[pg_extern(security_definer, volatile, parallel_unsafe)]
#[search_path(pg_catalog, interest)]
fn _apply_events(
    source_id: i32,
    users: Vec<Option<String>>,
    items: Vec<Option<String>>,
    times: Vec<Option<f64>>,
    weights: Vec<Option<f64>>,
    texts: Vec<Option<String>>,
) -> bool {
    let src = writable_event_source(source_id, pg_sys::ACL_INSERT, "apply events");
    let rows = EventRows {
        users,
        items,
        times,
        weights,
        texts,
        vectors: Vec::new(),
    };
    check_lengths(&rows);
    let batch = crate::gucs::FOLD_BATCH.get();
    if batch == 0 || rows.len() >= DIRECT_APPLY_EVENTS {
        apply_direct(&src, rows);
        false
    } else {
        enqueue(&src, rows, batch as i64)
    }
}

fn check_lengths(rows: &EventRows) {
    let n = rows.len();
    let lengths = [
        rows.items.len(),
        rows.times.len(),
        rows.weights.len(),
        rows.texts.len(),
    ];
    if lengths.iter().any(|&l| l != n) || !(rows.vectors.is_empty() || rows.vectors.len() == n) {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            "event arrays differ in length",
            format!(
                "users {n}, items {}, times {}, weights {}, texts {}",
                lengths[0], lengths[1], lengths[2], lengths[3]
            ),
            "Pass one element per event in every array.",
        );
    }
}

/// A large statement: its users' queued events are claimed (under the
/// users' locks) and applied first, then the statement's, in one pass.
fn apply_direct(src: &EventSource, rows: EventRows) {
    let mut users: Vec<String> = rows.users.iter().flatten().cloned().collect();
    users.sort();
    users.dedup();
    let mut items: Vec<String> = rows.items.iter().flatten().cloned().collect();
    items.sort();
    items.dedup();
    let whole_source = lock_users(src.id, &users, &items);
    let mut all = claim_queued(src.id, Some(&users));
    all.extend(rows);
    apply_event_rows(
        src,
        all,
        Vec::new(),
        CovisitMode::Full,
        Locks::Held { whole_source },
    );
}

/// Appends a small statement's events to the queue: one INSERT, no locks.
/// Free-text events are embedded now (a model error is the statement's, as
/// for a direct apply). True when a queued event's number is a multiple of
/// `batch`: then this statement folds the queue.
fn enqueue(src: &EventSource, rows: EventRows, batch: i64) -> bool {
    let texts: Vec<(usize, &str)> = (0..rows.len())
        .filter(|&i| rows.items[i].is_none())
        .filter_map(|i| rows.texts[i].as_deref().map(|t| (i, t)))
        .collect();
    let mut text_vectors: HashMap<usize, Vec<f32>> = if texts.is_empty() {
        HashMap::new()
    } else {
        let refs: Vec<&str> = texts.iter().map(|t| t.1).collect();
        let vectors = embed_texts(&item_model(src.item_source_id), &refs);
        texts.iter().map(|t| t.0).zip(vectors).collect()
    };
    let (mut u, mut it, mut t, mut w, mut e) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..rows.len() {
        let (Some(user), Some(time)) = (&rows.users[i], rows.times[i]) else {
            continue;
        };
        let weight = rows.weights[i].unwrap_or(1.0);
        let vector = text_vectors.remove(&i);
        // The same rule as applying: an event needs a weight and an item or a text.
        if weight == 0.0 || (rows.items[i].is_none() && vector.is_none()) {
            continue;
        }
        u.push(user.clone());
        it.push(rows.items[i].clone());
        t.push(time);
        w.push(weight);
        e.push(vector.map(Embedding::new));
    }
    if u.is_empty() {
        return false;
    }
    let seqs: Vec<i64> = run_cached(
        "INSERT INTO interest.event_queue (source_id, user_key, item_key, t, weight, embedding) \
         SELECT $1, u, i, t, w, e FROM unnest($2::text[], $3::text[], $4::float8[], $5::float8[], $6::interest.embedding[]) \
         WITH ORDINALITY AS x(u, i, t, w, e, n) ORDER BY n RETURNING seq",
        &[src.id.into(), u.into(), it.into(), t.into(), w.into(), e.into()],
        |t| t.map(|r| r.get::<i64>(1).map(|v| v.unwrap_or(0))).collect(),
    );
    let last = seqs.iter().copied().max().unwrap_or(0);
    fold_due(src.id, last, seqs.len() as i64, batch)
}

/// Whether a statement that has just queued `queued` events, the last one
/// numbered `last_seq`, should fold the queue: it crossed a multiple of
/// `interest.fold_batch`, or the queue was last folded `interest.fold_interval`
/// ago. Called by the triggers' SQL fast path; runs a query at most once per
/// backend and interval.
#[pg_extern(volatile, parallel_unsafe)]
fn _fold_due(source_id: i32, last_seq: i64, queued: i64) -> bool {
    fold_due(
        source_id,
        last_seq,
        queued,
        crate::gucs::FOLD_BATCH.get() as i64,
    )
}

fn fold_due(source_id: i32, last_seq: i64, queued: i64, batch: i64) -> bool {
    let crossed = batch > 0 && queued > 0 && last_seq / batch != (last_seq - queued) / batch;
    crossed || fold_interval_passed(source_id)
}

thread_local! {
    // Per backend and event source: when this backend last looked at the
    // source's folded_at (or folded). It looks again `interest.fold_interval`
    // later, so the check costs one query per backend per interval, and a
    // quiet table's counts and links are never far behind even when
    // fold_batch events take long to arrive.
    static LAST_FOLD_CHECK: std::cell::RefCell<HashMap<i32, std::time::Instant>> =
        std::cell::RefCell::new(HashMap::new());
}

/// True when the source's queue was last folded (by any backend) at least
/// `interest.fold_interval` ago.
fn fold_interval_passed(source_id: i32) -> bool {
    let interval = crate::gucs::FOLD_INTERVAL_MS.get();
    if interval == 0 {
        return false;
    }
    let checked_recently = LAST_FOLD_CHECK.with(|m| {
        m.borrow()
            .get(&source_id)
            .is_some_and(|t| t.elapsed() < std::time::Duration::from_millis(interval as u64))
    });
    if checked_recently {
        return false;
    }
    note_fold_check(source_id);
    run_cached(
        "SELECT coalesce(extract(epoch FROM clock_timestamp() - folded_at) * 1000 >= $2, true) \
         FROM interest.event_sources WHERE id = $1",
        &[source_id.into(), (interval as f64).into()],
        |t| {
            Ok(t.into_iter()
                .next()
                .and_then(|r| r.get::<bool>(1).ok().flatten())
                .unwrap_or(false))
        },
    )
}

fn note_fold_check(source_id: i32) {
    LAST_FOLD_CHECK.with(|m| m.borrow_mut().insert(source_id, std::time::Instant::now()));
}

/// Claims queued events (all of the source's, or those of `users`, whose
/// locks the caller holds): deletes and returns them in arrival order.
fn claim_queued(source_id: i32, users: Option<&[String]>) -> EventRows {
    const RETURNED: &str = "RETURNING seq, user_key, item_key, t, weight, embedding) \
         SELECT user_key, item_key, t, weight, NULL::text, embedding FROM claimed ORDER BY seq";
    let (sql, args): (String, Vec<pgrx::datum::DatumWithOid>) = match users {
        Some([]) => return EventRows::default(),
        Some(u) => (
            format!("WITH claimed AS (DELETE FROM interest.event_queue WHERE source_id = $1 AND user_key = ANY($2) {RETURNED}"),
            vec![source_id.into(), u.to_vec().into()],
        ),
        None => (
            format!("WITH claimed AS (DELETE FROM interest.event_queue WHERE source_id = $1 {RETURNED}"),
            vec![source_id.into()],
        ),
    };
    run_cached(&sql, &args, |t| {
        let mut rows = EventRows::default();
        for r in t {
            rows.push_spi(&r, 1)?;
        }
        Ok(rows)
    })
}

/// Folds the source's queued events into the shared state, holding the
/// source lock exclusively (so no per-user or per-item locks: a fold of a
/// thousand events would take thousands). With `wait` false (from the
/// trigger) it gives up at once when the lock is taken: another statement
/// is folding or writing. Returns the number of events folded.
#[pg_extern(security_definer, volatile, parallel_unsafe)]
#[search_path(pg_catalog, interest)]
fn _fold_queue(source_id: i32, wait: bool) -> i64 {
    let src = writable_event_source(source_id, pg_sys::ACL_INSERT, "fold queued events");
    note_fold_check(source_id);
    let sql = if wait {
        "SELECT pg_catalog.pg_advisory_xact_lock(-$1, 0) IS NOT NULL"
    } else {
        "SELECT pg_catalog.pg_try_advisory_xact_lock(-$1, 0)"
    };
    let locked: bool = run_cached(sql, &[source_id.into()], |t| {
        Ok(t.into_iter()
            .next()
            .and_then(|r| r.get::<bool>(1).ok().flatten())
            .unwrap_or(false))
    });
    if !locked {
        return 0;
    }
    let rows = claim_queued(source_id, None);
    let n = rows.len() as i64;
    run_cached(
        "UPDATE interest.event_sources SET folded_at = clock_timestamp() WHERE id = $1",
        &[source_id.into()],
        |_| Ok(()),
    );
    apply_event_rows(
        &src,
        rows,
        Vec::new(),
        CovisitMode::Full,
        Locks::Held { whole_source: true },
    );
    n
}

/// Whether `apply_event_rows` takes the users' locks itself or the caller
/// already holds them (per user, or the whole source exclusively).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Locks {
    Take,
    Held { whole_source: bool },
}

/// What an event batch does to co-visitation: `Full` counts and links it
/// (new events, full rebuild); `RecentOnly` only rebuilds users' recent lists
/// (per-user recompute after a DELETE/UPDATE, whose counts and links
/// `_events_rewritten` has already rewritten); `Skip` leaves both (pending
/// events already counted on arrival).
#[derive(Clone, Copy, PartialEq, Eq)]
enum CovisitMode {
    Full,
    RecentOnly,
    Skip,
}

fn apply_event_rows(
    src: &EventSource,
    rows: EventRows,
    extra: Vec<Resolved>,
    covisit_mode: CovisitMode,
    locks: Locks,
) -> i64 {
    let source_id = src.id;
    check_lengths(&rows);
    let n = rows.len();
    let EventRows {
        users,
        items,
        times,
        weights,
        texts,
        vectors: given,
    } = rows;
    let item_keys: Vec<String> = {
        let mut k: Vec<String> = items.iter().flatten().cloned().collect();
        k.sort();
        k.dedup();
        k
    };
    let vectors = match src.item_source_id {
        Some(item_src) => item_vectors(item_src, &item_keys),
        None => HashMap::new(),
    };
    // Free-text events (no item): embedded already when queued, else
    // embedded here in one batch.
    let mut given: Vec<Option<Vec<f32>>> = given;
    given.resize(n, None);
    let text_events: Vec<usize> = (0..n)
        .filter(|&i| items[i].is_none() && texts[i].is_some() && given[i].is_none())
        .collect();
    let text_refs: Vec<&str> = text_events
        .iter()
        .map(|&i| texts[i].as_deref().unwrap())
        .collect();
    let text_vectors = if text_refs.is_empty() {
        Vec::new()
    } else {
        embed_texts(&item_model(src.item_source_id), &text_refs)
    };
    let mut text_vector_of: HashMap<usize, Vec<f32>> =
        text_events.into_iter().zip(text_vectors).collect();
    for (i, v) in given.into_iter().enumerate() {
        if let (None, Some(v)) = (&items[i], v) {
            text_vector_of.insert(i, v);
        }
    }

    // Every item event is a visit for co-visitation and popularity, whether
    // or not its item has an embedding yet, and whatever its weight's sign.
    let mut visits: Vec<(String, String, f64)> = Vec::new();
    if covisit_mode != CovisitMode::Skip {
        for i in 0..n {
            if let (Some(u), Some(item), Some(t)) = (&users[i], &items[i], times[i]) {
                if weights[i].unwrap_or(1.0) != 0.0 {
                    visits.push((u.clone(), item.clone(), t));
                }
            }
        }
    }
    let mut resolved = Vec::with_capacity(n);
    let mut pending: (Vec<String>, Vec<String>, Vec<f64>, Vec<f64>) = Default::default();
    for i in 0..n {
        let (Some(user), Some(t)) = (users[i].clone(), times[i]) else {
            continue;
        };
        let weight = weights[i].unwrap_or(1.0);
        if weight == 0.0 {
            continue;
        }
        let vector = match &items[i] {
            Some(item) => match vectors.get(item) {
                Some(v) => v.clone(),
                None => {
                    pending.0.push(user);
                    pending.1.push(item.clone());
                    pending.2.push(t);
                    pending.3.push(weight);
                    continue;
                }
            },
            None => match text_vector_of.remove(&i) {
                Some(v) => v,
                None => continue,
            },
        };
        resolved.push(Resolved {
            user,
            vector,
            weight,
            t,
        });
    }
    if !pending.0.is_empty() {
        Spi::run_with_args(
            "INSERT INTO interest.pending_events (source_id, user_key, item_key, t, weight) \
             SELECT $1, u, i, t, w FROM unnest($2::text[], $3::text[], $4::float8[], $5::float8[]) AS p(u, i, t, w)",
            &[source_id.into(), pending.0.into(), pending.1.into(), pending.2.into(), pending.3.into()],
        )
        .unwrap_or_else(|e| spi_error(e));
    }
    let applied = resolved.len() as i64;
    resolved.extend(extra);
    apply_to_users(src, resolved, visits, covisit_mode, locks);
    applied
}

/// Groups events per user, locks the users in a fixed order (by lock key) so
/// that concurrent statements never deadlock, loads, applies and saves.
/// With `fresh`, existing state is ignored (rebuild).
fn apply_to_users(
    src: &EventSource,
    events: Vec<Resolved>,
    visits: Vec<(String, String, f64)>,
    covisit_mode: CovisitMode,
    locks: Locks,
) {
    if events.is_empty() && visits.is_empty() {
        return;
    }
    let mut per_user: BTreeMap<String, Vec<Resolved>> = BTreeMap::new();
    for e in events {
        per_user.entry(e.user.clone()).or_default().push(e);
    }
    let mut all_users: Vec<String> = per_user.keys().cloned().collect();
    all_users.extend(visits.iter().map(|v| v.0.clone()));
    all_users.sort();
    all_users.dedup();
    let items: Vec<String> = if covisit_mode == CovisitMode::Full {
        let mut k: Vec<String> = visits.iter().map(|v| v.1.clone()).collect();
        k.sort();
        k.dedup();
        k
    } else {
        Vec::new()
    };
    let bulk = match locks {
        Locks::Take => lock_users(src.id, &all_users, &items),
        Locks::Held { whole_source } => whole_source,
    };
    covisit::update(src.id, visits, covisit_mode == CovisitMode::Full, bulk);
    if per_user.is_empty() {
        return;
    }
    let user_keys: Vec<String> = per_user.keys().cloned().collect();
    let center = event_center(src);
    let mut states = load_states(src.id, &user_keys);
    // Sub-interests as stored: an event changes one (or merges two), and
    // rewriting the untouched 1.5 kB rows was half of an event's WAL.
    let stored: HashMap<String, Vec<Centroid>> = states
        .iter()
        .map(|(u, s)| (u.clone(), s.centroids.clone()))
        .collect();
    let mut skipped: Vec<(String, usize, usize)> = Vec::new();
    for (user, mut evs) in per_user {
        let mut state = states.remove(&user);
        for (left, right) in apply_user_events(
            &mut state,
            &mut evs,
            src,
            center.as_deref().map(|c| c.as_slice()),
        ) {
            skipped.push((user.clone(), left, right));
        }
        if let Some(state) = state {
            states.insert(user, state);
        }
    }
    save_states(src.id, &states, &stored);
    report_skipped(src, &skipped);
}

/// Applies one user's events to their state (made at the first event if
/// there is none), in time order, ties in arrival order: the one rule for
/// direct applies, folds and reads of queued events, so that incremental
/// maintenance, rebuild and readers agree. Returns the events skipped for a
/// dimension different from the state's, as (state's, event's): one bad
/// event must not hold up the others (nor, queued, every later fold).
fn apply_user_events(
    state: &mut Option<InterestState>,
    evs: &mut [Resolved],
    src: &EventSource,
    center: Option<&[f32]>,
) -> Vec<(usize, usize)> {
    evs.sort_by(|a, b| a.t.total_cmp(&b.t));
    let mut skipped = Vec::new();
    for e in evs.iter() {
        let state = state.get_or_insert_with(|| InterestState::new(e.vector.len(), e.t));
        if e.vector.len() != state.total.len() {
            skipped.push((state.total.len(), e.vector.len()));
            continue;
        }
        state.apply_centered(&e.vector, e.weight, e.t, &src.params, center);
    }
    skipped
}

/// Events left out of a user's state because their vector's dimension
/// differs from the state's: a WARNING and a row in bookkeeping_errors.
fn report_skipped(src: &EventSource, skipped: &[(String, usize, usize)]) {
    let Some((user, left, right)) = skipped.first() else {
        return;
    };
    let message = format!("different embedding dimensions {left} and {right}");
    let detail = format!(
        "{} event(s) were not applied to the users' interests (first: user {user}); the user's state has {left} dimensions, the event's item {right}.",
        skipped.len()
    );
    Spi::run_with_args(
        "INSERT INTO interest.bookkeeping_errors (relid, sqlstate, message, detail) VALUES ($1::oid::regclass, '22000', $2, $3)",
        &[src.relid.into(), message.clone().into(), detail.clone().into()],
    )
    .unwrap_or_else(|e| spi_error(e));
    pgrx::pg_sys::panic::ErrorReport::new(
        PgSqlErrorCode::ERRCODE_DATA_EXCEPTION,
        format!("pg_interest: event of {} not applied ({message}); the rows were stored", src.relname),
        "pg_interest",
    )
    .set_detail(detail)
    .set_hint("Items and text events of one events table must use one model; interest.rebuild() recomputes the state.")
    .report(pgrx::PgLogLevel::WARNING);
}

thread_local! {
    // Per backend: each event source's centre once set (it never changes).
    static CENTERS: ExtensionCache<i32, std::rc::Rc<Vec<f32>>> =
        std::cell::RefCell::new((pg_sys::InvalidOid, HashMap::new()));
}

/// The centre sub-interests are clustered around: the mean embedding of the
/// source's items, computed at the first event statement that finds items
/// and then fixed, so that incremental maintenance and rebuild agree.
/// Sources without items (free text only) cluster on raw vectors.
fn event_center(src: &EventSource) -> Option<std::rc::Rc<Vec<f32>>> {
    let item_source = src.item_source_id?;
    let cached = CENTERS.with(|c| current(c).get(&src.id).cloned());
    if cached.is_some() {
        return cached;
    }
    let read_center = || -> Option<Embedding> {
        run_cached(
            "SELECT center FROM interest.event_sources WHERE id = $1",
            &[src.id.into()],
            |t| {
                Ok(t.into_iter()
                    .next()
                    .and_then(|r| r.get::<Embedding>(1).ok().flatten()))
            },
        )
    };
    let center = match read_center() {
        Some(c) => c,
        None => {
            // Set once, when the items table has embeddings; a concurrent
            // first statement waits for ours and then reads our value.
            let set: Option<Embedding> = run_cached(
                "UPDATE interest.event_sources \
                 SET center = (SELECT interest.avg(embedding) FROM interest.item_embeddings WHERE source_id = $2) \
                 WHERE id = $1 AND center IS NULL \
                   AND EXISTS (SELECT 1 FROM interest.item_embeddings WHERE source_id = $2) \
                 RETURNING center",
                &[src.id.into(), item_source.into()],
                |t| Ok(t.into_iter().next().and_then(|r| r.get::<Embedding>(1).ok().flatten())),
            );
            match set {
                // Not cached until committed: the next statement reads it back.
                Some(c) => return Some(std::rc::Rc::new(c.into_vec())),
                None => read_center()?,
            }
        }
    };
    let center = std::rc::Rc::new(center.into_vec());
    CENTERS.with(|c| current(c).insert(src.id, center.clone()));
    Some(center)
}

/// The centre as `event_center` gives it, for readers, which write nothing:
/// before the first fold stores it, the items' mean as it is now.
fn current_center(src: &EventSource) -> Option<std::rc::Rc<Vec<f32>>> {
    let item_source = src.item_source_id?;
    if let Some(c) = CENTERS.with(|c| current(c).get(&src.id).cloned()) {
        return Some(c);
    }
    run_cached(
        "SELECT coalesce(center, (SELECT interest.avg(embedding) FROM interest.item_embeddings WHERE source_id = $2)) \
         FROM interest.event_sources WHERE id = $1",
        &[src.id.into(), item_source.into()],
        |t| {
            Ok(t.into_iter()
                .next()
                .and_then(|r| r.get::<Embedding>(1).ok().flatten()))
        },
    )
    .map(|c| std::rc::Rc::new(c.into_vec()))
}

/// Statements touching more keys than this take the source lock exclusively
/// instead of one lock per key (the shared lock table is finite).
const BULK_LOCK_KEYS: usize = 2_000;

/// Lock order, the same everywhere: the source-level lock (shared here,
/// exclusive for a full rebuild or a bulk statement), then users by lock
/// key, then items by lock key. Returns true when the whole source is held.
fn lock_users(source_id: i32, users: &[String], items: &[String]) -> bool {
    if users.len() + items.len() > BULK_LOCK_KEYS {
        run_cached(
            "SELECT pg_catalog.pg_advisory_xact_lock(-$1, 0)",
            &[source_id.into()],
            |_| Ok(()),
        );
        return true;
    }
    run_cached(
        "SELECT pg_catalog.pg_advisory_xact_lock_shared(-$1, 0)",
        &[source_id.into()],
        |_| Ok(()),
    );
    run_cached(
        "SELECT count(pg_catalog.pg_advisory_xact_lock($1, h)) \
         FROM (SELECT DISTINCT pg_catalog.hashtext(u) AS h FROM unnest($2::text[]) u ORDER BY 1) s",
        &[source_id.into(), users.to_vec().into()],
        |_| Ok(()),
    );
    false
}

fn load_states(source_id: i32, users: &[String]) -> HashMap<String, InterestState> {
    run_cached(
        "SELECT s.user_key, s.t_ref, s.total, s.events, i.centroid, i.mass, i.last_seen, i.events, i.weight \
         FROM interest.user_states s \
         LEFT JOIN LATERAL (SELECT * FROM interest.user_interests i \
                            WHERE i.source_id = s.source_id AND i.user_key = s.user_key) i ON true \
         WHERE s.source_id = $1 AND s.user_key = ANY($2) ORDER BY s.user_key, i.slot",
        &[source_id.into(), users.to_vec().into()],
        |t| {
            let mut states: HashMap<String, InterestState> = HashMap::new();
            for r in t {
                let user = r.get::<String>(1)?.unwrap();
                if !states.contains_key(&user) {
                    let total = r.get::<Embedding>(3)?.unwrap().into_vec();
                    states.insert(
                        user.clone(),
                        InterestState {
                            t_ref: r.get::<f64>(2)?.unwrap(),
                            total: total.iter().map(|&v| v as f64).collect(),
                            centroids: Vec::new(),
                            events: r.get::<i64>(4)?.unwrap() as u64,
                        },
                    );
                }
                if let Some(c) = r.get::<Embedding>(5)? {
                    states.get_mut(&user).unwrap().centroids.push(Centroid {
                        sum: c.into_vec().iter().map(|&v| v as f64).collect(),
                        mass: r.get::<f64>(6)?.unwrap(),
                        weight: r.get::<f64>(9)?.unwrap(),
                        last_seen: r.get::<f64>(7)?.unwrap(),
                        events: r.get::<i64>(8)?.unwrap() as u64,
                    });
                }
            }
            Ok(states)
        },
    )
}

fn to_embedding(v: &[f64]) -> Embedding {
    Embedding::new(v.iter().map(|&x| x as f32).collect())
}

/// Writes the users' rows and those sub-interest rows that differ from
/// `stored` (what the table holds).
fn save_states(
    source_id: i32,
    states: &HashMap<String, InterestState>,
    stored: &HashMap<String, Vec<Centroid>>,
) {
    let mut users = Vec::new();
    let mut t_refs = Vec::new();
    let mut totals = Vec::new();
    let mut counts = Vec::new();
    let mut slots: Vec<i32> = Vec::new();
    let mut i_weights: Vec<f64> = Vec::new();
    let (mut i_users, mut i_slots, mut i_vecs, mut i_mass, mut i_seen, mut i_events) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for (user, s) in states {
        users.push(user.clone());
        t_refs.push(s.t_ref);
        totals.push(to_embedding(&s.total));
        counts.push(s.events as i64);
        slots.push(s.centroids.len() as i32);
        let before = stored.get(user);
        for (slot, c) in s.centroids.iter().enumerate() {
            if before.and_then(|b| b.get(slot)) == Some(c) {
                continue;
            }
            i_users.push(user.clone());
            i_slots.push(slot as i32);
            i_vecs.push(to_embedding(&c.sum));
            i_mass.push(c.mass);
            i_seen.push(c.last_seen);
            i_events.push(c.events as i64);
            i_weights.push(c.weight);
        }
    }
    // One statement: upsert the users' rows, drop sub-interests past each
    // user's new count, upsert the rest (disjoint rows, so no conflicts).
    run_cached(
        "WITH st AS ( \
           INSERT INTO interest.user_states (source_id, user_key, t_ref, total, events, updated_at) \
           SELECT $1, u, t, e, n, now() FROM unnest($2::text[], $3::float8[], $4::interest.embedding[], $5::int8[]) AS x(u, t, e, n) \
           ON CONFLICT (source_id, user_key) DO UPDATE \
           SET t_ref = excluded.t_ref, total = excluded.total, events = excluded.events, updated_at = excluded.updated_at \
           RETURNING 1), \
         gone AS ( \
           DELETE FROM interest.user_interests i USING unnest($2::text[], $6::int4[]) AS k(u, n) \
           WHERE i.source_id = $1 AND i.user_key = k.u AND i.slot >= k.n \
           RETURNING 1) \
         INSERT INTO interest.user_interests (source_id, user_key, slot, centroid, mass, weight, last_seen, events) \
         SELECT $1, u, s, c, m, w, l, n \
         FROM unnest($7::text[], $8::int4[], $9::interest.embedding[], $10::float8[], $11::float8[], $12::int8[], $13::float8[]) AS x(u, s, c, m, l, n, w) \
         ON CONFLICT (source_id, user_key, slot) DO UPDATE \
         SET centroid = excluded.centroid, mass = excluded.mass, weight = excluded.weight, last_seen = excluded.last_seen, events = excluded.events",
        &[
            source_id.into(),
            users.into(),
            t_refs.into(),
            totals.into(),
            counts.into(),
            slots.into(),
            i_users.into(),
            i_slots.into(),
            i_vecs.into(),
            i_mass.into(),
            i_seen.into(),
            i_events.into(),
            i_weights.into(),
        ],
        |_| Ok(()),
    );
}

/// Deleted or updated events (the old and the new rows' user, item, time,
/// weight): co-visitation counts and links of the users' changed histories
/// are taken back or added, then the users' states and recent lists are
/// recomputed from the table.
#[pg_extern(security_definer, volatile, parallel_unsafe)]
#[search_path(pg_catalog, interest)]
#[allow(clippy::too_many_arguments)]
fn _events_rewritten(
    source_id: i32,
    old_users: Option<Vec<Option<String>>>,
    old_items: Option<Vec<Option<String>>>,
    old_times: Option<Vec<Option<f64>>>,
    old_weights: Option<Vec<Option<f64>>>,
    new_users: Option<Vec<Option<String>>>,
    new_items: Option<Vec<Option<String>>>,
    new_times: Option<Vec<Option<f64>>>,
    new_weights: Option<Vec<Option<f64>>>,
) -> i64 {
    let src = writable_event_source(
        source_id,
        pg_sys::ACL_DELETE | pg_sys::ACL_UPDATE,
        "rewrite events",
    );
    let visits = |u: Option<Vec<Option<String>>>,
                  i: Option<Vec<Option<String>>>,
                  t: Option<Vec<Option<f64>>>,
                  w: Option<Vec<Option<f64>>>| {
        let (u, i, t, w) = (
            u.unwrap_or_default(),
            i.unwrap_or_default(),
            t.unwrap_or_default(),
            w.unwrap_or_default(),
        );
        let mut users: Vec<String> = u.iter().flatten().cloned().collect();
        let mut visits: Vec<(String, String, f64)> = Vec::new();
        for n in 0..u.len() {
            // The same rule as for inserted events: a visit has a user, an
            // item, a time and a non-zero weight.
            if let (Some(u), Some(Some(i)), Some(Some(t))) = (&u[n], i.get(n), t.get(n)) {
                if w.get(n).copied().flatten().unwrap_or(1.0) != 0.0 {
                    visits.push((u.clone(), i.clone(), *t));
                }
            }
        }
        users.sort();
        (users, visits)
    };
    let (mut users, removed) = visits(old_users, old_items, old_times, old_weights);
    let (new_user_keys, added) = visits(new_users, new_items, new_times, new_weights);
    users.extend(new_user_keys);
    users.sort();
    users.dedup();
    if users.is_empty() {
        return 0;
    }
    let bulk = lock_users(src.id, &users, &[]);
    // The users' queued events leave the queue, read with the table in one
    // snapshot: co-visitation has not counted them yet, so they are "added"
    // in the histories below (one round of item locks: a second round could
    // deadlock); an event queued after that snapshot stays queued.
    let (queued, history) = claim_and_read(&src, &users);
    // Each user's visits as the table holds them now, in the order a
    // rebuild replays them; before the statement: without the added rows,
    // with the removed ones (placed after events of the same time).
    let mut after: BTreeMap<String, Vec<(String, f64)>> =
        users.iter().map(|u| (u.clone(), Vec::new())).collect();
    for n in 0..history.len() {
        let (Some(u), Some(i), Some(t)) = (&history.users[n], &history.items[n], history.times[n])
        else {
            continue;
        };
        if history.weights[n].unwrap_or(1.0) != 0.0 {
            after.entry(u.clone()).or_default().push((i.clone(), t));
        }
    }
    let by_user = |visits: Vec<(String, String, f64)>| {
        let mut m: HashMap<String, Vec<(String, f64)>> = HashMap::new();
        for (u, i, t) in visits {
            m.entry(u).or_default().push((i, t));
        }
        m
    };
    let mut added = added;
    for n in 0..queued.len() {
        if let (Some(u), Some(i), Some(t)) = (&queued.users[n], &queued.items[n], queued.times[n]) {
            added.push((u.clone(), i.clone(), t));
        }
    }
    let (mut added, mut removed) = (by_user(added), by_user(removed));
    let mut histories = Vec::with_capacity(after.len());
    for (user, now) in after {
        // Removed rows back in first, then added ones out: a queued event
        // that this statement deleted was never counted, and is not before.
        let mut before = now.clone();
        for (i, t) in removed.remove(&user).unwrap_or_default() {
            let pos = before.partition_point(|(_, bt)| *bt <= t);
            before.insert(pos, (i, t));
        }
        for (i, t) in added.remove(&user).unwrap_or_default() {
            if let Some(pos) = before.iter().rposition(|(bi, bt)| *bi == i && *bt == t) {
                before.remove(pos);
            }
        }
        if before != now {
            histories.push((before, now));
        }
    }
    covisit::rewrite_histories(src.id, histories, bulk);
    replay_users(&src, &users, history, bulk)
}

/// In one statement (one snapshot): claims the users' queued events and
/// reads their events from the table, in the order a rebuild replays them.
fn claim_and_read(src: &EventSource, users: &[String]) -> (EventRows, EventRows) {
    let query = format!(
        "WITH claimed AS (DELETE FROM interest.event_queue WHERE source_id = $2 AND user_key = ANY($1) \
                          RETURNING seq, user_key, item_key, t, weight, embedding) \
         SELECT 0 AS part, seq, user_key, item_key, t, weight, NULL::text, embedding, NULL::tid AS row_id FROM claimed \
         UNION ALL \
         SELECT 1, NULL, h.* FROM (SELECT {list}, NULL::interest.embedding, ctid FROM {rel} WHERE {user} = ANY($1)) h \
         ORDER BY part, seq, t, row_id",
        list = src.select_list,
        rel = src.relname,
        user = src.user_expr
    );
    let (mut queued, mut history) = (EventRows::default(), EventRows::default());
    Spi::connect_mut(|c| {
        for r in c.update(&query, None, &[users.to_vec().into(), src.id.into()])? {
            let rows = if r.get::<i32>(1)? == Some(0) {
                &mut queued
            } else {
                &mut history
            };
            rows.push_spi(&r, 3)?;
        }
        Ok::<_, pgrx::spi::Error>(())
    })
    .unwrap_or_else(|e| spi_error(e));
    history.vectors.clear(); // table rows: free text is embedded when applied
    (queued, history)
}

/// Recomputes the users' states and recent lists from `history` (their
/// events as `claim_and_read` read them) plus their profiles; their locks
/// are held.
fn replay_users(
    src: &EventSource,
    users: &[String],
    history: EventRows,
    whole_source: bool,
) -> i64 {
    for table in [
        "user_interests",
        "user_states",
        "pending_events",
        "user_recent",
    ] {
        Spi::run_with_args(
            &format!("DELETE FROM interest.{table} WHERE source_id = $1 AND user_key = ANY($2)"),
            &[src.id.into(), users.to_vec().into()],
        )
        .unwrap_or_else(|e| spi_error(e));
    }
    let total = history.len() as i64;
    apply_event_rows(
        src,
        history,
        load_profiles(src.id, Some(users)),
        CovisitMode::RecentOnly,
        Locks::Held { whole_source },
    );
    total
}

/// Recomputes every user's state; only the table's owner may.
#[pg_extern(security_definer, strict, volatile, parallel_unsafe)]
#[search_path(pg_catalog, interest)]
fn _rebuild_all(source_id: i32) -> i64 {
    let src = load_event_source(source_id);
    if !_outer_role_owns(src.relid) {
        raise(
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("must be owner of table {}", src.relname),
            "A full rebuild recomputes every user's interest state.",
            "Run interest.rebuild as the table's owner.",
        );
    }
    // Exclusive source lock: waits for in-flight incremental updates, holds off new ones.
    Spi::run_with_args(
        "SELECT pg_catalog.pg_advisory_xact_lock(-$1, 0)",
        &[source_id.into()],
    )
    .unwrap_or_else(|e| spi_error(e));
    replay_all(&src)
}

/// Recomputes every user's state, the counts and the links from the events
/// table, in time order; the caller holds the source lock exclusively.
fn replay_all(src: &EventSource) -> i64 {
    let source_id = src.id;
    for table in [
        "user_interests",
        "user_states",
        "user_recent",
        "item_stats",
        "pending_events",
    ] {
        Spi::run_with_args(
            &format!("DELETE FROM interest.{table} WHERE source_id = $1"),
            &[source_id.into()],
        )
        .unwrap_or_else(|e| spi_error(e));
    }
    // The queue empties in the same statement that reads the table (one
    // snapshot): an event is either read here and dropped from the queue,
    // or committed later and still queued.
    let query = format!(
        "WITH unqueued AS (DELETE FROM interest.event_queue WHERE source_id = $1) \
         SELECT {} FROM {} ORDER BY 3, ctid",
        src.select_list, src.relname
    );
    let mut events = EventRows::default();
    Spi::connect_mut(|c| {
        for r in c.update(&query, None, &[source_id.into()])? {
            events.users.push(r.get::<String>(1)?);
            events.items.push(r.get::<String>(2)?);
            events.times.push(r.get::<f64>(3)?);
            events.weights.push(r.get::<f64>(4)?);
            events.texts.push(r.get::<String>(5)?);
        }
        Ok::<_, pgrx::spi::Error>(())
    })
    .unwrap_or_else(|e| spi_error(e));
    let total = events.len() as i64;
    // Same path as incremental maintenance, on the whole history at once.
    apply_event_rows(
        src,
        events,
        load_profiles(src.id, None),
        CovisitMode::Full,
        Locks::Held { whole_source: true },
    );
    total
}

/// Text profiles as events at the time they were set (cold start).
fn load_profiles(source_id: i32, users: Option<&[String]>) -> Vec<Resolved> {
    Spi::connect(|c| {
        let t = c.select(
            "SELECT user_key, embedding, set_at FROM interest.user_profiles \
             WHERE source_id = $1 AND ($2::text[] IS NULL OR user_key = ANY($2))",
            None,
            &[source_id.into(), users.map(|u| u.to_vec()).into()],
        )?;
        t.map(|r| {
            Ok(Resolved {
                user: r.get::<String>(1)?.unwrap(),
                vector: r.get::<Embedding>(2)?.unwrap().into_vec(),
                weight: 1.0,
                t: r.get::<f64>(3)?.unwrap(),
            })
        })
        .collect::<Result<Vec<_>, pgrx::spi::Error>>()
    })
    .unwrap_or_else(|e| spi_error(e))
}

/// Sets (or, with NULL, clears) a user's text profile, then recomputes the
/// user from the events table plus the profile.
#[pg_extern(security_definer, volatile, parallel_unsafe)]
#[search_path(pg_catalog, interest)]
fn _set_profile(user_key: &str, profile: Option<&str>, source_id: i32) -> bool {
    let src = writable_event_source(
        source_id,
        pg_sys::ACL_INSERT | pg_sys::ACL_UPDATE,
        "set profiles",
    );
    let users = vec![user_key.to_string()];
    let bulk = lock_users(src.id, &users, &[]);
    // The user's queued events: counted for co-visitation now (the state is
    // recomputed below from the same snapshot's table rows).
    let (queued, history) = claim_and_read(&src, &users);
    if queued.len() > 0 {
        apply_event_rows(
            &src,
            queued,
            Vec::new(),
            CovisitMode::Full,
            Locks::Held { whole_source: bulk },
        );
    }
    match profile {
        Some(text) => {
            let vector = embed_texts(&item_model(src.item_source_id), &[text]).remove(0);
            Spi::run_with_args(
                "INSERT INTO interest.user_profiles (source_id, user_key, profile, embedding, set_at) \
                 VALUES ($1, $2, $3, $4, extract(epoch FROM now())) \
                 ON CONFLICT (source_id, user_key) DO UPDATE \
                 SET profile = excluded.profile, embedding = excluded.embedding, set_at = excluded.set_at",
                &[source_id.into(), user_key.into(), text.into(), Embedding::new(vector).into()],
            )
            .unwrap_or_else(|e| spi_error(e));
        }
        None => {
            Spi::run_with_args(
                "DELETE FROM interest.user_profiles WHERE source_id = $1 AND user_key = $2",
                &[source_id.into(), user_key.into()],
            )
            .unwrap_or_else(|e| spi_error(e));
        }
    }
    replay_users(&src, &users, history, bulk);
    profile.is_some()
}

/// The events source for `events` (an attached table's OID), or the only one.
#[pg_extern(stable, parallel_unsafe)]
fn _event_source(events: Option<pg_sys::Oid>) -> i32 {
    // (Spi::get_one errors on an empty result, so read through a table.)
    let ids: Vec<i32> = Spi::connect(|c| {
        let t = match events {
            Some(rel) => c.select(
                "SELECT id FROM interest.event_sources WHERE relid = $1::regclass",
                None,
                &[rel.into()],
            )?,
            None => c.select(
                "SELECT id FROM interest.event_sources ORDER BY id",
                None,
                &[],
            )?,
        };
        t.map(|r| r.get::<i32>(1).map(|v| v.unwrap()))
            .collect::<Result<Vec<_>, _>>()
    })
    .unwrap_or_else(|e| spi_error(e));
    let n = ids.len();
    let ids = if n == 1 { Some(ids[0]) } else { None };
    ids.unwrap_or_else(|| match (events, n) {
        (Some(_), _) => raise(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            "that table is not an attached events table",
            "interest.event_sources has no row for it.",
            "Call interest.attach_events first.",
        ),
        (None, 0) => raise(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            "no events table is attached",
            "User interests come from an attached events table.",
            "Call interest.attach_events first.",
        ),
        (None, n) => raise(
            PgSqlErrorCode::ERRCODE_AMBIGUOUS_PARAMETER,
            "several events tables are attached",
            format!("{n} events tables are attached."),
            "Name one with events => 'my_events'.",
        ),
    })
}

pub(crate) fn require_read(src: &EventSource) {
    require_privilege(
        src.relid,
        &src.relname,
        pg_sys::ACL_SELECT,
        "read interests",
    );
}

/// What readers see of a user: the stored state and recent items with the
/// user's queued events folded in, exactly as the next fold will store them.
pub(crate) struct UserView {
    pub state: Option<InterestState>,
    /// Most recent last (the context co-visitation scores from).
    pub recent: Vec<String>,
}

pub(crate) fn load_user(src: &EventSource, user_key: &str) -> UserView {
    // One statement, so one snapshot: a fold that commits meanwhile can
    // neither hide a queued event nor count it twice.
    type Queued = (i64, Option<String>, f64, f64, Option<Vec<f32>>);
    let (state, mut queued, recent): (Option<InterestState>, Vec<Queued>, (Vec<String>, Vec<f64>)) = run_cached(
        "SELECT 0 AS part, i.slot, s.t_ref, s.total, s.events, i.centroid, i.mass, i.last_seen, i.events, i.weight, \
                NULL::int8 AS seq, NULL::text, NULL::float8, NULL::float8, NULL::interest.embedding, NULL::text[], NULL::float8[] \
         FROM interest.user_states s \
         LEFT JOIN interest.user_interests i ON i.source_id = s.source_id AND i.user_key = s.user_key \
         WHERE s.source_id = $1 AND s.user_key = $2 \
         UNION ALL \
         SELECT 1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, q.seq, q.item_key, q.t, q.weight, q.embedding, NULL, NULL \
         FROM interest.event_queue q WHERE q.source_id = $1 AND q.user_key = $2 \
         UNION ALL \
         SELECT 2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, r.items, r.times \
         FROM interest.user_recent r WHERE r.source_id = $1 AND r.user_key = $2 \
         ORDER BY part, slot, seq",
        &[src.id.into(), user_key.into()],
        |t| {
            let mut state: Option<InterestState> = None;
            let mut queued = Vec::new();
            let mut recent = (Vec::new(), Vec::new());
            for r in t {
                match r.get::<i32>(1)?.unwrap_or(-1) {
                    0 => {
                        let s = state.get_or_insert_with(|| InterestState {
                            t_ref: 0.0,
                            total: Vec::new(),
                            centroids: Vec::new(),
                            events: 0,
                        });
                        if s.total.is_empty() {
                            s.t_ref = r.get::<f64>(3)?.unwrap_or(0.0);
                            s.total = r.get::<Embedding>(4)?.unwrap().into_vec().iter().map(|&v| v as f64).collect();
                            s.events = r.get::<i64>(5)?.unwrap_or(0) as u64;
                        }
                        if let Some(c) = r.get::<Embedding>(6)? {
                            s.centroids.push(Centroid {
                                sum: c.into_vec().iter().map(|&v| v as f64).collect(),
                                mass: r.get::<f64>(7)?.unwrap_or(0.0),
                                weight: r.get::<f64>(10)?.unwrap_or(0.0),
                                last_seen: r.get::<f64>(8)?.unwrap_or(0.0),
                                events: r.get::<i64>(9)?.unwrap_or(0) as u64,
                            });
                        }
                    }
                    1 => queued.push((
                        r.get::<i64>(11)?.unwrap_or(0),
                        r.get::<String>(12)?,
                        r.get::<f64>(13)?.unwrap_or(0.0),
                        r.get::<f64>(14)?.unwrap_or(0.0),
                        r.get::<Embedding>(15)?.map(|e| e.into_vec()),
                    )),
                    _ => {
                        recent = (
                            r.get::<Vec<String>>(16)?.unwrap_or_default(),
                            r.get::<Vec<f64>>(17)?.unwrap_or_default(),
                        )
                    }
                }
            }
            Ok((state, queued, recent))
        },
    );
    let (mut recent_items, mut recent_times) = recent;
    let mut state = state;
    if !queued.is_empty() {
        // The order a fold applies them in: by time, ties in arrival order.
        queued.sort_by(|a, b| a.2.total_cmp(&b.2));
        let keys: Vec<String> = queued.iter().filter_map(|q| q.1.clone()).collect();
        let vectors = match src.item_source_id {
            Some(item_src) => item_vectors(item_src, &keys),
            None => HashMap::new(),
        };
        let p = covisit::params();
        let mut resolved = Vec::with_capacity(queued.len());
        for (_, item, t, weight, text_vector) in queued {
            if weight == 0.0 {
                continue; // as a fold: a zero weight is no event
            }
            if let Some(item) = &item {
                interest_core::covisit::push_recent(
                    &mut recent_items,
                    &mut recent_times,
                    item.clone(),
                    t,
                    &p,
                );
            }
            // An item without an embedding waits in pending_events, as in a fold.
            let vector = match &item {
                Some(item) => vectors.get(item).cloned(),
                None => text_vector,
            };
            if let Some(vector) = vector {
                resolved.push(Resolved {
                    user: user_key.to_string(),
                    vector,
                    weight,
                    t,
                });
            }
        }
        // Skipped events are a fold's to report (report_skipped).
        apply_user_events(
            &mut state,
            &mut resolved,
            src,
            current_center(src).as_deref().map(|c| c.as_slice()),
        );
    }
    UserView {
        state,
        recent: recent_items,
    }
}

/// The user's interest vector: sub-interests combined by decayed weight.
/// NULL for a user with no (applied) events.
#[pg_extern(security_definer, stable, parallel_unsafe)]
#[search_path(pg_catalog, interest)]
fn _user_vector(user_key: &str, source_id: i32) -> Option<Embedding> {
    let src = load_event_source(source_id);
    require_read(&src);
    let state = load_user(&src, user_key).state?;
    state.user_vector().map(Embedding::new)
}

/// Each sub-interest of a user: its vector, share of the decayed weight, last
/// event, event count, and the user's recent items nearest to it.
#[pg_extern(security_definer, stable, parallel_unsafe)]
#[search_path(pg_catalog, interest)]
fn _interests(
    user_key: &str,
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
    let src = load_event_source(source_id);
    require_read(&src);
    let Some(state) = load_user(&src, user_key).state else {
        return TableIterator::new(Vec::new());
    };
    // The user's 50 most recent items and their vectors.
    let recent_sql = format!(
        "SELECT i FROM (SELECT {item} AS i, max({time}) AS t FROM {rel} WHERE {user} = $1 AND {item} IS NOT NULL \
         GROUP BY 1 ORDER BY 2 DESC LIMIT 50) s",
        item = src.item_expr,
        time = src.time_expr,
        rel = src.relname,
        user = src.user_expr
    );
    let recent: Vec<String> = Spi::connect(|c| {
        c.select(&recent_sql, None, &[user_key.into()])?
            .map(|r| r.get::<String>(1).map(|v| v.unwrap_or_default()))
            .collect::<Result<Vec<_>, _>>()
    })
    .unwrap_or_else(|e| spi_error(e));
    let vectors = match src.item_source_id {
        Some(item_src) => item_vectors(item_src, &recent),
        None => HashMap::new(),
    };
    let total_mass: f64 = state.centroids.iter().map(|c| c.mass).sum();
    let rows: Vec<_> = state
        .centroids
        .iter()
        .enumerate()
        .map(|(slot, c)| {
            let dir: Vec<f32> = c.sum.iter().map(|&v| v as f32).collect();
            let mut near: Vec<(f64, &String)> = recent
                .iter()
                .filter_map(|k| {
                    vectors
                        .get(k)
                        .map(|v| (interest_core::kernels::cosine_distance(&dir, v), k))
                })
                .filter(|(d, _)| !d.is_nan())
                .collect();
            near.sort_by(|a, b| a.0.total_cmp(&b.0));
            let mut unit = dir.clone();
            interest_core::kernels::normalize_in_place(&mut unit);
            (
                slot as i32,
                if total_mass > 0.0 {
                    c.mass / total_mass
                } else {
                    0.0
                },
                c.last_seen,
                c.events as i64,
                Embedding::new(unit),
                near.into_iter().take(3).map(|(_, k)| k.clone()).collect(),
            )
        })
        .collect();
    TableIterator::new(rows)
}

struct ItemSource {
    relid: pg_sys::Oid,
    relname: String,
    model: String,
}

fn load_item_source(id: i32) -> ItemSource {
    Spi::connect(|c| {
        let t = c.select(
            "SELECT relid::oid, relid::regclass::text, model FROM interest.item_sources WHERE id = $1",
            Some(1),
            &[id.into()],
        )?;
        if t.is_empty() {
            return Ok(None);
        }
        let r = t.first();
        Ok::<_, pgrx::spi::Error>(Some(ItemSource {
            relid: r.get::<pg_sys::Oid>(1)?.unwrap(),
            relname: r.get::<String>(2)?.unwrap(),
            model: r.get::<String>(3)?.unwrap(),
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

/// Embeds changed item texts (NULL text removes the embedding) and applies
/// the events that were waiting for these items.
#[pg_extern(security_definer, volatile, parallel_unsafe)]
#[search_path(pg_catalog, interest)]
fn _items_changed(source_id: i32, ids: Vec<Option<String>>, texts: Vec<Option<String>>) -> i64 {
    let src = writable_item_source(
        source_id,
        pg_sys::ACL_INSERT | pg_sys::ACL_UPDATE,
        "embed items",
    );
    let present: Vec<(String, &str)> = ids
        .iter()
        .zip(&texts)
        .filter_map(|(k, t)| Some((k.clone()?, t.as_deref()?)))
        .collect();
    let refs: Vec<&str> = present.iter().map(|p| p.1).collect();
    let vectors = embed_texts(&src.model, &refs);
    let keys: Vec<String> = present.into_iter().map(|p| p.0).collect();
    let removed: Vec<String> = ids
        .iter()
        .zip(&texts)
        .filter_map(|(k, t)| if t.is_none() { k.clone() } else { None })
        .collect();
    store_items(
        source_id,
        keys,
        vectors.into_iter().map(Embedding::new).collect(),
        removed,
    )
}

/// Stores precomputed embeddings (bring your own); NULL removes one.
#[pg_extern(security_definer, volatile, parallel_unsafe)]
#[search_path(pg_catalog, interest)]
fn _items_set(source_id: i32, ids: Vec<Option<String>>, embeddings: Vec<Option<String>>) -> i64 {
    writable_item_source(
        source_id,
        pg_sys::ACL_INSERT | pg_sys::ACL_UPDATE,
        "store item embeddings",
    );
    let mut keys = Vec::new();
    let mut vecs = Vec::new();
    let mut removed = Vec::new();
    for (k, e) in ids.into_iter().zip(embeddings) {
        match (k, e) {
            (Some(k), Some(e)) => {
                // The trigger passes the column cast to interest.embedding, as text.
                let values = interest_core::text_format::parse(&e)
                    .unwrap_or_else(|err| crate::errors::raise_vector_error(err));
                keys.push(k);
                vecs.push(Embedding::new(values));
            }
            (Some(k), None) => removed.push(k),
            _ => {}
        }
    }
    store_items(source_id, keys, vecs, removed)
}

#[pg_extern(security_definer, volatile, parallel_unsafe)]
#[search_path(pg_catalog, interest)]
fn _items_deleted(source_id: i32, ids: Vec<Option<String>>) -> i64 {
    writable_item_source(
        source_id,
        pg_sys::ACL_DELETE | pg_sys::ACL_UPDATE,
        "remove item embeddings",
    );
    let keys: Vec<String> = ids.into_iter().flatten().collect();
    bump_catalog_version(source_id);
    // Users keep what these items contributed: the events happened.
    Spi::get_one_with_args::<i64>(
        "WITH d AS (DELETE FROM interest.item_embeddings WHERE source_id = $1 AND item_key = ANY($2) RETURNING 1) SELECT count(*) FROM d",
        &[source_id.into(), keys.into()],
    )
    .unwrap_or_else(|e| spi_error(e))
    .unwrap_or(0)
}

fn store_items(
    source_id: i32,
    keys: Vec<String>,
    vectors: Vec<Embedding>,
    removed: Vec<String>,
) -> i64 {
    let n = keys.len() as i64;
    if !keys.is_empty() || !removed.is_empty() {
        bump_catalog_version(source_id);
    }
    if !keys.is_empty() {
        Spi::run_with_args(
            "INSERT INTO interest.item_embeddings (source_id, item_key, embedding, updated_at) \
             SELECT $1, k, e, now() FROM unnest($2::text[], $3::interest.embedding[]) AS x(k, e) \
             ON CONFLICT (source_id, item_key) DO UPDATE SET embedding = excluded.embedding, updated_at = excluded.updated_at",
            &[source_id.into(), keys.clone().into(), vectors.into()],
        )
        .unwrap_or_else(|e| spi_error(e));
    }
    if !removed.is_empty() {
        Spi::run_with_args(
            "DELETE FROM interest.item_embeddings WHERE source_id = $1 AND item_key = ANY($2)",
            &[source_id.into(), removed.into()],
        )
        .unwrap_or_else(|e| spi_error(e));
    }
    if !keys.is_empty() {
        apply_pending(source_id, &keys);
    }
    n
}

/// recommend() caches each catalog per backend; this tells it to reload.
fn bump_catalog_version(source_id: i32) {
    run_cached(
        "UPDATE interest.item_sources SET version = version + 1 WHERE id = $1",
        &[source_id.into()],
        |_| Ok(()),
    );
}

/// Events that arrived before their item's embedding: applied now, in time order.
fn apply_pending(item_source_id: i32, keys: &[String]) {
    let sources: Vec<i32> = Spi::connect(|c| {
        c.select(
            "SELECT id FROM interest.event_sources WHERE item_source_id = $1 ORDER BY id",
            None,
            &[item_source_id.into()],
        )?
        .map(|r| r.get::<i32>(1).map(|v| v.unwrap()))
        .collect::<Result<Vec<_>, _>>()
    })
    .unwrap_or_else(|e| spi_error(e));
    for source_id in sources {
        let rows: Vec<(Option<String>, Option<String>, Option<f64>, Option<f64>)> = Spi::connect_mut(|c| {
            c.update(
                "WITH d AS (DELETE FROM interest.pending_events WHERE source_id = $1 AND item_key = ANY($2) \
                 RETURNING user_key, item_key, t, weight) SELECT * FROM d ORDER BY t",
                None,
                &[source_id.into(), keys.to_vec().into()],
            )?
            .map(|r| Ok((r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
            .collect::<Result<Vec<_>, pgrx::spi::Error>>()
        })
        .unwrap_or_else(|e| spi_error(e));
        if rows.is_empty() {
            continue;
        }
        let src = load_event_source(source_id);
        let mut events = EventRows::default();
        for r in rows {
            events.users.push(r.0);
            events.items.push(r.1);
            events.times.push(r.2);
            events.weights.push(r.3);
            events.texts.push(None);
        }
        apply_event_rows(&src, events, Vec::new(), CovisitMode::Skip, Locks::Take);
    }
}

/// Of the given keys (and values), those whose item has no embedding yet.
#[pg_extern(security_definer, stable, parallel_unsafe)]
#[search_path(pg_catalog, interest)]
fn _missing_items(
    source_id: i32,
    keys: Vec<Option<String>>,
    vals: Vec<Option<String>>,
) -> TableIterator<
    'static,
    (
        name!(keys, Vec<Option<String>>),
        name!(vals, Vec<Option<String>>),
    ),
> {
    writable_item_source(
        source_id,
        pg_sys::ACL_INSERT | pg_sys::ACL_UPDATE,
        "embed items",
    );
    let present: std::collections::HashSet<String> = Spi::connect(|c| {
        c.select(
            "SELECT item_key FROM interest.item_embeddings WHERE source_id = $1 AND item_key = ANY($2)",
            None,
            &[source_id.into(), keys.clone().into()],
        )?
        .map(|r| r.get::<String>(1).map(|v| v.unwrap_or_default()))
        .collect::<Result<_, _>>()
    })
    .unwrap_or_else(|e| spi_error(e));
    let (k, v): (Vec<_>, Vec<_>) = keys
        .into_iter()
        .zip(vals)
        .filter(|(k, _)| k.as_ref().is_some_and(|k| !present.contains(k)))
        .unzip();
    TableIterator::new(vec![(k, v)])
}

/// Per attached items table: rows (estimate), embedded items, events waiting for items.
#[pg_extern(security_definer, stable, parallel_unsafe)]
#[search_path(pg_catalog, interest)]
fn _item_status() -> TableIterator<
    'static,
    (
        name!(items, String),
        name!(row_estimate, i64),
        name!(embedded, i64),
        name!(pending_events, i64),
    ),
> {
    let rows = Spi::connect(|c| {
        c.select(
            "SELECT s.relid::regclass::text, greatest(c.reltuples, 0)::int8, \
                    (SELECT count(*) FROM interest.item_embeddings e WHERE e.source_id = s.id), \
                    (SELECT count(*) FROM interest.pending_events p JOIN interest.event_sources es ON es.id = p.source_id WHERE es.item_source_id = s.id) \
             FROM interest.item_sources s JOIN pg_class c ON c.oid = s.relid ORDER BY 1",
            None,
            &[],
        )?
        .map(|r| Ok((r.get::<String>(1)?.unwrap(), r.get::<i64>(2)?.unwrap(), r.get::<i64>(3)?.unwrap(), r.get::<i64>(4)?.unwrap())))
        .collect::<Result<Vec<_>, pgrx::spi::Error>>()
    })
    .unwrap_or_else(|e| spi_error(e));
    TableIterator::new(rows)
}

/// Per attached events table: users with a state, queued events, events
/// waiting for their item, the last fold.
#[pg_extern(security_definer, stable, parallel_unsafe)]
#[search_path(pg_catalog, interest)]
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
    let rows = Spi::connect(|c| {
        c.select(
            "SELECT s.relid::regclass::text, \
                    (SELECT count(*) FROM interest.user_states u WHERE u.source_id = s.id), \
                    (SELECT count(*) FROM interest.event_queue q WHERE q.source_id = s.id), \
                    (SELECT count(*) FROM interest.pending_events p WHERE p.source_id = s.id), \
                    s.folded_at \
             FROM interest.event_sources s ORDER BY 1",
            None,
            &[],
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
}
