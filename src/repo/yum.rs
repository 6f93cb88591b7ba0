//! The yum side of a repository: `repodata/` with `primary`, `filelists` and `other` (gzip
//! XML, names prefixed with their SHA-256 as createrepo_c writes them) and `repomd.xml`, which
//! `repomd.xml.asc` signs. Layout under `DIR/yum/`: `Packages/<file>.rpm` and `repodata/`.

use std::fmt::Write as _;

use anyhow::{Result, bail};
use sha2::{Digest, Sha256};

use super::cache::{Builder, Cache, IndexText};
use super::package::PackageInfo;
use super::record::Record;
use super::rpm::{Dep, RpmInfo, is_primary_file};

/// Root of the yum repository inside the repository directory.
pub const YUM_DIR: &str = "yum";
const NS_COMMON: &str = "http://linux.duke.edu/metadata/common";
const NS_RPM: &str = "http://linux.duke.edu/metadata/rpm";

/// One metadata file of `repodata/`.
#[derive(Debug, Clone)]
pub struct RepoData {
    /// `primary`, `filelists`, `other`.
    pub kind: &'static str,
    /// Size of the XML before compression.
    pub open_size: usize,
    /// SHA-256 of the XML before compression, lower-case hex.
    pub open_sha256: String,
    /// The gzip file.
    pub gz: Vec<u8>,
    /// SHA-256 of the gzip file, lower-case hex.
    pub sha256: String,
}

impl RepoData {
    /// `repodata/<sha256>-<kind>.xml.gz`.
    pub fn location(&self) -> String {
        format!("repodata/{}-{}.xml.gz", self.sha256, self.kind)
    }
}

/// True for a character XML 1.0 documents may hold (its `Char` production): tab, newline,
/// carriage return, and everything from U+0020 on but the surrogates, U+FFFE and U+FFFF.
/// One other character in primary, filelists or other makes dnf refuse the whole repository.
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Refuses `value` (the package's `what`) when it holds a character XML 1.0 cannot carry.
pub fn check_xml_text(what: &str, value: &str) -> Result<()> {
    if let Some(c) = value.chars().find(|c| !is_xml_char(*c)) {
        bail!(
            "its {what} holds the character U+{:04X}, which XML cannot carry: dnf would refuse \
             the repository's metadata for every package",
            c as u32
        );
    }
    Ok(())
}

/// XML text escaping for element content and attribute values (characters XML cannot carry,
/// refused when a package is read, are left out).
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    esc_into(&mut out, s);
    out
}

/// Appends `s` to `out`, escaped for XML element content and attribute values.
fn esc_into(out: &mut String, s: &str) {
    let plain = |b: &u8| !matches!(b, b'&' | b'<' | b'>' | b'"' | b'\'' | 0..=0x1f);
    if s.as_bytes().iter().all(plain) {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if !is_xml_char(c) => {}
            c => out.push(c),
        }
    }
}

fn rpm_of(p: &PackageInfo) -> &RpmInfo {
    p.rpm.as_ref().expect("yum packages carry rpm metadata")
}

/// The texts of primary, filelists and other for `records` (in index order), in chunks.
pub fn texts(records: &[&Record]) -> [IndexText; 3] {
    let n = records.len();
    let heads = [
        format!("<metadata xmlns=\"{NS_COMMON}\" xmlns:rpm=\"{NS_RPM}\" packages=\"{n}\">\n"),
        format!(
            "<filelists xmlns=\"http://linux.duke.edu/metadata/filelists\" packages=\"{n}\">\n"
        ),
        format!("<otherdata xmlns=\"http://linux.duke.edu/metadata/other\" packages=\"{n}\">\n"),
    ];
    let ends = ["</metadata>\n", "</filelists>\n", "</otherdata>\n"];
    let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    let mut texts = heads.map(|head| Builder::new(&format!("{xml}{head}")));
    // Each package's elements go into the texts as they are rendered.
    for r in records {
        for (text, fragment) in texts.iter_mut().zip(fragments(&r.package)) {
            text.push(&r.package.location, &fragment);
        }
    }
    let mut ends = ends.into_iter();
    texts.map(|t| t.finish(ends.next().expect("three ends")))
}

/// primary, filelists and other for `records` (in index order), compressed through `cache`.
pub fn repodata(records: &[&Record], cache: &Cache) -> Result<Vec<RepoData>> {
    let mut out = Vec::new();
    for (kind, text) in KINDS.into_iter().zip(texts(records)) {
        let gz = cache.gzip(&text)?;
        out.push(RepoData {
            kind,
            open_size: text.len(),
            open_sha256: hex::encode(text.sha256()),
            sha256: hex::encode(Sha256::digest(&gz)),
            gz,
        });
    }
    Ok(out)
}

/// The kinds of repodata mm-pkg writes, in order.
pub const KINDS: [&str; 3] = ["primary", "filelists", "other"];

/// The `<package>` elements of `p` in primary, filelists and other.
pub fn fragments(p: &PackageInfo) -> [String; 3] {
    let (mut primary, mut filelists, mut other) = (String::new(), String::new(), String::new());
    let r = rpm_of(p);
    let id = &p.digests.sha256;
    let version = format!(
        "<version epoch=\"{}\" ver=\"{}\" rel=\"{}\"/>",
        esc(&r.epoch),
        esc(&r.ver),
        esc(&r.rel)
    );
    let _ = write!(
        primary,
        "<package type=\"rpm\">\n  <name>{}</name>\n  <arch>{}</arch>\n  {version}\n  \
             <checksum type=\"sha256\" pkgid=\"YES\">{id}</checksum>\n  <summary>{}</summary>\n  \
             <description>{}</description>\n  <packager>{}</packager>\n  <url>{}</url>\n  \
             <time file=\"{}\" build=\"{}\"/>\n  <size package=\"{}\" installed=\"{}\" archive=\"{}\"/>\n  \
             <location href=\"{}\"/>\n  <format>\n    <rpm:license>{}</rpm:license>\n    \
             <rpm:vendor>{}</rpm:vendor>\n    <rpm:group>{}</rpm:group>\n    \
             <rpm:buildhost>{}</rpm:buildhost>\n    <rpm:sourcerpm>{}</rpm:sourcerpm>\n    \
             <rpm:header-range start=\"{}\" end=\"{}\"/>\n",
        esc(&p.name),
        esc(&p.arch),
        esc(&r.summary),
        esc(&r.description),
        esc(&r.packager),
        esc(&r.url),
        r.build_time,
        r.build_time,
        p.digests.size,
        r.installed_size,
        r.archive_size,
        esc(&p.location),
        esc(&r.license),
        esc(&r.vendor),
        esc(&r.group),
        esc(&r.buildhost),
        esc(&r.sourcerpm),
        r.header_range.0,
        r.header_range.1,
    );
    for (name, deps) in [
        ("provides", &r.provides),
        ("requires", &r.requires),
        ("conflicts", &r.conflicts),
        ("obsoletes", &r.obsoletes),
        ("recommends", &r.recommends),
        ("suggests", &r.suggests),
    ] {
        if deps.is_empty() {
            continue;
        }
        let _ = writeln!(primary, "    <rpm:{name}>");
        for d in deps {
            let _ = writeln!(primary, "      {}", entry(d, name == "requires"));
        }
        let _ = writeln!(primary, "    </rpm:{name}>");
    }
    for (path, kind) in &r.files {
        if is_primary_file(path) {
            file_element(&mut primary, "    ", path, kind);
        }
    }
    primary.push_str("  </format>\n</package>\n");

    let head = format!(
        "<package pkgid=\"{id}\" name=\"{}\" arch=\"{}\">\n  {version}\n",
        esc(&p.name),
        esc(&p.arch)
    );
    filelists.push_str(&head);
    for (path, kind) in &r.files {
        file_element(&mut filelists, "  ", path, kind);
    }
    filelists.push_str("</package>\n");
    other.push_str(&head);
    for (author, date, text) in &r.changelog {
        let _ = writeln!(
            other,
            "  <changelog author=\"{}\" date=\"{date}\">{}</changelog>",
            esc(author),
            esc(text)
        );
    }
    other.push_str("</package>\n");
    [primary, filelists, other]
}

fn entry(d: &Dep, requires: bool) -> String {
    let mut s = format!("<rpm:entry name=\"{}\"", esc(&d.name));
    if !d.flags.is_empty() {
        let _ = write!(s, " flags=\"{}\"", d.flags);
    }
    let (e, v, r) = &d.evr;
    if !v.is_empty() {
        let _ = write!(s, " epoch=\"{}\" ver=\"{}\"", esc(e), esc(v));
        if !r.is_empty() {
            let _ = write!(s, " rel=\"{}\"", esc(r));
        }
    }
    if requires && d.pre {
        s.push_str(" pre=\"1\"");
    }
    s.push_str("/>");
    s
}

/// Appends the `<file>` element of `path` (of `kind`: `dir`, `ghost` or empty), indented by
/// `indent`, as a line of `out`.
fn file_element(out: &mut String, indent: &str, path: &str, kind: &str) {
    out.push_str(indent);
    if kind.is_empty() {
        out.push_str("<file>");
    } else {
        out.push_str("<file type=\"");
        out.push_str(kind);
        out.push_str("\">");
    }
    esc_into(out, path);
    out.push_str("</file>\n");
}

/// `repomd.xml` naming `data`, revision and timestamps `date`.
pub fn repomd(data: &[RepoData], date: u64) -> String {
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<repomd xmlns=\"http://linux.duke.edu/metadata/repo\" xmlns:rpm=\"{NS_RPM}\">\n  <revision>{date}</revision>\n"
    );
    for d in data {
        let _ = write!(
            out,
            "  <data type=\"{}\">\n    <checksum type=\"sha256\">{}</checksum>\n    \
             <open-checksum type=\"sha256\">{}</open-checksum>\n    <location href=\"{}\"/>\n    \
             <timestamp>{date}</timestamp>\n    <size>{}</size>\n    <open-size>{}</open-size>\n  </data>\n",
            d.kind,
            d.sha256,
            d.open_sha256,
            d.location(),
            d.gz.len(),
            d.open_size
        );
    }
    out.push_str("</repomd>\n");
    out
}

/// `repomd.xml` without its revision and timestamps (to tell whether anything else changed).
pub fn without_dates(repomd: &str) -> String {
    repomd
        .lines()
        .filter(|l| !l.contains("<revision>") && !l.contains("<timestamp>"))
        .collect::<Vec<_>>()
        .join("\n")
}
