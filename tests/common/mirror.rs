//! A fake upstream for the download tests: the local release server (tests/common/server.rs)
//! with an index, a keyring trusting the test key, and a cache, plus helpers to run mm-pkg
//! against it.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::fixture::{Spec, write_release};
use super::server::Server;
use super::signing::{TestKey, release_key};
use super::{mm_pkg, output};

/// Path of the releases index on the server.
pub const INDEX_PATH: &str = "/api/releases";

/// A fake release server with its index, a keyring trusting the test key, and a cache.
pub struct Mirror {
    /// The release server.
    pub server: Server,
    /// Holds the keyring, the published sources, the cache and outputs.
    pub dir: tempfile::TempDir,
}

impl Mirror {
    /// A server with nothing published yet.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("test.asc"), &release_key().armored_public).unwrap();
        Mirror {
            server: Server::start(),
            dir,
        }
    }

    /// Serves an index listing final 9.11.90 and 12.0.1 among a draft, a prerelease, an rc
    /// tag and 200 old releases (three pages of 100).
    pub fn with_index(self) -> Self {
        let mut tags: Vec<(String, bool, bool)> = vec![
            ("v12.0.1".into(), false, false),
            ("v9.11.91".into(), true, false),
            ("v9.11.92".into(), false, true),
            ("v9.11.93-rc1".into(), false, false),
            ("v9.11.90".into(), false, false),
        ];
        for i in 0..200 {
            tags.push((format!("v5.{}.{}", i / 10, i % 10), false, false));
        }
        let tags: Vec<(&str, bool, bool)> =
            tags.iter().map(|(t, d, p)| (t.as_str(), *d, *p)).collect();
        self.server.releases_api(INDEX_PATH, &tags, 100);
        self
    }

    /// Publishes the release of `spec` at the upstream path, with a signature by `signer`.
    pub fn publish(&self, spec: &Spec, signer: Option<&TestKey>) -> Vec<u8> {
        let path = write_release(&self.dir.path().join("src"), spec);
        let bytes = fs::read(path).unwrap();
        let url = self.tarball_path(spec);
        self.server.route(&url, bytes.clone());
        if let Some(key) = signer {
            self.server.route(&format!("{url}.sig"), key.sign(&bytes));
        }
        bytes
    }

    /// The upstream path of `spec`'s tarball on the server.
    pub fn tarball_path(&self, spec: &Spec) -> String {
        format!("/{}/{}", spec.version, spec.tarball_name())
    }

    /// The cache directory.
    pub fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    /// The keyring that trusts the test release key.
    pub fn keyring(&self) -> PathBuf {
        self.dir.path().join("test.asc")
    }

    /// An output directory named `name`.
    pub fn out(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `mm-pkg <args>` pointed at this mirror, index, keyring and cache.
    pub fn run(&self, args: &[&str]) -> Output {
        output(&mut self.command(args))
    }

    /// Runs `mm-pkg build <version> --format deb -o <out> <extra>` against this mirror.
    pub fn build_deb(&self, version: &str, out: &Path, extra: &[&str]) -> Output {
        let out = out.to_str().unwrap();
        let args = [&["build", version, "--format", "deb", "-o", out], extra].concat();
        self.run(&args)
    }

    /// The command [`Mirror::run`] runs, to spawn it instead: `args`, then this mirror,
    /// index and cache (and, for `build` and `sync`, the keyring).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = self.cmd();
        cmd.args(args)
            .arg("--mirror")
            .arg(&self.server.base)
            .arg("--index-url")
            .arg(format!("{}{INDEX_PATH}", self.server.base))
            .arg("--cache-dir")
            .arg(self.cache());
        if matches!(args[0], "build" | "sync") {
            cmd.arg("--keyring").arg(self.keyring());
        }
        cmd
    }

    /// `mm-pkg` without the environment variables a CI runner or a developer may have set.
    pub fn cmd(&self) -> Command {
        let mut cmd = mm_pkg();
        for var in RUNNER_VARS {
            cmd.env_remove(var);
        }
        cmd
    }
}

/// Environment variables a CI runner or a developer may have set that change what mm-pkg
/// does: the tests clear them.
pub const RUNNER_VARS: [&str; 6] = [
    "GITHUB_TOKEN",
    "GITHUB_STEP_SUMMARY",
    "MM_PKG_WEBHOOK_URL",
    "MM_PKG_SIGN_KEY",
    "MM_PKG_SIGN_PASSPHRASE",
    "MM_PKG_MAINTAINER",
];

/// stdout and stderr together.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The output of a run that must succeed.
pub fn ok(out: Output) -> String {
    let t = text(&out);
    assert!(out.status.success(), "mm-pkg failed:\n{t}");
    t
}

/// The output of a run that must fail.
pub fn fails(out: Output) -> String {
    let t = text(&out);
    assert!(
        !out.status.success(),
        "mm-pkg succeeded but should not have:\n{t}"
    );
    t
}

/// The `.deb` and `.rpm` files in `dir`, sorted.
pub fn packages_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.retain(|n| n.ends_with(".deb") || n.ends_with(".rpm"));
    names.sort();
    names
}

/// Runs `mm-pkg build 9.11.90 --format deb --offline --tarball <tarball>` trusting the keys
/// in `keyring`, writing into `out` (its cache in `out/cache`).
pub fn build_local(tarball: &Path, keyring: &Path, out: &Path) -> Output {
    let mut cmd = mm_pkg();
    cmd.args([
        "build",
        "9.11.90",
        "--format",
        "deb",
        "--offline",
        "--tarball",
    ])
    .arg(tarball)
    .arg("--keyring")
    .arg(keyring)
    .arg("--cache-dir")
    .arg(out.join("cache"))
    .arg("-o")
    .arg(out);
    output(&mut cmd)
}
