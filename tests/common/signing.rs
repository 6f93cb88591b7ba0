//! A throw-away OpenPGP key for the tests, standing in for Mattermost's release key.

#![allow(dead_code)]

use std::sync::OnceLock;

use pgp::composed::{
    ArmorOptions, DetachedSignature, EncryptionCaps, KeyType, SecretKeyParamsBuilder,
    SignedPublicKey, SignedSecretKey,
};
use pgp::crypto::hash::HashAlgorithm;
use pgp::ser::Serialize;
use pgp::types::Password;

/// A generated signing key.
pub struct TestKey {
    secret: SignedSecretKey,
    /// The public key, armored (what `--keyring` takes).
    pub armored_public: String,
}

impl TestKey {
    /// A new Ed25519 signing key.
    pub fn generate(user_id: &str) -> Self {
        let mut params = SecretKeyParamsBuilder::default();
        params
            .key_type(KeyType::Ed25519Legacy)
            .can_certify(true)
            .can_sign(true)
            .can_encrypt(EncryptionCaps::None)
            .primary_user_id(user_id.into());
        let secret = params
            .build()
            .expect("key parameters")
            .generate(rand::thread_rng())
            .expect("key generation");
        let armored_public = SignedPublicKey::from(secret.clone())
            .to_armored_string(ArmorOptions::default())
            .expect("armor");
        TestKey {
            secret,
            armored_public,
        }
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
}

/// The key the fake release server signs with, generated once per test process.
pub fn release_key() -> &'static TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(|| TestKey::generate("Test Release Signing <release@example.org>"))
}
