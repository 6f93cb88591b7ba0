//! Online discovery of releases newer than the catalog: the GitHub releases API of
//! mattermost/mattermost, every page, final releases only.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Version;
use super::http::{Http, HttpError};

/// GitHub's releases API for the server repository.
pub const DEFAULT_INDEX_URL: &str = "https://api.github.com/repos/mattermost/mattermost/releases";
/// Releases asked for per page (GitHub's maximum).
pub const PER_PAGE: usize = 100;
/// A bound on pages, so a misbehaving index cannot keep us paging forever.
pub const MAX_PAGES: usize = 100;
/// Most bytes of one index page (GitHub's pages of 100 releases, with their notes and
/// assets, are a few MB); a larger answer is an error rather than held in memory.
pub const MAX_PAGE_BYTES: u64 = 32 << 20;

#[derive(Deserialize)]
struct GithubRelease {
    tag_name: String,
    #[serde(default)]
    draft: bool,
    #[serde(default)]
    prerelease: bool,
}

/// What an index lists, as kept in the cache for `--offline`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IndexSnapshot {
    /// The index URL it was read from.
    pub url: String,
    /// Final release versions, newest first.
    pub versions: Vec<String>,
}

/// Fetches every page of the index at `base_url` (mm-pkg appends `per_page` and `page`) and
/// returns the final releases it lists: drafts, prereleases and `-rcN` tags are skipped.
/// GitHub's "latest" flag is ignored: older branches get patch releases in parallel.
pub fn fetch(http: &Http, base_url: &str, token: Option<&str>) -> Result<Vec<Version>, HttpError> {
    let token = match token {
        Some(_) if !may_carry_token(base_url) => {
            eprintln!(
                "mm-pkg: warning: GITHUB_TOKEN is not sent to {base_url}: it would cross the \
                 network in clear text (use an https index URL)"
            );
            None
        }
        token => token,
    };
    let separator = if base_url.contains('?') { '&' } else { '?' };
    let mut versions = Vec::new();
    for page in 1..=MAX_PAGES {
        let url = format!("{base_url}{separator}per_page={PER_PAGE}&page={page}");
        let response = http.send(&url, || {
            let mut req = http
                .get(&url)
                .header("Accept", "application/vnd.github+json")
                .header("X-GitHub-Api-Version", "2022-11-28");
            if let Some(token) = token {
                req = req.bearer_auth(token);
            }
            req
        })?;
        let body = super::http::read_body(response, &url, MAX_PAGE_BYTES).map_err(|e| {
            HttpError::Network {
                url: url.clone(),
                message: format!("{e:#}"),
            }
        })?;
        let releases: Vec<GithubRelease> =
            serde_json::from_slice(&body).map_err(|e| HttpError::Network {
                url: url.clone(),
                message: format!("not a GitHub releases list: {e}"),
            })?;
        let count = releases.len();
        versions.extend(
            releases
                .into_iter()
                .filter(|r| !r.draft && !r.prerelease)
                .filter_map(|r| r.tag_name.parse::<Version>().ok())
                .filter(|v| v.rc.is_none()),
        );
        if count < PER_PAGE {
            break;
        }
    }
    versions.sort_by(|a, b| b.cmp(a));
    versions.dedup();
    Ok(versions)
}

/// Saves what the index at `index_url` listed, for later runs that cannot read it
/// (`--offline`, rate-limited). Each index URL has its own file, so a mirror's index never
/// answers for another.
pub fn save_snapshot(cache_dir: &Path, index_url: &str, versions: &[Version]) -> Result<()> {
    super::download::check_cache_dir(cache_dir)?;
    let path = snapshot_path(cache_dir, index_url);
    let snapshot = IndexSnapshot {
        url: index_url.to_string(),
        versions: versions.iter().map(Version::to_string).collect(),
    };
    let tmp = path.with_extension("json.part");
    fs::write(&tmp, serde_json::to_vec_pretty(&snapshot)?)
        .with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, &path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}

/// What the last successful read of the index at `index_url` listed, if any.
pub fn load_snapshot(cache_dir: &Path, index_url: &str) -> Vec<Version> {
    let path = snapshot_path(cache_dir, index_url);
    fs::read(&path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<IndexSnapshot>(&bytes).ok())
        .filter(|s| s.url == index_url)
        .map(|s| s.versions.iter().filter_map(|v| v.parse().ok()).collect())
        .unwrap_or_default()
}

/// The cache file of the index at `index_url`: `index-<SHA-256 of the URL, 16 hex digits>.json`.
pub fn snapshot_path(cache_dir: &Path, index_url: &str) -> PathBuf {
    let digest = hex::encode(Sha256::digest(index_url.as_bytes()));
    cache_dir.join(format!("index-{}.json", &digest[..16]))
}

/// Whether a bearer token may be sent to `url`: over https, or over plain http only to this
/// machine (a local test server or proxy), never in clear text across the network.
fn may_carry_token(url: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(url) else {
        return false;
    };
    let host = url.host_str().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match url.scheme() {
        "https" => true,
        "http" => {
            host == "localhost"
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::may_carry_token;

    #[test]
    fn the_github_token_never_crosses_the_network_in_clear_text() {
        assert!(may_carry_token("https://api.github.com/repos/x/y/releases"));
        assert!(may_carry_token("https://mirror.example.org/api"));
        assert!(may_carry_token("http://127.0.0.1:8080/api/releases"));
        assert!(may_carry_token("http://[::1]:8080/api"));
        assert!(may_carry_token("http://localhost/api"));
        assert!(!may_carry_token("http://mirror.example.org/api"));
        assert!(!may_carry_token("http://10.0.0.1/api"));
        assert!(!may_carry_token("ftp://example.org/"));
        assert!(!may_carry_token("not a url"));
    }
}
