//! The candidate path's view of a whole source, without reading it: the
//! trending items (highest recent count) with their counts, and the
//! source's last event, each read per call from the top of an index on the
//! source's item stats. Read afresh by every call, so that every call and
//! explain() at one moment agree on the clock and on popularity's scale.

use crate::sources::EventSource;
use crate::spi::{one_read_cached, read_cached};
use interest_core::covisit::ItemStats;

type StatsRow = (String, ItemStats<String>);

/// The top of the source's trend order (`ItemStats::trend`), most popular
/// first, as one call read it.
pub(crate) struct Trending {
    rows: Vec<StatsRow>,
    /// Fewer rows than asked for: these are all the source's items with a
    /// recent count.
    complete: bool,
}

impl Trending {
    /// The `n` most popular items now with their counts.
    pub(crate) fn read(src: &EventSource, n: usize) -> Trending {
        let rows = top(src, n);
        Trending {
            complete: rows.len() < n,
            rows,
        }
    }

    /// The `n` most popular items with their counts: these rows when they
    /// hold enough, a longer read otherwise (a widened call).
    pub(crate) fn most_popular(&self, src: &EventSource, n: usize) -> Vec<StatsRow> {
        if n <= self.rows.len() || self.complete {
            return self.rows.iter().take(n).cloned().collect();
        }
        top(src, n)
    }

    /// The largest recent count at `now`; None when no item has events.
    /// Among items whose last event is at or before `now`, the trend order
    /// is the order of recent counts, so the first such item from the top is
    /// their largest; items with events after `now` (an `as_of` in the past,
    /// or events dated ahead) sort by their later counts and are read until
    /// it, each counted as at its last event: one dated centuries ahead
    /// neither sets the scale nor hides the real peak.
    pub(crate) fn peak_recent_count(&self, src: &EventSource, now: f64) -> Option<f64> {
        // How much more each further read takes, when the rows read hold
        // only items with events after `now`.
        const GROWTH: usize = 16;
        let peak_of = |rows: &[StatsRow]| {
            let mut peak: Option<f64> = None;
            for (_, s) in rows {
                let r = s.recent_at(now, &src.covisit);
                peak = Some(peak.map_or(r, |p| p.max(r)));
                // (its reference time too: a link rebases the row at its time)
                if s.last_seen.max(s.t_ref) <= now {
                    return (peak, true);
                }
            }
            (peak, false)
        };
        let (mut peak, mut found) = peak_of(&self.rows);
        let (mut read, mut complete) = (self.rows.len(), self.complete);
        // A longer read is scanned from its top: in a transaction that has
        // written, each read has a snapshot of its own.
        while !found && !complete {
            let n = read.max(1) * GROWTH;
            let rows = top(src, n);
            (read, complete) = (rows.len(), rows.len() < n);
            (peak, found) = peak_of(&rows);
        }
        peak
    }
}

/// The time of the source's last event (None: no events yet).
pub(crate) fn last_event(src: &EventSource) -> Option<f64> {
    one_read_cached::<f64>(
        "SELECT max(last_seen) FROM interest.item_stats WHERE source_id = $1",
        &[src.id.into()],
    )
}

fn top(src: &EventSource, n: usize) -> Vec<StatsRow> {
    // The limit is part of the statement, so that the planner knows how few
    // rows are wanted (a generic plan would guess a tenth of the source);
    // calls ask for few distinct limits.
    let sql = format!(
        "SELECT item_key, t_ref, events, first_seen, last_seen, recent_events FROM interest.item_stats \
         WHERE source_id = $1 AND trend IS NOT NULL ORDER BY trend DESC, item_key LIMIT {n}"
    );
    read_cached(&sql, &[src.id.into()], |t| {
        t.map(|r| super::covisit::stats_row(&r, Vec::new()))
            .collect()
    })
}
