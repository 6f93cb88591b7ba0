//! The yum half of `repo verify`: `DIR/yum/repodata/` read as dnf reads it, and every rpm as
//! rpmkeys checks it.

use std::fs;
use std::io::{BufReader, Read};
use std::path::Path;

use super::{Digests, rel, stays_inside};
use crate::repo::yum::{YUM_DIR, is_xml_char};
use crate::rpm::header::{Value, tag};
use crate::rpm::read::{check_digests, read_headers};
use crate::sign::verify::Verifier;

/// Most bytes a metadata file may decompress to here.
const MAX_METADATA: u64 = 1 << 30;

/// One `<data>` entry of repomd.xml.
struct Data<'a> {
    kind: &'a str,
    sha256: &'a str,
    open_sha256: Option<&'a str>,
    href: String,
    size: Option<u64>,
    open_size: Option<u64>,
}

/// Checks `DIR/yum/`; false when it holds no `repodata/repomd.xml`.
pub(super) fn verify(dir: &Path, key: Option<&Verifier>, problems: &mut Vec<String>) -> bool {
    let root = dir.join(YUM_DIR);
    let repomd_path = root.join("repodata/repomd.xml");
    let Ok(bytes) = fs::read(&repomd_path) else {
        return false;
    };
    if let Some(key) = key {
        let asc = root.join("repodata/repomd.xml.asc");
        match fs::read(&asc) {
            Err(_) => problems.push(format!("{}: missing", rel(dir, &asc))),
            Ok(sig) => {
                if let Err(e) = key.detached(&sig, &bytes) {
                    problems.push(format!("{}: {e:#}", rel(dir, &asc)));
                }
            }
        }
    }
    let Some(repomd) = xml_text(dir, &repomd_path, &bytes, problems) else {
        return true;
    };
    let mut seen: Vec<&str> = Vec::new();
    for chunk in repomd.split("<data ").skip(1) {
        let Some(data) = data_entry(chunk) else {
            problems.push(format!(
                "{}: unreadable <data> entry",
                rel(dir, &repomd_path)
            ));
            continue;
        };
        if seen.contains(&data.kind) {
            problems.push(format!(
                "{}: names {} twice (dnf reads only one)",
                rel(dir, &repomd_path),
                data.kind
            ));
        }
        seen.push(data.kind);
        metadata_file(dir, &root, &data, key, problems);
    }
    if !seen.contains(&"primary") {
        problems.push(format!(
            "{}: names no primary metadata",
            rel(dir, &repomd_path)
        ));
    }
    true
}

/// `bytes` (of `path`) as text, when it is UTF-8 that XML 1.0 can carry.
fn xml_text<'a>(
    dir: &Path,
    path: &Path,
    bytes: &'a [u8],
    problems: &mut Vec<String>,
) -> Option<&'a str> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        problems.push(format!("{}: not UTF-8 (dnf refuses it)", rel(dir, path)));
        return None;
    };
    if let Some(c) = text.chars().find(|c| !is_xml_char(*c)) {
        problems.push(format!(
            "{}: holds U+{:04X}, which XML cannot carry (dnf refuses the whole repository)",
            rel(dir, path),
            c as u32
        ));
        return None;
    }
    Some(text)
}

/// Text between `start` and the next `end` after it.
fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let to = text[from..].find(end)? + from;
    Some(&text[from..to])
}

/// An attribute value as the XML says it, with the entities mm-pkg and createrepo_c write.
fn unescape(value: &str) -> String {
    value
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

fn data_entry(chunk: &str) -> Option<Data<'_>> {
    let chunk = &chunk[..chunk.find("</data>")?];
    Some(Data {
        kind: between(chunk, "type=\"", "\"")?,
        sha256: between(chunk, "<checksum type=\"sha256\">", "<")?,
        open_sha256: between(chunk, "<open-checksum type=\"sha256\">", "<"),
        href: unescape(between(chunk, "<location href=\"", "\"")?),
        size: between(chunk, "<size>", "<").and_then(|s| s.parse().ok()),
        open_size: between(chunk, "<open-size>", "<").and_then(|s| s.parse().ok()),
    })
}

/// One metadata file against its `<data>` entry, and, for primary, every package it names.
fn metadata_file(
    dir: &Path,
    root: &Path,
    data: &Data,
    key: Option<&Verifier>,
    problems: &mut Vec<String>,
) {
    if !stays_inside(&data.href) {
        problems.push(format!(
            "{YUM_DIR}/repodata/repomd.xml: names `{}`, outside the repository",
            data.href
        ));
        return;
    }
    let path = root.join(&data.href);
    let Ok(gz) = fs::read(&path) else {
        problems.push(format!(
            "{}: missing (named by repomd.xml)",
            rel(dir, &path)
        ));
        return;
    };
    let sha256 = vec![("SHA256".to_string(), data.sha256.to_string())];
    if let Some(wrong) = Digests::of(&gz).mismatch(data.size, &sha256) {
        problems.push(format!(
            "{}: does not match its {wrong} in repomd.xml",
            rel(dir, &path)
        ));
        return;
    }
    let mut xml = Vec::new();
    let read = flate2::read::MultiGzDecoder::new(&gz[..])
        .take(MAX_METADATA + 1)
        .read_to_end(&mut xml);
    if read.is_err() || xml.len() as u64 > MAX_METADATA {
        problems.push(format!("{}: not gzip of at most 1 GiB", rel(dir, &path)));
        return;
    }
    let open: Vec<(String, String)> = data
        .open_sha256
        .map(|s| vec![("SHA256".to_string(), s.to_string())])
        .unwrap_or_default();
    if let Some(wrong) = Digests::of(&xml).mismatch(data.open_size, &open) {
        problems.push(format!(
            "{}: its XML does not match its open {wrong} in repomd.xml",
            rel(dir, &path)
        ));
    }
    let Some(text) = xml_text(dir, &path, &xml, problems) else {
        return;
    };
    if data.kind == "primary" {
        for package in text.split("<package ").skip(1) {
            primary_package(dir, root, &path, package, key, problems);
        }
    }
}

/// A package primary.xml names: its file against pkgid and size, its digests as rpmkeys
/// checks them, and with a key, every OpenPGP signature it carries.
fn primary_package(
    dir: &Path,
    root: &Path,
    primary: &Path,
    package: &str,
    key: Option<&Verifier>,
    problems: &mut Vec<String>,
) {
    let (Some(sha), Some(href), Some(size)) = (
        between(package, "pkgid=\"YES\">", "<"),
        between(package, "<location href=\"", "\""),
        between(package, "<size package=\"", "\"").and_then(|s| s.parse().ok()),
    ) else {
        problems.push(format!("{}: unreadable package entry", rel(dir, primary)));
        return;
    };
    let href = unescape(href);
    if !stays_inside(&href) {
        problems.push(format!(
            "{}: names `{href}`, outside the repository",
            rel(dir, primary)
        ));
        return;
    }
    let rpm = root.join(&href);
    let expected = vec![("SHA256".to_string(), sha.to_string())];
    match Digests::of_file(&rpm) {
        None => {
            problems.push(format!(
                "{}: missing (named by primary.xml)",
                rel(dir, &rpm)
            ));
            return;
        }
        Some(d) => {
            if let Some(wrong) = d.mismatch(Some(size), &expected) {
                problems.push(format!(
                    "{}: not the file its index names ({wrong})",
                    rel(dir, &rpm)
                ));
                return;
            }
        }
    }
    if let Err(e) = rpm_checks(&rpm, key) {
        problems.push(format!("{}: {e:#}", rel(dir, &rpm)));
    }
}

/// What `rpmkeys --checksig` checks: the digests, and with a key, every OpenPGP signature
/// the rpm carries (by that key, over its main header) and at least one.
fn rpm_checks(path: &Path, key: Option<&Verifier>) -> anyhow::Result<()> {
    let file = fs::File::open(path)?;
    let mut reader = BufReader::new(file);
    let headers = read_headers(&mut reader)?;
    check_digests(&headers, &mut reader)?;
    let Some(key) = key else {
        return Ok(());
    };
    let sig = &headers.signature;
    for (t, name) in [
        (tag::SIG_OPENPGP, "OPENPGP"),
        (tag::SIG_PGP, "PGP"),
        (tag::SIG_GPG, "GPG"),
    ] {
        if sig.has(t) {
            anyhow::bail!("it carries a {name} signature, which mm-pkg cannot check");
        }
    }
    let packets: Vec<Vec<u8>> = [tag::SIG_RSAHEADER, tag::SIG_DSAHEADER]
        .into_iter()
        .filter_map(|t| match sig.value(t) {
            Some(Value::Bin(b)) => Some(b),
            _ => None,
        })
        .collect();
    if packets.is_empty() {
        anyhow::bail!("the rpm carries no header signature (dnf's gpgcheck refuses it)");
    }
    key.rpm_header(&packets, &headers.header.bytes)?;
    Ok(())
}
