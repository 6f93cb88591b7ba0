//! `repo list` says what a repository holds; `repo remove NAME=VERSION` withdraws a published
//! version: its pool files go, the indexes are signed again, and neither apt in a Debian
//! root nor dnf offers it any more.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::gpg::GpgKey;
use common::repo::{apt_client, dnf, dnf_client, fresh_update, repo_add, tiny_deb, tiny_rpms};
use common::static_files::StaticServer;
use common::{chroot, debian_root_of, have, mm_pkg, output, run};

/// `mm-pkg repo ARGS` (no key from the environment): (exit code, stdout, stderr).
fn repo(args: &[&str], dir: &Path) -> (Option<i32>, String, String) {
    let out = output(
        mm_pkg()
            .arg("repo")
            .arg(args[0])
            .arg(dir)
            .args(&args[1..])
            .env_remove("MM_PKG_SIGN_KEY"),
    );
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The versions of `tiny` apt in `root` offers.
fn apt_versions(root: &Path) -> String {
    let out = chroot(root, &["apt-cache", "madison", "tiny"]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_removed_version_is_gone_for_apt_and_dnf_and_list_says_what_is_held() {
    for tool in ["gpg", "dpkg-deb", "rpmbuild", "dnf"] {
        if !have(tool) {
            return;
        }
    }
    let Some(root) = debian_root_of("bookworm") else {
        return;
    };
    let root = root.path();
    let key = GpgKey::generate("ed25519", None, &[], "never");
    let work = tempfile::tempdir().unwrap();
    let mut files: Vec<PathBuf> = ["1.0-1", "2.0-1"]
        .iter()
        .map(|v| tiny_deb(work.path(), "tiny", v, ""))
        .collect();
    files.extend(tiny_rpms(work.path(), "tiny", &["1.0", "2.0"]));
    let web = tempfile::tempdir().unwrap();
    let server = StaticServer::start(web.path());
    let dir = web.path();
    let signed = ["--sign-key", key.secret.to_str().unwrap()];
    repo_add(
        dir,
        &files,
        &[&signed[..], &["--base-url", &server.base]].concat(),
    );

    let (code, list, _) = repo(&["list"], dir);
    assert_eq!(code, Some(0));
    assert_eq!(list.lines().count(), 4, "{list}");
    assert!(list.contains("deb tiny 2.0-1 amd64 apt/pool/main/t/tiny/tiny_2.0-1_amd64.deb"));
    assert!(list.contains("rpm tiny 2.0-1 x86_64 yum/Packages/tiny-2.0-1.x86_64.rpm"));
    let (_, json, _) = repo(&["list", "--json"], dir);
    let held: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(held["keys"], serde_json::json!([key.fingerprint]));
    assert_eq!(held["packages"].as_array().unwrap().len(), 4);

    apt_client(root, dir);
    let (ok, text) = fresh_update(root);
    assert!(ok && apt_versions(root).contains("2.0-1"), "{text}");

    // Refused, nothing changed: an unknown version, a malformed argument, no key.
    let before = run(Command::new("sh").arg("-c").arg(format!(
        "cd {} && find . -type f ! -path ./.mm-pkg/lock -exec sha256sum {{}} + | sort -k2",
        dir.display()
    )));
    for (args, says) in [
        (
            &[
                "remove",
                "tiny=3.0-1",
                "--sign-key",
                key.secret.to_str().unwrap(),
            ][..],
            "holds no tiny 3.0-1",
        ),
        (
            &["remove", "tiny", "--sign-key", key.secret.to_str().unwrap()][..],
            "NAME=VERSION",
        ),
        (&["remove", "tiny=2.0-1"][..], "is signed"),
        // Every version of a format: its signed index would name files that are gone.
        (
            &[
                "remove",
                "tiny=1.0-1",
                "tiny=2.0-1",
                "--sign-key",
                key.secret.to_str().unwrap(),
            ][..],
            "would withdraw every .deb package",
        ),
    ] {
        let (code, _, stderr) = repo(args, dir);
        assert_eq!(code, Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    let after = run(Command::new("sh").arg("-c").arg(format!(
        "cd {} && find . -type f ! -path ./.mm-pkg/lock -exec sha256sum {{}} + | sort -k2",
        dir.display()
    )));
    assert_eq!(before, after, "a refused remove changed the repository");

    let (code, json, stderr) = repo(
        &["remove", "tiny=2.0-1", "--json", signed[0], signed[1]],
        dir,
    );
    assert_eq!(code, Some(0), "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["removed"].as_array().unwrap().len(), 2, "{json}");
    let removed: Vec<&str> = report["changes"]["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for pool in [
        "apt/pool/main/t/tiny/tiny_2.0-1_amd64.deb",
        "yum/Packages/tiny-2.0-1.x86_64.rpm",
    ] {
        assert!(!dir.join(pool).exists(), "{pool} stayed");
        assert!(removed.contains(&pool), "{json}");
    }
    assert!(report["signed"].as_array().unwrap().len() >= 3, "{json}");
    run(mm_pkg()
        .args(["repo", "verify"])
        .arg(dir)
        .arg("--key")
        .arg(&key.public_asc));
    let (_, list, _) = repo(&["list"], dir);
    assert_eq!(list.lines().count(), 2, "{list}");
    assert!(!list.contains("2.0-1"), "{list}");

    let (ok, text) = fresh_update(root);
    let versions = apt_versions(root);
    assert!(
        ok && versions.contains("1.0-1") && !versions.contains("2.0-1"),
        "{text}{versions}"
    );
    let out = chroot(root, &["apt-get", "install", "-y", "tiny=2.0-1"]);
    assert!(!out.status.success(), "apt installed a withdrawn version");

    let client = dnf_client(dir);
    let (ok, text) = dnf(
        client.path(),
        &[
            "repoquery",
            "--showduplicates",
            "--queryformat",
            "%{version}\\n",
            "tiny",
        ],
    );
    assert!(
        ok && text.contains("1.0") && !text.contains("2.0"),
        "{text}"
    );
}
