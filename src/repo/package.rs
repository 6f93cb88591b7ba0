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

impl PackageInfo {
    /// Checks every value the indexes will carry as reading the package file checked it: for
    /// a record read back from the repository's own state, which is untrusted input too.
    /// Name, version and architecture (as dpkg or rpm accept them), the .deb's control fields
    /// (parsed as dpkg parses them, agreeing with name, version and architecture, none of the
    /// fields the index writer sets) or the rpm's strings and file list (see
    /// [`super::rpm::RpmInfo::check`]), the location (a relative path of normal parts, ending
    /// in the format's extension) and the digests (lower-case hex of the right length).
    pub fn check(&self) -> Result<()> {
        let d = &self.digests;
        if !(is_hex(&d.md5, 32) && is_hex(&d.sha256, 64) && is_hex(&d.sha512, 128)) {
            bail!(
                "the record of {} {} has malformed digests",
                self.name,
                self.version
            );
        }
        let extension = match &self.rpm {
            Some(rpm) => {
                super::rpm::check_names(&self.name, &self.arch, rpm)?;
                rpm.check()?;
                if self.version != format!("{}-{}", rpm.ver, rpm.rel) {
                    bail!(
                        "the record of {} says version {}, its rpm fields another",
                        self.name,
                        self.version
                    );
                }
                ".rpm"
            }
            None => {
                super::deb::check_names(&self.name, &self.version, &self.arch)?;
                super::deb::check_package_fields(&self.control)?;
                for (field, value) in [
                    ("Package", &self.name),
                    ("Version", &self.version),
                    ("Architecture", &self.arch),
                ] {
                    let given = self
                        .control
                        .iter()
                        .find(|(n, _)| n.eq_ignore_ascii_case(field))
                        .map(|(_, v)| v);
                    if given != Some(value) {
                        bail!(
                            "the record of {} {}: its control fields say another {field}",
                            self.name,
                            self.version
                        );
                    }
                }
                ".deb"
            }
        };
        let normal = self
            .location
            .split('/')
            .all(|p| !p.is_empty() && p != "." && p != "..");
        if !normal || !self.location.ends_with(extension) {
            bail!(
                "the record of {} {} names the file `{}`, which is no pool path",
                self.name,
                self.version,
                self.location.escape_debug()
            );
        }
        Ok(())
    }
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

    /// The checks a .deb's record passes, the same whether it was just read from the
    /// package file or is read back from the repository's state: everything [`Self::check`]
    /// checks, a safe `component`, and the location those give.
    pub fn check_deb(&self, component: &str) -> Result<()> {
        if self.rpm.is_some() {
            bail!("a .deb carries no rpm fields");
        }
        self.check()?;
        check_token("component", component, "-.")?;
        let location = deb_location(component, &self.name, &self.version, &self.arch);
        if self.location != location {
            bail!("its location `{}` is not `{location}`", self.location);
        }
        Ok(())
    }

    /// The checks an rpm's record passes, the same whether it was just read from the
    /// package file or is read back from the repository's state: everything [`Self::check`]
    /// checks, dependency flags and file types primary.xml knows, and the location its
    /// name, version, release and architecture give.
    pub fn check_rpm(&self) -> Result<()> {
        let r = self.rpm.as_ref().context("an rpm without its rpm fields")?;
        if !self.control.is_empty() {
            bail!("an rpm carries no control fields");
        }
        self.check()?;
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
        let location = rpm_location(&self.name, &r.ver, &r.rel, &self.arch);
        if self.location != location {
            bail!("its location `{}` is not `{location}`", self.location);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deb() -> PackageInfo {
        let control = [
            ("Package", "mattermost"),
            ("Version", "9.11.90-1"),
            ("Architecture", "amd64"),
        ];
        PackageInfo {
            name: "mattermost".into(),
            version: "9.11.90-1".into(),
            arch: "amd64".into(),
            location: "pool/main/m/mattermost/mattermost_9.11.90-1_amd64.deb".into(),
            digests: FileDigests {
                size: 1,
                md5: "0".repeat(32),
                sha256: "a".repeat(64),
                sha512: "b".repeat(128),
            },
            control: control
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            rpm: None,
        }
    }

    fn rpm() -> PackageInfo {
        PackageInfo {
            arch: "x86_64".into(),
            location: "Packages/mattermost-9.11.90-1.x86_64.rpm".into(),
            control: Vec::new(),
            rpm: Some(super::super::rpm::RpmInfo {
                epoch: "0".into(),
                ver: "9.11.90".into(),
                rel: "1".into(),
                files: vec![("/opt/mattermost/bin/mattermost".into(), String::new())],
                ..Default::default()
            }),
            ..deb()
        }
    }

    #[test]
    fn records_read_back_are_checked_as_the_package_was() {
        deb().check().unwrap();
        rpm().check().unwrap();
        let mut bad: Vec<PackageInfo> = Vec::new();
        let mut d = deb();
        d.control.push(("Filename".into(), "pool/other.deb".into()));
        bad.push(d);
        let mut d = deb();
        d.control[1].1 = "9.11.91-1".into();
        bad.push(d);
        let mut d = deb();
        d.location = "pool/../../etc/cron.d/x.deb".into();
        bad.push(d);
        let mut d = deb();
        d.digests.sha256 = "../x".into();
        bad.push(d);
        let mut d = deb();
        d.version = "1.0-".into();
        bad.push(d);
        let mut r = rpm();
        r.rpm.as_mut().unwrap().summary = "x\u{FFFE}".into();
        bad.push(r);
        let mut r = rpm();
        r.rpm.as_mut().unwrap().files[0].0 = "/opt/../etc/x".into();
        bad.push(r);
        let mut r = rpm();
        r.version = "9.11.91-1".into();
        bad.push(r);
        for (i, record) in bad.iter().enumerate() {
            assert!(record.check().is_err(), "record {i} passed: {record:?}");
        }
    }
}
