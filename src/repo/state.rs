//! What a repository keeps between runs, under `DIR/.mm-pkg/`, in plain text a maintainer can
//! read and check by hand:
//!
//! - `state.json`: the settings (suite, origin, label, base URL), the fingerprints of the keys
//!   that sign the repository, and for each package the repository holds its pool file and
//!   the SHA-256 of its record. In a signed repository the file is clearsigned by the
//!   repository's keys, as `InRelease` is (`gpgv --keyring KEY .mm-pkg/state.json` checks
//!   it). It is the commit point: a run writes the records it adds, then this file.
//! - `packages/<pool file>.<hash>.json`: one record per package ([`super::record`]).
//!
//! Read back, nothing is taken on faith: every record must hash to what the state names, and
//! goes through the checks a package file goes through; records the state does not name (an
//! interrupted run's, or planted) are ignored and removed. Which keys vouch for the state is
//! [`super::keys`]'s question.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::dir::{Kind, RepoDir};
use super::legacy;
use super::package::check_token;
use super::record::{RECORD_DIR, Record, record_path, sha256_hex};
use super::{DEFAULT_LABEL, DEFAULT_ORIGIN, DEFAULT_SUITE, RepoOptions};
use crate::sign::{Signer, multi};

/// The state file.
pub const STATE_FILE: &str = ".mm-pkg/state.json";
/// `format` of the state this version writes.
const FORMAT: &str = "mm-pkg repository 2";
/// First line of a clearsigned state.
const CLEARSIGNED: &str = "-----BEGIN PGP SIGNED MESSAGE-----";

/// Files a run wrote into the published part of the repository, for the next run to tell what
/// it changes (`repo add --changes`) and which older index files to remove.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Published {
    /// Every index, signature and client file published now, with its SHA-256.
    #[serde(default)]
    pub current: BTreeMap<String, String>,
    /// The index files of the generation before, kept for clients mid-update.
    #[serde(default)]
    pub previous: Vec<String>,
    /// `Date:` of the `Release` published (seconds since 1970).
    #[serde(default)]
    pub release_date: Option<u64>,
    /// Revision of the `repomd.xml` published.
    #[serde(default)]
    pub repomd_date: Option<u64>,
}

impl Published {
    fn is_empty(&self) -> bool {
        self.current.is_empty() && self.previous.is_empty()
    }
}

/// The state of a repository.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// [`FORMAT`].
    pub format: String,
    /// apt suite and codename.
    pub suite: String,
    /// `Origin:` of Release.
    pub origin: String,
    /// `Label:` of Release.
    pub label: String,
    /// Public URL of the repository, for the client files.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Fingerprints of the keys that sign the repository, upper-case hex; two while it
    /// rotates (the old key first); none when it is unsigned.
    #[serde(default)]
    pub keys: Vec<String>,
    /// Each package: its pool file (`apt/pool/...`, `yum/Packages/...`) and the SHA-256 of
    /// its record.
    #[serde(default)]
    pub packages: BTreeMap<String, String>,
    /// Pool files this state no longer names that the run that wrote it removes after
    /// publishing; the next run removes any still there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removing: Vec<String>,
    /// What was published last.
    #[serde(default, skip_serializing_if = "Published::is_empty")]
    pub published: Published,
}

impl State {
    /// A new repository's state.
    pub fn new() -> Self {
        State {
            format: FORMAT.into(),
            suite: DEFAULT_SUITE.into(),
            origin: DEFAULT_ORIGIN.into(),
            label: DEFAULT_LABEL.into(),
            base_url: None,
            keys: Vec::new(),
            packages: BTreeMap::new(),
            removing: Vec::new(),
            published: Published::default(),
        }
    }

    /// Checks what a hand could have put in the file: settings as the flags would take
    /// them, pool paths, hashes, key fingerprints.
    fn check(&self) -> Result<()> {
        if self.format != FORMAT {
            bail!("its format is `{}`, not `{FORMAT}`", self.format);
        }
        check_settings(
            &self.suite,
            &self.origin,
            &self.label,
            self.base_url.as_deref(),
        )?;
        for (path, sha) in &self.packages {
            check_pool_path(path)?;
            if !super::package::is_hex(sha, 64) {
                bail!("the record hash `{sha}` of {path} is not a SHA-256");
            }
        }
        for path in &self.removing {
            check_pool_path(path)?;
            if self.packages.contains_key(path) {
                bail!("it names {path} both as a package and as a pool file to remove");
            }
        }
        for (path, sha) in &self.published.current {
            check_published_path(path, &self.suite)?;
            if !super::package::is_hex(sha, 64) {
                bail!("the hash `{sha}` of the published {path} is not a SHA-256");
            }
        }
        for path in &self.published.previous {
            if !is_generation_path(path, &self.suite) {
                bail!(
                    "it names `{path}` as an index file of the generation before, which is no \
                     index file mm-pkg writes (a by-hash file or a repodata/*.xml.gz)"
                );
            }
        }
        for key in &self.keys {
            if key.len() < 32 || !key.bytes().all(|b| matches!(b, b'0'..=b'9' | b'A'..=b'F')) {
                bail!("`{key}` is not a key fingerprint");
            }
        }
        if self.keys.len() > 2 {
            bail!("it names more than two keys");
        }
        Ok(())
    }

    /// Applies this run's settings (suite, origin, label, base URL).
    pub fn apply(&mut self, options: &RepoOptions) -> Result<()> {
        let has_debs = self.packages.keys().any(|p| p.starts_with("apt/"));
        if let Some(suite) = &options.suite {
            if suite != &self.suite && has_debs {
                check_token("suite", suite, "-.")?;
                bail!(
                    "the repository's suite is `{}`; one repository serves one suite (use another DIR)",
                    self.suite
                );
            }
            self.suite = suite.clone();
        }
        if let Some(v) = &options.origin {
            self.origin = v.clone();
        }
        if let Some(v) = &options.label {
            self.label = v.clone();
        }
        if let Some(url) = &options.base_url {
            self.base_url = Some(url.trim_end_matches('/').to_string());
        }
        check_settings(
            &self.suite,
            &self.origin,
            &self.label,
            self.base_url.as_deref(),
        )
    }

    /// The file's bytes: pretty JSON, clearsigned by `signers` when there are any. When
    /// `existing` (the file there now) says the same and carries a signature of each of
    /// `signers` (and no other), it is kept: an unchanged state changes no byte.
    pub fn encode(&self, signers: &[&Signer], existing: Option<&[u8]>) -> Result<Vec<u8>> {
        let mut text = serde_json::to_string_pretty(self)?;
        text.push('\n');
        if signers.is_empty() {
            return Ok(text.into_bytes());
        }
        // Parsed (and its signatures checked) only when it holds this very text.
        let old = existing
            .and_then(|b| std::str::from_utf8(b).ok())
            .filter(|old| old.contains(text.trim_end()));
        if let Some(old) = old
            && let Ok(msg) = multi::Clearsigned::parse(old)
        {
            let same = msg.text().trim_end() == text.trim_end()
                && msg.count() == signers.len()
                && signers.iter().all(|s| msg.signed_by(s));
            if same {
                return Ok(old.as_bytes().to_vec());
            }
        }
        Ok(multi::clearsign(signers, &text)?.into_bytes())
    }
}

impl Default for State {
    fn default() -> Self {
        Self::new()
    }
}

/// Refuses settings the flags would refuse.
fn check_settings(suite: &str, origin: &str, label: &str, base_url: Option<&str>) -> Result<()> {
    check_token("suite", suite, "-.")?;
    for (value, name) in [(origin, "--origin"), (label, "--label")] {
        if value.is_empty() || value.chars().any(char::is_control) {
            bail!("{name} must be one non-empty line");
        }
    }
    if let Some(url) = base_url {
        let ok = (url.starts_with("https://") || url.starts_with("http://"))
            && !url.chars().any(|c| c.is_whitespace() || c.is_control());
        if !ok {
            bail!("--base-url `{url}` must be an http:// or https:// URL without spaces");
        }
    }
    Ok(())
}

/// Refuses a path that is no pool file's (`apt/pool/...` or `yum/Packages/...`, plain
/// components).
pub fn check_pool_path(path: &str) -> Result<()> {
    let safe = (path.starts_with("apt/pool/") || path.starts_with("yum/Packages/"))
        && path
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != ".." && !c.contains('\\'));
    if !safe {
        bail!("`{path}` is no pool file");
    }
    Ok(())
}

/// True when `path` is a file of one generation of indexes as mm-pkg names them: an apt
/// index under its hash (`apt/dists/SUITE/COMPONENT/binary-ARCH/by-hash/SHA256/<hex>`, or
/// `SHA512`) or a yum index (`yum/repodata/<sha256>-KIND.xml.gz`). Only such files are
/// removed as an older generation's.
pub fn is_generation_path(path: &str, suite: &str) -> bool {
    let plain = |c: &str| {
        !c.is_empty()
            && c != "."
            && c != ".."
            && c.bytes().all(|b| b.is_ascii_graphic() && b != b'\\')
    };
    if let Some(rest) = path.strip_prefix("yum/repodata/") {
        return rest.strip_suffix(".xml.gz").is_some_and(|name| {
            name.split_once('-').is_some_and(|(sha, kind)| {
                super::package::is_hex(sha, 64) && super::yum::KINDS.contains(&kind)
            })
        });
    }
    let Some(rest) = path.strip_prefix(&format!("apt/dists/{suite}/")) else {
        return false;
    };
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        [dirs @ .., binary, "by-hash", algo, hash] if !dirs.is_empty() => {
            let len = match *algo {
                "SHA256" => 64,
                "SHA512" => 128,
                _ => return false,
            };
            dirs.iter().all(|c| plain(c))
                && binary.starts_with("binary-")
                && plain(binary)
                && super::package::is_hex(hash, len)
        }
        _ => false,
    }
}

/// Refuses a path no published file of mm-pkg's has: one of the client files, or a file
/// under `apt/dists/SUITE/` or `yum/repodata/` with plain components.
fn check_published_path(path: &str, suite: &str) -> Result<()> {
    use super::client::{KEY_FILE, REPO_FILE, SOURCES_FILE};
    let plain = path
        .split('/')
        .all(|c| !c.is_empty() && c != "." && c != ".." && !c.contains('\\'));
    let ok = [KEY_FILE, REPO_FILE, SOURCES_FILE].contains(&path)
        || plain
            && (path.starts_with(&format!("apt/dists/{suite}/"))
                || path.starts_with("yum/repodata/"));
    if !ok {
        bail!("it names `{path}` as published, which is no file mm-pkg publishes");
    }
    Ok(())
}

/// The state file as found.
pub struct Found {
    /// The state.
    pub state: State,
    /// The clearsigned file, when it is signed (its signatures are checked by the caller,
    /// who holds the keys).
    pub signed: Option<multi::Clearsigned>,
    /// The packages of a state an earlier version wrote (which had no records): the state
    /// then names none yet.
    pub legacy: Option<Vec<Record>>,
}

/// The state of the repository `dir`; `None` when it has none.
pub fn read(dir: &RepoDir) -> Result<Option<Found>> {
    let shown = dir.join(STATE_FILE);
    let Some(bytes) = dir.read_private(STATE_FILE)? else {
        return Ok(None);
    };
    let damaged = || {
        format!(
            "{} is damaged: restore .mm-pkg from a backup",
            shown.display()
        )
    };
    let text = String::from_utf8(bytes).ok().with_context(damaged)?;
    let signed = match text.starts_with(CLEARSIGNED) {
        true => Some(multi::Clearsigned::parse(&text).with_context(damaged)?),
        false => None,
    };
    let json = signed.as_ref().map_or(text.as_str(), |s| s.text());
    let value: serde_json::Value = serde_json::from_str(json).with_context(damaged)?;
    if legacy::is_legacy(&value) {
        let old = legacy::read(dir, value)?;
        for path in &old.removing {
            check_pool_path(path).with_context(|| format!("{} is refused", shown.display()))?;
            if old.records.iter().any(|r| &r.pool_path() == path) {
                bail!(
                    "{} is refused: it names {path} both as a package and as a pool file to \
                     remove. Restore .mm-pkg from a backup.",
                    shown.display()
                );
            }
        }
        let mut state = State::new();
        state.suite = old.settings.suite;
        state.origin = old.settings.origin;
        state.label = old.settings.label;
        state.base_url = old.settings.base_url;
        state.removing = old.removing;
        return Ok(Some(Found {
            state,
            signed: None,
            legacy: Some(old.records),
        }));
    }
    let state: State = serde_json::from_value(value).with_context(damaged)?;
    state
        .check()
        .with_context(|| format!("{} is refused", shown.display()))?;
    Ok(Some(Found {
        state,
        signed,
        legacy: None,
    }))
}

/// Every record `state` names, each read from its file, checked against the hash the state
/// gives and against the pool file it says it describes, and checked as a package file is.
pub fn records(dir: &RepoDir, state: &State) -> Result<Vec<Record>> {
    let named: Vec<(&String, &String)> = state.packages.iter().collect();
    super::parallel::map(&named, |(pool_path, sha)| {
        let rel = record_path(pool_path, sha);
        let shown = dir.join(&rel);
        let bytes = dir.read_private(&rel)?.with_context(|| {
            format!(
                "{} is missing: restore .mm-pkg from a backup",
                shown.display()
            )
        })?;
        if &&sha256_hex(&bytes) != sha {
            bail!(
                "{} is not the record {} names (its SHA-256 differs): it was changed by hand \
                 or damaged; restore .mm-pkg from a backup",
                shown.display(),
                STATE_FILE
            );
        }
        let record = Record::decode(&bytes, &shown)?;
        if &&record.pool_path() != pool_path {
            bail!(
                "{} describes {}, not {pool_path}: restore .mm-pkg from a backup",
                shown.display(),
                record.pool_path()
            );
        }
        Ok(record)
    })
}

/// The record files under `.mm-pkg/packages/` that `state` does not name (an interrupted
/// run's, a replaced record's, or planted).
pub fn unnamed_records(dir: &RepoDir, state: &State) -> Result<Vec<String>> {
    let named: std::collections::BTreeSet<String> = state
        .packages
        .iter()
        .map(|(path, sha)| record_path(path, sha))
        .collect();
    let mut out = Vec::new();
    let mut pending = vec![RECORD_DIR.to_string()];
    while let Some(rel) = pending.pop() {
        for entry in dir.list(&rel)? {
            let path = format!("{rel}/{}", entry.name);
            match entry.kind {
                Kind::Dir => pending.push(path),
                _ if !named.contains(&path) => out.push(path),
                _ => {}
            }
        }
    }
    out.sort();
    Ok(out)
}
