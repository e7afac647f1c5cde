//! Test-only helpers shared by the generators' unit tests.

/// Runs `per_thread` calls of `generate` on each of `threads` threads at once (one shared
/// generator), asserts that every thread saw strictly increasing values, and returns all of
/// them sorted, so the caller can check uniqueness (or density) across threads.
pub(crate) fn generate_on_threads<T, F>(threads: usize, per_thread: usize, generate: F) -> Vec<T>
where
    T: Ord + Send + std::fmt::Debug,
    F: Fn() -> T + Sync,
{
    let per_thread_values: Vec<Vec<T>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| scope.spawn(|| (0..per_thread).map(|_| generate()).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().expect("generator thread panicked"))
            .collect()
    });
    for values in &per_thread_values {
        assert!(
            values.windows(2).all(|pair| pair[0] < pair[1]),
            "a thread saw values out of order"
        );
    }
    let mut all: Vec<T> = per_thread_values.into_iter().flatten().collect();
    all.sort_unstable();
    all
}

/// [`generate_on_threads`] plus: no value was issued twice.
pub(crate) fn assert_unique_on_threads<T, F>(threads: usize, per_thread: usize, generate: F)
where
    T: Ord + Send + std::fmt::Debug,
    F: Fn() -> T + Sync,
{
    let mut all = generate_on_threads(threads, per_thread, generate);
    all.dedup();
    assert_eq!(all.len(), threads * per_thread, "some value was issued twice");
}
