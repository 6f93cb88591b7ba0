//! The apt side of a repository: `Packages` indexes (plain, `.gz`, `.xz`), their by-hash
//! copies, and the `Release` file that `InRelease` and `Release.gpg` sign. The compressed
//! indexes are built from chunks ([`super::cache`]) so that an update recompresses little.
//!
//! Layout under `DIR/apt/`: `pool/<component>/<letter>/<package>/<file>.deb` and
//! `dists/<suite>/<component>/binary-<arch>/Packages*`.

use anyhow::Result;
use sha2::{Digest, Sha256, Sha512};

use super::cache::{Builder, Cache, IndexText};
use super::package::PackageInfo;
use super::record::Record;

/// Root of the apt repository inside the repository directory.
pub const APT_DIR: &str = "apt";

/// Fields of a `Packages` stanza that say where the package file is and what its digests
/// are. [`stanza`] writes Filename, Size, MD5sum, SHA256 and SHA512 itself; SHA1 and
/// MSDOS-Filename are what other writers add and apt (or dselect) still reads. A package's
/// control file that sets any of them is refused, since apt would read the package's value.
pub const INDEX_FIELDS: [&str; 7] = [
    "Filename",
    "Size",
    "MD5sum",
    "SHA1",
    "SHA256",
    "SHA512",
    "MSDOS-Filename",
];

/// What `Release` says about the repository.
#[derive(Debug, Clone)]
pub struct ReleaseMeta {
    /// `Origin:`.
    pub origin: String,
    /// `Label:`.
    pub label: String,
    /// `Suite:` and `Codename:`.
    pub suite: String,
    /// `Date:`, seconds since 1970 (SOURCE_DATE_EPOCH or now).
    pub date: u64,
}

/// One index file under `dists/<suite>/`.
#[derive(Debug, Clone)]
pub struct IndexFile {
    /// Path relative to `dists/<suite>/` (`main/binary-amd64/Packages.xz`).
    pub path: String,
    /// Contents.
    pub bytes: Vec<u8>,
    /// SHA-256 of the contents, lower-case hex.
    pub sha256: String,
    /// SHA-512 of the contents, lower-case hex.
    pub sha512: String,
}

impl IndexFile {
    /// The index at `path` holding `bytes`, digested once.
    pub fn new(path: String, bytes: Vec<u8>) -> Self {
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let sha512 = hex::encode(Sha512::digest(&bytes));
        IndexFile {
            path,
            bytes,
            sha256,
            sha512,
        }
    }

    /// Paths of the by-hash copies apt fetches when `Acquire-By-Hash: yes`.
    pub fn by_hash_paths(&self) -> [String; 2] {
        let dir = self.path.rsplit_once('/').map_or("", |(d, _)| d);
        [
            format!("{dir}/by-hash/SHA256/{}", self.sha256),
            format!("{dir}/by-hash/SHA512/{}", self.sha512),
        ]
    }
}

/// Every index of `families` (component, architecture, its packages in index order):
/// `Packages`, `Packages.gz` and `Packages.xz`, compressed through `cache`.
pub fn indexes(
    families: &[(String, String, Vec<&Record>)],
    cache: &Cache,
) -> Result<Vec<IndexFile>> {
    let mut files = Vec::new();
    for (component, arch, records) in families {
        let text = packages_text(records);
        let dir = format!("{component}/binary-{arch}");
        files.push(IndexFile::new(
            format!("{dir}/Packages.gz"),
            cache.gzip(&text)?,
        ));
        files.push(IndexFile::new(
            format!("{dir}/Packages.xz"),
            cache.xz(&text)?,
        ));
        files.push(IndexFile::new(format!("{dir}/Packages"), text.to_bytes()));
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// The `Packages` text of `records` (in index order), in chunks.
pub fn packages_text(records: &[&Record]) -> IndexText {
    let mut text = Builder::new("");
    for r in records {
        text.push(&r.package.location, &(stanza(&r.package) + "\n"));
    }
    text.finish("")
}

/// The `Packages` stanza of `p`: every control field, then where and what the file is.
pub fn stanza(p: &PackageInfo) -> String {
    let mut out = control_text(&p.control);
    let d = &p.digests;
    out.push_str(&format!(
        "Filename: {}\nSize: {}\nMD5sum: {}\nSHA256: {}\nSHA512: {}\n",
        p.location, d.size, d.md5, d.sha256, d.sha512
    ));
    out
}

/// The control fields `fields` as a stanza's lines (each line ending with a newline).
pub fn control_text(fields: &[(String, String)]) -> String {
    let mut out = String::new();
    for (name, value) in fields {
        if value.starts_with('\n') {
            out.push_str(&format!("{name}:{value}\n"));
        } else {
            out.push_str(&format!("{name}: {value}\n"));
        }
    }
    out
}

/// The `Release` text naming every index with its SHA-256 and SHA-512.
pub fn release(meta: &ReleaseMeta, files: &[IndexFile]) -> String {
    let mut architectures: Vec<&str> = Vec::new();
    let mut components: Vec<&str> = Vec::new();
    for f in files {
        let mut parts = f.path.split('/');
        let (Some(component), Some(arch)) = (parts.next(), parts.next()) else {
            continue;
        };
        let arch = arch.trim_start_matches("binary-");
        if !architectures.contains(&arch) {
            architectures.push(arch);
        }
        if !components.contains(&component) {
            components.push(component);
        }
    }
    architectures.sort();
    components.sort();
    let date = chrono::DateTime::from_timestamp(meta.date as i64, 0)
        .unwrap_or_default()
        .format("%a, %d %b %Y %H:%M:%S UTC");
    let mut out = format!(
        "Origin: {}\nLabel: {}\nSuite: {}\nCodename: {}\nDate: {date}\nArchitectures: {}\n\
         Components: {}\nAcquire-By-Hash: yes\n",
        meta.origin,
        meta.label,
        meta.suite,
        meta.suite,
        architectures.join(" "),
        components.join(" "),
    );
    out.push_str("SHA256:\n");
    for f in files {
        out.push_str(&format!(" {} {:>16} {}\n", f.sha256, f.bytes.len(), f.path));
    }
    out.push_str("SHA512:\n");
    for f in files {
        out.push_str(&format!(" {} {:>16} {}\n", f.sha512, f.bytes.len(), f.path));
    }
    out
}

/// The `Release` text without its `Date:` line (to tell whether anything else changed).
pub fn without_date(release: &str) -> String {
    release
        .lines()
        .filter(|l| !l.starts_with("Date:"))
        .collect::<Vec<_>>()
        .join("\n")
}
