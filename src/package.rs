//! The format-neutral description of a package: entries to install and what the writers of
//! each format need to know about them. Nothing here knows about Mattermost.

use std::io::Read;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use anyhow::{Context, Result, anyhow};

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
    /// A configuration file the admin may edit: an upgrade keeps the admin's version (Debian
    /// conffile, RPM `%config(noreplace)`).
    pub config: bool,
    /// File capabilities in `setcap` text form, for formats that can record them (RPM).
    pub capabilities: Option<String>,
    /// Modification time, seconds since 1970 (the constructors leave 0: see [`Entry::at`]).
    pub mtime: u64,
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
            config: false,
            capabilities: None,
            mtime: 0,
        }
    }

    /// The same entry dated `mtime`.
    pub fn at(mut self, mtime: u64) -> Self {
        self.mtime = mtime;
        self
    }

    /// The same entry owned by `user:group`.
    pub fn owned_by(mut self, user: &str, group: &str) -> Self {
        self.user = user.to_string();
        self.group = group.to_string();
        self
    }

    /// The same entry as a configuration file the admin may edit (see [`Entry::config`]).
    pub fn as_config(mut self) -> Self {
        self.config = true;
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

/// The ancestors of `path` that `known` does not know yet, shallowest first, stopping at the
/// first known one (and never going above the first `floor` bytes of the path). Both the
/// layout (its own directories) and the .deb writer (every directory, as dpkg wants) use it.
pub fn missing_parents(path: &str, floor: usize, known: impl Fn(&str) -> bool) -> Vec<String> {
    let mut missing = Vec::new();
    let mut current = path;
    while let Some((parent, _)) = current.rsplit_once('/') {
        if parent.len() < floor || known(parent) {
            break;
        }
        missing.push(parent.to_string());
        current = parent;
    }
    missing.reverse();
    missing
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
    /// Appends a chunk that other sinks share (no copy needed to keep it).
    fn data_shared(&mut self, chunk: &Arc<[u8]>) -> Result<()> {
        self.data(chunk)
    }
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
    let mut buf = vec![0u8; remaining.min(CHUNK as u64) as usize];
    while remaining > 0 {
        let want = buf.len().min(remaining as usize);
        let mut n = 0;
        while n < want {
            let got = data.read(&mut buf[n..want])?;
            if got == 0 {
                anyhow::bail!(
                    "{}: input ended {} bytes early",
                    entry.path,
                    remaining - n as u64
                );
            }
            n += got;
        }
        let chunk: Arc<[u8]> = Arc::from(&buf[..n]);
        for sink in sinks.iter_mut() {
            sink.data_shared(&chunk)?;
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

/// Bytes per chunk handed to the sinks.
pub const CHUNK: usize = 256 * 1024;
/// Chunks that may wait for a threaded sink (bounds memory: 16 x 256 KiB per sink).
const QUEUE: usize = 16;

enum Msg {
    Begin(Entry),
    Data(Arc<[u8]>),
    End,
}

/// Runs a sink on its own thread, so that several package writers work in parallel on one
/// stream. Messages wait in a bounded queue.
pub struct ThreadedSink<S: EntrySink + Send + 'static> {
    tx: Option<SyncSender<Msg>>,
    handle: Option<JoinHandle<Result<S>>>,
}

impl<S: EntrySink + Send + 'static> ThreadedSink<S> {
    /// Moves `sink` to a new thread named `name` (as profilers and `top -H` show it).
    pub fn spawn(name: &str, sink: S) -> Result<Self> {
        let (tx, rx) = sync_channel(QUEUE);
        let handle = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || drive(sink, rx))
            .with_context(|| format!("starting thread {name}"))?;
        Ok(ThreadedSink {
            tx: Some(tx),
            handle: Some(handle),
        })
    }

    /// Waits for the thread to apply everything sent and returns the sink, or its first error.
    pub fn join(mut self) -> Result<S> {
        self.tx = None;
        let handle = self.handle.take().expect("joined once");
        handle
            .join()
            .map_err(|_| anyhow!("a package writer thread panicked"))?
    }

    fn send(&mut self, msg: Msg) -> Result<()> {
        let tx = self.tx.as_ref().expect("not joined");
        if tx.send(msg).is_ok() {
            return Ok(());
        }
        // The thread stopped on an error: report that error.
        self.tx = None;
        match self.handle.take().map(|h| h.join()) {
            Some(Ok(Err(err))) => Err(err),
            _ => Err(anyhow!("a package writer thread stopped")),
        }
    }
}

fn drive<S: EntrySink>(mut sink: S, rx: Receiver<Msg>) -> Result<S> {
    for msg in rx {
        match msg {
            Msg::Begin(entry) => sink.begin(&entry)?,
            Msg::Data(chunk) => sink.data(&chunk)?,
            Msg::End => sink.end()?,
        }
    }
    Ok(sink)
}

impl<S: EntrySink + Send + 'static> EntrySink for ThreadedSink<S> {
    fn begin(&mut self, entry: &Entry) -> Result<()> {
        self.send(Msg::Begin(entry.clone()))
    }

    fn data(&mut self, chunk: &[u8]) -> Result<()> {
        self.send(Msg::Data(Arc::from(chunk)))
    }

    fn data_shared(&mut self, chunk: &Arc<[u8]>) -> Result<()> {
        self.send(Msg::Data(chunk.clone()))
    }

    fn end(&mut self) -> Result<()> {
        self.send(Msg::End)
    }
}
