//! Parallel gzip, in two framings (RFC 1952), both the same whatever the number of threads:
//!
//! - [`Framing::Members`] (the .deb): a series of gzip members, each compressed on its own by
//!   libdeflate. RFC 1952 2.2 makes a gzip file a series of members, and every reader dpkg and
//!   apt use reads them as one stream (zlib's `gzread`, GNU gzip and tar, busybox, libarchive,
//!   Python, Go). libdeflate compresses faster than zlib at the same size but always ends its
//!   output with a final block, so each of its runs needs a member of its own.
//! - [`Framing::OneMember`] (the .rpm): one member whose deflate stream is made of
//!   independently compressed blocks (as `pigz --independent` writes it), by zlib. The `rpm`
//!   crate reads only the first member of a gzip payload.
//!
//! Input is cut into fixed-size blocks; worker threads split each block into runs of
//! compressible and incompressible segments ([`runs`]), deflate the first and store the others
//! (deflate stored blocks). The blocks are written in order.

use std::cell::RefCell;
use std::io::{self, Write};

use flate2::{Compress, FlushCompress, Status};
use libdeflater::{CompressionLvl, Compressor};

use super::blocks::{BlockCodec, ParBlocks, runs};

/// Bytes of input per block handed to a worker.
pub const BLOCK: usize = 1 << 20;

/// How a gzip stream is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// One member per run of each block, compressed by libdeflate (faster).
    Members,
    /// One member for the whole stream, compressed by zlib, for readers that stop after the
    /// first member.
    OneMember,
}

/// A gzip encoder that compresses on `threads` worker threads.
pub struct ParGzEncoder<W: Write> {
    blocks: ParBlocks<W, Blocks>,
    /// For [`Framing::OneMember`]: CRC-32 and size of the whole input, for the one trailer.
    whole: Option<(crc32fast::Hasher, u64)>,
}

/// The gzip header mm-pkg writes: no name, no time (reproducible), OS unknown; the same as
/// libdeflate's at the levels mm-pkg uses.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

impl<W: Write> ParGzEncoder<W> {
    /// A new encoder at `level` (1-9) writing to `out`.
    pub fn new(out: W, level: u32, framing: Framing, threads: usize) -> io::Result<Self> {
        let codec = match framing {
            Framing::Members => Blocks::Members(
                CompressionLvl::new(level as i32)
                    .map_err(|_| io::Error::other(format!("gzip level {level} is not 1 to 12")))?,
            ),
            Framing::OneMember => Blocks::Deflate(level),
        };
        let mut blocks = ParBlocks::new(out, codec, BLOCK, threads, 4 * threads)?;
        let whole = match framing {
            Framing::Members => None,
            Framing::OneMember => {
                blocks.inner().write_all(&HEADER)?;
                Some((crc32fast::Hasher::new(), 0))
            }
        };
        Ok(ParGzEncoder { blocks, whole })
    }

    /// Compresses what is left, writes any trailer and returns the inner writer.
    pub fn finish(self) -> io::Result<W> {
        let (mut out, _) = self.blocks.finish()?;
        if let Some((crc, total)) = self.whole {
            out.write_all(&crc.finalize().to_le_bytes())?;
            out.write_all(&(total as u32).to_le_bytes())?;
        }
        Ok(out)
    }
}

impl<W: Write> Write for ParGzEncoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.blocks.write(buf)?;
        if let Some((crc, total)) = &mut self.whole {
            crc.update(&buf[..n]);
            *total += n as u64;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// How one block is encoded.
enum Blocks {
    /// As gzip members, one per run, at a libdeflate level.
    Members(CompressionLvl),
    /// As raw deflate at a zlib level, ending byte-aligned (final only if it is the last).
    Deflate(u32),
}

impl BlockCodec for Blocks {
    type Meta = ();
    const THREAD_NAME: &'static str = "mm-pkg-gzip";

    fn encode(&self, data: &[u8], last: bool, out: &mut Vec<u8>) -> io::Result<()> {
        match *self {
            Blocks::Members(level) => members(level, data, out),
            Blocks::Deflate(level) => Deflate { level }.encode(data, last, out),
        }
    }
}

/// Appends one gzip member per run of `data`: incompressible runs stored (libdeflate's level
/// 0 writes stored blocks), the others deflated at `level`. An empty block is one empty
/// member, so that even an empty input makes a gzip file.
fn members(level: CompressionLvl, data: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    let runs = runs(data);
    if runs.is_empty() {
        return member(level, &[], true, out);
    }
    for (stored, bytes) in runs {
        member(level, bytes, stored, out)?;
    }
    Ok(())
}

/// Appends `bytes` to `out` as one gzip member, stored or deflated at `level`.
fn member(level: CompressionLvl, bytes: &[u8], stored: bool, out: &mut Vec<u8>) -> io::Result<()> {
    // Each worker thread keeps its two compressors (the deflating one holds a few hundred KiB
    // of tables) instead of allocating them for every run.
    thread_local! {
        static COMPRESSORS: RefCell<Option<(CompressionLvl, Compressor, Compressor)>> =
            const { RefCell::new(None) };
    }
    COMPRESSORS.with(|slot| {
        let mut slot = slot.borrow_mut();
        if slot.as_ref().is_none_or(|(l, ..)| *l != level) {
            let none = CompressionLvl::new(0).expect("level 0 is valid");
            *slot = Some((level, Compressor::new(none), Compressor::new(level)));
        }
        let (_, store, deflate) = slot.as_mut().expect("just set");
        let c = if stored { store } else { deflate };
        let start = out.len();
        out.resize(start + c.gzip_compress_bound(bytes.len()), 0);
        let written = c
            .gzip_compress(bytes, &mut out[start..])
            .map_err(|e| io::Error::other(format!("libdeflate: {e:?}")))?;
        out.truncate(start + written);
        Ok(())
    })
}

/// Raw deflate of one block at a zlib level.
struct Deflate {
    level: u32,
}

impl Deflate {
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

    /// Decodes each gzip member of `gz` with a decoder that stops after one member; returns
    /// the members' bytes.
    fn members_of(mut gz: &[u8]) -> Vec<Vec<u8>> {
        let mut members = Vec::new();
        while !gz.is_empty() {
            let mut decoder = flate2::bufread::GzDecoder::new(gz);
            let mut bytes = Vec::new();
            decoder.read_to_end(&mut bytes).unwrap();
            members.push(bytes);
            gz = decoder.into_inner();
        }
        members
    }

    /// Encodes `input` on `threads` threads, checks that it decodes whole, and returns it.
    fn roundtrip_framed(input: &[u8], framing: Framing, threads: usize) -> Vec<u8> {
        let level = crate::compress::Compression::GZIP_LEVEL;
        let mut enc = ParGzEncoder::new(Vec::new(), level, framing, threads).unwrap();
        for chunk in input.chunks(77_777) {
            enc.write_all(chunk).unwrap();
        }
        let gz = enc.finish().unwrap();
        let members = members_of(&gz);
        if framing == Framing::OneMember {
            assert_eq!(members.len(), 1);
        }
        assert!(members.concat() == input, "decodes to the input");
        gz
    }

    /// [`roundtrip_framed`] as members (the .deb's framing).
    fn roundtrip(input: &[u8], threads: usize) -> Vec<u8> {
        roundtrip_framed(input, Framing::Members, threads)
    }

    #[test]
    fn output_is_valid_gzip_independent_of_threads() {
        let input: Vec<u8> = (0..(3 * BLOCK + 12_345))
            .map(|i| ((i * 7919) % 251) as u8 ^ (i >> 13) as u8)
            .collect();
        for framing in [Framing::Members, Framing::OneMember] {
            let one = roundtrip_framed(&input, framing, 1);
            let four = roundtrip_framed(&input, framing, 4);
            assert_eq!(one, four, "deterministic whatever the thread count");
            assert!(one.len() < input.len());
            roundtrip_framed(&[], framing, 2);
            roundtrip_framed(&input[..BLOCK], framing, 2);
        }
    }

    #[test]
    fn members_follow_blocks_and_runs_and_read_as_one_stream() {
        // Block 1: text, noise, text (three runs); block 2: text; then an empty final block.
        let mut input = text(SEGMENT);
        input.extend(noise(2 * SEGMENT, 9));
        input.extend(text(BLOCK - 3 * SEGMENT));
        input.extend(text(BLOCK));
        let gz = roundtrip(&input, 2);
        let sizes: Vec<usize> = members_of(&gz).iter().map(Vec::len).collect();
        assert_eq!(
            sizes,
            [SEGMENT, 2 * SEGMENT, BLOCK - 3 * SEGMENT, BLOCK, 0],
            "one member per run of each block"
        );
        let mut whole = Vec::new();
        flate2::read::MultiGzDecoder::new(&gz[..])
            .read_to_end(&mut whole)
            .unwrap();
        assert_eq!(whole, input);
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
