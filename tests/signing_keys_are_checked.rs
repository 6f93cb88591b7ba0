//! The signing key: GnuPG-exported RSA 3072 and Ed25519 keys (with and without a passphrase)
//! sign what gpg and gpgv accept; every key rpm or apt would reject is refused with one line
//! before anything is written; `mm-pkg key generate` writes a usable key pair.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::fixture::{Spec, write_release};
use common::gpg::{GpgKey, gpg, gpg_verifies};
use common::{have, mm_pkg, output, run};
use mm_pkg::sign::Signer;

const EPOCH: u64 = 1_764_000_000;

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn load(key: &GpgKey) -> anyhow::Result<Signer> {
    let armored = fs::read_to_string(&key.secret).unwrap();
    Signer::from_armored(&armored, key.passphrase.as_deref(), EPOCH, now())
}

/// `gpg --verify` in a fresh home that holds only `key`'s public key.
fn gpg_verify(key: &GpgKey, sig: &Path, data: Option<&Path>) -> bool {
    let home = tempfile::Builder::new()
        .prefix("gpgv-")
        .tempdir_in("/tmp")
        .unwrap();
    fs::set_permissions(home.path(), fs::Permissions::from_mode(0o700)).unwrap();
    run(gpg(home.path(), None).arg("--import").arg(&key.public_asc));
    let mut cmd = gpg(home.path(), None);
    cmd.arg("--verify").arg(sig);
    if let Some(d) = data {
        cmd.arg(d);
    }
    let ok = output(&mut cmd).status.success();
    let _ = Command::new("gpgconf")
        .arg("--homedir")
        .arg(home.path())
        .args(["--kill", "gpg-agent"])
        .output();
    ok
}

#[test]
fn gnupg_rsa3072_and_ed25519_keys_sign_what_gpg_and_gpgv_verify() {
    if !have("gpg") || !have("gpgv") {
        return;
    }
    for (algo, pass) in [
        ("rsa3072", None),
        ("rsa3072", Some("s3cret pass")),
        ("ed25519", None),
        ("ed25519", Some("s3cret pass")),
    ] {
        let key = GpgKey::generate(algo, pass, &[], "never");
        let signer = load(&key).unwrap_or_else(|e| panic!("{algo} {pass:?}: {e:#}"));
        assert_eq!(signer.fingerprint(), key.fingerprint);
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("Release");
        fs::write(&data, "Origin: test\nSuite: stable\n").unwrap();
        let sig = dir.path().join("Release.gpg");
        fs::write(
            &sig,
            signer.detached_armored(&fs::read(&data).unwrap()).unwrap(),
        )
        .unwrap();
        let (ok, why) = gpg_verifies(&key, &sig, Some(&data));
        assert!(ok, "{algo}: gpgv refused the detached signature: {why}");
        assert!(
            gpg_verify(&key, &sig, Some(&data)),
            "{algo}: gpg --verify refused"
        );

        let inrelease = dir.path().join("InRelease");
        let text = "Origin: test\n-dash line\nSuite: stable\n";
        fs::write(&inrelease, signer.clearsign(text).unwrap()).unwrap();
        let (ok, why) = gpg_verifies(&key, &inrelease, None);
        assert!(ok, "{algo}: gpgv refused the clearsigned text: {why}");
        assert!(
            gpg_verify(&key, &inrelease, None),
            "{algo}: gpg --verify refused"
        );

        fs::write(&data, "Origin: tampered\nSuite: stable\n").unwrap();
        let (ok, _) = gpg_verifies(&key, &sig, Some(&data));
        assert!(!ok, "{algo}: gpgv accepted a signature over changed bytes");
    }
}

#[test]
fn signatures_are_deterministic_and_dated_by_source_date_epoch() {
    if !have("gpg") {
        return;
    }
    let key = GpgKey::generate("ed25519", None, &[], "never");
    let armored = fs::read_to_string(&key.secret).unwrap();
    let created = load(&key).unwrap().signature_time();
    // A SOURCE_DATE_EPOCH after the key's creation dates the signature.
    let later = u64::from(created) + 1000;
    let a = Signer::from_armored(&armored, None, later, now()).unwrap();
    let b = Signer::from_armored(&armored, None, later, now()).unwrap();
    assert_eq!(u64::from(a.signature_time()), later);
    assert_eq!(
        a.detached_binary(b"data").unwrap(),
        b.detached_binary(b"data").unwrap()
    );
    // An older one is raised to the key's creation (gpg refuses signatures older than the key).
    let early = Signer::from_armored(&armored, None, EPOCH, now()).unwrap();
    assert!(u64::from(early.signature_time()) >= EPOCH);
    assert_eq!(early.signature_time(), created);
}

/// Runs `mm-pkg build --sign-key KEY` and returns (exit ok, stderr, output dir existed).
fn build_with_key(key: &Path, passphrase: Option<&str>) -> (bool, String, bool) {
    let dir = tempfile::tempdir().unwrap();
    let spec = Spec::new("9.11.90");
    let tarball = write_release(&dir.path().join("release"), &spec);
    let out = dir.path().join("dist");
    let mut cmd = mm_pkg();
    cmd.args(["build", "9.11.90", "--tarball"])
        .arg(&tarball)
        .arg("--output")
        .arg(&out)
        .arg("--sign-key")
        .arg(key)
        .env_remove("MM_PKG_SIGN_KEY")
        .env_remove("MM_PKG_SIGN_PASSPHRASE");
    if let Some(p) = passphrase {
        cmd.env("MM_PKG_SIGN_PASSPHRASE", p);
    }
    let o = output(&mut cmd);
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
        out.exists(),
    )
}

fn assert_refused(key: &Path, passphrase: Option<&str>, says: &str) {
    let (ok, stderr, wrote) = build_with_key(key, passphrase);
    assert!(!ok, "a key that should be refused ({says}) was accepted");
    assert_eq!(stderr.lines().count(), 1, "one line expected:\n{stderr}");
    assert!(stderr.contains(says), "expected `{says}` in:\n{stderr}");
    assert!(
        !wrote,
        "the output directory was created before the key was refused"
    );
}

#[test]
fn unusable_keys_are_refused_with_one_line_before_anything_is_written() {
    if !have("gpg") {
        return;
    }
    let locked = GpgKey::generate("ed25519", Some("right"), &[], "never");
    assert_refused(&locked.secret, Some("wrong"), "wrong passphrase");
    assert_refused(&locked.secret, None, "MM_PKG_SIGN_PASSPHRASE");
    assert_refused(&locked.public_asc, None, "public key");

    let expired = GpgKey::generate(
        "ed25519",
        None,
        &["--faked-system-time", "20200101T000000!"],
        "1y",
    );
    assert_refused(&expired.secret, None, "expired");

    let revoked = GpgKey::generate("rsa3072", None, &[], "never");
    revoked.revoke();
    assert_refused(&revoked.secret, None, "revoked");

    let dsa = GpgKey::generate("dsa2048", None, &[], "never");
    assert_refused(&dsa.secret, None, "DSA");
    let short = GpgKey::generate("rsa2048", None, &[], "never");
    assert_refused(&short.secret, None, "RSA 2048");
    let sha1 = GpgKey::generate("rsa3072", None, &["--cert-digest-algo", "SHA1"], "never");
    assert_refused(&sha1.secret, None, "SHA-1");

    // The same key with the right passphrase builds.
    let (ok, stderr, _) = build_with_key(&locked.secret, Some("right"));
    assert!(ok, "{stderr}");
}

#[test]
fn key_generate_writes_a_private_secret_key_and_public_keys_gpg_reads() {
    if !have("gpg") || !have("gpgv") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    run(mm_pkg()
        .args([
            "key",
            "generate",
            "--name",
            "Example Packages <pkg@example.org>",
            "--output",
        ])
        .arg(&keys)
        .env_remove("MM_PKG_SIGN_PASSPHRASE"));
    let secret = keys.join("signing-key.secret.asc");
    let mode = fs::metadata(&secret).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the secret key must be private");
    // gpg reads the public key and names the user id.
    let home = tempfile::Builder::new()
        .prefix("gpgk-")
        .tempdir_in("/tmp")
        .unwrap();
    let shown = run(gpg(home.path(), None)
        .args(["--show-keys", "--with-colons"])
        .arg(keys.join("signing-key.asc")));
    assert!(
        shown.contains("Example Packages <pkg@example.org>"),
        "{shown}"
    );
    // A signature by the generated key verifies with gpgv against the binary public key.
    let signer =
        Signer::from_armored(&fs::read_to_string(&secret).unwrap(), None, EPOCH, now()).unwrap();
    let data = dir.path().join("data");
    fs::write(&data, "hello").unwrap();
    let sig = dir.path().join("data.asc");
    fs::write(&sig, signer.detached_armored(b"hello").unwrap()).unwrap();
    let out = output(
        Command::new("gpgv")
            .arg("--keyring")
            .arg(keys.join("signing-key.gpg"))
            .arg(&sig)
            .arg(&data)
            .env("GNUPGHOME", home.path()),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Never overwrites a secret key.
    let again = output(
        mm_pkg()
            .args([
                "key",
                "generate",
                "--name",
                "Other <o@example.org>",
                "--output",
            ])
            .arg(&keys),
    );
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
}
