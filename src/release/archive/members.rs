//! Archive members with their extension headers applied, in bounded memory.
//!
//! The tar reader runs in raw mode: GNU long-name (`L`), long-link (`K`) and PAX extended
//! (`x`) headers arrive as members of their own and are read here, each at most
//! [`MAX_EXTENSION`] bytes (the tar crate would read one of any size into memory). Their
//! values name the next member. PAX keys that would change how the stream is framed or
//! what a member is (a `size` other than the header's, `GNU.sparse.*`) are refused.

use std::io::Read;

use anyhow::{Result, anyhow, bail};

use super::corrupt;

/// Most bytes of one extension header; real ones hold a name of a few hundred bytes.
pub const MAX_EXTENSION: u64 = 64 * 1024;

/// Extension headers read so far for the next member.
#[derive(Debug, Default)]
pub struct Pending {
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    pax: Option<Vec<u8>>,
}

/// The names of one member, extension headers applied.
#[derive(Debug)]
pub struct Names {
    /// The member's path.
    pub path: Vec<u8>,
    /// The member's link target, if the header or an extension names one.
    pub link: Option<Vec<u8>>,
    /// The member's modification time from a PAX `mtime` record (whole seconds, negative
    /// times as 0), overriding the header's.
    pub mtime: Option<u64>,
}

impl Pending {
    /// Takes `entry` if it is an extension header (true), reading its bytes.
    pub fn absorb<R: Read>(&mut self, entry: &mut tar::Entry<R>) -> Result<bool> {
        let kind = entry.header().entry_type();
        let (slot, what) = if kind.is_gnu_longname() {
            (&mut self.long_name, "GNU long name")
        } else if kind.is_gnu_longlink() {
            (&mut self.long_link, "GNU long link")
        } else if kind.is_pax_local_extensions() {
            (&mut self.pax, "PAX extended header")
        } else {
            return Ok(false);
        };
        if slot.is_some() {
            bail!("the release tarball has two {what}s for one entry: it is corrupt");
        }
        let size = entry.size();
        if size > MAX_EXTENSION {
            bail!(
                "the release tarball has a {what} of {size} bytes (at most {MAX_EXTENSION} are \
                 read): it is not a release"
            );
        }
        let mut data = Vec::with_capacity(size as usize);
        entry.read_to_end(&mut data).map_err(corrupt)?;
        *slot = Some(data);
        Ok(true)
    }

    /// The names of `entry` (the member these extensions describe), leaving nothing pending.
    /// Refuses PAX sparse files and a PAX size that differs from the header's.
    pub fn names<R: Read>(&mut self, entry: &tar::Entry<R>) -> Result<Names> {
        let header = entry.header();
        let mut path = match self.long_name.take() {
            Some(mut name) => {
                if name.last() == Some(&0) {
                    name.pop();
                }
                name
            }
            None => header.path_bytes().into_owned(),
        };
        let mut link = match self.long_link.take() {
            Some(mut name) => {
                if name.last() == Some(&0) {
                    name.pop();
                }
                Some(name)
            }
            None => header.link_name_bytes().map(|l| l.into_owned()),
        };
        let mut mtime = None;
        if let Some(pax) = self.pax.take() {
            let shown = String::from_utf8_lossy(&path).into_owned();
            for ext in tar::PaxExtensions::new(&pax) {
                let ext =
                    ext.map_err(|e| anyhow!("release entry `{shown}`: bad PAX header: {e}"))?;
                match ext.key_bytes() {
                    b"path" => path = ext.value_bytes().to_vec(),
                    b"linkpath" => link = Some(ext.value_bytes().to_vec()),
                    b"mtime" => mtime = Some(pax_time(ext.value_bytes(), &shown)?),
                    b"size" => {
                        let size = ext.value().ok().and_then(|v| v.parse::<u64>().ok());
                        if size != Some(entry.size()) {
                            bail!(
                                "release entry `{shown}` has a PAX size that differs from its \
                                 header's; mm-pkg does not read such members"
                            );
                        }
                    }
                    key if key.starts_with(b"GNU.sparse.") => bail!(
                        "release entry `{}` is a sparse file (PAX format); mm-pkg does not \
                         package sparse files",
                        super::names::shown(&shown)
                    ),
                    _ => {}
                }
            }
        }
        Ok(Names { path, link, mtime })
    }

    /// Fails when extension headers describe no member (the archive ended after them).
    pub fn finish(&self) -> Result<()> {
        if self.long_name.is_some() || self.long_link.is_some() || self.pax.is_some() {
            bail!("the release tarball ends with an extension header that describes no entry");
        }
        Ok(())
    }
}

/// A PAX time (`1700000000`, `1700000000.5`, `-5`) as whole seconds since 1970; times
/// before 1970 count as 0.
fn pax_time(value: &[u8], shown: &str) -> Result<u64> {
    let text = std::str::from_utf8(value).unwrap_or("");
    let whole = text.split('.').next().unwrap_or("");
    let digits = whole.strip_prefix('-').unwrap_or(whole);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        bail!(
            "release entry `{}` has a PAX mtime that is not a number: it is corrupt",
            super::names::shown(shown)
        );
    }
    if whole.starts_with('-') {
        return Ok(0);
    }
    Ok(digits.parse::<u64>().unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pax_record(key: &str, value: &str) -> Vec<u8> {
        let body = format!(" {key}={value}\n");
        let mut len = body.len() + 1;
        while format!("{len}{body}").len() != len {
            len += 1;
        }
        format!("{len}{body}").into_bytes()
    }

    fn member(builder: &mut tar::Builder<Vec<u8>>, kind: tar::EntryType, name: &str, data: &[u8]) {
        let mut h = tar::Header::new_ustar();
        h.set_path(name).unwrap();
        h.set_entry_type(kind);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_cksum();
        builder.append(&h, data).unwrap();
    }

    /// Names of every non-extension member of `tar`, or the first error.
    fn read(tar: &[u8]) -> Result<Vec<(String, Option<String>)>> {
        let mut archive = tar::Archive::new(tar);
        let mut pending = Pending::default();
        let mut out = Vec::new();
        for item in archive.entries()?.raw(true) {
            let mut entry = item?;
            if pending.absorb(&mut entry)? {
                continue;
            }
            let names = pending.names(&entry)?;
            out.push((
                String::from_utf8(names.path)?,
                names.link.map(|l| String::from_utf8(l).unwrap()),
            ));
        }
        pending.finish()?;
        Ok(out)
    }

    #[test]
    fn pax_path_and_linkpath_name_the_next_member_only() {
        let mut b = tar::Builder::new(Vec::new());
        let mut pax = pax_record("path", "mattermost/client/a-long-name.js");
        pax.extend(pax_record("mtime", "1700000000.5"));
        member(&mut b, tar::EntryType::XHeader, "PaxHeaders/x", &pax);
        member(&mut b, tar::EntryType::Regular, "short", b"x");
        let link = pax_record("linkpath", "target/from/pax");
        member(&mut b, tar::EntryType::XHeader, "PaxHeaders/l", &link);
        member(&mut b, tar::EntryType::Symlink, "mattermost/l", b"");
        member(&mut b, tar::EntryType::Regular, "mattermost/plain", b"y");
        let names = read(&b.into_inner().unwrap()).unwrap();
        assert_eq!(
            names,
            [
                ("mattermost/client/a-long-name.js".to_string(), None),
                (
                    "mattermost/l".to_string(),
                    Some("target/from/pax".to_string())
                ),
                ("mattermost/plain".to_string(), None),
            ]
        );
    }

    #[test]
    fn oversized_or_dangling_extensions_and_other_sizes_are_refused() {
        let mut b = tar::Builder::new(Vec::new());
        let big = vec![b'a'; MAX_EXTENSION as usize + 1];
        member(&mut b, tar::EntryType::GNULongName, "././@LongLink", &big);
        member(&mut b, tar::EntryType::Regular, "x", b"");
        let err = read(&b.into_inner().unwrap()).unwrap_err().to_string();
        assert!(err.contains("GNU long name of 65537 bytes"), "{err}");

        let mut b = tar::Builder::new(Vec::new());
        member(
            &mut b,
            tar::EntryType::XHeader,
            "p",
            &pax_record("size", "7"),
        );
        member(&mut b, tar::EntryType::Regular, "x", b"abc");
        let err = read(&b.into_inner().unwrap()).unwrap_err().to_string();
        assert!(err.contains("PAX size that differs"), "{err}");

        let mut b = tar::Builder::new(Vec::new());
        member(
            &mut b,
            tar::EntryType::XHeader,
            "p",
            &pax_record("path", "x"),
        );
        let err = read(&b.into_inner().unwrap()).unwrap_err().to_string();
        assert!(err.contains("describes no entry"), "{err}");
    }

    #[test]
    fn pax_mtime_overrides_the_header_in_whole_seconds() {
        assert_eq!(pax_time(b"1700000000.5", "x").unwrap(), 1_700_000_000);
        assert_eq!(pax_time(b"1700000001", "x").unwrap(), 1_700_000_001);
        assert_eq!(pax_time(b"-12.25", "x").unwrap(), 0);
        assert!(pax_time(b"soon", "x").is_err());
        assert!(pax_time(b"", "x").is_err());

        let mut b = tar::Builder::new(Vec::new());
        member(
            &mut b,
            tar::EntryType::XHeader,
            "p",
            &pax_record("mtime", "1700000000.75"),
        );
        member(&mut b, tar::EntryType::Regular, "x", b"");
        member(&mut b, tar::EntryType::Regular, "y", b"");
        let bytes = b.into_inner().unwrap();
        let mut archive = tar::Archive::new(&bytes[..]);
        let mut pending = Pending::default();
        let mut times = Vec::new();
        for item in archive.entries().unwrap().raw(true) {
            let mut entry = item.unwrap();
            if !pending.absorb(&mut entry).unwrap() {
                times.push(pending.names(&entry).unwrap().mtime);
            }
        }
        assert_eq!(times, [Some(1_700_000_000), None]);
    }
}
