//! Exponential decay with a reference time. Stored values are kept relative
//! to a reference time `t_ref`: an event at time t adds `growth(t_ref, t)`,
//! and the value at `now` is `decayed(value, t_ref, now)`. Adding needs no
//! pass over old values; when factors grow large, `rebase` moves `t_ref`
//! forward by whole half-lives (an exact power-of-two rescale).

/// Rebase once factors pass 2^32, keeping f32 storage far from overflow.
pub const REBASE_EXPONENT: f64 = 32.0;

/// 2^((t - t_ref) / half_life): the weight, relative to `t_ref`, of an event at `t`.
pub fn growth(t_ref: f64, t: f64, half_life: f64) -> f64 {
    ((t - t_ref) / half_life).exp2()
}

/// A value stored relative to `t_ref`, as seen at `now`.
pub fn decayed(value: f64, t_ref: f64, now: f64, half_life: f64) -> f64 {
    value * (-(now - t_ref) / half_life).exp2()
}

/// A value stored relative to `t_ref`, as seen at `now` but never before
/// `t_ref`: asked earlier, it counts as at `t_ref` (a factor of at most 1,
/// where reading back in time would grow without bound and overflow).
pub fn decayed_since(value: f64, t_ref: f64, now: f64, half_life: f64) -> f64 {
    decayed(value, t_ref, now.max(t_ref), half_life)
}

/// When `t` lies more than `REBASE_EXPONENT` half-lives after `t_ref`: the
/// new reference time (a whole number of half-lives later) and the scale
/// (a power of two) to multiply stored values by.
pub fn rebase(t_ref: f64, t: f64, half_life: f64) -> Option<(f64, f64)> {
    let exponent = (t - t_ref) / half_life;
    if exponent <= REBASE_EXPONENT {
        return None;
    }
    let shift = exponent.floor();
    Some((t_ref + shift * half_life, (-shift).exp2()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_halve_every_half_life() {
        assert_eq!(growth(0.0, 10.0, 10.0), 2.0);
        assert_eq!(decayed(8.0, 0.0, 20.0, 10.0), 2.0);
        assert_eq!(decayed(8.0, 20.0, 20.0, 10.0), 8.0);
    }

    #[test]
    fn reading_before_the_reference_time_never_grows() {
        assert_eq!(decayed_since(8.0, 20.0, 30.0, 10.0), 4.0);
        assert_eq!(decayed_since(8.0, 20.0, 10.0, 10.0), 8.0);
        assert_eq!(decayed_since(8.0, 6.3e10, -6.2e10, 1.0), 8.0);
    }

    #[test]
    fn no_rebase_below_the_threshold() {
        assert_eq!(rebase(0.0, 32.0 * 10.0, 10.0), None);
        assert_eq!(rebase(0.0, -1e9, 10.0), None);
    }

    #[test]
    fn rebasing_is_exact() {
        let (t_ref, half_life) = (1_000.0, 7.0);
        let t = t_ref + 40.5 * half_life;
        let value = 3.0 * growth(t_ref, t_ref + 3.0, half_life);
        let (new_ref, scale) = rebase(t_ref, t, half_life).unwrap();
        assert_eq!(new_ref, t_ref + 40.0 * half_life);
        assert_eq!(scale, 2f64.powi(-40));
        let now = t + 5.0;
        let before = decayed(value, t_ref, now, half_life);
        let after = decayed(value * scale, new_ref, now, half_life);
        assert!((before - after).abs() <= 1e-12 * before.abs());
    }
}
