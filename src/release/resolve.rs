//! Turning a version spec into one release: the embedded catalog merged with the online
//! index (or its cached copy).

use std::path::PathBuf;

use anyhow::{Result, bail};
use serde::Serialize;

use super::catalog::Catalog;
use super::http::Http;
use super::spec::VersionSpec;
use super::{Arch, DEFAULT_MIRROR, Edition, Release, Version, index};

/// How much network discovery may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetMode {
    /// Ask the index; if offline or rate-limited, say so and use the catalog.
    Auto,
    /// Ask the index and fail if it cannot be reached.
    Online,
    /// No network at all: catalog and cache only.
    Offline,
}

/// A version some source knows about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Candidate {
    /// The version.
    pub version: String,
    /// Extended Support Release (per the catalog).
    pub esr: bool,
    /// Listed in the embedded catalog (with a SHA-256 for linux-amd64).
    pub catalogued: bool,
}

/// The outcome of resolving a spec.
#[derive(Debug, Clone, Serialize)]
pub struct Resolved {
    /// Version.
    pub version: String,
    /// Edition.
    pub edition: Edition,
    /// Architecture.
    pub arch: Arch,
    /// Download URL.
    pub url: String,
    /// SHA-256 from the catalog, when it lists this tarball.
    pub sha256: Option<String>,
    /// Extended Support Release.
    pub esr: bool,
    /// The catalog lists this version and edition (for linux-amd64 only).
    pub catalogued: bool,
}

/// Where versions come from.
pub struct Discovery<'a> {
    /// The embedded catalog.
    pub catalog: &'a Catalog,
    /// HTTP client.
    pub http: &'a Http,
    /// Releases API URL (mm-pkg appends per_page and page).
    pub index_url: String,
    /// Cache directory (holds the last index snapshot).
    pub cache_dir: PathBuf,
    /// Network policy.
    pub mode: NetMode,
    /// GitHub token, when set.
    pub token: Option<String>,
}

impl Discovery<'_> {
    /// Versions the index lists (live, or the cached snapshot when offline or unavailable).
    fn index_versions(&self) -> Result<Vec<Version>> {
        if self.mode == NetMode::Offline {
            return Ok(index::load_snapshot(&self.cache_dir, &self.index_url));
        }
        match index::fetch(self.http, &self.index_url, self.token.as_deref()) {
            Ok(versions) => {
                if let Err(err) = index::save_snapshot(&self.cache_dir, &self.index_url, &versions)
                {
                    eprintln!("mm-pkg: warning: cannot cache the release index: {err:#}");
                }
                Ok(versions)
            }
            Err(err) if self.mode == NetMode::Auto && err.is_unavailable() => {
                eprintln!(
                    "mm-pkg: release index unavailable ({err}); using the embedded catalog and cached index only"
                );
                Ok(index::load_snapshot(&self.cache_dir, &self.index_url))
            }
            Err(err) => bail!("cannot read the release index: {err}"),
        }
    }

    /// Every known final version of `edition`, newest first.
    pub fn candidates(&self, edition: Edition) -> Result<Vec<Candidate>> {
        let mut all: Vec<(Version, Candidate)> = self
            .catalog
            .entries()
            .iter()
            .filter(|e| e.edition == edition)
            .map(|e| {
                let c = Candidate {
                    version: e.version.to_string(),
                    esr: e.esr,
                    catalogued: true,
                };
                (e.version.clone(), c)
            })
            .collect();
        for version in self.index_versions()? {
            if !all.iter().any(|(v, _)| *v == version) {
                let c = Candidate {
                    version: version.to_string(),
                    esr: false,
                    catalogued: false,
                };
                all.push((version, c));
            }
        }
        all.sort_by(|a, b| b.0.cmp(&a.0));
        Ok(all.into_iter().map(|(_, c)| c).collect())
    }

    /// The candidates `spec` selects, newest first.
    pub fn list(&self, spec: &VersionSpec, edition: Edition) -> Result<Vec<Candidate>> {
        let all = self.candidates(edition)?;
        Ok(all
            .into_iter()
            .filter(|c| {
                let v: Version = c.version.parse().expect("candidate versions parse");
                spec.matches(&v) && (*spec != VersionSpec::Esr || c.esr)
            })
            .collect())
    }

    /// The one release `spec` means. An exact version needs no discovery; `esr` is decided
    /// by the catalog alone.
    pub fn resolve(
        &self,
        spec: &VersionSpec,
        edition: Edition,
        arch: Arch,
        mirror: &str,
    ) -> Result<Resolved> {
        let version = match spec {
            VersionSpec::Exact(v) => v.clone(),
            VersionSpec::Esr => self
                .catalog
                .entries()
                .iter()
                .filter(|e| e.edition == edition && e.esr)
                .map(|e| e.version.clone())
                .max()
                .ok_or_else(|| {
                    anyhow::anyhow!("the catalog lists no ESR of the {edition} edition")
                })?,
            _ => match self.list(spec, edition)?.first() {
                Some(c) => c.version.parse()?,
                None => bail!("no {edition} release matches `{spec}`"),
            },
        };
        let release = Release {
            version,
            edition,
            arch,
        };
        Ok(self.describe(&release, mirror))
    }

    /// What is known about `release`: URL below `mirror`, catalogued hash and ESR flag.
    /// The catalog's URL is used where it has one (some early releases were published
    /// under other names, e.g. `mattermost-enterprise-2.1.0-linux-amd64.tar.gz`), moved
    /// below `mirror`.
    pub fn describe(&self, release: &Release, mirror: &str) -> Resolved {
        let entry = self.catalog.get(&release.version, release.edition);
        let url = match entry {
            Some(e) if release.arch == Arch::Amd64 => match e.url.strip_prefix(DEFAULT_MIRROR) {
                Some(path) => format!("{}{path}", mirror.trim_end_matches('/')),
                None => e.url.clone(),
            },
            _ => release.url(mirror),
        };
        Resolved {
            version: release.version.to_string(),
            edition: release.edition,
            arch: release.arch,
            url,
            sha256: self
                .catalog
                .sha256(&release.version, release.edition, release.arch)
                .map(str::to_string),
            esr: entry.is_some_and(|e| e.esr),
            catalogued: entry.is_some(),
        }
    }
}
