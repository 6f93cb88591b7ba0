//! `build --tarball`: version, edition and architecture come from upstream's file name; a
//! SPEC, `--edition` or `--arch` that disagrees with it is refused, saying which part.

mod common;

use std::fs;
use std::path::Path;

use common::fixture::{Spec, write_release};
use common::{mm_pkg, output, package_in, run};

fn build_args(tarball: &Path, out: &Path, args: &[&str]) -> std::process::Output {
    output(
        mm_pkg()
            .arg("build")
            .args(args)
            .args(["--format", "deb", "--offline", "--tarball"])
            .arg(tarball)
            .arg("--output")
            .arg(out),
    )
}

fn refused(result: &std::process::Output, out: &Path, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(2), "{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "expected `{needle}` in:\n{stderr}");
    }
    assert!(!out.exists() || fs::read_dir(out).unwrap().next().is_none());
}

#[test]
fn spec_is_optional_and_the_file_name_decides() {
    let dir = tempfile::tempdir().unwrap();
    let team = write_release(&dir.path().join("t"), &Spec::team("9.11.90"));
    let out = dir.path().join("dist");
    run(mm_pkg()
        .args(["build", "--format", "deb", "--tarball"])
        .arg(&team)
        .arg("--output")
        .arg(&out));
    let deb = package_in(&out, "deb").unwrap();
    assert_eq!(
        deb.file_name().unwrap(),
        "mattermost-team_9.11.90-1_amd64.deb",
        "version and edition from mattermost-team-9.11.90-linux-amd64.tar.gz"
    );
}

#[test]
fn spec_edition_or_arch_that_disagree_with_the_file_name_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let tarball = write_release(&dir.path().join("r"), &Spec::new("9.11.90"));
    let out = dir.path().join("dist");
    refused(
        &build_args(&tarball, &out, &["9.11.91"]),
        &out,
        &["SPEC 9.11.91", "9.11.90"],
    );
    refused(
        &build_args(&tarball, &out, &["9.11.90", "--edition", "team"]),
        &out,
        &["--edition team", "enterprise"],
    );
    refused(
        &build_args(&tarball, &out, &["--arch", "arm64"]),
        &out,
        &["--arch arm64", "amd64"],
    );
    // A range names the version it resolved to (9.x is 9.11.18 in the catalog).
    refused(
        &build_args(&tarball, &out, &["9.x"]),
        &out,
        &["`9.x` resolved to 9.11.18", "9.11.90"],
    );
    // Agreeing values are fine.
    let ok = build_args(
        &tarball,
        &out,
        &["v9.11.90", "--edition", "enterprise", "--arch", "amd64"],
    );
    assert!(ok.status.success(), "{ok:?}");
}

#[test]
fn a_file_not_named_like_upstreams_needs_an_exact_spec() {
    let dir = tempfile::tempdir().unwrap();
    let tarball = write_release(&dir.path().join("r"), &Spec::new("9.11.90"));
    let renamed = dir.path().join("release.tar.gz");
    fs::rename(&tarball, &renamed).unwrap();
    let out = dir.path().join("dist");
    refused(
        &build_args(&renamed, &out, &[]),
        &out,
        &["not named like upstream's", "exact version"],
    );
    refused(
        &build_args(&renamed, &out, &["9.x"]),
        &out,
        &["`9.x` is a range", "resolves to 9.11.18"],
    );
    let ok = build_args(&renamed, &out, &["9.11.90"]);
    assert!(ok.status.success(), "{ok:?}");
    assert_eq!(
        package_in(&out, "deb").unwrap().file_name().unwrap(),
        "mattermost_9.11.90-1_amd64.deb"
    );
}
