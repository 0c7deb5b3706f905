//! The candidate path's view of a whole source, without reading it per
//! call: the trending items (highest recent count), read from the top of an
//! index on the source's item stats and kept per backend for
//! `candidates::TRENDING_REFRESH_SECS`. The clock (the source's last event)
//! and popularity's scale (its most popular item) are read afresh per call,
//! from the top of indexes too, so that every call and explain() at one
//! moment agree on them.

use crate::sources::EventSource;
use crate::spi::{column, extension_oid, one_read_cached};
use interest_core::candidates::{DEFAULT_LIMITS, TRENDING_REFRESH_SECS};
use pgrx::pg_sys;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

pub(crate) struct Trending {
    ext: pg_sys::Oid,
    read_at: Instant,
    /// Most popular first.
    pub keys: Vec<String>,
}

thread_local! {
    static TRENDING: RefCell<HashMap<i32, Rc<Trending>>> = RefCell::new(HashMap::new());
}

pub(crate) fn snapshot(src: &EventSource) -> Rc<Trending> {
    let ext = extension_oid();
    let fresh = Duration::from_secs(TRENDING_REFRESH_SECS);
    if let Some(t) = TRENDING.with(|t| t.borrow().get(&src.id).cloned()) {
        if t.ext == ext && t.read_at.elapsed() < fresh {
            return t;
        }
    }
    let keys = top(src, DEFAULT_LIMITS.trending);
    let t = Rc::new(Trending {
        ext,
        read_at: Instant::now(),
        keys,
    });
    TRENDING.with(|m| m.borrow_mut().insert(src.id, t.clone()));
    t
}

/// The `n` most popular items now, read from the top of item_stats_trend
/// (ItemStats::trend); the snapshot's when it holds enough.
pub(crate) fn most_popular(src: &EventSource, snapshot: &Trending, n: usize) -> Vec<String> {
    if n <= snapshot.keys.len() || snapshot.keys.len() < DEFAULT_LIMITS.trending {
        return snapshot.keys.iter().take(n).cloned().collect();
    }
    top(src, n)
}

/// The time of the source's last event (None: no events yet).
pub(crate) fn last_event(src: &EventSource) -> Option<f64> {
    one_read_cached::<f64>(
        "SELECT max(last_seen) FROM interest.item_stats WHERE source_id = $1",
        &[src.id.into()],
    )
}

/// The largest recent count at `now` (read afresh); None when no item has
/// events. Among items whose last event is at or before `now`, the trend
/// order is the order of recent counts, so the first such item from the top
/// of item_stats_trend is their largest; items with events after `now` (an
/// `as_of` in the past, or events dated ahead) sort by their later counts
/// and are read until it, each counted as at its last event: one dated
/// centuries ahead neither sets the scale nor hides the real peak.
pub(crate) fn peak_recent_count(src: &EventSource, now: f64) -> Option<f64> {
    // Rows read first, and how much more each further read takes: one
    // read when no item has events after `now`.
    const FIRST_READ: usize = 4;
    const GROWTH: usize = 16;
    let mut n = FIRST_READ;
    loop {
        let keys = top(src, n);
        let counts: HashMap<String, _> = super::covisit::load_counts(src.id, &keys)
            .into_iter()
            .collect();
        let mut peak: Option<f64> = None;
        for s in keys.iter().filter_map(|k| counts.get(k)) {
            let r = s.recent_at(now, &src.covisit);
            peak = Some(peak.map_or(r, |p| p.max(r)));
            // (its reference time too: a link rebases the row at its time)
            if s.last_seen.max(s.t_ref) <= now {
                return peak;
            }
        }
        if keys.len() < n {
            return peak;
        }
        n *= GROWTH;
    }
}

fn top(src: &EventSource, n: usize) -> Vec<String> {
    column::<String>(
        "SELECT item_key FROM interest.item_stats WHERE source_id = $1 AND trend IS NOT NULL \
         ORDER BY trend DESC, item_key LIMIT $2",
        &[src.id.into(), (n as i64).into()],
    )
}
