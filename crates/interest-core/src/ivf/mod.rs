//! The algorithms of the `interest_ivf` index: an inverted file (k-means
//! lists) whose entries carry RaBitQ 1-bit codes (Gao and Long, SIGMOD 2024)
//! of each vector's residual to its list's centre. A search probes the
//! nearest lists, ranks their entries by the codes' distance estimates, and
//! reranks the best with exact distances.
//!
//! - `metric`: the three distances and how vectors are prepared for them;
//! - `rotation`: the seeded random orthogonal rotation codes are taken in;
//! - `rabitq`: codes and the per-list lookup tables that estimate from them;
//! - `encode`: nearest list and code of a vector, in batches on threads;
//! - `estimator`: a query prepared once, estimates per list;
//! - `kmeans`: list centres and assignment;
//! - `search`: probe order and the pool of candidates for exact rerank;
//! - `calibrate`: how many lists automatic scans may probe on the data;
//! - `memory_index`: the whole index in memory, for tests and tuning.

pub mod calibrate;
pub mod encode;
pub mod estimator;
pub mod kmeans;
pub mod memory_index;
pub mod metric;
pub mod rabitq;
pub mod rotation;
pub mod search;

/// Lists for a table of `rows` vectors when the user gives none.
pub fn default_lists(rows: usize) -> usize {
    ((rows as f64).sqrt().round() as usize).clamp(1, 16_384)
}

/// The most lists a scan probes before its first rows when
/// `interest.ivf_probes` is 0 (automatic): an eighth of the lists, at least
/// 10 and at most 40, so recall holds on data with overlapping clusters
/// without scanning a large index. It probes them `AUTO_PROBE_STEP` at a
/// time and stops early when a step finds nothing near enough
/// (`search::step_reached_rows`; `search::AutomaticSteps`: after as many
/// such steps in a row as the build's calibration allows).
pub fn default_probes(lists: usize) -> usize {
    lists.div_ceil(8).clamp(10, 40).min(lists.max(1))
}

/// The most lists an automatic scan probes: `default_probes`, or more when
/// the build measured that the data's nearest neighbours spread further
/// (`calibrate::Calibration::probes`; 0 in indexes built before it).
pub fn automatic_probes(lists: usize, calibrated: usize) -> usize {
    default_probes(lists).max(calibrated.min(lists))
}

/// Lists an automatic scan probes at a time.
pub const AUTO_PROBE_STEP: usize = 10;

/// Vectors k-means trains on: enough per list for stable centres, few
/// enough that training stays a small part of the build.
pub fn training_sample_size(lists: usize) -> usize {
    lists.saturating_mul(64).clamp(1_024, 262_144)
}

/// Lloyd iterations of the build's k-means.
pub const KMEANS_ITERATIONS: usize = 10;
