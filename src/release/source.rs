//! Getting a release tarball onto the local disk: a file the user names, or a download into
//! the cache.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::Release;

/// The cache directory: `$XDG_CACHE_HOME/mm-pkg`, else `~/.cache/mm-pkg`.
pub fn default_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("mm-pkg");
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".cache").join("mm-pkg"),
        None => std::env::temp_dir().join("mm-pkg-cache"),
    }
}

/// Downloads `release` from `mirror` into `cache_dir` unless it is already there, and returns
/// the local path.
///
/// The download streams into a `.part` file that is renamed only when complete, so an
/// interrupted run never leaves something that looks like a finished tarball.
pub fn download(release: &Release, mirror: &str, cache_dir: &Path) -> Result<PathBuf> {
    let dir = cache_dir.join(release.version.to_string());
    let path = dir.join(release.tarball_name());
    if path.is_file() {
        return Ok(path);
    }
    fs::create_dir_all(&dir)
        .with_context(|| format!("creating cache directory {}", dir.display()))?;
    let url = release.url(mirror);
    let client = reqwest::blocking::Client::builder()
        .connect_timeout(Duration::from_secs(30))
        .timeout(None)
        .user_agent(concat!("mm-pkg/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("setting up the HTTP client")?;
    let mut response = client
        .get(&url)
        .send()
        .with_context(|| format!("downloading {url}"))?;
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        bail!("{release} is not published at {url}");
    }
    if !response.status().is_success() {
        bail!(
            "downloading {url}: the server answered {}",
            response.status()
        );
    }
    let part = dir.join(format!("{}.part", release.tarball_name()));
    let mut file = File::create(&part).with_context(|| format!("creating {}", part.display()))?;
    io::copy(&mut response, &mut file)
        .with_context(|| format!("downloading {url} into {}", part.display()))?;
    file.flush()
        .with_context(|| format!("writing {}", part.display()))?;
    fs::rename(&part, &path)
        .with_context(|| format!("renaming {} to {}", part.display(), path.display()))?;
    Ok(path)
}
