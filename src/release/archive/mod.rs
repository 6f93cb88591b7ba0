//! Reads a release tarball as one stream of checked entries.
//!
//! The tarball is decompressed exactly once and never extracted: each entry is handed to a
//! visitor together with a reader for its bytes. Everything a hostile or broken archive could
//! do to the packages is refused here, with the offending entry named: names ([`names`]),
//! where entries land once installed and where links lead ([`tree`]), and what the server
//! binary is ([`server`]). Checks that need the whole release (a later link changes where an
//! earlier one leads) run after the last entry, before the build may succeed.

pub mod members;
pub mod names;
pub mod server;
pub mod tree;

use std::io::{self, BufRead, BufReader, Read};

use anyhow::{Context, Result, anyhow, bail};
use flate2::read::MultiGzDecoder;

use crate::release::Arch;
use members::{Names, Pending};
use names::{check_symlink, check_text, display_path, relative_link, release_path, shown};
use server::{Inspect, SERVER_PATH, ServerCheck};
use tree::Tree;

/// The directory every upstream release tarball keeps its files under.
pub const TOP_DIR: &str = "mattermost";
/// Most archive members a release may have (real releases have a few thousand); more is
/// refused before it can cost memory or time.
pub const MAX_ENTRIES: u64 = tree::MAX_PATHS as u64;

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
    /// Modification time from the archive, seconds since 1970 (a PAX `mtime` wins).
    pub mtime: u64,
}

impl ReleaseEntry {
    /// True when any execute bit is set.
    pub fn is_executable(&self) -> bool {
        self.mode & 0o111 != 0
    }
}

/// What the release must be, besides well formed.
#[derive(Debug, Clone)]
pub struct Expected {
    /// The version being packaged, looked for in `bin/mattermost`.
    pub version: String,
    /// The architecture `bin/mattermost` must be built for.
    pub arch: Arch,
    /// Refuse the release when `bin/mattermost` does not contain [`Expected::version`].
    pub require_version: bool,
}

/// What was seen while reading a release.
#[derive(Debug, Default, Clone)]
pub struct ReadSummary {
    /// Number of archive entries read.
    pub entries: u64,
    /// Sum of regular file sizes.
    pub file_bytes: u64,
    /// `bin/mattermost` contains the requested version string.
    pub version_in_server: bool,
}

/// Decompresses `input` (a gzip-compressed tar) once and hands every entry to `visit`.
///
/// `visit` receives the entry and a reader of exactly the entry's bytes (empty for
/// directories and links); it need not read them all. Fails on the first entry that could
/// escape the release or take over a path the packaging owns, on names no package manager
/// can install, on special and sparse files, on a stream that is not gzip or ends early,
/// and when the release lacks a `bin/mattermost` for `expected.arch`.
pub fn read_release<R, F>(input: R, expected: &Expected, mut visit: F) -> Result<ReadSummary>
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
    let mut tree = Tree::new();
    let mut server = ServerCheck::new(&expected.version);
    let mut has_server = false;
    let mut pending = Pending::default();
    for item in archive.entries().map_err(corrupt)?.raw(true) {
        let mut entry = item.map_err(corrupt)?;
        if entry.header().entry_type() == tar::EntryType::XGlobalHeader {
            bail!(
                "the release tarball has a PAX global header, which upstream's tarballs never \
                 have; mm-pkg does not apply archive-wide attributes"
            );
        }
        // At most one of each kind of extension header precedes a member.
        if pending.absorb(&mut entry)? {
            continue;
        }
        summary.entries += 1;
        if summary.entries > MAX_ENTRIES {
            bail!(
                "the release has more than {MAX_ENTRIES} entries; real releases have far fewer, \
                 and mm-pkg refuses more to bound its memory"
            );
        }
        let names = pending.names(&entry)?;
        let (checked, hard_link_to) = check_entry(&entry, names)?;
        tree.insert(&checked, hard_link_to.as_deref())?;
        let label = || format!("release entry `{}`", display_path(&checked.path));
        if let EntryKind::File { size } = checked.kind {
            summary.file_bytes += size;
            if checked.path == SERVER_PATH {
                has_server = true;
                let mut inspect = Inspect::new(Labelled(&mut entry), &mut server);
                visit(&checked, &mut inspect).with_context(label)?;
                io::copy(&mut inspect, &mut io::sink()).map_err(corrupt)?;
                continue;
            }
        }
        visit(&checked, &mut Labelled(&mut entry)).with_context(label)?;
        // Drain what the visitor left so the stream stays aligned (and CRC-checked).
        io::copy(&mut entry, &mut io::sink()).map_err(corrupt)?;
    }
    // The tar end marker can come before the gzip trailer: read to the real end so that a
    // truncated or corrupted stream is noticed.
    io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(corrupt)?;
    pending.finish()?;
    tree.check_links()?;
    if !has_server {
        bail!("the release has no bin/mattermost: this is not a Mattermost server release");
    }
    server.check_arch(expected.arch)?;
    summary.version_in_server = server.version_found();
    if expected.require_version && !summary.version_in_server {
        bail!("{}", version_missing(&expected.version));
    }
    Ok(summary)
}

/// Says that `bin/mattermost` does not contain `version` and what that likely means.
pub fn version_missing(version: &str) -> String {
    format!(
        "bin/mattermost does not contain the version string `{version}`: upstream's binary \
         lists its own version, so this tarball was most likely built for another (older) release"
    )
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

/// Checks one archive member by itself; returns it and, for a hard link, the release path
/// it names.
fn check_entry<R: Read>(
    entry: &tar::Entry<R>,
    names: Names,
) -> Result<(ReleaseEntry, Option<String>)> {
    let raw = String::from_utf8(names.path).map_err(|e| {
        anyhow!(
            "release entry `{}` has a name that is not UTF-8",
            shown(&String::from_utf8_lossy(e.as_bytes()))
        )
    })?;
    check_text(&raw, &raw, "name")?;
    let entry_type = entry.header().entry_type();
    if entry_type == tar::EntryType::GNUSparse {
        bail!(
            "release entry `{raw}` is a sparse file (GNU format); mm-pkg does not package sparse files"
        );
    }
    let path = release_path(&raw)?;
    let header = entry.header();
    let mode = header.mode().map_err(corrupt)? & 0o7777;
    let mtime = match names.mtime {
        Some(mtime) => mtime,
        None => header.mtime().map_err(corrupt)?,
    };
    let mut hard_link_to = None;
    let kind = match entry_type {
        tar::EntryType::Directory => EntryKind::Dir,
        tar::EntryType::Regular | tar::EntryType::Continuous => {
            EntryKind::File { size: entry.size() }
        }
        tar::EntryType::Symlink => {
            let target = link_target(names.link, &raw)?;
            check_symlink(&raw, &path, &target)?;
            EntryKind::Symlink { target }
        }
        tar::EntryType::Link => {
            // A hard link inside the release becomes a relative symbolic link: the packages
            // must not depend on the order in which a package manager creates files.
            let target = link_target(names.link, &raw)?;
            let target_path = release_path(&target).map_err(|_| {
                anyhow!("release entry `{raw}` is a hard link to `{target}`, outside the release")
            })?;
            let link = relative_link(&path, &target_path);
            hard_link_to = Some(target_path);
            EntryKind::Symlink { target: link }
        }
        other => bail!(
            "release entry `{raw}` is a {} (only files, directories and links belong in a release)",
            describe_type(other)
        ),
    };
    Ok((
        ReleaseEntry {
            path,
            kind,
            mode,
            mtime,
        },
        hard_link_to,
    ))
}

fn link_target(target: Option<Vec<u8>>, raw: &str) -> Result<String> {
    let target =
        target.ok_or_else(|| anyhow!("release entry `{raw}` is a link without a target"))?;
    let target = String::from_utf8(target)
        .map_err(|_| anyhow!("release entry `{raw}` has a link target that is not UTF-8"))?;
    check_text(raw, &target, "link target")?;
    Ok(target)
}

fn describe_type(t: tar::EntryType) -> &'static str {
    match t {
        tar::EntryType::Char => "character device",
        tar::EntryType::Block => "block device",
        tar::EntryType::Fifo => "fifo",
        _ => "special entry",
    }
}
