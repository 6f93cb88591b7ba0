//! Opening a repository for a change: its state read and checked ([`super::state`]), the keys
//! of this run decided ([`super::keys`]), and every record read back and checked, each as far
//! as what vouches for it allows: against its pool file where no key signed the state, and
//! its pool file's size otherwise (skipped with `--state-only`, where the pool is not there).

use std::collections::BTreeSet;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use super::dir::RepoDir;
use super::keys::{self, Keys, Vouched};
use super::package::{FileDigests, PackageInfo};
use super::record::{Format, Record};
use super::state::{self, State};
use super::{RepoOptions, apt, deb, publish, rpm, yum};
use crate::sign::multi;

/// A repository opened for a change.
pub struct Loaded {
    /// Its state, with this run's settings applied.
    pub state: State,
    /// Every package it holds.
    pub records: Vec<Record>,
    /// The keys of this run.
    pub keys: Keys,
    /// True when the state was written by an earlier version (its files go after this run).
    pub legacy: bool,
}

/// A path that reads the open file `file` (for readers that take paths), so that what they
/// read is the file opened without following links.
pub fn fd_path(file: &File) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()))
}

/// Opens the repository `dir` for a run with `options`.
pub fn load(dir: &RepoDir, options: &RepoOptions) -> Result<Loaded> {
    let found = state::read(dir)?;
    if found.is_none() {
        // Without a state, pool files and content-addressed indexes are what a first run
        // killed before its state landed left; a published Release or repomd.xml is not.
        if let Some(index) = published_index(dir)? {
            bail!(
                "{} holds {index} but no {}: it was not made by mm-pkg repo add (or its .mm-pkg/ \
                 is lost: restore it from a backup)",
                dir.path().display(),
                state::STATE_FILE
            );
        }
    }
    let mut keys = keys::decide(dir, found.as_ref(), options)?;
    let (mut state, records, legacy) = match found {
        None => (State::new(), Vec::new(), false),
        Some(found) => match found.legacy {
            Some(records) => (found.state, records, true),
            None => {
                let records = state::records(dir, &found.state)?;
                (found.state, records, false)
            }
        },
    };
    // No signature covers a state an earlier version wrote, even one that names nothing.
    if legacy && keys::signature_found(dir)?.is_some() {
        vouch_legacy(dir, &state, &records, &keys, options)?;
        keys.vouched = Vouched::Signed;
    }
    state.apply(options)?;
    for record in &records {
        check_pool_file(dir, record, keys.vouched, options.state_only)?;
    }
    Ok(Loaded {
        state,
        records,
        keys,
        legacy,
    })
}

/// Checks a state an earlier version wrote (which no key signed) against what a signed
/// repository publishes: its packages must render exactly the indexes that `InRelease` and
/// `repomd.xml.asc`, signed by one of this run's keys, list (no package more, none less),
/// its settings must be those of the signed `Release`, and a base URL (which no signature
/// covers) must be confirmed with `--base-url`. Refused otherwise, before anything is
/// written: the state was changed, or an add of the earlier version was interrupted.
fn vouch_legacy(
    dir: &RepoDir,
    state: &State,
    records: &[Record],
    keys: &Keys,
    options: &RepoOptions,
) -> Result<()> {
    let shown = dir.path().display();
    let refuse = |why: String| {
        anyhow::anyhow!(
            "{shown}/{} (written by an earlier mm-pkg, and signed by no key) {why}: it was \
             changed, or an add of the earlier version was interrupted. Finish that add with \
             the earlier version, or restore .mm-pkg from a backup. Nothing was changed.",
            state::STATE_FILE
        )
    };
    let signers = keys.refs();
    for suite in dir.list(&format!("{}/dists", apt::APT_DIR))? {
        if suite.name != state.suite {
            return Err(refuse(format!(
                "names suite `{}`, but the repository publishes suite `{}`",
                state.suite, suite.name
            )));
        }
    }
    // A format the repository has files of is checked even when the old state names none
    // of its packages: deleting its signed index must not let the state withdraw them.
    let has_files = |pool: &str, index_dir: &str| -> Result<bool> {
        Ok(dir.exists(index_dir)? || !dir.list(pool)?.is_empty())
    };
    let dists = format!("{}/dists/{}", apt::APT_DIR, state.suite);
    let families = publish::families(records);
    let apt_files = has_files(
        &format!("{}/pool", apt::APT_DIR),
        &format!("{}/dists", apt::APT_DIR),
    )?;
    match dir.read(&format!("{dists}/InRelease"))? {
        None if families.is_empty() && !apt_files => {}
        None => {
            return Err(refuse(format!(
                "is checked against {dists}/InRelease, which is missing though the \
                 repository holds .deb files"
            )));
        }
        Some(bytes) => {
            let armored = String::from_utf8_lossy(&bytes);
            let release = signers
                .iter()
                .find_map(|s| multi::cleartext_signed_by(&armored, s))
                .ok_or_else(|| {
                    refuse(format!(
                        "is checked against {dists}/InRelease, which no key of this run signed"
                    ))
                })?;
            for (field, value) in [
                ("Origin", &state.origin),
                ("Label", &state.label),
                ("Suite", &state.suite),
            ] {
                if !release.lines().any(|l| l == format!("{field}: {value}")) {
                    return Err(refuse(format!(
                        "says `{field}: {value}`, which {dists}/InRelease does not"
                    )));
                }
            }
            let listed: BTreeSet<String> = release
                .lines()
                .filter(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    matches!(f.as_slice(), [sha, size, path]
                        if sha.len() == 64 && *size != "0" && path.ends_with("/Packages"))
                })
                .map(str::to_string)
                .collect();
            let rendered: BTreeSet<String> = families
                .iter()
                .map(|(component, arch, list)| {
                    let text = apt::packages_text(list);
                    format!(
                        " {} {:>16} {component}/binary-{arch}/Packages",
                        hex::encode(text.sha256()),
                        text.len()
                    )
                })
                .collect();
            if listed != rendered {
                return Err(refuse(format!(
                    "names other .deb packages than {dists}/InRelease, signed by the \
                     repository's key, lists"
                )));
            }
        }
    }
    let repomd_path = format!("{}/repodata/repomd.xml", yum::YUM_DIR);
    let rpms = publish::rpms(records);
    let yum_files = has_files(
        &format!("{}/Packages", yum::YUM_DIR),
        &format!("{}/repodata", yum::YUM_DIR),
    )?;
    match dir.read(&repomd_path)? {
        None if rpms.is_empty() && !yum_files => {}
        None => {
            return Err(refuse(format!(
                "is checked against {repomd_path}, which is missing though the repository \
                 holds .rpm files"
            )));
        }
        Some(repomd) => {
            let sig = dir.read(&format!("{repomd_path}.asc"))?.unwrap_or_default();
            if !signers
                .iter()
                .any(|s| multi::detached_signed_by(&sig, &repomd, s))
            {
                return Err(refuse(format!(
                    "is checked against {repomd_path}, which no key of this run signed"
                )));
            }
            let repomd = String::from_utf8_lossy(&repomd);
            let texts = match rpms.is_empty() {
                true => None,
                false => Some(yum::texts(&rpms)),
            };
            let same = texts.is_some_and(|texts| {
                yum::KINDS.into_iter().zip(texts).all(|(kind, text)| {
                    let sha = hex::encode(text.sha256());
                    repomd
                        .split("<data ")
                        .find(|d| d.starts_with(&format!("type=\"{kind}\"")))
                        .is_some_and(|d| {
                            d.contains(&format!("<open-checksum type=\"sha256\">{sha}<"))
                        })
                })
            });
            if !same {
                return Err(refuse(format!(
                    "names other .rpm packages than {repomd_path}, signed by the repository's \
                     key, lists"
                )));
            }
        }
    }
    if let Some(url) = &state.base_url
        && options.base_url.is_none()
    {
        bail!(
            "{shown}/{} (written by an earlier mm-pkg) names the base URL {url}, which no \
             signature covers and clients are sent to: if it is right, confirm it once with \
             --base-url {url}. Nothing was changed.",
            state::STATE_FILE
        );
    }
    Ok(())
}

/// A `Release`, `InRelease` or `repomd.xml` in the repository `dir`, if there is one.
fn published_index(dir: &RepoDir) -> Result<Option<String>> {
    let repomd = "yum/repodata/repomd.xml";
    if dir.exists(repomd)? {
        return Ok(Some(repomd.into()));
    }
    for suite in dir.list("apt/dists")? {
        for name in ["Release", "InRelease"] {
            let rel = format!("apt/dists/{}/{name}", suite.name);
            if dir.exists(&rel)? {
                return Ok(Some(rel));
            }
        }
    }
    Ok(None)
}

/// Checks `record` against its pool file: read whole, and read again as a package file is,
/// when no key vouches for it ([`Vouched::NotYet`]); its size otherwise. Nothing with
/// `--state-only`, where the pool is not there (and an unvouched record is refused).
fn check_pool_file(
    dir: &RepoDir,
    record: &Record,
    vouched: Vouched,
    state_only: bool,
) -> Result<()> {
    let path = record.pool_path();
    let shown = dir.join(&path);
    if vouched == Vouched::NotYet {
        if state_only {
            bail!(
                "this run signs a repository whose state no key signed yet: each package is \
                 checked against its pool file first, and with --state-only the pool is not \
                 here. Run it once with the whole repository. Nothing was changed."
            );
        }
        let file = dir
            .open_owned_file(&path)?
            .with_context(|| missing(&shown))?;
        let digests = FileDigests::of_reader(&file, &shown)?;
        let again = reread(record, &fd_path(&file), digests)
            .with_context(|| format!("reading {}", shown.display()))?;
        if again != record.package {
            bail!(
                "{} is not the package the repository's state says it is: someone changed \
                 the pool file or the state. Restore both from a backup. Nothing was changed.",
                shown.display()
            );
        }
        return Ok(());
    }
    if state_only {
        return Ok(());
    }
    let size = dir
        .owned_file_size(&path)?
        .with_context(|| missing(&shown))?;
    if size != record.package.digests.size {
        bail!(
            "{} has {size} bytes, not the {} its index says: it was damaged or replaced. \
             Restore it from a backup (or withdraw the version with `repo remove`). Nothing \
             was changed.",
            shown.display(),
            record.package.digests.size
        );
    }
    Ok(())
}

fn missing(shown: &std::path::Path) -> String {
    format!(
        "{} is missing, though the repository's state holds it: restore it from a backup, or \
         withdraw the version with `repo remove`, or publish from the state alone with \
         --state-only. Nothing was changed.",
        shown.display()
    )
}

/// What the package file at `path` says, read as `repo add` reads a new one.
fn reread(record: &Record, path: &std::path::Path, digests: FileDigests) -> Result<PackageInfo> {
    match record.format {
        Format::Deb => deb::read(
            path,
            digests,
            record.component.as_deref().unwrap_or_default(),
        ),
        Format::Rpm => Ok(PackageInfo::of_rpm(rpm::read(path)?, digests)),
    }
}
