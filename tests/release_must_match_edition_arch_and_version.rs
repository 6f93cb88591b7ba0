//! The tarball must be what was asked for: the requested edition (its licence file, as
//! upstream ships it), the requested architecture (the ELF machine of bin/mattermost), and
//! the requested version (upstream's binary embeds its version list; a binary without the
//! version is reported, and refused with --strict).

mod common;

use std::fs;
use std::path::Path;
use std::process::Output;

use common::fixture::{Spec, write_release};
use common::{mm_pkg, output, run};

/// Runs `mm-pkg build VERSION --tarball` on the release of `spec` with `args`. The tarball is
/// renamed away from upstream's file name, so that what is checked is its content (a file
/// name that disagrees with the flags is refused before the content is read).
fn build(spec: &Spec, dir: &Path, args: &[&str]) -> Output {
    let written = write_release(&dir.join("release"), spec);
    let tarball = written.with_file_name("release.tar.gz");
    fs::rename(&written, &tarball).unwrap();
    output(
        mm_pkg()
            .args(["build", &spec.version, "--tarball"])
            .arg(&tarball)
            .arg("--output")
            .arg(dir.join("dist"))
            .args(args),
    )
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_refused(out: &Output, dir: &Path, message: &str) {
    let err = stderr(out);
    assert!(!out.status.success(), "accepted:\n{err}");
    assert!(err.contains(message), "unexpected message:\n{err}");
    let left: Vec<_> = fs::read_dir(dir.join("dist"))
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left {left:?} in the output directory");
}

#[test]
fn team_release_with_upstreams_mit_compiled_licence_builds() {
    if !common::have("dpkg-deb") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = build(
        &Spec::team("9.11.90"),
        dir.path(),
        &["--edition", "team", "--format", "deb"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let deb = common::package_in(&dir.path().join("dist"), "deb").unwrap();
    let unpacked = dir.path().join("x");
    run(std::process::Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(&unpacked));
    let copyright =
        fs::read_to_string(unpacked.join("usr/share/doc/mattermost-team/copyright")).unwrap();
    assert!(copyright.contains("The MIT License"), "{copyright}");
    assert!(
        unpacked
            .join("opt/mattermost/MIT-COMPILED-LICENSE.md")
            .exists()
    );
}

#[test]
fn enterprise_tarball_built_as_team_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = build(&Spec::new("9.11.90"), dir.path(), &["--edition", "team"]);
    assert_refused(
        &out,
        dir.path(),
        "this is an enterprise edition release (it ships ENTERPRISE-EDITION-LICENSE.txt), not team: build it with --edition enterprise",
    );
}

#[test]
fn team_tarball_built_as_enterprise_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = build(
        &Spec::team("9.11.90"),
        dir.path(),
        &["--edition", "enterprise"],
    );
    assert_refused(
        &out,
        dir.path(),
        "this is a team edition release (it ships MIT-COMPILED-LICENSE.md), not enterprise",
    );
}

#[test]
fn amd64_tarball_built_for_arm64_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = build(&Spec::new("9.11.90"), dir.path(), &["--arch", "arm64"]);
    assert_refused(
        &out,
        dir.path(),
        "bin/mattermost is an executable for x86-64, not for arm64 (--arch arm64)",
    );
}

#[test]
fn arm64_tarball_built_for_amd64_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let spec = Spec::new("9.11.90").for_arch("arm64");
    let out = build(&spec, dir.path(), &["--arch", "amd64"]);
    assert_refused(
        &out,
        dir.path(),
        "bin/mattermost is an executable for aarch64, not for amd64 (--arch amd64)",
    );
}

#[test]
fn arm64_tarball_builds_for_arm64() {
    let dir = tempfile::tempdir().unwrap();
    let spec = Spec::new("9.11.90").for_arch("arm64");
    let out = build(&spec, dir.path(), &["--arch", "arm64"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let dist = dir.path().join("dist");
    assert!(dist.join("mattermost_9.11.90-1_arm64.deb").exists());
    assert!(dist.join("mattermost-9.11.90-1.aarch64.rpm").exists());
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).expect("build --json prints one JSON object")
}

#[test]
fn binary_with_the_requested_version_is_reported_found() {
    let dir = tempfile::tempdir().unwrap();
    let out = build(
        &Spec::new("9.11.91"),
        dir.path(),
        &["--format", "deb", "--json", "--strict"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("WARNING"), "{}", stderr(&out));
    assert_eq!(json(&out)["version_in_server_binary"], true);
}

/// The signed 9.11.90 tarball served as 9.11.91: its binary lists 9.11.90 as its own.
fn replayed() -> Spec {
    Spec {
        server_version: Some("9.11.90".into()),
        ..Spec::new("9.11.91")
    }
}

#[test]
fn binary_without_the_requested_version_is_a_loud_warning() {
    let dir = tempfile::tempdir().unwrap();
    let out = build(&replayed(), dir.path(), &["--format", "deb", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(
            "mm-pkg: WARNING: bin/mattermost does not contain the version string `9.11.91`"
        ),
        "{err}"
    );
    assert!(err.contains("--strict"), "{err}");
    assert_eq!(json(&out)["version_in_server_binary"], false);
}

#[test]
fn binary_without_the_requested_version_is_refused_with_strict() {
    let dir = tempfile::tempdir().unwrap();
    let out = build(&replayed(), dir.path(), &["--strict"]);
    assert_refused(
        &out,
        dir.path(),
        "bin/mattermost does not contain the version string `9.11.91`",
    );
}
