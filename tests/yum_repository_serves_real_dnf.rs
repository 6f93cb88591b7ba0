//! `mm-pkg repo add` writes a signed yum repository: real dnf lists every version, downloads
//! the newest with gpgcheck and repo_gpgcheck on, and refuses a changed repomd.xml; the
//! repodata agrees field by field with what createrepo_c writes for the same rpms.

mod common;

use std::fs;
use std::io::Read;
use std::path::Path;
use std::process::Command;

use common::gpg::GpgKey;
use common::repo::{dnf, dnf_client, packages, repo_add};
use common::static_files::StaticServer;
use common::{have, run};

/// The decompressed repodata file of `kind` named by `repodata/repomd.xml` under `root`.
fn repodata(root: &Path, kind: &str) -> String {
    let repomd = fs::read_to_string(root.join("repodata/repomd.xml")).unwrap();
    let start = repomd.find(&format!("<data type=\"{kind}\">")).unwrap();
    let href = &repomd[start..];
    let href = &href[href.find("href=\"").unwrap() + 6..];
    let href = &href[..href.find('"').unwrap()];
    let gz = fs::read(root.join(href)).unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut text)
        .unwrap();
    text
}

/// Each `<package` block as its sorted, trimmed, non-empty lines.
fn package_blocks(xml: &str) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = xml
        .split("<package ")
        .skip(1)
        .map(|block| {
            let block = &block[..block.find("</package>").unwrap()];
            let mut lines: Vec<String> = format!("<package {block}")
                .lines()
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty())
                .collect();
            lines.sort();
            lines
        })
        .collect();
    out.sort();
    out
}

#[test]
fn repodata_agrees_with_createrepo_c_field_by_field() {
    if !have("createrepo_c") {
        return;
    }
    let (_keep, files) = packages("rpm", &["9.11.90", "10.5.1"]);
    let repo = tempfile::tempdir().unwrap();
    repo_add(repo.path(), &files, &[]);
    let ours = repo.path().join("yum");
    let theirs = tempfile::tempdir().unwrap();
    run(Command::new("cp")
        .arg("-a")
        .arg(ours.join("Packages"))
        .arg(theirs.path()));
    run(Command::new("createrepo_c").arg(theirs.path()));
    for kind in ["primary", "filelists", "other"] {
        let (a, b) = (
            package_blocks(&repodata(&ours, kind)),
            package_blocks(&repodata(theirs.path(), kind)),
        );
        assert_eq!(a.len(), 2, "{kind}: two packages");
        assert_eq!(b.len(), 2, "{kind}: createrepo_c saw two packages");
        for (our, their) in a.iter().zip(&b) {
            let missing: Vec<_> = their.iter().filter(|l| !our.contains(l)).collect();
            let extra: Vec<_> = our.iter().filter(|l| !their.contains(l)).collect();
            assert!(
                missing.is_empty() && extra.is_empty(),
                "{kind} differs from createrepo_c:\nonly createrepo_c: {missing:#?}\nonly mm-pkg: {extra:#?}"
            );
        }
    }
    let primary = repodata(&ours, "primary");
    assert!(
        primary.contains("pre=\"1\""),
        "scriptlet requirements carry pre=\"1\""
    );
}

#[test]
fn dnf_lists_every_version_downloads_the_newest_checked_and_refuses_a_changed_repomd() {
    if !have("dnf") || !have("gpg") || !have("rpmkeys") {
        return;
    }
    let key = GpgKey::generate("rsa3072", None, &[], "never");
    // Unsigned rpms: the repository signs its copies.
    let (_keep, files) = packages("rpm", &["9.11.90", "9.11.91"]);
    let web = tempfile::tempdir().unwrap();
    let server = StaticServer::start(web.path());
    let json = repo_add(
        web.path(),
        &files,
        &[
            "--sign-key",
            key.secret.to_str().unwrap(),
            "--base-url",
            &server.base,
            "--json",
        ],
    );
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    let signed: Vec<&str> = report["signed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        signed.iter().filter(|s| s.ends_with(".rpm")).count() == 2,
        "{json}"
    );
    assert!(signed.contains(&"yum/repodata/repomd.xml.asc"), "{json}");

    let root = dnf_client(web.path());
    let root = root.path();

    let (ok, text) = dnf(
        root,
        &[
            "repoquery",
            "--showduplicates",
            "--queryformat",
            "%{name}-%{version}-%{release}\\n",
            "mattermost",
        ],
    );
    assert!(ok, "dnf repoquery failed:\n{text}");
    for v in ["mattermost-9.11.90-1", "mattermost-9.11.91-1"] {
        assert!(text.contains(v), "{v} not listed:\n{text}");
    }
    let dest = root.join("downloads");
    let (ok, text) = dnf(
        root,
        &[
            "download",
            "--destdir",
            dest.to_str().unwrap(),
            "mattermost",
        ],
    );
    assert!(ok, "dnf download failed:\n{text}");
    let rpm = dest.join("mattermost-9.11.91-1.x86_64.rpm");
    assert!(rpm.exists(), "the newest was not downloaded:\n{text}");

    // The downloaded (repository-signed) rpm checks with the key and installs.
    let db = tempfile::tempdir().unwrap();
    run(Command::new("rpmkeys")
        .arg("--dbpath")
        .arg(db.path())
        .arg("--import")
        .arg(&key.public_asc));
    let check = run(Command::new("rpmkeys")
        .arg("--dbpath")
        .arg(db.path())
        .arg("--checksig")
        .arg(&rpm));
    assert!(
        check.trim_end().ends_with("digests signatures OK"),
        "{check}"
    );
    let target = tempfile::tempdir().unwrap();
    run(Command::new("rpm")
        .arg("--root")
        .arg(target.path())
        .arg("--initdb"));
    run(Command::new("rpmkeys")
        .arg("--root")
        .arg(target.path())
        .arg("--import")
        .arg(&key.public_asc));
    run(Command::new("rpm")
        .arg("--root")
        .arg(target.path())
        .args(["-i", "--nodeps", "--noscripts"])
        .arg(&rpm));

    // One changed byte in repomd.xml: dnf no longer reads the repository.
    let repomd = web.path().join("yum/repodata/repomd.xml");
    let text = fs::read_to_string(&repomd).unwrap();
    fs::write(&repomd, text.replacen("<revision>", "<revision>1", 1)).unwrap();
    let _ = fs::remove_dir_all(root.join("var/cache/dnf"));
    let (ok, out) = dnf(root, &["repoquery", "mattermost"]);
    assert!(!ok, "dnf accepted a changed repomd.xml:\n{out}");
    assert!(out.contains("GPG signature verification error"), "{out}");
}

#[test]
fn an_rpm_already_signed_by_the_repository_key_is_copied_unchanged() {
    if !have("gpg") {
        return;
    }
    let key = GpgKey::generate("ed25519", None, &[], "never");
    let built = common::build(
        &common::fixture::Spec::new("9.11.90"),
        &[
            "--format",
            "rpm",
            "--sign-key",
            key.secret.to_str().unwrap(),
        ],
    );
    let rpm = built.rpm.clone().unwrap();
    let repo = tempfile::tempdir().unwrap();
    let json = repo_add(
        repo.path(),
        std::slice::from_ref(&rpm),
        &["--sign-key", key.secret.to_str().unwrap(), "--json"],
    );
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(
        !report["signed"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s.as_str().unwrap().ends_with(".rpm")),
        "a signed rpm was signed again: {json}"
    );
    let copy = repo
        .path()
        .join("yum/Packages/mattermost-9.11.90-1.x86_64.rpm");
    assert_eq!(fs::read(&copy).unwrap(), fs::read(&rpm).unwrap());
}
