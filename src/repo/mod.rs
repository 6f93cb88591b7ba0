//! `mm-pkg repo`: signed apt and yum repositories that real clients install from.
//!
//! The tree reads as the pipeline of one change:
//! 1. [`load`]: open `DIR` without following links ([`dir`]), take the lock ([`files`]),
//!    read the state ([`state`]), decide the keys ([`keys`]) and read every record back
//!    ([`record`]), each checked as a package file is;
//! 2. [`incoming`]: read each new package file ([`deb`] and [`rpm`] fill a [`PackageInfo`]),
//!    turn it into a record and decide (new, already there, refused) before anything is
//!    written; copy it into the pool;
//! 3. [`publish`]: render the indexes from the records ([`apt`], [`yum`], compressed through
//!    [`cache`]) and write them in an order that keeps the repository readable at every
//!    moment: pool files first, then the records, indexes under names that never change
//!    content and the state, then `Release`, `InRelease`, `Release.gpg`, `repomd.xml` and
//!    `repomd.xml.asc` replaced by rename, last.
//!
//! `sync` calls [`add`] as a library function; [`held`] answers what a repository holds.

pub mod apt;
mod cache;
pub mod client;
pub mod deb;
pub mod dir;
pub mod files;
pub mod held;
mod incoming;
mod keys;
mod legacy;
mod load;
pub mod package;
mod parallel;
mod publish;
pub mod record;
mod release;
pub mod rpm;
mod state;
pub mod verify;
pub mod version;
pub mod yum;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Result, bail};
use serde::Serialize;

use crate::sign::Signer;
use dir::RepoDir;
use files::{Batch, RepoLock};
use load::Loaded;
pub use publish::Changes;
use record::{Format, Record};

/// Default `--suite`.
pub const DEFAULT_SUITE: &str = "stable";
/// Default `--component`.
pub const DEFAULT_COMPONENT: &str = "main";
/// Default `Origin:`.
pub const DEFAULT_ORIGIN: &str = "mm-pkg";
/// Default `Label:`.
pub const DEFAULT_LABEL: &str = "Mattermost";

/// How `repo add` updates a repository. `None` keeps what the repository already says.
#[derive(Debug, Clone, Default)]
pub struct RepoOptions {
    /// apt suite (and codename).
    pub suite: Option<String>,
    /// apt component for the packages added now.
    pub component: Option<String>,
    /// `Origin:` of Release.
    pub origin: Option<String>,
    /// `Label:` of Release.
    pub label: Option<String>,
    /// Public URL of the repository directory, for the client files.
    pub base_url: Option<String>,
    /// Key that signs the metadata; `None` writes an unsigned repository (refused for a
    /// signed one).
    pub signer: Option<Arc<Signer>>,
    /// The repository's current key, while it rotates to `signer` (`--rotate-from`).
    pub rotate_from: Option<Arc<Signer>>,
    /// Retire the old key of a rotation (`--finish-rotation`).
    pub finish_rotation: bool,
    /// Sign a repository that holds packages no key signed yet (`--first-signing`).
    pub first_signing: bool,
    /// `Date:` of Release (SOURCE_DATE_EPOCH or now).
    pub date: u64,
    /// Keep only the newest N versions of each package and architecture (`--keep`).
    pub keep: Option<usize>,
    /// Publish from the private state alone: the pool files of earlier adds are not in the
    /// directory (`--state-only`).
    pub state_only: bool,
}

/// One package named in a report.
#[derive(Debug, Clone, Serialize)]
pub struct Reported {
    /// The file given on the command line (or the repository's copy).
    pub file: PathBuf,
    /// Package name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Architecture.
    pub arch: String,
    /// Path inside the repository directory.
    pub location: String,
    /// SHA-256 of the file.
    pub sha256: String,
}

impl Reported {
    fn of(record: &Record) -> Self {
        let location = record.pool_path();
        Reported {
            file: PathBuf::from(&location),
            name: record.package.name.clone(),
            version: record.package.version.clone(),
            arch: record.package.arch.clone(),
            location,
            sha256: record.package.digests.sha256.clone(),
        }
    }
}

/// What one `repo add` (or `repo remove`) did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AddReport {
    /// Packages copied into the repository.
    pub added: Vec<Reported>,
    /// Packages that were already there, byte for byte.
    pub skipped: Vec<Reported>,
    /// Packages removed by `--keep`.
    pub pruned: Vec<Reported>,
    /// Packages withdrawn by `repo remove`.
    pub removed: Vec<Reported>,
    /// Metadata files signed in this run (paths inside the repository directory).
    pub signed: Vec<String>,
    /// True when no key signed the repository.
    pub unsigned: bool,
    /// The fingerprints of the keys that sign the repository now.
    pub keys: Vec<String>,
    /// What changed in the published files, in upload order.
    pub changes: Changes,
}

/// Adds `files` (.deb and .rpm) to the repository at `dir`, creating it if needed, and
/// rewrites its indexes and signatures. A file whose name, version and architecture are
/// already present with other bytes is refused before anything changes.
pub fn add(dir: &Path, files: &[PathBuf], options: &RepoOptions) -> Result<AddReport> {
    let component = options.component.as_deref().unwrap_or(DEFAULT_COMPONENT);
    package::check_token("component", component, "-.")?;
    if options.keep == Some(0) {
        bail!("--keep 0 would remove every package: keep at least 1");
    }
    change(dir, options, true, |loaded, report| {
        let new = incoming::read_all(files, component, &loaded.records, report)?;
        Ok((new, Vec::new()))
    })
}

/// Refuses, before anything is built or written, a run with `options` that the repository
/// at `dir` would refuse for its keys (no key for a signed repository, another key, a
/// rotation step that does not fit); takes no lock and changes nothing.
pub fn check_keys(dir: &Path, options: &RepoOptions) -> Result<()> {
    let Some(dir) = RepoDir::open(dir, false)? else {
        return Ok(());
    };
    let found = state::read(&dir)?;
    keys::decide(&dir, found.as_ref(), options).map(|_| ())
}

/// Withdraws the published versions `versions` (`NAME=VERSION`: every architecture and
/// format of it) from the repository at `dir`: their pool files go, and the indexes are
/// rendered and signed again.
pub fn remove(dir: &Path, versions: &[String], options: &RepoOptions) -> Result<AddReport> {
    let mut wanted: Vec<(&str, &str)> = Vec::new();
    for v in versions {
        match v.split_once('=') {
            Some((name, version)) if !name.is_empty() && !version.is_empty() => {
                wanted.push((name, version))
            }
            _ => bail!("`{v}` is not NAME=VERSION (e.g. mattermost=9.11.1-1)"),
        }
    }
    if RepoDir::open(dir, false)?.is_none() {
        bail!("{} does not exist", dir.display());
    }
    change(dir, options, false, |loaded, _| {
        let mut gone = Vec::new();
        for (name, version) in &wanted {
            let matching: Vec<&Record> = loaded
                .records
                .iter()
                .filter(|r| r.package.name == *name && r.package.version == *version)
                .collect();
            if matching.is_empty() {
                bail!(
                    "the repository holds no {name} {version} (`mm-pkg repo list {}` shows what it \
                     holds). Nothing was changed.",
                    dir.display()
                );
            }
            gone.extend(matching.into_iter().cloned());
        }
        // The last package of a format withdrawn would leave its signed index naming a file
        // that is gone (and clients of that format with nothing to read).
        for format in [Format::Deb, Format::Rpm] {
            let held = loaded.records.iter().filter(|r| r.format == format).count();
            let going = gone.iter().filter(|r| r.format == format).count();
            if held > 0 && going == held {
                bail!(
                    "this would withdraw every .{} package the repository holds, and its \
                     clients would be left with an index of nothing: add the version that \
                     replaces it first (then remove this one). Nothing was changed.",
                    format.name()
                );
            }
        }
        Ok((Vec::new(), gone))
    })
}

/// One change of the repository at `dir`: `decide` reads the loaded repository and returns
/// the packages to add and those to withdraw; the rest (pool, pruning, publishing) is the
/// same for every change.
fn change(
    dir: &Path,
    options: &RepoOptions,
    create: bool,
    decide: impl FnOnce(&Loaded, &mut AddReport) -> Result<(Vec<incoming::New>, Vec<Record>)>,
) -> Result<AddReport> {
    let dir = RepoDir::open(dir, create)?.expect("created");
    let _lock = RepoLock::acquire(&dir)?;
    files::remove_stale_temporaries(&dir)?;
    let loaded = load::load(&dir, options)?;
    let mut report = AddReport::default();
    let (new, withdrawn) = decide(&loaded, &mut report)?;
    // Pool files an interrupted run pruned from the indexes but had not removed yet (once
    // this run is known to go ahead).
    for path in &loaded.state.removing {
        dir.remove_file(path)?;
    }
    let Loaded {
        mut state,
        mut records,
        keys,
        legacy,
        ..
    } = loaded;
    let keys_before = std::mem::take(&mut state.keys);

    // 1. Pool files, under names that never change content, durable before anything names
    // them.
    let mut pool = Batch::new(&dir)?;
    let mut write = incoming::copy_all(&mut pool, new, keys.rpm.as_deref(), &mut report)?;
    if keys.resign_rpms {
        let signer = keys.rpm.as_deref().expect("a key finishes the rotation");
        let before = records.clone();
        incoming::resign_rpms(&dir, &mut pool, &mut records, signer, &mut report)?;
        write.extend(records.iter().filter(|r| !before.contains(r)).cloned());
    }
    let pool_written = pool.commit()?;
    records.extend(write.iter().cloned());

    // 2. Packages withdrawn, and those `--keep` prunes; the state that drops them names
    // their files, for the next run to remove should this one stop before it does.
    let mut dropped: Vec<Record> = Vec::new();
    for record in withdrawn {
        report.removed.push(Reported::of(&record));
        dropped.push(record);
    }
    if let Some(keep) = options.keep {
        for record in doomed(&records, keep) {
            report.pruned.push(Reported::of(&record));
            dropped.push(record);
        }
    }
    records.retain(|r| !dropped.iter().any(|d| d.pool_path() == r.pool_path()));
    state.removing = dropped.iter().map(Record::pool_path).collect();
    if legacy {
        // Every record is written anew: the state names them from now on.
        write = records.clone();
    }

    // 3. Records, indexes, signatures, the state; then what no longer belongs.
    report.unsigned = keys.signers.is_empty();
    report.keys = keys.fingerprints.clone();
    let removing = state.removing.clone();
    let job = publish::Publish {
        state,
        records: &records,
        write: &write,
        keys: &keys,
        keys_before: &keys_before,
        pool_written,
    };
    let mut changes = publish::publish(&dir, job, options, &mut report)?;
    for path in removing {
        dir.remove_file(&path)?;
        changes.removed.push(path);
    }
    if legacy {
        for path in legacy::LEGACY_FILES {
            remove_tree(&dir, path)?;
        }
    }
    changes.removed.sort();
    changes.removed.dedup();
    report.changes = changes;
    Ok(report)
}

/// Removes the private file or directory tree `rel`, links inside it as links.
fn remove_tree(dir: &RepoDir, rel: &str) -> Result<()> {
    match dir.kind(rel)? {
        None => return Ok(()),
        Some(dir::Kind::Dir) => {}
        Some(_) => {
            dir.remove_file(rel)?;
            return Ok(());
        }
    }
    for entry in dir.list(rel)? {
        remove_tree(dir, &format!("{rel}/{}", entry.name))?;
    }
    if let Some((parent, name)) = dir.parent(rel, false)? {
        dir.forget(rel);
        match rustix::fs::unlinkat(&parent, name, rustix::fs::AtFlags::REMOVEDIR) {
            Err(rustix::io::Errno::NOENT) | Ok(()) => {}
            Err(e) => {
                let shown = dir.join(rel);
                return Err(anyhow::Error::new(e).context(format!("removing {}", shown.display())));
            }
        }
    }
    Ok(())
}

/// The packages to drop so that only the newest `keep` versions of each package and
/// architecture stay (in dpkg's and rpm's version order).
fn doomed(records: &[Record], keep: usize) -> Vec<Record> {
    let mut groups: BTreeMap<(Format, &str, &str), Vec<&Record>> = BTreeMap::new();
    for r in records {
        groups
            .entry((r.format, &r.package.name, &r.package.arch))
            .or_default()
            .push(r);
    }
    let evr = |r: &Record| {
        let i = r.package.rpm.clone().unwrap_or_default();
        (i.epoch, i.ver, i.rel)
    };
    let mut out = Vec::new();
    for ((format, _, _), mut list) in groups {
        match format {
            Format::Deb => {
                list.sort_by(|a, b| version::cmp_deb(&b.package.version, &a.package.version));
            }
            Format::Rpm => list.sort_by(|a, b| {
                let (x, y) = (evr(b), evr(a));
                version::cmp_rpm((&x.0, &x.1, &x.2), (&y.0, &y.1, &y.2))
            }),
        }
        out.extend(list.into_iter().skip(keep).cloned());
    }
    out
}
