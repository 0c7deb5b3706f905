//! What readers see of a user whose events are still queued: the queued
//! events folded into copies of the stored state and recent list exactly as
//! the next fold will store them, so reads are current without waiting.

use crate::covisit::{push_recent, CovisitParams};
use crate::covisit_history::sort_visits;
use crate::events::{EventRow, Subject};
use crate::interest_state::{apply_in_order, InterestParams, InterestState, StateEvent};

/// A queued event of the user being read (its user is implied).
#[derive(Clone, Debug, PartialEq)]
pub struct QueuedEvent {
    pub item: Option<String>,
    pub t: f64,
    pub weight: f64,
    /// A free-text event's embedding (embedded when it was queued).
    pub vector: Option<Vec<f32>>,
}

/// Folds `queued` (in arrival order) into the state and the recent list
/// (`recent_items` oldest first, with their times): events in time order,
/// ties in arrival order; every accepted item event joins the recent list
/// (in `covisit_history::visit_order`, as a fold puts it there);
/// an item without an embedding (`item_vector` gives None) moves no state,
/// as in a fold, where it waits for its embedding.
#[allow(clippy::too_many_arguments)]
pub fn overlay_queued(
    state: &mut Option<InterestState>,
    recent_items: &mut Vec<String>,
    recent_times: &mut Vec<f64>,
    queued: Vec<QueuedEvent>,
    item_vector: impl Fn(&str) -> Option<Vec<f32>>,
    interest: &InterestParams,
    covisit: &CovisitParams,
    center: Option<&[f32]>,
) {
    let mut queued = queued;
    queued.sort_by(|a, b| a.t.total_cmp(&b.t));
    let mut events = Vec::with_capacity(queued.len());
    let mut visits = Vec::new();
    for q in queued {
        let row = EventRow {
            user: Some(String::new()),
            item: q.item,
            t: Some(q.t),
            weight: Some(q.weight),
            text: None,
            vector: q.vector,
        };
        let Some(e) = row.accept() else { continue };
        let vector = match e.subject {
            Subject::Item(item) => {
                let vector = item_vector(&item);
                visits.push((item, e.t));
                vector
            }
            Subject::Vector(v) => Some(v),
            Subject::Text(_) => None,
        };
        if let Some(vector) = vector {
            events.push(StateEvent {
                vector,
                weight: e.weight,
                t: e.t,
            });
        }
    }
    // The recent list moves in co-visitation's order, as in a fold.
    sort_visits(&mut visits);
    for (item, t) in visits {
        push_recent(recent_items, recent_times, item, t, covisit);
    }
    // Skipped events are the fold's to report.
    apply_in_order(state, &mut events, interest, center);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queued(item: Option<&str>, t: f64, weight: f64) -> QueuedEvent {
        QueuedEvent {
            item: item.map(str::to_string),
            t,
            weight,
            vector: None,
        }
    }

    #[test]
    fn queued_events_fold_as_a_fold_would() {
        let (ip, cp) = (InterestParams::default(), CovisitParams::default());
        let vectors = |item: &str| match item {
            "a" => Some(vec![1.0, 0.0]),
            "b" => Some(vec![0.0, 1.0]),
            _ => None,
        };
        let mut state = None;
        let (mut items, mut times) = (vec!["old".to_string()], vec![1.0]);
        overlay_queued(
            &mut state,
            &mut items,
            &mut times,
            vec![
                queued(Some("b"), 30.0, 1.0),
                queued(Some("a"), 20.0, 2.0),
                queued(Some("unembedded"), 25.0, 1.0),
                queued(Some("zero"), 26.0, 0.0),
                QueuedEvent {
                    item: None,
                    t: 40.0,
                    weight: 1.0,
                    vector: Some(vec![1.0, 1.0]),
                },
            ],
            vectors,
            &ip,
            &cp,
            None,
        );
        assert_eq!(items, ["old", "a", "unembedded", "b"]);
        assert_eq!(times, [1.0, 20.0, 25.0, 30.0]);
        let mut by_hand = InterestState::new(2, 20.0);
        by_hand.apply(&[1.0, 0.0], 2.0, 20.0, &ip);
        by_hand.apply(&[0.0, 1.0], 1.0, 30.0, &ip);
        by_hand.apply(&[1.0, 1.0], 1.0, 40.0, &ip);
        assert_eq!(state, Some(by_hand));
    }
}
