//! File operations that keep a repository readable while it changes: content written under a
//! temporary name, synced and renamed into place, never rewritten when unchanged; and the
//! lock that serializes concurrent `repo add` runs.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

/// Directory inside the repository for mm-pkg's own files (state, lock); not to be published.
pub const PRIVATE_DIR: &str = ".mm-pkg";

/// Writes `bytes` to `path` atomically (temporary file, fsync, rename), creating parent
/// directories; does nothing when `path` already holds exactly these bytes. Returns whether
/// it wrote.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<bool> {
    Ok(write_all_atomic(&[(path, bytes)])?[0])
}

/// Like [`write_atomic`] for several files that belong together (`Release` and its
/// signatures): every changed file is written and synced under a temporary name first, then
/// all are renamed one right after the other, so a reader can only catch them out of step
/// in the moment between two renames. Returns, per file, whether it was written.
pub fn write_all_atomic(files: &[(&Path, &[u8])]) -> Result<Vec<bool>> {
    let mut staged = Vec::new();
    let mut written = Vec::new();
    let result = (|| {
        for (path, bytes) in files {
            if fs::read(path).is_ok_and(|old| old == *bytes) {
                written.push(false);
                continue;
            }
            let dir = path.parent().context("a file path without a directory")?;
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let tmp = dir.join(format!(
                ".{}.tmp-{}",
                path.file_name().unwrap_or_default().to_string_lossy(),
                std::process::id()
            ));
            staged.push((tmp.clone(), path.to_path_buf()));
            let mut file =
                File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
            file.write_all(bytes)
                .and_then(|()| file.sync_all())
                .with_context(|| format!("writing {}", tmp.display()))?;
            written.push(true);
        }
        for (tmp, path) in &staged {
            fs::rename(tmp, path)
                .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
        }
        Ok(())
    })();
    if result.is_err() {
        for (tmp, _) in &staged {
            let _ = fs::remove_file(tmp);
        }
    }
    result.map(|()| written)
}

/// Copies `from` to `to` atomically (temporary file, fsync, rename).
pub fn copy_atomic(from: &Path, to: &Path) -> Result<()> {
    let dir = to.parent().context("a file path without a directory")?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        to.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        fs::copy(from, &tmp)
            .with_context(|| format!("copying {} to {}", from.display(), tmp.display()))?;
        File::open(&tmp)
            .and_then(|f| f.sync_all())
            .with_context(|| format!("syncing {}", tmp.display()))?;
        fs::rename(&tmp, to)
            .with_context(|| format!("renaming {} to {}", tmp.display(), to.display()))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// An exclusive lock on a repository, held until dropped.
pub struct RepoLock {
    _file: File,
}

impl RepoLock {
    /// Waits for and takes the lock of the repository at `dir`.
    pub fn acquire(dir: &Path) -> Result<Self> {
        let private = dir.join(PRIVATE_DIR);
        fs::create_dir_all(&private).with_context(|| format!("creating {}", private.display()))?;
        let path = private.join("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening the lock {}", path.display()))?;
        file.lock()
            .with_context(|| format!("locking {}", path.display()))?;
        Ok(RepoLock { _file: file })
    }
}

/// gzip at maximum compression without a name or time stamp (reproducible), as apt-ftparchive
/// and createrepo_c write their indexes.
pub fn gzip(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(bytes)?;
    Ok(gz.finish()?)
}

/// Removes the files under `root` (in directories named `marker`, or all when `marker` is
/// empty) whose name, or the hash that starts it, does not occur in `referenced` (the current
/// and the previous `Release` or `repomd.xml`).
pub fn remove_unreferenced(root: &Path, marker: &str, referenced: &str) -> Result<()> {
    let Ok(entries) = fs::read_dir(root) else {
        return Ok(());
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", root.display()))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type()?.is_dir() {
            remove_unreferenced(&path, if name == marker { "" } else { marker }, referenced)?;
            continue;
        }
        let in_scope = marker.is_empty();
        let hash = name.split('-').next().unwrap_or("");
        let hashed = hash.len() >= 64 && hash.bytes().all(|b| b.is_ascii_hexdigit());
        if in_scope && hashed && !referenced.contains(hash) {
            fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    Ok(())
}

/// Removes the temporary files (`.NAME.tmp-PID`) an interrupted run left under `dir`; called
/// with the lock held, so no live run owns them.
pub fn remove_stale_temporaries(dir: &Path) -> Result<()> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type()?.is_dir() {
            // The private directory too: a run killed while it replaced the state file
            // leaves `.state.json.tmp-PID` there.
            remove_stale_temporaries(&path)?;
        } else if name.starts_with('.') && name.contains(".tmp-") {
            fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    Ok(())
}
