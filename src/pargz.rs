//! Parallel gzip: one standard gzip member whose deflate stream is made of independently
//! compressed blocks (as `pigz --independent` does), so every gzip reader can read it and the
//! output is the same whatever the number of threads.
//!
//! Input is cut into fixed-size blocks; worker threads deflate each block on its own, ending
//! non-final blocks with a full flush (byte-aligned, no back-references across blocks); the
//! blocks are written in order between one gzip header and one trailer (CRC-32 and size of
//! the whole input, computed on the calling thread).

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use flate2::{Compress, FlushCompress, Status};

/// Bytes of input per independently compressed block.
pub const BLOCK: usize = 1 << 20;

type Job = (u64, Vec<u8>, bool);

/// A gzip encoder that compresses on `threads` worker threads.
pub struct ParGzEncoder<W: Write> {
    out: Option<W>,
    block: Vec<u8>,
    crc: crc32fast::Hasher,
    total: u64,
    jobs: Option<SyncSender<Job>>,
    results: Receiver<(u64, io::Result<Vec<u8>>)>,
    workers: Vec<JoinHandle<()>>,
    ready: BTreeMap<u64, Vec<u8>>,
    next_seq: u64,
    next_write: u64,
}

impl<W: Write> ParGzEncoder<W> {
    /// A new encoder at `level` (0-9) writing to `out`.
    pub fn new(mut out: W, level: u32, threads: usize) -> io::Result<Self> {
        out.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff])?;
        let threads = threads.max(1);
        let (job_tx, job_rx) = sync_channel::<Job>(threads * 2);
        let job_rx = Arc::new(Mutex::new(job_rx));
        let (res_tx, res_rx) = channel();
        let workers = (0..threads)
            .map(|_| {
                let (rx, tx): (Arc<Mutex<Receiver<Job>>>, Sender<_>) =
                    (job_rx.clone(), res_tx.clone());
                std::thread::spawn(move || {
                    loop {
                        let job = rx.lock().map(|r| r.recv());
                        let Ok(Ok((seq, data, last))) = job else {
                            return;
                        };
                        if tx.send((seq, deflate_block(&data, level, last))).is_err() {
                            return;
                        }
                    }
                })
            })
            .collect();
        Ok(ParGzEncoder {
            out: Some(out),
            block: Vec::with_capacity(BLOCK),
            crc: crc32fast::Hasher::new(),
            total: 0,
            jobs: Some(job_tx),
            results: res_rx,
            workers,
            ready: BTreeMap::new(),
            next_seq: 0,
            next_write: 0,
        })
    }

    fn submit(&mut self, last: bool) -> io::Result<()> {
        let data = std::mem::replace(
            &mut self.block,
            Vec::with_capacity(if last { 0 } else { BLOCK }),
        );
        let jobs = self.jobs.as_ref().expect("encoder not finished");
        jobs.send((self.next_seq, data, last))
            .map_err(|_| io::Error::other("gzip worker stopped"))?;
        self.next_seq += 1;
        // Keep a bounded number of blocks in flight: collect what is done.
        while self.next_seq - self.next_write > 4 * self.workers.len() as u64 {
            self.collect_one()?;
        }
        Ok(())
    }

    fn collect_one(&mut self) -> io::Result<()> {
        let (seq, result) = self
            .results
            .recv()
            .map_err(|_| io::Error::other("gzip worker stopped"))?;
        self.ready.insert(seq, result?);
        let out = self.out.as_mut().expect("encoder not finished");
        while let Some(bytes) = self.ready.remove(&self.next_write) {
            out.write_all(&bytes)?;
            self.next_write += 1;
        }
        Ok(())
    }

    /// Compresses what is left, writes the trailer and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.submit(true)?;
        self.jobs = None; // workers exit once the queue is drained
        while self.next_write < self.next_seq {
            self.collect_one()?;
        }
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
        let mut out = self.out.take().expect("encoder not finished");
        out.write_all(&self.crc.clone().finalize().to_le_bytes())?;
        out.write_all(&(self.total as u32).to_le_bytes())?;
        Ok(out)
    }
}

impl<W: Write> Write for ParGzEncoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(BLOCK - self.block.len());
        self.block.extend_from_slice(&buf[..n]);
        self.crc.update(&buf[..n]);
        self.total += n as u64;
        if self.block.len() == BLOCK {
            self.submit(false)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Raw deflate of one block: a full flush (byte-aligned, not final) unless it is the last.
fn deflate_block(data: &[u8], level: u32, last: bool) -> io::Result<Vec<u8>> {
    let mut c = Compress::new(flate2::Compression::new(level), false);
    let mut out = Vec::with_capacity(data.len() / 2 + 1024);
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Full
    };
    loop {
        let consumed = c.total_in() as usize;
        if out.capacity() - out.len() < 1024 {
            out.reserve(out.capacity().max(64 * 1024));
        }
        let status = c
            .compress_vec(&data[consumed..], &mut out, flush)
            .map_err(io::Error::other)?;
        let done_input = c.total_in() as usize == data.len();
        match status {
            Status::StreamEnd => return Ok(out),
            _ if done_input && !last && out.capacity() > out.len() => return Ok(out),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn roundtrip(input: &[u8], threads: usize) -> Vec<u8> {
        let mut enc = ParGzEncoder::new(Vec::new(), 6, threads).unwrap();
        for chunk in input.chunks(77_777) {
            enc.write_all(chunk).unwrap();
        }
        let gz = enc.finish().unwrap();
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, input);
        gz
    }

    #[test]
    fn output_is_one_valid_member_independent_of_threads() {
        let input: Vec<u8> = (0..(3 * BLOCK + 12_345))
            .map(|i| ((i * 7919) % 251) as u8 ^ (i >> 13) as u8)
            .collect();
        let one = roundtrip(&input, 1);
        let four = roundtrip(&input, 4);
        assert_eq!(one, four, "deterministic whatever the thread count");
        assert!(one.len() < input.len());
        roundtrip(&[], 2);
        roundtrip(&input[..BLOCK], 2);
    }
}
