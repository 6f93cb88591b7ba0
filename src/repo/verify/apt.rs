//! The apt half of `repo verify`: each suite under `DIR/apt/dists/` read as apt reads it.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::Path;

use pgp::composed::CleartextSignedMessage;

use super::{Digests, norm, rel, stays_inside};
use crate::repo::apt::APT_DIR;
use crate::repo::deb::{self, Depth, read_paragraph};
use crate::sign::verify::Verifier;

/// Hash sections of Release, as apt names them.
const HASH_FIELDS: [&str; 4] = ["MD5Sum", "SHA1", "SHA256", "SHA512"];
/// Hashes apt fetches indexes by, under `by-hash/<name>/` (the ones mm-pkg writes).
const BY_HASH: [&str; 2] = ["SHA256", "SHA512"];
/// Hash fields of a Packages stanza.
const STANZA_HASHES: [&str; 4] = ["MD5sum", "SHA1", "SHA256", "SHA512"];
/// Most bytes an index may decompress to here.
const MAX_INDEX: u64 = 1 << 30;

/// One file Release names: its size and digests.
#[derive(Default)]
struct Named {
    size: Option<u64>,
    hashes: Vec<(String, String)>,
}

/// Checks every suite under `DIR/apt/dists/`; false when there is none.
pub(super) fn verify(dir: &Path, key: Option<&Verifier>, problems: &mut Vec<String>) -> bool {
    let dists = dir.join(APT_DIR).join("dists");
    let Ok(entries) = fs::read_dir(&dists) else {
        return false;
    };
    let mut found = false;
    for suite in entries.flatten().map(|e| e.path()) {
        if suite.join("Release").exists() || suite.join("InRelease").exists() {
            found = true;
            verify_suite(dir, &suite, key, problems);
        }
    }
    found
}

fn verify_suite(dir: &Path, dists: &Path, key: Option<&Verifier>, problems: &mut Vec<String>) {
    let release_path = dists.join("Release");
    let release = fs::read_to_string(&release_path).ok();
    if release.is_none() {
        problems.push(format!("{}: missing", rel(dir, &release_path)));
    }
    // What apt reads: the text InRelease signs (an unsigned repository has none).
    let inrelease = dists.join("InRelease");
    let signed = match fs::read_to_string(&inrelease) {
        Err(_) => {
            if key.is_some() {
                problems.push(format!("{}: missing", rel(dir, &inrelease)));
            }
            None
        }
        Ok(armored) => {
            let text = match key {
                Some(key) => key.cleartext(&armored),
                None => CleartextSignedMessage::from_string(&armored)
                    .map(|(msg, _)| msg.signed_text())
                    .map_err(|e| anyhow::anyhow!("not a clearsigned OpenPGP message: {e}")),
            };
            text.map_err(|e| problems.push(format!("{}: {e:#}", rel(dir, &inrelease))))
                .ok()
        }
    };
    if let (Some(release), Some(signed)) = (&release, &signed)
        && norm(release) != norm(signed)
    {
        problems.push(format!(
            "{}: signs another text than Release",
            rel(dir, &inrelease)
        ));
    }
    if let (Some(key), Some(release)) = (key, &release) {
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
    let Some(text) = signed.map(|s| norm(&s) + "\n").or(release) else {
        return;
    };
    let (fields, problem) = read_paragraph(&text);
    if let Some(e) = problem {
        problems.push(format!("{}: {e:#}", rel(dir, &release_path)));
        return;
    }
    let get = |name: &str| {
        fields
            .iter()
            .rev()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let by_hash = get("Acquire-By-Hash").is_some_and(|v| v.eq_ignore_ascii_case("yes"));
    let mut named: BTreeMap<String, Named> = BTreeMap::new();
    for algo in HASH_FIELDS {
        for line in get(algo)
            .unwrap_or("")
            .lines()
            .filter(|l| !l.trim().is_empty())
        {
            let parts: Vec<&str> = line.split_whitespace().collect();
            let [hash, size, name] = parts[..] else {
                problems.push(format!("{}: bad line `{line}`", rel(dir, &release_path)));
                continue;
            };
            let entry = named.entry(name.to_string()).or_default();
            let size = size.parse::<u64>().ok();
            if entry.size.is_some_and(|s| Some(s) != size) || size.is_none() {
                problems.push(format!(
                    "{}: {name} has two sizes or none",
                    rel(dir, &release_path)
                ));
            }
            entry.size = size;
            entry.hashes.push((algo.to_string(), hash.to_string()));
        }
    }
    if !named
        .keys()
        .any(|n| n.ends_with("/Packages") || n.contains("/Packages."))
    {
        problems.push(format!(
            "{}: names no Packages index",
            rel(dir, &release_path)
        ));
    }
    // Packages texts by directory, from each compression Release names.
    let mut texts: BTreeMap<String, Vec<(String, Vec<u8>)>> = BTreeMap::new();
    for (name, entry) in &named {
        if !stays_inside(name) {
            problems.push(format!(
                "{}: names `{name}`, outside the suite",
                rel(dir, &release_path)
            ));
            continue;
        }
        let path = dists.join(name);
        let Ok(bytes) = fs::read(&path) else {
            problems.push(format!("{}: missing (named by Release)", rel(dir, &path)));
            continue;
        };
        let digests = Digests::of(&bytes);
        if let Some(wrong) = digests.mismatch(entry.size, &entry.hashes) {
            problems.push(format!(
                "{}: does not match its {wrong} in Release",
                rel(dir, &path)
            ));
            continue;
        }
        if by_hash {
            by_hash_copies(dir, &path, entry, problems);
        }
        let (parent, file) = name.rsplit_once('/').unwrap_or(("", name));
        if let Some(ext) = file.strip_prefix("Packages") {
            match decompress(ext, &bytes) {
                Ok(text) => texts
                    .entry(parent.to_string())
                    .or_default()
                    .push((name.clone(), text)),
                Err(e) => problems.push(format!("{}: {e}", rel(dir, &path))),
            }
        }
    }
    for variants in texts.values() {
        let (first, text) = &variants[0];
        for (other, other_text) in &variants[1..] {
            if other_text != text {
                problems.push(format!(
                    "{}: {first} and {other} list other packages (apt reads one of them)",
                    rel(dir, dists)
                ));
            }
        }
        let index = dists.join(first);
        stanzas(dir, &index, &String::from_utf8_lossy(text), problems);
    }
}

/// The by-hash copies of the index at `path` apt fetches when Release says
/// `Acquire-By-Hash: yes`.
fn by_hash_copies(dir: &Path, path: &Path, entry: &Named, problems: &mut Vec<String>) {
    let parent = path.parent().unwrap_or(path);
    for (algo, hash) in entry
        .hashes
        .iter()
        .filter(|(a, _)| BY_HASH.contains(&a.as_str()))
    {
        if !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue; // Already reported: the index does not match it.
        }
        let copy = parent.join("by-hash").join(algo).join(hash);
        match Digests::of_file(&copy) {
            None => problems.push(format!(
                "{}: missing (apt fetches {} by hash: Acquire-By-Hash: yes)",
                rel(dir, &copy),
                rel(dir, path)
            )),
            Some(d) => {
                if let Some(wrong) = d.mismatch(entry.size, &entry.hashes) {
                    problems.push(format!(
                        "{}: is not the index its name says ({wrong})",
                        rel(dir, &copy)
                    ));
                }
            }
        }
    }
}

/// A Packages index (`ext`: empty, `.gz`, `.xz`) decompressed, at most [`MAX_INDEX`] bytes.
fn decompress(ext: &str, bytes: &[u8]) -> Result<Vec<u8>, String> {
    let reader: Box<dyn Read + '_> = match ext {
        "" => return Ok(bytes.to_vec()),
        ".gz" => Box::new(flate2::read::MultiGzDecoder::new(bytes)),
        ".xz" => Box::new(liblzma::read::XzDecoder::new_multi_decoder(bytes)),
        other => return Err(format!("a compression mm-pkg does not read ({other})")),
    };
    let mut out = Vec::new();
    reader
        .take(MAX_INDEX + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("does not decompress: {e}"))?;
    if out.len() as u64 > MAX_INDEX {
        return Err(format!("decompresses to more than {} MiB", MAX_INDEX >> 20));
    }
    Ok(out)
}

/// Every stanza of the Packages `text` (at `index`) as apt reads it, and its pool file.
fn stanzas(dir: &Path, index: &Path, text: &str, problems: &mut Vec<String>) {
    let apt_root = dir.join(APT_DIR);
    for (i, para) in text
        .split("\n\n")
        .filter(|p| !p.trim().is_empty())
        .enumerate()
    {
        let at = format!("{}: stanza {}", rel(dir, index), i + 1);
        let (fields, problem) = read_paragraph(para);
        if let Some(e) = problem {
            problems.push(format!("{at}: {e:#}"));
        }
        // As apt: the last value of a field given twice.
        let get = |k: &str| {
            fields
                .iter()
                .rev()
                .find(|(n, _)| n.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.as_str())
        };
        let Some(file) = get("Filename") else {
            problems.push(format!("{at}: no Filename"));
            continue;
        };
        if !stays_inside(file) {
            problems.push(format!("{at}: Filename `{file}` leaves the repository"));
            continue;
        }
        let hashes: Vec<(String, String)> = STANZA_HASHES
            .iter()
            .filter_map(|h| get(h).map(|v| (h.to_string(), v.to_string())))
            .collect();
        if get("SHA256").is_none() && get("SHA512").is_none() {
            problems.push(format!("{at}: neither SHA256 nor SHA512 (apt needs one)"));
        }
        let size = get("Size").and_then(|s| s.parse().ok());
        if size.is_none() {
            problems.push(format!("{at}: no Size"));
        }
        let path = apt_root.join(file);
        match Digests::of_file(&path) {
            None => problems.push(format!("{}: missing (named by {at})", rel(dir, &path))),
            Some(d) => {
                if let Some(wrong) = d.mismatch(size, &hashes) {
                    problems.push(format!(
                        "{}: not the file its index names ({wrong})",
                        rel(dir, &path)
                    ));
                    continue;
                }
                match deb::inspect(&path, Depth::Structure) {
                    Err(e) => problems.push(format!("{}: {e:#}", rel(dir, &path))),
                    Ok(found) => {
                        for field in ["Package", "Version", "Architecture"] {
                            let theirs = found
                                .control
                                .iter()
                                .find(|(n, _)| n.eq_ignore_ascii_case(field))
                                .map(|(_, v)| v.as_str());
                            if theirs != get(field) {
                                problems.push(format!(
                                    "{}: its {field} is {theirs:?}, its stanza says {:?}",
                                    rel(dir, &path),
                                    get(field)
                                ));
                            }
                        }
                    }
                }
            }
        }
    }
}
