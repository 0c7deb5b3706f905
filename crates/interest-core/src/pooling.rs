//! Sentence pooling over a transformer's token states.

/// Mean of the token vectors whose attention-mask entry is 1, then (optionally)
/// L2 normalisation; this is what sentence-transformers does for MiniLM.
///
/// `hidden` is `[batch, seq, dim]` row-major, `mask` is `[batch, seq]`.
/// A row with an all-zero mask (cannot happen with [CLS]/[SEP], but a custom
/// tokenizer might) pools to the zero vector rather than dividing by zero.
pub fn mean_pool(
    hidden: &[f32],
    mask: &[i64],
    batch: usize,
    seq: usize,
    dim: usize,
    normalize: bool,
) -> Vec<Vec<f32>> {
    assert_hidden_shape(hidden, batch, seq, dim);
    assert_eq!(mask.len(), batch * seq, "attention mask has the wrong size");
    (0..batch)
        .map(|b| {
            let mut sum = vec![0.0f64; dim];
            let mut count = 0.0f64;
            for t in 0..seq {
                if mask[b * seq + t] == 0 {
                    continue;
                }
                count += 1.0;
                let row = &hidden[(b * seq + t) * dim..(b * seq + t + 1) * dim];
                sum.iter_mut().zip(row).for_each(|(s, x)| *s += *x as f64);
            }
            let mut pooled: Vec<f32> = sum
                .iter()
                .map(|s| if count > 0.0 { (s / count) as f32 } else { 0.0 })
                .collect();
            if normalize {
                crate::kernels::normalize_in_place(&mut pooled);
            }
            pooled
        })
        .collect()
}

fn assert_hidden_shape(hidden: &[f32], batch: usize, seq: usize, dim: usize) {
    assert_eq!(
        hidden.len(),
        batch * seq * dim,
        "hidden state has the wrong size"
    );
}

/// The [CLS] token's state (first position), for models pooled that way.
pub fn cls_pool(
    hidden: &[f32],
    batch: usize,
    seq: usize,
    dim: usize,
    normalize: bool,
) -> Vec<Vec<f32>> {
    assert_hidden_shape(hidden, batch, seq, dim);
    (0..batch)
        .map(|b| {
            let mut v = hidden[b * seq * dim..b * seq * dim + dim].to_vec();
            if normalize {
                crate::kernels::normalize_in_place(&mut v);
            }
            v
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_pool_ignores_masked_tokens() {
        // batch 2, seq 3, dim 2; second row has a padded last token.
        let hidden = [
            1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 10.0, 0.0, 20.0, 0.0, 999.0, 999.0,
        ];
        let mask = [1, 1, 1, 1, 1, 0];
        let out = mean_pool(&hidden, &mask, 2, 3, 2, false);
        assert_eq!(out[0], vec![3.0, 4.0]);
        assert_eq!(out[1], vec![15.0, 0.0]);
        let unit = mean_pool(&hidden, &mask, 2, 3, 2, true);
        assert!((unit[0][0] - 0.6).abs() < 1e-6 && (unit[0][1] - 0.8).abs() < 1e-6);
        assert_eq!(unit[1], vec![1.0, 0.0]);
    }

    #[test]
    fn all_masked_row_pools_to_zero() {
        let out = mean_pool(&[1.0, 1.0], &[0], 1, 1, 2, true);
        assert_eq!(out[0], vec![0.0, 0.0]);
    }

    #[test]
    fn cls_pool_takes_first_token() {
        let out = cls_pool(&[3.0, 4.0, 9.0, 9.0], 1, 2, 2, true);
        assert!((out[0][0] - 0.6).abs() < 1e-6);
    }
}
