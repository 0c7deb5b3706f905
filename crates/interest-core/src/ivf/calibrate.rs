//! How many lists an automatic scan may probe, measured by the build on its
//! own k-means sample: how far a vector's nearest neighbours spread over
//! the lists depends on the data (well separated clusters keep them in one
//! or two lists, real sentence embeddings spread them over many), so no
//! fixed share of the lists gives the same recall everywhere.

use super::estimator::PreparedQuery;
use super::metric::Metric;
use super::rotation::Rotation;
use super::search::probe_order;

/// Share of the sampled queries' nearest neighbours whose lists the
/// calibrated probes must reach (above the recall asked of the index, as
/// the codes' estimates lose a little more).
pub const LIST_RECALL_TARGET: f64 = 0.99;

/// Sample vectors used as queries: enough for a stable share, few enough
/// that the build spends a second or two on them.
pub const CALIBRATION_QUERIES: usize = 100;

/// The rows a query's recall is measured on (`LIMIT 10`).
pub const CALIBRATION_K: usize = 10;

/// What the calibration sees: the prepared sample, each sample vector's
/// list, the centres and the rotation scans use, the table's rows, and
/// sampled rows k-means did not train on to ask with (the centres fit
/// their training rows more closely than the rows queries look for; None:
/// the sample's own rows, each without itself).
pub struct Sample<'a> {
    pub metric: Metric,
    pub dims: usize,
    pub vectors: &'a [f32],
    pub lists_of: &'a [u32],
    pub centres: &'a [f32],
    pub rotation: &'a Rotation,
    pub rows: usize,
    pub held_out: Option<&'a [f32]>,
}

/// The fewest lists, in each query's probe order, that hold
/// `LIST_RECALL_TARGET` of the sampled queries' nearest neighbours; 0 when
/// the sample is too small to say. A sample of n of the table's rows holds
/// about k·n/rows of a query's k nearest rows, so each query looks for that
/// many neighbours in the sample (at least one): they lie as far out as the
/// table's k nearest.
pub fn calibrated_probes(sample: &Sample<'_>, threads: usize) -> usize {
    let dims = sample.dims;
    let n = sample.lists_of.len();
    let lists = sample.centres.len() / dims.max(1);
    if dims == 0 || n < 2 || lists < 2 {
        return 0;
    }
    let neighbours = ((CALIBRATION_K as f64 * n as f64 / sample.rows.max(n) as f64).round()
        as usize)
        .clamp(1, CALIBRATION_K)
        .min(n - 1);
    let askers = sample.held_out.map_or(n, |h| h.len() / dims);
    let step = (askers / CALIBRATION_QUERIES).max(1);
    let queries: Vec<usize> = (0..askers)
        .step_by(step)
        .take(CALIBRATION_QUERIES)
        .collect();
    let threads = threads.clamp(1, 16).min(queries.len());
    let per_thread = queries.len().div_ceil(threads);
    // Threads start with every signal blocked (the host's signals reach its
    // main thread only) and call nothing of the host.
    let mut positions: Vec<usize> = crate::signal_mask::with_signals_blocked(|| {
        std::thread::scope(|scope| {
            let handles: Vec<_> = queries
                .chunks(per_thread)
                .map(|chunk| {
                    scope.spawn(move || {
                        chunk
                            .iter()
                            .flat_map(|&q| neighbour_positions(sample, q, neighbours))
                            .collect::<Vec<usize>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("calibration threads do not panic"))
                .collect()
        })
    });
    if positions.is_empty() {
        return 0;
    }
    positions.sort_unstable();
    let covered =
        ((LIST_RECALL_TARGET * positions.len() as f64).ceil() as usize).clamp(1, positions.len());
    positions[covered - 1] + 1
}

/// The places, in query `q`'s probe order, of the lists of its `count`
/// nearest sample vectors (other than itself).
fn neighbour_positions(sample: &Sample<'_>, q: usize, count: usize) -> Vec<usize> {
    let dims = sample.dims;
    let at = |i: usize| &sample.vectors[i * dims..(i + 1) * dims];
    let (asking, itself) = match sample.held_out {
        Some(h) => (&h[q * dims..(q + 1) * dims], None),
        None => (at(q), Some(q)),
    };
    let Some(query) = PreparedQuery::new(sample.metric, sample.rotation, asking) else {
        return Vec::new();
    };
    let order = probe_order(&query, sample.centres, dims);
    let mut place = vec![0usize; order.len()];
    for (position, &list) in order.iter().enumerate() {
        place[list as usize] = position;
    }
    let mut nearest: Vec<(f64, usize)> = (0..sample.lists_of.len())
        .filter(|&i| Some(i) != itself)
        .map(|i| (sample.metric.distance(asking, at(i)), i))
        .collect();
    let count = count.min(nearest.len());
    if count == 0 {
        return Vec::new();
    }
    nearest.select_nth_unstable_by(count - 1, |a, b| a.0.total_cmp(&b.0));
    nearest[..count]
        .iter()
        .map(|&(_, i)| place[sample.lists_of[i] as usize])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ivf::kmeans;
    use crate::synthetic::ClusteredVectors;

    fn calibrate(centres_of_data: usize, noise: f64, lists: usize) -> usize {
        let dims = 32;
        let rows = 4_000;
        let vectors: Vec<f32> = ClusteredVectors::new(dims, centres_of_data, noise, 7)
            .take(rows)
            .flatten()
            .collect();
        let centres = kmeans::train(&vectors, dims, lists, 10, true, 1, 2);
        let lists_of = kmeans::assign(&vectors, &centres, dims, 2);
        let rotation = Rotation::new(dims, 1);
        calibrated_probes(
            &Sample {
                metric: Metric::Cosine,
                dims,
                vectors: &vectors,
                lists_of: &lists_of,
                centres: &centres,
                rotation: &rotation,
                rows,
                held_out: None,
            },
            2,
        )
    }

    #[test]
    fn separated_clusters_need_few_lists_and_diffuse_data_many() {
        let separated = calibrate(60, 0.3, 60);
        let diffuse = calibrate(60, 3.0, 60);
        assert!((1..=3).contains(&separated), "separated: {separated}");
        assert!(
            diffuse > 3 * separated && diffuse <= 60,
            "diffuse: {diffuse}"
        );
    }

    #[test]
    fn too_small_a_sample_says_nothing() {
        let rotation = Rotation::new(4, 1);
        let sample = Sample {
            metric: Metric::L2,
            dims: 4,
            vectors: &[1.0, 0.0, 0.0, 0.0],
            lists_of: &[0],
            centres: &[1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0],
            rotation: &rotation,
            rows: 1,
            held_out: None,
        };
        assert_eq!(calibrated_probes(&sample, 2), 0);
    }
}
