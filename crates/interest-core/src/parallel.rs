//! Work split over a few threads the library starts itself (the vector
//! index's build): each thread takes a run of the items, with every signal
//! blocked (`signal_mask`), and calls nothing of the host.

/// `f` of every item, in the items' order, on up to `threads` threads.
pub fn map_on_threads<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let threads = threads.clamp(1, 16).min(items.len().max(1));
    let per_thread = items.len().div_ceil(threads).max(1);
    let f = &f;
    crate::signal_mask::with_signals_blocked(|| {
        std::thread::scope(|scope| {
            let handles: Vec<_> = items
                .chunks(per_thread)
                .map(|chunk| scope.spawn(move || chunk.iter().map(f).collect::<Vec<R>>()))
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("worker threads do not panic"))
                .collect()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_items_order_whatever_the_threads() {
        let items: Vec<u32> = (0..1_001).collect();
        for threads in [0, 1, 2, 7, 64] {
            let doubled = map_on_threads(&items, threads, |&i| i * 2);
            assert_eq!(doubled, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        }
        assert!(map_on_threads(&[] as &[u32], 4, |&i| i).is_empty());
    }
}
