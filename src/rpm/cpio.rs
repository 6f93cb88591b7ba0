//! A streaming writer of the `newc` cpio format, RPM's payload.

use std::io::Write;

use anyhow::{Result, ensure};

/// Header fields of one cpio member.
#[derive(Debug, Clone)]
pub struct Member<'a> {
    /// Name as stored (`./opt/...`).
    pub name: &'a str,
    /// Inode number, matching the header's FILEINODES.
    pub ino: u32,
    /// Full mode including the file type bits.
    pub mode: u32,
    /// Modification time.
    pub mtime: u32,
    /// Size of the data that follows.
    pub size: u64,
}

/// Writes cpio members to `W`.
pub struct CpioWriter<W: Write> {
    out: W,
    pending: u64,
    written: u64,
}

impl<W: Write> CpioWriter<W> {
    /// A writer with nothing written yet.
    pub fn new(out: W) -> Self {
        CpioWriter {
            out,
            pending: 0,
            written: 0,
        }
    }

    /// Writes the header of `member`; `size` bytes must follow through [`Self::data`].
    pub fn begin(&mut self, m: &Member) -> Result<()> {
        ensure!(self.pending == 0, "cpio: previous member not complete");
        ensure!(
            m.size <= u32::MAX as u64,
            "cpio: {} is larger than 4 GiB",
            m.name
        );
        let header = format!(
            "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            m.ino,
            m.mode,
            0,
            0,
            1,
            m.mtime,
            m.size,
            0,
            0,
            0,
            0,
            m.name.len() + 1,
            0
        );
        self.out.write_all(header.as_bytes())?;
        self.out.write_all(m.name.as_bytes())?;
        self.out.write_all(&[0])?;
        self.pad(110 + m.name.len() as u64 + 1)?;
        self.pending = m.size;
        self.written = 0;
        Ok(())
    }

    /// Writes data of the current member.
    pub fn data(&mut self, chunk: &[u8]) -> Result<()> {
        ensure!(
            chunk.len() as u64 <= self.pending,
            "cpio: more bytes than the header said"
        );
        self.out.write_all(chunk)?;
        self.pending -= chunk.len() as u64;
        self.written += chunk.len() as u64;
        Ok(())
    }

    /// Pads the current member's data to 4 bytes.
    pub fn end(&mut self) -> Result<()> {
        ensure!(
            self.pending == 0,
            "cpio: {} bytes missing from a member",
            self.pending
        );
        self.pad(self.written)
    }

    /// Writes the trailer and returns the inner writer.
    pub fn finish(mut self) -> Result<W> {
        self.begin(&Member {
            name: "TRAILER!!!",
            ino: 0,
            mode: 0,
            mtime: 0,
            size: 0,
        })?;
        self.end()?;
        Ok(self.out)
    }

    fn pad(&mut self, len: u64) -> Result<()> {
        let rem = (len % 4) as usize;
        if rem != 0 {
            self.out.write_all(&[0u8; 4][..4 - rem])?;
        }
        Ok(())
    }
}
