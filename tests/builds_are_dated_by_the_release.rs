//! Without SOURCE_DATE_EPOCH a build is dated by the release itself: files keep the
//! release's own time stamps, and everything mm-pkg generates (unit, wrapper, changelog,
//! control members, RPM build time, the RPM header signature) takes the release's newest
//! time stamp, so two builds of one tarball are byte-identical by default. SOURCE_DATE_EPOCH
//! still dates everything when set. Checked with dpkg-deb, rpm and the tarball read
//! independently of mm-pkg.

mod common;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::fixture::{Hostile, Spec, write_release};
use common::gpg::GpgKey;
use common::{have, mm_pkg, output, package_in, run};
use pgp::composed::Deserializable;

/// `mattermost/` paths of the tarball's regular files (relative) and every entry's time.
fn release_times(tarball: &Path) -> (BTreeMap<String, u64>, u64) {
    let gz = flate2::read::GzDecoder::new(File::open(tarball).unwrap());
    let mut archive = tar::Archive::new(gz);
    let mut files = BTreeMap::new();
    let mut newest = 0;
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        let mtime = entry.header().mtime().unwrap();
        newest = newest.max(mtime);
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        if entry.header().entry_type().is_file()
            && let Some(rel) = path.strip_prefix("mattermost/")
        {
            files.insert(rel.to_string(), mtime);
        }
    }
    (files, newest)
}

/// Path -> time of every member of the tar `dpkg-deb` prints with `flag`.
fn deb_members(deb: &Path, flag: &str) -> BTreeMap<String, u64> {
    let out = output(Command::new("dpkg-deb").arg(flag).arg(deb));
    assert!(out.status.success(), "dpkg-deb {flag} failed");
    let mut archive = tar::Archive::new(Cursor::new(out.stdout));
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            let path = path
                .trim_start_matches('.')
                .trim_end_matches('/')
                .to_string();
            (path, e.header().mtime().unwrap())
        })
        .collect()
}

/// Path -> FILEMTIMES of the rpm, and its BUILDTIME.
fn rpm_times(rpm: &Path) -> (BTreeMap<String, u64>, u64) {
    let list = run(Command::new("rpm")
        .args(["-qp", "--qf", "[%{FILEMTIMES} %{FILENAMES}\\n]"])
        .arg(rpm));
    let files = list
        .lines()
        .map(|l| {
            let (time, path) = l.split_once(' ').unwrap();
            (path.to_string(), time.parse().unwrap())
        })
        .collect();
    let built = run(Command::new("rpm")
        .args(["-qp", "--qf", "%{BUILDTIME}"])
        .arg(rpm));
    (files, built.trim().parse().unwrap())
}

/// `mm-pkg build` of `tarball` into `out` without SOURCE_DATE_EPOCH.
fn build_undated(tarball: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    output(
        mm_pkg()
            .env_remove("SOURCE_DATE_EPOCH")
            .args(["build", "9.11.90", "--tarball"])
            .arg(tarball)
            .arg("--output")
            .arg(out)
            .args(extra),
    )
}

fn packages(out: &Path) -> (PathBuf, PathBuf) {
    (
        package_in(out, "deb").expect("a .deb"),
        package_in(out, "rpm").expect("an .rpm"),
    )
}

/// What the package generates itself (not in the release).
const GENERATED: [&str; 5] = [
    "/usr/lib/systemd/system/mattermost.service",
    "/etc/mattermost/mattermost.env",
    "/usr/bin/mmctl",
    "/opt/mattermost/mm-pkg-version",
    "/usr/libexec/mattermost/config-snapshot",
];

#[test]
fn files_keep_the_release_times_and_generated_ones_take_the_newest() {
    if !have("dpkg-deb") || !have("rpm") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tarball = write_release(&dir.path().join("release"), &Spec::new("9.11.90"));
    let (release, newest) = release_times(&tarball);
    let first = release.values().next().copied().unwrap();
    assert!(
        release.values().any(|t| *t != first),
        "the fixture dates its files alike: the test would prove nothing"
    );
    let out = dir.path().join("dist");
    let built = build_undated(&tarball, &out, &[]);
    assert!(built.status.success(), "{built:?}");
    let (deb, rpm) = packages(&out);

    let data = deb_members(&deb, "--fsys-tarfile");
    let (rpm_files, build_time) = rpm_times(&rpm);
    assert_eq!(build_time, newest, "RPM BUILDTIME");
    let mut compared = 0;
    for (rel, time) in &release {
        let path = format!("/opt/mattermost/{rel}");
        for (format, times) in [("deb", &data), ("rpm", &rpm_files)] {
            if let Some(packaged) = times.get(&path) {
                assert_eq!(packaged, time, "{format}: {path} lost the release's time");
                compared += 1;
            }
        }
    }
    assert!(compared > 20, "only {compared} release files compared");
    for path in GENERATED {
        assert_eq!(data.get(path), Some(&newest), "deb: {path}");
        assert_eq!(rpm_files.get(path), Some(&newest), "rpm: {path}");
    }
    let changelog = "/usr/share/doc/mattermost/changelog.Debian.gz";
    assert_eq!(data.get(changelog), Some(&newest));
    for (name, time) in deb_members(&deb, "--ctrl-tarfile") {
        assert_eq!(time, newest, "control member {name}");
    }

    // The changelog's date is the newest time stamp too.
    let extracted = dir.path().join("x");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&extracted));
    let mut text = String::new();
    flate2::read::GzDecoder::new(File::open(extracted.join(&changelog[1..])).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    let date = chrono::DateTime::from_timestamp(newest as i64, 0)
        .unwrap()
        .format("%a, %d %b %Y %H:%M:%S +0000")
        .to_string();
    assert!(text.contains(&date), "changelog not dated {date}:\n{text}");
}

#[test]
fn two_undated_builds_of_one_tarball_are_byte_identical_signature_included() {
    if !have("dpkg-deb") || !have("rpm") || !have("gpg") {
        return;
    }
    // A key made before the release, so that the signature is dated by the release.
    let key = GpgKey::generate(
        "rsa3072",
        None,
        &["--faked-system-time", "20200101T000000!"],
        "never",
    );
    let dir = tempfile::tempdir().unwrap();
    let tarball = write_release(&dir.path().join("release"), &Spec::new("9.11.90"));
    let (_, newest) = release_times(&tarball);
    let sign = ["--sign-key", key.secret.to_str().unwrap()];
    let mut builds = Vec::new();
    for n in 0..2 {
        if n == 1 {
            // A second later: a build dated by the clock would differ.
            std::thread::sleep(std::time::Duration::from_millis(1100));
        }
        let out = dir.path().join(format!("dist{n}"));
        let built = build_undated(&tarball, &out, &sign);
        assert!(built.status.success(), "{built:?}");
        builds.push(packages(&out));
    }
    let pairs = [(&builds[0].0, &builds[1].0), (&builds[0].1, &builds[1].1)];
    for (a, b) in pairs {
        assert!(
            fs::read(a).unwrap() == fs::read(b).unwrap(),
            "{} differs between two builds without SOURCE_DATE_EPOCH",
            a.display()
        );
    }

    // rpm prints a binary tag as hex: the signature packet, dated by the release.
    let hex = run(Command::new("rpm")
        .args(["-qp", "--qf", "%{RSAHEADER}"])
        .arg(&builds[0].1));
    let packet = hex::decode(hex.trim()).expect("RSAHEADER as hex");
    let sig =
        pgp::composed::DetachedSignature::from_bytes(Cursor::new(packet)).expect("a signature");
    let created = sig.signature.created().expect("a creation time").as_secs();
    assert_eq!(u64::from(created), newest, "signature date");
}

#[test]
fn source_date_epoch_still_dates_everything() {
    if !have("dpkg-deb") || !have("rpm") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tarball = write_release(&dir.path().join("release"), &Spec::new("9.11.90"));
    let out = dir.path().join("dist");
    run(mm_pkg()
        .env("SOURCE_DATE_EPOCH", "1764000000")
        .args(["build", "9.11.90", "--tarball"])
        .arg(&tarball)
        .arg("--output")
        .arg(&out));
    let (deb, rpm) = packages(&out);
    for (path, time) in deb_members(&deb, "--fsys-tarfile") {
        assert_eq!(time, 1_764_000_000, "deb: {path}");
    }
    let (files, build_time) = rpm_times(&rpm);
    assert_eq!(build_time, 1_764_000_000);
    for (path, time) in files {
        assert_eq!(time, 1_764_000_000, "rpm: {path}");
    }
}

#[test]
fn a_release_dated_after_2106_needs_source_date_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = Spec::new("9.11.90");
    spec.hostile = Some(Hostile::DatedAfter2106);
    let tarball = write_release(&dir.path().join("release"), &spec);
    let out = dir.path().join("dist");
    let refused = build_undated(&tarball, &out, &[]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "built: {err}");
    assert!(
        err.contains("i18n/late.json") && err.contains("2106") && err.contains("SOURCE_DATE_EPOCH"),
        "{err}"
    );
    assert!(package_in(&out, "deb").is_none() && package_in(&out, "rpm").is_none());

    run(mm_pkg()
        .args(["build", "9.11.90", "--tarball"])
        .arg(&tarball)
        .arg("--output")
        .arg(&out));
    assert!(package_in(&out, "deb").is_some() && package_in(&out, "rpm").is_some());
}
