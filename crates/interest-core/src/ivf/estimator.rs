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
                    table: QueryTable::new(&w),
                }
            }
        }
    }
}

/// Estimates, on the scale `PreparedQuery::distance` orders by, for the
/// entries of one list.
pub struct ListEstimator {
    metric: Metric,
    table: QueryTable,
    /// |q - c|² for Euclidean and cosine, <q, c> for inner product.
    offset: f32,
}

impl ListEstimator {
    #[inline]
    pub fn estimate(&self, bits: &[u8], factors: CodeFactors) -> f32 {
        let r = factors.residual_norm;
        let along = r * self.table.estimate_dot(bits, factors);
        match self.metric {
            Metric::InnerProduct => -(self.offset + along),
            // |o - q|² = r² + |q - c|² - 2 <o - c, q - c>
            Metric::L2 => (r * r + self.offset - 2.0 * along).max(0.0).sqrt(),
            Metric::Cosine => 0.5 * (r * r + self.offset - 2.0 * along),
        }
    }
}
