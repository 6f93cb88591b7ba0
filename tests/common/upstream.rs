//! Upstream as `sync` sees it: a local server with a GitHub-style releases index listing
//! versions newer than the catalog, their tarballs and `.sig` files signed by the test key
//! (trusted through `--keyring`), a download cache, and a repository signing key.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

use super::fixture::Spec;
use super::mirror::Mirror;
pub use super::mirror::{INDEX_PATH, text};
use super::signing::{TestKey, release_key};
use super::{mm_pkg, output, run};

/// `sync` flags following two series in both editions (with [`Upstream::publish_both`] of
/// 9.11.90 and 12.0.1: four releases).
pub const FOLLOW_TWO_SERIES: [&str; 6] = [
    "--spec",
    "9.11",
    "--spec",
    "12.x",
    "--edition",
    "enterprise,team",
];

/// The fake upstream and the files a pipeline keeps: a [`Mirror`] (its server, keyring and
/// cache, through `Deref`) whose index lists what is published, and a repository key.
pub struct Upstream {
    mirror: Mirror,
    tags: Mutex<Vec<String>>,
}

impl Deref for Upstream {
    type Target = Mirror;

    fn deref(&self) -> &Mirror {
        &self.mirror
    }
}

impl Upstream {
    /// An empty upstream (an index with no releases), a keyring and a repository key.
    pub fn new() -> Self {
        let mirror = Mirror::new();
        run(mm_pkg()
            .args([
                "key",
                "generate",
                "--name",
                "Sync Test <sync@example.org>",
                "--output",
            ])
            .arg(mirror.dir.path().join("keys"))
            .env_remove("MM_PKG_SIGN_PASSPHRASE"));
        mirror.server.releases_api(INDEX_PATH, &[], 100);
        Upstream {
            mirror,
            tags: Mutex::new(Vec::new()),
        }
    }

    /// Publishes `spec`'s tarball with a signature by `signer` (the test release key when
    /// `None` is not wanted, pass `Some(release_key())`), and lists its version in the index.
    /// Returns the tarball's bytes.
    pub fn publish(&self, spec: &Spec, signer: Option<&TestKey>) -> Vec<u8> {
        let bytes = self.mirror.publish(spec, signer);
        self.list(&spec.version);
        bytes
    }

    /// Publishes both editions of each of `versions`, signed by the test release key.
    pub fn publish_both(&self, versions: &[&str]) {
        for v in versions {
            self.publish(&Spec::new(v), Some(release_key()));
            self.publish(&Spec::team(v), Some(release_key()));
        }
    }

    /// Lists `version` in the index (whether or not its files exist).
    pub fn list(&self, version: &str) {
        let mut tags = self.tags.lock().unwrap();
        let tag = format!("v{version}");
        if !tags.contains(&tag) {
            tags.push(tag);
        }
        let entries: Vec<(&str, bool, bool)> =
            tags.iter().map(|t| (t.as_str(), false, false)).collect();
        self.server.releases_api(INDEX_PATH, &entries, 100);
    }

    /// Tarball requests so far.
    pub fn tarball_requests(&self) -> Vec<String> {
        self.server
            .hits()
            .into_iter()
            .map(|h| h.url)
            .filter(|u| u.ends_with(".tar.gz"))
            .collect()
    }

    /// The repository's secret signing key.
    pub fn sign_key(&self) -> PathBuf {
        self.dir.path().join("keys/signing-key.secret.asc")
    }

    /// A path inside the scratch directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.out(name)
    }

    /// `mm-pkg sync --repo REPO` pointed at this upstream, keyring and cache, signing with
    /// the repository key, with no webhook or key from the environment; then `args`.
    pub fn sync_cmd(&self, repo: &Path, args: &[&str]) -> Command {
        let mut cmd = self.command(&["sync", "--repo", repo.to_str().unwrap()]);
        cmd.arg("--sign-key").arg(self.sign_key()).args(args);
        cmd
    }

    /// Runs [`Upstream::sync_cmd`].
    pub fn sync(&self, repo: &Path, args: &[&str]) -> Output {
        output(&mut self.sync_cmd(repo, args))
    }
}

/// Every file under `dir` (relative path -> bytes), the repository's lock left out.
pub fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                if rel != ".mm-pkg/lock" {
                    out.insert(rel, fs::read(&path).unwrap());
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out
}

/// stdout of `out` parsed as JSON.
pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", text(out)))
}
