//! `mm-pkg repo verify`: every signature, every hash that Release and repomd.xml name, and
//! every package file against its index. Problems are collected, not stopped at.

use std::fs;
use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::package::FileDigests;
use super::{apt, client, deb, yum};
use crate::rpm::header::{Value, tag};
use crate::rpm::read::read_headers;
use crate::sign::verify::Verifier;

/// Checks the repository at `dir` with `key` (armored or binary public key bytes; `None`
/// checks hashes only). Returns what is wrong, one line each; empty means sound.
pub fn verify(dir: &Path, key: Option<&[u8]>) -> Vec<String> {
    let mut problems = Vec::new();
    let verifier = match key.map(Verifier::from_bytes) {
        Some(Ok(v)) => Some(v),
        Some(Err(e)) => {
            problems.push(format!("the key: {e:#}"));
            None
        }
        None => None,
    };
    let apt_dists = dir.join(apt::APT_DIR).join("dists");
    if let Ok(suites) = fs::read_dir(&apt_dists) {
        for suite in suites.flatten() {
            verify_apt_suite(dir, &suite.path(), verifier.as_ref(), &mut problems);
        }
    }
    let yum_root = dir.join(yum::YUM_DIR);
    if yum_root.join("repodata/repomd.xml").exists() {
        verify_yum(&yum_root, verifier.as_ref(), &mut problems);
    }
    if !apt_dists.exists() && !yum_root.exists() {
        problems.push(format!("{} holds neither apt/ nor yum/", dir.display()));
    }
    problems
}

fn rel(dir: &Path, path: &Path) -> String {
    path.strip_prefix(dir).unwrap_or(path).display().to_string()
}

/// `text` as clearsigned messages give it back: line ends and the end trimmed.
pub(super) fn norm(text: &str) -> String {
    text.lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
        .trim_end()
        .to_string()
}

fn verify_apt_suite(dir: &Path, dists: &Path, key: Option<&Verifier>, problems: &mut Vec<String>) {
    let release_path = dists.join("Release");
    let Ok(release) = fs::read_to_string(&release_path) else {
        problems.push(format!("{}: missing", rel(dir, &release_path)));
        return;
    };
    if let Some(key) = key {
        let inrelease = dists.join("InRelease");
        match fs::read_to_string(&inrelease) {
            Err(_) => problems.push(format!("{}: missing", rel(dir, &inrelease))),
            Ok(text) => match key.cleartext(&text) {
                Ok(signed) if norm(&signed) == norm(&release) => {}
                Ok(_) => problems.push(format!(
                    "{}: signs another text than Release",
                    rel(dir, &inrelease)
                )),
                Err(e) => problems.push(format!("{}: {e:#}", rel(dir, &inrelease))),
            },
        }
        let detached = dists.join("Release.gpg");
        match fs::read(&detached) {
            Err(_) => problems.push(format!("{}: missing", rel(dir, &detached))),
            Ok(sig) => {
                if let Err(e) = key.detached(&sig, release.as_bytes()) {
                    problems.push(format!("{}: {e:#}", rel(dir, &detached)));
                }
            }
        }
    }
    // Every index Release names, by its SHA-256.
    let mut in_sha256 = false;
    for line in release.lines() {
        if !line.starts_with(' ') {
            in_sha256 = line == "SHA256:";
            continue;
        }
        if !in_sha256 {
            continue;
        }
        let parts: Vec<&str> = line.split_whitespace().collect();
        let [hash, size, name] = parts[..] else {
            problems.push(format!("{}: bad line `{line}`", rel(dir, &release_path)));
            continue;
        };
        let path = dists.join(name);
        match fs::read(&path) {
            Err(_) => problems.push(format!("{}: missing (named by Release)", rel(dir, &path))),
            Ok(bytes) => {
                if hex::encode(Sha256::digest(&bytes)) != hash || bytes.len().to_string() != size {
                    problems.push(format!(
                        "{}: does not match its SHA-256 and size in Release",
                        rel(dir, &path)
                    ));
                } else if name.ends_with("/Packages") {
                    verify_packages(dir, &path, &bytes, problems);
                }
            }
        }
    }
}

/// Every stanza of a Packages file against its pool file.
fn verify_packages(dir: &Path, index: &Path, bytes: &[u8], problems: &mut Vec<String>) {
    let text = String::from_utf8_lossy(bytes);
    for para in text.split("\n\n").filter(|p| !p.trim().is_empty()) {
        let Ok(fields) = deb::parse_control(para) else {
            problems.push(format!("{}: unreadable stanza", rel(dir, index)));
            continue;
        };
        let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let (Some(file), Some(size), Some(sha)) = (get("Filename"), get("Size"), get("SHA256"))
        else {
            problems.push(format!(
                "{}: a stanza lacks Filename, Size or SHA256",
                rel(dir, index)
            ));
            continue;
        };
        check_file(dir, &dir.join(apt::APT_DIR).join(file), size, sha, problems);
    }
}

fn check_file(dir: &Path, path: &Path, size: &str, sha256: &str, problems: &mut Vec<String>) {
    if file_matches(path, size, sha256).is_none() {
        problems.push(format!(
            "{}: missing or not the file its index names (size {size}, SHA-256 {sha256})",
            rel(dir, path)
        ));
    }
}

fn file_matches(path: &Path, size: &str, sha256: &str) -> Option<()> {
    let d = FileDigests::of_file(path).ok()?;
    (d.size.to_string() == size && d.sha256 == sha256).then_some(())
}

/// Text between `start` and the next `end` after it.
fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let to = text[from..].find(end)? + from;
    Some(&text[from..to])
}

fn verify_yum(root: &Path, key: Option<&Verifier>, problems: &mut Vec<String>) {
    let dir = root.parent().unwrap_or(root);
    let repomd_path = root.join("repodata/repomd.xml");
    let Ok(repomd) = fs::read_to_string(&repomd_path) else {
        problems.push(format!("{}: unreadable", rel(dir, &repomd_path)));
        return;
    };
    if let Some(key) = key {
        let asc = root.join("repodata/repomd.xml.asc");
        match fs::read(&asc) {
            Err(_) => problems.push(format!("{}: missing", rel(dir, &asc))),
            Ok(sig) => {
                if let Err(e) = key.detached(&sig, repomd.as_bytes()) {
                    problems.push(format!("{}: {e:#}", rel(dir, &asc)));
                }
            }
        }
    }
    for data in repomd.split("<data ").skip(1) {
        let (Some(sum), Some(href), Some(size)) = (
            between(data, "<checksum type=\"sha256\">", "<"),
            between(data, "<location href=\"", "\""),
            between(data, "<size>", "<"),
        ) else {
            problems.push(format!(
                "{}: unreadable <data> entry",
                rel(dir, &repomd_path)
            ));
            continue;
        };
        let path = root.join(href);
        if file_matches(&path, size, sum).is_none() {
            problems.push(format!(
                "{}: missing or not matching its SHA-256 and size in repomd.xml",
                rel(dir, &path)
            ));
            continue;
        }
        if data.starts_with("type=\"primary\"") {
            verify_primary(root, &path, key, problems);
        }
    }
}

/// Every package primary.xml names, against its pkgid and size, and its header signature.
fn verify_primary(root: &Path, path: &Path, key: Option<&Verifier>, problems: &mut Vec<String>) {
    let dir = root.parent().unwrap_or(root);
    let mut xml = String::new();
    let read = fs::read(path).ok().and_then(|gz| {
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_string(&mut xml)
            .ok()
    });
    if read.is_none() {
        problems.push(format!("{}: not gzip XML", rel(dir, path)));
        return;
    }
    for package in xml.split("<package ").skip(1) {
        let (Some(sha), Some(href), Some(size)) = (
            between(package, "pkgid=\"YES\">", "<"),
            between(package, "<location href=\"", "\""),
            between(package, "<size package=\"", "\""),
        ) else {
            problems.push(format!("{}: unreadable package entry", rel(dir, path)));
            continue;
        };
        let rpm = root.join(href.replace("&amp;", "&"));
        check_file(dir, &rpm, size, sha, problems);
        if let Some(key) = key
            && let Err(e) = rpm_signature(&rpm, key)
        {
            problems.push(format!("{}: {e:#}", rel(dir, &rpm)));
        }
    }
}

/// Checks the OpenPGP header signature of the rpm at `path`.
fn rpm_signature(path: &Path, key: &Verifier) -> anyhow::Result<()> {
    let file = fs::File::open(path)?;
    let headers = read_headers(&mut std::io::BufReader::new(file))?;
    let packet = [tag::SIG_RSAHEADER, tag::SIG_DSAHEADER]
        .into_iter()
        .find_map(|t| match headers.signature.value(t) {
            Some(Value::Bin(b)) => Some(b),
            _ => None,
        })
        .ok_or_else(|| anyhow::anyhow!("the rpm carries no header signature"))?;
    key.detached(&packet, &headers.header.bytes)
}

/// The key `repo verify` uses without `--key`: `DIR/mattermost.asc`.
pub fn default_key(dir: &Path) -> Option<Vec<u8>> {
    fs::read(dir.join(client::KEY_FILE)).ok()
}
