//! Keys made by the real GnuPG, as packagers export them, for the signing tests.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::run;

/// A GnuPG home with one key, exported to files.
pub struct GpgKey {
    /// The GnuPG home (its agent is stopped on drop).
    pub home: tempfile::TempDir,
    /// Primary key fingerprint, upper-case hex.
    pub fingerprint: String,
    /// `gpg --armor --export-secret-keys`.
    pub secret: PathBuf,
    /// `gpg --armor --export`.
    pub public_asc: PathBuf,
    /// `gpg --export` (binary keyring for gpgv and apt's Signed-By).
    pub public_gpg: PathBuf,
    /// The passphrase, if any.
    pub passphrase: Option<String>,
}

/// `gpg` with this home, batch mode and the passphrase given on the command line.
pub fn gpg(home: &Path, passphrase: Option<&str>) -> Command {
    let mut cmd = Command::new("gpg");
    cmd.arg("--homedir")
        .arg(home)
        .args(["--batch", "--yes", "--pinentry-mode", "loopback"])
        .args(["--passphrase", passphrase.unwrap_or("")]);
    cmd
}

impl GpgKey {
    /// `gpg --quick-gen-key` of `algo` (`rsa3072`, `ed25519`, `dsa2048`, ...) for signing,
    /// with `extra` options before the command (e.g. `--faked-system-time`), expiring after
    /// `expire` (`never`, `1y`).
    pub fn generate(algo: &str, passphrase: Option<&str>, extra: &[&str], expire: &str) -> Self {
        let home = tempfile::Builder::new()
            .prefix("gpg-")
            .tempdir_in("/tmp")
            .unwrap();
        fs::set_permissions(
            home.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        run(gpg(home.path(), passphrase).args(extra).args([
            "--quick-gen-key",
            "Test Packages <pkg@example.org>",
            algo,
            "sign",
            expire,
        ]));
        let listing = run(gpg(home.path(), None).args(["--with-colons", "--list-secret-keys"]));
        let fingerprint = listing
            .lines()
            .find_map(|l| l.strip_prefix("fpr:"))
            .map(|l| l.trim_matches(':').to_string())
            .expect("a fingerprint");
        let key = GpgKey {
            secret: home.path().join("secret.asc"),
            public_asc: home.path().join("public.asc"),
            public_gpg: home.path().join("public.gpg"),
            fingerprint,
            passphrase: passphrase.map(str::to_string),
            home,
        };
        key.export();
        key
    }

    /// Writes the three exports (again, e.g. after a revocation was imported).
    pub fn export(&self) {
        let p = self.passphrase.as_deref();
        let secret = run(gpg(self.home.path(), p).args([
            "--armor",
            "--export-secret-keys",
            &self.fingerprint,
        ]));
        // Private, as packagers keep secret keys (mm-pkg refuses one others may read).
        fs::write(&self.secret, secret).unwrap();
        fs::set_permissions(
            &self.secret,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        let public = run(gpg(self.home.path(), p).args(["--armor", "--export", &self.fingerprint]));
        fs::write(&self.public_asc, public).unwrap();
        let out = super::output(gpg(self.home.path(), p).args(["--export", &self.fingerprint]));
        fs::write(&self.public_gpg, out.stdout).unwrap();
    }

    /// Imports the revocation certificate GnuPG made at generation and re-exports.
    pub fn revoke(&self) {
        let rev = self
            .home
            .path()
            .join("openpgp-revocs.d")
            .join(format!("{}.rev", self.fingerprint));
        let text = fs::read_to_string(&rev)
            .unwrap()
            .replace(":-----BEGIN", "-----BEGIN");
        let fixed = self.home.path().join("rev.asc");
        fs::write(&fixed, text).unwrap();
        run(gpg(self.home.path(), None).arg("--import").arg(&fixed));
        self.export();
    }
}

impl Drop for GpgKey {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .arg("--homedir")
            .arg(self.home.path())
            .args(["--kill", "gpg-agent"])
            .output();
    }
}

/// True when `gpg --verify SIG DATA` with only `key`'s public key accepts `sig` over `data`.
pub fn gpg_verifies(key: &GpgKey, sig: &Path, data: Option<&Path>) -> (bool, String) {
    let home = tempfile::Builder::new()
        .prefix("gpgv-")
        .tempdir_in("/tmp")
        .unwrap();
    let mut cmd = Command::new("gpgv");
    cmd.arg("--keyring").arg(&key.public_gpg).arg(sig);
    if let Some(d) = data {
        cmd.arg(d);
    }
    cmd.env("GNUPGHOME", home.path());
    let out = super::output(&mut cmd);
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.success(), text)
}
