//! Throw-away OpenPGP keys for the tests, standing in for Mattermost's release key, and
//! signatures crafted the way no well-behaved tool makes them (other classes, weak digests,
//! odd dates, revoked or expired keys, grafted subkeys).

#![allow(dead_code)]

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use pgp::composed::{
    ArmorOptions, DetachedSignature, EncryptionCaps, KeyType, SecretKeyParamsBuilder,
    SignedPublicKey, SignedSecretKey, SubkeyParamsBuilder,
};
use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::{Signature, SignatureConfig, SignatureType, Subpacket, SubpacketData};
use pgp::ser::Serialize;
use pgp::types::{Duration, KeyDetails, Password, SigningKey, Tag, Timestamp};

/// Seconds since the epoch.
pub fn now() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32
}

/// A generated signing key.
pub struct TestKey {
    secret: SignedSecretKey,
    /// The public key, armored (what `--keyring` takes).
    pub armored_public: String,
}

/// How to craft a data signature.
#[derive(Debug, Clone, Copy)]
pub struct Craft {
    /// Signature class.
    pub class: SignatureType,
    /// Digest.
    pub hash: HashAlgorithm,
    /// Creation time (seconds since the epoch).
    pub created: u32,
    /// Signature expiration, seconds after creation.
    pub expires_after: Option<u32>,
}

impl Craft {
    /// What upstream makes: class 0x00, SHA-256, now, no expiry.
    pub fn binary() -> Self {
        Craft {
            class: SignatureType::Binary,
            hash: HashAlgorithm::Sha256,
            created: now(),
            expires_after: None,
        }
    }
}

/// Armors a public key for `--keyring`.
pub fn armor(key: &SignedPublicKey) -> String {
    key.to_armored_string(ArmorOptions::default())
        .expect("armor")
}

impl TestKey {
    /// A new Ed25519 signing key.
    pub fn generate(user_id: &str) -> Self {
        Self::build(user_id, now(), false)
    }

    /// A new RSA-2048 signing key (Ed25519 cannot sign with the weak digests some tests need).
    pub fn rsa(user_id: &str) -> Self {
        Self::with_type(KeyType::Rsa(2048), user_id, now(), true, None)
    }

    /// A key created at `created` (seconds since the epoch), with a signing subkey when `subkey`.
    pub fn build(user_id: &str, created: u32, subkey: bool) -> Self {
        Self::with_type(
            KeyType::Ed25519Legacy,
            user_id,
            created,
            true,
            subkey.then_some(true),
        )
    }

    /// A key with an Ed25519 subkey bound for authentication only (not for signing).
    pub fn with_authentication_subkey(user_id: &str) -> Self {
        Self::with_type(KeyType::Ed25519Legacy, user_id, now(), true, Some(false))
    }

    /// A key whose primary is flagged for certification only (no signing subkey).
    pub fn certify_only(user_id: &str) -> Self {
        Self::with_type(KeyType::Ed25519Legacy, user_id, now(), false, None)
    }

    /// `signs`: the primary key is flagged for signing. `subkey`: `Some(true)` adds a
    /// signing subkey, `Some(false)` an authentication one.
    fn with_type(
        key_type: KeyType,
        user_id: &str,
        created: u32,
        signs: bool,
        subkey: Option<bool>,
    ) -> Self {
        let mut params = SecretKeyParamsBuilder::default();
        params
            .key_type(key_type)
            .can_certify(true)
            .can_sign(signs)
            .can_encrypt(EncryptionCaps::None)
            .created_at(Timestamp::from_secs(created))
            .primary_user_id(user_id.into());
        if let Some(sign) = subkey {
            params.subkey(
                SubkeyParamsBuilder::default()
                    .key_type(KeyType::Ed25519Legacy)
                    .can_sign(sign)
                    .can_authenticate(!sign)
                    .created_at(Timestamp::from_secs(created))
                    .build()
                    .expect("subkey parameters"),
            );
        }
        let secret = params
            .build()
            .expect("key parameters")
            .generate(rand::thread_rng())
            .expect("key generation");
        let armored_public = armor(&SignedPublicKey::from(secret.clone()));
        TestKey {
            secret,
            armored_public,
        }
    }

    /// The secret key (for `--sign-key`, once armored).
    pub fn secret_key(&self) -> &SignedSecretKey {
        &self.secret
    }

    /// The public key.
    pub fn public(&self) -> SignedPublicKey {
        SignedPublicKey::from(self.secret.clone())
    }

    /// Upper-case hex fingerprint of the primary key.
    pub fn fingerprint(&self) -> String {
        hex::encode_upper(self.secret.primary_key.fingerprint().as_bytes())
    }

    /// A binary detached signature of `data`, as upstream's `.sig` files are.
    pub fn sign(&self, data: &[u8]) -> Vec<u8> {
        let sig = DetachedSignature::sign_binary_data(
            rand::thread_rng(),
            &self.secret.primary_key,
            &Password::empty(),
            HashAlgorithm::Sha256,
            data,
        )
        .expect("signing");
        sig.to_bytes().expect("serialize signature")
    }

    /// A binary detached signature of `data` by the first subkey.
    pub fn sign_with_subkey(&self, data: &[u8]) -> Vec<u8> {
        let sig = DetachedSignature::sign_binary_data(
            rand::thread_rng(),
            &self.secret.secret_subkeys[0].key,
            &Password::empty(),
            HashAlgorithm::Sha256,
            data,
        )
        .expect("signing");
        sig.to_bytes().expect("serialize signature")
    }

    /// A signature of `data` made as `craft` says, by the primary key.
    pub fn sign_crafted(&self, data: &[u8], craft: Craft) -> Vec<u8> {
        let key = &self.secret.primary_key;
        let mut config = SignatureConfig::v4(craft.class, key.algorithm(), craft.hash);
        config.hashed_subpackets = vec![
            Subpacket::regular(SubpacketData::SignatureCreationTime(Timestamp::from_secs(
                craft.created,
            )))
            .unwrap(),
            Subpacket::regular(SubpacketData::IssuerFingerprint(key.fingerprint())).unwrap(),
        ];
        if let Some(secs) = craft.expires_after {
            config.hashed_subpackets.push(
                Subpacket::regular(SubpacketData::SignatureExpirationTime(Duration::from_secs(
                    secs,
                )))
                .unwrap(),
            );
        }
        config.unhashed_subpackets =
            vec![Subpacket::regular(SubpacketData::IssuerKeyId(key.legacy_key_id())).unwrap()];
        // Hashed by hand: the pgp crate refuses to make standalone and timestamp signatures
        // (which hash one byte of the data, not the data).
        let mut hasher = craft.hash.new_hasher().expect("hasher");
        config
            .hash_data_to_sign(&mut hasher, data)
            .expect("hash data");
        let len = config
            .hash_signature_data(&mut hasher)
            .expect("hash config");
        hasher.update(&config.trailer(len).expect("trailer"));
        let hash = hasher.finalize();
        let signature =
            SigningKey::sign(key, &Password::empty(), craft.hash, &hash).expect("signing");
        let sig = Signature::from_config(config, [hash[0], hash[1]], signature).expect("signature");
        DetachedSignature::new(sig)
            .to_bytes()
            .expect("serialize signature")
    }

    fn self_config(&self, class: SignatureType) -> SignatureConfig {
        let key = &self.secret.primary_key;
        let mut config = SignatureConfig::v4(class, key.algorithm(), HashAlgorithm::Sha256);
        config.hashed_subpackets = vec![
            Subpacket::regular(SubpacketData::SignatureCreationTime(Timestamp::now())).unwrap(),
            Subpacket::regular(SubpacketData::IssuerFingerprint(key.fingerprint())).unwrap(),
        ];
        config
    }

    /// The public key with a valid revocation by itself.
    pub fn revoked_public(&self) -> SignedPublicKey {
        let mut public = self.public();
        let revocation = self
            .self_config(SignatureType::KeyRevocation)
            .sign_key(
                &self.secret.primary_key,
                &Password::empty(),
                &public.primary_key,
            )
            .expect("revocation");
        public.details.revocation_signatures.push(revocation);
        public
    }

    /// The public key with its first subkey revoked by the primary key.
    pub fn subkey_revoked_public(&self) -> SignedPublicKey {
        let mut public = self.public();
        let revocation = self
            .self_config(SignatureType::SubkeyRevocation)
            .sign_subkey_binding(
                &self.secret.primary_key,
                &public.primary_key,
                &Password::empty(),
                &public.public_subkeys[0].key,
            )
            .expect("subkey revocation");
        public.public_subkeys[0].signatures.push(revocation);
        public
    }

    /// The public key whose first subkey's only binding was made `ago` seconds ago and
    /// expires (the binding signature itself) `valid_for` seconds after it was made; the
    /// subkey's back-signature is kept.
    pub fn subkey_binding_expiring_public(&self, ago: u32, valid_for: u32) -> SignedPublicKey {
        let mut public = self.public();
        let old = &public.public_subkeys[0].signatures[0];
        let back = old.embedded_signature().expect("back-signature").clone();
        let key = &self.secret.primary_key;
        let mut config = SignatureConfig::v4(
            SignatureType::SubkeyBinding,
            key.algorithm(),
            HashAlgorithm::Sha256,
        );
        config.hashed_subpackets = [
            SubpacketData::SignatureCreationTime(Timestamp::from_secs(now() - ago)),
            SubpacketData::SignatureExpirationTime(Duration::from_secs(valid_for)),
            SubpacketData::KeyFlags(old.key_flags()),
            SubpacketData::IssuerFingerprint(key.fingerprint()),
            SubpacketData::EmbeddedSignature(Box::new(back)),
        ]
        .into_iter()
        .map(|d| Subpacket::regular(d).unwrap())
        .collect();
        let binding = config
            .sign_subkey_binding(
                key,
                &public.primary_key,
                &Password::empty(),
                &public.public_subkeys[0].key,
            )
            .expect("subkey binding");
        public.public_subkeys[0].signatures = vec![binding];
        public
    }

    /// The public key with a newer self-signature saying it expires `secs` after creation.
    pub fn expiring_public(&self, secs: u32) -> SignedPublicKey {
        // Strictly newer than the original self-signature.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let mut public = self.public();
        let mut config = self.self_config(SignatureType::CertPositive);
        config.hashed_subpackets.push(
            Subpacket::regular(SubpacketData::KeyExpirationTime(Duration::from_secs(secs)))
                .unwrap(),
        );
        let user = &mut public.details.users[0];
        let cert = config
            .sign_certification(
                &self.secret.primary_key,
                &public.primary_key,
                &Password::empty(),
                Tag::UserId,
                &user.id,
            )
            .expect("certification");
        user.signatures.push(cert);
        public
    }
}

/// The key the fake release server signs with, generated once per test process.
pub fn release_key() -> &'static TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(|| TestKey::generate("Test Release Signing <release@example.org>"))
}
