//! What a repository index needs to know about one package file, whatever its format.
//!
//! A per-format reader ([`super::deb`], [`super::rpm`]) fills one [`PackageInfo`]; the index writers
//! ([`super::apt`], [`super::yum`]) consume it and never open the package again. The repository keeps these
//! records in its state file, so adding one package does not re-read the others.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, bail};
use md5::Md5;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha512};

/// Digests and size of a package file, computed in one read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileDigests {
    /// Size in bytes.
    pub size: u64,
    /// MD5, lower-case hex (apt still lists it).
    pub md5: String,
    /// SHA-256, lower-case hex (the package's identity in the repository).
    pub sha256: String,
    /// SHA-512, lower-case hex.
    pub sha512: String,
}

impl FileDigests {
    /// Reads `path` once and digests it.
    pub fn of_file(path: &Path) -> Result<Self> {
        let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        Self::of_reader(file, path)
    }

    /// Reads `file` (opened from `path`) to its end once and digests it.
    pub fn of_reader(mut file: impl Read, path: &Path) -> Result<Self> {
        let (mut md5, mut sha256, mut sha512) = (Md5::new(), Sha256::new(), Sha512::new());
        let mut size = 0u64;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file
                .read(&mut buf)
                .with_context(|| format!("reading {}", path.display()))?;
            if n == 0 {
                break;
            }
            size += n as u64;
            md5.update(&buf[..n]);
            sha256.update(&buf[..n]);
            sha512.update(&buf[..n]);
        }
        Ok(FileDigests {
            size,
            md5: hex::encode(md5.finalize()),
            sha256: hex::encode(sha256.finalize()),
            sha512: hex::encode(sha512.finalize()),
        })
    }
}

/// One package as the indexes see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageInfo {
    /// Package name.
    pub name: String,
    /// Version as the format writes it (`9.11.90-1`).
    pub version: String,
    /// Architecture as the format names it (`amd64`, `x86_64`).
    pub arch: String,
    /// Path of the repository's copy, relative to the format's root (`pool/main/m/...`).
    pub location: String,
    /// Size and digests of the repository's copy.
    pub digests: FileDigests,
    /// The .deb's control fields in their order (name, value; multi-line values keep their
    /// continuation lines); empty for an rpm.
    #[serde(default)]
    pub control: Vec<(String, String)>,
    /// The rpm's index fields; `None` for a .deb.
    #[serde(default)]
    pub rpm: Option<super::rpm::RpmInfo>,
}

/// Refuses a name, version or architecture that could not be a safe file-name part.
pub fn check_token(what: &str, value: &str, extra: &str) -> Result<()> {
    let ok = !value.is_empty()
        && !value.starts_with(['.', '-'])
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || extra.contains(c));
    if !ok {
        bail!("the package's {what} `{value}` has characters a repository path cannot take");
    }
    Ok(())
}

/// Where the repository keeps a .deb, relative to `apt/`, as apt-ftparchive and reprepro
/// lay out a pool: `pool/<component>/<letter>/<name>/<name>_<version>_<arch>.deb`, the
/// version without its epoch (so `2.0-1` and `1:2.0-1` would share a file).
pub fn deb_location(component: &str, name: &str, version: &str, arch: &str) -> String {
    let letter = if name.starts_with("lib") && name.len() > 3 {
        &name[..4]
    } else {
        &name[..1]
    };
    let upstream = version.split_once(':').map_or(version, |(_, v)| v);
    format!("pool/{component}/{letter}/{name}/{name}_{upstream}_{arch}.deb")
}

/// Where the repository keeps an .rpm, relative to `yum/`: `Packages/<n>-<v>-<r>.<a>.rpm`.
pub fn rpm_location(name: &str, ver: &str, rel: &str, arch: &str) -> String {
    format!("Packages/{name}-{ver}-{rel}.{arch}.rpm")
}

impl FileDigests {
    /// Refuses digests that are not lower-case hex of the right lengths.
    fn check(&self) -> Result<()> {
        for (name, value, len) in [
            ("MD5", &self.md5, 32),
            ("SHA-256", &self.sha256, 64),
            ("SHA-512", &self.sha512, 128),
        ] {
            if !is_hex(value, len) {
                bail!("its {name} `{value}` is not {len} lower-case hex digits");
            }
        }
        Ok(())
    }
}

/// True when `value` is `len` lower-case hex digits.
pub fn is_hex(value: &str, len: usize) -> bool {
    value.len() == len
        && value
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl PackageInfo {
    /// An rpm's index fields: `name` and `arch` and `info` as [`super::rpm::read`] gives
    /// them, the file's `digests`.
    pub fn of_rpm(
        (name, arch, info): (String, String, super::rpm::RpmInfo),
        digests: FileDigests,
    ) -> Self {
        PackageInfo {
            version: format!("{}-{}", info.ver, info.rel),
            location: rpm_location(&name, &info.ver, &info.rel, &arch),
            name,
            arch,
            digests,
            control: Vec::new(),
            rpm: Some(info),
        }
    }

    /// The checks a .deb's index fields pass before anything is written, the same whether
    /// they were just read from the package file or are read back from the repository's
    /// state: safe name, version, architecture and `component`; the location those give;
    /// control fields that make one well-formed `Packages` stanza (read back exactly as
    /// written, so no field can start another stanza or field) and that name this package;
    /// well-formed digests.
    pub fn check_deb(&self, component: &str) -> Result<()> {
        check_token("component", component, "-.")?;
        check_token("name", &self.name, "+.-")?;
        check_token("version", &self.version, ".+~:-")?;
        check_token("architecture", &self.arch, "-")?;
        let location = deb_location(component, &self.name, &self.version, &self.arch);
        if self.location != location {
            bail!("its location `{}` is not `{location}`", self.location);
        }
        if self.rpm.is_some() {
            bail!("a .deb carries no rpm fields");
        }
        for (name, _) in &self.control {
            let ok = !name.is_empty()
                && !name.starts_with(['#', '-'])
                && name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
            if !ok {
                bail!("control field name `{name}` is not one dpkg accepts");
            }
        }
        let text = super::apt::control_text(&self.control);
        let back = super::deb::parse_control(&text)?;
        if back != self.control || text.matches("\n\n").count() > 0 {
            bail!("its control fields do not make one well-formed stanza");
        }
        for (field, value) in [
            ("Package", &self.name),
            ("Version", &self.version),
            ("Architecture", &self.arch),
        ] {
            let found = self
                .control
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(field));
            if found.map(|(_, v)| v) != Some(value) {
                bail!("its control fields do not say {field}: {value}");
            }
        }
        self.digests.check()
    }

    /// The checks an rpm's index fields pass before anything is written, the same whether
    /// they were just read from the package file or are read back from the repository's
    /// state: safe name, version, release and architecture; a numeric epoch; the location
    /// those give; dependency flags and file types primary.xml knows; no character XML 1.0
    /// cannot carry (dnf would refuse the whole repository); well-formed digests.
    pub fn check_rpm(&self) -> Result<()> {
        let r = self.rpm.as_ref().context("an rpm without its rpm fields")?;
        check_token("name", &self.name, "+._-")?;
        check_token("version", &r.ver, "._+~^")?;
        check_token("release", &r.rel, "._+~^")?;
        check_token("architecture", &self.arch, "_")?;
        if r.epoch.parse::<u32>().map(|e| e.to_string()).as_deref() != Ok(r.epoch.as_str()) {
            bail!("its epoch `{}` is not a number", r.epoch);
        }
        if self.version != format!("{}-{}", r.ver, r.rel) {
            bail!(
                "its version `{}` is not `{}-{}`",
                self.version,
                r.ver,
                r.rel
            );
        }
        let location = rpm_location(&self.name, &r.ver, &r.rel, &self.arch);
        if self.location != location {
            bail!("its location `{}` is not `{location}`", self.location);
        }
        if !self.control.is_empty() {
            bail!("an rpm carries no control fields");
        }
        let deps = [
            &r.provides,
            &r.requires,
            &r.conflicts,
            &r.obsoletes,
            &r.recommends,
            &r.suggests,
        ];
        for d in deps.iter().flat_map(|d| d.iter()) {
            if !["", "LT", "GT", "EQ", "LE", "GE"].contains(&d.flags.as_str()) {
                bail!("dependency {} has flags `{}`", d.name, d.flags);
            }
        }
        if let Some((path, kind)) = r
            .files
            .iter()
            .find(|(_, k)| !["", "dir", "ghost"].contains(&k.as_str()))
        {
            bail!("file {path} has type `{kind}`");
        }
        let texts = [
            &self.name,
            &self.arch,
            &r.ver,
            &r.rel,
            &r.summary,
            &r.description,
            &r.packager,
            &r.url,
            &r.license,
            &r.vendor,
            &r.group,
            &r.buildhost,
            &r.sourcerpm,
        ];
        let dep_texts = deps
            .iter()
            .flat_map(|d| d.iter())
            .flat_map(|d| [&d.name, &d.evr.0, &d.evr.1, &d.evr.2]);
        let file_texts = r.files.iter().map(|(p, _)| p);
        let log_texts = r.changelog.iter().flat_map(|(a, _, t)| [a, t]);
        if let Some(bad) = texts
            .into_iter()
            .chain(dep_texts)
            .chain(file_texts)
            .chain(log_texts)
            .find(|t| !xml_safe(t))
        {
            bail!(
                "`{}` holds a character XML 1.0 cannot carry",
                bad.escape_debug()
            );
        }
        self.digests.check()
    }
}

/// True when every character of `text` may appear in an XML 1.0 document: no control
/// character but tab, line feed and carriage return, and neither U+FFFE nor U+FFFF (UTF-8
/// `EF BF BE`, `EF BF BF`; a Rust string holds no surrogate).
fn xml_safe(text: &str) -> bool {
    let bytes = text.as_bytes();
    let control = |b: &u8| *b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r');
    !bytes.iter().any(control)
        && !memchr::memchr_iter(0xEF, bytes).any(|i| {
            bytes.get(i + 1) == Some(&0xBF) && matches!(bytes.get(i + 2), Some(0xBE | 0xBF))
        })
}

#[cfg(test)]
mod tests {
    use super::xml_safe;

    #[test]
    fn characters_xml_cannot_carry_are_found() {
        assert!(xml_safe("Mattermost <&> \"ü\" 🙂\ttab\nline"));
        for bad in ["a\u{FFFE}", "\u{FFFF}b", "c\u{1}", "\u{1b}[1m"] {
            assert!(!xml_safe(bad), "{bad:?}");
        }
        assert!(xml_safe("\u{FFFD}\u{EFBF}"));
    }
}
