//! `build --sign-key`: the .rpm carries RSAHEADER (RSA) or DSAHEADER (EdDSA) over its main
//! header, which rpm's own checker accepts after `rpmkeys --import` and reports as a missing
//! key without it; the signed package is still byte-identical across builds and the .deb is
//! not signed.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::fixture::{Spec, write_release};
use common::gpg::GpgKey;
use common::{build, have, mm_pkg, output, run};

/// `rpmkeys --checksig -v` with an rpm database in `db`: (exit ok, stdout).
fn checksig(db: &Path, rpm: &Path) -> (bool, String) {
    let out = output(
        Command::new("rpmkeys")
            .arg("--dbpath")
            .arg(db)
            .args(["--checksig", "-v"])
            .arg(rpm),
    );
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn checksig_summary(db: &Path, rpm: &Path) -> String {
    let out = output(
        Command::new("rpmkeys")
            .arg("--dbpath")
            .arg(db)
            .arg("--checksig")
            .arg(rpm),
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn rpm_signed_with_gnupg_rsa_and_ed25519_keys_passes_rpmkeys_checksig() {
    if !have("gpg") || !have("rpmkeys") {
        return;
    }
    for (algo, pass, header_tag) in [
        ("rsa3072", None, "RSA/SHA256"),
        ("ed25519", Some("pw"), "EdDSA/SHA256"),
    ] {
        let key = GpgKey::generate(algo, pass, &[], "never");
        let (_dir, rpm) = build_signed(&key);
        let db = tempfile::tempdir().unwrap();
        let (ok, text) = checksig(db.path(), &rpm);
        assert!(!ok, "{algo}: checksig passed without the key:\n{text}");
        assert!(text.contains("NOKEY"), "{algo}: expected NOKEY:\n{text}");
        assert!(
            text.contains(header_tag),
            "{algo}: expected a {header_tag} header signature:\n{text}"
        );

        run(Command::new("rpmkeys")
            .arg("--dbpath")
            .arg(db.path())
            .arg("--import")
            .arg(&key.public_asc));
        let (ok, text) = checksig(db.path(), &rpm);
        assert!(ok, "{algo}: checksig failed with the key imported:\n{text}");
        let summary = checksig_summary(db.path(), &rpm);
        assert!(
            summary.trim_end().ends_with("digests signatures OK"),
            "{algo}: {summary}"
        );
        let short_id = key.fingerprint[32..].to_ascii_lowercase();
        assert!(
            text.contains(&short_id),
            "{algo}: key id {short_id} not named:\n{text}"
        );
    }
}

/// `mm-pkg build --format rpm --sign-key KEY` (passphrase through the environment).
fn build_signed(key: &GpgKey) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let tarball = write_release(&dir.path().join("release"), &Spec::new("9.11.90"));
    let out = dir.path().join("dist");
    let mut cmd = mm_pkg();
    cmd.args(["build", "9.11.90", "--format", "rpm", "--tarball"])
        .arg(&tarball)
        .arg("--output")
        .arg(&out)
        .arg("--sign-key")
        .arg(&key.secret)
        .env_remove("MM_PKG_SIGN_PASSPHRASE");
    if let Some(p) = &key.passphrase {
        cmd.env("MM_PKG_SIGN_PASSPHRASE", p);
    }
    run(&mut cmd);
    let rpm = common::package_in(&out, "rpm").expect("an rpm");
    (dir, rpm)
}

#[test]
fn signed_rpm_is_byte_identical_across_builds_and_the_deb_is_unsigned() {
    if !have("gpg") {
        return;
    }
    let key = GpgKey::generate("rsa3072", None, &[], "never");
    let signed = ["--sign-key", key.secret.to_str().unwrap()];
    let a = build(&Spec::new("9.11.90"), &signed);
    let b = build(&Spec::new("9.11.90"), &signed);
    let plain = build(&Spec::new("9.11.90"), &[]);
    let read = |p: &Option<std::path::PathBuf>| fs::read(p.as_ref().unwrap()).unwrap();
    assert_eq!(read(&a.rpm), read(&b.rpm), "two signed builds differ");
    assert_ne!(
        read(&a.rpm),
        read(&plain.rpm),
        "the rpm carries no signature"
    );
    assert_eq!(
        read(&a.deb),
        read(&plain.deb),
        "the .deb changed with --sign-key; apt trusts the repository signature instead"
    );
}
