//! The machinery both block-parallel encoders share (gzip and xz): input cut into blocks of a
//! fixed size, each encoded on its own by a pool of worker threads, results written in order.
//! A block's encoding depends only on its bytes, so the output is the same whatever the
//! number of threads.
//!
//! Also the one test of whether bytes are worth compressing at all ([`looks_incompressible`]):
//! releases carry many already-compressed files (plugin archives, images), and both codecs
//! store such bytes instead of spending most of their time failing to shrink them.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// Bytes per segment whose compressibility is judged on its own.
pub const SEGMENT: usize = 64 * 1024;

/// Order-0 entropy (bits per byte) above which a segment is stored rather than compressed.
/// Data that is already compressed or encrypted measures about 7.997 bits on 64 KiB; text
/// and machine code measure far below 7.9.
const STORE_ABOVE_BITS: f64 = 7.99;

/// True when `segment`'s bytes are spread so evenly that no codec can shrink it by much:
/// order-0 entropy above [`STORE_ABOVE_BITS`]. Segments under 4 KiB are always compressed.
pub fn looks_incompressible(segment: &[u8]) -> bool {
    if segment.len() < 4096 {
        return false;
    }
    // Four tables, summed after: consecutive equal bytes do not wait on one counter.
    let mut tables = [[0u32; 256]; 4];
    let mut quads = segment.chunks_exact(4);
    for q in &mut quads {
        tables[0][q[0] as usize] += 1;
        tables[1][q[1] as usize] += 1;
        tables[2][q[2] as usize] += 1;
        tables[3][q[3] as usize] += 1;
    }
    for &b in quads.remainder() {
        tables[0][b as usize] += 1;
    }
    let n = segment.len() as f64;
    let bits: f64 = (0..256)
        .map(|i| tables.iter().map(|t| t[i]).sum::<u32>())
        .filter(|&k| k > 0)
        .map(|k| {
            let p = f64::from(k) / n;
            -p * p.log2()
        })
        .sum();
    bits > STORE_ABOVE_BITS
}

/// Splits `data` into runs of [`SEGMENT`]s that are all incompressible (`true`) or all worth
/// compressing (`false`), in order.
pub fn runs(data: &[u8]) -> Vec<(bool, &[u8])> {
    let stored: Vec<bool> = data.chunks(SEGMENT).map(looks_incompressible).collect();
    let mut out = Vec::new();
    let mut start = 0;
    while start < stored.len() {
        let kind = stored[start];
        let end = (start..stored.len())
            .find(|&i| stored[i] != kind)
            .unwrap_or(stored.len());
        out.push((
            kind,
            &data[start * SEGMENT..(end * SEGMENT).min(data.len())],
        ));
        start = end;
    }
    out
}

/// How one block is encoded, on a worker thread.
pub trait BlockCodec: Send + Sync + 'static {
    /// What the container needs to know of each encoded block (sizes for an index, ...).
    type Meta: Send + 'static;
    /// Name of the worker threads.
    const THREAD_NAME: &'static str;
    /// Appends the encoding of `data` to `out` (empty, with room reserved from earlier
    /// blocks); `last` is true for the final block (possibly empty).
    fn encode(&self, data: &[u8], last: bool, out: &mut Vec<u8>) -> io::Result<Self::Meta>;
}

/// A counting semaphore: bounds how many memory-hungry encoders run at once across every
/// encoder of the process.
pub struct Slots {
    free: Mutex<usize>,
    freed: Condvar,
}

impl Slots {
    /// `n` slots (at least one).
    pub fn new(n: usize) -> Self {
        Slots {
            free: Mutex::new(n.max(1)),
            freed: Condvar::new(),
        }
    }

    /// Runs `job` while holding one slot.
    pub fn with<T>(&self, job: impl FnOnce() -> T) -> T {
        {
            let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
            while *free == 0 {
                free = self.freed.wait(free).unwrap_or_else(|e| e.into_inner());
            }
            *free -= 1;
        }
        let result = job();
        *self.free.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.freed.notify_one();
        result
    }
}

/// A block to encode: its number, its bytes, whether it is the last, and a buffer to encode
/// it into.
struct Job {
    seq: u64,
    data: Vec<u8>,
    last: bool,
    out: Vec<u8>,
}

/// An encoded block, with both buffers of its job for the next ones.
struct Done<M> {
    seq: u64,
    meta: io::Result<M>,
    data: Vec<u8>,
    out: Vec<u8>,
}

/// Encodes blocks of `block` bytes on worker threads and writes them, in order, to `out`.
/// The caller writes any container header before the first block and, after
/// [`ParBlocks::finish`], any trailer; it gets each block's meta in order.
///
/// The buffers of finished blocks are used again for the next ones: a build fills and
/// encodes hundreds of blocks, and fresh memory for each (pages the kernel must find and
/// zero, and on a virtual machine often the host too) cost more than the copies.
pub struct ParBlocks<W: Write, C: BlockCodec> {
    out: Option<W>,
    block: Vec<u8>,
    block_size: usize,
    in_flight: u64,
    jobs: Option<SyncSender<Job>>,
    results: Receiver<Done<C::Meta>>,
    workers: Vec<JoinHandle<()>>,
    ready: BTreeMap<u64, Done<C::Meta>>,
    spare: Vec<(Vec<u8>, Vec<u8>)>,
    metas: Vec<C::Meta>,
    next_seq: u64,
    next_write: u64,
}

impl<W: Write, C: BlockCodec> ParBlocks<W, C> {
    /// Starts `threads` workers encoding blocks of `block_size` bytes with `codec`; at most
    /// `in_flight` blocks are queued or being encoded at once (bounds memory).
    pub fn new(
        out: W,
        codec: C,
        block_size: usize,
        threads: usize,
        in_flight: usize,
    ) -> io::Result<Self> {
        let threads = threads.max(1);
        let (job_tx, job_rx) = sync_channel::<Job>(threads);
        let job_rx = Arc::new(Mutex::new(job_rx));
        let (res_tx, res_rx) = channel();
        let codec = Arc::new(codec);
        let workers = (0..threads)
            .map(|_| {
                let rx: Arc<Mutex<Receiver<Job>>> = job_rx.clone();
                let tx: Sender<Done<C::Meta>> = res_tx.clone();
                let codec = codec.clone();
                std::thread::Builder::new()
                    .name(C::THREAD_NAME.to_string())
                    .spawn(move || {
                        loop {
                            let job = rx.lock().map(|r| r.recv());
                            let Ok(Ok(mut job)) = job else {
                                return;
                            };
                            let meta = codec.encode(&job.data, job.last, &mut job.out);
                            let done = Done {
                                seq: job.seq,
                                meta,
                                data: job.data,
                                out: job.out,
                            };
                            if tx.send(done).is_err() {
                                return;
                            }
                        }
                    })
            })
            .collect::<io::Result<_>>()?;
        Ok(ParBlocks {
            out: Some(out),
            block: Vec::with_capacity(block_size),
            block_size,
            in_flight: in_flight.max(1) as u64,
            jobs: Some(job_tx),
            results: res_rx,
            workers,
            ready: BTreeMap::new(),
            spare: Vec::new(),
            metas: Vec::new(),
            next_seq: 0,
            next_write: 0,
        })
    }

    /// The writer, to put a container header before the first block.
    pub fn inner(&mut self) -> &mut W {
        self.out.as_mut().expect("encoder not finished")
    }

    fn submit(&mut self, last: bool) -> io::Result<()> {
        let (next, out) = match self.spare.pop() {
            Some(buffers) => buffers,
            None if last => (Vec::new(), Vec::new()),
            None => (Vec::with_capacity(self.block_size), Vec::new()),
        };
        let data = std::mem::replace(&mut self.block, next);
        let jobs = self.jobs.as_ref().expect("encoder not finished");
        let job = Job {
            seq: self.next_seq,
            data,
            last,
            out,
        };
        jobs.send(job)
            .map_err(|_| io::Error::other("compression worker stopped"))?;
        self.next_seq += 1;
        while self.next_seq - self.next_write >= self.in_flight {
            self.collect_one()?;
        }
        Ok(())
    }

    fn collect_one(&mut self) -> io::Result<()> {
        let done = self
            .results
            .recv()
            .map_err(|_| io::Error::other("compression worker stopped"))?;
        self.ready.insert(done.seq, done);
        let out = self.out.as_mut().expect("encoder not finished");
        while let Some(mut done) = self.ready.remove(&self.next_write) {
            self.metas.push(done.meta?);
            out.write_all(&done.out)?;
            done.data.clear();
            done.out.clear();
            self.spare.push((done.data, done.out));
            self.next_write += 1;
        }
        Ok(())
    }

    /// Encodes what is left as the last block and returns the writer and every block's meta,
    /// in order.
    pub fn finish(mut self) -> io::Result<(W, Vec<C::Meta>)> {
        self.submit(true)?;
        self.jobs = None; // workers exit once the queue is drained
        while self.next_write < self.next_seq {
            self.collect_one()?;
        }
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
        let out = self.out.take().expect("encoder not finished");
        Ok((out, std::mem::take(&mut self.metas)))
    }
}

impl<W: Write, C: BlockCodec> Write for ParBlocks<W, C> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(self.block_size - self.block.len());
        self.block.extend_from_slice(&buf[..n]);
        if self.block.len() == self.block_size {
            self.submit(false)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Random bytes (what compressed archives look like) from a fixed seed.
    pub fn noise(len: usize, mut seed: u64) -> Vec<u8> {
        (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed >> 24) as u8
            })
            .collect()
    }

    /// Compressible text of `len` bytes.
    pub fn text(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| b"func main() { return x + y }\n"[i % 29] ^ ((i / 4096) % 3) as u8)
            .collect()
    }

    #[test]
    fn noise_is_incompressible_and_text_is_not() {
        assert!(looks_incompressible(&noise(SEGMENT, 3)));
        assert!(!looks_incompressible(&text(SEGMENT)));
        assert!(!looks_incompressible(&noise(1000, 3)), "short segments");
        let mut mixed = noise(2 * SEGMENT, 5);
        mixed.extend(text(SEGMENT + 10));
        let kinds: Vec<(bool, usize)> = runs(&mixed).iter().map(|(k, b)| (*k, b.len())).collect();
        assert_eq!(kinds, [(true, 2 * SEGMENT), (false, SEGMENT + 10)]);
    }
}
