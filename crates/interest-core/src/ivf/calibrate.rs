//! How many lists an automatic scan may probe, and how many quiet steps in
//! a row end it, measured by the build on its own k-means sample: how far
//! a vector's nearest neighbours spread over the lists, and with what gaps
//! between them, depends on the data (well separated clusters keep them in
//! one or two lists, real sentence embeddings spread them over many), so
//! no fixed share of the lists gives the same recall everywhere.

use super::estimator::PreparedQuery;
use super::metric::Metric;
use super::rotation::Rotation;
use super::search::{probe_order, AutomaticSteps};

/// Share of the sampled queries' nearest neighbours whose lists the
/// calibrated probes must reach: above the recall asked of the index, as
/// the codes' estimates lose a little more and real queries (a phrase of
/// two words) lie further from the data than sampled rows do.
pub const LIST_RECALL_TARGET: f64 = 0.99;

/// Sample vectors used as queries. The limit is decided by the worst
/// percent of their neighbours, so it takes this many for the cut to be
/// the same from build to build (with 100 it moved by half).
pub const CALIBRATION_QUERIES: usize = 1_000;

/// Share of those neighbours an automatic scan's steps must reach before
/// quiet steps end it (`search::AutomaticSteps`). Lower than the lists'
/// share: the replay sees a query's few sampled neighbours, so it finds
/// more quiet steps than a real query's ten nearest rows leave.
pub const STEPS_RECALL_TARGET: f64 = 0.95;

/// What the build measured: the most lists an automatic scan probes, and
/// how many steps in a row that reach no row end it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Calibration {
    /// 0 when the sample is too small to say.
    pub probes: usize,
    pub quiet_steps: usize,
}

impl Calibration {
    /// What an index measured nothing on (or built before calibration).
    pub const NONE: Calibration = Calibration {
        probes: 0,
        quiet_steps: 1,
    };
}

/// Queries each thread answers between two calls of the caller's
/// interrupt check (a few milliseconds of work).
const QUERIES_PER_CHECK: usize = 8;

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
/// `LIST_RECALL_TARGET` of the sampled queries' nearest neighbours, and the
/// fewest quiet steps in a row that must end an automatic scan for its
/// steps (of `step` lists) to reach `STEPS_RECALL_TARGET` of them. A sample
/// of n of the table's rows holds about k·n/rows of a query's k nearest
/// rows, so each query looks for that many neighbours in the sample (at
/// least one): they lie as far out as the table's k nearest.
/// `check_interrupts` runs on the calling thread between batches of
/// queries (the threads that answer them call nothing of the host).
pub fn calibrate(
    sample: &Sample<'_>,
    step: usize,
    threads: usize,
    mut check_interrupts: impl FnMut(),
) -> Calibration {
    let dims = sample.dims;
    let n = sample.lists_of.len();
    let lists = sample.centres.len() / dims.max(1);
    if dims == 0 || n < 2 || lists < 2 {
        return Calibration::NONE;
    }
    let neighbours = ((CALIBRATION_K as f64 * n as f64 / sample.rows.max(n) as f64).round()
        as usize)
        .clamp(1, CALIBRATION_K)
        .min(n - 1);
    let askers = sample.held_out.map_or(n, |h| h.len() / dims);
    let stride = (askers / CALIBRATION_QUERIES).max(1);
    let queries: Vec<usize> = (0..askers)
        .step_by(stride)
        .take(CALIBRATION_QUERIES)
        .collect();
    let step = step.max(1);
    let threads = threads.clamp(1, 16).min(queries.len());
    let mut per_query: Vec<Vec<usize>> = Vec::with_capacity(queries.len());
    for batch in queries.chunks(threads * QUERIES_PER_CHECK) {
        check_interrupts();
        per_query.extend(crate::parallel::map_on_threads(batch, threads, |&q| {
            neighbour_positions(sample, q, neighbours)
        }));
    }
    let mut positions: Vec<usize> = per_query.iter().flatten().copied().collect();
    if positions.is_empty() {
        return Calibration::NONE;
    }
    positions.sort_unstable();
    let share =
        |target: f64| ((target * positions.len() as f64).ceil() as usize).clamp(1, positions.len());
    let probes = positions[share(LIST_RECALL_TARGET) - 1] + 1;
    // Replayed up to the limit scans will use (at least an eighth of the lists).
    let limit = super::automatic_probes(lists, probes);
    let wanted = share(STEPS_RECALL_TARGET);
    let quiet_steps = (1..limit.div_ceil(step))
        .find(|&quiet| {
            let reached: usize = per_query
                .iter()
                .map(|p| reached_before_stop(p, limit, step, quiet))
                .sum();
            reached >= wanted
        })
        .unwrap_or(limit.div_ceil(step).max(1));
    Calibration {
        probes,
        quiet_steps,
    }
}

/// How many of a query's neighbour `positions` an automatic scan reaches
/// when `quiet_steps` steps in a row that reach none end it (a step reaches
/// a neighbour beyond the nearest list, as `search::step_reached_rows`).
fn reached_before_stop(
    positions: &[usize],
    limit: usize,
    step: usize,
    quiet_steps: usize,
) -> usize {
    let mut steps = AutomaticSteps::new(quiet_steps);
    let mut start = 0;
    loop {
        let end = (start + step).min(limit);
        let reached = positions.iter().any(|&p| p >= start.max(1) && p < end);
        if end >= limit || !steps.go_on(start, reached) {
            return positions.iter().filter(|&&p| p < end).count();
        }
        start = end;
    }
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

    /// Steps of this many lists suit the tests' 60 lists.
    const STEP: usize = 3;

    /// The calibration of 4,000 clustered rows (60 clusters, 60 lists) of
    /// a table `table_rows` long, asked by 1,000 rows drawn with
    /// `held_out` (None: the sample's own rows), and how often the
    /// interrupt check ran.
    fn calibrate_on(noise: f64, table_rows: usize, held_out: Option<u64>) -> (Calibration, usize) {
        let (dims, lists, rows) = (32, 60, 4_000);
        let data = |seed, n| -> Vec<f32> {
            ClusteredVectors::new(dims, 60, noise, seed)
                .take(n)
                .flatten()
                .collect()
        };
        let vectors = data(7, rows);
        let held_out = held_out.map(|seed| data(seed, CALIBRATION_QUERIES));
        let centres = kmeans::train(&vectors, dims, lists, 10, true, 1, 2);
        let lists_of = kmeans::assign(&vectors, &centres, dims, 2);
        let rotation = Rotation::new(dims, 1);
        let mut checks = 0;
        let calibration = calibrate(
            &Sample {
                metric: Metric::Cosine,
                dims,
                vectors: &vectors,
                lists_of: &lists_of,
                centres: &centres,
                rotation: &rotation,
                rows: table_rows,
                held_out: held_out.as_deref(),
            },
            STEP,
            2,
            || checks += 1,
        );
        (calibration, checks)
    }

    #[test]
    fn separated_clusters_need_few_lists_and_diffuse_data_many() {
        let (separated, _) = calibrate_on(0.3, 4_000, None);
        let (diffuse, _) = calibrate_on(3.0, 4_000, None);
        assert!(
            (1..=3).contains(&separated.probes),
            "separated: {separated:?}"
        );
        assert!(
            diffuse.probes > 3 * separated.probes && diffuse.probes <= 60,
            "diffuse: {diffuse:?}"
        );
        assert!(diffuse.quiet_steps > 1, "diffuse: {diffuse:?}");
    }

    #[test]
    fn the_limit_holds_from_one_draw_of_queries_to_another() {
        // A sample of a tenth of the table: one neighbour a query.
        let limits: Vec<usize> = (11..15)
            .map(|seed| calibrate_on(3.0, 40_000, Some(seed)).0.probes)
            .collect();
        let (low, high) = (limits.iter().min().unwrap(), limits.iter().max().unwrap());
        assert!(*low > 10, "diffuse data needs many lists: {limits:?}");
        assert!(high - low <= 8, "limits of four draws: {limits:?}");
    }

    #[test]
    fn interrupts_are_checked_between_batches() {
        let (_, checks) = calibrate_on(3.0, 40_000, Some(11));
        assert_eq!(checks, CALIBRATION_QUERIES.div_ceil(2 * QUERIES_PER_CHECK));
    }

    #[test]
    fn quiet_steps_reach_the_neighbours_beyond_a_gap() {
        // Neighbours in the nearest list, the first step and the third.
        let positions = [0, 5, 25];
        assert_eq!(reached_before_stop(&positions, 40, 10, 1), 2);
        assert_eq!(reached_before_stop(&positions, 40, 10, 2), 3);
        // The limit ends the steps whatever they reach.
        assert_eq!(reached_before_stop(&positions, 20, 10, 5), 2);
        // Only the nearest list holds a neighbour: the first step is quiet.
        assert_eq!(reached_before_stop(&[0, 0, 12], 40, 10, 1), 2);
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
        assert_eq!(calibrate(&sample, STEP, 2, || {}), Calibration::NONE);
    }
}
