//! `repo add` accepts a package only when its whole structure checks as dpkg and rpm check
//! it, and nothing in it would reach an index apt or dnf reads differently than mm-pkg
//! meant: each hostile or broken package is refused with exit code 1 and one message naming
//! the file and the problem, before anything in the repository changes. Each case is also
//! put to the real tool (dpkg, dpkg-deb, rpmkeys) to show what it makes of the same file.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use common::crafted::{
    self, ar, control, deb, deb_members, dpkg_accepts, dpkg_deb_reads_data, gz, rpm_digests_ok,
    rpm_header_range, rpm_with, tar,
};
use common::repo::{dnf, dnf_client, packages, repo_add};
use common::static_files::StaticServer;
use common::{have, mm_pkg, output, run_measured};
use mm_pkg::rpm::header::{Value, tag};

/// Every file under `dir` but the lock, with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else if p.file_name().is_some_and(|n| n != "lock") {
                out.insert(p.clone(), fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// A repository holding one sound package, to hand the hostile ones to.
fn repository(work: &Path) -> tempfile::TempDir {
    let repo = tempfile::tempdir().unwrap();
    let good = deb(work, "good_1.0-1_amd64.deb", &control("good", "1.0-1", ""));
    repo_add(repo.path(), &[good], &[]);
    repo
}

/// `repo add REPO FILE`, which must exit 1 without changing a byte of the repository and say
/// which file it refused; returns its stderr.
fn refused(repo: &Path, file: &Path) -> String {
    let before = snapshot(repo);
    let out = output(mm_pkg().args(["repo", "add"]).arg(repo).arg(file));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{} was not refused:\n{stderr}",
        file.display()
    );
    assert!(
        stderr.contains(&file.display().to_string()),
        "the message does not name {}:\n{stderr}",
        file.display()
    );
    assert!(
        snapshot(repo) == before,
        "refusing {} changed the repository",
        file.display()
    );
    stderr
}

#[test]
fn control_files_dpkg_refuses_or_apt_would_misread_are_refused() {
    if !have("dpkg") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let repo = repository(work.path());
    let pkg = |more: &str| control("t", "1.0-1", more);
    // (case, control file, dpkg refuses it too, what the message says)
    let cases = [
        (
            "Version twice",
            pkg("Version: 2.0-1\n"),
            true,
            "given twice",
        ),
        (
            "version twice, in another case",
            pkg("version: 2.0-1\n"),
            true,
            "given twice",
        ),
        (
            "a blank line inside a value",
            "Package: t\nVersion: 1.0-1\nArchitecture: amd64\nDescription: t\n \n more\n".into(),
            true,
            "blank line",
        ),
        (
            "a second paragraph",
            pkg("\nPackage: u\nVersion: 9\n"),
            true,
            "second paragraph",
        ),
        (
            "a comment line",
            format!("# x\n{}", pkg("")),
            true,
            "line 1",
        ),
        (
            "a version dpkg refuses",
            control("t", "1.0-", ""),
            true,
            "not one dpkg accepts",
        ),
        (
            "Filename, which the index writer sets",
            pkg("Filename: pool/main/g/good/good_1.0-1_amd64.deb\n"),
            false,
            "Filename",
        ),
        (
            "SHA256, which the index writer sets",
            pkg("SHA256: 00\n"),
            false,
            "SHA256",
        ),
        ("SHA1, which apt checks", pkg("SHA1: 00\n"), false, "SHA1"),
        ("a carriage return", pkg("X-A: a\rb\n"), false, "U+000D"),
        ("a NUL byte", pkg("X-A: a\0b\n"), false, "U+0000"),
        (
            "an upper-case name",
            control("T", "1.0-1", ""),
            false,
            "not one Debian allows",
        ),
        (
            "a field name with a space",
            pkg("X A: b\n"),
            true,
            "not a field name",
        ),
        (
            "a control file of 2 MiB",
            pkg(&format!("X-Big: {}\n", "x".repeat(2 << 20))),
            false,
            "is refused",
        ),
    ];
    for (i, (case, text, dpkg_refuses, says)) in cases.iter().enumerate() {
        let file = deb(work.path(), &format!("case{i}_1.0-1_amd64.deb"), text);
        let (dpkg_ok, dpkg_said) = dpkg_accepts(&file);
        assert_eq!(!dpkg_ok, *dpkg_refuses, "{case}: dpkg said:\n{dpkg_said}");
        let stderr = refused(repo.path(), &file);
        assert!(
            stderr.contains(says),
            "{case}: expected `{says}` in:\n{stderr}"
        );
    }
}

#[test]
fn debian_versions_are_accepted_exactly_when_dpkg_validates_them() {
    if !have("dpkg") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let repo = repository(work.path());
    let versions = [
        "1.0",
        "1.0-1",
        "1:2.0-1",
        "0:1",
        "1:2:3-4",
        "1.0-1-1",
        "9.11.90~rc1+b2-0.1",
        "1.0-",
        "a1",
        ":1",
        "1:",
        "a:1",
        "-1:1",
        "1.0_1",
        "1.0-a_b",
        "99999999999:1",
        "~1",
        "1.0-1~",
        "1.0-1%",
        "1.0/2",
    ];
    for (i, version) in versions.iter().enumerate() {
        let valid =
            output(std::process::Command::new("dpkg").args(["--validate-version", version]))
                .status
                .success();
        let file = deb(
            work.path(),
            &format!("v{i}_amd64.deb"),
            &control(&format!("v{i}"), version, ""),
        );
        let out = output(mm_pkg().args(["repo", "add"]).arg(repo.path()).arg(&file));
        assert_eq!(
            out.status.success(),
            valid,
            "version `{version}`: dpkg says {}, mm-pkg {}:\n{}",
            if valid { "valid" } else { "invalid" },
            if out.status.success() {
                "accepted it"
            } else {
                "refused it"
            },
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn truncated_or_damaged_debs_are_refused_as_dpkg_deb_refuses_them() {
    if !have("dpkg-deb") {
        return;
    }
    let (_keep, debs) = packages("deb", &["9.11.90"]);
    let whole = fs::read(&debs[0]).unwrap();
    let work = tempfile::tempdir().unwrap();
    let repo = repository(work.path());
    let mut broken = Vec::new();
    // A partial CI artifact, cut inside the control member, inside the data member, and
    // one byte short.
    for cut in [300, whole.len() / 2, whole.len() - 1] {
        broken.push((format!("cut at {cut}"), whole[..cut].to_vec()));
    }
    // One byte changed inside the compressed data archive (the ar sizes still fit).
    let mut flipped = whole.clone();
    let i = whole.len() * 3 / 4;
    flipped[i] ^= 0x40;
    broken.push(("a byte changed in data.tar".into(), flipped));
    // Members out of dpkg's order, or one dpkg does not know.
    let members = deb_members(&control("t", "1.0-1", ""));
    let reordered = vec![members[0].clone(), members[2].clone(), members[1].clone()];
    broken.push(("data.tar before control.tar".into(), ar(&reordered)));
    let mut unknown = members.clone();
    unknown.insert(1, ("evil".into(), b"x".to_vec()));
    broken.push(("an unknown member".into(), ar(&unknown)));
    let mut wrong_format = members.clone();
    wrong_format[0].1 = b"3.0\n".to_vec();
    broken.push(("debian-binary 3.0".into(), ar(&wrong_format)));
    for (i, (case, bytes)) in broken.iter().enumerate() {
        let file = crafted::write(work.path(), &format!("broken{i}_amd64.deb"), bytes);
        let (dpkg_ok, said) = dpkg_accepts(&file);
        assert!(
            !(dpkg_ok && dpkg_deb_reads_data(&file)),
            "{case}: dpkg reads it whole:\n{said}"
        );
        refused(repo.path(), &file);
    }
}

/// A zstd stream of the tar header of one file `path` of `size` zero bytes and of those
/// bytes, made of small repeated frames (a few KiB for gigabytes).
fn zero_file_tar_zst(path: &str, size: u64) -> Vec<u8> {
    let mut header = tar::Header::new_gnu();
    header.set_path(path).unwrap();
    header.set_size(size);
    header.set_mode(0o644);
    header.set_cksum();
    let mut out = zstd::encode_all(&header.as_bytes()[..], 1).unwrap();
    let chunk = 8u64 << 20;
    let frame = zstd::encode_all(&vec![0u8; chunk as usize][..], 1).unwrap();
    for _ in 0..size / chunk {
        out.extend_from_slice(&frame);
    }
    out
}

#[test]
fn a_control_archive_that_decompresses_to_gigabytes_is_refused_within_bounded_memory() {
    let work = tempfile::tempdir().unwrap();
    let repo = repository(work.path());
    let members = deb_members(&control("t", "1.0-1", ""));
    // The control file itself, and another member of the control archive, 2 GiB each.
    for (i, path) in ["./control", "./md5sums"].into_iter().enumerate() {
        let mut bomb = members.clone();
        bomb[1] = ("control.tar.zst".into(), zero_file_tar_zst(path, 2 << 30));
        let file = crafted::write(work.path(), &format!("bomb{i}_amd64.deb"), &ar(&bomb));
        assert!(fs::metadata(&file).unwrap().len() < 1 << 20);
        let (ok, stderr, rss) = run_measured(
            mm_pkg().args(["repo", "add"]).arg(repo.path()).arg(&file),
            work.path(),
        );
        eprintln!("peak RSS refusing a 2 GiB {path}: {rss} KiB");
        assert!(!ok, "a control archive of 2 GiB was accepted");
        assert!(
            stderr.contains(&file.display().to_string()) && stderr.contains("refused"),
            "{stderr}"
        );
        assert!(
            rss <= 128 * 1024,
            "peak RSS {rss} KiB refusing a 2 GiB {path}"
        );
    }
}

#[test]
fn a_deb_whose_files_escape_the_package_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let repo = repository(work.path());
    for (i, path) in ["./../../etc/cron.d/evil", "/etc/cron.d/evil"]
        .into_iter()
        .enumerate()
    {
        let mut members = deb_members(&control("t", "1.0-1", ""));
        members[2].1 = gz(&tar(&[("./", b""), (path, b"* * * * * root sh\n")]));
        let file = crafted::write(work.path(), &format!("escape{i}_amd64.deb"), &ar(&members));
        let stderr = refused(repo.path(), &file);
        assert!(stderr.contains("escapes the package"), "{stderr}");
    }
}

#[test]
fn truncated_or_altered_rpms_are_refused_as_rpmkeys_refuses_them() {
    if !have("rpmkeys") {
        return;
    }
    let (_keep, rpms) = packages("rpm", &["9.11.90"]);
    let whole = fs::read(&rpms[0]).unwrap();
    let (start, len) = rpm_header_range(&whole);
    let work = tempfile::tempdir().unwrap();
    let repo = repository(work.path());
    let mut broken = Vec::new();
    for cut in [
        50,
        start + 8,
        start + len / 2,
        start + len + 100,
        whole.len() - 1,
    ] {
        broken.push((format!("cut at {cut}"), whole[..cut].to_vec()));
    }
    let mut payload = whole.clone();
    payload[start + len + (whole.len() - start - len) / 2] ^= 0x01;
    broken.push(("a byte changed in the payload".into(), payload));
    let mut header = whole.clone();
    let summary = start + len - 200;
    header[summary] ^= 0x01;
    broken.push(("a byte changed in the main header".into(), header));
    let mut padded = whole.clone();
    padded.extend_from_slice(b"trailing");
    broken.push(("bytes after the payload".into(), padded));
    for (i, (case, bytes)) in broken.iter().enumerate() {
        let file = crafted::write(work.path(), &format!("broken{i}.x86_64.rpm"), bytes);
        let (ok, said) = rpm_digests_ok(&file);
        assert!(!ok, "{case}: rpmkeys finds the digests sound:\n{said}");
        refused(repo.path(), &file);
    }
    let sound = crafted::write(work.path(), "sound.x86_64.rpm", &whole);
    assert!(rpm_digests_ok(&sound).0);
}

#[test]
fn rpm_header_values_dnf_cannot_read_or_that_escape_are_refused() {
    if !have("rpmkeys") {
        return;
    }
    if !have("dnf") {
        return;
    }
    let (_keep, rpms) = packages("rpm", &["9.11.90"]);
    let work = tempfile::tempdir().unwrap();
    let repo = repository(work.path());
    let server = StaticServer::start(repo.path());
    let text = |t: u32, s: &str| {
        let s = s.to_string();
        move |h: &mut mm_pkg::rpm::header::Header| {
            h.set(t, Value::I18n(s));
        }
    };
    type Edit = Box<dyn FnOnce(&mut mm_pkg::rpm::header::Header)>;
    type Patch = Box<dyn FnOnce(&mut Vec<u8>)>;
    let none: fn() -> Patch = || Box::new(|_| {});
    let cases: Vec<(&str, Edit, Patch, &str)> = vec![
        (
            "U+FFFE in the summary",
            Box::new(text(tag::SUMMARY, "Mattermost \u{FFFE}")),
            none(),
            "U+FFFE",
        ),
        (
            "U+FFFF in the description",
            Box::new(text(tag::DESCRIPTION, "x\u{FFFF}")),
            none(),
            "U+FFFF",
        ),
        (
            "a C0 control in the description",
            Box::new(text(tag::DESCRIPTION, "a\u{1b}[31mred")),
            none(),
            "U+001B",
        ),
        (
            "a CESU-8 surrogate in the summary",
            Box::new(text(tag::SUMMARY, "SURROGATE")),
            Box::new(|bytes: &mut Vec<u8>| {
                let at = bytes.windows(9).position(|w| w == b"SURROGATE").unwrap();
                bytes[at..at + 3].copy_from_slice(&[0xed, 0xa0, 0x80]);
            }),
            "not valid UTF-8",
        ),
        (
            "a file path that climbs out",
            Box::new(|_: &mut mm_pkg::rpm::header::Header| {}),
            // A directory name of the same length, in place in the DIRNAMES array.
            Box::new(|bytes: &mut Vec<u8>| {
                let from = b"\0/opt/mattermost/bin/\0";
                let at = bytes.windows(from.len()).position(|w| w == from).unwrap();
                bytes[at..at + from.len()].copy_from_slice(b"\0/opt/../termost/bin/\0");
            }),
            "not an absolute, normalized path",
        ),
        (
            "a file list whose arrays disagree",
            Box::new(|h: &mut mm_pkg::rpm::header::Header| {
                h.set(tag::DIRINDEXES, Value::Int32(vec![0]));
            }),
            none(),
            "differ in length",
        ),
        (
            "a changelog whose arrays disagree",
            Box::new(|h: &mut mm_pkg::rpm::header::Header| {
                h.set(tag::CHANGELOGTIME, Value::Int32(vec![1; 1000]));
            }),
            none(),
            "differ in length",
        ),
    ];
    for (i, (case, edit, patch, says)) in cases.into_iter().enumerate() {
        let file = work.path().join(format!("odd{i}.x86_64.rpm"));
        rpm_with(&rpms[0], &file, edit, patch);
        let (ok, said) = rpm_digests_ok(&file);
        assert!(
            ok,
            "{case}: the crafted rpm's digests are not sound:\n{said}"
        );
        let stderr = refused(repo.path(), &file);
        assert!(
            stderr.contains(says),
            "{case}: expected `{says}` in:\n{stderr}"
        );
    }
    // The same rewrite with a harmless value is accepted (what is refused is the value), and
    // dnf reads the repository (one U+FFFE published by mm-pkg before made dnf refuse it all:
    // "Loading repository 'mattermost' has failed").
    let fine = work.path().join("fine.x86_64.rpm");
    rpm_with(
        &rpms[0],
        &fine,
        text(tag::SUMMARY, "Mattermost, rewritten"),
        |_| {},
    );
    repo_add(repo.path(), &[fine], &["--base-url", &server.base]);
    let root = dnf_client(repo.path());
    let query = ["repoquery", "--queryformat", "%{summary}\\n", "mattermost"];
    let (ok, listed) = dnf(root.path(), &query);
    assert!(
        ok && listed.contains("Mattermost, rewritten"),
        "dnf:\n{listed}"
    );
}
