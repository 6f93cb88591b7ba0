//! Reads what the yum indexes need from an `.rpm` (its headers only), and signs the
//! repository's copy of an rpm that the repository key has not signed.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result, anyhow};
use serde::{Deserialize, Serialize};

use super::package::check_token;
use crate::rpm::header::{signature_padding, tag};
use crate::rpm::read::{RpmHeaders, StoredHeader, read_headers};
use crate::sign::Signer;

/// A dependency as primary.xml writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dep {
    /// Name.
    pub name: String,
    /// `EQ`, `LT`, `GT`, `LE`, `GE` or empty.
    pub flags: String,
    /// Epoch, version, release of the constraint (empty when none).
    pub evr: (String, String, String),
    /// A scriptlet needs it (`pre="1"`).
    pub pre: bool,
}

/// What primary, filelists and other need from one rpm.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RpmInfo {
    /// Epoch (`0` when none).
    pub epoch: String,
    /// Version.
    pub ver: String,
    /// Release.
    pub rel: String,
    /// Summary.
    pub summary: String,
    /// Description.
    pub description: String,
    /// Packager.
    pub packager: String,
    /// URL.
    pub url: String,
    /// Build time.
    pub build_time: u64,
    /// Installed size.
    pub installed_size: u64,
    /// Payload (cpio) size.
    pub archive_size: u64,
    /// Licence.
    pub license: String,
    /// Vendor.
    pub vendor: String,
    /// Group.
    pub group: String,
    /// Build host.
    pub buildhost: String,
    /// Source rpm.
    pub sourcerpm: String,
    /// Offsets of the main header.
    pub header_range: (u64, u64),
    /// Provides.
    pub provides: Vec<Dep>,
    /// Requires (without rpmlib() and the package's own files or provides).
    pub requires: Vec<Dep>,
    /// Conflicts.
    pub conflicts: Vec<Dep>,
    /// Obsoletes.
    pub obsoletes: Vec<Dep>,
    /// Recommends.
    pub recommends: Vec<Dep>,
    /// Suggests.
    pub suggests: Vec<Dep>,
    /// Files: path and `dir`, `ghost` or empty.
    pub files: Vec<(String, String)>,
    /// Changelog: author, time, text.
    pub changelog: Vec<(String, u64, String)>,
}

/// Name, arch and the index fields of the rpm at `path`.
pub fn read(path: &Path) -> Result<(String, String, RpmInfo)> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let headers = read_headers(&mut BufReader::new(file))
        .with_context(|| format!("{} is not a readable .rpm", path.display()))?;
    let info = info(&headers);
    let h = &headers.header;
    let name = h.string(tag::NAME).unwrap_or_default();
    let arch = h.string(tag::ARCH).unwrap_or_default();
    check_token("name", &name, "+._-")?;
    check_token("version", &info.ver, "._+~^")?;
    check_token("release", &info.rel, "._+~^")?;
    check_token("architecture", &arch, "_")?;
    Ok((name, arch, info))
}

fn info(headers: &RpmHeaders) -> RpmInfo {
    let h = &headers.header;
    let s = |t| h.string(t).unwrap_or_default();
    let n = |t| h.numbers(t).first().copied().map(u64::from);
    let dirs = h.strings(tag::DIRNAMES);
    let modes = h.numbers(tag::FILEMODES);
    let fflags = h.numbers(tag::FILEFLAGS);
    let files: Vec<(String, String)> = h
        .strings(tag::BASENAMES)
        .into_iter()
        .zip(h.numbers(tag::DIRINDEXES))
        .enumerate()
        .map(|(i, (base, dir))| {
            let path = format!("{}{base}", dirs.get(dir as usize).map_or("", |d| d));
            let kind = if modes.get(i).is_some_and(|m| m & 0o170000 == 0o040000) {
                "dir"
            } else if fflags.get(i).is_some_and(|f| f & (1 << 6) != 0) {
                "ghost"
            } else {
                ""
            };
            (path, kind.to_string())
        })
        .collect();
    let deps = |names, flags, versions| -> Vec<Dep> {
        let flags = h.numbers(flags);
        let versions = h.strings(versions);
        h.strings(names)
            .into_iter()
            .enumerate()
            .map(|(i, name)| {
                let f = flags.get(i).copied().unwrap_or(0);
                Dep {
                    name,
                    flags: flag_name(f).to_string(),
                    evr: split_evr(versions.get(i).map_or("", |v| v)),
                    pre: f & (0x40 | 0x200 | 0x400) != 0,
                }
            })
            .collect()
    };
    let provides = deps(tag::PROVIDENAME, tag::PROVIDEFLAGS, tag::PROVIDEVERSION);
    // As createrepo_c: no rpmlib(), no own primary files, nothing provided, no duplicates.
    let mut requires: Vec<Dep> = Vec::new();
    for d in deps(tag::REQUIRENAME, tag::REQUIREFLAGS, tag::REQUIREVERSION) {
        let own_file = files.iter().any(|(p, _)| *p == d.name) && is_primary_file(&d.name);
        if d.name.starts_with("rpmlib(")
            || own_file
            || provides.iter().any(|p| p.name == d.name)
            || requires.contains(&d)
        {
            continue;
        }
        requires.push(d);
    }
    let sig = &headers.signature;
    let archive_size = sig
        .numbers(tag::SIG_PAYLOADSIZE)
        .first()
        .copied()
        .map(u64::from)
        .or_else(|| n(tag::ARCHIVESIZE))
        .unwrap_or(0);
    let times = h.numbers(tag::CHANGELOGTIME);
    let changelog = h
        .strings(tag::CHANGELOGNAME)
        .into_iter()
        .zip(h.strings(tag::CHANGELOGTEXT))
        .zip(times)
        .map(|((a, t), time)| (a.trim_end().to_string(), u64::from(time), t))
        .collect();
    RpmInfo {
        epoch: n(tag::EPOCH).unwrap_or(0).to_string(),
        ver: s(tag::VERSION),
        rel: s(tag::RELEASE),
        summary: s(tag::SUMMARY),
        description: s(tag::DESCRIPTION),
        packager: s(tag::PACKAGER),
        url: s(tag::URL),
        build_time: n(tag::BUILDTIME).unwrap_or(0),
        installed_size: n(tag::SIZE).unwrap_or(0),
        archive_size,
        license: s(tag::LICENSE),
        vendor: s(tag::VENDOR),
        group: s(tag::GROUP),
        buildhost: s(tag::BUILDHOST),
        sourcerpm: s(tag::SOURCERPM),
        header_range: (headers.header_start, headers.header_end),
        provides,
        requires,
        conflicts: deps(tag::CONFLICTNAME, tag::CONFLICTFLAGS, tag::CONFLICTVERSION),
        obsoletes: deps(tag::OBSOLETENAME, tag::OBSOLETEFLAGS, tag::OBSOLETEVERSION),
        recommends: deps(
            tag::RECOMMENDNAME,
            tag::RECOMMENDFLAGS,
            tag::RECOMMENDVERSION,
        ),
        suggests: deps(tag::SUGGESTNAME, tag::SUGGESTFLAGS, tag::SUGGESTVERSION),
        files,
        changelog,
    }
}

/// Files createrepo_c lists in primary.xml (the rest only in filelists.xml).
pub fn is_primary_file(path: &str) -> bool {
    path.starts_with("/etc/") || path == "/usr/lib/sendmail" || path.contains("bin/")
}

fn flag_name(flags: u32) -> &'static str {
    match flags & 0xe {
        0x2 => "LT",
        0x4 => "GT",
        0x8 => "EQ",
        0xa => "LE",
        0xc => "GE",
        _ => "",
    }
}

/// `[epoch:]version[-release]` split as createrepo_c does (epoch `0` when a version is given).
fn split_evr(evr: &str) -> (String, String, String) {
    if evr.is_empty() {
        return Default::default();
    }
    let (epoch, rest) = match evr.split_once(':') {
        Some((e, r)) if e.chars().all(|c| c.is_ascii_digit()) => (e.to_string(), r),
        _ => ("0".to_string(), evr),
    };
    let (ver, rel) = match rest.rsplit_once('-') {
        Some((v, r)) => (v.to_string(), r.to_string()),
        None => (rest.to_string(), String::new()),
    };
    (epoch, ver, rel)
}

/// True when `sig`'s OpenPGP header signature was made by `signer`.
fn signed_by(sig: &StoredHeader, signer: &Signer) -> bool {
    [tag::SIG_RSAHEADER, tag::SIG_DSAHEADER]
        .into_iter()
        .filter_map(|t| match sig.value(t) {
            Some(crate::rpm::header::Value::Bin(b)) => Some(b),
            _ => None,
        })
        .any(|packet| signer.issued(&packet))
}

/// Copies the rpm at `from` to `to`, replacing its header signatures by one from `signer`
/// unless `signer` already signed it. Returns whether it signed.
pub fn copy_signed(from: &Path, to: &mut impl Write, signer: Option<&Signer>) -> Result<bool> {
    let file = File::open(from).with_context(|| format!("opening {}", from.display()))?;
    let mut reader = BufReader::new(file);
    let headers = read_headers(&mut reader)
        .with_context(|| format!("{} is not a readable .rpm", from.display()))?;
    let mut out = BufWriter::new(to);
    let signed = match signer {
        Some(signer) if !signed_by(&headers.signature, signer) => {
            let mut sig = headers.signature.to_header(tag::HEADERSIGNATURES)?;
            for old in [
                tag::SIG_RSAHEADER,
                tag::SIG_DSAHEADER,
                tag::SIG_PGP,
                tag::SIG_GPG,
            ] {
                sig.remove(old);
            }
            let (sig_tag, packet) = crate::rpm::HeaderSigner::sign_header(
                signer,
                &headers.header.bytes,
                signer.signature_time(),
            )?;
            sig.set(sig_tag, crate::rpm::header::Value::Bin(packet));
            let bytes = sig.to_bytes(tag::HEADERSIGNATURES);
            out.write_all(&headers.lead)?;
            out.write_all(&bytes)?;
            out.write_all(&vec![0u8; signature_padding(bytes.len())])?;
            true
        }
        _ => {
            out.write_all(&headers.lead)?;
            out.write_all(&headers.signature.bytes)?;
            out.write_all(&vec![0u8; signature_padding(headers.signature.bytes.len())])?;
            false
        }
    };
    out.write_all(&headers.header.bytes)?;
    io::copy(&mut reader, &mut out).with_context(|| format!("copying {}", from.display()))?;
    out.flush()
        .map_err(|e| anyhow!("writing the rpm copy: {e}"))?;
    Ok(signed)
}
