//! Parallel xz: one standard .xz stream of independently compressed blocks, written by
//! mm-pkg itself around liblzma's raw LZMA2 encoder, so that every xz reader (dpkg, rpm,
//! `xz -d`) reads it and the output is the same whatever the number of threads.
//!
//! Input is cut into fixed-size blocks (6 MiB: a 6 MiB dictionary is within a few tenths of
//! a percent of preset 6's 8 MiB and needs a quarter less encoder memory); a worker turns
//! each into one xz block per run of segments (see [`runs`]): runs that look incompressible
//! become LZMA2 uncompressed chunks (no encoder at all), the others are LZMA2-compressed.
//! Encoders are memory-hungry (about 70 MiB each at preset 6 with a 6 MiB dictionary), so
//! all the xz encoders of the process share one set of
//! [`Slots`], one per core: two package writers compressing at once use no more encoders
//! than one would. Layout per the .xz file format 1.1.0: stream header, blocks (header with
//! both sizes, data, padding, CRC32 check), index, stream footer.

use std::io::{self, Write};
use std::sync::OnceLock;

use liblzma::stream::LzmaOptions;

use super::blocks::{BlockCodec, ParBlocks, Slots, runs};
use super::xz_format::{dict_size_for, lzma2, stream_end, stream_header, write_block};

/// Bytes of input per block handed to a worker (and the largest LZMA2 dictionary used).
pub const BLOCK: usize = 6 << 20;
/// Largest LZMA2 uncompressed chunk.
const RAW_CHUNK: usize = 64 * 1024;

/// One slot per core for LZMA2 encoders, shared by every xz encoder in the process.
fn encoder_slots() -> &'static Slots {
    static SLOTS: OnceLock<Slots> = OnceLock::new();
    SLOTS.get_or_init(|| Slots::new(std::thread::available_parallelism().map_or(1, |n| n.get())))
}

/// An xz encoder at `preset` compressing on up to `threads` worker threads.
pub struct ParXzEncoder<W: Write> {
    blocks: ParBlocks<W, Lzma2>,
}

impl<W: Write> ParXzEncoder<W> {
    /// A new encoder writing to `out`.
    pub fn new(out: W, preset: u32, threads: usize) -> io::Result<Self> {
        LzmaOptions::new_preset(preset).map_err(io::Error::other)?; // a valid preset
        // Both package writers compress at once and share the encoder slots: each keeps
        // half the cores' worth of blocks in flight plus one, enough to keep every slot busy
        // while one writer waits, without many blocks waiting for a slot with their 6 MiB each.
        let in_flight = threads / 2 + 1;
        let mut blocks = ParBlocks::new(out, Lzma2 { preset }, BLOCK, in_flight, in_flight)?;
        blocks.inner().write_all(&stream_header())?;
        Ok(ParXzEncoder { blocks })
    }

    /// Compresses what is left, writes the index and the stream footer and returns the
    /// inner writer.
    pub fn finish(self) -> io::Result<W> {
        let (mut out, metas) = self.blocks.finish()?;
        let records: Vec<(u64, u64)> = metas.into_iter().flatten().collect();
        out.write_all(&stream_end(&records))?;
        Ok(out)
    }
}

impl<W: Write> Write for ParXzEncoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.blocks.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Encodes a worker's block as xz blocks; the meta is each xz block's index record
/// (unpadded size, uncompressed size).
struct Lzma2 {
    preset: u32,
}

impl BlockCodec for Lzma2 {
    type Meta = Vec<(u64, u64)>;
    const THREAD_NAME: &'static str = "mm-pkg-xz";

    fn encode(&self, data: &[u8], _last: bool, out: &mut Vec<u8>) -> io::Result<Self::Meta> {
        let mut records = Vec::new();
        for (stored, bytes) in runs(data) {
            let (lzma2, dict) = if stored {
                (uncompressed_chunks(bytes), bytes.len())
            } else {
                encoder_slots().with(|| self.compress(bytes))?
            };
            records.push(write_block(&lzma2, dict, bytes, out));
        }
        Ok(records)
    }
}

impl Lzma2 {
    /// LZMA2 data of `bytes` with a dictionary no larger than they are; returns the data and
    /// the dictionary size used.
    fn compress(&self, bytes: &[u8]) -> io::Result<(Vec<u8>, usize)> {
        let dict = dict_size_for(bytes.len(), BLOCK);
        Ok((lzma2(bytes, self.preset, dict)?, dict))
    }
}

/// `bytes` as LZMA2 uncompressed chunks: the first resets the dictionary, then the end mark.
fn uncompressed_chunks(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / RAW_CHUNK * 3 + 4);
    for (i, chunk) in bytes.chunks(RAW_CHUNK).enumerate() {
        out.push(if i == 0 { 0x01 } else { 0x02 });
        out.extend_from_slice(&((chunk.len() - 1) as u16).to_be_bytes());
        out.extend_from_slice(chunk);
    }
    out.push(0x00);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compress::blocks::SEGMENT;
    use crate::compress::blocks::tests::{noise, text};
    use std::io::Read;

    fn roundtrip(input: &[u8], threads: usize) -> Vec<u8> {
        let mut enc = ParXzEncoder::new(Vec::new(), 6, threads).unwrap();
        for chunk in input.chunks(77_777) {
            enc.write_all(chunk).unwrap();
        }
        let xz = enc.finish().unwrap();
        let mut back = Vec::new();
        liblzma::read::XzDecoder::new(&xz[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back.len(), input.len());
        assert!(back == input);
        xz
    }

    #[test]
    fn stream_is_valid_and_independent_of_threads() {
        let mut input = text(BLOCK + 5_000);
        input.extend(noise(3 * SEGMENT + 17, 9));
        input.extend(text(2 * SEGMENT));
        let one = roundtrip(&input, 1);
        assert_eq!(
            one,
            roundtrip(&input, 3),
            "deterministic whatever the thread count"
        );
        assert!(one.len() < input.len() / 2 + 3 * SEGMENT);
        roundtrip(&[], 2);
        roundtrip(b"x", 1);
        roundtrip(&noise(BLOCK, 2), 2);
    }
}
