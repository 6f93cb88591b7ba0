//! `mm-pkg repo add` writes a signed apt repository that the real apt-get of a Debian 12 root
//! (gpgv) and of a Debian 13 root (sqv, which refuses weak keys and hashes) installs from over HTTP: newest by default, older on request, and nothing once an index
//! or the signed Release is changed. Its Packages stanzas agree with apt-ftparchive's.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use common::fixture::Spec;
use common::gpg::GpgKey;
use common::lifecycle::install_service_stubs;
use common::repo::{apt_client, fresh_update, packages, repo_add};
use common::static_files::StaticServer;
use common::{build, chroot_ok, debian_root_of, have, mm_pkg, output, run};

/// Flips one byte in the middle of `path`.
fn flip_byte(path: &Path) {
    let mut bytes = fs::read(path).unwrap();
    let i = bytes.len() / 2;
    bytes[i] ^= 0x01;
    fs::write(path, bytes).unwrap();
}

fn installed_version(root: &Path) -> String {
    chroot_ok(
        root,
        &["dpkg-query", "-W", "-f", "${Version}", "mattermost"],
    )
}

#[test]
fn apt_installs_newest_downgrades_and_refuses_changed_indexes() {
    apt_in("bookworm");
}

#[test]
fn trixie_apt_with_sqv_installs_downgrades_and_refuses_changed_indexes() {
    apt_in("trixie");
}

/// The admin's steps and apt's answers in a fresh root of `suite`.
fn apt_in(suite: &str) {
    if !have("gpg") {
        return;
    }
    let Some(root) = debian_root_of(suite) else {
        return;
    };
    let root = root.path();
    let key = GpgKey::generate("rsa3072", None, &[], "never");
    let (_keep, files) = packages("deb", &["9.11.90", "9.11.91"]);
    let web = tempfile::tempdir().unwrap();
    let server = StaticServer::start(web.path());
    let repo = web.path();
    repo_add(
        repo,
        &files,
        &[
            "--sign-key",
            key.secret.to_str().unwrap(),
            "--base-url",
            &server.base,
        ],
    );

    // The admin's two steps: the sources entry and the key; nothing else to apt.
    apt_client(root, repo);
    install_service_stubs(root);

    let (ok, text) = fresh_update(root);
    assert!(ok, "apt-get update failed:\n{text}");
    assert!(!text.contains("W:"), "apt-get update warned:\n{text}");
    chroot_ok(root, &["apt-get", "install", "-y", "mattermost"]);
    assert_eq!(
        installed_version(root),
        "9.11.91-1",
        "apt did not install the newest"
    );
    chroot_ok(
        root,
        &[
            "apt-get",
            "install",
            "-y",
            "--allow-downgrades",
            "mattermost=9.11.90-1",
        ],
    );
    assert_eq!(
        installed_version(root),
        "9.11.90-1",
        "apt did not downgrade"
    );

    // One changed byte in the index apt downloads (Packages.xz and its by-hash copies).
    let binary = repo.join("apt/dists/stable/main/binary-amd64");
    let xz = fs::read(binary.join("Packages.xz")).unwrap();
    let mut copies = vec![binary.join("Packages.xz")];
    for algo in ["SHA256", "SHA512"] {
        for e in fs::read_dir(binary.join("by-hash").join(algo)).unwrap() {
            let p = e.unwrap().path();
            if fs::read(&p).unwrap() == xz {
                copies.push(p);
            }
        }
    }
    assert_eq!(copies.len(), 3, "Packages.xz and two by-hash copies");
    for c in &copies {
        flip_byte(c);
    }
    let (ok, text) = fresh_update(root);
    assert!(
        !ok,
        "apt-get update accepted a changed Packages.xz:\n{text}"
    );
    for c in &copies {
        fs::write(c, &xz).unwrap();
    }
    let (ok, text) = fresh_update(root);
    assert!(ok, "restored repository no longer updates:\n{text}");

    // One changed byte in the signed text of InRelease.
    let inrelease = repo.join("apt/dists/stable/InRelease");
    let signed = fs::read_to_string(&inrelease).unwrap();
    fs::write(
        &inrelease,
        signed.replacen("Suite: stable", "Suite: stablf", 1),
    )
    .unwrap();
    let (ok, text) = fresh_update(root);
    assert!(!ok, "apt-get update accepted a changed InRelease:\n{text}");
    fs::write(&inrelease, &signed).unwrap();
}

/// Stanzas of a Packages file, keyed by Package and Version.
fn stanzas(text: &str) -> BTreeMap<(String, String), BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for para in text.split("\n\n").filter(|p| !p.trim().is_empty()) {
        let fields = mm_pkg::repo::deb::parse_control(para).unwrap();
        let map: BTreeMap<String, String> = fields
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        out.insert((map["package"].clone(), map["version"].clone()), map);
    }
    out
}

#[test]
fn packages_stanzas_agree_with_apt_ftparchive() {
    if !have("apt-ftparchive") {
        return;
    }
    let (_keep, files) = packages("deb", &["9.11.90", "10.5.1"]);
    let repo = tempfile::tempdir().unwrap();
    repo_add(repo.path(), &files, &[]);
    let apt = repo.path().join("apt");
    let theirs = run(std::process::Command::new("apt-ftparchive")
        .current_dir(&apt)
        .args(["-o", "APT::FTPArchive::SHA512=true", "packages", "pool"]));
    let ours = fs::read_to_string(apt.join("dists/stable/main/binary-amd64/Packages")).unwrap();
    let (theirs, ours) = (stanzas(&theirs), stanzas(&ours));
    assert_eq!(theirs.len(), 2);
    assert_eq!(
        theirs.keys().collect::<Vec<_>>(),
        ours.keys().collect::<Vec<_>>()
    );
    for (id, their) in &theirs {
        let our = &ours[id];
        for (field, value) in their {
            if field == "sha1" {
                continue; // apt no longer uses SHA-1; mm-pkg does not list it.
            }
            assert_eq!(
                our.get(field),
                Some(value),
                "{id:?}: field {field} differs from apt-ftparchive"
            );
        }
        for field in our.keys() {
            assert!(
                their.contains_key(field),
                "{id:?}: {field} is not a field apt-ftparchive writes"
            );
        }
    }
}

#[test]
fn re_adding_is_a_no_op_and_a_different_file_under_a_published_name_is_refused() {
    let (_keep, files) = packages("deb", &["9.11.90"]);
    let other = build(
        &Spec::new("9.11.90"),
        &[
            "--format",
            "deb",
            "--maintainer",
            "Someone Else <else@example.org>",
        ],
    );
    let repo = tempfile::tempdir().unwrap();
    repo_add(repo.path(), &files, &[]);
    let snapshot = || {
        let out = run(std::process::Command::new("sh").arg("-c").arg(format!(
            "cd {} && find . -type f ! -name lock -exec sha256sum {{}} + | sort",
            repo.path().display()
        )));
        assert!(out.lines().count() > 5);
        out
    };
    let before = snapshot();
    let again = repo_add(repo.path(), &files, &["--json"]);
    let report: serde_json::Value = serde_json::from_str(&again).unwrap();
    assert_eq!(report["added"].as_array().unwrap().len(), 0);
    assert_eq!(report["skipped"].as_array().unwrap().len(), 1);
    assert_eq!(
        snapshot(),
        before,
        "re-adding the same file changed the repository"
    );

    let refused = output(
        mm_pkg()
            .args(["repo", "add"])
            .arg(repo.path())
            .arg(other.deb.as_ref().unwrap()),
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("other contents"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert_eq!(snapshot(), before, "a refused add changed the repository");
}
