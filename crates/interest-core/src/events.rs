//! Events as the application's rows give them, and the one rule for which
//! of them count: the triggers, folds, rebuilds and reads all accept an
//! event through `EventRow::accept` (and the triggers' SQL fast path through
//! `sql_item_event_rule`, the same rule written in SQL).

use crate::keys::{key_fits, sql_key_fits};
use std::collections::BTreeMap;

/// The weight of an event whose weight is NULL.
pub const DEFAULT_WEIGHT: f64 = 1.0;

/// The largest weight, in magnitude, an event may have: states add weights
/// times growth factors (up to 2^32) into single-precision vectors, which a
/// weight near 1e30 would overflow to infinity.
pub const MAX_ABS_WEIGHT: f64 = 1e9;

/// Statements with at least this many events are applied at once (a bulk
/// load is one pass); smaller ones are queued and folded in batches.
pub const DIRECT_APPLY_EVENTS: usize = 64;

/// An event as a row gives it: any field may be NULL.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EventRow {
    pub user: Option<String>,
    pub item: Option<String>,
    /// Epoch seconds.
    pub t: Option<f64>,
    pub weight: Option<f64>,
    pub text: Option<String>,
    /// A free-text event's embedding, when it was computed already (queued events).
    pub vector: Option<Vec<f32>>,
}

/// What an accepted event is about.
#[derive(Clone, Debug, PartialEq)]
pub enum Subject {
    Item(String),
    /// Free text, still to be embedded.
    Text(String),
    /// Free text, embedded.
    Vector(Vec<f32>),
}

/// An accepted event.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub user: String,
    pub subject: Subject,
    pub t: f64,
    pub weight: f64,
}

/// Why a row is not an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejected {
    /// No user, no time, or neither an item nor a text: not an event at all.
    Incomplete,
    /// A zero weight: no event either (a neutral signal).
    ZeroWeight,
    /// An infinite or NaN time or weight, or a weight beyond
    /// `MAX_ABS_WEIGHT`: a bad value, logged and skipped (one such value
    /// must never stop a table's bookkeeping).
    NotFinite,
    /// A user or item key longer than `keys::MAX_KEY_BYTES`: a bad value,
    /// logged and skipped (it could not be stored).
    KeyTooLong,
}

impl EventRow {
    /// The validity rule: an event needs a user, a finite time, a finite
    /// non-zero weight (NULL counts as `DEFAULT_WEIGHT`), keys that fit
    /// (`keys::key_fits`) and a subject: its item when it has one (an item
    /// wins over a text), else its embedded or raw free text.
    pub fn check(self) -> Result<Event, Rejected> {
        let weight = self.weight.unwrap_or(DEFAULT_WEIGHT);
        let (Some(user), Some(t)) = (self.user, self.t) else {
            return Err(Rejected::Incomplete);
        };
        if !t.is_finite() || !weight.is_finite() || weight.abs() > MAX_ABS_WEIGHT {
            return Err(Rejected::NotFinite);
        }
        if !key_fits(&user) || self.item.as_deref().is_some_and(|i| !key_fits(i)) {
            return Err(Rejected::KeyTooLong);
        }
        if weight == 0.0 {
            return Err(Rejected::ZeroWeight);
        }
        let subject = match (self.item, self.vector, self.text) {
            (Some(item), _, _) => Subject::Item(item),
            (None, Some(v), _) => Subject::Vector(v),
            (None, None, Some(text)) => Subject::Text(text),
            (None, None, None) => return Err(Rejected::Incomplete),
        };
        Ok(Event {
            user,
            subject,
            t,
            weight,
        })
    }

    /// `check`, for callers that only need the event.
    pub fn accept(self) -> Option<Event> {
        self.check().ok()
    }
}

impl Event {
    /// The item of an item event.
    pub fn item(&self) -> Option<&str> {
        match &self.subject {
            Subject::Item(i) => Some(i),
            _ => None,
        }
    }
}

/// `accept`'s rule for item events, as a SQL predicate over the text
/// columns named `user` and `item` and the float8 columns `t` and `weight`
/// (the triggers' fast path). In SQL, NaN is larger than infinity, so
/// `abs(x) < 'infinity'` is finiteness.
pub fn sql_item_event_rule(user: &str, item: &str, t: &str, weight: &str) -> String {
    format!(
        "{user} IS NOT NULL AND {item} IS NOT NULL AND abs({t}) < 'infinity' \
         AND coalesce({weight}, {DEFAULT_WEIGHT}) <> 0 AND abs(coalesce({weight}, {DEFAULT_WEIGHT})) <= {MAX_ABS_WEIGHT:e} \
         AND {} AND {}",
        sql_key_fits(user),
        sql_key_fits(item)
    )
}

/// True (in SQL) when a row has a bad value that `check` rejects as one
/// (`Rejected::NotFinite`, `Rejected::KeyTooLong`): such rows leave the
/// triggers' fast path so that they are logged.
pub fn sql_bad_value(user: &str, item: &str, t: &str, weight: &str) -> String {
    format!(
        "(NOT abs({t}) < 'infinity' OR NOT abs({weight}) <= {MAX_ABS_WEIGHT:e} OR NOT {} OR NOT {})",
        sql_key_fits(user),
        sql_key_fits(item)
    )
}

/// Groups events per user (users in key order) in apply order: by time,
/// ties in arrival order.
pub fn group_by_user<T>(
    events: impl IntoIterator<Item = T>,
    user: impl Fn(&T) -> &str,
    t: impl Fn(&T) -> f64,
) -> BTreeMap<String, Vec<T>> {
    let mut groups: BTreeMap<String, Vec<T>> = BTreeMap::new();
    for e in events {
        match groups.get_mut(user(&e)) {
            Some(g) => g.push(e),
            None => {
                groups.insert(user(&e).to_string(), vec![e]);
            }
        }
    }
    for g in groups.values_mut() {
        g.sort_by(|a, b| t(a).total_cmp(&t(b)));
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(
        user: Option<&str>,
        item: Option<&str>,
        t: Option<f64>,
        weight: Option<f64>,
    ) -> EventRow {
        EventRow {
            user: user.map(str::to_string),
            item: item.map(str::to_string),
            t,
            weight,
            ..Default::default()
        }
    }

    #[test]
    fn an_event_needs_a_user_a_time_and_a_non_zero_weight() {
        assert!(row(Some("u"), Some("i"), Some(1.0), None)
            .accept()
            .is_some());
        assert!(row(None, Some("i"), Some(1.0), None).accept().is_none());
        assert!(row(Some("u"), Some("i"), None, None).accept().is_none());
        assert!(row(Some("u"), Some("i"), Some(1.0), Some(0.0))
            .accept()
            .is_none());
        let disliked = row(Some("u"), Some("i"), Some(1.0), Some(-3.0))
            .accept()
            .unwrap();
        assert_eq!(disliked.weight, -3.0);
        let default = row(Some("u"), Some("i"), Some(1.0), None).accept().unwrap();
        assert_eq!(default.weight, DEFAULT_WEIGHT);
    }

    #[test]
    fn an_event_needs_an_item_or_a_text() {
        assert!(row(Some("u"), None, Some(1.0), None).accept().is_none());
        let mut text = row(Some("u"), None, Some(1.0), None);
        text.text = Some("red shoes".into());
        assert_eq!(
            text.clone().accept().unwrap().subject,
            Subject::Text("red shoes".into())
        );
        text.vector = Some(vec![1.0, 0.0]);
        assert_eq!(
            text.accept().unwrap().subject,
            Subject::Vector(vec![1.0, 0.0])
        );
    }

    #[test]
    fn an_item_wins_over_a_text() {
        let mut r = row(Some("u"), Some("i"), Some(1.0), None);
        r.text = Some("ignored".into());
        r.vector = Some(vec![1.0]);
        let e = r.accept().unwrap();
        assert_eq!(e.subject, Subject::Item("i".into()));
        assert_eq!(e.item(), Some("i"));
    }

    #[test]
    fn the_sql_rule_names_the_columns_and_the_default_weight() {
        assert_eq!(
            sql_item_event_rule("u", "i", "t", "w"),
            format!(
                "u IS NOT NULL AND i IS NOT NULL AND abs(t) < 'infinity' \
                 AND coalesce(w, 1) <> 0 AND abs(coalesce(w, 1)) <= 1e9 AND {} AND {}",
                sql_key_fits("u"),
                sql_key_fits("i")
            )
        );
    }

    #[test]
    fn over_long_keys_are_rejected_as_bad_values() {
        let long = "k".repeat(crate::keys::MAX_KEY_BYTES + 1);
        assert_eq!(
            row(Some(&long), Some("i"), Some(1.0), None).check(),
            Err(Rejected::KeyTooLong)
        );
        assert_eq!(
            row(Some("u"), Some(&long), Some(1.0), None).check(),
            Err(Rejected::KeyTooLong)
        );
        // a long free text is no key
        let mut text = row(Some("u"), None, Some(1.0), None);
        text.text = Some(long);
        assert!(text.accept().is_some());
    }

    #[test]
    fn infinite_or_nan_times_and_weights_are_rejected_as_bad_values() {
        assert_eq!(
            row(Some("u"), Some("i"), Some(1.0), Some(-1e10)).check(),
            Err(Rejected::NotFinite),
            "a weight beyond MAX_ABS_WEIGHT"
        );
        assert!(row(Some("u"), Some("i"), Some(1.0), Some(MAX_ABS_WEIGHT))
            .accept()
            .is_some());
        for x in [f64::INFINITY, f64::NEG_INFINITY, f64::NAN] {
            assert_eq!(
                row(Some("u"), Some("i"), Some(x), None).check(),
                Err(Rejected::NotFinite)
            );
            assert_eq!(
                row(Some("u"), Some("i"), Some(1.0), Some(x)).check(),
                Err(Rejected::NotFinite)
            );
        }
        assert_eq!(
            row(None, Some("i"), Some(f64::NAN), None).check(),
            Err(Rejected::Incomplete)
        );
        assert_eq!(
            row(Some("u"), Some("i"), Some(1.0), Some(0.0)).check(),
            Err(Rejected::ZeroWeight)
        );
    }

    #[test]
    fn grouping_sorts_each_user_by_time_keeping_ties_in_arrival_order() {
        let events = vec![
            ("b", 2.0, 0),
            ("a", 5.0, 1),
            ("a", 1.0, 2),
            ("a", 5.0, 3),
            ("b", 1.0, 4),
        ];
        let g = group_by_user(events, |e| e.0, |e| e.1);
        assert_eq!(g.keys().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(g["a"].iter().map(|e| e.2).collect::<Vec<_>>(), [2, 1, 3]);
        assert_eq!(g["b"].iter().map(|e| e.2).collect::<Vec<_>>(), [4, 0]);
    }
}
