//! pg_interest's algorithms, kept free of Postgres so they can be tested and
//! benchmarked with plain `cargo test`: distance kernels, the embedding text
//! format, pooling, the ONNX sentence encoder, interest states, co-visitation,
//! ranking, metrics and offline evaluation.

pub mod covisit;
pub mod encoder;
pub mod evaluation;
pub mod interest_state;
pub mod kernels;
pub mod link_codec;
pub mod metrics;
pub mod pooling;
pub mod ranking;
pub mod text_format;

// The extension names ort types (the environment) without depending on ort twice.
pub use ort;

/// Largest dimension accepted for an embedding (same limit as pgvector's `vector`).
pub const MAX_DIMENSIONS: usize = 16_000;
