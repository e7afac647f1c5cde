//! How the ratios bench times a case: wall time of a loop of IDs on one thread, or on two
//! threads that start together and share the count.

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

pub fn repeat<T>(count: u64, mut generate: impl FnMut() -> T) -> Result<(), String> {
    for _ in 0..count {
        black_box(generate());
    }
    Ok(())
}

pub fn repeat_fallible<T>(
    count: u64,
    mut generate: impl FnMut() -> Result<T, String>,
) -> Result<(), String> {
    for _ in 0..count {
        black_box(generate()?);
    }
    Ok(())
}

/// Wall time of `run(ids)` on this thread.
pub fn one_thread(
    ids: u64,
    mut run: impl FnMut(u64) -> Result<(), String>,
) -> Result<Duration, String> {
    let start = Instant::now();
    run(ids)?;
    Ok(start.elapsed())
}

/// Two threads each run `run(ids / 2)` at once; the wall time from the first start to the
/// last finish. Spawning is outside the timed span.
pub fn two_threads(
    ids: u64,
    run: impl Fn(u64) -> Result<(), String> + Sync,
) -> Result<Duration, String> {
    let arrived = AtomicUsize::new(0);
    let spans = thread::scope(|scope| {
        let handles: Vec<_> = [ids / 2, ids - ids / 2]
            .into_iter()
            .map(|count| {
                let (arrived, run) = (&arrived, &run);
                scope.spawn(move || {
                    start_together(arrived);
                    let start = Instant::now();
                    run(count)?;
                    Ok::<_, String>((start, Instant::now()))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().map_err(|_| "a bench thread panicked".to_owned())?)
            .collect::<Result<Vec<_>, String>>()
    })?;
    let start = spans.iter().map(|span| span.0).min().expect("two spans");
    let end = spans.iter().map(|span| span.1).max().expect("two spans");
    Ok(end - start)
}

/// Blocks until both threads have called it, by spinning rather than sleeping: a thread woken
/// from a futex wait on this VM starts running about 1 ms late, longer than a whole short
/// sample, so with `std::sync::Barrier` the two threads would barely overlap.
fn start_together(arrived: &AtomicUsize) {
    arrived.fetch_add(1, Ordering::AcqRel);
    while arrived.load(Ordering::Acquire) < 2 {
        std::hint::spin_loop();
    }
}
