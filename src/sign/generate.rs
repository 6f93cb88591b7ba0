//! `mm-pkg key generate`: a new Ed25519 signing key for people who have none.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
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
/// `passphrase` when given. Refuses to overwrite an existing secret key.
pub fn generate(user_id: &str, dir: &Path, passphrase: Option<&str>) -> Result<GeneratedKey> {
    if user_id.trim().is_empty() || user_id.contains(['\n', '\r']) {
        bail!("--name must be one line such as \"Example Packages <pkg@example.org>\"");
    }
    let secret_path = dir.join(SECRET_FILE);
    if secret_path.exists() {
        bail!(
            "{} already exists: mm-pkg never overwrites a secret key; choose another --output",
            secret_path.display()
        );
    }
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

    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&secret_path)
        .with_context(|| format!("creating {}", secret_path.display()))?;
    file.write_all(secret.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", secret_path.display()))?;
    let public_armored = dir.join(PUBLIC_ARMORED_FILE);
    fs::write(&public_armored, signer.public_armored()?)
        .with_context(|| format!("writing {}", public_armored.display()))?;
    let public_binary = dir.join(PUBLIC_BINARY_FILE);
    fs::write(&public_binary, signer.public_binary()?)
        .with_context(|| format!("writing {}", public_binary.display()))?;
    Ok(GeneratedKey {
        secret: secret_path,
        public_armored,
        public_binary,
        fingerprint: signer.fingerprint(),
    })
}
