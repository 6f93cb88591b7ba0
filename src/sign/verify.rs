//! Checking a repository's signatures (`mm-pkg repo verify`) as apt's gpgv and sqv, dnf and
//! rpmkeys check them: with the keys given and nothing else, by the same policy as release
//! signatures ([`crate::release::openpgp`]): a subkey counts only when validly bound to its
//! primary key for signing (gpgv calls anything else a bad public key), an expired or revoked
//! key and a weak digest do not count, a signature by a given key that does not verify fails
//! the whole file, and signatures by other keys are ignored as long as one good one remains.

use std::io::Cursor;

use anyhow::{Result, anyhow, bail};
use pgp::composed::{CleartextSignedMessage, Deserializable, SignedPublicKey};
use pgp::packet::{Signature, SignatureType};

use crate::release::openpgp::{Judgement, SigningKey, Trust};
use crate::release::sigfile::parse_signatures;

/// Classes a repository signature may have: binary documents (Release.gpg, repomd.xml.asc,
/// rpm header signatures) and text (the clearsigned InRelease).
const REPOSITORY_CLASSES: &[SignatureType] = &[SignatureType::Binary, SignatureType::Text];

/// The public keys (certificates) a repository's signatures are checked against.
pub struct Verifier {
    trust: Trust,
    fingerprints: Vec<String>,
}

impl Verifier {
    /// Reads one or more public keys, armored or binary (a keyring as apt's `Signed-By` and
    /// gpgv's `--keyring` take it).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let parsed: Vec<_> = if bytes.starts_with(b"-----BEGIN") {
            SignedPublicKey::from_armor_many(Cursor::new(bytes))
                .map_err(|e| anyhow!("not an OpenPGP public key: {e}"))?
                .0
                .collect()
        } else {
            SignedPublicKey::from_bytes_many(Cursor::new(bytes))
                .map_err(|e| anyhow!("not an OpenPGP public key: {e}"))?
                .collect()
        };
        let keys = parsed
            .into_iter()
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| anyhow!("not an OpenPGP public key: {e}"))?;
        if keys.is_empty() {
            bail!("no OpenPGP public key in it");
        }
        let fingerprints = keys
            .iter()
            .map(|k| {
                hex::encode_upper(pgp::types::KeyDetails::fingerprint(&k.primary_key).as_bytes())
            })
            .collect();
        Ok(Verifier {
            trust: Trust::of_keys(keys),
            fingerprints,
        })
    }

    /// Fingerprints of the primary keys, upper-case hex.
    pub fn fingerprints(&self) -> &[String] {
        &self.fingerprints
    }

    /// Checks a detached signature (armored or binary; one or more packets) over `data` as
    /// gpgv does for apt and dnf: signatures by other keys are ignored. Returns who signed.
    pub fn detached(&self, signature: &[u8], data: &[u8]) -> Result<String> {
        let signatures = parse_signatures(signature)?;
        self.judge(&signatures, data, false)
    }

    /// Checks the OpenPGP signatures an rpm carries over its main header as rpmkeys does:
    /// every one must be by a given key (rpm reports any other as NOKEY and fails).
    pub fn rpm_header(&self, packets: &[Vec<u8>], header: &[u8]) -> Result<String> {
        let mut signatures = Vec::new();
        for packet in packets {
            signatures.extend(parse_signatures(packet)?);
        }
        self.judge(&signatures, header, true)
    }

    /// Checks a clearsigned text as gpgv does for apt and returns the text it signs.
    pub fn cleartext(&self, armored: &str) -> Result<String> {
        let (msg, _) = CleartextSignedMessage::from_string(armored)
            .map_err(|e| anyhow!("not a clearsigned OpenPGP message: {e}"))?;
        let text = msg.signed_text();
        self.judge(msg.signatures(), text.as_bytes(), false)?;
        Ok(text)
    }

    /// Every signature in `signatures` by a given key must be acceptable and verify over
    /// `data`, and there must be one; those by other keys are ignored, or refused when
    /// `all_ours`.
    fn judge(&self, signatures: &[Signature], data: &[u8], all_ours: bool) -> Result<String> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()) as u32;
        let mut good = Vec::new();
        let mut others = Vec::new();
        for sig in signatures {
            match self.trust.judge_as(sig, now, REPOSITORY_CLASSES) {
                Judgement::Untrusted { issuer } if all_ours => {
                    bail!("signed by {issuer}, which is not the key given (rpm: NOKEY)")
                }
                Judgement::Untrusted { issuer } => others.push(issuer),
                Judgement::Refused {
                    fingerprint,
                    reason,
                } => bail!("the signature by {fingerprint} does not count: {reason}"),
                Judgement::Check { key, signer, .. } => {
                    let verified = match key.as_ref() {
                        SigningKey::Primary(k) => sig.verify(k, data),
                        SigningKey::Subkey(k) => sig.verify(k, data),
                    };
                    if verified.is_err() {
                        bail!("BAD signature by {signer}: it does not match the signed bytes");
                    }
                    good.push(signer);
                }
            }
        }
        if good.is_empty() {
            let by = match others.is_empty() {
                true => "nobody".to_string(),
                false => others.join(", "),
            };
            bail!(
                "no good signature by the key ({}); it is signed by {by}",
                self.fingerprints.join(", ")
            );
        }
        Ok(good.join(", "))
    }
}
