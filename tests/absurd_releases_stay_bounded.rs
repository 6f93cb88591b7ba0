//! A release with an absurd number of entries cannot make a build take unbounded memory:
//! up to the documented limits (50,000 paths, 4 MiB of names) the build stays within 128 MiB, and a release of a million
//! entries, or one extension header of 200 MiB, is refused with one clear line, also within
//! 128 MiB.

mod common;

use std::fs;
use std::path::Path;

use common::fixture::{Hostile, Spec, write_release};
use common::{mm_pkg, run_measured};

/// Peak memory the build may use.
const MAX_RSS_KIB: i64 = 128 * 1024;

fn build(spec: &Spec, dir: &Path) -> (bool, String, i64) {
    let tarball = write_release(&dir.join("release"), spec);
    run_measured(
        mm_pkg()
            .args(["build", &spec.version, "--tarball"])
            .arg(&tarball)
            .arg("--output")
            .arg(dir.join("dist")),
        dir,
    )
}

#[test]
fn million_entry_release_is_refused_within_128_mib() {
    let dir = tempfile::tempdir().unwrap();
    let spec = Spec {
        filler_files: 1_000_000,
        ..Spec::new("9.11.90")
    };
    let (ok, stderr, rss) = build(&spec, dir.path());
    eprintln!("peak RSS refusing {} entries: {rss} KiB", spec.filler_files);
    assert!(!ok, "a million entries were accepted");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains("the release has more than 50000 paths"),
        "{stderr}"
    );
    assert!(rss <= MAX_RSS_KIB, "peak RSS {rss} KiB");
    assert!(
        fs::read_dir(dir.path().join("dist"))
            .map(|mut d| d.next().is_none())
            .unwrap_or(true),
        "packages left behind"
    );
}

#[test]
fn release_just_below_the_limit_builds_within_128_mib() {
    let dir = tempfile::tempdir().unwrap();
    // Just below both limits: 50,000 paths and 4 MiB of names (80 bytes a path).
    let spec = Spec {
        filler_files: 49_900,
        filler_name_len: 80 - "client/filler/".len(),
        ..Spec::new("9.11.90")
    };
    let (ok, stderr, rss) = build(&spec, dir.path());
    assert!(ok, "{stderr}");
    eprintln!("peak RSS building {} entries: {rss} KiB", spec.filler_files);
    assert!(rss <= MAX_RSS_KIB, "peak RSS {rss} KiB");
}

#[test]
fn huge_extension_header_is_refused_within_128_mib() {
    let dir = tempfile::tempdir().unwrap();
    let spec = Spec {
        hostile: Some(Hostile::HugePaxHeader),
        ..Spec::new("9.11.90")
    };
    let (ok, stderr, rss) = build(&spec, dir.path());
    eprintln!("peak RSS refusing a 200 MiB PAX header: {rss} KiB");
    assert!(!ok, "a 200 MiB PAX header was accepted");
    assert!(
        stderr.contains("has a PAX extended header of 209715")
            && stderr.contains("bytes (at most 65536 are read)"),
        "{stderr}"
    );
    assert!(rss <= MAX_RSS_KIB, "peak RSS {rss} KiB");
}
