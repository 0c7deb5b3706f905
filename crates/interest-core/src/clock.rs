//! When a ranking is asked. Scores depend only on times relative to the
//! source's own events: after a quiet period the lists are the ones the last
//! events gave, and shifting every event and the clock together changes
//! nothing.
//!
//! Stored values are read at the clock but never before their own reference
//! time (`decay::decayed_since`): a value asked about before it was written
//! counts as written, so no factor grows past 1 however early the clock is
//! (an `as_of` far in the past, or an event dated centuries ahead that
//! holds one row's reference time there).

/// The time rankings are computed at: the time asked (now() or `as_of`),
/// but never after the source's last event.
pub fn ranking_clock(asked: f64, last_event: Option<f64>) -> f64 {
    match last_event {
        Some(last) if last.is_finite() => asked.min(last),
        _ => asked,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_stops_at_the_last_event() {
        assert_eq!(ranking_clock(100.0, Some(40.0)), 40.0);
        assert_eq!(ranking_clock(30.0, Some(40.0)), 30.0, "as_of in the past");
        assert_eq!(ranking_clock(100.0, None), 100.0, "no events yet");
        assert_eq!(ranking_clock(100.0, Some(f64::NEG_INFINITY)), 100.0);
    }

    #[test]
    fn an_event_far_ahead_does_not_move_the_clock_forward() {
        let now = 1.8e9;
        assert_eq!(ranking_clock(now, Some(6.3e10)), now);
    }
}
