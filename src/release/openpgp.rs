//! What counts as a good OpenPGP signature of a release: the trusted keys (Mattermost's
//! embedded key plus `--keyring`), which of their (sub)keys may sign, and which signature
//! packets are acceptable before any byte is hashed. The policy follows gpgv and sqv: only
//! binary-document signatures with a strong digest, by a key that is neither revoked nor
//! expired, count.

use std::fs::File;
use std::io::{self, BufReader};
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use pgp::composed::{Deserializable, SignedPublicKey, SignedPublicSubKey};
use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::{PublicKey, PublicSubkey, Signature, SignatureType, SubpacketData};
use pgp::types::{KeyDetails, Tag, Timestamp};

/// Mattermost's release signing key (see data/SOURCE.md).
pub const MATTERMOST_KEY: &str = include_str!("../../data/mattermost-release-key.asc");
/// Its fingerprint.
pub const MATTERMOST_FINGERPRINT: &str = "A1B31D46F0F3A10B02CF2D44F8F2C31744774B28";

/// Digests a release signature may use (gpgv and sqv refuse MD5, SHA-1 and RIPEMD-160).
pub const ACCEPTED_HASHES: &[HashAlgorithm] = &[
    HashAlgorithm::Sha256,
    HashAlgorithm::Sha384,
    HashAlgorithm::Sha512,
    HashAlgorithm::Sha224,
    HashAlgorithm::Sha3_256,
    HashAlgorithm::Sha3_512,
];

/// Signature classes a release signature may have: a binary document (0x00) only.
pub const RELEASE_CLASSES: &[SignatureType] = &[SignatureType::Binary];

/// The keys whose signatures are trusted.
#[derive(Debug, Clone)]
pub struct Trust {
    keys: Vec<TrustedKey>,
}

#[derive(Debug, Clone)]
struct TrustedKey {
    key: SignedPublicKey,
    /// The embedded Mattermost key: its copy's expiry is not applied (see docs/packagers.md and data/SOURCE.md).
    embedded: bool,
}

/// A (sub)key allowed to make release signatures.
#[derive(Debug, Clone)]
pub enum SigningKey {
    /// A primary key.
    Primary(PublicKey),
    /// A subkey validly bound to a trusted primary key.
    Subkey(PublicSubkey),
}

/// What the policy says about one signature packet, before the data is hashed.
#[derive(Debug)]
pub enum Judgement {
    /// Not made by a trusted key: ignored (key rotation: old and new keys may both sign).
    Untrusted {
        /// Who made it, as far as the packet says, and why that key is not trusted.
        issuer: String,
    },
    /// Made by a trusted key but unacceptable whatever the data: the release is refused.
    Refused {
        /// The fingerprint of the trusted primary key.
        fingerprint: String,
        /// Why.
        reason: String,
    },
    /// Acceptable on its face: it must verify over the tarball's bytes.
    Check {
        /// The key that checks it.
        key: Box<SigningKey>,
        /// The trusted primary key's fingerprint, upper-case hex.
        fingerprint: String,
        /// The fingerprint, and the subkey's when a subkey signed.
        signer: String,
    },
}

impl Trust {
    /// Mattermost's key, plus every armored key in each of `keyrings`.
    pub fn new(keyrings: &[impl AsRef<Path>]) -> Result<Self> {
        let (key, _) = SignedPublicKey::from_armor_single(io::Cursor::new(MATTERMOST_KEY))
            .map_err(|e| anyhow!("the embedded Mattermost release key does not parse: {e}"))?;
        let mut keys = vec![TrustedKey {
            key,
            embedded: true,
        }];
        for path in keyrings {
            let path = path.as_ref();
            let file =
                File::open(path).with_context(|| format!("opening keyring {}", path.display()))?;
            let (parsed, _) =
                SignedPublicKey::from_armor_many(BufReader::new(file)).map_err(|e| {
                    anyhow!(
                        "keyring {} is not armored OpenPGP keys: {e}",
                        path.display()
                    )
                })?;
            let before = keys.len();
            for key in parsed {
                let key = key.map_err(|e| anyhow!("keyring {}: {e}", path.display()))?;
                keys.push(TrustedKey {
                    key,
                    embedded: false,
                });
            }
            if keys.len() == before {
                bail!("keyring {} holds no key", path.display());
            }
        }
        // A copy of Mattermost's key given with --keyring (say, the re-signed one) replaces
        // the embedded copy, and like every --keyring key its expiry and revocation apply.
        let given: Vec<String> = keys[1..].iter().map(|k| fpr(&k.key.primary_key)).collect();
        keys.retain(|k| !(k.embedded && given.contains(&fpr(&k.key.primary_key))));
        Ok(Trust { keys })
    }

    /// Exactly `keys` (no embedded key), each with its expiry and revocation applied, as
    /// gpgv applies them to a keyring: the keys a repository's signatures are checked against.
    pub fn of_keys(keys: Vec<SignedPublicKey>) -> Self {
        Trust {
            keys: keys
                .into_iter()
                .map(|key| TrustedKey {
                    key,
                    embedded: false,
                })
                .collect(),
        }
    }

    /// Fingerprints of the trusted primary keys, upper-case hex.
    pub fn fingerprints(&self) -> Vec<String> {
        self.keys.iter().map(|k| fpr(&k.key.primary_key)).collect()
    }

    /// Judges the release signature `sig` at time `now` (seconds since the epoch).
    pub fn judge(&self, sig: &Signature, now: u32) -> Judgement {
        self.judge_as(sig, now, RELEASE_CLASSES)
    }

    /// Judges `sig` at time `now`, a signature of one of `classes` (a repository's
    /// clearsigned `InRelease` is a text signature, 0x01).
    pub fn judge_as(&self, sig: &Signature, now: u32, classes: &[SignatureType]) -> Judgement {
        let ids = sig.issuer_key_id();
        let fps = sig.issuer_fingerprint();
        let issued = |k: &dyn KeyDetails| {
            ids.contains(&&k.legacy_key_id()) || fps.contains(&&k.fingerprint())
        };
        let mut rejected_subkey = None;
        for trusted in &self.keys {
            let primary = &trusted.key.primary_key;
            let subkey = trusted.key.public_subkeys.iter().find(|s| issued(&s.key));
            if !issued(primary) && subkey.is_none() {
                continue;
            }
            // The embedded copy's expiry is not applied (see docs/packagers.md); every other key's is.
            let self_sig = (!trusted.embedded)
                .then(|| newest_self_signature(&trusted.key, now))
                .flatten();
            let primary_expires = self_sig.and_then(|s| expiry(s, primary.created_at()));
            let (key, created, expires) = if issued(primary) {
                if self_sig.is_some_and(|s| !may_sign(s)) {
                    return Judgement::Refused {
                        fingerprint: fpr(primary),
                        reason: format!(
                            "the key {} is not flagged for signing (only a signing subkey may sign)",
                            fpr(primary)
                        ),
                    };
                }
                let key = SigningKey::Primary(primary.clone());
                (key, primary.created_at(), primary_expires)
            } else if let Some(sub) = subkey {
                match bound_signing_subkey(primary, sub, trusted.embedded, now) {
                    Ok(sub_expires) => {
                        let key = SigningKey::Subkey(sub.key.clone());
                        // A subkey dies with its primary key.
                        let expires = match (primary_expires, sub_expires) {
                            (Some(a), Some(b)) => Some(a.min(b)),
                            (a, b) => a.or(b),
                        };
                        (key, sub.key.created_at(), expires)
                    }
                    Err(why) => {
                        rejected_subkey = Some(format!(
                            "{} (claims to be a subkey of {}, but {why})",
                            fpr(&sub.key),
                            fpr(primary)
                        ));
                        continue;
                    }
                }
            } else {
                continue;
            };
            let fingerprint = fpr(primary);
            let signer = match &key {
                SigningKey::Primary(_) => fingerprint.clone(),
                SigningKey::Subkey(k) => format!("{fingerprint} (subkey {})", fpr(k)),
            };
            let refuse = |reason: String| Judgement::Refused {
                fingerprint: fingerprint.clone(),
                reason,
            };
            if !trusted.embedded && is_revoked(&trusted.key) {
                return refuse(format!("the key {} is revoked", fpr(primary)));
            }
            if let Err(reason) = acceptable(sig, created, expires, now, classes) {
                return refuse(reason);
            }
            return Judgement::Check {
                key: Box::new(key),
                fingerprint,
                signer,
            };
        }
        let issuer = rejected_subkey.unwrap_or_else(|| {
            let named: Vec<String> = fps
                .iter()
                .map(|f| hex::encode_upper(f.as_bytes()))
                .chain(ids.iter().map(|k| hex::encode_upper(k.as_ref())))
                .collect();
            match named.is_empty() {
                true => "an unnamed key".to_string(),
                false => named.join("/"),
            }
        });
        Judgement::Untrusted { issuer }
    }
}

fn fpr(key: &impl KeyDetails) -> String {
    hex::encode_upper(key.fingerprint().as_bytes())
}

fn class_name(typ: SignatureType) -> &'static str {
    match typ {
        SignatureType::Binary => "binary document",
        SignatureType::Text => "text document",
        SignatureType::Standalone => "standalone",
        SignatureType::Timestamp => "timestamp",
        SignatureType::ThirdParty => "third-party confirmation",
        SignatureType::CertGeneric
        | SignatureType::CertPersona
        | SignatureType::CertCasual
        | SignatureType::CertPositive => "certification",
        SignatureType::CertRevocation => "certification revocation",
        SignatureType::SubkeyBinding | SignatureType::KeyBinding => "key binding",
        SignatureType::Key => "direct key",
        SignatureType::KeyRevocation | SignatureType::SubkeyRevocation => "key revocation",
        SignatureType::Other(_) => "unknown",
    }
}

fn date(secs: u64) -> String {
    chrono::DateTime::from_timestamp(secs as i64, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| format!("{secs} s after the epoch"))
}

/// How far in the future a signature may be dated (sqv's tolerance for clock skew).
const CLOCK_SKEW: u64 = 30 * 60;

/// The checks on a data signature that need no data: class (one of `classes`), digest, dates.
fn acceptable(
    sig: &Signature,
    key_created: Timestamp,
    expires: Option<u64>,
    now: u32,
    classes: &[SignatureType],
) -> Result<(), String> {
    let Some(typ) = sig.typ() else {
        return Err(format!(
            "its signature version {:?} is not supported",
            sig.version()
        ));
    };
    if !classes.contains(&typ) {
        let wanted: Vec<String> = classes
            .iter()
            .map(|c| {
                format!(
                    "{} signatures (class 0x{:02x})",
                    class_name(*c),
                    u8::from(*c)
                )
            })
            .collect();
        let over = match classes == RELEASE_CLASSES {
            true => " over the whole tarball",
            false => "",
        };
        return Err(format!(
            "it is a class 0x{:02x} ({}) signature; only {}{over} count",
            u8::from(typ),
            class_name(typ),
            wanted.join(" and ")
        ));
    }
    let hash = sig.hash_alg().unwrap_or(HashAlgorithm::None);
    if !ACCEPTED_HASHES.contains(&hash) {
        let accepted: Vec<String> = ACCEPTED_HASHES.iter().map(|h| h.to_string()).collect();
        return Err(format!(
            "it uses the digest {hash}, which is too weak (accepted: {})",
            accepted.join(", ")
        ));
    }
    let Some(created) = sig.created() else {
        return Err("it has no creation time".into());
    };
    let created = u64::from(created.as_secs());
    if created > u64::from(now) + CLOCK_SKEW {
        return Err(format!(
            "it is dated {}, in the future (sqv allows {} minutes of clock skew)",
            date(created),
            CLOCK_SKEW / 60
        ));
    }
    let key_created = u64::from(key_created.as_secs());
    if created < key_created {
        return Err(format!(
            "it is dated {}, before its key was created ({})",
            date(created),
            date(key_created)
        ));
    }
    if let Some(valid) = sig.signature_expiration_time().filter(|d| d.as_secs() != 0) {
        let end = created + u64::from(valid.as_secs());
        if end <= u64::from(now) {
            return Err(format!("the signature expired on {}", date(end)));
        }
    }
    if let Some(end) = expires {
        if end <= created {
            return Err(format!(
                "its key expired on {}, before the signature was made ({})",
                date(end),
                date(created)
            ));
        }
        if end <= u64::from(now) {
            return Err(format!("its key expired on {}", date(end)));
        }
    }
    Ok(())
}

/// The primary key's newest valid self-signature (user ID certifications and direct key
/// signatures) that has not expired at `now`: it decides the key's expiry and flags.
fn newest_self_signature(key: &SignedPublicKey, now: u32) -> Option<&Signature> {
    let primary = &key.primary_key;
    let certifications = key.details.users.iter().flat_map(move |user| {
        user.signatures.iter().filter(move |s| {
            alive(s, now)
                && s.verify_certification(primary, Tag::UserId, &user.id)
                    .is_ok()
        })
    });
    let direct = key
        .details
        .direct_signatures
        .iter()
        .filter(|s| alive(s, now) && s.verify_key(primary).is_ok());
    certifications
        .chain(direct)
        .max_by_key(|s| s.created().map(|t| t.as_secs()).unwrap_or(0))
}

/// Whether `sig` has not passed its own expiration time at `now` (gpgv and sqv ignore a
/// self-signature or binding signature that has).
fn alive(sig: &Signature, now: u32) -> bool {
    match (sig.created(), sig.signature_expiration_time()) {
        (Some(created), Some(valid)) if valid.as_secs() != 0 => {
            u64::from(created.as_secs()) + u64::from(valid.as_secs()) > u64::from(now)
        }
        _ => true,
    }
}

/// When a key created at `created` expires per `self_sig` (seconds since the epoch);
/// `None` when it does not.
fn expiry(self_sig: &Signature, created: Timestamp) -> Option<u64> {
    self_sig
        .key_expiration_time()
        .filter(|d| d.as_secs() != 0)
        .map(|d| u64::from(created.as_secs()) + u64::from(d.as_secs()))
}

/// Whether `self_sig` lets its key sign: its key flags say so, or it has none (older keys).
fn may_sign(self_sig: &Signature) -> bool {
    let has_flags = self_sig.config().is_some_and(|c| {
        c.hashed_subpackets()
            .any(|p| matches!(p.data, SubpacketData::KeyFlags(_)))
    });
    !has_flags || self_sig.key_flags().sign()
}

/// A valid, unrevoked key revocation signature by the key itself.
fn is_revoked(key: &SignedPublicKey) -> bool {
    key.details.revocation_signatures.iter().any(|s| {
        s.typ() == Some(SignatureType::KeyRevocation) && s.verify_key(&key.primary_key).is_ok()
    })
}

/// Checks that `sub` is bound to `primary` for signing: a valid binding signature by the
/// primary, not expired itself at `now`, with the signing flag and the subkey's own
/// back-signature, and no valid revocation. Returns when the binding says the subkey
/// expires (not applied to the embedded key).
fn bound_signing_subkey(
    primary: &PublicKey,
    sub: &SignedPublicSubKey,
    embedded: bool,
    now: u32,
) -> Result<Option<u64>, String> {
    let valid = |typ| {
        sub.signatures.iter().filter(move |s| {
            s.typ() == Some(typ) && s.verify_subkey_binding(primary, &sub.key).is_ok()
        })
    };
    if valid(SignatureType::SubkeyRevocation).next().is_some() {
        return Err("it is revoked".into());
    }
    if valid(SignatureType::SubkeyBinding).next().is_none() {
        return Err("it has no valid binding signature by that key".into());
    }
    let binding = valid(SignatureType::SubkeyBinding)
        .filter(|s| alive(s, now))
        .max_by_key(|s| s.created().map(|t| t.as_secs()).unwrap_or(0))
        .ok_or("its binding signature by that key has expired")?;
    if !binding.key_flags().sign() {
        return Err("its binding does not allow signing".into());
    }
    let back = binding
        .embedded_signature()
        .is_some_and(|b| b.verify_primary_key_binding(&sub.key, primary).is_ok());
    if !back {
        return Err("it has no valid back-signature (it never claimed that primary key)".into());
    }
    Ok(match embedded {
        true => None,
        false => expiry(binding, sub.key.created_at()),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn embedded_key_is_mattermosts() {
        let trust = Trust::new(&[] as &[&Path]).unwrap();
        assert_eq!(trust.fingerprints(), [MATTERMOST_FINGERPRINT]);
    }

    /// A throw-away Ed25519 signing key for unit tests.
    pub(crate) fn throwaway_key() -> pgp::composed::SignedSecretKey {
        use pgp::composed::{EncryptionCaps, KeyType, SecretKeyParamsBuilder};
        let mut params = SecretKeyParamsBuilder::default();
        params
            .key_type(KeyType::Ed25519Legacy)
            .can_sign(true)
            .can_encrypt(EncryptionCaps::None)
            .primary_user_id("x <x@example.org>".into());
        params
            .build()
            .unwrap()
            .generate(rand::thread_rng())
            .unwrap()
    }

    /// A signature naming `key` as its issuer (made by a throw-away key: `judge` looks at
    /// the packet only, never at the data).
    fn claiming(key: &PublicKey, created: u32) -> Signature {
        use pgp::packet::{SignatureConfig, Subpacket};
        use pgp::types::Password;
        let other = throwaway_key();
        let mut config = SignatureConfig::v4(
            SignatureType::Binary,
            other.primary_key.algorithm(),
            HashAlgorithm::Sha256,
        );
        config.hashed_subpackets = vec![
            Subpacket::regular(SubpacketData::SignatureCreationTime(Timestamp::from_secs(
                created,
            )))
            .unwrap(),
            Subpacket::regular(SubpacketData::IssuerFingerprint(key.fingerprint())).unwrap(),
        ];
        config
            .sign(&other.primary_key, &Password::empty(), &b"x"[..])
            .unwrap()
    }

    #[test]
    fn a_keyring_copy_of_the_mattermost_key_replaces_the_embedded_one() {
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("mattermost.asc");
        std::fs::write(&copy, MATTERMOST_KEY).unwrap();
        let trust = Trust::new(&[&copy]).unwrap();
        assert_eq!(trust.fingerprints(), [MATTERMOST_FINGERPRINT]);
        let sig = claiming(&trust.keys[0].key.primary_key, 1_800_000_000 - 10);
        assert!(matches!(
            trust.judge(&sig, 1_800_000_000),
            Judgement::Refused { .. }
        ));
    }

    #[test]
    fn embedded_key_copy_expiry_is_not_applied_but_a_keyring_copy_expires() {
        let now = 1_800_000_000; // 2027
        let trust = Trust::new(&[] as &[&Path]).unwrap();
        let mattermost = trust.keys[0].key.clone();
        let sig = claiming(&mattermost.primary_key, now - 10);
        assert!(matches!(trust.judge(&sig, now), Judgement::Check { .. }));

        let keyring = Trust {
            keys: vec![TrustedKey {
                key: mattermost,
                embedded: false,
            }],
        };
        match keyring.judge(&sig, now) {
            Judgement::Refused { reason, .. } => {
                assert!(reason.contains("expired on 2024-04-06"), "{reason}")
            }
            other => panic!("a --keyring copy must expire: {other:?}"),
        }
    }
}
