//! Reads a release tarball as one stream of checked entries.
//!
//! The tarball is decompressed exactly once and never extracted: each entry is handed to a
//! visitor together with a reader for its bytes. Everything a hostile or broken archive could
//! do to the packages is refused here, with the offending entry named.

use std::io::{self, BufRead, BufReader, Read};

use anyhow::{Context, Result, anyhow, bail};
use flate2::read::MultiGzDecoder;

/// The directory every upstream release tarball keeps its files under.
pub const TOP_DIR: &str = "mattermost";

/// What kind of filesystem object an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A directory.
    Dir,
    /// A regular file of `size` bytes.
    File {
        /// Size in bytes.
        size: u64,
    },
    /// A symbolic link to a relative `target` that stays inside the release.
    Symlink {
        /// Link target, relative to the link's directory.
        target: String,
    },
}

/// One checked entry of a release, its path relative to the release's top directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseEntry {
    /// Path below `mattermost/`, `/`-separated, no trailing slash; empty for the top directory.
    pub path: String,
    /// File type.
    pub kind: EntryKind,
    /// Permission bits from the archive (`0o7777` mask).
    pub mode: u32,
}

impl ReleaseEntry {
    /// True when any execute bit is set.
    pub fn is_executable(&self) -> bool {
        self.mode & 0o111 != 0
    }
}

/// What was seen while reading a release.
#[derive(Debug, Default, Clone)]
pub struct ReadSummary {
    /// Number of archive entries read.
    pub entries: u64,
    /// Sum of regular file sizes.
    pub file_bytes: u64,
}

/// Decompresses `input` (a gzip-compressed tar) once and hands every entry to `visit`.
///
/// `visit` receives the entry and a reader of exactly the entry's bytes (empty for
/// directories and links); it need not read them all. Fails on the first entry that could
/// escape the release, on special files, on a stream that is not gzip or ends early, and
/// when the release lacks `bin/mattermost`.
pub fn read_release<R, F>(input: R, mut visit: F) -> Result<ReadSummary>
where
    R: Read,
    F: FnMut(&ReleaseEntry, &mut dyn Read) -> Result<()>,
{
    let mut buffered = BufReader::with_capacity(256 * 1024, input);
    let head = buffered.fill_buf().context("reading the release tarball")?;
    if head.len() < 2 || head[0] != 0x1f || head[1] != 0x8b {
        bail!("the release tarball is not a gzip file (expected a .tar.gz as upstream publishes)");
    }
    let mut archive = tar::Archive::new(MultiGzDecoder::new(buffered));
    let mut summary = ReadSummary::default();
    let mut has_server = false;
    for item in archive.entries().map_err(corrupt)? {
        let mut entry = item.map_err(corrupt)?;
        let checked = check_entry(&entry)?;
        summary.entries += 1;
        if let EntryKind::File { size } = checked.kind {
            summary.file_bytes += size;
            has_server |= checked.path == "bin/mattermost";
        }
        visit(&checked, &mut Labelled(&mut entry))
            .with_context(|| format!("release entry `{}`", display_path(&checked.path)))?;
        // Drain what the visitor left so the stream stays aligned (and CRC-checked).
        io::copy(&mut entry, &mut io::sink()).map_err(corrupt)?;
    }
    // The tar end marker can come before the gzip trailer: read to the real end so that a
    // truncated or corrupted stream is noticed.
    io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(corrupt)?;
    if !has_server {
        bail!("the release has no bin/mattermost: this is not a Mattermost server release");
    }
    Ok(summary)
}

fn corrupt(err: io::Error) -> anyhow::Error {
    anyhow!("the release tarball is truncated or corrupt: {err}")
}

/// An entry reader whose errors say that the tarball, not the reader of it, is at fault.
struct Labelled<'a, R>(&'a mut R);

impl<R: Read> Read for Labelled<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("the release tarball is truncated or corrupt: {e}"),
            )
        })
    }
}

fn display_path(path: &str) -> String {
    if path.is_empty() {
        format!("{TOP_DIR}/")
    } else {
        format!("{TOP_DIR}/{path}")
    }
}

fn check_entry<R: Read>(entry: &tar::Entry<R>) -> Result<ReleaseEntry> {
    let raw = String::from_utf8(entry.path_bytes().into_owned()).map_err(|e| {
        anyhow!(
            "release entry `{}` has a name that is not UTF-8",
            String::from_utf8_lossy(e.as_bytes())
        )
    })?;
    let path = release_path(&raw)?;
    let header = entry.header();
    let mode = header.mode().map_err(corrupt)? & 0o7777;
    let kind = match header.entry_type() {
        tar::EntryType::Directory => EntryKind::Dir,
        tar::EntryType::Regular | tar::EntryType::Continuous => {
            EntryKind::File { size: entry.size() }
        }
        tar::EntryType::Symlink => {
            let target = link_target(entry, &raw)?;
            check_symlink(&raw, &path, &target)?;
            EntryKind::Symlink { target }
        }
        tar::EntryType::Link => {
            // A hard link inside the release becomes a relative symbolic link: the packages
            // must not depend on the order in which a package manager creates files.
            let target = link_target(entry, &raw)?;
            let target_path = release_path(&target).map_err(|_| {
                anyhow!("release entry `{raw}` is a hard link to `{target}`, outside the release")
            })?;
            EntryKind::Symlink {
                target: relative_link(&path, &target_path),
            }
        }
        other => bail!(
            "release entry `{raw}` is a {} (only files, directories and links belong in a release)",
            describe_type(other)
        ),
    };
    Ok(ReleaseEntry { path, kind, mode })
}

fn link_target<R: Read>(entry: &tar::Entry<R>, raw: &str) -> Result<String> {
    let target = entry
        .link_name_bytes()
        .ok_or_else(|| anyhow!("release entry `{raw}` is a link without a target"))?;
    String::from_utf8(target.into_owned())
        .map_err(|_| anyhow!("release entry `{raw}` has a link target that is not UTF-8"))
}

fn describe_type(t: tar::EntryType) -> &'static str {
    match t {
        tar::EntryType::Char => "character device",
        tar::EntryType::Block => "block device",
        tar::EntryType::Fifo => "fifo",
        _ => "special entry",
    }
}

/// Turns an archive path into a path below the top directory, refusing escapes.
fn release_path(raw: &str) -> Result<String> {
    if raw.starts_with('/') {
        bail!("release entry `{raw}` has an absolute path");
    }
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => bail!("release entry `{raw}` has a `..` component"),
            _ => parts.push(part),
        }
    }
    match parts.split_first() {
        Some((&TOP_DIR, rest)) => Ok(rest.join("/")),
        _ => bail!("release entry `{raw}` is outside the `{TOP_DIR}/` directory"),
    }
}

/// Refuses a symbolic link whose target leaves the release.
fn check_symlink(raw: &str, path: &str, target: &str) -> Result<()> {
    if target.is_empty() {
        bail!("release entry `{raw}` is a symbolic link with an empty target");
    }
    if target.starts_with('/') {
        bail!(
            "release entry `{raw}` is a symbolic link to the absolute path `{target}`, outside the release"
        );
    }
    let mut resolved: Vec<&str> = path.split('/').collect();
    resolved.pop(); // the link's own name
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if resolved.pop().is_none() {
                    bail!(
                        "release entry `{raw}` is a symbolic link to `{target}`, outside the release"
                    );
                }
            }
            _ => resolved.push(part),
        }
    }
    Ok(())
}

/// A relative path from the directory of `from` to `to` (both below the top directory).
fn relative_link(from: &str, to: &str) -> String {
    let from_dir: Vec<&str> = from.split('/').filter(|p| !p.is_empty()).collect();
    let from_dir = &from_dir[..from_dir.len().saturating_sub(1)];
    let to_parts: Vec<&str> = to.split('/').filter(|p| !p.is_empty()).collect();
    let common = from_dir
        .iter()
        .zip(&to_parts)
        .take_while(|(a, b)| a == b)
        .count();
    let mut out: Vec<&str> = vec![".."; from_dir.len() - common];
    out.extend(&to_parts[common..]);
    out.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_stripped_and_escapes_refused() {
        assert_eq!(release_path("mattermost/").unwrap(), "");
        assert_eq!(
            release_path("./mattermost/bin/mattermost").unwrap(),
            "bin/mattermost"
        );
        assert!(release_path("/etc/passwd").is_err());
        assert!(release_path("mattermost/../x").is_err());
        assert!(release_path("other/x").is_err());
    }

    #[test]
    fn symlinks_must_stay_inside() {
        assert!(check_symlink("x", "bin/a", "b").is_ok());
        assert!(check_symlink("x", "bin/a", "../client/x").is_ok());
        assert!(check_symlink("x", "bin/a", "../../etc").is_err());
        assert!(check_symlink("x", "a", "..").is_err());
        assert!(check_symlink("x", "bin/a", "/etc").is_err());
    }

    #[test]
    fn hard_links_become_relative_symlinks() {
        assert_eq!(relative_link("bin/b", "bin/a"), "a");
        assert_eq!(relative_link("client/x/y", "bin/a"), "../../bin/a");
        assert_eq!(relative_link("top", "bin/a"), "bin/a");
    }
}
