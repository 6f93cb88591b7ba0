//! The repository directory, walked without following links: the one place that opens,
//! lists, renames and removes anything inside `DIR`.
//!
//! Everything read back from `DIR` is untrusted input. Each path inside it is opened one
//! component at a time from a descriptor of `DIR` (`openat` with `O_NOFOLLOW`), so a symbolic
//! link planted anywhere inside (under `.mm-pkg/`, in the pool, in `dists/` or `repodata/`) is
//! refused with a message, never followed. `DIR` and every directory inside it that a run
//! walks through must belong to the user running mm-pkg (or root) and be writable by no one
//! else, as the download cache must ([`crate::owned_dir`]); the private files under
//! `.mm-pkg/` too. Paths are relative, `/`-separated, made of plain components.

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{Context, Result, bail};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

/// Mode of the directories mm-pkg creates inside a repository.
const DIR_MODE: u32 = 0o755;
/// Mode of the files mm-pkg writes into a repository (published or private).
pub const FILE_MODE: u32 = 0o644;

/// A repository directory, opened once and checked.
pub struct RepoDir {
    path: PathBuf,
    fd: OwnedFd,
    /// Directories inside it opened (and checked) so far, by path: a run opens each once.
    opened: Mutex<HashMap<String, Arc<OwnedFd>>>,
}

/// What a directory entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// Anything else: a symbolic link, a device, a FIFO, a socket.
    Other,
}

/// One entry of a directory listing.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Its name.
    pub name: String,
    /// What it is (a link is [`Kind::Other`], whatever it points to).
    pub kind: Kind,
}

fn me() -> u32 {
    static ME: OnceLock<u32> = OnceLock::new();
    // SAFETY: geteuid has no preconditions and cannot fail.
    *ME.get_or_init(|| unsafe { libc::geteuid() })
}

/// Refuses `stat` (of `path`, a directory or a private file) unless it belongs to the
/// effective user or root and no one else may write it.
fn check_owner(stat: &Stat, path: &Path, what: &str) -> Result<()> {
    let why = if stat.st_uid != me() && stat.st_uid != 0 {
        format!("belongs to another user (uid {})", stat.st_uid)
    } else if stat.st_mode & 0o022 != 0 {
        format!(
            "has mode {:04o}: other users can write to it",
            stat.st_mode & 0o7777
        )
    } else {
        return Ok(());
    };
    bail!(
        "{what} {} {why}: another user could plant links or files there that mm-pkg would \
         write through, or take for the repository's own; make it yours and writable only by \
         you (`chown`, `chmod go-w`). Nothing was changed.",
        path.display()
    )
}

/// Refuses the open private file `file` (at `path`) unless it belongs to the effective user
/// or root and no one else may write it.
pub fn check_owned(file: &File, path: &Path) -> Result<()> {
    let stat = rustix::fs::fstat(file).with_context(|| format!("reading {}", path.display()))?;
    check_owner(&stat, path, "file")
}

/// The message for a symbolic link (or other non-regular entry) found where mm-pkg expects a
/// file or directory of its own.
fn not_followed(path: &Path) -> anyhow::Error {
    anyhow::anyhow!(
        "{} is a symbolic link (or not a regular file or directory): mm-pkg follows no link \
         inside a repository, someone may have planted it to make mm-pkg read or write \
         elsewhere. Remove it, check who can write to the repository, and run again.",
        path.display()
    )
}

impl RepoDir {
    /// Opens the repository directory `path` (created, with its parents, when `create`);
    /// `None` when it does not exist and `create` is false. `path` itself may be a link
    /// (the operator's own choice) if the link too is the user's or root's; it must be a
    /// directory the user (or root) owns that no one else may write.
    pub fn open(path: &Path, create: bool) -> Result<Option<Self>> {
        if create && !path.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(DIR_MODE)
                .create(path)
                .with_context(|| format!("creating {}", path.display()))?;
        }
        let fd = match rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::NOENT) if !create => return Ok(None),
            Err(Errno::NOTDIR) => bail!("{} is not a directory", path.display()),
            Err(e) => {
                return Err(e).with_context(|| format!("opening {}", path.display()));
            }
        };
        let link = std::fs::symlink_metadata(path)
            .with_context(|| format!("reading {}", path.display()))?;
        if link.file_type().is_symlink() && link.uid() != me() && link.uid() != 0 {
            bail!(
                "repository directory {} is a link that belongs to another user (uid {}): \
                 name the directory itself. Nothing was changed.",
                path.display(),
                link.uid()
            );
        }
        let stat = rustix::fs::fstat(&fd).with_context(|| format!("reading {}", path.display()))?;
        check_owner(&stat, path, "repository directory")?;
        Ok(Some(RepoDir {
            path: path.to_path_buf(),
            fd,
            opened: Mutex::new(HashMap::new()),
        }))
    }

    /// The directory's path, as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `rel` as a path to show (or to hand to a reader that takes paths).
    pub fn join(&self, rel: &str) -> PathBuf {
        self.path.join(rel)
    }

    /// The components of `rel`, refused unless plain.
    fn components(rel: &str) -> Result<Vec<&str>> {
        let parts: Vec<&str> = rel.split('/').filter(|p| !p.is_empty()).collect();
        let odd = rel.starts_with('/') || rel.contains('\0');
        if odd || parts.is_empty() || parts.iter().any(|p| *p == "." || *p == "..") {
            bail!("`{rel}` is not a plain path inside the repository");
        }
        Ok(parts)
    }

    /// The directory `rel` inside this one (`""` is this one); created with its parents when
    /// `create`, else `None` when missing. Each directory on the way is checked (once a run).
    pub fn dir(&self, rel: &str, create: bool) -> Result<Option<Arc<OwnedFd>>> {
        if rel.is_empty() {
            let fd = rustix::io::fcntl_dupfd_cloexec(&self.fd, 0)
                .with_context(|| format!("opening {}", self.path.display()))?;
            return Ok(Some(Arc::new(fd)));
        }
        let parts = Self::components(rel)?;
        let opened = |n: usize| {
            let known = self.opened.lock().expect("directory cache");
            known.get(&parts[..n].join("/")).cloned()
        };
        // From the deepest directory on the way opened before.
        let mut depth = parts.len();
        let mut fd = loop {
            if depth == 0 {
                let own = rustix::io::fcntl_dupfd_cloexec(&self.fd, 0)
                    .with_context(|| format!("opening {}", self.path.display()))?;
                break Arc::new(own);
            }
            if let Some(fd) = opened(depth) {
                break fd;
            }
            depth -= 1;
        };
        for n in depth + 1..=parts.len() {
            let so_far = parts[..n].join("/");
            match self.child_dir(fd.as_fd(), parts[n - 1], &so_far, create)? {
                Some(next) => {
                    fd = Arc::new(next);
                    let mut known = self.opened.lock().expect("directory cache");
                    known.insert(so_far, Arc::clone(&fd));
                }
                None => return Ok(None),
            }
        }
        Ok(Some(fd))
    }

    /// Forgets the directories at and under `rel` (a run that removes them).
    pub fn forget(&self, rel: &str) {
        let mut known = self.opened.lock().expect("directory cache");
        known.retain(|path, _| path != rel && !path.starts_with(&format!("{rel}/")));
    }

    fn child_dir(
        &self,
        parent: BorrowedFd,
        name: &str,
        rel: &str,
        create: bool,
    ) -> Result<Option<OwnedFd>> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let path = self.join(rel);
        let fd = match rustix::fs::openat(parent, name, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) if create => {
                match rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(DIR_MODE)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => {
                        return Err(e).with_context(|| format!("creating {}", path.display()));
                    }
                }
                rustix::fs::openat(parent, name, flags, Mode::empty())
                    .map_err(|e| self.open_error(parent, name, &path, e))?
            }
            Err(Errno::NOENT) => return Ok(None),
            Err(e) => return Err(self.open_error(parent, name, &path, e)),
        };
        let stat = rustix::fs::fstat(&fd).with_context(|| format!("reading {}", path.display()))?;
        check_owner(&stat, &path, "directory")?;
        Ok(Some(fd))
    }

    /// The error for `name` in `parent` that could not be opened: a link (or other special
    /// file) is said so.
    fn open_error(&self, parent: BorrowedFd, name: &str, path: &Path, e: Errno) -> anyhow::Error {
        if matches!(e, Errno::LOOP | Errno::NOTDIR | Errno::NXIO) {
            let kind = rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)
                .map(|s| FileType::from_raw_mode(s.st_mode));
            match kind {
                Ok(FileType::Directory) | Ok(FileType::RegularFile) => {}
                _ => return not_followed(path),
            }
            if e == Errno::NOTDIR {
                return anyhow::anyhow!("{} is not a directory", path.display());
            }
        }
        anyhow::Error::new(e).context(format!("opening {}", path.display()))
    }

    /// The directory holding `rel` and `rel`'s last component; `None` when the directory is
    /// missing and `create` is false.
    pub fn parent<'a>(
        &self,
        rel: &'a str,
        create: bool,
    ) -> Result<Option<(Arc<OwnedFd>, &'a str)>> {
        let parts = Self::components(rel)?;
        let name = parts[parts.len() - 1];
        let dir = &rel[..rel.len() - name.len()].trim_end_matches('/');
        Ok(self.dir(dir, create)?.map(|fd| (fd, name)))
    }

    /// The regular file `rel`, opened for reading, and its status; `None` when it does not
    /// exist. A link or other special file is refused; so is a file another user owns or
    /// others may write, when `owned`.
    fn open_stat(&self, rel: &str, owned: bool) -> Result<Option<(File, Stat)>> {
        let Some((dir, name)) = self.parent(rel, false)? else {
            return Ok(None);
        };
        let path = self.join(rel);
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let fd = match rustix::fs::openat(&dir, name, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(e) => return Err(self.open_error(dir.as_fd(), name, &path, e)),
        };
        let stat = rustix::fs::fstat(&fd).with_context(|| format!("reading {}", path.display()))?;
        if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
            return Err(not_followed(&path));
        }
        if owned {
            check_owner(&stat, &path, "file")?;
        }
        Ok(Some((File::from(fd), stat)))
    }

    /// The regular file `rel`, opened for reading; `None` when it does not exist. A link or
    /// other special file is refused.
    pub fn open_file(&self, rel: &str) -> Result<Option<File>> {
        Ok(self.open_stat(rel, false)?.map(|(file, _)| file))
    }

    /// Like [`RepoDir::open_file`], for a file whose bytes the repository vouches for (a pool
    /// file): it must also belong to the user (or root) and be writable by no one else, or
    /// someone else could change a published package under the repository's signature.
    pub fn open_owned_file(&self, rel: &str) -> Result<Option<File>> {
        Ok(self.open_stat(rel, true)?.map(|(file, _)| file))
    }

    /// The bytes of the regular file `rel` (owned as for [`RepoDir::open_owned_file`] when
    /// `owned`); `None` when it does not exist. Sized from its status and read through a
    /// plain reader: no further stat or seek per file (a run reads one record per package).
    fn read_bytes(&self, rel: &str, owned: bool) -> Result<Option<Vec<u8>>> {
        let Some((file, stat)) = self.open_stat(rel, owned)? else {
            return Ok(None);
        };
        let size = usize::try_from(stat.st_size).unwrap_or(0);
        let mut bytes = Vec::with_capacity(size + 1);
        std::io::Read::read_to_end(&mut std::io::Read::take(&file, u64::MAX), &mut bytes)
            .with_context(|| format!("reading {}", self.join(rel).display()))?;
        Ok(Some(bytes))
    }

    /// The bytes of the regular file `rel`; `None` when it does not exist.
    pub fn read(&self, rel: &str) -> Result<Option<Vec<u8>>> {
        self.read_bytes(rel, false)
    }

    /// Like [`RepoDir::read`], for a private file (under `.mm-pkg/`): it must also belong to
    /// the user (or root) and be writable by no one else.
    pub fn read_private(&self, rel: &str) -> Result<Option<Vec<u8>>> {
        self.read_bytes(rel, true)
    }

    /// Size of the regular file `rel`, without opening it; `None` when it does not exist.
    pub fn file_size(&self, rel: &str) -> Result<Option<u64>> {
        self.stat_size(rel, false)
    }

    /// Like [`RepoDir::file_size`], for a file whose bytes the repository vouches for (a pool
    /// file): it must also belong to the user (or root) and be writable by no one else.
    pub fn owned_file_size(&self, rel: &str) -> Result<Option<u64>> {
        self.stat_size(rel, true)
    }

    /// Size of the regular file `rel` from its status (owned as for
    /// [`RepoDir::open_owned_file`] when `owned`); a link or other special file is refused.
    fn stat_size(&self, rel: &str, owned: bool) -> Result<Option<u64>> {
        let Some((dir, name)) = self.parent(rel, false)? else {
            return Ok(None);
        };
        match rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) if FileType::from_raw_mode(stat.st_mode) == FileType::RegularFile => {
                if owned {
                    check_owner(&stat, &self.join(rel), "file")?;
                }
                Ok(Some(stat.st_size as u64))
            }
            Ok(_) => Err(not_followed(&self.join(rel))),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", self.join(rel).display())),
        }
    }

    /// True when `rel` exists (as anything: a link counts).
    pub fn exists(&self, rel: &str) -> Result<bool> {
        Ok(self.kind(rel)?.is_some())
    }

    /// What `rel` is (a link is [`Kind::Other`]); `None` when it does not exist.
    pub fn kind(&self, rel: &str) -> Result<Option<Kind>> {
        let Some((dir, name)) = self.parent(rel, false)? else {
            return Ok(None);
        };
        match rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => Ok(Some(match FileType::from_raw_mode(stat.st_mode) {
                FileType::RegularFile => Kind::File,
                FileType::Directory => Kind::Dir,
                _ => Kind::Other,
            })),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", self.join(rel).display())),
        }
    }

    /// The entries of the directory `rel` (without `.` and `..`), sorted by name; empty when
    /// it does not exist.
    pub fn list(&self, rel: &str) -> Result<Vec<Entry>> {
        let Some(fd) = self.dir(rel, false)? else {
            return Ok(Vec::new());
        };
        let path = self.join(rel);
        let listing = rustix::fs::Dir::read_from(&fd)
            .with_context(|| format!("listing {}", path.display()))?;
        let mut out = Vec::new();
        for entry in listing {
            let entry = entry.with_context(|| format!("listing {}", path.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == "." || name == ".." {
                continue;
            }
            let mut kind = entry.file_type();
            if kind == FileType::Unknown {
                kind = rustix::fs::statat(&fd, entry.file_name(), AtFlags::SYMLINK_NOFOLLOW)
                    .map(|s| FileType::from_raw_mode(s.st_mode))
                    .with_context(|| format!("reading {}/{name}", path.display()))?;
            }
            let kind = match kind {
                FileType::RegularFile => Kind::File,
                FileType::Directory => Kind::Dir,
                _ => Kind::Other,
            };
            out.push(Entry { name, kind });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Removes the file (or link) `rel`; returns whether it was there.
    pub fn remove_file(&self, rel: &str) -> Result<bool> {
        let Some((dir, name)) = self.parent(rel, false)? else {
            return Ok(false);
        };
        match rustix::fs::unlinkat(&dir, name, AtFlags::empty()) {
            Ok(()) => Ok(true),
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(e).with_context(|| format!("removing {}", self.join(rel).display())),
        }
    }

    /// Creates the new file `name` (mode [`FILE_MODE`]) in the directory `dir`, refusing to
    /// open anything already there.
    pub fn create_in(dir: BorrowedFd, name: &str, shown: &Path) -> Result<File> {
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW;
        let fd = rustix::fs::openat(
            dir,
            name,
            flags | OFlags::CLOEXEC,
            Mode::from_raw_mode(FILE_MODE),
        )
        .with_context(|| format!("creating {}", shown.display()))?;
        Ok(File::from(fd))
    }

    /// The device the directory `fd` is on.
    pub fn device(fd: BorrowedFd) -> Result<u64> {
        Ok(rustix::fs::fstat(fd).context("reading a directory")?.st_dev)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn links_inside_the_repository_are_refused_not_followed() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "outside").unwrap();
        let repo = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(repo.path().join("apt")).unwrap();
        std::os::unix::fs::symlink(outside.path(), repo.path().join("apt/pool")).unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("secret"),
            repo.path().join("apt/Release"),
        )
        .unwrap();
        let dir = RepoDir::open(repo.path(), false).unwrap().unwrap();
        for rel in ["apt/pool/secret", "apt/Release"] {
            let err = dir.read(rel).unwrap_err().to_string();
            assert!(err.contains("symbolic link"), "{rel}: {err}");
        }
        assert!(dir.dir("apt/pool/main", true).is_err());
        assert!(
            !outside.path().join("main").exists(),
            "created through the link"
        );
        assert!(dir.file_size("apt/Release").is_err());
        let kinds: Vec<Kind> = dir.list("apt").unwrap().iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [Kind::Other, Kind::Other]);
        // Removing the link removes the link, not what it names.
        assert!(dir.remove_file("apt/Release").unwrap());
        assert!(outside.path().join("secret").exists());
        assert!(dir.read("../x").is_err());
        assert!(dir.read("/etc/passwd").is_err());
    }

    #[test]
    fn a_directory_others_may_write_is_refused() {
        let repo = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(repo.path().join(".mm-pkg")).unwrap();
        std::fs::set_permissions(
            repo.path().join(".mm-pkg"),
            std::fs::Permissions::from_mode(0o777),
        )
        .unwrap();
        let dir = RepoDir::open(repo.path(), false).unwrap().unwrap();
        let err = dir.read(".mm-pkg/state.json").unwrap_err().to_string();
        assert!(err.contains("other users can write"), "{err}");
        std::fs::set_permissions(repo.path(), std::fs::Permissions::from_mode(0o757)).unwrap();
        let err = RepoDir::open(repo.path(), false).err().unwrap().to_string();
        assert!(err.contains("mode 0757"), "{err}");
    }
}
