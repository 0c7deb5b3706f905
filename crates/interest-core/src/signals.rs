//! Item signals that do not depend on the user: popularity and freshness,
//! each in [0, 1] so that ranking weights are comparable.

/// Freshness halves every week after an item first appears.
pub const FRESHNESS_HALF_LIFE_SECS: f64 = 7.0 * 86_400.0;

/// Popularity in [0, 1]: log(1 + count) / log(1 + peak), where the peak is
/// the largest count of the whole source when known (`source_peak`: a call
/// that scores only some items keeps the scale of one that scores them all),
/// and never below a count given.
pub fn popularity_scores(counts: &[f64], source_peak: Option<f64>) -> Vec<f64> {
    let max = counts
        .iter()
        .cloned()
        .fold(source_peak.unwrap_or(0.0), f64::max);
    let d = (1.0 + max).ln();
    counts
        .iter()
        .map(|c| {
            if d > 0.0 {
                (1.0 + c.max(0.0)).ln() / d
            } else {
                0.0
            }
        })
        .collect()
}

/// Freshness in [0, 1]: halves every `half_life` since the item first appeared.
pub fn freshness_score(first_seen: Option<f64>, now: f64, half_life: f64) -> f64 {
    match first_seen {
        Some(t) => (-(now - t).max(0.0) / half_life).exp2(),
        None => 0.0,
    }
}

/// `freshness_score` of a first appearance that is infinite when unknown
/// (as catalogs keep it).
pub fn freshness_since(first_seen: f64, now: f64, half_life: f64) -> f64 {
    freshness_score(first_seen.is_finite().then_some(first_seen), now, half_life)
}

/// Popularity and freshness of catalog items at `now`, from decayed event
/// counts (scaled to `source_peak` as in `popularity_scores`) and first
/// appearances (infinite when unknown).
pub fn catalog_signals(
    counts: &[f64],
    source_peak: Option<f64>,
    first_seen: &[f64],
    now: f64,
    freshness_half_life: f64,
) -> (Vec<f64>, Vec<f64>) {
    let popularity = popularity_scores(counts, source_peak);
    let freshness = first_seen
        .iter()
        .map(|&first| freshness_since(first, now, freshness_half_life))
        .collect();
    (popularity, freshness)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn popularity_is_log_scaled_to_the_most_popular_item() {
        let p = popularity_scores(&[0.0, 1.0, 3.0, -2.0], None);
        assert_eq!(p[0], 0.0);
        assert!((p[1] - 2f64.ln() / 4f64.ln()).abs() < 1e-12);
        assert_eq!(p[2], 1.0);
        assert_eq!(p[3], 0.0, "negative counts are no popularity");
        assert_eq!(popularity_scores(&[0.0, 0.0], None), [0.0, 0.0]);
    }

    #[test]
    fn popularity_of_some_items_keeps_the_source_scale() {
        let all = popularity_scores(&[1.0, 3.0, 7.0], None);
        let some = popularity_scores(&[1.0, 3.0], Some(7.0));
        assert_eq!(some, all[..2]);
        assert!(
            (some[1] - 2.0 / 3.0).abs() < 1e-12,
            "log 4 / log 8, not 1: the peak is not among them"
        );
        assert_eq!(
            popularity_scores(&[15.0], Some(7.0)),
            [1.0],
            "a count above a stale peak is capped at 1"
        );
    }

    #[test]
    fn freshness_halves_per_half_life_and_never_exceeds_one() {
        assert_eq!(freshness_score(Some(100.0), 100.0, 10.0), 1.0);
        assert_eq!(freshness_score(Some(100.0), 120.0, 10.0), 0.25);
        assert_eq!(
            freshness_score(Some(200.0), 100.0, 10.0),
            1.0,
            "an item from the future is new"
        );
        assert_eq!(freshness_score(None, 100.0, 10.0), 0.0);
    }

    #[test]
    fn catalog_signals_leave_unknown_items_stale() {
        let (p, f) = catalog_signals(&[1.0, 0.0], None, &[50.0, f64::INFINITY], 50.0, 10.0);
        assert_eq!(p, [1.0, 0.0]);
        assert_eq!(f, [1.0, 0.0]);
    }
}
