//! Checking signatures against a repository's public key (`mm-pkg repo verify`).

use std::io::Cursor;

use anyhow::{Result, anyhow, bail};
use pgp::composed::{CleartextSignedMessage, Deserializable, DetachedSignature, SignedPublicKey};

/// A public key (certificate) whose primary key or subkeys may have signed.
pub struct Verifier {
    key: SignedPublicKey,
}

impl Verifier {
    /// Reads an armored or binary public key.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let key = if bytes.starts_with(b"-----BEGIN") {
            SignedPublicKey::from_armor_single(Cursor::new(bytes)).map(|(k, _)| k)
        } else {
            SignedPublicKey::from_bytes(Cursor::new(bytes))
        }
        .map_err(|e| anyhow!("not an OpenPGP public key: {e}"))?;
        Ok(Verifier { key })
    }

    /// Checks a detached signature (armored or binary) over `data`.
    pub fn detached(&self, signature: &[u8], data: &[u8]) -> Result<()> {
        let sig = if signature.starts_with(b"-----BEGIN") {
            DetachedSignature::from_armor_single(Cursor::new(signature)).map(|(s, _)| s)
        } else {
            DetachedSignature::from_bytes(Cursor::new(signature))
        }
        .map_err(|e| anyhow!("not an OpenPGP signature: {e}"))?;
        if sig.verify(&self.key, data).is_ok()
            || self
                .key
                .public_subkeys
                .iter()
                .any(|sub| sig.verify(&sub.key, data).is_ok())
        {
            return Ok(());
        }
        bail!("the signature does not verify with the repository key")
    }

    /// Checks a clearsigned text and returns the text it signs.
    pub fn cleartext(&self, armored: &str) -> Result<String> {
        let (msg, _) = CleartextSignedMessage::from_string(armored)
            .map_err(|e| anyhow!("not a clearsigned OpenPGP message: {e}"))?;
        if msg.verify(&self.key).is_ok()
            || self
                .key
                .public_subkeys
                .iter()
                .any(|sub| msg.verify(&sub.key).is_ok())
        {
            return Ok(msg.signed_text());
        }
        bail!("the clearsigned text does not verify with the repository key")
    }
}
