//! Writes a Debian binary package (`.deb`) from a stream of [`Entry`]s.
//!
//! Layout of the result, as dpkg-deb makes it: an `ar` archive whose members are
//! `debian-binary`, `control.tar.*` and `data.tar.*`, in that order. The data tar is
//! compressed into a temporary file while entries arrive (with an MD5 per file for
//! `md5sums`); the control tar and the `ar` wrapper are written at the end.

pub mod tar;

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufWriter, Seek};
use std::path::Path;

use anyhow::{Context, Result};
use md5::{Digest, Md5};

use crate::compress::{Compression, Encoder, Framing};
use crate::output::Assembled;
use crate::package::{Content, Entry, EntrySink, ROOT, missing_parents};
use tar::{Member, TarWriter};

/// What goes into `control.tar` besides `md5sums`.
#[derive(Debug, Clone)]
pub struct ControlFiles {
    /// The `control` file without `Installed-Size`, which the writer computes and adds.
    pub control: String,
    /// Maintainer scripts by name (`preinst`, `postinst`, `prerm`, `postrm`).
    pub scripts: Vec<(String, String)>,
    /// Time stamp of the control members and of the `ar` members, seconds since 1970.
    pub mtime: u64,
}

/// Directories Debian creates in base-files' postinst without any package listing them. A
/// package that listed one would be its only owner in dpkg's database, and its removal would
/// try to remove the directory and warn that it is not empty. Entries below them are written
/// without a member for the directory itself (dpkg-deb would add one; dpkg does not need it).
pub const UNLISTED_SYSTEM_DIRS: [&str; 7] = [
    "/opt",
    "/etc/opt",
    "/var/opt",
    "/srv",
    "/mnt",
    "/media",
    "/usr/local",
];

/// Streams entries into `data.tar`, then assembles the `.deb`.
pub struct DebWriter {
    data: TarWriter<Encoder<BufWriter<File>>>,
    data_path: std::path::PathBuf,
    compression: Compression,
    /// The top directory `./` is written (dated like the first entry).
    started: bool,
    dirs: HashSet<String>,
    md5sums: String,
    /// Paths of the entries that are configuration files, one a line (`conffiles`).
    conffiles: String,
    current: Option<(String, Md5)>,
    installed_kib: u64,
}

impl DebWriter {
    /// A writer that stages its compressed data tar in `scratch` (a file it truncates).
    /// Every member is dated by its entry's [`Entry::mtime`].
    pub fn new(scratch: &Path, compression: Compression) -> Result<Self> {
        let file = crate::output::open_scratch(scratch)?;
        let data = TarWriter::new(compression.encoder(BufWriter::new(file), Framing::Members)?);
        let mut writer = DebWriter {
            data,
            data_path: scratch.to_path_buf(),
            compression,
            started: false,
            dirs: HashSet::new(),
            md5sums: String::new(),
            conffiles: String::new(),
            current: None,
            installed_kib: 0,
        };
        writer.dirs.insert(String::new());
        writer
            .dirs
            .extend(UNLISTED_SYSTEM_DIRS.iter().map(|d| d.to_string()));
        Ok(writer)
    }

    /// Adds a root-owned regular file dated `mtime` whose bytes are in memory
    /// (documentation, overrides).
    pub fn add_file(&mut self, path: &str, bytes: &[u8], mode: u32, mtime: u64) -> Result<()> {
        self.begin(&Entry::file(path, bytes.len() as u64, mode).at(mtime))?;
        self.data(bytes)?;
        self.end()
    }

    /// Writes the top directory `./` before the first entry, dated `mtime`.
    fn start(&mut self, mtime: u64) -> Result<()> {
        if !self.started {
            self.started = true;
            let top = member("./", ::tar::EntryType::Directory, 0o755, 0, None, mtime);
            self.data.begin(&top)?;
            self.data.end()?;
        }
        Ok(())
    }

    /// Completes the data tar and returns the package: the `ar` archive up to the data
    /// member's header, then the staged data tar.
    pub fn finish(mut self, control: &ControlFiles) -> Result<Assembled> {
        self.start(control.mtime)?;
        let encoder = self.data.finish()?;
        let mut staged = encoder
            .finish()
            .and_then(|w| w.into_inner().map_err(|e| e.into_error()))
            .with_context(|| format!("writing {}", self.data_path.display()))?;
        let data_len = staged
            .stream_position()
            .with_context(|| format!("writing {}", self.data_path.display()))?;

        let control_text = with_installed_size(&control.control, self.installed_kib);
        let mut files: Vec<(&str, &[u8], u32)> = vec![
            ("control", control_text.as_bytes(), 0o644),
            ("md5sums", self.md5sums.as_bytes(), 0o644),
        ];
        if !self.conffiles.is_empty() {
            files.push(("conffiles", self.conffiles.as_bytes(), 0o644));
        }
        for (name, text) in &control.scripts {
            files.push((name, text.as_bytes(), 0o755));
        }
        let control_tar = control_tar(&files, self.compression, control.mtime)?;

        let suffix = self.compression.deb_suffix();
        let mut head = b"!<arch>\n".to_vec();
        for (name, bytes) in [
            ("debian-binary".to_string(), &b"2.0\n"[..]),
            (format!("control.tar{suffix}"), &control_tar[..]),
        ] {
            head.extend(ar_member_header(&name, bytes.len() as u64, control.mtime));
            head.extend_from_slice(bytes);
            head.extend(ar_padding(bytes.len() as u64));
        }
        head.extend(ar_member_header(
            &format!("data.tar{suffix}"),
            data_len,
            control.mtime,
        ));
        Ok(Assembled {
            head,
            staged,
            staged_len: data_len,
            tail: ar_padding(data_len),
        })
    }

    /// Emits every missing parent directory of `path` (dpkg wants one entry per directory),
    /// dated `mtime` (the entry that needs them).
    fn parents(&mut self, path: &str, mtime: u64) -> Result<()> {
        for dir in missing_parents(path, 0, |p| self.dirs.contains(p)) {
            let name = format!(".{dir}/");
            self.data.begin(&member(
                &name,
                ::tar::EntryType::Directory,
                0o755,
                0,
                None,
                mtime,
            ))?;
            self.data.end()?;
            self.installed_kib += 1;
            self.dirs.insert(dir);
        }
        Ok(())
    }
}

impl EntrySink for DebWriter {
    /// Accounts are created by the maintainer scripts, not dpkg: every entry is stored
    /// root-owned, and the package's scripts give the listed paths to their real owner.
    fn begin(&mut self, entry: &Entry) -> Result<()> {
        if entry.is_dir() && self.dirs.contains(&entry.path) {
            return Ok(());
        }
        self.start(entry.mtime)?;
        self.parents(&entry.path, entry.mtime)?;
        let (kind, name, link) = match &entry.content {
            Content::Dir => {
                self.dirs.insert(entry.path.clone());
                (
                    ::tar::EntryType::Directory,
                    format!(".{}/", entry.path),
                    None,
                )
            }
            Content::File { .. } => (::tar::EntryType::Regular, format!(".{}", entry.path), None),
            Content::Symlink { target } => (
                ::tar::EntryType::Symlink,
                format!(".{}", entry.path),
                Some(target.as_str()),
            ),
        };
        let member = member(&name, kind, entry.mode, entry.size(), link, entry.mtime);
        self.data.begin(&member)?;
        self.installed_kib += entry.size().div_ceil(1024).max(1);
        if let Content::File { .. } = entry.content {
            self.current = Some((entry.path.trim_start_matches('/').to_string(), Md5::new()));
            if entry.config {
                self.conffiles.push_str(&format!("{}\n", entry.path));
            }
        }
        Ok(())
    }

    fn data(&mut self, chunk: &[u8]) -> Result<()> {
        if let Some((_, md5)) = &mut self.current {
            md5.update(chunk);
        }
        self.data.data(chunk)
    }

    fn end(&mut self) -> Result<()> {
        if let Some((path, md5)) = self.current.take() {
            self.md5sums
                .push_str(&format!("{}  {path}\n", hex::encode(md5.finalize())));
        }
        self.data.end()
    }
}

/// The header of an `ar` member (common format, as dpkg-deb writes it): name, time stamp,
/// owner 0:0, mode 0644, size.
fn ar_member_header(name: &str, size: u64, mtime: u64) -> Vec<u8> {
    let header = format!(
        "{name:<16}{mtime:<12}{:<6}{:<6}{:<8o}{size:<10}`\n",
        0, 0, 0o100644
    );
    debug_assert_eq!(header.len(), 60);
    header.into_bytes()
}

/// The byte that pads an `ar` member of `size` bytes to an even length, if it needs one.
fn ar_padding(size: u64) -> Vec<u8> {
    if size % 2 == 1 {
        b"\n".to_vec()
    } else {
        Vec::new()
    }
}

/// Inserts `Installed-Size` after the `Architecture` field (or at the end of the paragraph).
fn with_installed_size(control: &str, kib: u64) -> String {
    let field = format!("Installed-Size: {kib}\n");
    let mut out = String::with_capacity(control.len() + field.len());
    let mut done = false;
    for line in control.trim_end().lines() {
        out.push_str(line);
        out.push('\n');
        if !done && line.starts_with("Architecture:") {
            out.push_str(&field);
            done = true;
        }
    }
    if !done {
        out.push_str(&field);
    }
    out
}

/// A root-owned tar member.
fn member<'a>(
    name: &'a str,
    kind: ::tar::EntryType,
    mode: u32,
    size: u64,
    link: Option<&'a str>,
    mtime: u64,
) -> Member<'a> {
    Member {
        name,
        kind,
        mode,
        size,
        link,
        user: ROOT,
        group: ROOT,
        mtime,
    }
}

fn control_tar(
    files: &[(&str, &[u8], u32)],
    compression: Compression,
    mtime: u64,
) -> Result<Vec<u8>> {
    let mut tar = TarWriter::new(compression.encoder(Vec::new(), Framing::Members)?);
    tar.begin(&member(
        "./",
        ::tar::EntryType::Directory,
        0o755,
        0,
        None,
        mtime,
    ))?;
    tar.end()?;
    for (name, bytes, mode) in files {
        let name = format!("./{name}");
        tar.begin(&member(
            &name,
            ::tar::EntryType::Regular,
            *mode,
            bytes.len() as u64,
            None,
            mtime,
        ))?;
        tar.data(bytes)?;
        tar.end()?;
    }
    let encoder = tar.finish()?;
    encoder.finish().map_err(|e: io::Error| e.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ar_headers_match_the_ar_crate() {
        let mut expected = ar::Builder::new(Vec::new());
        let mut ours = b"!<arch>\n".to_vec();
        for (name, data) in [("debian-binary", &b"2.0\n"[..]), ("data.tar.gz", b"odd")] {
            let mut h = ar::Header::new(name.as_bytes().to_vec(), data.len() as u64);
            h.set_mtime(1_700_000_000);
            h.set_mode(0o100644);
            expected.append(&h, data).unwrap();
            ours.extend(ar_member_header(name, data.len() as u64, 1_700_000_000));
            ours.extend_from_slice(data);
            ours.extend(ar_padding(data.len() as u64));
        }
        assert_eq!(ours, expected.into_inner().unwrap());
    }

    #[test]
    fn installed_size_follows_architecture() {
        let c = "Package: x\nArchitecture: amd64\nDescription: y\n";
        assert_eq!(
            with_installed_size(c, 12),
            "Package: x\nArchitecture: amd64\nInstalled-Size: 12\nDescription: y\n"
        );
    }
}
