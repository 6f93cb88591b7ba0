//! The ar container of a `.deb`, read as dpkg-deb reads it (deb(5)): the global header, then
//! members of 60-byte headers whose sizes must fit in the file, each padded to an even
//! offset. A member is read through [`ArReader`] itself, which fails when the file ends
//! before the member does: a truncated file is never taken for a short member.

use std::io::{self, Read};

use anyhow::{Context, Result, bail};

/// The global header every ar archive opens with.
const MAGIC: &[u8; 8] = b"!<arch>\n";

/// Members of one ar archive, read in order.
pub struct ArReader<R: Read> {
    inner: R,
    /// Bytes of the current member not read yet.
    remaining: u64,
    /// The current member has an odd size: one padding byte follows it.
    pad: bool,
}

impl<R: Read> ArReader<R> {
    /// Reads the global header of `inner`.
    pub fn new(mut inner: R) -> Result<Self> {
        let mut magic = [0u8; 8];
        inner
            .read_exact(&mut magic)
            .context("too short to be a .deb")?;
        if &magic != MAGIC {
            bail!("not a .deb: it is no ar archive (bad magic)");
        }
        Ok(ArReader {
            inner,
            remaining: 0,
            pad: false,
        })
    }

    /// Skips what is left of the current member and reads the next member's header: its
    /// name (without GNU ar's trailing `/`) and size. `None` at the end of the file.
    pub fn next_member(&mut self) -> Result<Option<(String, u64)>> {
        if self.remaining > 0 {
            io::copy(self, &mut io::sink())?;
        }
        if self.pad {
            let mut pad = [0u8; 1];
            self.inner
                .read_exact(&mut pad)
                .context("the file ends inside a member's padding (truncated)")?;
            if pad[0] != b'\n' {
                bail!("a member's padding byte is not a newline: the ar archive is damaged");
            }
            self.pad = false;
        }
        let mut header = [0u8; 60];
        let mut got = 0;
        while got < header.len() {
            match self.inner.read(&mut header[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e).context("reading an ar member header"),
            }
        }
        match got {
            0 => return Ok(None),
            60 => {}
            _ => bail!("the file ends inside an ar member header (truncated)"),
        }
        if &header[58..60] != b"`\n" {
            bail!("an ar member header is damaged (bad end marker)");
        }
        let name = std::str::from_utf8(&header[..16])
            .ok()
            .map(|n| n.trim_end_matches(' ').trim_end_matches('/'))
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_graphic()))
            .map(str::to_string);
        let Some(name) = name else {
            bail!("an ar member has an unreadable name");
        };
        let size_field = std::str::from_utf8(&header[48..58])
            .unwrap_or("")
            .trim_end_matches(' ');
        let size = match size_field.parse::<u64>() {
            Ok(size) if size_field.bytes().all(|b| b.is_ascii_digit()) => size,
            _ => bail!("ar member {name} has an unreadable size `{size_field}`"),
        };
        self.remaining = size;
        self.pad = size % 2 == 1;
        Ok(Some((name, size)))
    }

    /// Bytes of the current member not read yet.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }
}

/// Reads the current member; fails when the file ends before the member's declared size.
impl<R: Read> Read for ArReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "the file ends {} bytes before the end of an ar member (truncated)",
                    self.remaining
                ),
            ));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, data: &[u8]) -> Vec<u8> {
        let mut out = format!(
            "{name:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
            0,
            0,
            0,
            100644,
            data.len()
        )
        .into_bytes();
        out.extend_from_slice(data);
        if data.len() % 2 == 1 {
            out.push(b'\n');
        }
        out
    }

    fn members(bytes: &[u8]) -> Result<Vec<(String, Vec<u8>)>> {
        let mut ar = ArReader::new(bytes)?;
        let mut out = Vec::new();
        while let Some((name, _)) = ar.next_member()? {
            let mut data = Vec::new();
            ar.read_to_end(&mut data)?;
            out.push((name, data));
        }
        Ok(out)
    }

    #[test]
    fn members_read_back_with_their_padding() {
        let mut bytes = MAGIC.to_vec();
        bytes.extend(member("debian-binary", b"2.0\n"));
        bytes.extend(member("odd/", b"abc"));
        bytes.extend(member("last", b"xy"));
        let got = members(&bytes).unwrap();
        assert_eq!(
            got,
            [
                ("debian-binary".to_string(), b"2.0\n".to_vec()),
                ("odd".to_string(), b"abc".to_vec()),
                ("last".to_string(), b"xy".to_vec()),
            ]
        );
    }

    #[test]
    fn a_truncated_archive_is_refused_wherever_it_ends() {
        let mut bytes = MAGIC.to_vec();
        bytes.extend(member("debian-binary", b"2.0\n"));
        bytes.extend(member("data.tar", &[7u8; 1001]));
        for cut in 1..bytes.len() {
            if cut == 8 || cut == 8 + 64 {
                continue; // between two members: a whole, shorter archive
            }
            assert!(
                members(&bytes[..cut]).is_err(),
                "cut at {cut} of {} was accepted",
                bytes.len()
            );
        }
        assert!(members(&bytes).is_ok());
    }

    #[test]
    fn a_damaged_header_or_size_is_refused() {
        for bad in [
            member("x", b"ab")
                .iter()
                .map(|b| if *b == b'`' { b'!' } else { *b })
                .collect(),
            {
                let mut m = member("x", b"ab");
                m[48] = b'-';
                m
            },
        ] {
            let mut bytes = MAGIC.to_vec();
            bytes.extend(bad);
            assert!(members(&bytes).is_err());
        }
    }
}
