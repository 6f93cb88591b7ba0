//! One record per package: what the indexes say of a package the repository holds, kept as a
//! JSON file under `.mm-pkg/packages/` so that an add reads no package file but its own.
//!
//! A record is named after the pool file it describes and its own SHA-256, which the state
//! ([`super::state`]) lists: `.mm-pkg/packages/apt/pool/main/m/mattermost/mattermost_9.11.1-1_amd64.deb.<first 16 hex digits>.json`.
//! It holds the package's format, its apt component (a .deb) or the SHA-256 of the rpm that
//! was added (an rpm, whose repository copy may carry a new signature), and the
//! [`PackageInfo`] the package reader filled. Read back, a record goes through exactly the
//! checks a package read from its file goes through ([`Record::check`]): whoever wrote it,
//! nothing reaches an index that a package file could not have put there.

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::package::{PackageInfo, is_hex};
use super::{apt, yum};

/// Directory of the records.
pub const RECORD_DIR: &str = ".mm-pkg/packages";

/// Which index a package feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// An apt `Packages` index.
    Deb,
    /// The yum `primary`, `filelists` and `other`.
    Rpm,
}

impl Format {
    /// The directory inside the repository that the format's package files and indexes live
    /// under (`apt`, `yum`).
    pub fn root(self) -> &'static str {
        match self {
            Format::Deb => apt::APT_DIR,
            Format::Rpm => yum::YUM_DIR,
        }
    }

    /// `deb` or `rpm`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Deb => "deb",
            Format::Rpm => "rpm",
        }
    }
}

/// One package as the repository keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// `deb` or `rpm`.
    pub format: Format,
    /// apt component (a .deb only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// SHA-256 of the rpm that was added (an rpm only: the repository's copy may carry a new
    /// signature).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_sha256: Option<String>,
    /// What the indexes say of it.
    pub package: PackageInfo,
}

impl Record {
    /// The checks every record passes, the same for a package just read from its file and
    /// for a record read back from the state.
    pub fn check(&self) -> Result<()> {
        match (self.format, &self.component, &self.input_sha256) {
            (Format::Deb, Some(component), None) => self.package.check_deb(component),
            (Format::Rpm, None, Some(input)) if is_hex(input, 64) => self.package.check_rpm(),
            _ => bail!("a {} record with the wrong fields", self.format.name()),
        }
    }

    /// The pool file, relative to the repository (`apt/pool/...`, `yum/Packages/...`).
    pub fn pool_path(&self) -> String {
        format!("{}/{}", self.format.root(), self.package.location)
    }

    /// Where the index lists it: by name, then location.
    pub fn key(&self) -> (&str, &str) {
        (&self.package.name, &self.package.location)
    }

    /// The record file's bytes: JSON, an object per line up to the package's fields.
    pub fn encode(&self) -> Vec<u8> {
        let value = serde_json::to_value(self).expect("records serialize");
        let mut out = Vec::new();
        write_json(&value, 0, &mut out);
        out.push(b'\n');
        out
    }

    /// The record in `bytes` (read from `path`, shown in messages), checked.
    pub fn decode(bytes: &[u8], path: &Path) -> Result<Record> {
        let record: Record = serde_json::from_slice(bytes)
            .with_context(|| format!("{} is not a package record", path.display()))?;
        record
            .check()
            .with_context(|| format!("{} is refused", path.display()))?;
        Ok(record)
    }
}

/// The record file of the pool file `pool_path` whose bytes hash to `sha256`.
pub fn record_path(pool_path: &str, sha256: &str) -> String {
    format!("{RECORD_DIR}/{pool_path}.{}.json", &sha256[..16])
}

/// SHA-256 of `bytes`, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `value` as JSON with each object member on its own line down to depth 3 (the package's
/// fields and the rpm's), deeper values on one line.
fn write_json(value: &serde_json::Value, depth: usize, out: &mut Vec<u8>) {
    match value {
        serde_json::Value::Object(map) if depth < 3 && !map.is_empty() => {
            out.extend_from_slice(b"{\n");
            let last = map.len() - 1;
            for (i, (key, v)) in map.iter().enumerate() {
                out.extend(std::iter::repeat_n(b' ', 2 * (depth + 1)));
                out.extend(serde_json::to_vec(key).expect("a string"));
                out.extend_from_slice(b": ");
                write_json(v, depth + 1, out);
                if i != last {
                    out.push(b',');
                }
                out.push(b'\n');
            }
            out.extend(std::iter::repeat_n(b' ', 2 * depth));
            out.push(b'}');
        }
        other => out.extend(serde_json::to_vec(other).expect("JSON")),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::repo::package::FileDigests;

    /// A small .deb (`bench0000`, ...) as the repository keeps it.
    pub fn sample_deb(i: usize) -> Record {
        let name = format!("bench{i:04}");
        Record {
            format: Format::Deb,
            component: Some("main".into()),
            input_sha256: None,
            package: PackageInfo {
                name: name.clone(),
                version: "1.0-1".into(),
                arch: "amd64".into(),
                location: format!("pool/main/b/{name}/{name}_1.0-1_amd64.deb"),
                digests: FileDigests {
                    size: i as u64,
                    md5: format!("{:032x}", i),
                    sha256: format!("{:064x}", i),
                    sha512: format!("{:0128x}", i),
                },
                control: vec![
                    ("Package".into(), name),
                    ("Version".into(), "1.0-1".into()),
                    ("Architecture".into(), "amd64".into()),
                    ("Description".into(), "x\n more".into()),
                ],
                rpm: None,
            },
        }
    }

    #[test]
    fn a_record_reads_back_as_written() {
        let record = sample_deb(7);
        let bytes = record.encode();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains("\n    \"name\": \"bench0007\",\n"), "{text}");
        assert_eq!(Record::decode(&bytes, Path::new("r")).unwrap(), record);
    }

    #[test]
    fn a_hand_written_record_goes_through_the_checks_of_a_package_file() {
        let good = sample_deb(1);
        let mut cases: Vec<(&str, Record)> = Vec::new();
        let mut r = good.clone();
        r.package.control[3].1 = "x\n\nPackage: evil".into();
        cases.push(("a stanza break in a value", r));
        let mut r = good.clone();
        r.package.control.push(("Bad Name".into(), "v".into()));
        cases.push(("a field name with a space", r));
        let mut r = good.clone();
        r.package.location = "pool/main/e/evil/evil_1.0-1_amd64.deb".into();
        cases.push(("a location another package's", r));
        let mut r = good.clone();
        r.package.version = "2.0-1".into();
        cases.push(("a version its control fields do not say", r));
        let mut r = good.clone();
        r.package.digests.sha256 = "X".repeat(64);
        cases.push(("a digest that is no hex", r));
        let mut r = good.clone();
        r.package.name = "../../etc".into();
        cases.push(("a name that is a path", r));
        let mut r = good.clone();
        r.input_sha256 = Some("0".repeat(64));
        cases.push(("an rpm's field on a .deb", r));
        for (what, record) in cases {
            assert!(record.check().is_err(), "{what} was accepted");
            let bytes = record.encode();
            assert!(Record::decode(&bytes, Path::new("r")).is_err(), "{what}");
        }
        let extra =
            String::from_utf8(good.encode())
                .unwrap()
                .replacen("{\n", "{\n  \"extra\": 1,\n", 1);
        assert!(Record::decode(extra.as_bytes(), Path::new("r")).is_err());
    }
}
