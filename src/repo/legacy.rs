//! Reading the state earlier mm-pkg versions wrote, once, to move it into records: a
//! `state.json` with the settings and either every package inline or, for each index, the
//! segment files (`.mm-pkg/segments/<sha256>`: a header, the index texts, then the packages
//! as JSON) that hold them. Only the packages are taken; each becomes a [`Record`] and goes
//! through the same checks as any record.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::dir::RepoDir;
use super::package::PackageInfo;
use super::record::{Format, Record};

/// The segment files, and what else only the old state had.
pub const LEGACY_FILES: [&str; 2] = [".mm-pkg/segments", ".mm-pkg/index-chunks"];
/// First bytes of a segment file.
const MAGIC: &[u8] = b"mm-pkg segment 1\n";

/// The settings, as the old state kept them.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// apt suite.
    pub suite: String,
    /// `Origin:`.
    pub origin: String,
    /// `Label:`.
    pub label: String,
    /// Public URL.
    pub base_url: Option<String>,
}

/// One package as the old state kept it.
#[derive(Deserialize)]
struct Stored {
    #[serde(default)]
    component: Option<String>,
    #[serde(default)]
    input_sha256: Option<String>,
    info: PackageInfo,
}

#[derive(Deserialize)]
struct SegmentRef {
    id: String,
}

#[derive(Deserialize)]
struct Family {
    format: Format,
    segments: Vec<SegmentRef>,
}

/// The old state of either kind.
#[derive(Deserialize)]
#[serde(untagged)]
enum Old {
    Segmented {
        settings: Settings,
        families: Vec<Family>,
        #[serde(default)]
        removing: Vec<String>,
    },
    Inline {
        settings: Settings,
        deb: Vec<Stored>,
        #[serde(default)]
        rpm: Vec<Stored>,
    },
}

/// What an old state held: its settings, its packages as records, and the pool files an
/// interrupted run of it was to remove.
pub struct Legacy {
    /// The settings.
    pub settings: Settings,
    /// Every package.
    pub records: Vec<Record>,
    /// Pool files to remove.
    pub removing: Vec<String>,
}

/// True when `json` is a state an earlier version wrote (it has `settings`).
pub fn is_legacy(json: &serde_json::Value) -> bool {
    json.get("settings").is_some()
}

/// The old state `json` of the repository `dir`, with the packages of its segments.
pub fn read(dir: &RepoDir, json: serde_json::Value) -> Result<Legacy> {
    let shown = dir.join(".mm-pkg/state.json");
    let old: Old = serde_json::from_value(json)
        .with_context(|| format!("{} is damaged: restore it from a backup", shown.display()))?;
    let to_record = |format: Format, p: Stored| Record {
        format,
        component: p.component,
        input_sha256: p.input_sha256,
        package: p.info,
    };
    let (settings, records, removing) = match old {
        Old::Inline { settings, deb, rpm } => {
            let debs = deb.into_iter().map(|p| to_record(Format::Deb, p));
            let rpms = rpm.into_iter().map(|p| to_record(Format::Rpm, p));
            (settings, debs.chain(rpms).collect(), Vec::new())
        }
        Old::Segmented {
            settings,
            families,
            removing,
        } => {
            let mut records = Vec::new();
            for family in families {
                for segment in family.segments {
                    for p in segment_packages(dir, &segment.id)? {
                        records.push(to_record(family.format, p));
                    }
                }
            }
            (settings, records, removing)
        }
    };
    let mut seen = BTreeMap::new();
    for record in &records {
        record
            .check()
            .with_context(|| format!("a package in {} is refused", shown.display()))?;
        if seen.insert(record.pool_path(), ()).is_some() {
            bail!(
                "{} names {} twice: restore it from a backup",
                shown.display(),
                record.pool_path()
            );
        }
    }
    Ok(Legacy {
        settings,
        records,
        removing,
    })
}

/// The packages of the segment file `id` (which must hash to its name).
fn segment_packages(dir: &RepoDir, id: &str) -> Result<Vec<Stored>> {
    let rel = format!(".mm-pkg/segments/{id}");
    let damaged = || {
        format!(
            "{} is damaged: restore .mm-pkg from a backup",
            dir.join(&rel).display()
        )
    };
    let bytes = dir.read_private(&rel)?.with_context(|| {
        format!(
            "{} is missing: restore .mm-pkg from a backup",
            dir.join(&rel).display()
        )
    })?;
    if hex::encode(Sha256::digest(&bytes)) != id {
        bail!("{}", damaged());
    }
    // Magic, the number of texts, each text's length and SHA-256, the packages' length, a
    // CRC-32; then the texts and the packages.
    let rest = bytes.strip_prefix(MAGIC).with_context(damaged)?;
    let (&n, mut rest) = rest.split_first().with_context(damaged)?;
    let mut texts = 0usize;
    for _ in 0..n {
        let (len, tail) = rest.split_at_checked(40).with_context(damaged)?;
        let len = u64::from_le_bytes(len[..8].try_into().expect("8 bytes"));
        texts = texts
            .checked_add(usize::try_from(len).ok().with_context(damaged)?)
            .with_context(damaged)?;
        rest = tail;
    }
    let (json_len, tail) = rest.split_at_checked(8).with_context(damaged)?;
    let json_len = u64::from_le_bytes(json_len.try_into().expect("8 bytes"));
    let body = tail.get(4..).with_context(damaged)?;
    let json = body.get(texts..).with_context(damaged)?;
    if json.len() as u64 != json_len {
        bail!("{}", damaged());
    }
    serde_json::from_slice(json).with_context(damaged)
}
