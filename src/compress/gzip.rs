//! Parallel gzip: one standard gzip member whose deflate stream is made of independently
//! compressed blocks (as `pigz --independent` does), so every gzip reader can read it and the
//! output is the same whatever the number of threads.
//!
//! Input is cut into fixed-size blocks; worker threads deflate each block on its own, ending
//! non-final blocks byte-aligned (no back-references across blocks); the blocks are written in
//! order between one gzip header and one trailer (CRC-32 and size of the whole input, computed
//! on the calling thread). Runs of incompressible segments inside a block are written as
//! stored blocks instead of being deflated.

use std::cell::RefCell;
use std::io::{self, Write};

use flate2::{Compress, FlushCompress, Status};

use super::blocks::{BlockCodec, ParBlocks, runs};

/// Bytes of input per independently compressed block.
pub const BLOCK: usize = 1 << 20;

/// A gzip encoder that compresses on `threads` worker threads.
pub struct ParGzEncoder<W: Write> {
    blocks: ParBlocks<W, Deflate>,
    crc: crc32fast::Hasher,
    total: u64,
}

impl<W: Write> ParGzEncoder<W> {
    /// A new encoder at `level` (0-9) writing to `out`.
    pub fn new(out: W, level: u32, threads: usize) -> io::Result<Self> {
        let mut blocks = ParBlocks::new(out, Deflate { level }, BLOCK, threads, 4 * threads)?;
        blocks
            .inner()
            .write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff])?;
        Ok(ParGzEncoder {
            blocks,
            crc: crc32fast::Hasher::new(),
            total: 0,
        })
    }

    /// Compresses what is left, writes the trailer and returns the inner writer.
    pub fn finish(self) -> io::Result<W> {
        let (mut out, _) = self.blocks.finish()?;
        out.write_all(&self.crc.finalize().to_le_bytes())?;
        out.write_all(&(self.total as u32).to_le_bytes())?;
        Ok(out)
    }
}

impl<W: Write> Write for ParGzEncoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.blocks.write(buf)?;
        self.crc.update(&buf[..n]);
        self.total += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Raw deflate of one block at a level.
struct Deflate {
    level: u32,
}

impl BlockCodec for Deflate {
    type Meta = ();
    const THREAD_NAME: &'static str = "mm-pkg-gzip";

    /// Raw deflate of one block, ending byte-aligned (and final only if it is the last).
    /// Incompressible runs become stored blocks; each compressible run is deflated on its own.
    fn encode(&self, data: &[u8], last: bool, out: &mut Vec<u8>) -> io::Result<()> {
        out.reserve(data.len() + data.len() / 64 + 1024);
        let runs = runs(data);
        if runs.is_empty() {
            self.deflate(&[], last, out)?;
        }
        let count = runs.len();
        for (i, (stored, bytes)) in runs.into_iter().enumerate() {
            let is_final = last && i + 1 == count;
            if stored {
                write_stored(bytes, is_final, out);
            } else {
                self.deflate(bytes, is_final, out)?;
            }
        }
        Ok(())
    }
}

impl Deflate {
    /// Deflates `bytes` on their own, ending with a sync flush (byte-aligned) or, when
    /// `is_final`, the final block.
    fn deflate(&self, bytes: &[u8], is_final: bool, out: &mut Vec<u8>) -> io::Result<()> {
        // Each worker thread keeps its compressor (a few hundred KiB of tables) and resets it
        // for every run instead of allocating a new one.
        thread_local! {
            static COMPRESSOR: RefCell<Option<(u32, Compress)>> = const { RefCell::new(None) };
        }
        let mut c = match COMPRESSOR.with(|slot| slot.borrow_mut().take()) {
            Some((level, mut c)) if level == self.level => {
                c.reset();
                c
            }
            _ => Compress::new(flate2::Compression::new(self.level), false),
        };
        run(&mut c, bytes, out, FlushCompress::None)?;
        let flush = if is_final {
            FlushCompress::Finish
        } else {
            FlushCompress::Sync
        };
        run(&mut c, &[], out, flush)?;
        COMPRESSOR.with(|slot| *slot.borrow_mut() = Some((self.level, c)));
        Ok(())
    }
}

/// Feeds `input` to `c` with `flush`, growing `out` until all of it is consumed and, for a
/// flush, written out.
fn run(c: &mut Compress, input: &[u8], out: &mut Vec<u8>, flush: FlushCompress) -> io::Result<()> {
    let start = c.total_in();
    let finishing = matches!(flush, FlushCompress::Finish);
    loop {
        if out.capacity() - out.len() < 1024 {
            out.reserve(out.capacity().max(64 * 1024));
        }
        let consumed = (c.total_in() - start) as usize;
        let status = c
            .compress_vec(&input[consumed..], out, flush)
            .map_err(io::Error::other)?;
        let done_input = (c.total_in() - start) as usize == input.len();
        match status {
            Status::StreamEnd => return Ok(()),
            // Output space left over means the flush (if any) is complete.
            _ if done_input && !finishing && out.capacity() > out.len() => return Ok(()),
            _ => {}
        }
    }
}

/// Appends `bytes` as deflate stored blocks (RFC 1951 3.2.4); `out` is byte-aligned before.
fn write_stored(bytes: &[u8], is_final: bool, out: &mut Vec<u8>) {
    let mut chunks = bytes.chunks(u16::MAX as usize).peekable();
    while let Some(chunk) = chunks.next() {
        let len = chunk.len() as u16;
        out.push(u8::from(is_final && chunks.peek().is_none()));
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compress::blocks::SEGMENT;
    use crate::compress::blocks::tests::{noise, text};
    use std::io::Read;

    fn roundtrip(input: &[u8], threads: usize) -> Vec<u8> {
        let level = crate::compress::Compression::GZIP_LEVEL;
        let mut enc = ParGzEncoder::new(Vec::new(), level, threads).unwrap();
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

    /// Text like bundled JavaScript: keywords and pseudo-random identifiers.
    fn script_like(len: usize) -> Vec<u8> {
        let words: [&[u8]; 8] = [
            b"function ",
            b"return ",
            b"const ",
            b"this.",
            b"props.",
            b"=> {",
            b"};\n",
            b"if (",
        ];
        let noise = noise(len, 17);
        let mut out = Vec::with_capacity(len + 32);
        let mut i = 0;
        while out.len() < len {
            out.extend_from_slice(words[(noise[i] % 8) as usize]);
            for b in &noise[i + 1..i + 4] {
                out.extend_from_slice(format!("{b:02x}").as_bytes());
            }
            i += 4;
        }
        out.truncate(len);
        out
    }

    /// Fails when `ours` is more than 1% larger than `gzip -6` of `input`.
    fn assert_within_one_percent_of_gzip_6(input: &[u8], ours: &[u8]) {
        let mut reference = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        reference.write_all(input).unwrap();
        let reference = reference.finish().unwrap();
        assert!(
            (ours.len() as f64) <= reference.len() as f64 * 1.01,
            "{} vs gzip -6 {}",
            ours.len(),
            reference.len()
        );
    }

    #[test]
    fn compressible_text_stays_within_one_percent_of_gzip_6() {
        let input = script_like(3 * BLOCK);
        assert_within_one_percent_of_gzip_6(&input, &roundtrip(&input, 2));
    }

    #[test]
    fn incompressible_runs_are_stored_and_the_rest_deflated() {
        let mut input = noise(2 * BLOCK + 3_333, 7);
        input.extend(text(BLOCK + 7_000));
        input.extend(noise(SEGMENT * 3, 11));
        let ours = roundtrip(&input, 2);
        assert_eq!(ours, roundtrip(&input, 1));
        // Not larger than gzip -6 by more than 1%; the noise cannot shrink, so the output holds
        // at least its bytes.
        assert_within_one_percent_of_gzip_6(&input, &ours);
        assert!(ours.len() > 2 * BLOCK + 3 * SEGMENT);
        // Ends with noise: the final block is a stored one.
        roundtrip(&noise(BLOCK + SEGMENT, 1), 2);
    }
}
