//! Which release a tarball is, by its SHA-256: a signature proves who made the bytes, not
//! which release they are, so a mirror could serve the signed 9.11.90 tarball as 9.11.91.
//! [`KnownTarballs`] collects every (version, edition, arch, SHA-256) mm-pkg knows — the
//! catalog, and a record in the cache of every tarball it verified — and refuses a tarball
//! whose SHA-256 belongs to another release. A future repository module feeds its own records
//! with [`KnownTarballs::add`].

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::catalog::Catalog;
use super::{Arch, Release};

/// The record's file name in the cache directory.
pub const RECORD_FILE: &str = "verified-tarballs.tsv";

/// One tarball whose identity is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownTarball {
    /// Which release it is.
    pub release: Release,
    /// Its SHA-256, lower-case hex.
    pub sha256: String,
    /// Where that is known from (`the release catalog`, the record's path).
    pub source: String,
}

/// Every tarball whose identity mm-pkg knows.
#[derive(Debug, Clone, Default)]
pub struct KnownTarballs {
    known: Vec<KnownTarball>,
}

impl KnownTarballs {
    /// The catalog's tarballs (linux-amd64: upstream publishes no other hashes) and the
    /// record of verified tarballs in `cache_dir`.
    pub fn load(catalog: &Catalog, cache_dir: &Path) -> Result<Self> {
        let mut known = KnownTarballs::default();
        known.add(catalog.entries().iter().map(|e| KnownTarball {
            release: Release {
                version: e.version.clone(),
                edition: e.edition,
                arch: Arch::Amd64,
            },
            sha256: e.sha256.clone(),
            source: super::download::CATALOG.into(),
        }));
        let path = record_path(cache_dir);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        for (n, line) in text.lines().enumerate() {
            let entry = parse_line(line, &path).with_context(|| {
                format!(
                    "{} line {}: `{line}` (mm-pkg's record of verified tarballs; delete the \
                     file to start a new one)",
                    path.display(),
                    n + 1
                )
            })?;
            known.add([entry]);
        }
        Ok(known)
    }

    /// Adds tarballs known from another source.
    pub fn add(&mut self, tarballs: impl IntoIterator<Item = KnownTarball>) {
        self.known.extend(tarballs);
    }

    /// True when `sha256` is already known as `release`.
    pub fn knows(&self, release: &Release, sha256: &str) -> bool {
        self.known
            .iter()
            .any(|k| k.sha256.eq_ignore_ascii_case(sha256) && k.release == *release)
    }

    /// Refuses `sha256` as `release` when it is known as another release.
    pub fn check(&self, release: &Release, sha256: &str) -> Result<()> {
        let other = self
            .known
            .iter()
            .find(|k| k.sha256.eq_ignore_ascii_case(sha256) && k.release != *release);
        if let Some(other) = other {
            bail!(
                "this tarball (SHA-256 {sha256}) is {} according to {}, not {release}: \
                 a signature proves who made the bytes, not which release they are, and \
                 another release's tarball was served under this one's name",
                other.release,
                other.source
            );
        }
        Ok(())
    }
}

/// Appends `release` with `sha256` to the record of verified tarballs in `cache_dir`.
pub fn record(cache_dir: &Path, release: &Release, sha256: &str) -> Result<()> {
    fs::create_dir_all(cache_dir)
        .with_context(|| format!("creating cache directory {}", cache_dir.display()))?;
    let path = record_path(cache_dir);
    let line = format!(
        "{}\t{}\t{}\t{}\n",
        release.version, release.edition, release.arch, sha256
    );
    // One short append: concurrent builds cannot interleave within a line.
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    file.write_all(line.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

fn record_path(cache_dir: &Path) -> PathBuf {
    cache_dir.join(RECORD_FILE)
}

fn parse_line(line: &str, path: &Path) -> Result<KnownTarball> {
    let f: Vec<&str> = line.split('\t').collect();
    if f.len() != 4 {
        bail!("expected version, edition, arch and SHA-256 separated by tabs");
    }
    let sha256 = f[3].to_ascii_lowercase();
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("the SHA-256 is not 64 hex digits");
    }
    Ok(KnownTarball {
        release: Release {
            version: f[0].parse()?,
            edition: f[1].parse()?,
            arch: f[2].parse()?,
        },
        sha256,
        source: format!("mm-pkg's record of verified tarballs {}", path.display()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::{Edition, Version};

    fn release(v: &str) -> Release {
        Release {
            version: v.parse::<Version>().unwrap(),
            edition: Edition::Enterprise,
            arch: Arch::Amd64,
        }
    }

    #[test]
    fn a_catalogued_tarball_served_as_another_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::embedded().unwrap();
        let known = KnownTarballs::load(&catalog, dir.path()).unwrap();
        let sha = catalog.sha256(&Version::new(9, 11, 18), Edition::Enterprise, Arch::Amd64);
        let sha = sha.unwrap();
        let err = known
            .check(&release("9.11.19"), sha)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("Mattermost 9.11.18 (enterprise, amd64) according to the release catalog"),
            "{err}"
        );
        known.check(&release("9.11.18"), sha).unwrap();
    }

    #[test]
    fn the_record_names_what_was_verified_before() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::parse("version\tedition\tesr\turl\tsha256\n").unwrap();
        let sha = "ab".repeat(32);
        record(dir.path(), &release("9.11.90"), &sha).unwrap();
        let known = KnownTarballs::load(&catalog, dir.path()).unwrap();
        known.check(&release("9.11.90"), &sha).unwrap();
        assert!(known.knows(&release("9.11.90"), &sha));
        assert!(!known.knows(&release("9.11.91"), &sha));
        let err = known.check(&release("9.11.91"), &sha).unwrap_err();
        assert!(err.to_string().contains("Mattermost 9.11.90"), "{err}");
        known.check(&release("9.11.91"), &"cd".repeat(32)).unwrap();
    }
}
