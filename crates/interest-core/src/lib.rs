//! pg_interest's algorithms, kept free of Postgres so they can be tested and
//! benchmarked with plain `cargo test`.
//!
//! - vectors and text: `kernels` (distances), `text_format`, `pooling`,
//!   `encoder` (the ONNX sentence encoder), `encoder_cache` (its optimized graph, shared),
//!   `int8_weights` (the graph's int8 weights kept int8);
//! - events and state: `events` (the one validity rule), `decay`,
//!   `interest_state` (sub-interests), `interest_summary`, `queued_overlay` (reads of queued
//!   events), `fold_policy`;
//! - co-visitation: `covisit`, `covisit_history` (DELETE/UPDATE),
//!   `covisit_context` (scores from a user's recent items), `interner`,
//!   `link_codec`, `array_literal`;
//! - ranking: `signals` (popularity, freshness), `candidates`, `ranking`, `weights`,
//!   `explain`, `metrics`, `evaluation`;
//! - `ivf`: the vector index (k-means lists, RaBitQ codes, probing);
//! - `interrupts`: the cancellation points of long loops; `signal_mask`: threads
//!   that never take the host's signals.

pub mod array_literal;
pub mod candidates;
pub mod clock;
pub mod covisit;
pub mod covisit_context;
pub mod covisit_history;
pub mod decay;
pub mod encoder;
pub mod encoder_cache;
pub mod evaluation;
pub mod events;
pub mod explain;
pub mod fold_policy;
pub mod int8_weights;
pub mod interest_state;
pub mod interest_summary;
pub mod interner;
pub mod interrupts;
pub mod ivf;
pub mod kernels;
pub mod keys;
pub mod link_codec;
pub mod metrics;
pub mod parallel;
pub mod pooling;
pub mod queued_overlay;
pub mod ranking;
pub mod rng;
pub mod signal_mask;
pub mod signals;
pub mod synthetic;
pub mod text_format;
pub mod tuning;
pub mod unread_vectors;
pub mod weights;

// The extension names ort types (the environment) without depending on ort twice.
pub use ort;

/// Largest dimension accepted for an embedding (same limit as pgvector's `vector`).
pub const MAX_DIMENSIONS: usize = 16_000;
