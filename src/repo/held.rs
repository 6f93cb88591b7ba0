//! What a repository already holds, read without changing it: the question `sync` asks
//! before it builds anything.

use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use super::segments::Format;
use super::state::read_packages;

/// One package file a repository holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Held {
    /// `deb` or `rpm`.
    pub format: &'static str,
    /// Package name.
    pub name: String,
    /// Version as the format writes it (`9.11.19-1`).
    pub version: String,
    /// Architecture as the format names it (`amd64`, `x86_64`).
    pub arch: String,
    /// Path inside the repository directory.
    pub location: String,
    /// SHA-256 of the repository's copy.
    pub sha256: String,
}

/// What a repository holds.
#[derive(Debug, Clone, Default)]
pub struct Holdings {
    /// Its apt suite; `None` when `dir` is no repository yet.
    pub suite: Option<String>,
    /// Its package files.
    pub packages: Vec<Held>,
}

/// Every package the repository at `dir` holds, from its state file; empty when `dir` is no
/// repository yet. Takes no lock and writes nothing.
pub fn holdings(dir: &Path) -> Result<Holdings> {
    let Some((settings, packages)) = read_packages(dir)? else {
        return Ok(Holdings::default());
    };
    let packages = packages
        .into_iter()
        .map(|(format, p)| {
            let root = format.root();
            let format = match format {
                Format::Deb => "deb",
                Format::Rpm => "rpm",
            };
            let info = p.info;
            Held {
                format,
                name: info.name,
                version: info.version,
                arch: info.arch,
                location: format!("{root}/{}", info.location),
                sha256: info.digests.sha256,
            }
        })
        .collect();
    Ok(Holdings {
        suite: Some(settings.suite),
        packages,
    })
}
