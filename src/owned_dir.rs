//! Directories mm-pkg writes files into by name (the cache, the output directory) must be
//! under the control of the user running it. mm-pkg often runs as root: in a directory
//! another user can write to, that user's symlink named like one of mm-pkg's files leads
//! the write anywhere, and files it plants there (packages, `SHA256SUMS` lines) would be
//! taken for mm-pkg's own.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{Context, Result, bail};

/// Refuses `dir` (named `what` in messages, e.g. "cache directory") unless it is a
/// directory owned by the effective user or root, not writable by group or others, and,
/// when `dir` is a symbolic link, the link too is owned by the effective user or root.
pub fn check(dir: &Path, what: &str) -> Result<()> {
    let read = || format!("reading {what} {}", dir.display());
    let link = fs::symlink_metadata(dir).with_context(read)?;
    let meta = fs::metadata(dir).with_context(read)?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let refuse = |why: String| -> Result<()> {
        bail!(
            "{what} {} {why}: another user could plant links or files there that mm-pkg \
             would write through or take for its own; use a directory only you can write to \
             (or `chmod go-w` it)",
            dir.display()
        )
    };
    for (meta, which) in [(&link, "the link"), (&meta, "the directory")] {
        if meta.uid() != me && meta.uid() != 0 {
            return refuse(format!(
                "is owned by another user ({which} belongs to uid {})",
                meta.uid()
            ));
        }
    }
    if !meta.is_dir() {
        bail!("{what} {} is not a directory", dir.display());
    }
    if meta.mode() & 0o022 != 0 {
        return refuse(format!(
            "has mode {:04o}: other users can write to it",
            meta.mode() & 0o7777
        ));
    }
    Ok(())
}
