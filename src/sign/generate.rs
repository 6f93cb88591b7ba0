//! `mm-pkg key generate`: a new Ed25519 signing key for people who have none.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use pgp::composed::{ArmorOptions, EncryptionCaps, KeyType, SecretKeyParamsBuilder};
use pgp::crypto::hash::HashAlgorithm;
use pgp::types::Timestamp;

/// File name of the secret key (mode 0600).
pub const SECRET_FILE: &str = "signing-key.secret.asc";
/// File name of the armored public key.
pub const PUBLIC_ARMORED_FILE: &str = "signing-key.asc";
/// File name of the binary public key (an apt keyring for `Signed-By:`).
pub const PUBLIC_BINARY_FILE: &str = "signing-key.gpg";

/// The three files [`generate`] wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GeneratedKey {
    /// The secret key, armored, mode 0600.
    pub secret: PathBuf,
    /// The public key, armored.
    pub public_armored: PathBuf,
    /// The public key, binary.
    pub public_binary: PathBuf,
    /// Fingerprint of the new key.
    pub fingerprint: String,
}

/// Writes a new Ed25519 key for `user_id` (`Name <email>`) into `dir`, protected by
/// `passphrase` when given. `dir` must be under the user's control (see
/// [`crate::owned_dir::check`]); each file is created new, so an existing file or a link
/// planted under one of the names is refused, never overwritten or written through.
pub fn generate(user_id: &str, dir: &Path, passphrase: Option<&str>) -> Result<GeneratedKey> {
    if user_id.trim().is_empty() || user_id.contains(['\n', '\r']) {
        bail!("--name must be one line such as \"Example Packages <pkg@example.org>\"");
    }
    let secret_path = dir.join(SECRET_FILE);
    let mut params = SecretKeyParamsBuilder::default();
    params
        .key_type(KeyType::Ed25519Legacy)
        .can_certify(true)
        .can_sign(true)
        .can_encrypt(EncryptionCaps::None)
        .created_at(Timestamp::now())
        .preferred_hash_algorithms(
            [HashAlgorithm::Sha512, HashAlgorithm::Sha256]
                .into_iter()
                .collect(),
        )
        .passphrase(passphrase.filter(|p| !p.is_empty()).map(str::to_string))
        .primary_user_id(user_id.to_string());
    let key = params
        .build()
        .map_err(|e| anyhow!("key parameters: {e}"))?
        .generate(rand::thread_rng())
        .map_err(|e| anyhow!("generating the key: {e}"))?;
    let secret = key
        .to_armored_string(ArmorOptions::default())
        .map_err(|e| anyhow!("armoring the secret key: {e}"))?;
    let signer = super::Signer::from_armored(&secret, passphrase, 0, super::now())
        .context("checking the new key")?;

    let public_armored = dir.join(PUBLIC_ARMORED_FILE);
    let public_binary = dir.join(PUBLIC_BINARY_FILE);
    let files = [
        (&secret_path, secret.into_bytes(), 0o600),
        (
            &public_armored,
            signer.public_armored()?.into_bytes(),
            0o644,
        ),
        (&public_binary, signer.public_binary()?, 0o644),
    ];
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    crate::owned_dir::check(dir, "the key directory (--output)")?;
    for (path, _, _) in &files {
        if fs::symlink_metadata(path).is_ok() {
            bail!(
                "{} already exists: key generate never overwrites a key file nor writes through \
                 a link; choose another --output or move it away",
                path.display()
            );
        }
    }
    let mut written: Vec<&Path> = Vec::new();
    for (path, bytes, mode) in &files {
        if let Err(e) = write_new(path, bytes, *mode) {
            for done in written {
                let _ = fs::remove_file(done);
            }
            return Err(e);
        }
        written.push(path);
    }
    Ok(GeneratedKey {
        secret: secret_path,
        public_armored,
        public_binary,
        fingerprint: signer.fingerprint(),
    })
}

/// Creates `path` with `mode` and writes `bytes` to it, synced. `O_EXCL` (`create_new`) with
/// `O_NOFOLLOW`: fails when anything, a link included, is already there.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}
