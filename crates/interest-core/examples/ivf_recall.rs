//! Recall and speed of the in-memory IVF + RaBitQ index on clustered
//! vectors, to choose the access method's defaults.
//!
//! cargo run --release -p interest-core --example ivf_recall -- ROWS DIMS CENTRES NOISE LISTS

use interest_core::ivf::memory_index::{recall, MemoryIndex, SearchParams};
use interest_core::ivf::metric::Metric;
use interest_core::synthetic::clustered_vectors;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, default: f64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let rows = arg(1, 100_000.0) as usize;
    let dims = arg(2, 384.0) as usize;
    let centres = arg(3, 1_000.0) as usize;
    let noise = arg(4, 0.6);
    let lists = arg(5, interest_core::ivf::default_lists(rows) as f64) as usize;
    let data: Vec<_> = clustered_vectors(rows, dims, centres, noise, 1)
        .into_iter()
        .map(Some)
        .collect();
    let queries = clustered_vectors(50, dims, centres, noise, 2);
    let started = Instant::now();
    let index = MemoryIndex::build(Metric::Cosine, dims, &data, lists, 7, 2);
    println!(
        "rows {rows} dims {dims} lists {} build {:.1} s",
        index.lists(),
        started.elapsed().as_secs_f64()
    );
    let truth: Vec<_> = queries.iter().map(|q| index.exact(q, 10)).collect();
    for probes in [10, 40, 64] {
        for rerank in [10, 50, 100] {
            let params = SearchParams { probes, rerank };
            let started = Instant::now();
            let found: Vec<_> = queries
                .iter()
                .map(|q| index.search(q, 10, params))
                .collect();
            let ms = started.elapsed().as_secs_f64() * 1000.0 / queries.len() as f64;
            let r: f64 = found
                .iter()
                .zip(&truth)
                .map(|(f, t)| recall(f, t))
                .sum::<f64>()
                / queries.len() as f64;
            println!("probes {probes:3} rerank {rerank:4}: recall@10 {r:.3}  {ms:.2} ms/query");
        }
    }
}
