//! A signed repository keeps its key: `repo add` without a key (or with an empty
//! MM_PKG_SIGN_KEY) or with another key is refused and changes nothing, so gpgv and the
//! clients' files go on trusting it. The key changes only by rotation (`--rotate-from`, then
//! `--finish-rotation`): real apt (bookworm's gpgv, trixie's sqv) and dnf holding only the
//! old key keep working through the overlap, and holding only the new key after it.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::gpg::GpgKey;
use common::repo::{apt_client, dnf, fresh_update, repo_add, tiny_deb, tiny_rpms};
use common::static_files::StaticServer;
use common::{chroot_ok, debian_root_of, have, mm_pkg, output, run};

/// `sha256sum` of every file under `dir` but the lock, sorted by path.
fn tree(dir: &Path) -> String {
    run(Command::new("sh").arg("-c").arg(format!(
        "cd {} && find . -type f ! -path ./.mm-pkg/lock -exec sha256sum {{}} + | sort -k2",
        dir.display()
    )))
}

/// A mistake: what it is, the flags, the environment.
type Case<'a> = (&'a str, &'a [&'a str], &'a [(&'a str, &'a str)]);

/// `mm-pkg repo add DIR FILES ARGS` with `env` set, which must exit 1; returns stderr.
fn refused(dir: &Path, files: &[PathBuf], args: &[&str], env: &[(&str, &str)]) -> String {
    let mut cmd = mm_pkg();
    cmd.args(["repo", "add"]).arg(dir).args(files).args(args);
    cmd.env_remove("MM_PKG_SIGN_KEY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = output(&mut cmd);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "not refused:\n{stderr}");
    stderr
}

/// The fingerprints of the primary keys in the keyring file `path`, as gpg reads it.
fn key_fingerprints(path: &Path) -> Vec<String> {
    let home = tempfile::tempdir().unwrap();
    let listing = run(Command::new("gpg")
        .arg("--homedir")
        .arg(home.path())
        .args(["--with-colons", "--show-keys"])
        .arg(path));
    let mut out = Vec::new();
    let mut primary = false;
    for line in listing.lines() {
        if line.starts_with("pub:") {
            primary = true;
        } else if let Some(fpr) = line.strip_prefix("fpr:").filter(|_| primary) {
            out.push(fpr.trim_matches(':').to_string());
            primary = false;
        } else if line.starts_with("sub:") {
            primary = false;
        }
    }
    out
}

/// True when gpgv with only `key` accepts the signature `sig` (of `data`, when detached).
fn gpgv(key: &GpgKey, sig: &Path, data: Option<&Path>) -> bool {
    common::gpg::gpg_verifies(key, sig, data).0
}

#[test]
fn a_signed_repository_is_never_written_unsigned_or_with_another_key() {
    for tool in ["gpg", "gpgv", "dpkg-deb", "rpmbuild"] {
        if !have(tool) {
            return;
        }
    }
    let key = GpgKey::generate("ed25519", None, &[], "never");
    let other = GpgKey::generate("ed25519", None, &[], "never");
    let work = tempfile::tempdir().unwrap();
    let one = tiny_deb(work.path(), "one", "1.0-1", "");
    let two = tiny_deb(work.path(), "one", "2.0-1", "");
    let rpms = tiny_rpms(work.path(), "tiny", &["1.0", "2.0"]);
    let repo = tempfile::tempdir().unwrap();
    let signed = ["--sign-key", key.secret.to_str().unwrap()];
    repo_add(repo.path(), &[one.clone(), rpms[0].clone()], &signed);
    let before = tree(repo.path());

    let other_key = ["--sign-key", other.secret.to_str().unwrap()];
    let cases: [Case; 4] = [
        ("no --sign-key", &[], &[]),
        ("an empty MM_PKG_SIGN_KEY", &[], &[("MM_PKG_SIGN_KEY", "")]),
        (
            "a blank MM_PKG_SIGN_KEY",
            &[],
            &[("MM_PKG_SIGN_KEY", "  \n")],
        ),
        ("another --sign-key", &other_key, &[]),
    ];
    for (what, args, env) in cases {
        // With a new package, and with only packages the repository holds.
        for files in [
            vec![two.clone(), rpms[1].clone()],
            vec![one.clone(), rpms[0].clone()],
        ] {
            let stderr = refused(repo.path(), &files, args, env);
            assert!(
                stderr.contains("is signed") && stderr.contains("Nothing was changed"),
                "{what}: {stderr}"
            );
            if what == "another --sign-key" {
                assert!(stderr.contains("--rotate-from"), "{what}: {stderr}");
            }
            assert_eq!(tree(repo.path()), before, "{what} changed the repository");
        }
    }
    // What clients check still holds: both signatures with the repository key, and the
    // client files still ask for them.
    let dists = repo.path().join("apt/dists/stable");
    assert!(gpgv(&key, &dists.join("InRelease"), None));
    assert!(gpgv(
        &key,
        &dists.join("Release.gpg"),
        Some(&dists.join("Release"))
    ));
    let repodata = repo.path().join("yum/repodata");
    assert!(gpgv(
        &key,
        &repodata.join("repomd.xml.asc"),
        Some(&repodata.join("repomd.xml"))
    ));
    let sources = fs::read_to_string(repo.path().join("mattermost.sources")).unwrap();
    assert!(
        sources.contains("Signed-By:") && !sources.contains("Trusted"),
        "{sources}"
    );
    let repo_file = fs::read_to_string(repo.path().join("mattermost.repo")).unwrap();
    assert!(
        repo_file.contains("gpgcheck=1\nrepo_gpgcheck=1"),
        "{repo_file}"
    );

    // The honest operator's repeated add, with the key, changes no byte.
    repo_add(repo.path(), &[one, rpms[0].clone()], &signed);
    assert_eq!(
        tree(repo.path()),
        before,
        "a repeated add changed the repository"
    );
}

#[test]
fn bookworm_apt_follows_a_key_rotation() {
    apt_rotation("bookworm");
}

#[test]
fn trixie_apt_with_sqv_follows_a_key_rotation() {
    apt_rotation("trixie");
}

/// The key apt trusts in `root`: `key` (an armored keyring) as Signed-By's file.
fn hold(root: &Path, key: &Path) {
    fs::copy(key, root.join("etc/apt/keyrings/mattermost.asc")).unwrap();
}

/// A repository rotated from an RSA key to an Ed25519 key, seen by apt in a `suite` root
/// holding the old key, the new key, or both.
fn apt_rotation(suite: &str) {
    if !have("gpg") || !have("dpkg-deb") {
        return;
    }
    let Some(root) = debian_root_of(suite) else {
        return;
    };
    let root = root.path();
    let old = GpgKey::generate("rsa3072", None, &[], "never");
    let new = GpgKey::generate("ed25519", None, &[], "never");
    let work = tempfile::tempdir().unwrap();
    let debs: Vec<PathBuf> = ["1.0-1", "2.0-1", "3.0-1"]
        .iter()
        .map(|v| tiny_deb(work.path(), "tiny", v, ""))
        .collect();
    let web = tempfile::tempdir().unwrap();
    let server = StaticServer::start(web.path());
    let repo = web.path();
    let base = ["--base-url", &server.base];
    let (old_key, new_key) = (old.secret.to_str().unwrap(), new.secret.to_str().unwrap());
    repo_add(
        repo,
        &debs[..1],
        &[&base[..], &["--sign-key", old_key]].concat(),
    );
    apt_client(root, repo);
    let (ok, text) = fresh_update(root);
    assert!(ok, "before the rotation:\n{text}");

    // The overlap: Release is signed by both keys, mattermost.asc holds both.
    let json = repo_add(
        repo,
        &debs[1..2],
        &[
            &base[..],
            &["--sign-key", new_key, "--rotate-from", old_key, "--json"],
        ]
        .concat(),
    );
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["keys"].as_array().unwrap().len(), 2, "{json}");
    assert_eq!(
        key_fingerprints(&repo.join("mattermost.asc")),
        [old.fingerprint.clone(), new.fingerprint.clone()]
    );
    let keyrings = [
        ("the old key", old.public_asc.clone()),
        ("the new key", new.public_asc.clone()),
        ("mattermost.asc", repo.join("mattermost.asc")),
    ];
    for (who, key) in &keyrings {
        hold(root, key);
        let (ok, text) = fresh_update(root);
        assert!(
            ok,
            "during the overlap, a host holding {who} failed:\n{text}"
        );
        chroot_ok(root, &["apt-get", "install", "-y", "tiny=2.0-1"]);
        chroot_ok(root, &["dpkg", "--purge", "tiny"]);
    }

    // After the rotation: the new key alone signs; a host holding only the old key is
    // refused, one holding the new key installs.
    repo_add(
        repo,
        &debs[2..],
        &[&base[..], &["--sign-key", new_key, "--finish-rotation"]].concat(),
    );
    hold(root, &new.public_asc);
    let (ok, text) = fresh_update(root);
    assert!(
        ok,
        "after the rotation, a host holding the new key failed:\n{text}"
    );
    chroot_ok(root, &["apt-get", "install", "-y", "tiny=3.0-1"]);
    hold(root, &old.public_asc);
    let (ok, text) = fresh_update(root);
    assert!(
        !ok,
        "after the rotation, the retired key still works:\n{text}"
    );
    // And the retired key is gone from what hosts are told to trust.
    assert_eq!(
        key_fingerprints(&repo.join("mattermost.asc")),
        std::slice::from_ref(&new.fingerprint)
    );
}

/// A dnf install root whose `mattermost.repo` (from `repo`) names only `key` as gpgkey.
fn dnf_holding(repo: &Path, key: &Path) -> tempfile::TempDir {
    let root = common::repo::dnf_client(repo);
    let file = root.path().join("etc/yum.repos.d/mattermost.repo");
    let text = fs::read_to_string(&file).unwrap();
    let text: String = text
        .lines()
        .map(|l| match l.starts_with("gpgkey=") {
            true => format!("gpgkey=file://{}\n", key.display()),
            false => format!("{l}\n"),
        })
        .collect();
    fs::write(&file, text).unwrap();
    root
}

/// The version of `tiny` installed in the dnf root `root`.
fn installed(root: &Path) -> String {
    run(Command::new("rpm")
        .arg("--root")
        .arg(root)
        .args(["-q", "--qf", "%{VERSION}", "tiny"]))
}

#[test]
fn dnf_follows_a_key_rotation_with_gpgcheck_and_repo_gpgcheck() {
    for tool in ["gpg", "rpmbuild", "dnf", "rpm"] {
        if !have(tool) {
            return;
        }
    }
    let old = GpgKey::generate("rsa3072", None, &[], "never");
    let new = GpgKey::generate("ed25519", None, &[], "never");
    let work = tempfile::tempdir().unwrap();
    let rpms = tiny_rpms(work.path(), "tiny", &["1.0", "2.0", "3.0"]);
    let web = tempfile::tempdir().unwrap();
    let server = StaticServer::start(web.path());
    let repo = web.path();
    let base = ["--base-url", &server.base];
    let (old_key, new_key) = (old.secret.to_str().unwrap(), new.secret.to_str().unwrap());
    repo_add(
        repo,
        &rpms[..1],
        &[&base[..], &["--sign-key", old_key]].concat(),
    );
    let install = |key: &Path, version: &str| {
        let root = dnf_holding(repo, key);
        let (ok, text) = dnf(root.path(), &["install", &format!("tiny-{version}")]);
        let got = if ok {
            installed(root.path())
        } else {
            String::new()
        };
        (ok && got == version, text)
    };
    let (ok, text) = install(&old.public_asc, "1.0");
    assert!(ok, "before the rotation:\n{text}");

    // The overlap: repomd.xml carries both signatures; the rpm copies carry the old key's
    // header signature (an rpm has room for one, and every host holds the old key).
    repo_add(
        repo,
        &rpms[1..2],
        &[
            &base[..],
            &["--sign-key", new_key, "--rotate-from", old_key],
        ]
        .concat(),
    );
    for (who, key) in [
        ("the old key", old.public_asc.clone()),
        ("mattermost.asc (both keys)", repo.join("mattermost.asc")),
    ] {
        for version in ["1.0", "2.0"] {
            let (ok, text) = install(&key, version);
            assert!(
                ok,
                "during the overlap, a host holding {who} cannot install {version}:\n{text}"
            );
        }
    }

    // After the rotation every rpm copy carries the new key's signature: a host holding only
    // the new key installs old and new versions; one holding only the old key is refused.
    repo_add(
        repo,
        &rpms[2..],
        &[&base[..], &["--sign-key", new_key, "--finish-rotation"]].concat(),
    );
    for version in ["1.0", "3.0"] {
        let (ok, text) = install(&new.public_asc, version);
        assert!(
            ok,
            "after the rotation, the new key cannot install {version}:\n{text}"
        );
    }
    let (ok, text) = install(&old.public_asc, "3.0");
    assert!(
        !ok,
        "after the rotation, the retired key still works:\n{text}"
    );
    let verify = output(
        mm_pkg()
            .args(["repo", "verify", "--key"])
            .arg(&new.public_asc)
            .arg(repo),
    );
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
}

/// Finishing a rotation signs every rpm copy with the new key: only the copies the state
/// vouches for, byte for byte. A pool rpm changed in place (same size) is refused and left
/// unsigned by the new key.
#[test]
fn finishing_a_rotation_never_signs_a_pool_file_changed_in_place() {
    for tool in ["gpg", "rpmbuild"] {
        if !have(tool) {
            return;
        }
    }
    let old = GpgKey::generate("ed25519", None, &[], "never");
    let new = GpgKey::generate("ed25519", None, &[], "never");
    let (old_key, new_key) = (old.secret.to_str().unwrap(), new.secret.to_str().unwrap());
    let work = tempfile::tempdir().unwrap();
    let rpms = tiny_rpms(work.path(), "tiny", &["1.0", "2.0", "3.0"]);
    let repo = tempfile::tempdir().unwrap();
    repo_add(repo.path(), &rpms[..1], &["--sign-key", old_key]);
    repo_add(
        repo.path(),
        &rpms[1..2],
        &["--sign-key", new_key, "--rotate-from", old_key],
    );
    let pool = fs::read_dir(repo.path().join("yum/Packages"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("1.0"))
        .unwrap();
    let mut bytes = fs::read(&pool).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    fs::write(&pool, &bytes).unwrap();
    let before = tree(repo.path());
    let stderr = refused(
        repo.path(),
        &rpms[2..],
        &["--sign-key", new_key, "--finish-rotation"],
        &[],
    );
    assert!(
        stderr.contains("is not the package the repository published"),
        "{stderr}"
    );
    assert_eq!(
        tree(repo.path()),
        before,
        "a refused rotation changed files"
    );
}
