//! The one-line reason recommend() gives for an item: its parts, largest
//! first, in words.

use crate::ranking::{Scored, UserSignals};

/// Minor parts (popularity, freshness) are named only when they carry this
/// share of the score.
const MINOR_PART_SHARE: f64 = 0.1;

/// Recent items named in a co-visitation reason.
const NAMED_RECENT_ITEMS: usize = 3;

/// `via`: the item's co-visitation contributions as (recent item, value),
/// in any order.
pub fn reason(s: &Scored, user: &UserSignals, via: &[(&str, f64)]) -> String {
    let mut parts: Vec<(f64, String)> = Vec::new();
    if s.covisit > 0.0 {
        let mut via = via.to_vec();
        via.sort_by(|a, b| b.1.total_cmp(&a.1));
        // (a recent item visited twice contributes twice, named once)
        let mut names: Vec<&str> = Vec::with_capacity(NAMED_RECENT_ITEMS);
        for (name, _) in &via {
            if names.len() == NAMED_RECENT_ITEMS {
                break;
            }
            if !names.contains(name) {
                names.push(name);
            }
        }
        parts.push((s.covisit, format!("often follows {}", names.join(", "))));
    }
    if let (true, Some(i)) = (s.content > 0.0, s.interest) {
        let share = user.interests.get(i).map_or(0.0, |x| x.1);
        parts.push((
            s.content,
            format!(
                "matches interest {} ({:.0}% of recent taste)",
                i + 1,
                share * 100.0
            ),
        ));
    }
    if s.popularity > MINOR_PART_SHARE * s.score {
        parts.push((s.popularity, "popular now".into()));
    }
    if s.freshness > MINOR_PART_SHARE * s.score {
        parts.push((s.freshness, "new".into()));
    }
    parts.sort_by(|a, b| b.0.total_cmp(&a.0));
    parts
        .into_iter()
        .map(|p| p.1)
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scored(content: f64, covisit: f64, popularity: f64, freshness: f64) -> Scored {
        Scored {
            item: 0,
            score: content + covisit + popularity + freshness,
            content,
            interest: Some(1),
            covisit,
            popularity,
            freshness,
        }
    }

    fn user() -> UserSignals {
        UserSignals {
            interests: vec![(vec![1.0], 0.75), (vec![1.0], 0.25)],
            covisit: Default::default(),
            covisit_max: None,
        }
    }

    #[test]
    fn parts_are_named_largest_first() {
        let via = [("x", 0.1), ("y", 0.5), ("z", 0.2), ("w", 0.05)];
        let r = reason(&scored(0.2, 0.6, 0.15, 0.0), &user(), &via);
        assert_eq!(
            r,
            "often follows y, z, x; matches interest 2 (25% of recent taste); popular now"
        );
    }

    #[test]
    fn a_recent_item_visited_twice_is_named_once() {
        let via = [("x", 0.3), ("y", 0.2), ("x", 0.25), ("z", 0.1), ("w", 0.05)];
        let r = reason(&scored(0.0, 0.9, 0.0, 0.0), &user(), &via);
        assert_eq!(r, "often follows x, y, z");
    }

    #[test]
    fn minor_parts_below_a_tenth_are_left_out() {
        let r = reason(&scored(0.9, 0.0, 0.05, 0.05), &user(), &[]);
        assert_eq!(r, "matches interest 2 (25% of recent taste)");
        let r = reason(&scored(0.0, 0.0, 0.0, 0.3), &user(), &[]);
        assert_eq!(r, "new");
    }
}
