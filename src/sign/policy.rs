//! Which OpenPGP keys mm-pkg signs with: the one place that says what rpm, apt (gpgv, sqv) and
//! dnf accept, so that a key they would reject is refused before anything is written.

use anyhow::{Result, bail};
use pgp::composed::SignedSecretKey;
use pgp::crypto::hash::HashAlgorithm;
use pgp::crypto::public_key::PublicKeyAlgorithm;
use pgp::packet::{Signature, SignatureType};
use pgp::ser::Serialize;
use pgp::types::{KeyDetails, PublicParams};

/// Smallest RSA modulus accepted, in bits (what the issue and current distributions ask for).
pub const MIN_RSA_BITS: u32 = 3072;
/// Smallest RSA modulus rpm and apt still accept at all; between this and [`MIN_RSA_BITS`] the
/// refusal says so.
pub const WEAK_RSA_BITS: u32 = 2048;
/// The digest every signature mm-pkg makes uses.
pub const SIGNATURE_HASH: HashAlgorithm = HashAlgorithm::Sha256;

/// The kind of a signing key, as far as signatures are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA with a modulus of this many bits.
    Rsa(u32),
    /// EdDSA over Ed25519 (the legacy OpenPGP v4 form GnuPG writes and rpm reads).
    Ed25519,
}

impl std::fmt::Display for KeyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyKind::Rsa(bits) => write!(f, "RSA {bits}"),
            KeyKind::Ed25519 => f.write_str("Ed25519"),
        }
    }
}

/// The kind of `key`, or why it is refused (DSA, ElGamal, NIST curves, short RSA, ...).
pub fn key_kind(key: &impl KeyDetails) -> Result<KeyKind> {
    match (key.algorithm(), key.public_params()) {
        (PublicKeyAlgorithm::RSA | PublicKeyAlgorithm::RSASign, PublicParams::RSA(_)) => {
            let bits = rsa_bits(key.public_params())?;
            if bits < MIN_RSA_BITS {
                bail!(
                    "the signing key is RSA {bits}: rpm and apt need RSA of at least {MIN_RSA_BITS} bits \
                     (or Ed25519){}",
                    if bits < WEAK_RSA_BITS {
                        "; keys under 2048 bits are rejected outright"
                    } else {
                        ""
                    }
                );
            }
            Ok(KeyKind::Rsa(bits))
        }
        (PublicKeyAlgorithm::EdDSALegacy, _) => Ok(KeyKind::Ed25519),
        (PublicKeyAlgorithm::DSA, _) => {
            bail!(
                "the signing key is DSA, which rpm and apt no longer accept: use RSA 3072+ or Ed25519"
            )
        }
        (PublicKeyAlgorithm::Ed25519, _) => bail!(
            "the signing key is an OpenPGP v6-style Ed25519 key (algorithm 27), which rpm 4.18 \
             cannot check: export a GnuPG Ed25519 key (algorithm 22) or use RSA 3072+"
        ),
        (other, _) => {
            bail!("the signing key's algorithm {other:?} is not accepted: use RSA 3072+ or Ed25519")
        }
    }
}

/// Bits of an RSA modulus: the bit count that opens the serialized MPI `n`.
fn rsa_bits(params: &PublicParams) -> Result<u32> {
    let bytes = params
        .to_bytes()
        .map_err(|e| anyhow::anyhow!("cannot read the RSA key: {e}"))?;
    if bytes.len() < 2 {
        bail!("the RSA key has no modulus");
    }
    Ok(u32::from(u16::from_be_bytes([bytes[0], bytes[1]])))
}

/// Refuses a binding or self-signature made with SHA-1 (or weaker): sqv and rpm reject keys
/// whose self-signatures rely on it.
pub fn check_binding_hash(sig: &Signature, what: &str) -> Result<()> {
    let weak = match sig.hash_alg() {
        Some(HashAlgorithm::Sha1) => "SHA-1",
        Some(HashAlgorithm::Md5) => "MD5",
        Some(HashAlgorithm::Ripemd160) => "RIPEMD-160",
        _ => return Ok(()),
    };
    bail!(
        "the signing key's {what} uses {weak}, which apt (sqv) and rpm reject: re-certify the key \
         with SHA-256 (gpg --cert-digest-algo SHA256 --quick-set-expire FINGERPRINT 2y) or make a new one"
    )
}

/// Refuses a revoked or expired primary key; `now` is the current time in seconds.
pub fn check_validity(key: &SignedSecretKey, now: u64) -> Result<()> {
    if key
        .details
        .revocation_signatures
        .iter()
        .any(|s| s.typ() == Some(SignatureType::KeyRevocation))
    {
        bail!("the signing key is revoked: make or use another key");
    }
    let self_sigs: Vec<&Signature> = key
        .details
        .users
        .iter()
        .flat_map(|u| u.signatures.iter())
        .chain(key.details.direct_signatures.iter())
        .collect();
    if self_sigs.is_empty() {
        bail!("the signing key has no self-signature (no user id): it cannot be used");
    }
    for sig in &self_sigs {
        check_binding_hash(sig, "self-signature")?;
    }
    // The newest self-signature says when the key expires.
    let newest = self_sigs
        .iter()
        .max_by_key(|s| s.created().map(|t| t.as_secs()).unwrap_or(0))
        .expect("not empty");
    check_expiry(
        key.primary_key.created_at().as_secs(),
        newest.key_expiration_time().map(|d| d.as_secs()),
        now,
        "the signing key",
    )
}

/// Refuses a key created at `created` that expires `expires_after` seconds later, if that
/// moment is before `now`.
pub fn check_expiry(created: u32, expires_after: Option<u32>, now: u64, what: &str) -> Result<()> {
    if let Some(after) = expires_after.filter(|a| *a > 0) {
        let end = u64::from(created) + u64::from(after);
        if end <= now {
            let date = chrono::DateTime::from_timestamp(end as i64, 0)
                .map(|d| d.format("%Y-%m-%d").to_string())
                .unwrap_or_else(|| end.to_string());
            bail!(
                "{what} expired on {date}: extend it (gpg --quick-set-expire) or use another key"
            );
        }
    }
    Ok(())
}
