//! The search loop's pieces, shared by the in-memory index and the access
//! method: which lists to probe first, and the pool of estimated entries
//! the next exact rerank takes its candidates from.

use super::estimator::PreparedQuery;

/// Lists ordered nearest centre first.
pub fn probe_order(query: &PreparedQuery, centres: &[f32], dims: usize) -> Vec<u32> {
    let mut keyed: Vec<(f32, u32)> = centres
        .chunks_exact(dims)
        .enumerate()
        .map(|(list, centre)| (query.centre_distance(centre), list as u32))
        .collect();
    keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    keyed.into_iter().map(|(_, list)| list).collect()
}

/// Entries scanned by their codes, waiting for an exact distance.
pub struct CandidatePool<T> {
    entries: Vec<(f32, T)>,
}

impl<T> Default for CandidatePool<T> {
    fn default() -> Self {
        CandidatePool {
            entries: Vec::new(),
        }
    }
}

impl<T> CandidatePool<T> {
    pub fn push(&mut self, estimate: f32, entry: T) {
        self.entries.push((estimate, entry));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Removes and returns the `n` entries with the smallest estimates.
    pub fn take_best(&mut self, n: usize) -> Vec<(f32, T)> {
        if n >= self.entries.len() {
            return std::mem::take(&mut self.entries);
        }
        self.entries
            .select_nth_unstable_by(n, |a, b| a.0.total_cmp(&b.0));
        let rest = self.entries.split_off(n);
        std::mem::replace(&mut self.entries, rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_the_smallest_estimates_and_keeps_the_rest() {
        let mut pool = CandidatePool::default();
        for (i, e) in [5.0, 1.0, 4.0, 2.0, 3.0].into_iter().enumerate() {
            pool.push(e, i);
        }
        let mut best: Vec<usize> = pool.take_best(2).into_iter().map(|(_, i)| i).collect();
        best.sort();
        assert_eq!(best, vec![1, 3]);
        assert_eq!(pool.len(), 3);
        assert_eq!(pool.take_best(10).len(), 3);
        assert!(pool.is_empty());
    }
}
