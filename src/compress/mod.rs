//! Compression codecs shared by the package writers.

use std::fmt;
use std::io::{self, Write};
use std::str::FromStr;

use anyhow::{Result, bail};

pub mod blocks;
pub mod gzip;
pub mod xz;
pub mod xz_format;

pub use gzip::Framing;
use gzip::ParGzEncoder;
use xz::ParXzEncoder;

/// A payload compression codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// gzip (libdeflate level 5, see [`Compression::GZIP_LEVEL`]): every dpkg and rpm reads it.
    Gzip,
    /// xz (level 6).
    Xz,
    /// zstd (level 3): dpkg >= 1.21.18 (Debian 12) and rpm >= 4.14 (EL8).
    Zstd,
    /// No compression.
    None,
}

impl Compression {
    /// Gzip compression level (libdeflate's scale, 1-12). libdeflate's level 5 deflates about
    /// a fifth faster than its level 6, for output 0.6% (minified JavaScript) to 1.3% larger;
    /// the benchmark release's `data.tar.gz` is 0.04% larger than at level 6 and 1.4% smaller
    /// than `gzip -6` (see docs/performance.md).
    pub const GZIP_LEVEL: u32 = 5;
    /// Xz preset.
    pub const XZ_LEVEL: u32 = 6;
    /// Zstd level.
    pub const ZSTD_LEVEL: i32 = 3;
    /// Uncompressed bytes per zstd job.
    pub const ZSTD_JOB: u32 = 2 << 20;

    /// File name suffix used by dpkg for this codec (`.gz`, `.xz`, `.zst`, empty).
    pub fn deb_suffix(self) -> &'static str {
        match self {
            Compression::Gzip => ".gz",
            Compression::Xz => ".xz",
            Compression::Zstd => ".zst",
            Compression::None => "",
        }
    }

    /// The name RPM's `PAYLOADCOMPRESSOR` tag uses.
    pub fn rpm_name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
            Compression::None => "identity",
        }
    }

    /// The level used, as RPM's `PAYLOADFLAGS` records it.
    pub fn level(self) -> i32 {
        match self {
            Compression::Gzip => Self::GZIP_LEVEL as i32,
            Compression::Xz => Self::XZ_LEVEL as i32,
            Compression::Zstd => Self::ZSTD_LEVEL,
            Compression::None => 0,
        }
    }

    /// Wraps `inner` in an encoder for this codec that compresses on every core, gzip framed
    /// as `framing` says. The output does not depend on the number of cores.
    pub fn encoder<W: Write>(self, inner: W, framing: Framing) -> Result<Encoder<W>> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        Ok(match self {
            Compression::Gzip => Encoder::Gzip(ParGzEncoder::new(
                inner,
                Self::GZIP_LEVEL,
                framing,
                threads,
            )?),
            Compression::Xz => Encoder::Xz(ParXzEncoder::new(inner, Self::XZ_LEVEL, threads)?),
            Compression::Zstd => {
                let mut encoder = zstd::Encoder::new(inner, Self::ZSTD_LEVEL)?;
                encoder.multithread(threads as u32)?;
                // Smaller jobs than zstd's default (4 x window) keep memory low; the output does
                // not depend on the number of threads.
                encoder.set_parameter(zstd::stream::raw::CParameter::JobSize(Self::ZSTD_JOB))?;
                Encoder::Zstd(encoder)
            }
            Compression::None => Encoder::None(inner),
        })
    }
}

impl FromStr for Compression {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "gzip" | "gz" => Compression::Gzip,
            "xz" => Compression::Xz,
            "zstd" | "zst" => Compression::Zstd,
            "none" => Compression::None,
            _ => bail!("unknown compression `{s}`: use gzip, xz, zstd or none"),
        })
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::Gzip => "gzip",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
            Compression::None => "none",
        })
    }
}

/// A compressing writer; call [`Encoder::finish`] to flush the trailer.
pub enum Encoder<W: Write> {
    /// gzip.
    Gzip(ParGzEncoder<W>),
    /// xz.
    Xz(ParXzEncoder<W>),
    /// zstd.
    Zstd(zstd::Encoder<'static, W>),
    /// Pass-through.
    None(W),
}

impl<W: Write> Encoder<W> {
    /// Writes the codec's trailer and returns the inner writer.
    pub fn finish(self) -> io::Result<W> {
        match self {
            Encoder::Gzip(e) => e.finish(),
            Encoder::Xz(e) => e.finish(),
            Encoder::Zstd(e) => e.finish(),
            Encoder::None(w) => Ok(w),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Gzip(e) => e.write(buf),
            Encoder::Xz(e) => e.write(buf),
            Encoder::Zstd(e) => e.write(buf),
            Encoder::None(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Gzip(e) => e.flush(),
            Encoder::Xz(e) => e.flush(),
            Encoder::Zstd(e) => e.flush(),
            Encoder::None(w) => w.flush(),
        }
    }
}
