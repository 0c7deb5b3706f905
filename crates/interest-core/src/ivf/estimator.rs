//! A query prepared once per scan, and the distance estimates for the
//! entries of one list.

use super::metric::Metric;
use super::rabitq::{CodeFactors, QueryTable};
use super::rotation::Rotation;
use crate::kernels;

pub struct PreparedQuery {
    pub metric: Metric,
    /// As the index stores vectors (unit-length for cosine).
    pub vector: Vec<f32>,
    rotated: Vec<f32>,
}

impl PreparedQuery {
    /// None when the query cannot be ranked (zero vector under cosine).
    pub fn new(metric: Metric, rotation: &Rotation, raw: &[f32]) -> Option<PreparedQuery> {
        let mut vector = raw.to_vec();
        if !metric.prepare(&mut vector) {
            return None;
        }
        let rotated = rotation.apply(&vector);
        Some(PreparedQuery {
            metric,
            vector,
            rotated,
        })
    }

    /// The exact value of the operator for a stored vector.
    pub fn distance(&self, stored: &[f32]) -> f64 {
        self.metric.distance(&self.vector, stored)
    }

    /// How near a list's centre is, to order lists for probing.
    pub fn centre_distance(&self, centre: &[f32]) -> f32 {
        match self.metric {
            Metric::InnerProduct => -kernels::dot(&self.vector, centre),
            Metric::Cosine | Metric::L2 => kernels::l2_squared(&self.vector, centre),
        }
    }

    pub fn for_list(&self, centre: &[f32], rotated_centre: &[f32]) -> ListEstimator {
        match self.metric {
            Metric::InnerProduct => ListEstimator {
                metric: self.metric,
                table: QueryTable::new(&self.rotated),
                offset: kernels::dot(&self.vector, centre),
                error_scale: error_scale(&self.rotated),
            },
            Metric::Cosine | Metric::L2 => {
                let w: Vec<f32> = self
                    .rotated
                    .iter()
                    .zip(rotated_centre)
                    .map(|(q, c)| q - c)
                    .collect();
                ListEstimator {
                    metric: self.metric,
                    offset: kernels::l2_squared(&self.vector, centre),
                    error_scale: error_scale(&w),
                    table: QueryTable::new(&w),
                }
            }
        }
    }
}

fn error_scale(w: &[f32]) -> f32 {
    kernels::norm(w) as f32 * EPSILON_0 / ((w.len().max(2) - 1) as f32).sqrt()
}

/// RaBitQ's confidence multiplier: an estimate is off by more than
/// `EPSILON_0 / sqrt(D - 1)` of its scale with negligible probability.
pub const EPSILON_0: f32 = 3.5;

/// Estimates, on the scale `PreparedQuery::distance` orders by, for the
/// entries of one list, with a lower bound that holds with high
/// probability (the scan reranks every entry whose bound could beat what
/// it returns).
pub struct ListEstimator {
    metric: Metric,
    table: QueryTable,
    /// |q - c|² for Euclidean and cosine, <q, c> for inner product.
    offset: f32,
    /// |w| times RaBitQ's error scale.
    error_scale: f32,
}

impl ListEstimator {
    /// (estimate, lower bound).
    #[inline]
    pub fn estimate(&self, bits: &[u8], factors: CodeFactors) -> (f32, f32) {
        let r = factors.residual_norm;
        let along = r * self.table.estimate_dot(bits, factors);
        let a = factors.alignment.min(1.0);
        // Error of <u, w> is at most |w| sqrt(1 - a²) / a · ε0 / sqrt(D - 1).
        let slack = r * self.error_scale * ((1.0 - a * a).max(0.0)).sqrt() / a;
        match self.metric {
            Metric::InnerProduct => {
                let estimate = -(self.offset + along);
                (estimate, estimate - slack)
            }
            Metric::L2 => {
                // |o - q|² = r² + |q - c|² - 2 <o - c, q - c>
                let squared = r * r + self.offset - 2.0 * along;
                (
                    squared.max(0.0).sqrt(),
                    (squared - 2.0 * slack).max(0.0).sqrt(),
                )
            }
            Metric::Cosine => {
                let squared = r * r + self.offset - 2.0 * along;
                (0.5 * squared, 0.5 * (squared - 2.0 * slack))
            }
        }
    }
}
