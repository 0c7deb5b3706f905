//! RaBitQ 1-bit codes: one sign bit per rotated coordinate of a vector's
//! residual to its list centre, plus two numbers that make the estimate of
//! an inner product unbiased.
//!
//! For the residual's direction `u` (rotated) and its code
//! `x = sign(u) / sqrt(D)`, `<u, w> ≈ <x, w> / <x, u>` for any `w`.

/// Bytes of the code of a `dims`-dimensional vector.
pub fn code_bytes(dims: usize) -> usize {
    dims.div_ceil(8)
}

/// What an index entry stores besides its code.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CodeFactors {
    /// |o - c|: the residual's length.
    pub residual_norm: f32,
    /// <x, u>: how well the signs describe the direction (1 at best).
    pub alignment: f32,
}

/// Writes the sign bits of `rotated_residual` into `bits` (bit k of byte j
/// is coordinate 8j + k) and returns the factors.
pub fn encode(rotated_residual: &[f32], bits: &mut [u8]) -> CodeFactors {
    bits.fill(0);
    let dims = rotated_residual.len();
    let mut sum_abs = 0f64;
    let mut sum_sq = 0f64;
    for (i, &value) in rotated_residual.iter().enumerate() {
        if value > 0.0 {
            bits[i / 8] |= 1 << (i % 8);
        }
        sum_abs += value.abs() as f64;
        sum_sq += (value as f64) * (value as f64);
    }
    let norm = sum_sq.sqrt();
    let alignment = if norm > 0.0 {
        (sum_abs / (norm * (dims as f64).sqrt())) as f32
    } else {
        1.0
    };
    CodeFactors {
        residual_norm: norm as f32,
        alignment: alignment.max(f32::MIN_POSITIVE),
    }
}

/// Sums of the four coordinates from `first` over every 4-bit pattern.
fn nibble_sums(first: usize, coordinate: &impl Fn(usize) -> f32) -> [f32; 16] {
    let mut sums = [0f32; 16];
    for pattern in 1usize..16 {
        let lowest = pattern.trailing_zeros() as usize;
        sums[pattern] = sums[pattern & (pattern - 1)] + coordinate(first + lowest);
    }
    sums
}

/// Lookup tables that turn a code into `<x, w>` for one rotated `w`: for
/// each code byte, the sum of `w`'s coordinates over every bit pattern.
pub struct QueryTable {
    tables: Vec<f32>,
    total: f32,
    scale: f32,
}

impl QueryTable {
    pub fn new(rotated_w: &[f32]) -> QueryTable {
        let bytes = code_bytes(rotated_w.len());
        let mut tables = vec![0f32; bytes * 256];
        let coordinate = |i: usize| rotated_w.get(i).copied().unwrap_or(0.0);
        for j in 0..bytes {
            // Sums over the low and the high four bits, then every byte as
            // one of each: 32 + 256 independent adds per byte.
            let (low, high) = (
                nibble_sums(j * 8, &coordinate),
                nibble_sums(j * 8 + 4, &coordinate),
            );
            let table = &mut tables[j * 256..(j + 1) * 256];
            for (h, row) in table.chunks_exact_mut(16).enumerate() {
                for (slot, l) in row.iter_mut().zip(low.iter()) {
                    *slot = l + high[h];
                }
            }
        }
        QueryTable {
            tables,
            total: rotated_w.iter().sum(),
            scale: 1.0 / (rotated_w.len() as f32).sqrt(),
        }
    }

    /// `<x, w>` for the code `bits`.
    #[inline]
    pub fn signed_dot(&self, bits: &[u8]) -> f32 {
        assert!(
            bits.len() * 256 <= self.tables.len(),
            "code longer than the query's tables"
        );
        // Four independent sums: the lookups are not serialized on one add.
        let mut sums = [0f32; 4];
        let lookup = |j: usize, byte: u8| -> f32 {
            // SAFETY: j < bits.len(), and bits.len() * 256 <= tables.len() (asserted above).
            unsafe { *self.tables.get_unchecked(j * 256 + byte as usize) }
        };
        let mut chunks = bits.chunks_exact(4);
        let mut j = 0;
        for chunk in &mut chunks {
            sums[0] += lookup(j, chunk[0]);
            sums[1] += lookup(j + 1, chunk[1]);
            sums[2] += lookup(j + 2, chunk[2]);
            sums[3] += lookup(j + 3, chunk[3]);
            j += 4;
        }
        for (lane, &byte) in chunks.remainder().iter().enumerate() {
            sums[lane] += lookup(j + lane, byte);
        }
        let positive = (sums[0] + sums[1]) + (sums[2] + sums[3]);
        (2.0 * positive - self.total) * self.scale
    }

    /// The estimate of `<u, w>` for an entry.
    #[inline]
    pub fn estimate_dot(&self, bits: &[u8], factors: CodeFactors) -> f32 {
        self.signed_dot(bits) / factors.alignment
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ivf::rotation::Rotation;
    use crate::kernels;
    use crate::rng::Rng;

    #[test]
    fn table_sums_match_the_signs() {
        let w: Vec<f32> = (0..13).map(|i| i as f32 - 6.0).collect();
        let x: Vec<f32> = (0..13)
            .map(|i| if i % 3 == 0 { 1.0 } else { -1.0 })
            .collect();
        let mut bits = vec![0u8; code_bytes(13)];
        encode(&x, &mut bits);
        let expected: f32 = x.iter().zip(&w).map(|(a, b)| a * b).sum::<f32>() / 13f32.sqrt();
        assert!((QueryTable::new(&w).signed_dot(&bits) - expected).abs() < 1e-4);
    }

    #[test]
    fn estimates_are_close_in_high_dimensions() {
        let dims = 384;
        let rotation = Rotation::new(dims, 11);
        let mut rng = Rng::new(5);
        let mut worst = 0f32;
        let mut total_error = 0f32;
        for _ in 0..200 {
            let u: Vec<f32> = (0..dims).map(|_| rng.gaussian() as f32).collect();
            let w: Vec<f32> = (0..dims).map(|_| rng.gaussian() as f32).collect();
            let u_unit: Vec<f32> = {
                let n = kernels::norm(&u) as f32;
                u.iter().map(|a| a / n).collect()
            };
            let truth = kernels::dot(&u_unit, &w);
            let (ru, rw) = (rotation.apply(&u), rotation.apply(&w));
            let mut bits = vec![0u8; code_bytes(dims)];
            let factors = encode(&ru, &mut bits);
            let estimate = QueryTable::new(&rw).estimate_dot(&bits, factors);
            let error = (estimate - truth).abs() / kernels::norm(&w) as f32;
            worst = worst.max(error);
            total_error += error;
        }
        // The paper's bound: error O(1/sqrt(D)) of |w|.
        assert!(
            total_error / 200.0 < 0.05,
            "mean error {}",
            total_error / 200.0
        );
        assert!(worst < 0.2, "worst error {worst}");
    }
}
