//! The weights a call asks for: each may be left out (NULL in SQL) to take
//! its default, and each is checked.

use crate::ranking::RankWeights;

/// Per-call weights; None takes the default's.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WeightOverrides {
    pub content: Option<f64>,
    pub covisit: Option<f64>,
    pub popularity: Option<f64>,
    pub freshness: Option<f64>,
    pub diversity: Option<f64>,
    pub balance: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum WeightError {
    /// content, covisit, popularity and freshness are non-negative numbers.
    NotNonNegative { name: &'static str, value: f64 },
    /// diversity and balance are fractions.
    NotAFraction { name: &'static str, value: f64 },
}

impl RankWeights {
    /// These weights with the call's overrides, checked.
    pub fn overridden(self, o: &WeightOverrides) -> Result<RankWeights, WeightError> {
        let w = RankWeights {
            content: o.content.unwrap_or(self.content),
            covisit: o.covisit.unwrap_or(self.covisit),
            popularity: o.popularity.unwrap_or(self.popularity),
            freshness: o.freshness.unwrap_or(self.freshness),
            diversity: o.diversity.unwrap_or(self.diversity),
            balance: o.balance.unwrap_or(self.balance),
        };
        for (name, value) in [
            ("content", w.content),
            ("covisit", w.covisit),
            ("popularity", w.popularity),
            ("freshness", w.freshness),
        ] {
            if !value.is_finite() || value < 0.0 {
                return Err(WeightError::NotNonNegative { name, value });
            }
        }
        for (name, value) in [("diversity", w.diversity), ("balance", w.balance)] {
            if !(0.0..=1.0).contains(&value) {
                return Err(WeightError::NotAFraction { name, value });
            }
        }
        Ok(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn left_out_weights_take_the_defaults() {
        let d = RankWeights::default();
        assert_eq!(d.overridden(&WeightOverrides::default()), Ok(d));
        let w = d
            .overridden(&WeightOverrides {
                content: Some(0.7),
                balance: Some(0.0),
                ..Default::default()
            })
            .unwrap();
        assert_eq!((w.content, w.covisit, w.balance), (0.7, d.covisit, 0.0));
    }

    #[test]
    fn bad_weights_are_named() {
        let d = RankWeights::default();
        let bad = |o: WeightOverrides| d.overridden(&o).unwrap_err();
        assert_eq!(
            bad(WeightOverrides {
                covisit: Some(-1.0),
                ..Default::default()
            }),
            WeightError::NotNonNegative {
                name: "covisit",
                value: -1.0
            }
        );
        assert!(matches!(
            bad(WeightOverrides {
                popularity: Some(f64::NAN),
                ..Default::default()
            }),
            WeightError::NotNonNegative {
                name: "popularity",
                ..
            }
        ));
        assert_eq!(
            bad(WeightOverrides {
                diversity: Some(1.5),
                ..Default::default()
            }),
            WeightError::NotAFraction {
                name: "diversity",
                value: 1.5
            }
        );
    }
}
