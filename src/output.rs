//! Writing finished packages into the output directory: temporary names while writing,
//! final names only once everything succeeded, and a `SHA256SUMS` beside them.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
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

/// Bytes per read and write when a staged payload is copied into its package file. A few
/// large calls instead of many 8 KiB ones: the kernel's buffered-write path costs per call.
const COPY_BUFFER: usize = 1 << 20;

/// A finished package as its writer leaves it: `head` (everything before the payload), the
/// first `staged_len` bytes of `staged` (the scratch file the payload was compressed into
/// while entries arrived), then `tail`.
pub struct Assembled {
    /// The bytes before the payload.
    pub head: Vec<u8>,
    /// The scratch file holding the payload from offset 0.
    pub staged: File,
    /// Bytes of the payload.
    pub staged_len: u64,
    /// The bytes after the payload (format padding).
    pub tail: Vec<u8>,
}

/// A package being written under a temporary name in the output directory.
pub struct PendingFile {
    file: NamedTempFile,
    hasher: Sha256,
    size: u64,
    format: Format,
    final_path: PathBuf,
}

impl PendingFile {
    /// Starts a file in `dir` that becomes `name` on [`PendingFile::keep`]; dropped
    /// unkept, it is deleted.
    pub fn create(dir: &Path, name: &str, format: Format) -> Result<Self> {
        let temp = scratch_file(dir)?;
        Ok(PendingFile {
            file: temp,
            hasher: Sha256::new(),
            size: 0,
            format,
            final_path: dir.join(name),
        })
    }

    /// Writes the package `parts` describe, hashing it as it goes: one pass over the staged
    /// payload, read and written in large blocks.
    pub fn write(&mut self, parts: Assembled) -> Result<()> {
        self.copy(&parts)
            .with_context(|| format!("writing {}", self.final_path.display()))
    }

    fn copy(&mut self, parts: &Assembled) -> io::Result<()> {
        self.append(&parts.head)?;
        let mut buf = vec![0u8; COPY_BUFFER.min(parts.staged_len as usize)];
        let mut offset = 0;
        while offset < parts.staged_len {
            let n = buf.len().min((parts.staged_len - offset) as usize);
            parts.staged.read_exact_at(&mut buf[..n], offset)?;
            release(&parts.staged, offset, n as u64);
            self.append(&buf[..n])?;
            offset += n as u64;
        }
        self.append(&parts.tail)
    }

    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes)?;
        self.hasher.update(bytes);
        self.size += bytes.len() as u64;
        Ok(())
    }

    /// Renames the file to its final name.
    pub fn keep(self) -> Result<BuiltPackage> {
        let temp = self.file;
        readable_by_umask(temp.as_file(), &self.final_path)?;
        temp.persist(&self.final_path).with_context(|| {
            format!(
                "renaming the finished package to {}",
                self.final_path.display()
            )
        })?;
        Ok(BuiltPackage {
            format: self.format,
            path: self.final_path,
            size: self.size,
            sha256: hex::encode(self.hasher.finalize()),
        })
    }
}

/// Frees the page cache (and disk blocks) behind `len` bytes of `file` from `offset`: bytes
/// of a staged payload already copied into the package. The package's own pages are then
/// taken from the ones just freed: memory the system has to find anew is the costly part of
/// writing a file (zeroing, and on a virtual machine often a fault into the host), and a
/// build writes every payload twice. Best effort: a file system that cannot punch holes
/// keeps the bytes until the scratch file is removed.
#[cfg(target_os = "linux")]
fn release(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (libc::off_t::try_from(offset), libc::off_t::try_from(len)) else {
        return;
    };
    // SAFETY: fallocate reads no memory of ours; the descriptor stays open (`file` is
    // borrowed) for the call.
    unsafe {
        libc::fallocate(
            file.as_raw_fd(),
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            offset,
            len,
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn release(_file: &File, _offset: u64, _len: u64) {}

/// A temporary file in `dir` (`.mm-pkg-*.tmp`), deleted when dropped or when the build is
/// interrupted (see [`crate::scratch`]).
pub fn scratch_file(dir: &Path) -> Result<NamedTempFile> {
    crate::scratch::create(dir)
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

/// Adds `packages` to `dir/SHA256SUMS` (in `sha256sum` format, sorted by name), keeping the
/// lines of packages written there before that still exist, replacing the file atomically.
/// Builds into one directory at once take turns through a lock on the file, so each one's
/// packages stay listed.
pub fn write_sha256sums(dir: &Path, packages: &[BuiltPackage]) -> Result<PathBuf> {
    let path = dir.join("SHA256SUMS");
    let _lock = lock_replaced_file(&path)?;
    let mut sums = BTreeMap::new();
    let old = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    for line in String::from_utf8_lossy(&old).lines() {
        let Some((hash, name)) = line.split_once("  ").or_else(|| line.split_once(" *")) else {
            continue;
        };
        let listed = dir.join(name);
        let plain_name = !name.is_empty() && !name.contains('/') && !name.starts_with('.');
        let hex_hash = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit());
        if plain_name && hex_hash && fs::symlink_metadata(&listed).is_ok_and(|m| m.is_file()) {
            sums.insert(name.to_string(), hash.to_string());
        }
    }
    for p in packages {
        let name = p.path.file_name().unwrap_or_default().to_string_lossy();
        sums.insert(name.into_owned(), p.sha256.clone());
    }
    let mut temp = scratch_file(dir)?;
    for (name, hash) in &sums {
        writeln!(temp, "{hash}  {name}").with_context(|| format!("writing {}", path.display()))?;
    }
    readable_by_umask(temp.as_file(), &path)?;
    temp.persist(&path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// An exclusive lock on `path`, a file that is replaced by rename: after each wait the lock
/// must still be on the file at `path` (not on one renamed away meanwhile), else it is taken
/// again. Creates an empty file when there is none.
fn lock_replaced_file(path: &Path) -> Result<File> {
    loop {
        let file = File::options()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        file.lock()
            .with_context(|| format!("locking {}", path.display()))?;
        let locked = file
            .metadata()
            .with_context(|| format!("reading {}", path.display()))?;
        match fs::metadata(path) {
            Ok(now) if now.ino() == locked.ino() && now.dev() == locked.dev() => return Ok(file),
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }
}

/// Gives `file` (a temporary file, created 0600) the mode a file created normally would get:
/// 0666 less the process's umask (0644 with umask 022). `path` names it in errors.
pub fn readable_by_umask(file: &File, path: &Path) -> Result<()> {
    file.set_permissions(fs::Permissions::from_mode(0o666 & !umask()))
        .with_context(|| format!("setting the mode of {}", path.display()))
}

/// The process's umask, read without changing it (`Umask:` in /proc/self/status, Linux 4.7
/// and later); 022 where that cannot be read.
fn umask() -> u32 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .unwrap_or(0o022)
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
