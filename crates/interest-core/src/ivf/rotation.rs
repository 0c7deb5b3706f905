//! A random orthogonal rotation, generated from a seed so every backend and
//! standby rebuilds the same matrix instead of storing it.
//!
//! RaBitQ's estimates are unbiased for a randomly rotated space; without
//! the rotation, embeddings whose energy sits in a few coordinates would be
//! coded badly by one sign bit per coordinate.

use crate::kernels;
use crate::rng::Rng;

pub struct Rotation {
    dims: usize,
    /// Row-major, rows orthonormal.
    rows: Vec<f32>,
}

impl Rotation {
    pub fn new(dims: usize, seed: u64) -> Rotation {
        let mut rng = Rng::new(seed);
        let mut rows = vec![0f64; dims * dims];
        for value in rows.iter_mut() {
            *value = rng.gaussian();
        }
        // Modified Gram-Schmidt, in f64 so rounding stays far below the
        // codes' own error.
        for i in 0..dims {
            for j in 0..i {
                let (done, rest) = rows.split_at_mut(i * dims);
                let previous = &done[j * dims..(j + 1) * dims];
                let row = &mut rest[..dims];
                let projection: f64 = row.iter().zip(previous).map(|(a, b)| a * b).sum();
                for (a, b) in row.iter_mut().zip(previous) {
                    *a -= projection * b;
                }
            }
            let row = &mut rows[i * dims..(i + 1) * dims];
            let norm = row.iter().map(|a| a * a).sum::<f64>().sqrt();
            for a in row.iter_mut() {
                *a /= norm;
            }
        }
        Rotation {
            dims,
            rows: rows.into_iter().map(|a| a as f32).collect(),
        }
    }

    pub fn dims(&self) -> usize {
        self.dims
    }

    pub fn apply(&self, v: &[f32]) -> Vec<f32> {
        let mut out = vec![0f32; self.dims];
        self.apply_into(v, &mut out);
        out
    }

    pub fn apply_into(&self, v: &[f32], out: &mut [f32]) {
        for (i, value) in out.iter_mut().enumerate() {
            *value = kernels::dot(&self.rows[i * self.dims..(i + 1) * self.dims], v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_lengths_and_angles() {
        let rotation = Rotation::new(40, 7);
        let mut rng = Rng::new(1);
        let a: Vec<f32> = (0..40).map(|_| rng.gaussian() as f32).collect();
        let b: Vec<f32> = (0..40).map(|_| rng.gaussian() as f32).collect();
        let (ra, rb) = (rotation.apply(&a), rotation.apply(&b));
        assert!((kernels::dot(&a, &b) - kernels::dot(&ra, &rb)).abs() < 1e-3);
        assert!((kernels::norm(&a) - kernels::norm(&ra)).abs() < 1e-4);
    }

    #[test]
    fn same_seed_same_matrix() {
        let v: Vec<f32> = (0..17).map(|i| i as f32).collect();
        assert_eq!(
            Rotation::new(17, 3).apply(&v),
            Rotation::new(17, 3).apply(&v)
        );
        assert_ne!(
            Rotation::new(17, 3).apply(&v),
            Rotation::new(17, 4).apply(&v)
        );
    }
}
