//! Writing finished packages into the output directory: temporary names while writing,
//! final names only once everything succeeded, and a `SHA256SUMS` beside them.

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tempfile::NamedTempFile;

use crate::context::Format;

/// A package written to the output directory.
#[derive(Debug, Clone, Serialize)]
pub struct BuiltPackage {
    /// `deb` or `rpm`.
    pub format: Format,
    /// Final path.
    pub path: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the file, lower-case hex.
    pub sha256: String,
}

/// A package being written under a temporary name in the output directory.
pub struct PendingFile {
    file: HashingWriter<BufWriter<NamedTempFile>>,
    format: Format,
    final_path: PathBuf,
}

impl PendingFile {
    /// Starts a file in `dir` that becomes `name` on [`PendingFile::keep`]; dropped
    /// unkept, it is deleted.
    pub fn create(dir: &Path, name: &str, format: Format) -> Result<Self> {
        let temp = scratch_file(dir)?;
        Ok(PendingFile {
            file: HashingWriter::new(BufWriter::new(temp)),
            format,
            final_path: dir.join(name),
        })
    }

    /// The writer to fill.
    pub fn writer(&mut self) -> &mut dyn Write {
        &mut self.file
    }

    /// Flushes and renames to the final name.
    pub fn keep(self) -> Result<BuiltPackage> {
        let (buffered, size, sha256) = self.file.finish();
        let temp = buffered
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("writing {}", self.final_path.display()))?;
        temp.persist(&self.final_path).with_context(|| {
            format!(
                "renaming the finished package to {}",
                self.final_path.display()
            )
        })?;
        Ok(BuiltPackage {
            format: self.format,
            path: self.final_path,
            size,
            sha256,
        })
    }
}

/// A temporary file in `dir`, deleted when dropped.
pub fn scratch_file(dir: &Path) -> Result<NamedTempFile> {
    tempfile::Builder::new()
        .prefix(".mm-pkg-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))
}

/// Opens `path` (an existing scratch file) for writing and reading back, truncated.
pub fn open_scratch(path: &Path) -> Result<std::fs::File> {
    std::fs::File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .with_context(|| format!("opening scratch file {}", path.display()))
}

/// Writes `SHA256SUMS` for `packages` into `dir` (atomically, in `sha256sum` format).
pub fn write_sha256sums(dir: &Path, packages: &[BuiltPackage]) -> Result<PathBuf> {
    let path = dir.join("SHA256SUMS");
    let mut temp = scratch_file(dir)?;
    for p in packages {
        let name = p.path.file_name().unwrap_or_default().to_string_lossy();
        writeln!(temp, "{}  {name}", p.sha256)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    temp.persist(&path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Counts and hashes everything written through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// The inner writer, the byte count and the SHA-256 in hex.
    pub fn finish(self) -> (W, u64, String) {
        (self.inner, self.count, hex::encode(self.hasher.finalize()))
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
