//! A user's sub-interests as `interest.interests()` shows them: share of the
//! mass, last event, event count, direction, and the user's recent items
//! nearest to each.

use crate::interest_state::InterestState;
use crate::kernels;

#[derive(Debug, Clone, PartialEq)]
pub struct InterestSummary {
    pub slot: usize,
    /// Share of the user's sub-interest mass (the shares sum to 1).
    pub share: f64,
    pub last_seen: f64,
    pub events: u64,
    /// Unit length (zero when the sub-interest has no direction).
    pub direction: Vec<f32>,
    /// Recent items nearest to the direction, nearest first.
    pub nearest_recent: Vec<String>,
}

/// `recent`: the user's recent items with their vectors.
pub fn summarize(
    state: &InterestState,
    recent: &[(String, Vec<f32>)],
    nearest: usize,
) -> Vec<InterestSummary> {
    let total_mass: f64 = state.centroids.iter().map(|c| c.mass).sum();
    state
        .centroids
        .iter()
        .enumerate()
        .map(|(slot, c)| {
            let dir: Vec<f32> = c.sum.iter().map(|&v| v as f32).collect();
            let mut near: Vec<(f64, &String)> = recent
                .iter()
                .map(|(k, v)| (kernels::cosine_distance(&dir, v), k))
                .filter(|(d, _)| !d.is_nan())
                .collect();
            near.sort_by(|a, b| a.0.total_cmp(&b.0));
            let mut direction = dir;
            kernels::normalize_in_place(&mut direction);
            InterestSummary {
                slot,
                share: if total_mass > 0.0 {
                    c.mass / total_mass
                } else {
                    0.0
                },
                last_seen: c.last_seen,
                events: c.events,
                direction,
                nearest_recent: near
                    .into_iter()
                    .take(nearest)
                    .map(|(_, k)| k.clone())
                    .collect(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interest_state::InterestParams;

    #[test]
    fn each_interest_names_its_nearest_recent_items() {
        let p = InterestParams {
            join_similarity: 0.5,
            ..InterestParams::default()
        };
        let mut s = InterestState::new(2, 0.0);
        s.apply(&[1.0, 0.0], 3.0, 0.0, &p);
        s.apply(&[0.0, 1.0], 1.0, 0.0, &p);
        let recent = vec![
            ("east".to_string(), vec![1.0, 0.1]),
            ("north".to_string(), vec![0.1, 1.0]),
            ("zero".to_string(), vec![0.0, 0.0]),
        ];
        let out = summarize(&s, &recent, 1);
        assert_eq!(out.len(), 2);
        assert!((out[0].share - 0.75).abs() < 1e-12 && (out[1].share - 0.25).abs() < 1e-12);
        assert_eq!(out[0].nearest_recent, ["east"]);
        assert_eq!(out[1].nearest_recent, ["north"]);
        assert!((out[0].direction[0] - 1.0).abs() < 1e-6);
        assert_eq!(out[0].events + out[1].events, 2);
    }
}
