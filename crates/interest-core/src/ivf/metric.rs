//! The distances the index answers, and how vectors are stored for each.

use crate::kernels;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// `<=>`: vectors are stored unit-length, so cosine is 1 - dot.
    Cosine,
    /// `<#>`: negative inner product.
    InnerProduct,
    /// `<->`: Euclidean distance.
    L2,
}

impl Metric {
    pub fn code(self) -> u32 {
        match self {
            Metric::Cosine => 1,
            Metric::InnerProduct => 2,
            Metric::L2 => 3,
        }
    }

    pub fn from_code(code: u32) -> Option<Metric> {
        match code {
            1 => Some(Metric::Cosine),
            2 => Some(Metric::InnerProduct),
            3 => Some(Metric::L2),
            _ => None,
        }
    }

    /// Makes `v` the vector the index stores; false when it has no place in
    /// the index (a zero vector has no direction, so no cosine).
    pub fn prepare(self, v: &mut [f32]) -> bool {
        if self == Metric::Cosine {
            if kernels::norm(v) == 0.0 {
                return false;
            }
            kernels::normalize_in_place(v);
        }
        true
    }

    /// The operator's value for two prepared vectors.
    pub fn distance(self, a: &[f32], b: &[f32]) -> f64 {
        match self {
            Metric::Cosine => (1.0 - kernels::dot(a, b) as f64).max(0.0),
            Metric::InnerProduct => kernels::negative_inner_product(a, b),
            Metric::L2 => kernels::l2_distance(a, b),
        }
    }

    /// Whether k-means should keep centres unit-length (spherical k-means).
    pub fn spherical(self) -> bool {
        self == Metric::Cosine
    }
}
