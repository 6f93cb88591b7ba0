//! What a repository already holds, read without changing it: the question `sync` asks
//! before it builds anything.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use super::state::{State, state_path};
use super::{apt, yum};

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
    let path = state_path(dir);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Holdings::default()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let state: State = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is damaged: restore it from a backup", path.display()))?;
    let suite = state.settings.suite.clone();
    let debs = state.deb.into_iter().map(|e| ("deb", apt::APT_DIR, e.info));
    let rpms = state.rpm.into_iter().map(|e| ("rpm", yum::YUM_DIR, e.info));
    let packages = debs
        .chain(rpms)
        .map(|(format, root, info)| Held {
            format,
            name: info.name,
            version: info.version,
            arch: info.arch,
            location: format!("{root}/{}", info.location),
            sha256: info.digests.sha256,
        })
        .collect();
    Ok(Holdings {
        suite: Some(suite),
        packages,
    })
}
