//! The whole index in memory: the same centres, codes, probing and rerank
//! as the access method, without pages. Used to test recall and to choose
//! the defaults (`examples/ivf_recall.rs`).

use super::encode::{rotate_centres, Encoder};
use super::estimator::PreparedQuery;
use super::kmeans;
use super::metric::Metric;
use super::rabitq::CodeFactors;
use super::rotation::Rotation;
use super::search::{probe_order, CandidatePool};

pub struct MemoryIndex {
    metric: Metric,
    dims: usize,
    rotation: Rotation,
    centres: Vec<f32>,
    rotated_centres: Vec<f32>,
    /// Per list: (vector id, code, factors).
    lists: Vec<Vec<(usize, Vec<u8>, CodeFactors)>>,
    /// Prepared vectors by id (None: not indexable).
    vectors: Vec<Option<Vec<f32>>>,
}

#[derive(Debug, Clone, Copy)]
pub struct SearchParams {
    pub probes: usize,
    pub rerank: usize,
}

impl MemoryIndex {
    pub fn build(
        metric: Metric,
        dims: usize,
        raw: &[Option<Vec<f32>>],
        lists: usize,
        seed: u64,
        threads: usize,
    ) -> MemoryIndex {
        let vectors: Vec<Option<Vec<f32>>> = raw
            .iter()
            .map(|v| {
                let mut v = v.clone()?;
                metric.prepare(&mut v).then_some(v)
            })
            .collect();
        let usable: Vec<&Vec<f32>> = vectors.iter().flatten().collect();
        let sample_size = super::training_sample_size(lists).min(usable.len());
        let step = (usable.len() / sample_size.max(1)).max(1);
        let sample: Vec<f32> = usable
            .iter()
            .step_by(step)
            .take(sample_size)
            .flat_map(|v| v.iter().copied())
            .collect();
        let centres = kmeans::train(
            &sample,
            dims,
            lists,
            super::KMEANS_ITERATIONS,
            metric.spherical(),
            seed,
            threads,
        );
        let rotation = Rotation::new(dims, seed);
        let rotated_centres = rotate_centres(&rotation, &centres);
        let mut index = MemoryIndex {
            metric,
            dims,
            rotation,
            lists: vec![Vec::new(); centres.len() / dims],
            centres,
            rotated_centres,
            vectors: Vec::new(),
        };
        for v in vectors {
            index.insert(v);
        }
        index
    }

    /// Adds a prepared vector (or a hole) under the next id.
    fn insert(&mut self, vector: Option<Vec<f32>>) {
        let id = self.vectors.len();
        if let Some(v) = &vector {
            let encoded = Encoder {
                dims: self.dims,
                centres: &self.centres,
                rotated_centres: &self.rotated_centres,
                rotation: &self.rotation,
            }
            .encode(v);
            self.lists[encoded.list as usize].push((id, encoded.bits, encoded.factors));
        }
        self.vectors.push(vector);
    }

    pub fn lists(&self) -> usize {
        self.lists.len()
    }

    /// The k nearest ids by the operator's value, nearest first.
    pub fn search(&self, raw_query: &[f32], k: usize, params: SearchParams) -> Vec<(usize, f64)> {
        let Some((query, mut pool)) = self.probe(raw_query, params.probes) else {
            return Vec::new();
        };
        let mut exact: Vec<(usize, f64)> = pool
            .next_round(params.rerank.max(k), |ids| {
                ids.iter()
                    .map(|&&id| {
                        query.distance(self.vectors[id].as_ref().expect("listed vectors exist"))
                    })
                    .collect()
            })
            .into_iter()
            .map(|(d, id)| (id, d))
            .collect();
        exact.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        exact.truncate(k);
        exact
    }

    /// Up to `n` ids in order of their codes' lower bounds over the
    /// `probes` nearest lists, without exact distances (what the access
    /// method returns to recommend()'s candidate search).
    pub fn search_estimates(&self, raw_query: &[f32], n: usize, probes: usize) -> Vec<usize> {
        match self.probe(raw_query, probes) {
            Some((_, mut pool)) => pool
                .take_by_bound(n)
                .into_iter()
                .map(|(_, id)| id)
                .collect(),
            None => Vec::new(),
        }
    }

    /// The prepared query and every entry of its `probes` nearest lists.
    fn probe(
        &self,
        raw_query: &[f32],
        probes: usize,
    ) -> Option<(PreparedQuery, CandidatePool<usize>)> {
        let query = PreparedQuery::new(self.metric, &self.rotation, raw_query)?;
        let dims = self.dims;
        let mut pool = CandidatePool::default();
        for &list in probe_order(&query, &self.centres, dims).iter().take(probes) {
            let list = list as usize;
            let estimator = query.for_list(
                &self.centres[list * dims..(list + 1) * dims],
                &self.rotated_centres[list * dims..(list + 1) * dims],
            );
            for (id, bits, factors) in &self.lists[list] {
                pool.push(estimator.estimate(bits, *factors).1, *id);
            }
        }
        Some((query, pool))
    }

    /// The exact answer, for recall.
    pub fn exact(&self, raw_query: &[f32], k: usize) -> Vec<(usize, f64)> {
        let Some(query) = PreparedQuery::new(self.metric, &self.rotation, raw_query) else {
            return Vec::new();
        };
        let mut all: Vec<(usize, f64)> = self
            .vectors
            .iter()
            .enumerate()
            .filter_map(|(id, v)| v.as_ref().map(|v| (id, query.distance(v))))
            .collect();
        all.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        all.truncate(k);
        all
    }
}

/// Fraction of `truth`'s ids found in `found`.
pub fn recall(found: &[(usize, f64)], truth: &[(usize, f64)]) -> f64 {
    if truth.is_empty() {
        return 1.0;
    }
    let hits = truth
        .iter()
        .filter(|(id, _)| found.iter().any(|(f, _)| f == id))
        .count();
    hits as f64 / truth.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::clustered_vectors;

    fn mean_recall(metric: Metric, params: SearchParams) -> f64 {
        let dims = 64;
        let data: Vec<_> = clustered_vectors(6_000, dims, 60, 0.6, 21)
            .into_iter()
            .map(Some)
            .collect();
        let index = MemoryIndex::build(metric, dims, &data, 60, 4, 2);
        let queries = clustered_vectors(40, dims, 60, 0.6, 22);
        queries
            .iter()
            .map(|q| recall(&index.search(q, 10, params), &index.exact(q, 10)))
            .sum::<f64>()
            / queries.len() as f64
    }

    #[test]
    fn every_metric_finds_its_neighbours() {
        for metric in [Metric::Cosine, Metric::InnerProduct, Metric::L2] {
            let r = mean_recall(
                metric,
                SearchParams {
                    probes: 10,
                    rerank: 100,
                },
            );
            assert!(r >= 0.9, "{metric:?}: recall {r}");
        }
    }

    #[test]
    fn probing_every_list_with_full_rerank_is_exact() {
        let r = mean_recall(
            Metric::L2,
            SearchParams {
                probes: 60,
                rerank: 6_000,
            },
        );
        assert_eq!(r, 1.0);
    }

    #[test]
    fn more_probes_never_hurt_much() {
        let few = mean_recall(
            Metric::Cosine,
            SearchParams {
                probes: 2,
                rerank: 100,
            },
        );
        let many = mean_recall(
            Metric::Cosine,
            SearchParams {
                probes: 20,
                rerank: 100,
            },
        );
        assert!(many >= few, "{few} -> {many}");
    }
}
