//! A streaming GNU tar writer: headers are written as entries arrive and file bytes are
//! passed straight through, so nothing is staged on disk or held in memory.
//!
//! dpkg refuses PAX headers, so long names use GNU `././@LongLink` records.

use std::io::{self, Write};

use anyhow::{Context, Result};

const BLOCK: usize = 512;
const NAME_FIELD: usize = 100;

/// The header fields of one tar member.
#[derive(Debug, Clone)]
pub struct Member<'a> {
    /// Path as stored (`./opt/app`, directories with a trailing `/`).
    pub name: &'a str,
    /// Member type.
    pub kind: tar::EntryType,
    /// Permission bits.
    pub mode: u32,
    /// Size of the bytes that follow (0 unless a regular file).
    pub size: u64,
    /// Symlink target.
    pub link: Option<&'a str>,
    /// Owner name (ids are 0: packages carry only root-owned files).
    pub user: &'a str,
    /// Group name.
    pub group: &'a str,
    /// Modification time.
    pub mtime: u64,
}

/// Writes tar members to `W`.
pub struct TarWriter<W: Write> {
    out: W,
    pending: u64,
    written: u64,
}

impl<W: Write> TarWriter<W> {
    /// A writer with nothing written yet.
    pub fn new(out: W) -> Self {
        TarWriter {
            out,
            pending: 0,
            written: 0,
        }
    }

    /// Writes the header(s) of `member`; a file's `size` bytes must follow via [`Self::data`].
    pub fn begin(&mut self, member: &Member) -> Result<()> {
        anyhow::ensure!(self.pending == 0, "tar: previous member not complete");
        if member.name.len() > NAME_FIELD {
            self.long_record(tar::EntryType::GNULongName, member.name)?;
        }
        if let Some(link) = member.link.filter(|l| l.len() > NAME_FIELD) {
            self.long_record(tar::EntryType::GNULongLink, link)?;
        }
        let mut header = tar::Header::new_gnu();
        put_truncated(&mut header.as_old_mut().name, member.name);
        if let Some(link) = member.link {
            put_truncated(&mut header.as_old_mut().linkname, link);
        }
        header.set_entry_type(member.kind);
        header.set_mode(member.mode);
        header.set_size(member.size);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(member.mtime);
        header
            .set_username(member.user)
            .context("tar: user name too long")?;
        header
            .set_groupname(member.group)
            .context("tar: group name too long")?;
        header.set_cksum();
        self.out.write_all(header.as_bytes())?;
        self.pending = member.size;
        self.written = 0;
        Ok(())
    }

    /// Writes file bytes of the current member.
    pub fn data(&mut self, chunk: &[u8]) -> Result<()> {
        anyhow::ensure!(
            chunk.len() as u64 <= self.pending,
            "tar: more bytes than the header said"
        );
        self.out.write_all(chunk)?;
        self.pending -= chunk.len() as u64;
        self.written += chunk.len() as u64;
        Ok(())
    }

    /// Pads the current member to a block boundary.
    pub fn end(&mut self) -> Result<()> {
        anyhow::ensure!(
            self.pending == 0,
            "tar: {} bytes missing from a member",
            self.pending
        );
        self.pad(self.written)
    }

    /// Writes the end-of-archive marker and returns the inner writer.
    pub fn finish(mut self) -> Result<W> {
        self.out.write_all(&[0u8; BLOCK * 2])?;
        Ok(self.out)
    }

    /// Access to the inner writer.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }

    fn long_record(&mut self, kind: tar::EntryType, value: &str) -> io::Result<()> {
        let mut header = tar::Header::new_gnu();
        put_truncated(&mut header.as_old_mut().name, "././@LongLink");
        header.set_entry_type(kind);
        header.set_mode(0o644);
        header.set_size(value.len() as u64 + 1);
        header.set_mtime(0);
        let _ = header.set_username("root");
        let _ = header.set_groupname("root");
        header.set_cksum();
        self.out.write_all(header.as_bytes())?;
        self.out.write_all(value.as_bytes())?;
        self.out.write_all(&[0])?;
        self.pad(value.len() as u64 + 1).map_err(io::Error::other)
    }

    fn pad(&mut self, len: u64) -> Result<()> {
        let rem = (len % BLOCK as u64) as usize;
        if rem != 0 {
            self.out.write_all(&[0u8; BLOCK][..BLOCK - rem])?;
        }
        self.written = 0;
        Ok(())
    }
}

fn put_truncated(field: &mut [u8], value: &str) {
    let bytes = value.as_bytes();
    let n = bytes.len().min(field.len());
    field.fill(0);
    field[..n].copy_from_slice(&bytes[..n]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn long_names_and_links_read_back() {
        let long = format!("./opt/{}/file", "d".repeat(150));
        let target = format!("/{}", "t".repeat(120));
        let mut w = TarWriter::new(Vec::new());
        let m = |name, kind, size, link| Member {
            name,
            kind,
            mode: 0o644,
            size,
            link,
            user: "root",
            group: "root",
            mtime: 7,
        };
        w.begin(&m(&long, tar::EntryType::Regular, 3, None))
            .unwrap();
        w.data(b"abc").unwrap();
        w.end().unwrap();
        w.begin(&m("./l", tar::EntryType::Symlink, 0, Some(&target)))
            .unwrap();
        w.end().unwrap();
        let bytes = w.finish().unwrap();
        let mut archive = tar::Archive::new(&bytes[..]);
        let mut entries = archive.entries().unwrap();
        let mut first = entries.next().unwrap().unwrap();
        assert_eq!(first.path().unwrap().to_str().unwrap(), long);
        let mut s = String::new();
        first.read_to_string(&mut s).unwrap();
        assert_eq!(s, "abc");
        let second = entries.next().unwrap().unwrap();
        assert_eq!(
            second.link_name().unwrap().unwrap().to_str().unwrap(),
            target
        );
        assert_eq!(second.header().mtime().unwrap(), 7);
    }
}
