//! Turns prepared vectors into index entries: nearest list, code, factors.
//! The same code serves the in-memory index, the access method's build
//! (batches on several threads) and its inserts.

use super::kmeans;
use super::rabitq::{self, CodeFactors};
use super::rotation::Rotation;

pub struct Encoder<'a> {
    pub dims: usize,
    pub centres: &'a [f32],
    pub rotated_centres: &'a [f32],
    pub rotation: &'a Rotation,
}

#[derive(Debug, Clone)]
pub struct Encoded {
    pub list: u32,
    pub factors: CodeFactors,
    pub bits: Vec<u8>,
}

impl Encoder<'_> {
    pub fn encode(&self, vector: &[f32]) -> Encoded {
        let dims = self.dims;
        let (list, _) = kmeans::nearest(self.centres, dims, vector);
        let mut residual = self.rotation.apply(vector);
        for (r, c) in residual
            .iter_mut()
            .zip(&self.rotated_centres[list * dims..(list + 1) * dims])
        {
            *r -= c;
        }
        let mut bits = vec![0u8; rabitq::code_bytes(dims)];
        let factors = rabitq::encode(&residual, &mut bits);
        Encoded {
            list: list as u32,
            factors,
            bits,
        }
    }

    /// Encodes `vectors` (row-major) on up to `threads` threads.
    pub fn encode_batch(&self, vectors: &[f32], threads: usize) -> Vec<Encoded> {
        let rows: Vec<&[f32]> = vectors.chunks_exact(self.dims).collect();
        crate::parallel::map_on_threads(&rows, threads, |v| self.encode(v))
    }
}

/// Rotated centres, row-major like `centres`.
pub fn rotate_centres(rotation: &Rotation, centres: &[f32]) -> Vec<f32> {
    centres
        .chunks_exact(rotation.dims())
        .flat_map(|c| rotation.apply(c))
        .collect()
}
