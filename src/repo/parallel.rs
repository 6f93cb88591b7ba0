//! Independent pieces of work (records to read and check, chunks to compress) spread over a
//! few threads, the results in the order of the input.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Result, bail};

/// `f` of each of `items`, on up to four threads (no more than the CPUs); the first error
/// wins.
pub fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> Result<R> + Sync) -> Result<Vec<R>> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    map_on(cpus.clamp(1, 4), items, f)
}

/// `f` of each of `items`, on up to `threads` threads: for work that waits rather than
/// computes (a file system's syncs, which it can group into one journal commit when they
/// arrive together). The first error wins.
pub fn map_on<T: Sync, R: Send>(
    threads: usize,
    items: &[T],
    f: impl Fn(&T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    let threads = threads.clamp(1, items.len().max(1));
    let work = || -> Result<()> {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(i) else {
                return Ok(());
            };
            let out = f(item)?;
            *slots[i].lock().expect("a result slot") = Some(out);
        }
    };
    std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads).map(|_| scope.spawn(work)).collect();
        let mine = work();
        helpers
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| bail!("a worker thread panicked"))
            })
            .chain([mine])
            .collect::<Result<()>>()
    })?;
    Ok(slots
        .into_iter()
        .map(|s| {
            s.into_inner()
                .expect("a result slot")
                .expect("every item done")
        })
        .collect())
}
