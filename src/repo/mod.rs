//! `mm-pkg repo`: signed apt and yum repositories that real clients install from.
//!
//! [`add`] reads only the new package files ([`deb`] and [`rpm`] fill a [`PackageInfo`]),
//! keeps what the indexes need in segments that a small state file names (`segments`,
//! `state`; an add parses only the segments it changes), and rewrites the indexes ([`apt`],
//! [`yum`]) from them, in an order that keeps the repository readable at every moment: pool
//! files first, then indexes under names that never change content (by-hash, SHA-256-prefixed
//! repodata), then `Release`, `Release.gpg`, `InRelease`, `repomd.xml` and `repomd.xml.asc`
//! replaced by rename, last. A lock serializes concurrent runs. `sync` calls
//! [`add`] as a library function.

pub mod apt;
mod chunks;
pub mod client;
pub mod deb;
pub mod files;
pub mod held;
pub mod package;
mod publish;
pub mod rpm;
mod segments;
mod state;
pub mod verify;
pub mod version;
pub mod yum;

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::sign::Signer;
use files::{Batch, RepoLock};
use package::{FileDigests, PackageInfo, check_token};
use publish::publish;
use segments::{Format, Store, Stored};
use state::{doomed, load_state};

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
    /// Key that signs the metadata; `None` writes an unsigned repository.
    pub signer: Option<std::sync::Arc<Signer>>,
    /// `Date:` of Release (SOURCE_DATE_EPOCH or now).
    pub date: u64,
    /// Keep only the newest N versions of each package and architecture (`--keep`).
    pub keep: Option<usize>,
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

/// What one `repo add` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AddReport {
    /// Packages copied into the repository.
    pub added: Vec<Reported>,
    /// Packages that were already there, byte for byte.
    pub skipped: Vec<Reported>,
    /// Packages removed by `--keep`.
    pub pruned: Vec<Reported>,
    /// Metadata files signed in this run (paths inside the repository directory).
    pub signed: Vec<String>,
    /// True when no key signed the repository.
    pub unsigned: bool,
}

/// Adds `files` (.deb and .rpm) to the repository at `dir`, creating it if needed, and
/// rewrites its indexes and signatures. A file whose name, version and architecture are
/// already present with other bytes is refused before anything changes.
pub fn add(dir: &Path, files: &[PathBuf], options: &RepoOptions) -> Result<AddReport> {
    let component = options.component.as_deref().unwrap_or(DEFAULT_COMPONENT);
    check_token("component", component, "-.")?;
    if options.keep == Some(0) {
        bail!("--keep 0 would remove every package: keep at least 1");
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let _lock = RepoLock::acquire(dir)?;
    files::remove_stale_temporaries(dir)?;
    let mut store = Store::new(dir);
    let mut state = load_state(dir, options, &mut store)?;
    // Pool files an interrupted run pruned from the indexes but had not removed yet.
    remove_pool_files(dir, &std::mem::take(&mut state.removing))?;

    // Read every new file and decide before anything is written.
    let mut report = AddReport::default();
    let mut new_debs: Vec<(PathBuf, Stored)> = Vec::new();
    let mut new_rpms: Vec<(PathBuf, String, String)> = Vec::new();
    for file in files {
        let digests = FileDigests::of_file(file)?;
        let (name, version, arch, location, present) = match file
            .extension()
            .and_then(|e| e.to_str())
        {
            Some("deb") => {
                let info = deb::read(file, digests.clone(), component)?;
                let same = |p: &Stored| {
                    p.info.name == info.name
                        && p.info.version == info.version
                        && p.info.arch == info.arch
                };
                let held =
                    |same: &dyn Fn(&Stored) -> bool, store: &mut Store| -> Result<Option<Stored>> {
                        match new_debs.iter().map(|(_, p)| p).find(|p| same(p)) {
                            Some(p) => Ok(Some(p.clone())),
                            None => state.find(store, Format::Deb, &info.name, same),
                        }
                    };
                let found = held(&same, &mut store)?;
                if found.is_none() {
                    // apt names pool files without the epoch: 2.0-1 and 1:2.0-1 would
                    // share one file.
                    let clash = |p: &Stored| p.info.location == info.location;
                    if let Some(other) = held(&clash, &mut store)? {
                        bail!(
                            "{}: {} {} would be stored as {}/{}, the file of version {} the repository \
                                 already holds; versions that differ only in their epoch \
                                 cannot both be published. Nothing was changed.",
                            file.display(),
                            info.name,
                            info.version,
                            apt::APT_DIR,
                            info.location,
                            other.info.version
                        );
                    }
                }
                let location = found.as_ref().map_or(&info.location, |p| &p.info.location);
                let out = (
                    info.name.clone(),
                    info.version.clone(),
                    info.arch.clone(),
                    format!("{}/{location}", apt::APT_DIR),
                    found.as_ref().map(|p| vec![p.info.digests.sha256.clone()]),
                );
                if out.4.is_none() {
                    new_debs.push((
                        file.clone(),
                        Stored {
                            component: Some(component.to_string()),
                            input_sha256: None,
                            info,
                        },
                    ));
                }
                out
            }
            Some("rpm") => {
                let (name, arch, info) = rpm::read(file)?;
                let version = format!("{}-{}", info.ver, info.rel);
                let location = format!("Packages/{name}-{version}.{arch}.rpm");
                let present = state
                    .find(&mut store, Format::Rpm, &name, |p| {
                        p.info.location == location
                    })?
                    .map(|p| vec![p.input_sha256.unwrap_or_default(), p.info.digests.sha256])
                    .or_else(|| {
                        new_rpms
                            .iter()
                            .find(|(_, sha, l)| *l == location && !sha.is_empty())
                            .map(|(_, sha, _)| vec![sha.clone()])
                    });
                if present.is_none() {
                    new_rpms.push((file.clone(), digests.sha256.clone(), location.clone()));
                }
                (
                    name,
                    version,
                    arch,
                    format!("{}/{location}", yum::YUM_DIR),
                    present,
                )
            }
            _ => bail!("{}: only .deb and .rpm files can be added", file.display()),
        };
        let reported = Reported {
            file: file.clone(),
            name,
            version,
            arch,
            location,
            sha256: digests.sha256.clone(),
        };
        match present {
            Some(known) if known.contains(&digests.sha256) => report.skipped.push(reported),
            Some(known) => bail!(
                "{}: the repository already holds {} {} ({}) with other contents (SHA-256 {}); \
                 a published version never changes: raise --revision instead. Nothing was changed.",
                file.display(),
                reported.name,
                reported.version,
                reported.arch,
                known[0]
            ),
            None => report.added.push(reported),
        }
    }

    // 1. Pool files, under names that never change content, durable before anything names them.
    let mut pool = Batch::new(dir)?;
    let apt_root = dir.join(apt::APT_DIR);
    for (file, entry) in &new_debs {
        let copy = pool.copy(file, &apt_root.join(&entry.info.location))?;
        if FileDigests::of_file(&copy)? != entry.info.digests {
            bail!(
                "{} changed while it was copied to {}: try again",
                file.display(),
                copy.display()
            );
        }
    }
    let yum_root = dir.join(yum::YUM_DIR);
    let signer = options.signer.as_deref();
    let mut rpm_entries = Vec::new();
    for (file, input_sha256, location) in new_rpms {
        let (signed, copy, (name, arch, info)) =
            write_rpm_copy(&mut pool, &file, &yum_root.join(&location), signer)?;
        if signed {
            report.signed.push(format!("{}/{location}", yum::YUM_DIR));
        }
        rpm_entries.push(Stored {
            component: None,
            input_sha256: Some(input_sha256),
            info: PackageInfo {
                name,
                version: format!("{}-{}", info.ver, info.rel),
                arch,
                location,
                digests: FileDigests::of_file(&copy)?,
                control: Vec::new(),
                rpm: Some(info),
            },
        });
    }
    pool.commit()?;
    // 2. The state (so that an interrupted run is completed by the next one) and the
    // indexes; 3. Release and repomd.xml with their signatures, and the client files.
    let added: Vec<(Format, Stored)> = new_debs
        .into_iter()
        .map(|(_, p)| (Format::Deb, p))
        .chain(rpm_entries.into_iter().map(|p| (Format::Rpm, p)))
        .collect();
    // Pruning weighs every version of a package: only then is every segment read.
    let pruned = match options.keep {
        Some(keep) => {
            let mut all = state.packages(&mut store)?;
            all.extend(added.iter().cloned());
            doomed(all, keep, &mut report)
        }
        None => Vec::new(),
    };
    // The state that drops them names their files, for the next run to remove should this
    // one stop before it does.
    state.removing = pruned
        .iter()
        .map(|(format, p)| format!("{}/{}", format.root(), p.info.location))
        .collect();
    state.change(&mut store, added, pruned)?;
    publish(dir, &state, &store, options, &mut report)?;
    // 4. Pool files no index names any more, and segments the state no longer names.
    remove_pool_files(dir, &state.removing)?;
    store.remove_unreferenced(&state.families)?;
    Ok(report)
}

/// Removes the pool files `paths` (relative to `dir`; each under `apt/pool/` or
/// `yum/Packages/`, as the state names pruned files) that are still there.
fn remove_pool_files(dir: &Path, paths: &[String]) -> Result<()> {
    for rel in paths {
        let safe = (rel.starts_with("apt/pool/") || rel.starts_with("yum/Packages/"))
            && Path::new(rel)
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)));
        if !safe {
            bail!(
                "{} names `{rel}` to remove, which is no pool file: restore .mm-pkg from a backup",
                state::state_path(dir).display()
            );
        }
        let path = dir.join(rel);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("removing {}", path.display()));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Stages in `batch` the repository's copy of the rpm `from` for `to` (signed by `signer`
/// unless it already is), dated by its build time so that its `time file` is reproducible.
/// Returns whether it signed, the staged file, and what the copy says (read once, from the
/// copy that is published).
fn write_rpm_copy(
    batch: &mut Batch,
    from: &Path,
    to: &Path,
    signer: Option<&Signer>,
) -> Result<(bool, PathBuf, (String, String, rpm::RpmInfo))> {
    let (mut out, tmp) = batch.create(to)?;
    let signed = rpm::copy_signed(from, &mut out, signer)?;
    let read = rpm::read(&tmp)?;
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(read.2.build_time);
    out.set_modified(time)
        .with_context(|| format!("dating {}", tmp.display()))?;
    Ok((signed, tmp, read))
}
