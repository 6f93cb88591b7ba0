//! Packages for the repository tests and `mm-pkg repo add` on them.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use super::fixture::Spec;
use super::{Built, build, mm_pkg, run};

/// Builds packages of `format` (`deb`, `rpm`) for `versions`: (keep-alive dirs, files).
pub fn packages(format: &str, versions: &[&str]) -> (Vec<Built>, Vec<PathBuf>) {
    let built: Vec<_> = versions
        .iter()
        .map(|v| build(&Spec::new(v), &["--format", format]))
        .collect();
    let files = built
        .iter()
        .map(|b| {
            if format == "deb" { &b.deb } else { &b.rpm }
                .clone()
                .unwrap()
        })
        .collect();
    (built, files)
}

/// `mm-pkg repo add DIR FILES EXTRA` without a key from the environment; returns stdout.
pub fn repo_add(dir: &Path, files: &[PathBuf], extra: &[&str]) -> String {
    run(mm_pkg()
        .args(["repo", "add"])
        .arg(dir)
        .args(files)
        .args(extra)
        .env_remove("MM_PKG_SIGN_KEY")
        .env_remove("MM_PKG_SIGN_PASSPHRASE"))
}
