//! `mm-pkg repo verify`: the repository checked as its clients check it, failing wherever
//! apt (gpgv or sqv), dnf or rpmkeys would fail, and in a few more places where they would
//! read the repository differently than its author meant. Problems are collected, not
//! stopped at.
//!
//! - apt ([`apt`]): InRelease (the text apt reads) and Release.gpg, every index Release names
//!   under every hash it lists and under its by-hash names, the compressed indexes against
//!   the plain one, every stanza read as apt reads it (a field twice is a problem; apt takes
//!   the last) and every pool file against its stanza and as dpkg reads it.
//! - dnf ([`yum`]): repomd.xml.asc, every metadata file against repomd.xml (compressed and
//!   open), every character XML can carry, every rpm against primary.xml and as rpmkeys
//!   checks it: digests, and every header signature by the key.
//!
//! Signatures are checked against the keys given, never against the repository's own
//! `mattermost.asc` (an attacker who can write the repository writes that too); with the
//! key, `mattermost.asc` must hold it, or clients that fetch it trust another key.

mod apt;
mod yum;

use std::fs;
use std::path::{Path, PathBuf};

use md5::Md5;
use sha2::{Digest, Sha256, Sha512};

use super::client;
use super::package::FileDigests;
use crate::sign::verify::Verifier;

/// Checks the repository at `dir`, its signatures against `key` (armored or binary public
/// keys); `None` checks indexes and hashes only. Returns what is wrong, one line each; empty
/// means sound.
pub fn verify(dir: &Path, key: Option<&[u8]>) -> Vec<String> {
    let mut problems = Vec::new();
    let verifier = match key.map(Verifier::from_bytes) {
        Some(Ok(v)) => Some(v),
        Some(Err(e)) => {
            problems.push(format!("the key: {e:#}"));
            return problems;
        }
        None => None,
    };
    if let Some(v) = &verifier {
        published_key(dir, v, &mut problems);
    }
    let found_apt = apt::verify(dir, verifier.as_ref(), &mut problems);
    let found_yum = yum::verify(dir, verifier.as_ref(), &mut problems);
    // Clients configured from the repository's own files expect what those files name.
    for (file, client, found, index) in [
        (
            client::SOURCES_FILE,
            "apt",
            found_apt,
            "apt/dists/*/Release",
        ),
        (
            client::REPO_FILE,
            "dnf",
            found_yum,
            "yum/repodata/repomd.xml",
        ),
    ] {
        if !found && dir.join(file).exists() {
            problems.push(format!(
                "{file} tells {client} to read {index}, which is missing: hosts configured \
                 from it fail to update"
            ));
        }
    }
    if !found_apt && !found_yum {
        problems.push(format!(
            "{} holds neither an apt (apt/dists/*/Release) nor a yum \
             (yum/repodata/repomd.xml) repository",
            dir.display()
        ));
    }
    problems
}

/// `DIR/mattermost.asc`, which clients are told to fetch, must hold one of the given keys.
fn published_key(dir: &Path, key: &Verifier, problems: &mut Vec<String>) {
    let path = dir.join(client::KEY_FILE);
    let Ok(bytes) = fs::read(&path) else {
        problems.push(format!(
            "{}: missing (clients are told to fetch the key from it)",
            client::KEY_FILE
        ));
        return;
    };
    match Verifier::from_bytes(&bytes) {
        Ok(published)
            if published
                .fingerprints()
                .iter()
                .any(|f| key.fingerprints().contains(f)) => {}
        Ok(published) => problems.push(format!(
            "{}: holds {}, not the key given ({}): clients that fetch it would trust another key",
            client::KEY_FILE,
            published.fingerprints().join(", "),
            key.fingerprints().join(", ")
        )),
        Err(e) => problems.push(format!("{}: {e:#}", client::KEY_FILE)),
    }
}

fn rel(dir: &Path, path: &Path) -> String {
    path.strip_prefix(dir).unwrap_or(path).display().to_string()
}

/// `text` as clearsigned messages give it back: line ends and the end trimmed.
pub(in crate::repo) fn norm(text: &str) -> String {
    text.lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
        .trim_end()
        .to_string()
}

/// True when `rel` is a relative path of normal components only (no `..`, no root, nothing
/// empty): a path an index names, which must stay inside the repository.
fn stays_inside(rel: &str) -> bool {
    !rel.is_empty()
        && !rel.starts_with('/')
        && rel
            .split('/')
            .all(|p| !p.is_empty() && p != "." && p != "..")
}

/// Size and digests of a file, checked against what an index says of it.
struct Digests {
    file: FileDigests,
    /// Where the bytes are, for a SHA-1 an index may also list (computed only then).
    source: Source,
}

enum Source {
    File(PathBuf),
    Bytes(Vec<u8>),
}

impl Digests {
    fn of_file(path: &Path) -> Option<Self> {
        Some(Digests {
            file: FileDigests::of_file(path).ok()?,
            source: Source::File(path.to_path_buf()),
        })
    }

    fn of(bytes: &[u8]) -> Self {
        Digests {
            file: FileDigests {
                size: bytes.len() as u64,
                md5: hex::encode(Md5::digest(bytes)),
                sha256: hex::encode(Sha256::digest(bytes)),
                sha512: hex::encode(Sha512::digest(bytes)),
            },
            source: Source::Bytes(bytes.to_vec()),
        }
    }

    /// The digest an index names `name` (`SHA256`, `MD5Sum`, `md5sum`, `SHA1`, ...).
    fn get(&self, name: &str) -> Option<String> {
        let name = name.to_ascii_lowercase();
        Some(match name.trim_end_matches("sum") {
            "md5" => self.file.md5.clone(),
            "sha256" => self.file.sha256.clone(),
            "sha512" => self.file.sha512.clone(),
            "sha1" => {
                let mut sha1 = sha1::Sha1::new();
                match &self.source {
                    Source::Bytes(b) => sha1.update(b),
                    Source::File(p) => {
                        let mut file = fs::File::open(p).ok()?;
                        std::io::copy(&mut file, &mut sha1).ok()?;
                    }
                }
                hex::encode(sha1.finalize())
            }
            _ => return None,
        })
    }

    /// Which of `expected` (digest name, value) and `size` the file does not match, in words;
    /// `None` when it matches them all.
    fn mismatch(&self, size: Option<u64>, expected: &[(String, String)]) -> Option<String> {
        let mut wrong = Vec::new();
        if let Some(size) = size.filter(|s| *s != self.file.size) {
            wrong.push(format!("size {size} (the file has {})", self.file.size));
        }
        for (name, value) in expected {
            match self.get(name) {
                Some(actual) if actual.eq_ignore_ascii_case(value) => {}
                Some(_) => wrong.push(format!("{name} {value}")),
                None => wrong.push(format!("{name} (a digest mm-pkg cannot check)")),
            }
        }
        (!wrong.is_empty()).then(|| wrong.join(", "))
    }
}
