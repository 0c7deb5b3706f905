//! Distance kernels over `f32` slices.
//!
//! On x86_64 the AVX2+FMA variants are picked at run time (checked once, then
//! cached by `std`'s feature detection); every other target uses the portable
//! versions, which are written with independent accumulators so LLVM can still
//! vectorise them.

#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx2_fma() {
            // SAFETY: the CPU supports AVX2 and FMA (checked above).
            return unsafe { x86::dot(a, b) };
        }
    }
    portable::dot(a, b)
}

/// Squared Euclidean distance.
#[inline]
pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx2_fma() {
            // SAFETY: the CPU supports AVX2 and FMA (checked above).
            return unsafe { x86::l2_squared(a, b) };
        }
    }
    portable::l2_squared(a, b)
}

/// Returns (a·b, |a|², |b|²) in one pass over both slices.
#[inline]
pub fn dot_and_norms(a: &[f32], b: &[f32]) -> (f32, f32, f32) {
    debug_assert_eq!(a.len(), b.len());
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx2_fma() {
            // SAFETY: the CPU supports AVX2 and FMA (checked above).
            return unsafe { x86::dot_and_norms(a, b) };
        }
    }
    portable::dot_and_norms(a, b)
}

/// Asks the CPU to bring `bytes` into its cache: a loop that will read
/// scattered small records (index entries) issues this a few records ahead,
/// so the memory reads overlap instead of stalling one by one.
#[inline]
pub fn prefetch(bytes: &[u8]) {
    prefetch_lines(bytes.as_ptr(), bytes.len());
}

/// `prefetch` of `len` bytes from `start`, which need not be readable now
/// (memory another process may be writing): only addresses are used.
#[inline]
pub fn prefetch_lines(start: *const u8, len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        const CACHE_LINE: usize = 64;
        let first = start as usize & !(CACHE_LINE - 1);
        let end = start as usize + len;
        for line in (first..end).step_by(CACHE_LINE) {
            // SAFETY: a prefetch is a hint; it never faults and reads nothing
            // the program sees.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(line as *const i8) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (start, len);
}

pub fn l2_distance(a: &[f32], b: &[f32]) -> f64 {
    (l2_squared(a, b) as f64).sqrt()
}

/// Negative inner product, so that smaller means closer (pgvector's `<#>`).
pub fn negative_inner_product(a: &[f32], b: &[f32]) -> f64 {
    -(dot(a, b) as f64)
}

/// 1 - cos(a, b). NaN when either vector has zero norm, as in pgvector:
/// such a vector has no direction, and NaN sorts after every number.
pub fn cosine_distance(a: &[f32], b: &[f32]) -> f64 {
    let (ab, aa, bb) = dot_and_norms(a, b);
    let denom = (aa as f64 * bb as f64).sqrt();
    if denom == 0.0 {
        return f64::NAN;
    }
    // Rounding can push |cos| slightly above 1.
    let similarity = (ab as f64 / denom).clamp(-1.0, 1.0);
    1.0 - similarity
}

pub fn norm(a: &[f32]) -> f64 {
    (dot(a, a) as f64).sqrt()
}

/// Scales `a` to unit length in place; a zero vector stays zero. Summed
/// and scaled in double precision: single-precision squares of very large
/// or very small components overflow or vanish, which left such vectors at
/// zero length or not unit length.
pub fn normalize_in_place(a: &mut [f32]) {
    let n = a
        .iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt();
    if n > 0.0 && n.is_finite() {
        a.iter_mut().for_each(|x| *x = (f64::from(*x) / n) as f32);
    }
}

#[cfg(target_arch = "x86_64")]
#[inline]
fn has_avx2_fma() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

pub mod portable {
    const LANES: usize = 8;

    pub fn dot(a: &[f32], b: &[f32]) -> f32 {
        let mut acc = [0.0f32; LANES];
        let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
        let (ra, rb) = (ca.remainder(), cb.remainder());
        for (x, y) in ca.zip(cb) {
            for i in 0..LANES {
                acc[i] += x[i] * y[i];
            }
        }
        let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
        acc.iter().sum::<f32>() + tail
    }

    pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
        let mut acc = [0.0f32; LANES];
        let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
        let (ra, rb) = (ca.remainder(), cb.remainder());
        for (x, y) in ca.zip(cb) {
            for i in 0..LANES {
                let d = x[i] - y[i];
                acc[i] += d * d;
            }
        }
        let tail: f32 = ra.iter().zip(rb).map(|(x, y)| (x - y) * (x - y)).sum();
        acc.iter().sum::<f32>() + tail
    }

    pub fn dot_and_norms(a: &[f32], b: &[f32]) -> (f32, f32, f32) {
        let (mut ab, mut aa, mut bb) = ([0.0f32; LANES], [0.0f32; LANES], [0.0f32; LANES]);
        let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
        let (ra, rb) = (ca.remainder(), cb.remainder());
        for (x, y) in ca.zip(cb) {
            for i in 0..LANES {
                ab[i] += x[i] * y[i];
                aa[i] += x[i] * x[i];
                bb[i] += y[i] * y[i];
            }
        }
        let (mut tab, mut taa, mut tbb) = (0.0f32, 0.0f32, 0.0f32);
        for (x, y) in ra.iter().zip(rb) {
            tab += x * y;
            taa += x * x;
            tbb += y * y;
        }
        (
            ab.iter().sum::<f32>() + tab,
            aa.iter().sum::<f32>() + taa,
            bb.iter().sum::<f32>() + tbb,
        )
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2,fma")]
    unsafe fn hsum(v: __m256) -> f32 {
        let lo = _mm256_castps256_ps128(v);
        let hi = _mm256_extractf128_ps(v, 1);
        let s = _mm_add_ps(lo, hi);
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 0x55));
        _mm_cvtss_f32(s)
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        // Two accumulators hide the FMA latency.
        let (mut s0, mut s1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let mut i = 0;
        while i + 16 <= n {
            s0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), s0);
            s1 = _mm256_fmadd_ps(
                _mm256_loadu_ps(pa.add(i + 8)),
                _mm256_loadu_ps(pb.add(i + 8)),
                s1,
            );
            i += 16;
        }
        if i + 8 <= n {
            s0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), s0);
            i += 8;
        }
        let mut sum = hsum(_mm256_add_ps(s0, s1));
        while i < n {
            sum += *pa.add(i) * *pb.add(i);
            i += 1;
        }
        sum
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let (mut s0, mut s1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let mut i = 0;
        while i + 16 <= n {
            let d0 = _mm256_sub_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)));
            let d1 = _mm256_sub_ps(
                _mm256_loadu_ps(pa.add(i + 8)),
                _mm256_loadu_ps(pb.add(i + 8)),
            );
            s0 = _mm256_fmadd_ps(d0, d0, s0);
            s1 = _mm256_fmadd_ps(d1, d1, s1);
            i += 16;
        }
        if i + 8 <= n {
            let d0 = _mm256_sub_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)));
            s0 = _mm256_fmadd_ps(d0, d0, s0);
            i += 8;
        }
        let mut sum = hsum(_mm256_add_ps(s0, s1));
        while i < n {
            let d = *pa.add(i) - *pb.add(i);
            sum += d * d;
            i += 1;
        }
        sum
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot_and_norms(a: &[f32], b: &[f32]) -> (f32, f32, f32) {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let (mut ab, mut aa, mut bb) = (
            _mm256_setzero_ps(),
            _mm256_setzero_ps(),
            _mm256_setzero_ps(),
        );
        let mut i = 0;
        while i + 8 <= n {
            let x = _mm256_loadu_ps(pa.add(i));
            let y = _mm256_loadu_ps(pb.add(i));
            ab = _mm256_fmadd_ps(x, y, ab);
            aa = _mm256_fmadd_ps(x, x, aa);
            bb = _mm256_fmadd_ps(y, y, bb);
            i += 8;
        }
        let (mut sab, mut saa, mut sbb) = (hsum(ab), hsum(aa), hsum(bb));
        while i < n {
            let (x, y) = (*pa.add(i), *pb.add(i));
            sab += x * y;
            saa += x * x;
            sbb += y * y;
            i += 1;
        }
        (sab, saa, sbb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_dot(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
    }

    fn pseudo_random(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn kernels_match_naive_for_every_length_and_tail() {
        for n in [1usize, 3, 7, 8, 9, 15, 16, 17, 31, 384, 385, 1000] {
            let a = pseudo_random(n, n as u64);
            let b = pseudo_random(n, n as u64 + 99);
            let want_dot = naive_dot(&a, &b);
            let want_l2: f64 = a
                .iter()
                .zip(&b)
                .map(|(x, y)| ((*x - *y) as f64).powi(2))
                .sum();
            assert!((dot(&a, &b) as f64 - want_dot).abs() < 1e-3, "dot n={n}");
            assert!(
                (portable::dot(&a, &b) as f64 - want_dot).abs() < 1e-3,
                "portable dot n={n}"
            );
            assert!(
                (l2_squared(&a, &b) as f64 - want_l2).abs() < 1e-3,
                "l2 n={n}"
            );
            assert!((portable::l2_squared(&a, &b) as f64 - want_l2).abs() < 1e-3);
            let (ab, aa, bb) = dot_and_norms(&a, &b);
            assert!((ab as f64 - want_dot).abs() < 1e-3);
            assert!((aa as f64 - naive_dot(&a, &a)).abs() < 1e-3);
            assert!((bb as f64 - naive_dot(&b, &b)).abs() < 1e-3);
            let (pab, paa, pbb) = portable::dot_and_norms(&a, &b);
            assert!((pab - ab).abs() < 1e-3 && (paa - aa).abs() < 1e-3 && (pbb - bb).abs() < 1e-3);
        }
    }

    #[test]
    fn distances_on_known_vectors() {
        let a = [1.0f32, 0.0, 0.0];
        let b = [0.0f32, 2.0, 0.0];
        assert!((cosine_distance(&a, &b) - 1.0).abs() < 1e-9);
        assert!((cosine_distance(&a, &a)).abs() < 1e-9);
        assert!((cosine_distance(&a, &[-3.0, 0.0, 0.0]) - 2.0).abs() < 1e-9);
        assert!((l2_distance(&a, &b) - 5f64.sqrt()).abs() < 1e-6);
        assert_eq!(
            negative_inner_product(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]),
            -32.0
        );
        assert!((norm(&[3.0, 4.0]) - 5.0).abs() < 1e-9);
    }

    #[test]
    fn cosine_of_zero_vector_is_nan() {
        assert!(cosine_distance(&[0.0, 0.0], &[1.0, 0.0]).is_nan());
    }

    #[test]
    fn normalize_gives_unit_length_and_keeps_zero() {
        let mut v = vec![3.0f32, 4.0];
        normalize_in_place(&mut v);
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);
        let mut z = vec![0.0f32; 4];
        normalize_in_place(&mut z);
        assert_eq!(z, vec![0.0; 4]);
        for scale in [3e38f32, 1e-30, 1e-40] {
            let mut v = vec![scale, scale];
            normalize_in_place(&mut v);
            let len = v.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
            assert!((len - 1.0).abs() < 1e-6, "{scale}: {v:?}");
        }
    }
}
