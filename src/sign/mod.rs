//! Signing with the packager's OpenPGP key: the one place that knows keys.
//!
//! The same [`Signer`] signs RPM headers (through [`crate::rpm::HeaderSigner`]), and the apt
//! and yum repository metadata (`InRelease`, `Release.gpg`, `repomd.xml.asc`). It loads an
//! armored secret key from a file or from `MM_PKG_SIGN_KEY`, unlocks it with
//! `MM_PKG_SIGN_PASSPHRASE`, and refuses, before anything is written, every key rpm or apt
//! would reject ([`policy`]). Signatures are deterministic (RSA PKCS#1 v1.5 and EdDSA) and
//! dated by `SOURCE_DATE_EPOCH`, so the same inputs give the same bytes.

pub mod generate;
pub mod multi;
pub mod policy;
pub mod verify;

use std::io::Cursor;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use pgp::composed::{
    ArmorOptions, CleartextSignedMessage, Deserializable, DetachedSignature, SignedPublicKey,
    SignedSecretKey,
};
use pgp::packet::{Signature, SignatureConfig, SignatureType, Subpacket, SubpacketData};
use pgp::ser::Serialize;
use pgp::types::{KeyDetails, Password, SigningKey, Timestamp};

pub use policy::KeyKind;

/// Environment variable holding the armored secret key itself (for CI secrets).
pub const KEY_VAR: &str = "MM_PKG_SIGN_KEY";
/// Environment variable holding the key's passphrase.
pub const PASSPHRASE_VAR: &str = "MM_PKG_SIGN_PASSPHRASE";

/// A secret key ready to sign, checked against [`policy`].
pub struct Signer {
    key: SignedSecretKey,
    /// Index of the signing subkey in `key.secret_subkeys`, or `None` for the primary key.
    subkey: Option<usize>,
    password: Password,
    kind: KeyKind,
    /// Creation time written into every signature.
    time: u32,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({} {})", self.kind, self.fingerprint())
    }
}

impl Signer {
    /// The key named by `--sign-key FILE`, else the one in `MM_PKG_SIGN_KEY`, else none.
    /// Signatures are dated `source_date` (or the key's creation, if the key is newer).
    pub fn from_flag_or_env(file: Option<&Path>, source_date: u64) -> Result<Option<Self>> {
        let passphrase = std::env::var(PASSPHRASE_VAR).ok();
        let (armored, origin) = match file {
            Some(path) => (read_secret_file(path)?, path.display().to_string()),
            None => match std::env::var(KEY_VAR) {
                Ok(v) if !v.trim().is_empty() => (v, format!("${KEY_VAR}")),
                _ => return Ok(None),
            },
        };
        Self::from_armored(&armored, passphrase.as_deref(), source_date, now())
            .with_context(|| format!("signing key {origin}"))
            .map(Some)
    }

    /// Loads and checks an armored secret key; `now` decides expiry, `source_date` dates the
    /// signatures.
    pub fn from_armored(
        armored: &str,
        passphrase: Option<&str>,
        source_date: u64,
        now: u64,
    ) -> Result<Self> {
        if armored.contains("-----BEGIN PGP PUBLIC KEY BLOCK-----") {
            bail!(
                "this is a public key; signing needs the secret key (gpg --armor --export-secret-keys)"
            );
        }
        if !armored.contains("-----BEGIN PGP PRIVATE KEY BLOCK-----") {
            bail!(
                "not an armored OpenPGP secret key (expected -----BEGIN PGP PRIVATE KEY BLOCK-----)"
            );
        }
        let (key, _) = SignedSecretKey::from_armor_single(Cursor::new(armored.as_bytes()))
            .map_err(|e| anyhow!("the secret key does not parse: {e}"))?;
        key.verify_bindings()
            .map_err(|e| anyhow!("the key's self-signatures do not verify: {e}"))?;
        policy::check_validity(&key, now)?;
        let subkey = signing_subkey(&key, now)?;
        let kind = match subkey {
            Some(i) => policy::key_kind(&key.secret_subkeys[i].key)?,
            None => policy::key_kind(&key.primary_key)?,
        };
        let password = Password::from(passphrase.unwrap_or(""));
        let mut signer = Signer {
            key,
            subkey,
            password,
            kind,
            time: 0,
        };
        signer.time = u32::try_from(source_date.max(u64::from(signer.created_at())))
            .context("SOURCE_DATE_EPOCH does not fit OpenPGP's 32-bit time")?;
        // Unlock once now, so that a wrong passphrase is refused before anything is written.
        signer.sign(SignatureType::Binary, b"mm-pkg").map_err(|e| {
            let encrypted = signer.secret_is_encrypted();
            match (encrypted, passphrase) {
                (true, None) => {
                    anyhow!("the secret key is protected by a passphrase: set {PASSPHRASE_VAR}")
                }
                (true, Some(_)) => {
                    anyhow!("wrong passphrase for the secret key ({PASSPHRASE_VAR})")
                }
                (false, _) => anyhow!("cannot sign with this key: {e}"),
            }
        })?;
        Ok(signer)
    }

    fn secret_is_encrypted(&self) -> bool {
        match self.subkey {
            Some(i) => self.key.secret_subkeys[i]
                .key
                .secret_params()
                .is_encrypted(),
            None => self.key.primary_key.secret_params().is_encrypted(),
        }
    }

    fn created_at(&self) -> u32 {
        match self.subkey {
            Some(i) => self.key.secret_subkeys[i].key.created_at().as_secs(),
            None => self.key.primary_key.created_at().as_secs(),
        }
    }

    /// RSA or Ed25519 (decides rpm's RSAHEADER or DSAHEADER).
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// Fingerprint of the primary key, upper-case hex.
    pub fn fingerprint(&self) -> String {
        hex::encode_upper(self.key.primary_key.fingerprint().as_bytes())
    }

    /// The creation time written into signatures (seconds since 1970).
    pub fn signature_time(&self) -> u32 {
        self.time
    }

    /// A v4 signature of `data` dated [`Self::signature_time`] with the issuer subpackets.
    fn sign(&self, typ: SignatureType, data: &[u8]) -> Result<Signature> {
        self.sign_at(typ, data, self.time)
    }

    /// A v4 signature of `data` dated `time` (or the key's creation, if the key is newer).
    fn sign_at(&self, typ: SignatureType, data: &[u8], time: u32) -> Result<Signature> {
        let key: &dyn SigningKey = match self.subkey {
            Some(i) => &self.key.secret_subkeys[i].key,
            None => &self.key.primary_key,
        };
        let config = self.config(key, typ, time.max(self.created_at()))?;
        config
            .sign(&Box::new(key), &self.password, data)
            .map_err(|e| anyhow!("OpenPGP signing failed: {e}"))
    }

    fn config(
        &self,
        key: &dyn SigningKey,
        typ: SignatureType,
        time: u32,
    ) -> Result<SignatureConfig> {
        let mut config = SignatureConfig::v4(typ, key.algorithm(), policy::SIGNATURE_HASH);
        let sub = |d| Subpacket::regular(d).map_err(|e| anyhow!("signature subpacket: {e}"));
        config.hashed_subpackets = vec![
            sub(SubpacketData::IssuerFingerprint(key.fingerprint()))?,
            sub(SubpacketData::SignatureCreationTime(Timestamp::from_secs(
                time,
            )))?,
        ];
        config.unhashed_subpackets = vec![sub(SubpacketData::IssuerKeyId(key.legacy_key_id()))?];
        Ok(config)
    }

    /// A binary detached signature packet of `data` (what rpm stores in RSAHEADER/DSAHEADER).
    pub fn detached_binary(&self, data: &[u8]) -> Result<Vec<u8>> {
        self.detached_binary_at(data, self.time)
    }

    /// [`Self::detached_binary`] dated `time` (or the key's creation, if the key is newer).
    pub fn detached_binary_at(&self, data: &[u8], time: u32) -> Result<Vec<u8>> {
        let sig = DetachedSignature::new(self.sign_at(SignatureType::Binary, data, time)?);
        sig.to_bytes()
            .map_err(|e| anyhow!("serializing a signature: {e}"))
    }

    /// An armored detached signature of `data` (`Release.gpg`, `repomd.xml.asc`).
    pub fn detached_armored(&self, data: &[u8]) -> Result<String> {
        let sig = DetachedSignature::new(self.sign(SignatureType::Binary, data)?);
        sig.to_armored_string(ArmorOptions::default())
            .map_err(|e| anyhow!("armoring a signature: {e}"))
    }

    /// `text` clearsigned (`InRelease`).
    pub fn clearsign(&self, text: &str) -> Result<String> {
        let key: &dyn SigningKey = match self.subkey {
            Some(i) => &self.key.secret_subkeys[i].key,
            None => &self.key.primary_key,
        };
        let config = self.config(key, SignatureType::Text, self.time)?;
        let msg = CleartextSignedMessage::new(text, config, &Box::new(key), &self.password)
            .map_err(|e| anyhow!("clearsigning failed: {e}"))?;
        msg.to_armored_string(ArmorOptions::default())
            .map_err(|e| anyhow!("armoring a clearsigned text: {e}"))
    }

    /// True when the binary signature packet `packet` is a v4 signature that this key's
    /// signing (sub)key made over `data`, with a digest gpgv and rpm accept. Checked
    /// cryptographically: a packet that merely names the key as its issuer is not enough.
    pub fn made(&self, packet: &[u8], data: &[u8]) -> bool {
        let Ok(sig) = DetachedSignature::from_bytes(Cursor::new(packet)) else {
            return false;
        };
        let strong = sig
            .signature
            .hash_alg()
            .is_some_and(|h| crate::release::verify::ACCEPTED_HASHES.contains(&h));
        let public = self.public();
        let verified = match self.subkey {
            Some(i) => public
                .public_subkeys
                .get(i)
                .is_some_and(|sub| sig.verify(&sub.key, data).is_ok()),
            None => sig.verify(&public.primary_key, data).is_ok(),
        };
        strong && verified
    }

    /// The public key (certificate), armored.
    pub fn public_armored(&self) -> Result<String> {
        self.public()
            .to_armored_string(ArmorOptions::default())
            .map_err(|e| anyhow!("armoring the public key: {e}"))
    }

    /// The public key (certificate) in binary form (a `.gpg` keyring apt reads).
    pub fn public_binary(&self) -> Result<Vec<u8>> {
        self.public()
            .to_bytes()
            .map_err(|e| anyhow!("serializing the public key: {e}"))
    }

    fn public(&self) -> SignedPublicKey {
        self.key.to_public_key()
    }
}

/// Reads the secret key file `path`, refusing one that group or others may read or write, as
/// ssh refuses such private keys ("UNPROTECTED PRIVATE KEY FILE"): any local user could copy
/// the key, and then a signature would prove nothing about who made the bytes. The mode is
/// that of the file opened (a link is followed, as ssh follows it), so it cannot change
/// between the check and the read.
fn read_secret_file(path: &Path) -> Result<String> {
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;
    let what = || format!("reading the signing key {}", path.display());
    let mut file = std::fs::File::open(path).with_context(what)?;
    let meta = file.metadata().with_context(what)?;
    if !meta.is_file() {
        bail!("the signing key {} is not a regular file", path.display());
    }
    let mut text = String::new();
    file.read_to_string(&mut text).with_context(what)?;
    let mode = meta.permissions().mode() & 0o7777;
    // A public key given by mistake is refused for what it is, by the caller.
    if mode & 0o077 != 0 && text.contains("PRIVATE KEY BLOCK") {
        bail!(
            "the signing key {} has mode {mode:04o}: other users may read the secret key. \
             Make it private (chmod 600 {}), as ssh demands of private keys, or pass the key \
             in ${KEY_VAR} instead",
            path.display(),
            path.display()
        );
    }
    Ok(text)
}

/// The newest valid subkey marked for signing, if any (GnuPG signs with it rather than with
/// the primary key).
fn signing_subkey(key: &SignedSecretKey, now: u64) -> Result<Option<usize>> {
    let mut best: Option<(usize, u32)> = None;
    for (i, sub) in key.secret_subkeys.iter().enumerate() {
        let Some(binding) = sub
            .signatures
            .iter()
            .filter(|s| s.typ() == Some(SignatureType::SubkeyBinding))
            .max_by_key(|s| s.created().map(|t| t.as_secs()).unwrap_or(0))
        else {
            continue;
        };
        let revoked = sub
            .signatures
            .iter()
            .any(|s| s.typ() == Some(SignatureType::SubkeyRevocation));
        if revoked || !binding.key_flags().sign() {
            continue;
        }
        let created = sub.key.created_at().as_secs();
        let expired = policy::check_expiry(
            created,
            binding.key_expiration_time().map(|d| d.as_secs()),
            now,
            "the signing subkey",
        )
        .is_err();
        if expired {
            continue;
        }
        policy::check_binding_hash(binding, "signing subkey's binding signature")?;
        if best.is_none_or(|(_, t)| created > t) {
            best = Some((i, created));
        }
    }
    Ok(best.map(|(i, _)| i))
}

/// The current time in seconds (for expiry checks; signatures use SOURCE_DATE_EPOCH).
fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// rpm's header signature: RSAHEADER for RSA keys, DSAHEADER for EdDSA keys (as rpmsign).
impl crate::rpm::HeaderSigner for Signer {
    fn sign_header(&self, header: &[u8], time: u32) -> Result<(u32, Vec<u8>)> {
        let tag = match self.kind {
            KeyKind::Rsa(_) => crate::rpm::header::tag::SIG_RSAHEADER,
            KeyKind::Ed25519 => crate::rpm::header::tag::SIG_DSAHEADER,
        };
        Ok((tag, self.detached_binary_at(header, time)?))
    }
}
