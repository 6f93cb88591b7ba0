//! Reads what the apt index needs from a `.deb` (its control fields), after checking the
//! whole file as dpkg would read it: the ar members in dpkg's order with sizes that fit the
//! file ([`ar`]), a control archive of bounded size holding one control file that parses
//! as dpkg parses it ([`control`]), and a data archive readable to its end. A truncated
//! file, an archive that decompresses to gigabytes or a control file apt and dpkg would read
//! differently is refused before anything is written, naming the file and the problem.

mod ar;
mod control;

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use sha2::{Digest, Sha256};

use super::package::{FileDigests, PackageInfo, check_token, deb_location};
use super::version;
use ar::ArReader;
pub use control::{MAX_CONTROL_BYTES, check_package_fields, parse_control, read_paragraph};

/// Most bytes the control archive may decompress to (real ones hold a few KiB to a few MiB:
/// the control file, maintainer scripts, md5sums). A larger one is refused as soon as it
/// passes this, so a decompression bomb costs milliseconds and no memory.
pub const MAX_CONTROL_ARCHIVE: u64 = 64 << 20;
/// Most bytes the data archive may decompress to (Mattermost's is about 1.5 GiB).
pub const MAX_DATA_ARCHIVE: u64 = 32 << 30;
/// Largest tar extension record (a long name or pax header) read into memory.
const MAX_TAR_EXTENSION: u64 = 1 << 20;

/// How much of a `.deb` [`inspect`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// Every member, the data archive decompressed and walked to its end (`repo add`).
    Whole,
    /// The ar structure and the control archive; the data member's bytes are read but not
    /// decompressed (`repo verify`, whose digests already cover what `repo add` checked).
    Structure,
}

/// Reads `path`'s control fields after checking the whole file (see the module); `digests`
/// are the file's, computed before: the bytes checked must be the bytes digested. `component`
/// places the repository's copy.
pub fn read(path: &Path, digests: FileDigests, component: &str) -> Result<PackageInfo> {
    let Inspected {
        control,
        size,
        sha256,
    } = inspect(path, Depth::Whole)?;
    if size != digests.size || sha256 != digests.sha256 {
        bail!("{} changed while it was read: try again", path.display());
    }
    let field = |name: &str| {
        control
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .ok_or_else(|| anyhow!("{}: the control file has no {name} field", path.display()))
    };
    let (name, version, arch) = (field("Package")?, field("Version")?, field("Architecture")?);
    check_names(&name, &version, &arch).with_context(|| path.display().to_string())?;
    let location = deb_location(component, &name, &version, &arch);
    let info = PackageInfo {
        name,
        version,
        arch,
        location,
        digests,
        control,
        rpm: None,
    };
    info.check().with_context(|| path.display().to_string())?;
    Ok(info)
}

/// Refuses a package name dpkg does not accept or Debian Policy (5.6.1) does not allow
/// (lower-case letters, digits and `+-.`, starting with a letter or digit: apt takes names
/// that differ only in case for one package, and `_` would make pool file names ambiguous),
/// a version dpkg does not accept, and an architecture dpkg does not accept (letters, digits
/// and `-`).
pub fn check_names(name: &str, version: &str, arch: &str) -> Result<()> {
    let lower = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b));
    if !lower || !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        bail!(
            "the package name `{}` is not one Debian allows (lower-case letters, digits and \
             +-., starting with a letter or digit)",
            name.escape_debug()
        );
    }
    version::check_deb(version)?;
    check_token("architecture", arch, "-")
}

/// What [`inspect`] found in a `.deb`.
#[derive(Debug, Clone)]
pub struct Inspected {
    /// The control fields, checked.
    pub control: Vec<(String, String)>,
    /// Size of the bytes checked.
    pub size: u64,
    /// SHA-256 of the bytes checked, lower-case hex.
    pub sha256: String,
}

/// Checks the `.deb` at `path` to `depth`.
pub fn inspect(path: &Path, depth: Depth) -> Result<Inspected> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hashed = Hashed::new(BufReader::with_capacity(1 << 20, file));
    let control = members(&mut hashed, depth).with_context(|| {
        format!(
            "{} is not a .deb that dpkg and apt read alike",
            path.display()
        )
    })?;
    let (size, sha256) = hashed.finish();
    Ok(Inspected {
        control,
        size,
        sha256,
    })
}

/// Walks the ar members in dpkg's order and returns the checked control fields.
fn members(r: &mut impl Read, depth: Depth) -> Result<Vec<(String, String)>> {
    let mut ar = ArReader::new(r)?;
    let Some((first, _)) = ar.next_member()? else {
        bail!("the ar archive is empty");
    };
    if first != "debian-binary" {
        bail!("its first member is `{first}`, not debian-binary");
    }
    let mut format = Vec::new();
    (&mut ar).take(64).read_to_end(&mut format)?;
    if ar.remaining() > 0 || !format.starts_with(b"2.") || !format.ends_with(b"\n") {
        bail!("debian-binary does not say format 2.x");
    }
    let mut control = None;
    let mut data = false;
    while let Some((name, _)) = ar.next_member()? {
        if name.starts_with('_') {
            continue; // dpkg ignores members named `_*` (signatures such as _gpgorigin).
        }
        if let Some(ext) = name.strip_prefix("control.tar") {
            if control.is_some() || data {
                bail!(
                    "member {name} is out of place (dpkg wants control.tar before data.tar, once)"
                );
            }
            let text = read_control_archive(decoder(ext, &mut ar, &name)?, &name)?;
            let fields = parse_control(&text).context("the control file")?;
            check_package_fields(&fields).context("the control file")?;
            control = Some(fields);
        } else if let Some(ext) = name.strip_prefix("data.tar") {
            if control.is_none() || data {
                bail!(
                    "member {name} is out of place (dpkg wants control.tar before data.tar, once)"
                );
            }
            if depth == Depth::Whole {
                let decoded = Limited::new(decoder(ext, &mut ar, &name)?, MAX_DATA_ARCHIVE, &name);
                walk_tar(decoded, &name, |_, _| Ok(()))?;
            }
            data = true;
        } else {
            bail!("it holds a member `{name}` dpkg does not know");
        }
        if ar.remaining() > 0 && depth == Depth::Whole {
            bail!(
                "{} bytes follow the compressed data in member {name}",
                ar.remaining()
            );
        }
    }
    match (control, data) {
        (Some(fields), true) => Ok(fields),
        (None, _) => bail!("it has no control.tar member"),
        (_, false) => bail!("it has no data.tar member"),
    }
}

/// A decompressing reader for a member named `name` ending in `ext` after `.tar`, as dpkg
/// reads them: concatenated gzip members, concatenated xz streams, zstd frames.
fn decoder<'a>(ext: &str, r: &'a mut impl Read, name: &str) -> Result<Box<dyn Read + 'a>> {
    Ok(match ext {
        "" => Box::new(r),
        ".gz" => Box::new(flate2::read::MultiGzDecoder::new(r)),
        ".xz" => Box::new(liblzma::read::XzDecoder::new_multi_decoder(r)),
        ".zst" => Box::new(zstd::stream::read::Decoder::new(r)?),
        _ => bail!("member {name} has a compression mm-pkg does not read (gzip, xz, zstd or none)"),
    })
}

/// The control file from the control archive `r` (member `name`): exactly one `./control`,
/// no path named twice, nothing but regular files and the top directory.
fn read_control_archive(r: impl Read, name: &str) -> Result<String> {
    let mut text = None;
    let mut seen = HashSet::new();
    walk_tar(
        Limited::new(r, MAX_CONTROL_ARCHIVE, name),
        name,
        |path, entry| {
            if path.is_empty() {
                return Ok(());
            }
            if !seen.insert(path.to_string()) {
                bail!("{name} holds {path} twice (dpkg would use the last, the index the first)");
            }
            if entry.header().entry_type() != tar::EntryType::Regular {
                bail!("{name} holds {path}, which is not a regular file");
            }
            if path == "control" {
                let size = entry.header().size()?;
                if size > MAX_CONTROL_BYTES as u64 {
                    bail!(
                        "its control file is {size} bytes; more than {MAX_CONTROL_BYTES} is refused"
                    );
                }
                let mut bytes = Vec::with_capacity(size as usize);
                entry.read_to_end(&mut bytes)?;
                let s = String::from_utf8(bytes)
                    .map_err(|_| anyhow!("its control file is not UTF-8"))?;
                text = Some(s);
            }
            Ok(())
        },
    )?;
    text.ok_or_else(|| anyhow!("{name} has no control file"))
}

/// Walks the tar archive `r` (member `name`) to its end and past it, calling `visit` with each
/// entry's path (without `./`; empty for the top directory). Refuses a path that is absolute
/// or climbs with `..`, and a long-name or pax record larger than [`MAX_TAR_EXTENSION`]
/// (read into memory). Reads whatever follows the end-of-archive blocks, so that the
/// decompressor checks its own end (the CRC of gzip and xz, zstd's frames).
fn walk_tar<R: Read>(
    r: R,
    name: &str,
    mut visit: impl FnMut(&str, &mut tar::Entry<'_, R>) -> Result<()>,
) -> Result<()> {
    let mut archive = tar::Archive::new(r);
    let mut long_name: Option<Vec<u8>> = None;
    for entry in archive
        .entries()
        .with_context(|| format!("reading {name}"))?
        .raw(true)
    {
        let mut entry = entry.with_context(|| format!("{name} is damaged"))?;
        let kind = entry.header().entry_type();
        if kind.is_gnu_longname()
            || kind.is_gnu_longlink()
            || kind.is_pax_local_extensions()
            || kind.is_pax_global_extensions()
        {
            let size = entry.header().size()?;
            if size > MAX_TAR_EXTENSION {
                bail!("{name} holds a tar extension record of {size} bytes");
            }
            let mut record = Vec::new();
            entry.read_to_end(&mut record)?;
            if kind.is_gnu_longname() {
                let end = record.iter().position(|b| *b == 0).unwrap_or(record.len());
                long_name = Some(record[..end].to_vec());
            } else if kind.is_pax_local_extensions() {
                for ext in tar::PaxExtensions::new(&record) {
                    let ext = ext.with_context(|| format!("{name}: a damaged pax record"))?;
                    if ext.key_bytes() == b"path" {
                        long_name = Some(ext.value_bytes().to_vec());
                    }
                }
            }
            continue;
        }
        let raw = long_name
            .take()
            .unwrap_or_else(|| entry.header().path_bytes().into_owned());
        let path = std::str::from_utf8(&raw)
            .map_err(|_| anyhow!("{name} holds a path that is not UTF-8"))?;
        let relative = path
            .strip_prefix("./")
            .unwrap_or(path)
            .trim_end_matches('/');
        let relative = if relative == "." { "" } else { relative };
        if path.starts_with('/') || relative.split('/').any(|part| part == "..") {
            bail!(
                "{name} holds the path `{}`, which escapes the package",
                path.escape_debug()
            );
        }
        visit(relative, &mut entry).with_context(|| format!("{name} is damaged"))?;
    }
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink())
        .with_context(|| format!("{name} is damaged at its end"))?;
    Ok(())
}

/// A reader that fails once more than `limit` bytes came through.
struct Limited<R> {
    inner: R,
    left: u64,
    limit: u64,
    name: String,
}

impl<R: Read> Limited<R> {
    fn new(inner: R, limit: u64, name: &str) -> Self {
        Limited {
            inner,
            left: limit,
            limit,
            name: name.to_string(),
        }
    }
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            return Err(io::Error::other(format!(
                "{} decompresses to more than {} MiB: refused",
                self.name,
                self.limit >> 20
            )));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// A reader that digests (SHA-256) and counts every byte it passes on.
struct Hashed<R> {
    inner: R,
    sha256: Sha256,
    size: u64,
}

impl<R: Read> Hashed<R> {
    fn new(inner: R) -> Self {
        Hashed {
            inner,
            sha256: Sha256::new(),
            size: 0,
        }
    }

    /// Reads what is left (so the digest covers the whole file) and returns size and SHA-256.
    fn finish(mut self) -> (u64, String) {
        let _ = io::copy(&mut self, &mut io::sink());
        (self.size, hex::encode(self.sha256.finalize()))
    }
}

impl<R: Read> Read for Hashed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sha256.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}
