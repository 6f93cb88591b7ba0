//! The format-neutral description of a package: entries to install and what the writers of
//! each format need to know about them. Nothing here knows about Mattermost.

use std::io::Read;

use anyhow::Result;

/// The root user and group, owner of everything a package installs unless said otherwise.
pub const ROOT: &str = "root";

/// What an installed path is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// A directory.
    Dir,
    /// A regular file of `size` bytes; the bytes follow the entry.
    File {
        /// Size in bytes.
        size: u64,
    },
    /// A symbolic link.
    Symlink {
        /// Link target as stored.
        target: String,
    },
}

/// One path a package installs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Absolute install path without trailing slash, e.g. `/opt/app/bin/app`.
    pub path: String,
    /// File type and size or link target.
    pub content: Content,
    /// Permission bits.
    pub mode: u32,
    /// Owning user name.
    pub user: String,
    /// Owning group name.
    pub group: String,
    /// The installed program rewrites this file at run time, so verification tools should not
    /// report its digest, size or time as changed.
    pub rewritten_at_runtime: bool,
    /// Documentation (RPM `%doc`).
    pub doc: bool,
    /// Licence text (RPM `%license`).
    pub license: bool,
    /// File capabilities in `setcap` text form, for formats that can record them (RPM).
    pub capabilities: Option<String>,
}

impl Entry {
    /// A root-owned directory.
    pub fn dir(path: impl Into<String>, mode: u32) -> Self {
        Self::new(path, Content::Dir, mode)
    }

    /// A root-owned regular file of `size` bytes.
    pub fn file(path: impl Into<String>, size: u64, mode: u32) -> Self {
        Self::new(path, Content::File { size }, mode)
    }

    /// A root-owned symbolic link to `target`.
    pub fn symlink(path: impl Into<String>, target: impl Into<String>) -> Self {
        Self::new(
            path,
            Content::Symlink {
                target: target.into(),
            },
            0o777,
        )
    }

    fn new(path: impl Into<String>, content: Content, mode: u32) -> Self {
        Entry {
            path: path.into(),
            content,
            mode,
            user: ROOT.to_string(),
            group: ROOT.to_string(),
            rewritten_at_runtime: false,
            doc: false,
            license: false,
            capabilities: None,
        }
    }

    /// The same entry owned by `user:group`.
    pub fn owned_by(mut self, user: &str, group: &str) -> Self {
        self.user = user.to_string();
        self.group = group.to_string();
        self
    }

    /// True for a directory.
    pub fn is_dir(&self) -> bool {
        self.content == Content::Dir
    }

    /// Size of a regular file's bytes (0 for other types).
    pub fn size(&self) -> u64 {
        match self.content {
            Content::File { size } => size,
            _ => 0,
        }
    }
}

/// A package writer fed one entry at a time.
///
/// For a [`Content::File`] entry exactly `size` bytes follow through [`EntrySink::data`]
/// before [`EntrySink::end`]; other entries get no data.
pub trait EntrySink {
    /// Starts `entry`.
    fn begin(&mut self, entry: &Entry) -> Result<()>;
    /// Appends a chunk of the current file's bytes.
    fn data(&mut self, chunk: &[u8]) -> Result<()>;
    /// Ends the current entry.
    fn end(&mut self) -> Result<()>;
}

/// Sends each entry, and its bytes read once from `data`, to every sink.
pub fn add_entry(
    sinks: &mut [&mut dyn EntrySink],
    entry: &Entry,
    data: &mut dyn Read,
) -> Result<()> {
    for sink in sinks.iter_mut() {
        sink.begin(entry)?;
    }
    let mut remaining = entry.size();
    let mut buf = vec![0u8; remaining.min(256 * 1024) as usize];
    while remaining > 0 {
        let want = buf.len().min(remaining as usize);
        let n = data.read(&mut buf[..want])?;
        if n == 0 {
            anyhow::bail!("{}: input ended {remaining} bytes early", entry.path);
        }
        for sink in sinks.iter_mut() {
            sink.data(&buf[..n])?;
        }
        remaining -= n as u64;
    }
    for sink in sinks.iter_mut() {
        sink.end()?;
    }
    Ok(())
}

/// Sends an entry whose bytes are in memory to every sink.
pub fn add_bytes(sinks: &mut [&mut dyn EntrySink], entry: &Entry, bytes: &[u8]) -> Result<()> {
    debug_assert_eq!(entry.size(), bytes.len() as u64);
    add_entry(sinks, entry, &mut &bytes[..])
}
