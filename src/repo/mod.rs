//! `mm-pkg repo`: signed apt and yum repositories that real clients install from.
//!
//! [`add`] reads only the new package files ([`deb`] and [`rpm`] fill a [`PackageInfo`]),
//! keeps what the indexes need in a state file, and rewrites the indexes ([`apt`], [`yum`])
//! from that state, in an order that keeps the repository readable at every moment: pool
//! files first, then indexes under names that never change content (by-hash, SHA-256-prefixed
//! repodata), then `Release`, `Release.gpg`, `InRelease`, `repomd.xml` and `repomd.xml.asc`
//! replaced by rename, last. A lock serializes concurrent runs. `sync` calls
//! [`add`] as a library function.

pub mod apt;
pub mod client;
pub mod deb;
pub mod files;
pub mod held;
pub mod package;
pub mod rpm;
pub mod verify;
pub mod version;
pub mod yum;

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
    /// Keep only the newest N versions of each package and architecture (`--keep`).
    pub keep: Option<usize>,
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

/// A package in the yum repository.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RpmEntry {
    /// SHA-256 of the file that was added (the repository's copy may carry a new signature).
    input_sha256: String,
    info: PackageInfo,
}

/// What the repository holds, so that adding a package does not re-read the others.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    settings: Settings,
    deb: Vec<DebEntry>,
    #[serde(default)]
    rpm: Vec<RpmEntry>,
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
    let mut state = load_state(dir, options)?;

    // Read every new file and decide before anything is written.
    let mut report = AddReport::default();
    let mut new_debs: Vec<(PathBuf, DebEntry)> = Vec::new();
    let mut new_rpms: Vec<(PathBuf, String, String)> = Vec::new();
    for file in files {
        let digests = FileDigests::of_file(file)?;
        let (name, version, arch, location, present) =
            match file.extension().and_then(|e| e.to_str()) {
                Some("deb") => {
                    let info = deb::read(file, digests.clone(), component)?;
                    let same = |i: &PackageInfo| {
                        i.name == info.name && i.version == info.version && i.arch == info.arch
                    };
                    let present = state
                        .deb
                        .iter()
                        .chain(new_debs.iter().map(|(_, e)| e))
                        .find(|e| same(&e.info))
                        .map(|e| vec![e.info.digests.sha256.clone()]);
                    let out = (
                        info.name.clone(),
                        info.version.clone(),
                        info.arch.clone(),
                        format!("{}/{}", apt::APT_DIR, info.location),
                        present,
                    );
                    if out.4.is_none() {
                        new_debs.push((
                            file.clone(),
                            DebEntry {
                                component: component.to_string(),
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
                        .rpm
                        .iter()
                        .find(|e| e.info.location == location)
                        .map(|e| vec![e.input_sha256.clone(), e.info.digests.sha256.clone()])
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

    // 1. Pool files, under names that never change content.
    let apt_root = dir.join(apt::APT_DIR);
    for (file, entry) in &new_debs {
        let target = apt_root.join(&entry.info.location);
        copy_atomic(file, &target)?;
        if FileDigests::of_file(&target)? != entry.info.digests {
            bail!(
                "{} changed while it was copied to {}: try again",
                file.display(),
                target.display()
            );
        }
    }
    let yum_root = dir.join(yum::YUM_DIR);
    let signer = options.signer.as_deref();
    let mut rpm_entries = Vec::new();
    for (file, input_sha256, location) in new_rpms {
        let target = yum_root.join(&location);
        let signed = write_rpm_copy(&file, &target, signer)?;
        if signed {
            report.signed.push(format!("{}/{location}", yum::YUM_DIR));
        }
        let (name, arch, info) = rpm::read(&target)?;
        rpm_entries.push(RpmEntry {
            input_sha256,
            info: PackageInfo {
                name,
                version: format!("{}-{}", info.ver, info.rel),
                arch,
                location,
                digests: FileDigests::of_file(&target)?,
                control: Vec::new(),
                rpm: Some(info),
            },
        });
    }
    // 2. The state, so that an interrupted run is completed by the next one.
    state.deb.extend(new_debs.into_iter().map(|(_, e)| e));
    state.rpm.extend(rpm_entries);
    let pruned = match options.keep {
        Some(keep) => prune(&mut state, keep, &mut report),
        None => Vec::new(),
    };
    save_state(dir, &state)?;
    // 3. Indexes, Release and signatures; 4. the client files.
    publish(dir, &state, options, &mut report)?;
    // 5. Pool files no index names any more.
    for path in pruned {
        let path = dir.join(path);
        if path.exists() {
            fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    Ok(report)
}

/// Drops all but the newest `keep` versions of each package and architecture from `state`;
/// returns the pool files to remove once the indexes no longer name them.
fn prune(state: &mut State, keep: usize, report: &mut AddReport) -> Vec<PathBuf> {
    use std::collections::BTreeMap;
    let mut doomed: Vec<(String, PackageInfo)> = Vec::new();
    let mut debs: BTreeMap<(String, String), Vec<DebEntry>> = BTreeMap::new();
    for e in state.deb.drain(..) {
        debs.entry((e.info.name.clone(), e.info.arch.clone()))
            .or_default()
            .push(e);
    }
    for (_, mut list) in debs {
        list.sort_by(|a, b| version::cmp_deb(&b.info.version, &a.info.version));
        for (i, e) in list.into_iter().enumerate() {
            if i < keep {
                state.deb.push(e);
            } else {
                doomed.push((apt::APT_DIR.to_string(), e.info));
            }
        }
    }
    let mut rpms: BTreeMap<(String, String), Vec<RpmEntry>> = BTreeMap::new();
    for e in state.rpm.drain(..) {
        rpms.entry((e.info.name.clone(), e.info.arch.clone()))
            .or_default()
            .push(e);
    }
    let evr = |i: &PackageInfo| {
        let r = i.rpm.clone().unwrap_or_default();
        (r.epoch, r.ver, r.rel)
    };
    for (_, mut list) in rpms {
        list.sort_by(|a, b| {
            let (x, y) = (evr(&b.info), evr(&a.info));
            version::cmp_rpm((&x.0, &x.1, &x.2), (&y.0, &y.1, &y.2))
        });
        for (i, e) in list.into_iter().enumerate() {
            if i < keep {
                state.rpm.push(e);
            } else {
                doomed.push((yum::YUM_DIR.to_string(), e.info));
            }
        }
    }
    doomed
        .into_iter()
        .map(|(root, info)| {
            let location = format!("{root}/{}", info.location);
            report.pruned.push(Reported {
                file: PathBuf::from(&location),
                name: info.name,
                version: info.version,
                arch: info.arch,
                location: location.clone(),
                sha256: info.digests.sha256,
            });
            PathBuf::from(location)
        })
        .collect()
}

/// Writes the repository's copy of the rpm `from` at `to` (signed by `signer` unless it
/// already is), dated by its build time so that its `time file` is reproducible.
fn write_rpm_copy(from: &Path, to: &Path, signer: Option<&Signer>) -> Result<bool> {
    let dir = to.parent().context("an rpm path without a directory")?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = dir.join(format!(".rpm.tmp-{}", std::process::id()));
    let result = (|| {
        let mut out =
            fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let signed = rpm::copy_signed(from, &mut out, signer)?;
        out.sync_all()
            .with_context(|| format!("syncing {}", tmp.display()))?;
        drop(out);
        let (_, _, info) = rpm::read(&tmp)?;
        let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(info.build_time);
        fs::File::options()
            .write(true)
            .open(&tmp)
            .and_then(|f| f.set_modified(time))
            .with_context(|| format!("dating {}", tmp.display()))?;
        fs::rename(&tmp, to)
            .with_context(|| format!("renaming {} to {}", tmp.display(), to.display()))?;
        Ok(signed)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Rewrites every index, `Release` and its signatures from `state`, and the client files.
fn publish(dir: &Path, state: &State, options: &RepoOptions, report: &mut AddReport) -> Result<()> {
    let signer = options.signer.as_deref();
    report.unsigned = signer.is_none();
    if let Some(signer) = signer {
        write_atomic(
            &dir.join(client::KEY_FILE),
            signer.public_armored()?.as_bytes(),
        )?;
    }
    if !state.rpm.is_empty() {
        publish_yum(dir, state, options, report)?;
    }
    if state.deb.is_empty() {
        return Ok(());
    }
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
        release = old.clone();
    }
    let rel = |name: &str| format!("{}/dists/{}/{name}", apt::APT_DIR, state.settings.suite);
    let (inrelease, detached) = (dists.join("InRelease"), dists.join("Release.gpg"));
    match signer {
        Some(signer) if unchanged && still_signed(signer, &release, &detached, &inrelease) => {
            // Nothing changed and this key signed it: no new signature, no changed byte.
        }
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
    // Index files of older generations go; the previous one stays for clients mid-update.
    let keep = format!("{old}\n{release}");
    files::remove_unreferenced(&dists, "by-hash", &keep)?;
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

/// Writes repodata, then `repomd.xml` and `repomd.xml.asc`, and `mattermost.repo`.
fn publish_yum(
    dir: &Path,
    state: &State,
    options: &RepoOptions,
    report: &mut AddReport,
) -> Result<()> {
    let root = dir.join(yum::YUM_DIR);
    let packages: Vec<&PackageInfo> = state.rpm.iter().map(|e| &e.info).collect();
    let data = yum::repodata(&packages)?;
    for d in &data {
        write_atomic(&root.join(d.location()), &d.gz)?;
    }
    let mut repomd = yum::repomd(&data, options.date);
    let path = root.join("repodata/repomd.xml");
    let old = fs::read_to_string(&path).unwrap_or_default();
    if !old.is_empty() && yum::without_dates(&old) == yum::without_dates(&repomd) {
        repomd = old.clone();
    }
    let asc = root.join("repodata/repomd.xml.asc");
    let unchanged = repomd == old;
    match options.signer.as_deref() {
        Some(signer) if unchanged && still_signed(signer, &repomd, &asc, &asc) => {}
        Some(signer) => {
            let sig = signer.detached_armored(repomd.as_bytes())?;
            write_atomic(&path, repomd.as_bytes())?;
            if write_atomic(&asc, sig.as_bytes())? {
                report
                    .signed
                    .push(format!("{}/repodata/repomd.xml.asc", yum::YUM_DIR));
            }
        }
        None => {
            if asc.exists() {
                fs::remove_file(&asc).with_context(|| format!("removing {}", asc.display()))?;
            }
            write_atomic(&path, repomd.as_bytes())?;
        }
    }
    files::remove_unreferenced(&root.join("repodata"), "", &format!("{old}\n{repomd}"))?;
    client::write_yum_repo_file(
        dir,
        state.settings.base_url.as_deref(),
        options.signer.is_some(),
    )
}

/// True when the detached signature at `detached` verifies `text` with `signer`'s key and
/// `clearsigned` exists (so an unchanged index keeps its signatures; a new key re-signs).
fn still_signed(signer: &Signer, text: &str, detached: &Path, clearsigned: &Path) -> bool {
    let (Ok(sig), true) = (fs::read(detached), clearsigned.exists()) else {
        return false;
    };
    signer
        .public_binary()
        .ok()
        .and_then(|key| crate::sign::verify::Verifier::from_bytes(&key).ok())
        .is_some_and(|v| v.detached(&sig, text.as_bytes()).is_ok())
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
                rpm: Vec::new(),
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
    // Sorted, so that the same packages give the same state whatever the order they came in.
    let mut state = state.clone();
    state
        .deb
        .sort_by(|a, b| a.info.location.cmp(&b.info.location));
    state
        .rpm
        .sort_by(|a, b| a.info.location.cmp(&b.info.location));
    let state = &state;
    let mut bytes = serde_json::to_vec_pretty(state)?;
    bytes.push(b'\n');
    write_atomic(&state_path(dir), &bytes)?;
    Ok(())
}
