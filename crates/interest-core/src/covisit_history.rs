//! What a DELETE or UPDATE of events does to co-visitation: each touched
//! user's visit history before and after the statement, for
//! `ItemGraph::rewrite_history` to take back or add the difference.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

/// An (item, time) visit in a user's history.
pub type Visit = (String, f64);

/// A user's visit history before and after a statement.
pub type HistoryChange = (Vec<Visit>, Vec<Visit>);

/// The order co-visitation sees one user's visits in: by time, same-time
/// visits by item key. A DELETE has to rebuild the history the graph saw,
/// and the arrival order of same-time rows is gone by then; the key is not.
pub fn visit_order(a: &Visit, b: &Visit) -> Ordering {
    a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0))
}

/// Sorts one user's visits into `visit_order`.
pub fn sort_visits(visits: &mut [Visit]) {
    visits.sort_by(visit_order);
}

/// `now`: each touched user's visits as the table holds them after the
/// statement, in any order (every touched user present, perhaps with none). `removed` and `added`: the (user, item, time) visits the statement
/// removed and added (added includes queued visits not yet counted).
/// Returns (before, after) for the users whose history changed, in user order.
pub fn changed_histories(
    now: BTreeMap<String, Vec<Visit>>,
    removed: Vec<(String, String, f64)>,
    added: Vec<(String, String, f64)>,
) -> Vec<HistoryChange> {
    let by_user = |visits: Vec<(String, String, f64)>| {
        let mut m: HashMap<String, Vec<Visit>> = HashMap::new();
        for (u, i, t) in visits {
            m.entry(u).or_default().push((i, t));
        }
        m
    };
    let (mut removed, mut added) = (by_user(removed), by_user(added));
    let mut out = Vec::with_capacity(now.len());
    for (user, mut after) in now {
        sort_visits(&mut after);
        // Removed rows back in first (at their place in visit order), then
        // added ones out: a queued event that this statement deleted was
        // never counted, and is not in `before`.
        let mut before = after.clone();
        for v in removed.remove(&user).unwrap_or_default() {
            let pos = before.partition_point(|b| visit_order(b, &v) != Ordering::Greater);
            before.insert(pos, v);
        }
        for (i, t) in added.remove(&user).unwrap_or_default() {
            if let Some(pos) = before.iter().rposition(|(bi, bt)| *bi == i && *bt == t) {
                before.remove(pos);
            }
        }
        if before != after {
            out.push((before, after));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[(&str, f64)]) -> Vec<Visit> {
        items.iter().map(|(i, t)| (i.to_string(), *t)).collect()
    }

    #[test]
    fn a_deleted_visit_comes_back_in_time_order_in_before() {
        let now = BTreeMap::from([("u".to_string(), v(&[("a", 1.0), ("c", 3.0)]))]);
        let out = changed_histories(now, vec![("u".into(), "b".into(), 2.0)], vec![]);
        assert_eq!(
            out,
            vec![(
                v(&[("a", 1.0), ("b", 2.0), ("c", 3.0)]),
                v(&[("a", 1.0), ("c", 3.0)])
            )]
        );
    }

    #[test]
    fn same_time_visits_go_in_item_order() {
        // b at 1.0 became d at 1.0, next to a and c at 1.0: b goes back
        // between a and c, and both histories come out in visit order
        let now = BTreeMap::from([("u".to_string(), v(&[("d", 1.0), ("c", 1.0), ("a", 1.0)]))]);
        let out = changed_histories(
            now,
            vec![("u".into(), "b".into(), 1.0)],
            vec![("u".into(), "d".into(), 1.0)],
        );
        assert_eq!(
            out,
            vec![(
                v(&[("a", 1.0), ("b", 1.0), ("c", 1.0)]),
                v(&[("a", 1.0), ("c", 1.0), ("d", 1.0)])
            )]
        );
    }

    #[test]
    fn unchanged_users_and_uncounted_deleted_queued_visits_give_nothing() {
        let now = BTreeMap::from([
            ("quiet".to_string(), v(&[("a", 1.0)])),
            // x was queued (added, never counted) and is deleted by the statement
            ("u".to_string(), v(&[("a", 1.0)])),
        ]);
        let out = changed_histories(
            now,
            vec![("u".into(), "x".into(), 2.0)],
            vec![("u".into(), "x".into(), 2.0)],
        );
        assert!(out.is_empty());
    }

    #[test]
    fn a_user_whose_last_visit_went_has_an_empty_after() {
        let now = BTreeMap::from([("u".to_string(), Vec::new())]);
        let out = changed_histories(now, vec![("u".into(), "a".into(), 1.0)], vec![]);
        assert_eq!(out, vec![(v(&[("a", 1.0)]), vec![])]);
    }
}
