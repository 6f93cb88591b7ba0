//! Proving a tarball is Mattermost's own bytes: SHA-256 against the catalog and `--sha256`,
//! and the detached OpenPGP signature against Mattermost's release key (plus `--keyring`).
//!
//! A [`StreamVerifier`] takes the bytes once, as they are downloaded or read, and computes
//! the SHA-256 and the signature's hash in the same pass (the signature check runs on a
//! second thread fed through a bounded channel).

use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use anyhow::{Context, Result, anyhow, bail};
use pgp::composed::{Deserializable, DetachedSignature, SignedPublicKey};
use pgp::packet::{PublicKey, PublicSubkey, Signature};
use pgp::types::{KeyDetails, VerifyingKey};
use sha2::{Digest, Sha256};

/// Mattermost's release signing key (see data/SOURCE.md).
pub const MATTERMOST_KEY: &str = include_str!("../../data/mattermost-release-key.asc");
/// Its fingerprint.
pub const MATTERMOST_FINGERPRINT: &str = "A1B31D46F0F3A10B02CF2D44F8F2C31744774B28";

/// The keys whose signatures are trusted.
#[derive(Debug, Clone)]
pub struct Trust {
    keys: Vec<SignedPublicKey>,
}

impl Trust {
    /// Mattermost's key, plus every armored key in each of `keyrings`.
    ///
    /// The embedded copy's self-signature says it expired in 2024; Mattermost re-signed the
    /// same key material later. Expiry is therefore not checked, only the signature.
    pub fn new(keyrings: &[impl AsRef<Path>]) -> Result<Self> {
        let (key, _) = SignedPublicKey::from_armor_single(io::Cursor::new(MATTERMOST_KEY))
            .map_err(|e| anyhow!("the embedded Mattermost release key does not parse: {e}"))?;
        let mut keys = vec![key];
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
                keys.push(key.map_err(|e| anyhow!("keyring {}: {e}", path.display()))?);
            }
            if keys.len() == before {
                bail!("keyring {} holds no key", path.display());
            }
        }
        Ok(Trust { keys })
    }

    /// Fingerprints of the trusted primary keys, upper-case hex.
    pub fn fingerprints(&self) -> Vec<String> {
        self.keys
            .iter()
            .map(|k| hex::encode_upper(k.primary_key.fingerprint().as_bytes()))
            .collect()
    }

    /// The trusted (sub)key that issued `sig`, if any.
    fn signer(&self, sig: &Signature) -> Option<Signer> {
        let ids = sig.issuer_key_id();
        let fps = sig.issuer_fingerprint();
        let issued = |k: &dyn KeyDetails| {
            ids.contains(&&k.legacy_key_id()) || fps.contains(&&k.fingerprint())
        };
        for key in &self.keys {
            if issued(&key.primary_key) {
                return Some(Signer::Primary(key.primary_key.clone()));
            }
            for sub in &key.public_subkeys {
                if issued(&sub.key) {
                    return Some(Signer::Subkey(sub.key.clone()));
                }
            }
        }
        None
    }
}

enum Signer {
    Primary(PublicKey),
    Subkey(PublicSubkey),
}

/// Reads a detached signature, armored or binary.
pub fn parse_signature(bytes: &[u8]) -> Result<Signature> {
    let parsed = if bytes.starts_with(b"-----BEGIN") {
        DetachedSignature::from_armor_single(io::Cursor::new(bytes)).map(|(s, _)| s)
    } else {
        DetachedSignature::from_bytes(io::Cursor::new(bytes))
    };
    parsed
        .map(|s| s.signature)
        .map_err(|e| anyhow!("not an OpenPGP signature: {e}"))
}

/// What a tarball must match.
#[derive(Debug, Clone, Default)]
pub struct Expectations {
    /// Expected SHA-256 values with where each came from (`catalog`, `--sha256`).
    pub sha256: Vec<(String, String)>,
    /// The detached signature and where it came from, when there is one.
    pub signature: Option<(Signature, String)>,
}

impl Expectations {
    /// True when nothing at all will be checked.
    pub fn is_empty(&self) -> bool {
        self.sha256.is_empty() && self.signature.is_none()
    }
}

/// What a successful verification established.
#[derive(Debug, Clone)]
pub struct Verified {
    /// SHA-256 of the bytes.
    pub sha256: String,
    /// Fingerprint of the key that signed them, when a signature was checked.
    pub signed_by: Option<String>,
}

/// Checks bytes fed in order, in one pass.
pub struct StreamVerifier {
    hasher: Sha256,
    expected: Vec<(String, String)>,
    pgp: Option<PgpCheck>,
}

struct PgpCheck {
    tx: Option<SyncSender<Vec<u8>>>,
    handle: JoinHandle<Result<()>>,
    fingerprint: String,
    source: String,
}

impl StreamVerifier {
    /// A verifier for `expect`, signatures checked against `trust`.
    pub fn new(expect: &Expectations, trust: &Trust) -> Result<Self> {
        let pgp = match &expect.signature {
            None => None,
            Some((sig, source)) => {
                let signer = trust.signer(sig).ok_or_else(|| {
                    let issuers: Vec<String> = sig
                        .issuer_fingerprint()
                        .iter()
                        .map(|f| hex::encode_upper(f.as_bytes()))
                        .chain(
                            sig.issuer_key_id()
                                .iter()
                                .map(|k| hex::encode_upper(k.as_ref())),
                        )
                        .collect();
                    anyhow!(
                        "the signature {source} was made by key {}, which is not trusted \
                         (trusted: {}; add a key with --keyring)",
                        issuers.join("/"),
                        trust.fingerprints().join(", ")
                    )
                })?;
                let fingerprint = match &signer {
                    Signer::Primary(k) => hex::encode_upper(k.fingerprint().as_bytes()),
                    Signer::Subkey(k) => hex::encode_upper(k.fingerprint().as_bytes()),
                };
                let (tx, rx) = sync_channel::<Vec<u8>>(8);
                let sig = sig.clone();
                let handle = std::thread::spawn(move || {
                    let reader = ChannelReader {
                        rx,
                        chunk: Vec::new(),
                        pos: 0,
                    };
                    let result = match &signer {
                        Signer::Primary(k) => verify_with(&sig, k, reader),
                        Signer::Subkey(k) => verify_with(&sig, k, reader),
                    };
                    result.map_err(|e| anyhow!("{e}"))
                });
                Some(PgpCheck {
                    tx: Some(tx),
                    handle,
                    fingerprint,
                    source: source.clone(),
                })
            }
        };
        Ok(StreamVerifier {
            hasher: Sha256::new(),
            expected: expect.sha256.clone(),
            pgp,
        })
    }

    /// Feeds the next bytes.
    pub fn update(&mut self, chunk: &[u8]) {
        self.hasher.update(chunk);
        // A send fails only when the checker already gave up; finish() reports why.
        if let Some(pgp) = &mut self.pgp
            && let Some(tx) = &pgp.tx
            && tx.send(chunk.to_vec()).is_err()
        {
            pgp.tx = None;
        }
    }

    /// Checks everything fed so far against the expectations. `what` names the bytes.
    pub fn finish(self, what: &str) -> Result<Verified> {
        let sha256 = hex::encode(self.hasher.finalize());
        let mut signed_by = None;
        if let Some(mut pgp) = self.pgp {
            pgp.tx.take();
            let outcome = pgp
                .handle
                .join()
                .map_err(|_| anyhow!("the signature check panicked"))?;
            if let Err(err) = outcome {
                bail!(
                    "BAD signature: {what} does not match the signature {} ({err})",
                    pgp.source
                );
            }
            signed_by = Some(pgp.fingerprint);
        }
        for (source, expected) in &self.expected {
            if !expected.eq_ignore_ascii_case(&sha256) {
                bail!("SHA-256 mismatch for {what}: expected {expected} ({source}), got {sha256}");
            }
        }
        Ok(Verified { sha256, signed_by })
    }
}

fn verify_with(
    sig: &Signature,
    key: &impl VerifyingKey,
    data: impl Read,
) -> pgp::errors::Result<()> {
    sig.verify(key, data)
}

/// Adapts chunks from a channel to `Read`; EOF when the sender is dropped.
struct ChannelReader {
    rx: Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    pos: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.chunk.len() {
            match self.rx.recv() {
                Ok(chunk) => {
                    self.chunk = chunk;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Verifies the file at `path` in one read.
pub fn verify_file(path: &Path, expect: &Expectations, trust: &Trust) -> Result<Verified> {
    let mut verifier = StreamVerifier::new(expect, trust)?;
    feed_file(path, &mut verifier)?;
    verifier.finish(&path.display().to_string())
}

/// Feeds the whole file at `path` to `verifier`.
pub fn feed_file(path: &Path, verifier: &mut StreamVerifier) -> Result<()> {
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            return Ok(());
        }
        verifier.update(&buf[..n]);
    }
}

/// Reads `path` as a detached signature if it exists.
pub fn signature_beside(path: &Path) -> Result<Option<(Signature, String)>> {
    let sig_path = path.with_file_name(format!(
        "{}.sig",
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    match fs::read(&sig_path) {
        Ok(bytes) => {
            let sig = parse_signature(&bytes)
                .with_context(|| format!("reading {}", sig_path.display()))?;
            Ok(Some((sig, sig_path.display().to_string())))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", sig_path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_key_is_mattermosts() {
        let trust = Trust::new(&[] as &[&Path]).unwrap();
        assert_eq!(trust.fingerprints(), [MATTERMOST_FINGERPRINT]);
    }

    #[test]
    fn sha256_mismatch_names_both_hashes() {
        let trust = Trust::new(&[] as &[&Path]).unwrap();
        let expect = Expectations {
            sha256: vec![("catalog".into(), "0".repeat(64))],
            signature: None,
        };
        let mut v = StreamVerifier::new(&expect, &trust).unwrap();
        v.update(b"abc");
        let err = v.finish("x.tar.gz").unwrap_err().to_string();
        assert!(
            err.contains(&"0".repeat(64))
                && err.contains("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
    }
}
