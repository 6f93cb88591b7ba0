//! `mm-pkg repo`: signed apt repositories that real clients install from.
//!
//! [`add`] reads only the new package files ([`deb`] fills a [`PackageInfo`]), keeps what the
//! indexes need in a state file, and rewrites the indexes ([`apt`]) from that state, in an
//! order that keeps the repository readable at every moment: pool files first, then indexes
//! under names that never change content (by-hash), then `Release`, `Release.gpg` and
//! `InRelease` replaced by rename, last. A lock serializes concurrent runs. `sync` calls
//! [`add`] as a library function.

pub mod apt;
pub mod client;
pub mod deb;
pub mod files;
pub mod package;

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::sign::Signer;
use files::{PRIVATE_DIR, RepoLock, copy_atomic, write_atomic};
use package::{FileDigests, PackageInfo, check_token};

/// Default `--suite`.
pub const DEFAULT_SUITE: &str = "stable";
/// Default `--component`.
pub const DEFAULT_COMPONENT: &str = "main";
/// Default `Origin:`.
pub const DEFAULT_ORIGIN: &str = "mm-pkg";
/// Default `Label:`.
pub const DEFAULT_LABEL: &str = "Mattermost";
/// The state file under [`files::PRIVATE_DIR`].
const STATE_FILE: &str = "state.json";

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
}

/// Settings a repository keeps between runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Settings {
    suite: String,
    origin: String,
    label: String,
    base_url: Option<String>,
}

/// A package in the apt repository.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct DebEntry {
    component: String,
    info: PackageInfo,
}

/// What the repository holds, so that adding a package does not re-read the others.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    settings: Settings,
    deb: Vec<DebEntry>,
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

/// Adds `files` (.deb) to the repository at `dir`, creating it if needed, and rewrites its
/// indexes and signatures. A file whose name, version and architecture are already present
/// with other bytes is refused before anything changes.
pub fn add(dir: &Path, files: &[PathBuf], options: &RepoOptions) -> Result<AddReport> {
    let component = options.component.as_deref().unwrap_or(DEFAULT_COMPONENT);
    check_token("component", component, "-.")?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let _lock = RepoLock::acquire(dir)?;
    let mut state = load_state(dir, options)?;

    // Read every new file and decide before anything is written.
    let apt_root = dir.join(apt::APT_DIR);
    let mut report = AddReport::default();
    let mut new: Vec<(PathBuf, DebEntry)> = Vec::new();
    for file in files {
        let ext = file.extension().and_then(|e| e.to_str()).unwrap_or("");
        if ext != "deb" {
            bail!(
                "{}: only .deb files can be added (the yum side is not implemented yet)",
                file.display()
            );
        }
        let digests = FileDigests::of_file(file)?;
        let info = deb::read(file, digests, component)?;
        let reported = Reported {
            file: file.clone(),
            name: info.name.clone(),
            version: info.version.clone(),
            arch: info.arch.clone(),
            location: format!("{}/{}", apt::APT_DIR, info.location),
            sha256: info.digests.sha256.clone(),
        };
        let same_name = |e: &DebEntry| {
            e.info.name == info.name && e.info.version == info.version && e.info.arch == info.arch
        };
        let present = state
            .deb
            .iter()
            .chain(new.iter().map(|(_, e)| e))
            .find(|e| same_name(e));
        match present {
            Some(e) if e.info.digests.sha256 == info.digests.sha256 => {
                report.skipped.push(reported);
            }
            Some(e) => bail!(
                "{}: the repository already holds {} {} ({}) with other contents (SHA-256 {}); \
                 a published version never changes: raise --revision instead. Nothing was changed.",
                file.display(),
                info.name,
                info.version,
                info.arch,
                e.info.digests.sha256
            ),
            None => {
                report.added.push(reported);
                new.push((
                    file.clone(),
                    DebEntry {
                        component: component.to_string(),
                        info,
                    },
                ));
            }
        }
    }

    // 1. Pool files, under names that never change content.
    for (file, entry) in &new {
        let target = apt_root.join(&entry.info.location);
        copy_atomic(file, &target)?;
        let copied = FileDigests::of_file(&target)?;
        if copied != entry.info.digests {
            bail!(
                "{} changed while it was copied to {}: try again",
                file.display(),
                target.display()
            );
        }
    }
    // 2. The state, so that an interrupted run is completed by the next one.
    state.deb.extend(new.into_iter().map(|(_, e)| e));
    save_state(dir, &state)?;
    // 3. Indexes, Release and signatures; 4. the client files.
    publish(dir, &state, options, &mut report)?;
    Ok(report)
}

/// Rewrites every index, `Release` and its signatures from `state`, and the client files.
fn publish(dir: &Path, state: &State, options: &RepoOptions, report: &mut AddReport) -> Result<()> {
    let signer = options.signer.as_deref();
    report.unsigned = signer.is_none();
    let debs: Vec<(String, PackageInfo)> = state
        .deb
        .iter()
        .map(|e| (e.component.clone(), e.info.clone()))
        .collect();
    let dists = dir
        .join(apt::APT_DIR)
        .join("dists")
        .join(&state.settings.suite);
    let indexes = apt::indexes(&debs)?;
    for index in &indexes {
        for by_hash in index.by_hash_paths() {
            write_atomic(&dists.join(by_hash), &index.bytes)?;
        }
    }
    for index in &indexes {
        write_atomic(&dists.join(&index.path), &index.bytes)?;
    }
    let meta = apt::ReleaseMeta {
        origin: state.settings.origin.clone(),
        label: state.settings.label.clone(),
        suite: state.settings.suite.clone(),
        date: options.date,
    };
    let mut release = apt::release(&meta, &indexes);
    let release_path = dists.join("Release");
    let old = fs::read_to_string(&release_path).unwrap_or_default();
    let unchanged = !old.is_empty() && apt::without_date(&old) == apt::without_date(&release);
    if unchanged {
        // Keep the published Date (and so the signatures) when nothing else changed.
        release = old;
    }
    let rel = |name: &str| format!("{}/dists/{}/{name}", apt::APT_DIR, state.settings.suite);
    let (inrelease, detached) = (dists.join("InRelease"), dists.join("Release.gpg"));
    match signer {
        Some(signer) => {
            let clear = signer.clearsign(&release)?;
            let sig = signer.detached_armored(release.as_bytes())?;
            write_atomic(&release_path, release.as_bytes())?;
            if write_atomic(&detached, sig.as_bytes())? {
                report.signed.push(rel("Release.gpg"));
            }
            if write_atomic(&inrelease, clear.as_bytes())? {
                report.signed.push(rel("InRelease"));
            }
        }
        None => {
            // An unsigned repository must not keep signatures of an older Release.
            for stale in [&inrelease, &detached] {
                if stale.exists() {
                    fs::remove_file(stale)
                        .with_context(|| format!("removing {}", stale.display()))?;
                }
            }
            write_atomic(&release_path, release.as_bytes())?;
        }
    }
    let mut components: Vec<&str> = state.deb.iter().map(|e| e.component.as_str()).collect();
    components.sort();
    components.dedup();
    client::write_client_files(
        dir,
        &state.settings.suite,
        state.settings.base_url.as_deref(),
        &components,
        signer,
    )
}

fn state_path(dir: &Path) -> PathBuf {
    dir.join(PRIVATE_DIR).join(STATE_FILE)
}

/// The repository's state with this run's settings applied (a new repository starts empty).
fn load_state(dir: &Path, options: &RepoOptions) -> Result<State> {
    let path = state_path(dir);
    let mut state = match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice::<State>(&bytes)
            .with_context(|| format!("{} is damaged: restore it from a backup", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if dir.join(apt::APT_DIR).exists() {
                bail!(
                    "{} holds an apt/ directory but no {}: it was not made by mm-pkg repo add",
                    dir.display(),
                    path.display()
                );
            }
            State {
                settings: Settings {
                    suite: DEFAULT_SUITE.into(),
                    origin: DEFAULT_ORIGIN.into(),
                    label: DEFAULT_LABEL.into(),
                    base_url: None,
                },
                deb: Vec::new(),
            }
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let s = &mut state.settings;
    if let Some(suite) = &options.suite {
        check_token("suite", suite, "-.")?;
        if suite != &s.suite && !state.deb.is_empty() {
            bail!(
                "the repository's suite is `{}`; one repository serves one suite (use another DIR)",
                s.suite
            );
        }
        s.suite = suite.clone();
    }
    for (value, field, name) in [
        (&options.origin, &mut s.origin, "--origin"),
        (&options.label, &mut s.label, "--label"),
    ] {
        if let Some(v) = value {
            if v.is_empty() || v.chars().any(char::is_control) {
                bail!("{name} must be one non-empty line");
            }
            *field = v.clone();
        }
    }
    if let Some(url) = &options.base_url {
        let ok = (url.starts_with("https://") || url.starts_with("http://"))
            && !url.chars().any(|c| c.is_whitespace() || c.is_control());
        if !ok {
            bail!("--base-url `{url}` must be an http:// or https:// URL without spaces");
        }
        s.base_url = Some(url.trim_end_matches('/').to_string());
    }
    Ok(state)
}

fn save_state(dir: &Path, state: &State) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(state)?;
    bytes.push(b'\n');
    write_atomic(&state_path(dir), &bytes)?;
    Ok(())
}
