//! File operations that keep a repository readable while it changes: content written under a
//! temporary name in the private directory, synced and renamed into place in batches, never
//! rewritten when unchanged; and the lock that serializes concurrent `repo add` runs.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};

/// Directory inside the repository for mm-pkg's own files (state, lock); not to be published.
pub const PRIVATE_DIR: &str = ".mm-pkg";

/// Directory under [`PRIVATE_DIR`] where files are written before they are renamed into place.
const TMP_DIR: &str = "tmp";

/// Tells apart the temporary files of one process.
static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// Files that are published together. Each is written under a temporary name in the
/// repository's private directory (never in a published one, unless that is on another file
/// system: a rename cannot cross one); [`Batch::commit`] then syncs
/// them all, renames them into place one right after the other and syncs the directories
/// that changed. Once `commit` returns, the files are durable; a reader sees each one old or
/// new, never partly written; and syncing a whole batch at once costs about one disk flush
/// instead of one per file. Temporary files of a batch that is not committed are removed.
pub struct Batch {
    tmp: PathBuf,
    /// The device of `tmp`: a file for a directory on another one is written beside it.
    tmp_dev: u64,
    /// (temporary file, target), in the order they are renamed.
    staged: Vec<(PathBuf, PathBuf)>,
    /// Directories whose entries change: synced after the renames.
    dirs: BTreeSet<PathBuf>,
    /// Targets renamed only once every other file of the batch is durable in place.
    last: BTreeSet<PathBuf>,
}

impl Batch {
    /// A new batch for the repository at `dir`.
    pub fn new(dir: &Path) -> Result<Self> {
        let tmp = dir.join(PRIVATE_DIR).join(TMP_DIR);
        fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let tmp_dev = fs::metadata(&tmp)
            .with_context(|| format!("reading {}", tmp.display()))?
            .dev();
        Ok(Batch {
            tmp,
            tmp_dev,
            staged: Vec::new(),
            dirs: BTreeSet::new(),
            last: BTreeSet::new(),
        })
    }

    /// Stages `bytes` for `path`; does nothing when `path` already holds exactly these
    /// bytes. Returns whether it will write.
    pub fn write(&mut self, path: &Path, bytes: &[u8]) -> Result<bool> {
        self.write_linked(std::slice::from_ref(&path.to_path_buf()), bytes)
    }

    /// Stages `bytes` for each of `paths` as one file with several names (hard links; copies
    /// where the file system cannot link), so that they are written and synced once; a path
    /// that already holds exactly these bytes is left alone. Returns whether it will write.
    pub fn write_linked(&mut self, paths: &[PathBuf], bytes: &[u8]) -> Result<bool> {
        let mut written: Option<PathBuf> = None;
        for path in paths {
            if holds(path, bytes) {
                continue;
            }
            match &written {
                Some(tmp) => {
                    let tmp = tmp.clone();
                    self.link_or_write(&tmp, path, bytes)?;
                }
                None => {
                    let (mut file, tmp) = self.create(path)?;
                    file.write_all(bytes)
                        .with_context(|| format!("writing {}", tmp.display()))?;
                    written = Some(tmp);
                }
            }
        }
        Ok(written.is_some())
    }

    /// Stages `to` as another name of `existing`, a file this run wrote that holds `bytes`
    /// (in place since an earlier batch): a hard link, or a copy where the file system cannot
    /// link. Does nothing when `to` already holds these bytes; returns whether it will write.
    pub fn link(&mut self, existing: &Path, to: &Path, bytes: &[u8]) -> Result<bool> {
        if holds(to, bytes) {
            return Ok(false);
        }
        self.link_or_write(existing, to, bytes)?;
        Ok(true)
    }

    fn link_or_write(&mut self, existing: &Path, to: &Path, bytes: &[u8]) -> Result<()> {
        let tmp = self.stage(to)?;
        if fs::hard_link(existing, &tmp).is_err() {
            fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
        }
        Ok(())
    }

    /// Like [`Batch::write`], for a file that names the others (a `Release`, a
    /// `repomd.xml` and their signatures): [`Batch::commit`] renames it only after every
    /// other file of the batch is renamed and its directory synced, so that no crash leaves
    /// it in place without what it names.
    pub fn write_last(&mut self, path: &Path, bytes: &[u8]) -> Result<bool> {
        let written = self.write(path, bytes)?;
        if written {
            self.last.insert(path.to_path_buf());
        }
        Ok(written)
    }

    /// Stages a copy of `from` for `to`; returns the temporary file (to check what was
    /// copied).
    pub fn copy(&mut self, from: &Path, to: &Path) -> Result<PathBuf> {
        let tmp = self.stage(to)?;
        fs::copy(from, &tmp)
            .with_context(|| format!("copying {} to {}", from.display(), tmp.display()))?;
        Ok(tmp)
    }

    /// Stages a new, empty file for `to`, for the caller to fill; returns it and its
    /// temporary path.
    pub fn create(&mut self, to: &Path) -> Result<(File, PathBuf)> {
        let tmp = self.stage(to)?;
        let file = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        Ok((file, tmp))
    }

    /// Syncs every staged file, renames each into place and syncs the directories whose
    /// entries changed; the files staged with [`Batch::write_last`] follow, renamed and
    /// their directories synced, only then.
    pub fn commit(mut self) -> Result<()> {
        for (tmp, _) in &self.staged {
            File::open(tmp)
                .and_then(|f| f.sync_all())
                .with_context(|| format!("syncing {}", tmp.display()))?;
        }
        let staged = std::mem::take(&mut self.staged);
        let (last, first): (Vec<_>, Vec<_>) = staged
            .into_iter()
            .partition(|(_, to)| self.last.contains(to));
        let last_dirs: BTreeSet<PathBuf> = last
            .iter()
            .filter_map(|(_, to)| to.parent().map(Path::to_path_buf))
            .collect();
        self.rename_all(first, last.clone())?;
        sync_dirs(&self.dirs)?;
        if !last.is_empty() {
            self.rename_all(last, Vec::new())?;
            sync_dirs(&last_dirs)?;
        }
        Ok(())
    }

    /// Renames each of `files` into place; on a failure, the temporary files not renamed
    /// (and those of `later`) are left for drop to remove.
    fn rename_all(
        &mut self,
        files: Vec<(PathBuf, PathBuf)>,
        later: Vec<(PathBuf, PathBuf)>,
    ) -> Result<()> {
        for (i, (tmp, path)) in files.iter().enumerate() {
            if let Err(e) = fs::rename(tmp, path) {
                self.staged = files[i..].iter().cloned().chain(later).collect();
                return Err(e)
                    .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()));
            }
        }
        Ok(())
    }

    /// A temporary path for `to`, whose directory (and any missing parent) is created now.
    fn stage(&mut self, to: &Path) -> Result<PathBuf> {
        let dir = to.parent().context("a file path without a directory")?;
        // Each directory created gets an entry in its parent: that one is synced too.
        let mut missing = dir;
        while !missing.exists() {
            let Some(parent) = missing.parent() else {
                break;
            };
            self.dirs.insert(parent.to_path_buf());
            missing = parent;
        }
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        self.dirs.insert(dir.to_path_buf());
        // A rename cannot cross file systems: for a directory mounted (or linked) elsewhere,
        // the temporary file goes beside its target (and a killed run's is not swept).
        let same_fs = fs::metadata(dir).map_or(true, |m| m.dev() == self.tmp_dev);
        let tmp_dir = if same_fs { self.tmp.as_path() } else { dir };
        let tmp = tmp_dir.join(format!(
            ".{}.tmp-{}-{}",
            to.file_name().unwrap_or_default().to_string_lossy(),
            std::process::id(),
            SEQUENCE.fetch_add(1, Ordering::Relaxed)
        ));
        self.staged.push((tmp.clone(), to.to_path_buf()));
        Ok(tmp)
    }
}

/// Replaces `path` (a cache in the private directory of the repository at `dir`) with
/// `bytes` by rename, without syncing: a crash may lose it or leave it damaged, so it must
/// carry its own checksum and only ever save work.
pub fn replace_cache(dir: &Path, path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = dir.join(PRIVATE_DIR).join(TMP_DIR).join(format!(
        ".{}.tmp-{}-{}",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id(),
        SEQUENCE.fetch_add(1, Ordering::Relaxed)
    ));
    fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}

/// True when `path` holds exactly `bytes` (read back only when the size matches: most
/// changed files change size).
fn holds(path: &Path, bytes: &[u8]) -> bool {
    let same_size = fs::metadata(path).is_ok_and(|m| m.len() == bytes.len() as u64);
    same_size && fs::read(path).is_ok_and(|old| old == bytes)
}

/// Syncs each of `dirs`, so that the renames into them are durable.
fn sync_dirs(dirs: &BTreeSet<PathBuf>) -> Result<()> {
    for dir in dirs {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("syncing the directory {}", dir.display()))?;
    }
    Ok(())
}

impl Drop for Batch {
    fn drop(&mut self) {
        for (tmp, _) in &self.staged {
            let _ = fs::remove_file(tmp);
        }
    }
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

/// Removes the temporary files an interrupted run left in the repository at `dir`; called
/// with the lock held, so no live run owns them.
pub fn remove_stale_temporaries(dir: &Path) -> Result<()> {
    let tmp = dir.join(PRIVATE_DIR).join(TMP_DIR);
    let Ok(entries) = fs::read_dir(&tmp) else {
        return Ok(());
    };
    for entry in entries {
        let path = entry
            .with_context(|| format!("listing {}", tmp.display()))?
            .path();
        fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_staged_last_wait_for_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path();
        // `Packages` cannot be renamed into place (a non-empty directory holds its name).
        fs::create_dir_all(repo.join("dists/Packages/busy")).unwrap();
        let mut batch = Batch::new(repo).unwrap();
        assert!(
            batch
                .write_last(&repo.join("dists/Release"), b"names Packages")
                .unwrap()
        );
        assert!(batch.write(&repo.join("dists/Packages"), b"index").unwrap());
        assert!(batch.commit().is_err());
        assert!(
            !repo.join("dists/Release").exists(),
            "Release went into place without what it names"
        );
        let left: Vec<_> = fs::read_dir(repo.join(PRIVATE_DIR).join(TMP_DIR))
            .unwrap()
            .collect();
        assert!(left.is_empty(), "temporary files left: {left:?}");

        fs::remove_dir_all(repo.join("dists/Packages")).unwrap();
        let mut batch = Batch::new(repo).unwrap();
        batch
            .write_last(&repo.join("dists/Release"), b"names Packages")
            .unwrap();
        batch.write(&repo.join("dists/Packages"), b"index").unwrap();
        batch.commit().unwrap();
        assert_eq!(
            fs::read(repo.join("dists/Release")).unwrap(),
            b"names Packages"
        );
        assert_eq!(fs::read(repo.join("dists/Packages")).unwrap(), b"index");
    }
}
