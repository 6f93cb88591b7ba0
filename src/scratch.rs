//! mm-pkg's own temporary files in the output directory (`.mm-pkg-*.tmp`): removed when the
//! build is interrupted by SIGINT or SIGTERM, and, when a build was killed outright
//! (SIGKILL, power loss), by the next build into that directory.
//!
//! Several builds may write into one directory at once. Each holds a shared `flock` on the
//! directory itself while it works, and creates its temporary files only while holding it;
//! leftover files are removed only by a build that gets the lock exclusively, that is, when no
//! other build is running there, so a running build never loses its files.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result};
use tempfile::NamedTempFile;

/// Name prefix of every temporary file mm-pkg creates in an output directory.
pub const PREFIX: &str = ".mm-pkg-";
/// Name suffix of every temporary file mm-pkg creates in an output directory.
pub const SUFFIX: &str = ".tmp";

/// Temporary files this process created; the signal handler removes the ones still there.
/// Files are created while this lock is held, so none escapes a handler that holds it.
static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// An output directory in use by this build: while it lives, no other build removes the
/// temporary files in it.
pub struct OutputDir {
    path: PathBuf,
    _lock: File,
}

impl OutputDir {
    /// Creates `path` if missing, removes temporary files that a killed build left there
    /// (only when no other build is using the directory), and marks it in use.
    pub fn open(path: &Path) -> Result<Self> {
        fs::create_dir_all(path)
            .with_context(|| format!("creating output directory {}", path.display()))?;
        crate::owned_dir::check(path, "output directory")?;
        let lock = File::open(path)
            .with_context(|| format!("opening output directory {}", path.display()))?;
        // A file system without directory locks (some network file systems) still builds;
        // only the removal of leftovers, which needs the lock, is skipped.
        let unlocked = |e: std::io::Error| {
            eprintln!(
                "mm-pkg: warning: cannot lock output directory {} ({e}); builds into it at \
                 the same time are not coordinated",
                path.display()
            );
        };
        match lock.try_lock() {
            Ok(()) => {
                remove_stale(path)?;
                // Between unlock and lock_shared another build may clean up: we have
                // created nothing yet, so it finds only stale files.
                if let Err(e) = lock.unlock().and_then(|()| lock.lock_shared()) {
                    unlocked(e);
                }
            }
            Err(fs::TryLockError::WouldBlock) => {
                if let Err(e) = lock.lock_shared() {
                    unlocked(e);
                }
            }
            Err(fs::TryLockError::Error(e)) => unlocked(e),
        }
        Ok(OutputDir {
            path: path.to_path_buf(),
            _lock: lock,
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Removes every `.mm-pkg-*.tmp` regular file directly in `dir`; the caller holds the
/// directory's lock exclusively.
fn remove_stale(dir: &Path) -> Result<()> {
    let listing =
        fs::read_dir(dir).with_context(|| format!("reading output directory {}", dir.display()))?;
    for item in listing {
        let item = item.with_context(|| format!("reading output directory {}", dir.display()))?;
        let name = item.file_name();
        let Some(name) = name.to_str() else { continue };
        if !(name.starts_with(PREFIX) && name.ends_with(SUFFIX)) {
            continue;
        }
        let is_file = item.file_type().map(|t| t.is_file()).unwrap_or(false);
        if is_file {
            let path = item.path();
            match fs::remove_file(&path) {
                Ok(()) => eprintln!(
                    "mm-pkg: removed {}, left by an interrupted build",
                    path.display()
                ),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("removing stale {}", path.display()));
                }
            }
        }
    }
    Ok(())
}

/// A temporary file in `dir` named `.mm-pkg-*.tmp`, deleted when dropped, and by the
/// handler of [`remove_on_signals`] if the process is interrupted first.
pub fn create(dir: &Path) -> Result<NamedTempFile> {
    let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    let temp = tempfile::Builder::new()
        .prefix(PREFIX)
        .suffix(SUFFIX)
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    live.retain(|p| p.exists());
    live.push(temp.path().to_path_buf());
    Ok(temp)
}

/// Installs handlers for SIGINT and SIGTERM (and SIGHUP) that remove this process's
/// temporary files, then end the process as the signal would have.
pub fn remove_on_signals() -> Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
        .context("installing the SIGINT/SIGTERM handler")?;
    std::thread::Builder::new()
        .name("mm-pkg-signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                // Held until the process ends: no thread creates another file meanwhile.
                let live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
                for path in live.iter() {
                    let _ = fs::remove_file(path);
                }
                let _ = signal_hook::low_level::emulate_default_handler(signal);
                std::process::exit(128 + signal);
            }
        })
        .context("starting the signal handler thread")?;
    Ok(())
}
