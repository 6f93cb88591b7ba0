//! Reads what the yum indexes need from an `.rpm`, checked as rpm checks it, and signs the
//! repository's copy of an rpm that the repository key has not verifiably signed.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};

use super::package::check_token;
use super::yum::check_xml_text;
use crate::rpm::header::{Value, signature_padding, tag};
use crate::rpm::read::{RpmHeaders, StoredHeader, check_digests, read_headers};
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

/// Name, arch and the index fields of the rpm at `path`, read as rpm reads it: the lead and
/// both headers checked entry by entry, the header against its digests, the payload read to
/// its end against its digest and size, and every value the indexes carry checked (see
/// [`RpmInfo::check`]). Anything else is refused, naming the file and the problem.
pub fn read(path: &Path) -> Result<(String, String, RpmInfo)> {
    let refused = || format!("{} cannot be published", path.display());
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut reader = BufReader::new(file);
    let headers = read_headers(&mut reader)
        .with_context(|| format!("{} is not a readable .rpm", path.display()))?;
    check_digests(&headers, &mut reader).with_context(refused)?;
    info(&headers).with_context(refused)
}

/// A string the indexes carry: absent is empty; another type, bytes that are not UTF-8 or
/// characters XML cannot carry are refused.
fn text(h: &StoredHeader, tag: u32, what: &str) -> Result<String> {
    let value = h.text(tag).with_context(|| format!("its {what}"))?;
    Ok(value.unwrap_or_default())
}

/// A string array (`what` in messages).
fn texts(h: &StoredHeader, tag: u32, what: &str) -> Result<Vec<String>> {
    h.texts(tag).with_context(|| format!("its {what}"))
}

/// An integer array (`what` in messages).
fn numbers(h: &StoredHeader, tag: u32, what: &str) -> Result<Vec<u64>> {
    h.ints(tag).with_context(|| format!("its {what}"))
}

/// Refuses arrays that describe one list (files, dependencies) but differ in length.
fn same_length(what: &str, lens: &[usize]) -> Result<()> {
    if lens.windows(2).any(|w| w[0] != w[1]) {
        bail!("its {what} arrays differ in length ({lens:?}): the header is inconsistent");
    }
    Ok(())
}

fn info(headers: &RpmHeaders) -> Result<(String, String, RpmInfo)> {
    let h = &headers.header;
    let first = |tag, what| -> Result<Option<u64>> { Ok(numbers(h, tag, what)?.first().copied()) };
    let name = text(h, tag::NAME, "name")?;
    let arch = text(h, tag::ARCH, "architecture")?;
    if !h.has(tag::SOURCERPM) {
        bail!("it is a source package (no SOURCERPM): a yum repository of binaries cannot hold it");
    }
    let basenames = texts(h, tag::BASENAMES, "file names")?;
    let dirs = texts(h, tag::DIRNAMES, "directory names")?;
    let dir_indexes = numbers(h, tag::DIRINDEXES, "directory indexes")?;
    let modes = numbers(h, tag::FILEMODES, "file modes")?;
    let fflags = numbers(h, tag::FILEFLAGS, "file flags")?;
    let n = basenames.len();
    same_length("file", &[n, dir_indexes.len(), modes.len(), fflags.len()])?;
    let mut files = Vec::with_capacity(n);
    for (i, base) in basenames.into_iter().enumerate() {
        let dir = dirs.get(dir_indexes[i] as usize).ok_or_else(|| {
            anyhow!(
                "its file `{}` names directory {} of {}",
                base.escape_debug(),
                dir_indexes[i],
                dirs.len()
            )
        })?;
        let kind = if modes[i] & 0o170000 == 0o040000 {
            "dir"
        } else if fflags[i] & (1 << 6) != 0 {
            "ghost"
        } else {
            ""
        };
        files.push((format!("{dir}{base}"), kind.to_string()));
    }
    let deps = |names, flags, versions, what: &str| -> Result<Vec<Dep>> {
        let names = texts(h, names, what)?;
        let flags = numbers(h, flags, what)?;
        let versions = texts(h, versions, what)?;
        same_length(what, &[names.len(), flags.len(), versions.len()])?;
        Ok(names
            .into_iter()
            .zip(flags)
            .zip(versions)
            .map(|((name, f), version)| Dep {
                name,
                flags: flag_name(f as u32).to_string(),
                evr: split_evr(&version),
                pre: f & (0x40 | 0x200 | 0x400) != 0,
            })
            .collect())
    };
    let provides = deps(
        tag::PROVIDENAME,
        tag::PROVIDEFLAGS,
        tag::PROVIDEVERSION,
        "provides",
    )?;
    // As createrepo_c: no rpmlib(), no own primary files, nothing provided, no duplicates.
    let mut requires: Vec<Dep> = Vec::new();
    let all_requires = deps(
        tag::REQUIRENAME,
        tag::REQUIREFLAGS,
        tag::REQUIREVERSION,
        "requires",
    )?;
    for d in all_requires {
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
    let payload_size = numbers(&headers.signature, tag::SIG_PAYLOADSIZE, "payload size")?;
    let archive_size = match payload_size.first() {
        Some(size) => *size,
        None => first(tag::ARCHIVESIZE, "archive size")?.unwrap_or(0),
    };
    let authors = texts(h, tag::CHANGELOGNAME, "changelog")?;
    let entries = texts(h, tag::CHANGELOGTEXT, "changelog")?;
    let times = numbers(h, tag::CHANGELOGTIME, "changelog")?;
    same_length("changelog", &[authors.len(), entries.len(), times.len()])?;
    let changelog = authors
        .into_iter()
        .zip(entries)
        .zip(times)
        .map(|((a, t), time)| (a.trim_end().to_string(), time, t))
        .collect();
    let info = RpmInfo {
        epoch: first(tag::EPOCH, "epoch")?.unwrap_or(0).to_string(),
        ver: text(h, tag::VERSION, "version")?,
        rel: text(h, tag::RELEASE, "release")?,
        summary: text(h, tag::SUMMARY, "summary")?,
        description: text(h, tag::DESCRIPTION, "description")?,
        packager: text(h, tag::PACKAGER, "packager")?,
        url: text(h, tag::URL, "URL")?,
        build_time: first(tag::BUILDTIME, "build time")?.unwrap_or(0),
        installed_size: first(tag::SIZE, "size")?.unwrap_or(0),
        archive_size,
        license: text(h, tag::LICENSE, "licence")?,
        vendor: text(h, tag::VENDOR, "vendor")?,
        group: text(h, tag::GROUP, "group")?,
        buildhost: text(h, tag::BUILDHOST, "build host")?,
        sourcerpm: text(h, tag::SOURCERPM, "source rpm")?,
        header_range: (headers.header_start, headers.header_end),
        provides,
        requires,
        conflicts: deps(
            tag::CONFLICTNAME,
            tag::CONFLICTFLAGS,
            tag::CONFLICTVERSION,
            "conflicts",
        )?,
        obsoletes: deps(
            tag::OBSOLETENAME,
            tag::OBSOLETEFLAGS,
            tag::OBSOLETEVERSION,
            "obsoletes",
        )?,
        recommends: deps(
            tag::RECOMMENDNAME,
            tag::RECOMMENDFLAGS,
            tag::RECOMMENDVERSION,
            "recommends",
        )?,
        suggests: deps(
            tag::SUGGESTNAME,
            tag::SUGGESTFLAGS,
            tag::SUGGESTVERSION,
            "suggests",
        )?,
        files,
        changelog,
    };
    check_names(&name, &arch, &info)?;
    info.check()?;
    Ok((name, arch, info))
}

/// Refuses a name, version, release or architecture that could not be a safe file-name part
/// (the pool file is `<name>-<version>-<release>.<arch>.rpm`).
pub fn check_names(name: &str, arch: &str, info: &RpmInfo) -> Result<()> {
    check_token("name", name, "+._-")?;
    check_token("version", &info.ver, "._+~^")?;
    check_token("release", &info.rel, "._+~^")?;
    check_token("architecture", arch, "_")?;
    if !info.epoch.bytes().all(|b| b.is_ascii_digit()) || info.epoch.is_empty() {
        bail!("the package's epoch `{}` is not a number", info.epoch);
    }
    Ok(())
}

impl RpmInfo {
    /// Checks every value the yum indexes will carry, as on first read: each string is one
    /// XML 1.0 can carry (no C0 control but tab, newline and carriage return, no U+FFFE or
    /// U+FFFF: one such character makes dnf refuse the whole repository), and each file path is
    /// absolute and normalized (no `.` or `..` component, no empty one).
    pub fn check(&self) -> Result<()> {
        let deps = [
            ("provides", &self.provides),
            ("requires", &self.requires),
            ("conflicts", &self.conflicts),
            ("obsoletes", &self.obsoletes),
            ("recommends", &self.recommends),
            ("suggests", &self.suggests),
        ];
        let fields = [
            ("epoch", &self.epoch),
            ("version", &self.ver),
            ("release", &self.rel),
            ("summary", &self.summary),
            ("description", &self.description),
            ("packager", &self.packager),
            ("URL", &self.url),
            ("licence", &self.license),
            ("vendor", &self.vendor),
            ("group", &self.group),
            ("build host", &self.buildhost),
            ("source rpm", &self.sourcerpm),
        ];
        for (what, value) in fields {
            check_xml_text(what, value)?;
        }
        for (what, list) in deps {
            for d in list {
                let (e, v, r) = &d.evr;
                for value in [&d.name, e, v, r] {
                    check_xml_text(what, value)?;
                }
                if d.name.is_empty() {
                    bail!("its {what} list has an empty name");
                }
            }
        }
        for (path, _) in &self.files {
            check_xml_text("file list", path)?;
            let normal = path == "/"
                || path.starts_with('/')
                    && path[1..]
                        .split('/')
                        .all(|part| !part.is_empty() && part != "." && part != "..");
            if !normal {
                bail!(
                    "its file list names `{}`, which is not an absolute, normalized path                      (a package whose files escape their place is refused)",
                    path.escape_debug()
                );
            }
        }
        for (author, _, text) in &self.changelog {
            check_xml_text("changelog", author)?;
            check_xml_text("changelog", text)?;
        }
        Ok(())
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

/// Signature-header tags that hold OpenPGP signatures: over the main header (RSAHEADER,
/// DSAHEADER, rpm 6's OPENPGP list) or, in old packages, over header and payload (PGP, GPG).
const SIGNATURE_TAGS: [u32; 5] = [
    tag::SIG_RSAHEADER,
    tag::SIG_DSAHEADER,
    tag::SIG_OPENPGP,
    tag::SIG_PGP,
    tag::SIG_GPG,
];

/// True when every OpenPGP signature in `headers` is a header signature that `signer`'s key
/// made over this main header, and there is at least one. A signature that only names the
/// key (issuer ID or fingerprint) but does not verify, or any other signature beside it, is
/// not kept: the copy is signed again.
fn signed_by(headers: &RpmHeaders, signer: &Signer) -> bool {
    let sig = &headers.signature;
    let mut good = 0;
    for t in SIGNATURE_TAGS {
        match sig.value(t) {
            None => {}
            Some(Value::Bin(packet))
                if [tag::SIG_RSAHEADER, tag::SIG_DSAHEADER].contains(&t)
                    && signer.made(&packet, &headers.header.bytes) =>
            {
                good += 1
            }
            Some(_) => return false,
        }
    }
    good > 0
}

/// Copies the rpm at `from` to `to`, replacing its signatures by one header signature from
/// `signer` unless `signer` verifiably made the only ones it carries. Returns whether it
/// signed.
pub fn copy_signed(from: &Path, to: &mut impl Write, signer: Option<&Signer>) -> Result<bool> {
    let file = File::open(from).with_context(|| format!("opening {}", from.display()))?;
    let mut reader = BufReader::new(file);
    let headers = read_headers(&mut reader)
        .with_context(|| format!("{} is not a readable .rpm", from.display()))?;
    let mut out = BufWriter::new(to);
    let signed = match signer {
        Some(signer) if !signed_by(&headers, signer) => {
            let mut sig = headers.signature.to_header(tag::HEADERSIGNATURES)?;
            for old in SIGNATURE_TAGS {
                sig.remove(old);
            }
            let (sig_tag, packet) = crate::rpm::HeaderSigner::sign_header(
                signer,
                &headers.header.bytes,
                signer.signature_time(),
            )?;
            sig.set(sig_tag, Value::Bin(packet));
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
