//! What a repository keeps between runs (`DIR/.mm-pkg/state.json`): its settings and, for
//! every package, what the indexes need, so that adding one package reads only that file.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::files::PRIVATE_DIR;
use super::package::{PackageInfo, check_token};
use super::{AddReport, RepoOptions, Reported, apt, version, yum};
use super::{DEFAULT_LABEL, DEFAULT_ORIGIN, DEFAULT_SUITE};

/// The state file under [`PRIVATE_DIR`].
const STATE_FILE: &str = "state.json";

/// Settings a repository keeps between runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Settings {
    pub(super) suite: String,
    pub(super) origin: String,
    pub(super) label: String,
    pub(super) base_url: Option<String>,
}

/// A package in the apt repository.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct DebEntry {
    pub(super) component: String,
    pub(super) info: PackageInfo,
}

/// A package in the yum repository.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct RpmEntry {
    /// SHA-256 of the file that was added (the repository's copy may carry a new signature).
    pub(super) input_sha256: String,
    pub(super) info: PackageInfo,
}

/// What the repository holds, so that adding a package does not re-read the others.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct State {
    pub(super) settings: Settings,
    pub(super) deb: Vec<DebEntry>,
    #[serde(default)]
    pub(super) rpm: Vec<RpmEntry>,
}

pub(super) fn state_path(dir: &Path) -> PathBuf {
    dir.join(PRIVATE_DIR).join(STATE_FILE)
}

/// The repository's state with this run's settings applied (a new repository starts empty).
pub(super) fn load_state(dir: &Path, options: &RepoOptions) -> Result<State> {
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

/// The state file's bytes for `state`.
pub(super) fn encode_state(state: &State) -> Result<Vec<u8>> {
    // Sorted, so that the same packages give the same state whatever the order they came in
    // (borrowed: the same JSON as `State`, without copying every entry).
    #[derive(Serialize)]
    struct Sorted<'a> {
        settings: &'a Settings,
        deb: Vec<&'a DebEntry>,
        rpm: Vec<&'a RpmEntry>,
    }
    let mut sorted = Sorted {
        settings: &state.settings,
        deb: state.deb.iter().collect(),
        rpm: state.rpm.iter().collect(),
    };
    sorted
        .deb
        .sort_by(|a, b| a.info.location.cmp(&b.info.location));
    sorted
        .rpm
        .sort_by(|a, b| a.info.location.cmp(&b.info.location));
    let mut bytes = serde_json::to_vec(&sorted)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Drops all but the newest `keep` versions of each package and architecture from `state`;
/// returns the pool files to remove once the indexes no longer name them.
pub(super) fn prune(state: &mut State, keep: usize, report: &mut AddReport) -> Vec<PathBuf> {
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
