//! The OpenPGP check accepts what gpgv and sqv accept and nothing else: only binary-document
//! signatures over the whole tarball with a strong digest count; every packet of the `.sig`
//! is looked at; subkeys need a valid binding by their trusted primary; revoked or expired
//! keys and expired or back-dated signatures are refused. Each release here is a local
//! `--tarball` with its `.sig` beside it, so nothing but the signature vouches for it.

mod common;

use std::fs;
use std::path::PathBuf;
use std::process::Output;

use common::fixture::{Spec, write_release};
use common::mirror::{build_local, text};
use common::signing::{Craft, TestKey, armor, now, release_key};
use pgp::composed::SignedPublicKey;
use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::SignatureType;

/// A synthetic 9.11.90 release (not in the catalog) with a signature beside it.
struct Local {
    dir: tempfile::TempDir,
    tarball: PathBuf,
    bytes: Vec<u8>,
}

impl Local {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let tarball = write_release(&dir.path().join("release"), &Spec::new("9.11.90"));
        let bytes = fs::read(&tarball).unwrap();
        Local {
            dir,
            tarball,
            bytes,
        }
    }

    /// Builds with `sig` beside the tarball, trusting `keys`; returns the output and the
    /// files left in the output directory (but its `cache`).
    fn build(&self, sig: &[u8], keys: &[String]) -> (Output, Vec<String>) {
        fs::write(self.tarball.with_extension("gz.sig"), sig).unwrap();
        let keyring = self.dir.path().join("keyring.asc");
        fs::write(&keyring, keys.concat()).unwrap();
        let out = tempfile::tempdir_in(self.dir.path()).unwrap();
        let result = build_local(&self.tarball, &keyring, out.path());
        let mut left: Vec<String> = fs::read_dir(out.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "cache")
            .collect();
        left.sort();
        (result, left)
    }

    /// Asserts the build is refused, leaves nothing (not even a temporary file) in the
    /// output directory and says `needle`.
    fn refused(&self, sig: &[u8], keys: &[String], needle: &str) {
        let (out, left) = self.build(sig, keys);
        let text = text(&out);
        assert!(!out.status.success(), "accepted:\n{text}");
        assert!(left.is_empty(), "left in the output directory: {left:?}");
        assert!(text.contains(needle), "expected `{needle}` in:\n{text}");
    }

    /// Asserts the build succeeds, signed by `fingerprint`.
    fn accepted(&self, sig: &[u8], keys: &[String], fingerprint: &str) {
        let (out, left) = self.build(sig, keys);
        let text = text(&out);
        assert!(out.status.success(), "refused:\n{text}");
        assert_eq!(left, ["SHA256SUMS", "mattermost_9.11.90-1_amd64.deb"]);
        assert!(text.contains(&format!("signed by {fingerprint}")), "{text}");
    }
}

fn trusted() -> Vec<String> {
    vec![release_key().armored_public.clone()]
}

#[test]
fn only_binary_document_signatures_count() {
    let local = Local::new();
    let key = release_key();
    for (class, needle) in [
        (SignatureType::Standalone, "class 0x02 (standalone)"),
        (SignatureType::Timestamp, "class 0x40 (timestamp)"),
        (SignatureType::Text, "class 0x01 (text document)"),
    ] {
        let craft = Craft {
            class,
            ..Craft::binary()
        };
        // A standalone or timestamp signature hashes one byte of its input, not the
        // tarball: made over any other file, it would "verify" this one.
        let sig = key.sign_crafted(b"\x1fany other tarball", craft);
        local.refused(&sig, &trusted(), needle);
    }
    // The same crafting with class 0x00 over the tarball is accepted.
    let good = key.sign_crafted(&local.bytes, Craft::binary());
    local.accepted(&good, &trusted(), &key.fingerprint());
}

#[test]
fn weak_digests_are_refused() {
    let local = Local::new();
    let key = TestKey::rsa("RSA Mirror <rsa@example.org>");
    let trusted = || vec![key.armored_public.clone()];
    for hash in [
        HashAlgorithm::Sha1,
        HashAlgorithm::Ripemd160,
        HashAlgorithm::Md5,
    ] {
        let craft = Craft {
            hash,
            ..Craft::binary()
        };
        let sig = key.sign_crafted(&local.bytes, craft);
        local.refused(
            &sig,
            &trusted(),
            &format!("digest {hash}, which is too weak"),
        );
    }
    let strong = Craft {
        hash: HashAlgorithm::Sha512,
        ..Craft::binary()
    };
    local.accepted(
        &key.sign_crafted(&local.bytes, strong),
        &trusted(),
        &key.fingerprint(),
    );
}

#[test]
fn every_signature_packet_is_examined() {
    let local = Local::new();
    let key = release_key();
    let good = key.sign(&local.bytes);
    let bad = key.sign(b"other bytes");
    let stranger = TestKey::generate("Old Key <old@example.org>");

    // A good signature followed by a bad one by a trusted key.
    local.refused(
        &[good.clone(), bad.clone()].concat(),
        &trusted(),
        "BAD signature",
    );
    local.refused(&[bad, good.clone()].concat(), &trusted(), "BAD signature");
    // A signature by a key nobody trusts, then a good one (key rotation): accepted.
    let rotated = [stranger.sign(&local.bytes), good.clone()].concat();
    local.accepted(&rotated, &trusted(), &key.fingerprint());
    // Only untrusted signatures: refused.
    local.refused(&stranger.sign(&local.bytes), &trusted(), "not trusted");
    // Trailing garbage after the packets.
    let garbage = [good.clone(), b"trailing garbage".to_vec()].concat();
    local.refused(&garbage, &trusted(), "not an OpenPGP signature");
    // A packet cut short at the end.
    local.refused(
        &[good.clone(), good[..10].to_vec()].concat(),
        &trusted(),
        "not an OpenPGP signature",
    );
}

#[test]
fn only_keys_and_subkeys_bound_for_signing_count() {
    let local = Local::new();
    let owner = TestKey::build("Owner <owner@example.org>", now() - 100, true);
    let attacker = TestKey::build("Mallory <m@example.org>", now() - 100, true);

    // The owner's own signing subkey, bound by the owner: accepted.
    local.accepted(
        &owner.sign_with_subkey(&local.bytes),
        std::slice::from_ref(&owner.armored_public),
        &owner.fingerprint(),
    );

    // The attacker grafts their subkey (with their own binding) onto the owner's key.
    let mut grafted: SignedPublicKey = owner.public();
    grafted.public_subkeys = attacker.public().public_subkeys;
    local.refused(
        &attacker.sign_with_subkey(&local.bytes),
        &[armor(&grafted)],
        "no valid binding signature",
    );

    // The owner's subkey once the owner revoked it.
    local.refused(
        &owner.sign_with_subkey(&local.bytes),
        &[armor(&owner.subkey_revoked_public())],
        "it is revoked",
    );

    // A primary key flagged for certification only signs anyway.
    let certifier = TestKey::certify_only("Certifier <c@example.org>");
    local.refused(
        &certifier.sign(&local.bytes),
        std::slice::from_ref(&certifier.armored_public),
        "is not flagged for signing",
    );

    // A subkey the owner bound for authentication, not for signing.
    let auth = TestKey::with_authentication_subkey("Owner <owner@example.org>");
    local.refused(
        &auth.sign_with_subkey(&local.bytes),
        std::slice::from_ref(&auth.armored_public),
        "its binding does not allow signing",
    );
}

#[test]
fn a_subkey_whose_binding_signature_expired_does_not_count() {
    // gpgv and sqv ignore a binding signature past its own expiration time: the subkey is
    // then not bound, and a data signature it makes is not valid.
    let local = Local::new();
    let owner = TestKey::build("Owner <owner@example.org>", now() - 1000, true);
    let sig = owner.sign_with_subkey(&local.bytes);
    local.accepted(
        &sig,
        &[armor(&owner.subkey_binding_expiring_public(200, 86400))],
        &owner.fingerprint(),
    );
    local.refused(
        &sig,
        &[armor(&owner.subkey_binding_expiring_public(200, 100))],
        "its binding signature by that key has expired",
    );
}

#[test]
fn revoked_and_expired_keyring_keys_are_refused() {
    let local = Local::new();
    let key = TestKey::build("Mirror <mirror@example.org>", now() - 1000, false);
    let sig = key.sign(&local.bytes);
    local.accepted(
        &sig,
        std::slice::from_ref(&key.armored_public),
        &key.fingerprint(),
    );
    local.refused(&sig, &[armor(&key.revoked_public())], "is revoked");
    // Expired 990 s ago, long before this signature was made.
    local.refused(
        &sig,
        &[armor(&key.expiring_public(10))],
        "before the signature was made",
    );
}

#[test]
fn expired_and_backdated_signatures_are_refused() {
    let local = Local::new();
    let key = TestKey::build("Mirror <mirror@example.org>", now() - 1000, false);
    let keys = [key.armored_public.clone()];
    let expired = Craft {
        created: now() - 500,
        expires_after: Some(100),
        ..Craft::binary()
    };
    local.refused(
        &key.sign_crafted(&local.bytes, expired),
        &keys,
        "the signature expired on",
    );
    let backdated = Craft {
        created: now() - 5000,
        ..Craft::binary()
    };
    local.refused(
        &key.sign_crafted(&local.bytes, backdated),
        &keys,
        "before its key was created",
    );
    // Dated a day ahead: sqv refuses a signature that is not yet alive (beyond its 30
    // minutes of clock skew), so it does not count.
    let future = Craft {
        created: now() + 86400,
        ..Craft::binary()
    };
    local.refused(
        &key.sign_crafted(&local.bytes, future),
        &keys,
        "in the future",
    );
    // A signature that expires later is fine.
    let valid = Craft {
        expires_after: Some(86400),
        ..Craft::binary()
    };
    local.accepted(
        &key.sign_crafted(&local.bytes, valid),
        &keys,
        &key.fingerprint(),
    );
}

/// Runs gpg with its home in `home`; returns stdout.
fn gpg(home: &std::path::Path, args: &[&str]) -> Vec<u8> {
    let out = common::output(
        std::process::Command::new("gpg")
            .arg("--homedir")
            .arg(home)
            .args(["--batch", "--quiet", "--passphrase", ""])
            .args(args),
    );
    assert!(out.status.success(), "gpg {args:?}: {}", text(&out));
    out.stdout
}

#[test]
fn signatures_made_by_gpg_are_judged_as_gpgv_judges_them() {
    if !common::have("gpg") || !common::have("gpgv") {
        return;
    }
    let local = Local::new();
    let home = tempfile::tempdir().unwrap();
    let tarball = local.tarball.to_str().unwrap();
    // A certification-only primary key with a signing subkey, as release keys often are.
    gpg(
        home.path(),
        &[
            "--quick-gen-key",
            "Mirror <mirror@example.org>",
            "ed25519",
            "cert",
            "1y",
        ],
    );
    let listing = String::from_utf8(gpg(home.path(), &["--with-colons", "--list-keys"])).unwrap();
    let fpr = listing
        .lines()
        .find_map(|l| l.strip_prefix("fpr:::::::::"))
        .unwrap()
        .trim_end_matches(':')
        .to_string();
    gpg(
        home.path(),
        &["--quick-add-key", &fpr, "ed25519", "sign", "1y"],
    );
    let armored = String::from_utf8(gpg(home.path(), &["--armor", "--export", &fpr])).unwrap();
    let keyring = home.path().join("keyring.gpg");
    fs::write(&keyring, gpg(home.path(), &["--export", &fpr])).unwrap();
    let sig = local.dir.path().join("gpg.sig");
    let sign = |data: &str| {
        let _ = fs::remove_file(&sig);
        gpg(
            home.path(),
            &["--detach-sign", "-o", sig.to_str().unwrap(), data],
        );
        fs::read(&sig).unwrap()
    };
    let gpgv_accepts = |sig_bytes: &[u8]| {
        fs::write(&sig, sig_bytes).unwrap();
        let out = common::output(
            std::process::Command::new("gpgv")
                .arg("--keyring")
                .arg(&keyring)
                .arg(&sig)
                .arg(tarball),
        );
        out.status.success()
    };

    let good = sign(tarball);
    assert!(gpgv_accepts(&good));
    local.accepted(&good, std::slice::from_ref(&armored), &fpr);

    let other = local.dir.path().join("other");
    fs::write(&other, b"other bytes").unwrap();
    let bad = sign(other.to_str().unwrap());
    assert!(!gpgv_accepts(&bad));
    local.refused(&bad, std::slice::from_ref(&armored), "BAD signature");
}
