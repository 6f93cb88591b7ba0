//! File operations that keep a repository readable while it changes: content written under a
//! temporary name in the private directory, synced and renamed into place in batches, never
//! rewritten when unchanged; and the lock that serializes concurrent `repo add` runs. Every
//! path goes through [`RepoDir`], so no link inside the repository is followed.

use std::collections::{BTreeSet, HashMap};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result, bail};
use rustix::fs::{AtFlags, Mode, OFlags};

use super::dir::{Kind, RepoDir};

/// Threads that sync a batch's files (and directories) at once.
const SYNC_THREADS: usize = 8;

/// Directory inside the repository for mm-pkg's own files (state, lock); not to be published.
pub const PRIVATE_DIR: &str = ".mm-pkg";

/// Directory under [`PRIVATE_DIR`] where files are written before they are renamed into place.
const TMP_DIR: &str = ".mm-pkg/tmp";

/// Tells apart the temporary files of one process.
static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// One file staged in a batch.
#[derive(Debug, Clone)]
struct Staged {
    /// Directory of the temporary file (relative to the repository).
    tmp_dir: String,
    /// Its name there.
    tmp_name: String,
    /// Where it goes (relative to the repository).
    target: String,
}

/// Files that are published together. Each is written under a temporary name in the
/// repository's private directory (never in a published one, unless that is on another file
/// system: a rename cannot cross one); [`Batch::commit`] then syncs them all, renames them
/// into place one right after the other and syncs the directories that changed. Once
/// `commit` returns, the files are durable; a reader sees each one old or new, never partly
/// written; and syncing a whole batch at once costs about one disk flush instead of one per
/// file. Temporary files of a batch that is not committed are removed.
pub struct Batch<'a> {
    dir: &'a RepoDir,
    /// The device of the private temporary directory.
    tmp_dev: u64,
    staged: Vec<Staged>,
    /// Directories whose entries change: synced after the renames.
    dirs: BTreeSet<String>,
    /// Targets renamed only once every other file of the batch is durable in place.
    last: BTreeSet<String>,
}

impl<'a> Batch<'a> {
    /// A new batch for the repository `dir`.
    pub fn new(dir: &'a RepoDir) -> Result<Self> {
        let tmp = dir.dir(TMP_DIR, true)?.expect("created");
        Ok(Batch {
            dir,
            tmp_dev: RepoDir::device(tmp.as_fd())?,
            staged: Vec::new(),
            dirs: BTreeSet::new(),
            last: BTreeSet::new(),
        })
    }

    /// Stages `bytes` for `path`; does nothing when `path` already holds exactly these
    /// bytes. Returns whether it will write.
    pub fn write(&mut self, path: &str, bytes: &[u8]) -> Result<bool> {
        self.write_linked(&[path.to_string()], bytes)
    }

    /// Stages `bytes` for each of `paths` as one file with several names (hard links; copies
    /// where the file system cannot link), so that they are written and synced once; a path
    /// that already holds exactly these bytes is left alone. Returns whether it will write.
    pub fn write_linked(&mut self, paths: &[String], bytes: &[u8]) -> Result<bool> {
        let mut written: Option<Staged> = None;
        for path in paths {
            if self.holds(path, bytes)? {
                continue;
            }
            match &written {
                Some(first) => {
                    let first = first.clone();
                    self.link_or_write(&first, path, bytes)?;
                }
                None => {
                    let (mut file, staged) = self.create_staged(path)?;
                    file.write_all(bytes)
                        .with_context(|| format!("writing {}", self.shown(&staged).display()))?;
                    written = Some(staged);
                }
            }
        }
        Ok(written.is_some())
    }

    /// Stages `to` as another name of `existing`, a file in place since an earlier batch that
    /// holds `bytes`: a hard link, or a copy where the file system cannot link. Does nothing
    /// when `to` already holds these bytes; returns whether it will write.
    pub fn link(&mut self, existing: &str, to: &str, bytes: &[u8]) -> Result<bool> {
        if self.holds(to, bytes)? {
            return Ok(false);
        }
        let (dir, name) = Self::split(existing);
        let existing = Staged {
            tmp_dir: dir.to_string(),
            tmp_name: name.to_string(),
            target: existing.to_string(),
        };
        self.link_or_write(&existing, to, bytes)?;
        Ok(true)
    }

    fn link_or_write(&mut self, existing: &Staged, to: &str, bytes: &[u8]) -> Result<()> {
        let staged = self.stage(to)?;
        let from = self.dir.dir(&existing.tmp_dir, false)?;
        let into = self.dir.dir(&staged.tmp_dir, false)?;
        let linked = match (from, into) {
            (Some(from), Some(into)) => rustix::fs::linkat(
                &from,
                existing.tmp_name.as_str(),
                &into,
                staged.tmp_name.as_str(),
                AtFlags::empty(),
            )
            .is_ok(),
            _ => false,
        };
        if !linked {
            let into = self.dir.dir(&staged.tmp_dir, true)?.expect("created");
            let mut file =
                RepoDir::create_in(into.as_fd(), &staged.tmp_name, &self.shown(&staged))?;
            file.write_all(bytes)
                .with_context(|| format!("writing {}", self.shown(&staged).display()))?;
        }
        Ok(())
    }

    /// Like [`Batch::write`], for a file that names the others (a `Release`, a
    /// `repomd.xml`, their signatures, the state): [`Batch::commit`] renames it only after
    /// every other file of the batch is renamed and its directory synced, so that no crash
    /// leaves it in place without what it names.
    pub fn write_last(&mut self, path: &str, bytes: &[u8]) -> Result<bool> {
        let written = self.write(path, bytes)?;
        if written {
            self.last.insert(path.to_string());
        }
        Ok(written)
    }

    /// Stages a copy of the file `from` (outside the repository) for `to`; returns the
    /// temporary file's path (to check what was copied).
    pub fn copy(&mut self, from: &Path, to: &str) -> Result<PathBuf> {
        let (mut out, staged) = self.create_staged(to)?;
        let shown = self.shown(&staged);
        let mut input = File::open(from).with_context(|| format!("opening {}", from.display()))?;
        std::io::copy(&mut input, &mut out)
            .with_context(|| format!("copying {} to {}", from.display(), shown.display()))?;
        Ok(shown)
    }

    /// Stages a new, empty file for `to`, for the caller to fill; returns it and its
    /// temporary path.
    pub fn create(&mut self, to: &str) -> Result<(File, PathBuf)> {
        let (file, staged) = self.create_staged(to)?;
        Ok((file, self.shown(&staged)))
    }

    fn create_staged(&mut self, to: &str) -> Result<(File, Staged)> {
        let staged = self.stage(to)?;
        let dir = self.dir.dir(&staged.tmp_dir, true)?.expect("created");
        let file = RepoDir::create_in(dir.as_fd(), &staged.tmp_name, &self.shown(&staged))?;
        Ok((file, staged))
    }

    /// The temporary file's path, for messages and for readers that take a path.
    fn shown(&self, staged: &Staged) -> PathBuf {
        self.dir
            .join(&format!("{}/{}", staged.tmp_dir, staged.tmp_name))
    }

    /// True when `path` already holds exactly `bytes` (read back only when the size matches:
    /// most changed files change size). A link there is refused.
    fn holds(&self, path: &str, bytes: &[u8]) -> Result<bool> {
        // A directory in the way makes the rename fail, with its own message.
        if self.dir.kind(path)? == Some(Kind::Dir)
            || self.dir.file_size(path)? != Some(bytes.len() as u64)
        {
            return Ok(false);
        }
        Ok(self.dir.read(path)?.is_some_and(|old| old == bytes))
    }

    /// (directory, name) of a relative path.
    fn split(path: &str) -> (&str, &str) {
        path.rsplit_once('/').unwrap_or(("", path))
    }

    /// Syncs every staged file, renames each into place and syncs the directories whose
    /// entries changed; the files staged with [`Batch::write_last`] follow, renamed and
    /// their directories synced, only then. Returns the paths written, in the order they
    /// went into place.
    pub fn commit(mut self) -> Result<Vec<String>> {
        let mut dirs: HashMap<String, Arc<OwnedFd>> = HashMap::new();
        let mut files = Vec::with_capacity(self.staged.len());
        for staged in &self.staged {
            let fd = self.open_dir(&mut dirs, &staged.tmp_dir)?;
            let file = rustix::fs::openat(
                fd,
                staged.tmp_name.as_str(),
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .with_context(|| format!("opening {}", self.shown(staged).display()))?;
            files.push((File::from(file), staged));
        }
        // Synced together, so that the file system can make them durable in one commit.
        super::parallel::map_on(SYNC_THREADS, &files, |(file, staged)| {
            file.sync_all()
                .with_context(|| format!("syncing {}", self.shown(staged).display()))
        })?;
        drop(files);
        let staged = std::mem::take(&mut self.staged);
        let (last, first): (Vec<_>, Vec<_>) = staged
            .into_iter()
            .partition(|s| self.last.contains(&s.target));
        let last_dirs: BTreeSet<String> = last
            .iter()
            .map(|s| Self::split(&s.target).0.to_string())
            .collect();
        let mut done: Vec<String> = first.iter().map(|s| s.target.clone()).collect();
        self.rename_all(&mut dirs, first, last.clone())?;
        let changed = std::mem::take(&mut self.dirs);
        self.sync_dirs(&mut dirs, &changed)?;
        if !last.is_empty() {
            done.extend(last.iter().map(|s| s.target.clone()));
            self.rename_all(&mut dirs, last, Vec::new())?;
            self.sync_dirs(&mut dirs, &last_dirs)?;
        }
        Ok(done)
    }

    fn open_dir<'d>(
        &self,
        dirs: &'d mut HashMap<String, Arc<OwnedFd>>,
        rel: &str,
    ) -> Result<&'d Arc<OwnedFd>> {
        if !dirs.contains_key(rel) {
            let fd = self
                .dir
                .dir(rel, true)?
                .context("a directory of the batch is gone")?;
            dirs.insert(rel.to_string(), fd);
        }
        Ok(&dirs[rel])
    }

    /// Renames each of `files` into place; on a failure, the temporary files not renamed
    /// (and those of `later`) are left for drop to remove.
    fn rename_all(
        &mut self,
        dirs: &mut HashMap<String, Arc<OwnedFd>>,
        files: Vec<Staged>,
        later: Vec<Staged>,
    ) -> Result<()> {
        for (i, staged) in files.iter().enumerate() {
            let (target_dir, target_name) = Self::split(&staged.target);
            let result = (|| -> Result<()> {
                let from =
                    rustix::io::fcntl_dupfd_cloexec(self.open_dir(dirs, &staged.tmp_dir)?, 0)?;
                let to = self.open_dir(dirs, target_dir)?;
                rustix::fs::renameat(&from, staged.tmp_name.as_str(), to, target_name)?;
                Ok(())
            })();
            if let Err(e) = result {
                self.staged = files[i..].iter().cloned().chain(later).collect();
                return Err(e).with_context(|| {
                    format!(
                        "renaming {} to {}",
                        self.shown(staged).display(),
                        self.dir.join(&staged.target).display()
                    )
                });
            }
        }
        Ok(())
    }

    /// Syncs each of `changed`, so that the renames into them are durable.
    fn sync_dirs(
        &self,
        dirs: &mut HashMap<String, Arc<OwnedFd>>,
        changed: &BTreeSet<String>,
    ) -> Result<()> {
        let mut fds = Vec::with_capacity(changed.len());
        for rel in changed {
            fds.push((self.open_dir(dirs, rel)?.clone(), rel));
        }
        super::parallel::map_on(SYNC_THREADS, &fds, |(fd, rel)| {
            rustix::fs::fsync(fd)
                .with_context(|| format!("syncing the directory {}", self.dir.join(rel).display()))
        })?;
        Ok(())
    }

    /// A temporary file for `to`, whose directory (and any missing parent) is created now.
    fn stage(&mut self, to: &str) -> Result<Staged> {
        let (dir, name) = Self::split(to);
        // Each directory created gets an entry in its parent: that one is synced too.
        let mut missing = dir;
        while !missing.is_empty() && self.dir.dir(missing, false)?.is_none() {
            let parent = Self::split(missing).0;
            self.dirs.insert(parent.to_string());
            missing = parent;
        }
        let fd = self.dir.dir(dir, true)?.expect("created");
        self.dirs.insert(dir.to_string());
        // A rename cannot cross file systems: for a directory mounted elsewhere, the
        // temporary file goes beside its target (and a killed run's is not swept).
        let same_fs = RepoDir::device(fd.as_fd())? == self.tmp_dev;
        let tmp_dir = if same_fs { TMP_DIR } else { dir };
        let staged = Staged {
            tmp_dir: tmp_dir.to_string(),
            tmp_name: format!(
                ".{name}.tmp-{}-{}",
                std::process::id(),
                SEQUENCE.fetch_add(1, Ordering::Relaxed)
            ),
            target: to.to_string(),
        };
        self.staged.push(staged.clone());
        Ok(staged)
    }
}

impl Drop for Batch<'_> {
    fn drop(&mut self) {
        for staged in &self.staged {
            let _ = self
                .dir
                .remove_file(&format!("{}/{}", staged.tmp_dir, staged.tmp_name));
        }
    }
}

/// An exclusive lock on a repository, held until dropped.
pub struct RepoLock {
    _file: File,
}

impl RepoLock {
    /// Waits for and takes the lock of the repository `dir`.
    pub fn acquire(dir: &RepoDir) -> Result<Self> {
        let rel = format!("{PRIVATE_DIR}/lock");
        let (private, name) = dir.parent(&rel, true)?.expect("created");
        let path = dir.join(&rel);
        let fd = match rustix::fs::openat(
            &private,
            name,
            OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        ) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::LOOP) => bail!(
                "{} is a symbolic link: mm-pkg follows no link inside a repository. Remove it \
                 and check who can write to the repository.",
                path.display()
            ),
            Err(e) => {
                return Err(e).with_context(|| format!("opening the lock {}", path.display()));
            }
        };
        let file = File::from(fd);
        super::dir::check_owned(&file, &path)?;
        file.lock()
            .with_context(|| format!("locking {}", path.display()))?;
        Ok(RepoLock { _file: file })
    }
}

/// Removes the files under `root` (in directories named `marker`, or all when `marker` is
/// empty) whose name, or the hash that starts it, does not occur in `referenced` (the current
/// and the previous `Release` or `repomd.xml`); returns what it removed.
pub fn remove_unreferenced(
    dir: &RepoDir,
    root: &str,
    marker: &str,
    referenced: &str,
) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for entry in dir.list(root)? {
        let path = format!("{root}/{}", entry.name);
        match entry.kind {
            Kind::Dir => {
                let marker = if entry.name == marker { "" } else { marker };
                removed.extend(remove_unreferenced(dir, &path, marker, referenced)?);
            }
            Kind::Other => bail!(
                "{} is a symbolic link (or not a regular file): mm-pkg follows no link inside a \
                 repository. Remove it and check who can write to the repository.",
                dir.join(&path).display()
            ),
            Kind::File => {
                let hash = entry.name.split('-').next().unwrap_or("");
                let hashed = hash.len() >= 64 && hash.bytes().all(|b| b.is_ascii_hexdigit());
                if marker.is_empty() && hashed && !referenced.contains(hash) {
                    dir.remove_file(&path)?;
                    removed.push(path);
                }
            }
        }
    }
    Ok(removed)
}

/// Removes the temporary files an interrupted run left in the repository `dir`; called
/// with the lock held, so no live run owns them.
pub fn remove_stale_temporaries(dir: &RepoDir) -> Result<()> {
    for entry in dir.list(TMP_DIR)? {
        dir.remove_file(&format!("{TMP_DIR}/{}", entry.name))?;
    }
    Ok(())
}

/// Writes `bytes` to the file `path` outside any repository (a change list the operator
/// asked for), replacing what was there: written to a new file beside it and renamed over
/// it, so that a link planted at `path` is replaced, never written through.
pub fn write_outside(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .with_context(|| format!("{} names no file", path.display()))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let written = (|| -> Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        file.write_all(bytes)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path)
            .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn files_staged_last_wait_for_the_others() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path();
        let dir = RepoDir::open(repo, false).unwrap().unwrap();
        // `Packages` cannot be renamed into place (a non-empty directory holds its name).
        fs::create_dir_all(repo.join("dists/Packages/busy")).unwrap();
        let mut batch = Batch::new(&dir).unwrap();
        assert!(
            batch
                .write_last("dists/Release", b"names Packages")
                .unwrap()
        );
        assert!(batch.write("dists/Packages", b"index").unwrap());
        assert!(batch.commit().is_err());
        assert!(
            !repo.join("dists/Release").exists(),
            "Release went into place without what it names"
        );
        let left: Vec<_> = fs::read_dir(repo.join(TMP_DIR)).unwrap().collect();
        assert!(left.is_empty(), "temporary files left: {left:?}");

        fs::remove_dir_all(repo.join("dists/Packages")).unwrap();
        let mut batch = Batch::new(&dir).unwrap();
        batch
            .write_last("dists/Release", b"names Packages")
            .unwrap();
        batch.write("dists/Packages", b"index").unwrap();
        let done = batch.commit().unwrap();
        assert_eq!(done, ["dists/Packages", "dists/Release"]);
        assert_eq!(
            fs::read(repo.join("dists/Release")).unwrap(),
            b"names Packages"
        );
        assert_eq!(fs::read(repo.join("dists/Packages")).unwrap(), b"index");
    }

    #[test]
    fn a_planted_link_is_not_written_through() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let repo = tmp.path();
        fs::create_dir_all(repo.join("dists")).unwrap();
        std::os::unix::fs::symlink(outside.path(), repo.join("dists/main")).unwrap();
        let dir = RepoDir::open(repo, false).unwrap().unwrap();
        let mut batch = Batch::new(&dir).unwrap();
        let err = batch.write("dists/main/Packages", b"x").unwrap_err();
        assert!(format!("{err:#}").contains("symbolic link"), "{err:#}");
        drop(batch);
        assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
    }
}
