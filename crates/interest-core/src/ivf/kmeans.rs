//! k-means for the index's list centres: Lloyd's iterations on a sample,
//! then every vector goes to its nearest centre. The nearest-centre search
//! runs on up to `threads` threads (plain Rust, no Postgres calls, every
//! signal blocked).

use crate::interrupts;
use crate::kernels;
use crate::rng::Rng;

/// Centres (row-major, `k` rows of `dims`) trained on `sample`.
/// `spherical` keeps them unit-length, for cosine.
pub fn train(
    sample: &[f32],
    dims: usize,
    k: usize,
    iterations: usize,
    spherical: bool,
    seed: u64,
    threads: usize,
) -> Vec<f32> {
    let n = sample.len() / dims;
    assert!(n > 0 && k > 0, "k-means needs vectors and centres");
    let k = k.min(n);
    let mut rng = Rng::new(seed);
    // Start from k distinct sample vectors.
    let mut order: Vec<usize> = (0..n).collect();
    for i in 0..k {
        let j = i + rng.below(n - i);
        order.swap(i, j);
    }
    let mut centres: Vec<f32> = order[..k]
        .iter()
        .flat_map(|&i| sample[i * dims..(i + 1) * dims].iter().copied())
        .collect();
    let mut assignment = vec![0u32; n];
    for _ in 0..iterations {
        interrupts::check();
        assign_into(sample, &centres, dims, threads, &mut assignment);
        let mut sums = vec![0f64; k * dims];
        let mut counts = vec![0usize; k];
        for (i, &list) in assignment.iter().enumerate() {
            let list = list as usize;
            counts[list] += 1;
            for (s, v) in sums[list * dims..(list + 1) * dims]
                .iter_mut()
                .zip(&sample[i * dims..(i + 1) * dims])
            {
                *s += *v as f64;
            }
        }
        for list in 0..k {
            let centre = &mut centres[list * dims..(list + 1) * dims];
            if counts[list] == 0 {
                // An empty list takes a random vector: a list nobody uses
                // only costs probes.
                let i = rng.below(n);
                centre.copy_from_slice(&sample[i * dims..(i + 1) * dims]);
                continue;
            }
            for (c, s) in centre.iter_mut().zip(&sums[list * dims..(list + 1) * dims]) {
                *c = (*s / counts[list] as f64) as f32;
            }
            if spherical && kernels::norm(centre) > 0.0 {
                kernels::normalize_in_place(centre);
            }
        }
    }
    centres
}

/// The nearest centre of `v` and its squared distance.
pub fn nearest(centres: &[f32], dims: usize, v: &[f32]) -> (usize, f32) {
    let mut best = (0, f32::INFINITY);
    for (list, centre) in centres.chunks_exact(dims).enumerate() {
        let d = kernels::l2_squared(v, centre);
        if d < best.1 {
            best = (list, d);
        }
    }
    best
}

/// The nearest centre of every vector of `vectors`.
pub fn assign(vectors: &[f32], centres: &[f32], dims: usize, threads: usize) -> Vec<u32> {
    let mut out = vec![0u32; vectors.len() / dims];
    assign_into(vectors, centres, dims, threads, &mut out);
    out
}

fn assign_into(vectors: &[f32], centres: &[f32], dims: usize, threads: usize, out: &mut [u32]) {
    let n = out.len();
    let threads = threads.clamp(1, 16).min(n.max(1));
    let per_thread = n.div_ceil(threads);
    // The threads start with every signal blocked, so the host's signals
    // (Postgres' cancel and terminate) reach its main thread only.
    crate::signal_mask::with_signals_blocked(|| {
        std::thread::scope(|scope| {
            for (chunk_index, chunk) in out.chunks_mut(per_thread.max(1)).enumerate() {
                let start = chunk_index * per_thread;
                scope.spawn(move || {
                    for (offset, slot) in chunk.iter_mut().enumerate() {
                        let i = start + offset;
                        *slot = nearest(centres, dims, &vectors[i * dims..(i + 1) * dims]).0 as u32;
                    }
                });
            }
        })
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_separated_clusters() {
        let dims = 8;
        let mut rng = Rng::new(3);
        let truth: Vec<Vec<f32>> = (0..4)
            .map(|c| (0..dims).map(|d| if d == c { 10.0 } else { 0.0 }).collect())
            .collect();
        let mut data = Vec::new();
        for i in 0..400 {
            for v in &truth[i % 4] {
                data.push(v + rng.gaussian() as f32 * 0.1);
            }
        }
        let centres = train(&data, dims, 4, 10, false, 1, 2);
        let labels = assign(&data, &centres, dims, 2);
        // Points of one true cluster share one list, and lists differ.
        for c in 0..4 {
            let first = labels[c];
            assert!((0..100).all(|j| labels[c + 4 * j] == first));
        }
        let mut distinct: Vec<u32> = labels[..4].to_vec();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), 4);
    }

    #[test]
    fn threads_do_not_change_the_answer() {
        let mut rng = Rng::new(9);
        let data: Vec<f32> = (0..16 * 300).map(|_| rng.gaussian() as f32).collect();
        let centres = train(&data, 16, 10, 5, true, 2, 1);
        assert_eq!(
            assign(&data, &centres, 16, 1),
            assign(&data, &centres, 16, 3)
        );
        for centre in centres.chunks_exact(16) {
            assert!((kernels::norm(centre) - 1.0).abs() < 1e-4);
        }
    }
}
