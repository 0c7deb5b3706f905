//! The whole index in memory: the same centres, codes, probing and rerank
//! as the access method, without pages. Used to test recall and to choose
//! the defaults (`examples/ivf_recall.rs`).

use super::calibrate::{calibrate, Calibration, Sample};
use super::encode::{rotate_centres, Encoder};
use super::estimator::PreparedQuery;
use super::kmeans;
use super::metric::Metric;
use super::rabitq::CodeFactors;
use super::rotation::Rotation;
use super::search::{probe_order, round_rows, step_reached_rows, AutomaticSteps, CandidatePool};
use super::AUTO_PROBE_STEP;

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
    /// What the build measured for automatic scans.
    calibration: Calibration,
}

/// A pool entry: the row's id and its list's place in the probe order.
#[derive(Debug, Clone, Copy)]
struct Entry {
    id: usize,
    position: usize,
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
        // Rows between the sampled ones, spread over the whole table, ask
        // the calibration's questions.
        let between = if step > 1 { usable.len() / step } else { 0 };
        let held_out: Vec<f32> = usable
            .iter()
            .skip(step / 2)
            .step_by(step)
            .take(between)
            .step_by((between / super::calibrate::CALIBRATION_QUERIES).max(1))
            .take(super::calibrate::CALIBRATION_QUERIES)
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
        let calibration = calibrate(
            &Sample {
                metric,
                dims,
                vectors: &sample,
                lists_of: &kmeans::assign(&sample, &centres, dims, threads),
                centres: &centres,
                rotation: &rotation,
                rows: usable.len(),
                held_out: (!held_out.is_empty()).then_some(&held_out[..]),
            },
            AUTO_PROBE_STEP,
            threads,
            || {},
        );
        let mut index = MemoryIndex {
            metric,
            dims,
            rotation,
            lists: vec![Vec::new(); centres.len() / dims],
            centres,
            rotated_centres,
            vectors: Vec::new(),
            calibration,
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

    /// The most lists an automatic search probes on this index.
    pub fn automatic_probe_limit(&self) -> usize {
        super::automatic_probes(self.lists(), self.calibration.probes)
    }

    /// Quiet steps in a row that end an automatic search on this index.
    pub fn automatic_quiet_steps(&self) -> usize {
        self.calibration.quiet_steps
    }

    /// The k nearest ids by the operator's value, nearest first. Probes 0:
    /// automatic, as the access method (`AUTO_PROBE_STEP` lists at a time,
    /// up to `automatic_probes`, while the steps reach the rows:
    /// `AutomaticSteps`).
    pub fn search(&self, raw_query: &[f32], k: usize, params: SearchParams) -> Vec<(usize, f64)> {
        self.search_probing(raw_query, k, params).0
    }

    /// `search`, and how many lists it probed.
    fn search_probing(
        &self,
        raw_query: &[f32],
        k: usize,
        params: SearchParams,
    ) -> (Vec<(usize, f64)>, usize) {
        let Some(query) = PreparedQuery::new(self.metric, &self.rotation, raw_query) else {
            return (Vec::new(), 0);
        };
        let order = probe_order(&query, &self.centres, self.dims);
        let exact = |entries: &[&Entry]| -> Vec<f64> {
            entries
                .iter()
                .map(|e| query.distance(self.vectors[e.id].as_ref().expect("listed vectors exist")))
                .collect()
        };
        // As the access method's first round (which decides its steps).
        let want = round_rows(0, params.rerank).max(k);
        let mut pool = CandidatePool::default();
        let mut probed = 0;
        let round = if params.probes == 0 {
            let limit = self.automatic_probe_limit().min(order.len());
            let mut steps = AutomaticSteps::new(self.calibration.quiet_steps);
            loop {
                let step_start = probed;
                probed = (probed + AUTO_PROBE_STEP).min(limit);
                self.probe_lists(&query, &order, step_start..probed, &mut pool);
                let round = pool.next_round(want, exact);
                let first_new = step_start.max(1);
                if probed >= limit
                    || !steps.go_on(
                        step_start,
                        step_reached_rows(&pool, &round, |e| e.position >= first_new),
                    )
                {
                    break round;
                }
                pool.put_back(round);
            }
        } else {
            probed = params.probes.min(order.len());
            self.probe_lists(&query, &order, 0..probed, &mut pool);
            pool.next_round(want, exact)
        };
        let mut found: Vec<(usize, f64)> = round.into_iter().map(|(d, e)| (e.id, d)).collect();
        found.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        found.truncate(k);
        (found, probed)
    }

    /// Up to `n` ids in order of their codes' lower bounds over the
    /// `probes` nearest lists, without exact distances (what the access
    /// method returns to recommend()'s candidate search).
    pub fn search_estimates(&self, raw_query: &[f32], n: usize, probes: usize) -> Vec<usize> {
        let Some(query) = PreparedQuery::new(self.metric, &self.rotation, raw_query) else {
            return Vec::new();
        };
        let order = probe_order(&query, &self.centres, self.dims);
        let mut pool = CandidatePool::default();
        self.probe_lists(&query, &order, 0..probes.min(order.len()), &mut pool);
        pool.take_by_bound(n)
            .into_iter()
            .map(|(_, e)| e.id)
            .collect()
    }

    /// Every entry of the lists at `positions` of the probe order.
    fn probe_lists(
        &self,
        query: &PreparedQuery,
        order: &[u32],
        positions: std::ops::Range<usize>,
        pool: &mut CandidatePool<Entry>,
    ) {
        let dims = self.dims;
        for position in positions {
            let list = order[position] as usize;
            let estimator = query.for_list(
                &self.centres[list * dims..(list + 1) * dims],
                &self.rotated_centres[list * dims..(list + 1) * dims],
            );
            for (id, bits, factors) in &self.lists[list] {
                pool.push(
                    estimator.estimate(bits, *factors).1,
                    Entry { id: *id, position },
                );
            }
        }
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
        recall_over(&index, &queries, params)
    }

    /// Mean recall@10 of `queries` against exact search.
    fn recall_over(index: &MemoryIndex, queries: &[Vec<f32>], params: SearchParams) -> f64 {
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
    fn automatic_probes_find_what_the_most_find() {
        // Every metric, on clusters well apart and overlapping, and for the
        // inner product on vectors of lengths 0.2 to 5 (the longest vectors
        // of a far list can have the largest products): automatic steps
        // keep the recall of the most lists they may probe. On the overlapping data
        // the first step alone (10 lists) finds far fewer, so the steps
        // must go on there.
        let dims = 64;
        let mut rng = crate::rng::Rng::new(33);
        let cases = [
            (Metric::Cosine, 0.6, false),
            (Metric::Cosine, 2.0, false),
            (Metric::L2, 0.6, false),
            (Metric::InnerProduct, 0.6, false),
            (Metric::InnerProduct, 0.6, true),
        ];
        for (metric, noise, varied_lengths) in cases {
            let data: Vec<_> = clustered_vectors(20_000, dims, 200, noise, 31)
                .into_iter()
                .map(|v| {
                    let scale = if varied_lengths {
                        0.2 + 4.8 * rng.unit() as f32
                    } else {
                        1.0
                    };
                    Some(v.into_iter().map(|x| x * scale).collect())
                })
                .collect();
            let index = MemoryIndex::build(metric, dims, &data, 141, 4, 2);
            let queries = clustered_vectors(40, dims, 200, noise, 32);
            let recall_with =
                |probes| recall_over(&index, &queries, SearchParams { probes, rerank: 10 });
            let most = recall_with(index.automatic_probe_limit());
            let automatic = recall_with(0);
            assert!(
                automatic >= most - 0.01,
                "{metric:?} noise {noise} varied {varied_lengths}: automatic {automatic}, most {most}"
            );
            if noise > 1.0 {
                let first_step = recall_with(crate::ivf::AUTO_PROBE_STEP);
                assert!(
                    automatic >= first_step + 0.1,
                    "the steps stopped early: automatic {automatic}, 10 lists {first_step}"
                );
            }
        }
    }

    #[test]
    fn calibrated_probes_keep_recall_where_neighbours_spread() {
        // Clusters so wide that a vector's nearest neighbours lie in many
        // lists: an eighth of the lists finds too few of them, the build's
        // calibrated most keeps recall, and well separated data keeps the
        // eighth.
        let dims = 64;
        for (noise, calibrated) in [(0.6, false), (2.0, true), (3.0, true)] {
            let data: Vec<_> = clustered_vectors(20_000, dims, 200, noise, 41)
                .into_iter()
                .map(Some)
                .collect();
            let index = MemoryIndex::build(Metric::Cosine, dims, &data, 141, 4, 2);
            let queries = clustered_vectors(40, dims, 200, noise, 42);
            let recall_with =
                |probes| recall_over(&index, &queries, SearchParams { probes, rerank: 40 });
            let eighth = crate::ivf::default_probes(141);
            let automatic = recall_with(0);
            if calibrated {
                assert!(
                    index.automatic_probe_limit() > eighth,
                    "noise {noise}: limit {}",
                    index.automatic_probe_limit()
                );
                assert!(
                    automatic >= 0.95 && automatic > recall_with(eighth) + 0.05,
                    "noise {noise}: automatic {automatic}, an eighth {}",
                    recall_with(eighth)
                );
            } else {
                assert_eq!(index.automatic_probe_limit(), eighth);
                assert!(automatic >= 0.95, "noise {noise}: automatic {automatic}");
            }
        }
    }

    #[test]
    fn automatic_searches_stop_after_the_quiet_steps_in_a_row() {
        // On clustered data most searches stop after a step or two when one
        // quiet step ends them; allowing n quiet steps in a row, none stops
        // before n steps (or the limit), and none finds less.
        let dims = 64;
        let data: Vec<_> = clustered_vectors(20_000, dims, 200, 0.6, 51)
            .into_iter()
            .map(Some)
            .collect();
        let mut index = MemoryIndex::build(Metric::Cosine, dims, &data, 320, 4, 2);
        let queries = clustered_vectors(40, dims, 200, 0.6, 52);
        let limit = index.automatic_probe_limit();
        assert!(limit >= 4 * AUTO_PROBE_STEP, "limit {limit}");
        let params = SearchParams {
            probes: 0,
            rerank: 40,
        };
        let run = |index: &MemoryIndex| -> (Vec<usize>, f64) {
            let probed = queries
                .iter()
                .map(|q| index.search_probing(q, 10, params).1)
                .collect();
            (probed, recall_over(index, &queries, params))
        };
        index.calibration.quiet_steps = 1;
        let (one, one_recall) = run(&index);
        index.calibration.quiet_steps = 3;
        let (three, three_recall) = run(&index);
        assert!(
            one.iter().filter(|&&p| p < 3 * AUTO_PROBE_STEP).count() > one.len() / 2,
            "one quiet step: {one:?}"
        );
        assert!(
            three.iter().all(|&p| p >= 3 * AUTO_PROBE_STEP),
            "three quiet steps: {three:?}"
        );
        assert!(three_recall >= one_recall, "{three_recall} < {one_recall}");
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
