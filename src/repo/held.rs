//! What a repository holds, read without changing it: the question `sync` and `repo list`
//! ask. No key is needed and no lock taken; each record is checked as a package file is, but
//! the state's signature is not (only a run that holds the key can check it, and only such
//! a run publishes).

use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use super::dir::RepoDir;
use super::record::Record;
use super::state;

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
#[derive(Debug, Clone, Default, Serialize)]
pub struct Holdings {
    /// Its apt suite; `None` when `dir` is no repository yet.
    pub suite: Option<String>,
    /// The fingerprints of the keys that sign it, as its state says (two while it rotates).
    pub keys: Vec<String>,
    /// Its package files.
    pub packages: Vec<Held>,
}

/// Every package the repository at `dir` holds, from its state; empty when `dir` is no
/// repository yet. Takes no lock and writes nothing: a `repo add` that replaces the state
/// meanwhile (and removes the records only the old one named) makes it read the new state
/// again.
pub fn holdings(dir: &Path) -> Result<Holdings> {
    let Some(dir) = RepoDir::open(dir, false)? else {
        return Ok(Holdings::default());
    };
    let mut tries = 0;
    loop {
        let Some(found) = state::read(&dir)? else {
            return Ok(Holdings::default());
        };
        let result = match &found.legacy {
            Some(records) => Ok(records.clone()),
            None => state::records(&dir, &found.state),
        };
        match result {
            Ok(records) => {
                let mut packages: Vec<Held> = records.iter().map(held).collect();
                packages.sort_by(|a, b| a.location.cmp(&b.location));
                return Ok(Holdings {
                    suite: Some(found.state.suite),
                    keys: found.state.keys,
                    packages,
                });
            }
            Err(e) => {
                let replaced = match state::read(&dir) {
                    Ok(Some(now)) => now.state.packages != found.state.packages,
                    _ => false,
                };
                tries += 1;
                if !replaced || tries == 3 {
                    return Err(e);
                }
            }
        }
    }
}

fn held(r: &Record) -> Held {
    Held {
        format: r.format.name(),
        name: r.package.name.clone(),
        version: r.package.version.clone(),
        arch: r.package.arch.clone(),
        location: r.pool_path(),
        sha256: r.package.digests.sha256.clone(),
    }
}
