//! When a statement that queued events folds the queue: when its events
//! crossed a multiple of `interest.fold_batch` in the queue's numbering (so
//! one statement in every batch folds, without any shared counter).

pub fn crossed_fold_batch(last_seq: i64, queued: i64, batch: i64) -> bool {
    batch > 0 && queued > 0 && last_seq / batch != (last_seq - queued) / batch
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_statement_per_batch_folds() {
        // single-row statements numbered 1..=250, batch 100: those that reach 100 and 200
        let folding: Vec<i64> = (1..=250)
            .filter(|&s| crossed_fold_batch(s, 1, 100))
            .collect();
        assert_eq!(folding, [100, 200]);
        // a statement of 30 events ending at 110 covers 81..=110
        assert!(crossed_fold_batch(110, 30, 100));
        assert!(!crossed_fold_batch(130, 30, 100));
    }

    #[test]
    fn batch_zero_or_nothing_queued_never_folds() {
        assert!(!crossed_fold_batch(100, 1, 0));
        assert!(!crossed_fold_batch(100, 0, 100));
    }
}
