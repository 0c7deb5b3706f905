//! When a ranking is asked. Scores depend only on times relative to the
//! source's own events: after a quiet period the lists are the ones the last
//! events gave, and shifting every event and the clock together changes
//! nothing.

/// How far before the source's last event a ranking may be asked, in its
/// shortest half-life: decayed values then grow by at most 2^256 (and their
/// squares by 2^512), far inside f64's range, where an earlier time would
/// overflow them to infinity and NaN.
pub const MAX_HALF_LIVES_BEFORE_LAST_EVENT: f64 = 256.0;

/// The time rankings are computed at: the time asked (now() or `as_of`),
/// but never after the source's last event, nor more than
/// `MAX_HALF_LIVES_BEFORE_LAST_EVENT` of its shortest half-life before it
/// (every value has decayed beyond any difference by then).
pub fn ranking_clock(asked: f64, last_event: Option<f64>, shortest_half_life: f64) -> f64 {
    match last_event {
        Some(last) if last.is_finite() => asked
            .min(last)
            .max(last - MAX_HALF_LIVES_BEFORE_LAST_EVENT * shortest_half_life),
        _ => asked,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_stops_at_the_last_event() {
        assert_eq!(ranking_clock(100.0, Some(40.0), 1.0), 40.0);
        assert_eq!(
            ranking_clock(30.0, Some(40.0), 1.0),
            30.0,
            "as_of in the past"
        );
        assert_eq!(ranking_clock(100.0, None, 1.0), 100.0, "no events yet");
        assert_eq!(ranking_clock(100.0, Some(f64::NEG_INFINITY), 1.0), 100.0);
    }

    #[test]
    fn the_clock_goes_back_at_most_so_many_half_lives() {
        let last = 1e9;
        let earliest = last - MAX_HALF_LIVES_BEFORE_LAST_EVENT * 10.0;
        assert_eq!(ranking_clock(0.0, Some(last), 10.0), earliest);
        assert_eq!(
            ranking_clock(earliest + 1.0, Some(last), 10.0),
            earliest + 1.0
        );
        assert_eq!(
            ranking_clock(0.0, Some(last), f64::INFINITY),
            0.0,
            "nothing decays"
        );
        // the decay factor at the earliest clock stays finite, squared too
        let factor = ((last - earliest) / 10.0).exp2();
        assert!((factor * factor).is_finite());
    }
}
