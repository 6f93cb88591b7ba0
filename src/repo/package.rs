//! What a repository index needs to know about one package file, whatever its format.
//!
//! A per-format reader ([`super::deb`], [`super::rpm`]) fills one [`PackageInfo`]; the index writers
//! ([`super::apt`], [`super::yum`]) consume it and never open the package again. The repository keeps these
//! records in its state file, so adding one package does not re-read the others.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, bail};
use md5::Md5;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha512};

/// Digests and size of a package file, computed in one read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDigests {
    /// Size in bytes.
    pub size: u64,
    /// MD5, lower-case hex (apt still lists it).
    pub md5: String,
    /// SHA-256, lower-case hex (the package's identity in the repository).
    pub sha256: String,
    /// SHA-512, lower-case hex.
    pub sha512: String,
}

impl FileDigests {
    /// Reads `path` once and digests it.
    pub fn of_file(path: &Path) -> Result<Self> {
        let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let (mut md5, mut sha256, mut sha512) = (Md5::new(), Sha256::new(), Sha512::new());
        let mut size = 0u64;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file
                .read(&mut buf)
                .with_context(|| format!("reading {}", path.display()))?;
            if n == 0 {
                break;
            }
            size += n as u64;
            md5.update(&buf[..n]);
            sha256.update(&buf[..n]);
            sha512.update(&buf[..n]);
        }
        Ok(FileDigests {
            size,
            md5: hex::encode(md5.finalize()),
            sha256: hex::encode(sha256.finalize()),
            sha512: hex::encode(sha512.finalize()),
        })
    }
}

/// One package as the indexes see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageInfo {
    /// Package name.
    pub name: String,
    /// Version as the format writes it (`9.11.90-1`).
    pub version: String,
    /// Architecture as the format names it (`amd64`, `x86_64`).
    pub arch: String,
    /// Path of the repository's copy, relative to the format's root (`pool/main/m/...`).
    pub location: String,
    /// Size and digests of the repository's copy.
    pub digests: FileDigests,
    /// The .deb's control fields in their order (name, value; multi-line values keep their
    /// continuation lines); empty for an rpm.
    #[serde(default)]
    pub control: Vec<(String, String)>,
    /// The rpm's index fields; `None` for a .deb.
    #[serde(default)]
    pub rpm: Option<super::rpm::RpmInfo>,
}

/// Refuses a name, version or architecture that could not be a safe file-name part.
pub fn check_token(what: &str, value: &str, extra: &str) -> Result<()> {
    let ok = !value.is_empty()
        && !value.starts_with(['.', '-'])
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || extra.contains(c));
    if !ok {
        bail!("the package's {what} `{value}` has characters a repository path cannot take");
    }
    Ok(())
}
