//! A secret key file that other users may read is refused, as ssh refuses such private keys:
//! whoever copies it can sign as the repository. `key generate` never writes through a link
//! planted under one of its file names, nor into a directory other users may write to.

mod common;

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use common::gpg::GpgKey;
use common::repo::packages;
use common::{have, mm_pkg, output};

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn a_secret_key_file_others_may_read_is_refused_by_repo_add_and_build() {
    if !have("gpg") {
        return;
    }
    let key = GpgKey::generate("ed25519", None, &[], "never");
    let (_keep, debs) = packages("deb", &["9.11.90"]);
    let repo = tempfile::tempdir().unwrap();
    let dir = repo.path().join("repo");
    for mode in [0o644, 0o640, 0o604, 0o620] {
        chmod(&key.secret, mode);
        let out = output(
            mm_pkg()
                .args(["repo", "add"])
                .arg(&dir)
                .arg(&debs[0])
                .arg("--sign-key")
                .arg(&key.secret),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "mode {mode:o} accepted:\n{stderr}"
        );
        assert!(
            stderr.contains(&format!("has mode {mode:04o}")) && stderr.contains("chmod 600"),
            "{stderr}"
        );
        assert!(!dir.exists(), "a refused key still wrote the repository");
    }
    // A tarball that exists (an empty one): the key is refused before the tarball is read.
    let tarball = repo.path().join("mattermost-9.11.90-linux-amd64.tar.gz");
    std::fs::write(&tarball, b"").unwrap();
    let out = output(
        mm_pkg()
            .args(["build", "9.11.90", "--tarball"])
            .arg(&tarball)
            .arg("--sign-key")
            .arg(&key.secret),
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("chmod 600"));
    chmod(&key.secret, 0o600);
    let out = output(
        mm_pkg()
            .args(["repo", "add"])
            .arg(&dir)
            .arg(&debs[0])
            .arg("--sign-key")
            .arg(&key.secret),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `key generate --output dir`: (exit ok, stderr).
fn generate(dir: &Path) -> (bool, String) {
    let out = output(
        mm_pkg()
            .args([
                "key",
                "generate",
                "--name",
                "Test <t@example.org>",
                "--output",
            ])
            .arg(dir)
            .env_remove("MM_PKG_SIGN_PASSPHRASE"),
    );
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn key_generate_never_writes_through_a_planted_link_nor_into_a_directory_others_write() {
    let work = tempfile::tempdir().unwrap();
    let victim = work.path().join("victim");
    fs::write(&victim, "precious\n").unwrap();
    for name in ["signing-key.asc", "signing-key.gpg"] {
        // A link to an existing file, and a dangling one (a write would create its target).
        for target in [victim.clone(), work.path().join("created-through-link")] {
            let keys = tempfile::tempdir().unwrap();
            chmod(keys.path(), 0o700);
            symlink(&target, keys.path().join(name)).unwrap();
            let (ok, stderr) = generate(keys.path());
            assert!(!ok, "{name} -> {}: accepted", target.display());
            assert!(stderr.contains("already exists"), "{stderr}");
            assert!(
                !keys.path().join("signing-key.secret.asc").exists(),
                "a refused run left a secret key"
            );
        }
    }
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
    assert!(!work.path().join("created-through-link").exists());

    let shared = work.path().join("shared");
    fs::create_dir(&shared).unwrap();
    chmod(&shared, 0o777);
    let (ok, stderr) = generate(&shared);
    assert!(
        !ok && stderr.contains("other users can write to it"),
        "{stderr}"
    );

    let fresh = work.path().join("keys");
    let (ok, stderr) = generate(&fresh);
    assert!(ok, "{stderr}");
    let mode = |f: &str| fs::metadata(fresh.join(f)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("signing-key.secret.asc"), 0o600);
    assert_eq!(mode("signing-key.asc"), 0o644);
}
