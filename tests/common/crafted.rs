//! Package files made by hand, the way no well-behaved tool makes them, for the tests that
//! hand hostile or broken packages to `repo add` and `repo verify`: `.deb` files assembled
//! from raw ar members and tar entries, `.rpm` files whose headers are rewritten (with
//! digests made again, so only the rewrite is wrong), and the verdicts of dpkg and rpm on them.

#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use mm_pkg::rpm::header::{Header, tag};
use mm_pkg::rpm::read::read_headers;

use super::output;

/// A control file dpkg accepts for `name` `version` (amd64), followed by `more` lines.
pub fn control(name: &str, version: &str, more: &str) -> String {
    format!(
        "Package: {name}\nVersion: {version}\nArchitecture: amd64\nMaintainer: Test \
         <test@example.org>\nDescription: crafted package\n{more}"
    )
}

/// A tar archive of `entries` (path, contents; a path ending in `/` is a directory).
pub fn tar(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, data) in entries {
        let mut header = tar::Header::new_gnu();
        if path.ends_with('/') {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
        } else {
            header.set_mode(0o644);
        }
        header.set_size(data.len() as u64);
        header.set_mtime(1_700_000_000);
        // Names are written as given (`..` and all), as a hostile builder would.
        let name = path.as_bytes();
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        header.set_cksum();
        builder.append(&header, *data).unwrap();
    }
    builder.into_inner().unwrap()
}

/// `bytes` gzip-compressed.
pub fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// The members of a sound .deb holding `control` and one file.
pub fn deb_members(control: &str) -> Vec<(String, Vec<u8>)> {
    vec![
        ("debian-binary".into(), b"2.0\n".to_vec()),
        (
            "control.tar.gz".into(),
            gz(&tar(&[("./", b""), ("./control", control.as_bytes())])),
        ),
        (
            "data.tar.gz".into(),
            gz(&tar(&[
                ("./", b""),
                ("./usr/", b""),
                ("./usr/share/", b""),
                ("./usr/share/crafted", b"data\n"),
            ])),
        ),
    ]
}

/// An ar archive of `members`, as `ar` writes it.
pub fn ar(members: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = b"!<arch>\n".to_vec();
    for (name, data) in members {
        out.extend(
            format!(
                "{name:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
                1_700_000_000,
                0,
                0,
                100644,
                data.len()
            )
            .into_bytes(),
        );
        out.extend_from_slice(data);
        if data.len() % 2 == 1 {
            out.push(b'\n');
        }
    }
    out
}

/// Writes `bytes` as `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, bytes).unwrap();
    path
}

/// A .deb named `name` in `dir` holding `control` (any text, as a hostile builder writes it).
pub fn deb(dir: &Path, name: &str, control: &str) -> PathBuf {
    write(dir, name, &ar(&deb_members(control)))
}

/// dpkg's verdict on `deb` (`dpkg --dry-run --install` with an empty database of its own, so
/// the host's is never touched): (accepted, what dpkg said).
pub fn dpkg_accepts(deb: &Path) -> (bool, String) {
    let admin = tempfile::tempdir().unwrap();
    for dir in ["info", "updates", "triggers"] {
        fs::create_dir_all(admin.path().join(dir)).unwrap();
    }
    for file in ["status", "available"] {
        fs::write(admin.path().join(file), "").unwrap();
    }
    let inst = tempfile::tempdir().unwrap();
    let out = output(
        Command::new("dpkg")
            .arg(format!("--admindir={}", admin.path().display()))
            .arg(format!("--instdir={}", inst.path().display()))
            .args([
                "--force-not-root",
                "--force-architecture",
                "--dry-run",
                "--install",
            ])
            .arg(deb),
    );
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.success(), text)
}

/// Whether dpkg-deb reads `deb`'s data archive to its end (`dpkg-deb --fsys-tarfile`).
pub fn dpkg_deb_reads_data(deb: &Path) -> bool {
    output(Command::new("dpkg-deb").arg("--fsys-tarfile").arg(deb))
        .status
        .success()
}

/// Whether rpm finds `rpm`'s digests sound (`rpmkeys --checksig --nosignature`).
pub fn rpm_digests_ok(rpm: &Path) -> (bool, String) {
    let db = tempfile::tempdir().unwrap();
    let out = output(
        Command::new("rpmkeys")
            .arg("--dbpath")
            .arg(db.path())
            .args(["--checksig", "--nosignature", "-v"])
            .arg(rpm),
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Writes to `to` the rpm `from` with its main header rewritten by `edit` and its serialized
/// bytes then changed by `patch`, its signature header made again (SHA-1, SHA-256 and size of
/// the new header, no signature), its payload unchanged: digests all sound, so whatever is
/// refused is refused for what the header says.
pub fn rpm_with(
    from: &Path,
    to: &Path,
    edit: impl FnOnce(&mut Header),
    patch: impl FnOnce(&mut Vec<u8>),
) {
    let bytes = fs::read(from).unwrap();
    let mut reader = &bytes[..];
    let headers = read_headers(&mut reader).unwrap();
    let payload = reader;
    let mut header = headers.header.to_header(tag::HEADERIMMUTABLE).unwrap();
    edit(&mut header);
    let mut main = header.to_bytes(tag::HEADERIMMUTABLE);
    patch(&mut main);
    let total = u32::try_from(main.len() + payload.len()).unwrap();
    let signature = mm_pkg::rpm::signature::signature_header(&main, total, None, 0).unwrap();
    let mut out = headers.lead.clone();
    out.extend_from_slice(&signature);
    out.extend(vec![
        0u8;
        mm_pkg::rpm::header::signature_padding(signature.len())
    ]);
    out.extend_from_slice(&main);
    out.extend_from_slice(payload);
    fs::write(to, out).unwrap();
}

/// The offset and length of the main header in the rpm `bytes`.
pub fn rpm_header_range(bytes: &[u8]) -> (usize, usize) {
    let headers = read_headers(&mut &bytes[..]).unwrap();
    (
        headers.header_start as usize,
        (headers.header_end - headers.header_start) as usize,
    )
}

/// Writes to `to` the rpm `from` with `packets` (signature-header tag, OpenPGP signature
/// packet) added to its signature header, everything else unchanged.
pub fn rpm_with_signatures(from: &Path, to: &Path, packets: &[(u32, Vec<u8>)]) {
    let bytes = fs::read(from).unwrap();
    let mut reader = &bytes[..];
    let headers = read_headers(&mut reader).unwrap();
    let mut signature = headers.signature.to_header(tag::HEADERSIGNATURES).unwrap();
    for (t, packet) in packets {
        signature.set(*t, mm_pkg::rpm::header::Value::Bin(packet.clone()));
    }
    let signature = signature.to_bytes(tag::HEADERSIGNATURES);
    let mut out = headers.lead.clone();
    out.extend_from_slice(&signature);
    out.extend(vec![
        0u8;
        mm_pkg::rpm::header::signature_padding(signature.len())
    ]);
    out.extend_from_slice(&headers.header.bytes);
    out.extend_from_slice(reader);
    fs::write(to, out).unwrap();
}

/// The main header of the rpm at `path`, the bytes its header signature covers.
pub fn rpm_main_header(path: &Path) -> Vec<u8> {
    read_headers(&mut &fs::read(path).unwrap()[..])
        .unwrap()
        .header
        .bytes
}
