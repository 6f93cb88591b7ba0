//! What a repository keeps between runs: `DIR/.mm-pkg/state.json` holds its settings and,
//! for each index, the segments its packages are kept in ([`super::segments`]), so that
//! adding one package reads only that file and about one segment.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::files::PRIVATE_DIR;
use super::package::{PackageInfo, check_token};
use super::segments::{Family, Format, Store, Stored, renderer_tag, update};
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

/// What the repository holds, so that adding a package does not re-read the others.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct State {
    pub(super) settings: Settings,
    /// [`renderer_tag`] of the run that rendered the segments' texts.
    pub(super) renderer: String,
    /// One per apt component and architecture, then the yum one; none without packages.
    pub(super) families: Vec<Family>,
    /// Pool files (relative to the repository) that this state no longer names and the run
    /// that wrote it removes after publishing; the next run removes any still there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) removing: Vec<String>,
}

/// Packages with their formats.
pub(super) type Packages = Vec<(Format, Stored)>;

/// The state as mm-pkg wrote it before segments: every package inline.
#[derive(Deserialize)]
struct Inline {
    settings: Settings,
    deb: Vec<Stored>,
    #[serde(default)]
    rpm: Vec<Stored>,
}

/// A state file of either kind.
#[derive(Deserialize)]
#[serde(untagged)]
enum AnyState {
    Segmented(State),
    Inline(Inline),
}

pub(super) fn state_path(dir: &Path) -> PathBuf {
    dir.join(PRIVATE_DIR).join(STATE_FILE)
}

/// The state file at `path`, whichever kind; `None` when there is none.
fn read_state(path: &Path) -> Result<Option<AnyState>> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice::<AnyState>(&bytes)
            .map(Some)
            .with_context(|| format!("{} is damaged: restore it from a backup", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// The repository's state with this run's settings applied (a new repository starts empty).
/// A state written before segments is moved into segments, and segments rendered by another
/// version are rendered again (the next publish writes them).
pub(super) fn load_state(dir: &Path, options: &RepoOptions, store: &mut Store) -> Result<State> {
    let path = state_path(dir);
    let tag = renderer_tag();
    let mut state = match read_state(&path)? {
        Some(AnyState::Segmented(mut state)) => {
            if state.renderer != tag {
                for family in &mut state.families {
                    update(store, family, Vec::new(), &BTreeSet::new(), true)?;
                }
                state.renderer = tag;
            }
            state
        }
        Some(AnyState::Inline(inline)) => {
            let mut state = State {
                settings: inline.settings,
                renderer: tag,
                families: Vec::new(),
                removing: Vec::new(),
            };
            let packages = inline.deb.into_iter().map(|p| (Format::Deb, p));
            let packages = packages.chain(inline.rpm.into_iter().map(|p| (Format::Rpm, p)));
            state.change(store, packages.collect(), Vec::new())?;
            state
        }
        None => {
            // Without a state, pool files and content-addressed indexes are what a first run
            // killed before its state landed left; a published Release or repomd.xml is not.
            if let Some(index) = published_index(dir) {
                bail!(
                    "{} holds {} but no {}: it was not made by mm-pkg repo add (or its \
                     .mm-pkg/ is lost: restore it from a backup)",
                    dir.display(),
                    index.display(),
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
                renderer: tag,
                families: Vec::new(),
                removing: Vec::new(),
            }
        }
    };
    let has_debs = state.families.iter().any(|f| f.format == Format::Deb);
    let s = &mut state.settings;
    if let Some(suite) = &options.suite {
        check_token("suite", suite, "-.")?;
        if suite != &s.suite && has_debs {
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

/// A `Release`, `InRelease` or `repomd.xml` in the repository at `dir`, if there is one.
fn published_index(dir: &Path) -> Option<PathBuf> {
    let repomd = dir.join(yum::YUM_DIR).join("repodata/repomd.xml");
    if repomd.exists() {
        return Some(repomd);
    }
    let dists = dir.join(apt::APT_DIR).join("dists");
    fs::read_dir(&dists).ok()?.flatten().find_map(|suite| {
        ["Release", "InRelease"]
            .into_iter()
            .map(|name| suite.path().join(name))
            .find(|path| path.exists())
    })
}

/// Every package of the repository at `dir` with its format, and its settings; `None` when
/// `dir` is no repository yet. Reads every segment and writes nothing, without the lock: a
/// `repo add` that replaces the state meanwhile (and removes the segments only the old one
/// named) makes it read the new state again.
pub(super) fn read_packages(dir: &Path) -> Result<Option<(Settings, Packages)>> {
    let path = state_path(dir);
    let mut tries = 0;
    loop {
        let (state, result) = match read_state(&path)? {
            None => return Ok(None),
            Some(AnyState::Inline(inline)) => {
                let debs = inline.deb.into_iter().map(|p| (Format::Deb, p));
                let rpms = inline.rpm.into_iter().map(|p| (Format::Rpm, p));
                return Ok(Some((inline.settings, debs.chain(rpms).collect())));
            }
            Some(AnyState::Segmented(state)) => {
                let result = state.packages(&mut Store::new(dir));
                (state, result)
            }
        };
        match result {
            Ok(packages) => return Ok(Some((state.settings, packages))),
            Err(e) => {
                let replaced = match read_state(&path) {
                    Ok(Some(AnyState::Segmented(now))) => now.families != state.families,
                    _ => false,
                };
                tries += 1;
                if !replaced || tries == 3 {
                    return Err(e);
                }
            }
        }
    }
}

impl State {
    /// The family `p` (of `format`) belongs to: (format, component, architecture).
    fn family_of(format: Format, p: &Stored) -> (Format, String, String) {
        match format {
            Format::Deb => (
                format,
                p.component.clone().unwrap_or_default(),
                p.info.arch.clone(),
            ),
            Format::Rpm => (format, String::new(), String::new()),
        }
    }

    /// Every package, read from every segment.
    pub(super) fn packages(&self, store: &mut Store) -> Result<Vec<(Format, Stored)>> {
        let mut out = Vec::new();
        for family in &self.families {
            for segment in &family.segments {
                let packages = store.packages(segment)?;
                out.extend(packages.into_iter().map(|p| (family.format, p)));
            }
        }
        Ok(out)
    }

    /// The first package of `format` named `name` for which `found` holds, reading only the
    /// segments that may hold that name.
    pub(super) fn find(
        &self,
        store: &mut Store,
        format: Format,
        name: &str,
        found: impl Fn(&Stored) -> bool,
    ) -> Result<Option<Stored>> {
        for family in self.families.iter().filter(|f| f.format == format) {
            for segment in family.segments.iter().filter(|s| s.may_hold(name)) {
                if let Some(p) = store.packages(segment)?.into_iter().find(&found) {
                    return Ok(Some(p));
                }
            }
        }
        Ok(None)
    }

    /// Adds `add` and removes `remove` (each with its format), making again only the
    /// segments that change; families left without packages go.
    pub(super) fn change(
        &mut self,
        store: &mut Store,
        add: Vec<(Format, Stored)>,
        remove: Vec<(Format, Stored)>,
    ) -> Result<()> {
        type Changes = (Vec<Stored>, BTreeSet<(String, String)>);
        let mut changes: BTreeMap<(Format, String, String), Changes> = BTreeMap::new();
        for (format, p) in add {
            let key = Self::family_of(format, &p);
            changes.entry(key).or_default().0.push(p);
        }
        for (format, p) in remove {
            let key = Self::family_of(format, &p);
            let entry = changes.entry(key).or_default();
            entry.1.insert((p.info.name, p.info.location));
        }
        for ((format, component, arch), (add, remove)) in changes {
            let at = self
                .families
                .iter()
                .position(|f| (f.format, &f.component, &f.arch) == (format, &component, &arch));
            let at = match at {
                Some(at) => at,
                None => {
                    self.families.push(Family {
                        format,
                        component,
                        arch,
                        segments: Vec::new(),
                    });
                    self.families.len() - 1
                }
            };
            update(store, &mut self.families[at], add, &remove, false)?;
        }
        self.families.retain(|f| !f.segments.is_empty());
        self.families.sort_by(|a, b| {
            (a.format, &a.component, &a.arch).cmp(&(b.format, &b.component, &b.arch))
        });
        Ok(())
    }

    /// The families of `format`.
    pub(super) fn of(&self, format: Format) -> impl Iterator<Item = &Family> {
        self.families.iter().filter(move |f| f.format == format)
    }
}

/// The state file's bytes for `state`.
pub(super) fn encode_state(state: &State) -> Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec(state)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// The packages to drop so that only the newest `keep` versions of each package and
/// architecture stay; records them in `report`.
pub(super) fn doomed(
    packages: Vec<(Format, Stored)>,
    keep: usize,
    report: &mut AddReport,
) -> Vec<(Format, Stored)> {
    let mut groups: BTreeMap<(Format, String, String), Vec<Stored>> = BTreeMap::new();
    for (format, p) in packages {
        groups
            .entry((format, p.info.name.clone(), p.info.arch.clone()))
            .or_default()
            .push(p);
    }
    let evr = |i: &PackageInfo| {
        let r = i.rpm.clone().unwrap_or_default();
        (r.epoch, r.ver, r.rel)
    };
    let mut out = Vec::new();
    for ((format, _, _), mut list) in groups {
        match format {
            Format::Deb => {
                list.sort_by(|a, b| version::cmp_deb(&b.info.version, &a.info.version));
            }
            Format::Rpm => list.sort_by(|a, b| {
                let (x, y) = (evr(&b.info), evr(&a.info));
                version::cmp_rpm((&x.0, &x.1, &x.2), (&y.0, &y.1, &y.2))
            }),
        }
        out.extend(list.into_iter().skip(keep).map(|p| (format, p)));
    }
    for (format, p) in &out {
        let location = format!("{}/{}", format.root(), p.info.location);
        report.pruned.push(Reported {
            file: PathBuf::from(&location),
            name: p.info.name.clone(),
            version: p.info.version.clone(),
            arch: p.info.arch.clone(),
            location,
            sha256: p.info.digests.sha256.clone(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::segments::sample_deb as deb;

    #[test]
    fn a_state_with_every_package_inline_moves_into_segments() {
        // The state file mm-pkg wrote before segments: settings and every package inline.
        let dir = tempfile::tempdir().unwrap();
        let debs: Vec<Stored> = (0..300).map(deb).collect();
        let inline = serde_json::json!({
            "settings": {"suite": "bookworm", "origin": "o", "label": "l", "base_url": null},
            "deb": debs,
            "rpm": [],
        });
        fs::create_dir_all(dir.path().join(PRIVATE_DIR)).unwrap();
        fs::write(state_path(dir.path()), serde_json::to_vec(&inline).unwrap()).unwrap();

        let mut store = Store::new(dir.path());
        let state = load_state(dir.path(), &RepoOptions::default(), &mut store).unwrap();
        assert_eq!(state.settings.suite, "bookworm");
        assert_eq!(state.renderer, renderer_tag());
        let families: Vec<_> = state.of(Format::Deb).collect();
        assert_eq!(families.len(), 1);
        assert!(families[0].segments.len() > 1);
        let back: Vec<String> = state
            .packages(&mut store)
            .unwrap()
            .into_iter()
            .map(|(_, p)| p.info.name)
            .collect();
        let names: Vec<String> = (0..300).map(|i| deb(i).info.name).collect();
        assert_eq!(back, names);
        // Read-only readers see the same packages before the first publish.
        let (_, inline_read) = read_packages(dir.path()).unwrap().unwrap();
        assert_eq!(inline_read.len(), 300);
    }
}
