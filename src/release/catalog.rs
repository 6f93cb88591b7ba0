//! The embedded release catalog: every published server tarball upstream's documentation
//! lists, with edition, ESR flag, URL and SHA-256 (`data/releases.tsv`, see `data/SOURCE.md`).

use std::collections::HashSet;

use anyhow::{Context, Result, bail};

use super::{Arch, Edition, Version};

/// The catalog as shipped.
pub const RELEASES_TSV: &str = include_str!("../../data/releases.tsv");

/// One catalogued tarball (upstream publishes checksums for linux-amd64 only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogEntry {
    /// Version.
    pub version: Version,
    /// Edition.
    pub edition: Edition,
    /// Extended Support Release.
    pub esr: bool,
    /// Download URL of the linux-amd64 tarball.
    pub url: String,
    /// SHA-256 of that tarball, lower-case hex.
    pub sha256: String,
}

/// All catalogued tarballs.
#[derive(Debug, Clone)]
pub struct Catalog {
    entries: Vec<CatalogEntry>,
}

impl Catalog {
    /// The embedded catalog.
    pub fn embedded() -> Result<Self> {
        Self::parse(RELEASES_TSV).context("the embedded release catalog data/releases.tsv")
    }

    /// Parses TSV with the header `version edition esr url sha256`.
    pub fn parse(text: &str) -> Result<Self> {
        let mut lines = text.lines().enumerate();
        match lines.next() {
            Some((_, "version\tedition\tesr\turl\tsha256")) => {}
            other => bail!("unexpected header {other:?}"),
        }
        let mut entries = Vec::new();
        let mut seen = HashSet::new();
        for (n, line) in lines {
            if line.trim().is_empty() {
                continue;
            }
            let f: Vec<&str> = line.split('\t').collect();
            let at = || format!("line {}: `{line}`", n + 1);
            if f.len() != 5 {
                bail!("{}: expected 5 tab-separated fields", at());
            }
            let version: Version = f[0].parse().with_context(at)?;
            let edition: Edition = f[1].parse().with_context(at)?;
            let esr = match f[2] {
                "yes" => true,
                "no" => false,
                _ => bail!("{}: esr must be yes or no", at()),
            };
            let sha256 = f[4].to_ascii_lowercase();
            if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                bail!("{}: SHA-256 is not 64 hex digits", at());
            }
            if !seen.insert((version.clone(), edition)) {
                bail!("{}: {version} {edition} is listed twice", at());
            }
            entries.push(CatalogEntry {
                version,
                edition,
                esr,
                url: f[3].to_string(),
                sha256,
            });
        }
        Ok(Catalog { entries })
    }

    /// Every entry.
    pub fn entries(&self) -> &[CatalogEntry] {
        &self.entries
    }

    /// The entry for this version and edition, if catalogued.
    pub fn get(&self, version: &Version, edition: Edition) -> Option<&CatalogEntry> {
        self.entries
            .iter()
            .find(|e| &e.version == version && e.edition == edition)
    }

    /// The catalogued SHA-256 of a tarball, when the catalog covers its architecture.
    pub fn sha256(&self, version: &Version, edition: Edition, arch: Arch) -> Option<&str> {
        match arch {
            Arch::Amd64 => self.get(version, edition).map(|e| e.sha256.as_str()),
            Arch::Arm64 => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_catalog_is_complete_and_consistent() {
        let catalog = Catalog::embedded().unwrap();
        assert_eq!(catalog.entries().len(), 254);
        for e in catalog.entries() {
            assert!(
                e.url.ends_with(".tar.gz") && e.url.contains(&e.version.to_string()),
                "{e:?}"
            );
        }
        let v = Version::new(9, 11, 18);
        assert!(catalog.get(&v, Edition::Enterprise).is_some());
        assert!(
            catalog
                .sha256(&v, Edition::Enterprise, Arch::Arm64)
                .is_none()
        );
    }

    #[test]
    fn duplicates_and_bad_hashes_are_refused() {
        let head = "version\tedition\tesr\turl\tsha256\n";
        let row = format!(
            "9.11.18\tteam\tyes\thttps://x/a.tar.gz\t{}\n",
            "a".repeat(64)
        );
        assert!(Catalog::parse(&format!("{head}{row}{row}")).is_err());
        assert!(Catalog::parse(&format!("{head}9.11.18\tteam\tyes\thttps://x\tabc\n")).is_err());
        assert!(Catalog::parse(&format!("{head}{row}")).is_ok());
    }
}
