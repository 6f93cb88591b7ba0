//! Proving a tarball is Mattermost's own bytes: SHA-256 against the catalog and `--sha256`,
//! and the detached OpenPGP signature against Mattermost's release key (plus `--keyring`).
//!
//! A [`StreamVerifier`] takes the bytes once, as they are read, and computes the SHA-256 and
//! the hash of every signature packet by a trusted key in the same pass (each signature check
//! runs on its own thread fed through a bounded channel). Which packets count is the policy
//! in [`super::openpgp`].

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use pgp::packet::Signature;
use sha2::{Digest, Sha256};

use super::Release;
use super::known::KnownTarballs;
pub use super::openpgp::{ACCEPTED_HASHES, MATTERMOST_FINGERPRINT, MATTERMOST_KEY, Trust};
use super::openpgp::{Judgement, SigningKey};
pub use super::sigfile::parse_signatures;

/// What a tarball must match.
#[derive(Debug, Clone, Default)]
pub struct Expectations {
    /// Expected SHA-256 values with where each came from (`catalog`, `--sha256`).
    pub sha256: Vec<(String, String)>,
    /// Every packet of the detached signature and where it came from, when there is one.
    pub signature: Option<(Vec<Signature>, String)>,
    /// The release the bytes must be, and the tarballs known to be other releases: a
    /// tarball whose SHA-256 is known as another release is refused (a replay).
    pub identity: Option<(Release, KnownTarballs)>,
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
    /// Every check that passed, in words (`SHA-256 from the release catalog`,
    /// `OpenPGP signature by <fingerprint>`); empty when nothing was checked.
    pub verified_by: Vec<String>,
}

impl Verified {
    /// One line saying what was proven about `what`, or loudly that nothing was
    /// (`skipped`: `--insecure-skip-verify`).
    pub fn summary(&self, what: &str, skipped: bool) -> String {
        if self.verified_by.is_empty() {
            let why = match skipped {
                true => "--insecure-skip-verify",
                false => "no catalog hash, no --sha256 and no signature",
            };
            return format!(
                "warning: {what} is UNVERIFIED ({why}): SHA-256 {}",
                self.sha256
            );
        }
        let signer = self
            .signed_by
            .as_deref()
            .map(|f| format!(", signed by {f}"))
            .unwrap_or_default();
        format!(
            "verified {what}: SHA-256 {}{signer} ({})",
            self.sha256,
            self.verified_by.join(", ")
        )
    }
}

/// Checks bytes fed in order, in one pass.
pub struct StreamVerifier {
    hasher: Sha256,
    expected: Vec<(String, String)>,
    pgp: Vec<PgpCheck>,
    source: String,
    identity: Option<(Release, KnownTarballs)>,
}

/// One signature packet by a trusted key, verified on its own thread.
struct PgpCheck {
    tx: Option<SyncSender<Arc<Vec<u8>>>>,
    handle: JoinHandle<Result<()>>,
    fingerprint: String,
    signer: String,
}

impl StreamVerifier {
    /// A verifier for `expect`, signatures checked against `trust`. Fails at once when the
    /// signature cannot count whatever the bytes: made by no trusted key, or by a trusted key
    /// but refused by the policy (class, digest, dates, revocation).
    pub fn new(expect: &Expectations, trust: &Trust) -> Result<Self> {
        let pgp = signature_checks(expect, trust)?
            .into_iter()
            .map(|(sig, key, fingerprint, signer)| PgpCheck::spawn(sig, key, fingerprint, signer))
            .collect();
        Ok(StreamVerifier {
            hasher: Sha256::new(),
            expected: expect.sha256.clone(),
            pgp,
            source: expect
                .signature
                .as_ref()
                .map(|(_, from)| from.clone())
                .unwrap_or_default(),
            identity: expect.identity.clone(),
        })
    }

    /// Feeds the next bytes.
    pub fn update(&mut self, chunk: &[u8]) {
        self.hasher.update(chunk);
        if self.pgp.is_empty() {
            return;
        }
        let chunk = Arc::new(chunk.to_vec());
        for pgp in &mut self.pgp {
            // A send fails only when the checker already gave up; finish() reports why.
            if let Some(tx) = &pgp.tx
                && tx.send(chunk.clone()).is_err()
            {
                pgp.tx = None;
            }
        }
    }

    /// Checks everything fed so far against the expectations. `what` names the bytes.
    pub fn finish(self, what: &str) -> Result<Verified> {
        let sha256 = hex::encode(self.hasher.finalize());
        let mut verified_by = Vec::new();
        let mut signers = Vec::new();
        for mut pgp in self.pgp {
            pgp.tx.take();
            let outcome = pgp
                .handle
                .join()
                .map_err(|_| anyhow!("the signature check panicked"))?;
            if let Err(err) = outcome {
                bail!(
                    "BAD signature: {what} does not match the signature {} by {} ({err})",
                    self.source,
                    pgp.signer
                );
            }
            if !signers.iter().any(|(f, _)| *f == pgp.fingerprint) {
                signers.push((pgp.fingerprint, pgp.signer));
            }
        }
        for (source, expected) in &self.expected {
            if !expected.eq_ignore_ascii_case(&sha256) {
                bail!("SHA-256 mismatch for {what}: expected {expected} ({source}), got {sha256}");
            }
            verified_by.push(format!("SHA-256 from {source}"));
        }
        if let Some((release, known)) = &self.identity {
            known.check(release, &sha256)?;
        }
        for (_, signer) in &signers {
            verified_by.push(format!("OpenPGP signature by {signer}"));
        }
        Ok(Verified {
            sha256,
            signed_by: signers.into_iter().next().map(|(f, _)| f),
            verified_by,
        })
    }
}

/// A signature packet by a trusted key that must verify over the data, with the key that
/// checks it, the trusted primary's fingerprint and a description of the signer.
type SignatureCheck = (Signature, Box<SigningKey>, String, String);

/// Applies the signature policy to every packet of `expect`'s signature: fails when one by a
/// trusted key is refused or none is by a trusted key; otherwise the packets to verify.
fn signature_checks(expect: &Expectations, trust: &Trust) -> Result<Vec<SignatureCheck>> {
    let Some((sigs, from)) = &expect.signature else {
        return Ok(Vec::new());
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
        .unwrap_or(0);
    let mut untrusted = Vec::new();
    let mut checks = Vec::new();
    for sig in sigs {
        match trust.judge(sig, now) {
            Judgement::Untrusted { issuer } => untrusted.push(issuer),
            Judgement::Refused {
                fingerprint,
                reason,
            } => bail!("the signature {from} by trusted key {fingerprint} is refused: {reason}"),
            Judgement::Check {
                key,
                fingerprint,
                signer,
            } => checks.push((sig.clone(), key, fingerprint, signer)),
        }
    }
    if checks.is_empty() {
        bail!(
            "the signature {from} was made by key {}, which is not trusted \
             (trusted: {}; add a key with --keyring)",
            untrusted.join(", "),
            trust.fingerprints().join(", ")
        );
    }
    Ok(checks)
}

/// Fails when `expect`'s signature cannot count whatever the bytes (see
/// [`StreamVerifier::new`]), before any byte is read.
pub fn check_signature_policy(expect: &Expectations, trust: &Trust) -> Result<()> {
    signature_checks(expect, trust).map(|_| ())
}

impl PgpCheck {
    fn spawn(sig: Signature, key: Box<SigningKey>, fingerprint: String, signer: String) -> Self {
        let (tx, rx) = sync_channel::<Arc<Vec<u8>>>(8);
        let handle = std::thread::spawn(move || {
            let reader = ChannelReader {
                rx,
                chunk: Arc::new(Vec::new()),
                pos: 0,
            };
            let result = match &*key {
                SigningKey::Primary(k) => sig.verify(k, reader),
                SigningKey::Subkey(k) => sig.verify(k, reader),
            };
            result.map_err(|e| anyhow!("{e}"))
        });
        PgpCheck {
            tx: Some(tx),
            handle,
            fingerprint,
            signer,
        }
    }
}

/// Adapts chunks from a channel to `Read`; EOF when the sender is dropped.
struct ChannelReader {
    rx: Receiver<Arc<Vec<u8>>>,
    chunk: Arc<Vec<u8>>,
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

/// A reader that feeds every byte it passes on to a [`StreamVerifier`] (when there is one):
/// the build reads the tarball through it, so the bytes verified are exactly the bytes
/// packaged.
pub struct VerifyingReader<R> {
    inner: R,
    verifier: Option<StreamVerifier>,
}

impl<R: Read> VerifyingReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R, verifier: Option<StreamVerifier>) -> Self {
        VerifyingReader { inner, verifier }
    }

    /// Reads what is left of the input (bytes after the end of the gzip stream count too)
    /// and returns the verdict on everything read. `what` names the input.
    pub fn finish(mut self, what: &str) -> Result<Option<Verified>> {
        if self.verifier.is_none() {
            return Ok(None);
        }
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = self
                .read(&mut buf)
                .with_context(|| format!("reading {what}"))?;
            if n == 0 {
                break;
            }
        }
        self.verifier.take().map(|v| v.finish(what)).transpose()
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(verifier) = &mut self.verifier {
            verifier.update(&buf[..n]);
        }
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

/// Reads the detached signature beside `path` (`path.sig`) if it exists.
pub fn signature_beside(path: &Path) -> Result<Option<(Vec<Signature>, String)>> {
    let sig_path = path.with_file_name(format!(
        "{}.sig",
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    match fs::read(&sig_path) {
        Ok(bytes) => {
            let sigs = parse_signatures(&bytes)
                .with_context(|| format!("reading {}", sig_path.display()))?;
            Ok(Some((sigs, sig_path.display().to_string())))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", sig_path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_mismatch_names_both_hashes() {
        let trust = Trust::new(&[] as &[&Path]).unwrap();
        let expect = Expectations {
            sha256: vec![("catalog".into(), "0".repeat(64))],
            ..Expectations::default()
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
