//! Rendering the indexes from the records and writing them, their signatures, the client
//! files and the state, in the order that keeps the repository readable: the new records,
//! the cached chunks, the content-addressed indexes (by-hash, SHA-256-prefixed repodata) and
//! the state (renamed last: the commit point) in one durable batch; then the plain-named
//! indexes and client files and, only once those are durable, the signed
//! `Release`/`InRelease`/`Release.gpg` and `repomd.xml`/`repomd.xml.asc` by rename (a second
//! batch, its signed files last); then older generations, records the state no longer names
//! and unused cache files go. What changed is returned in the order an upload must copy it.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;
use serde::Serialize;

use super::cache::Cache;
use super::dir::RepoDir;
use super::files::{self, Batch};
use super::keys::Keys;
use super::record::{Format, Record, record_path, sha256_hex};
use super::release::{self, Second};
use super::state::{Published, STATE_FILE, State, is_generation_path};
use super::{AddReport, RepoOptions, apt, yum};

/// What a run changed in the published part of the repository, in the order an upload must
/// copy it so that no client ever reads an index naming a file not there yet.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Changes {
    /// 1. New pool files.
    pub pool: Vec<String>,
    /// 2. Indexes under names that never change content (`by-hash/`, `repodata/<sha256>-*`).
    pub indexes: Vec<String>,
    /// 3. Plain-named indexes and the client files (`mattermost.asc`, `.sources`, `.repo`).
    pub plain: Vec<String>,
    /// 4. `Release`, `Release.gpg`, `InRelease`, `repomd.xml`, `repomd.xml.asc`, last.
    pub signed: Vec<String>,
    /// 5. Files to remove once the rest is uploaded: pool files no index names any more,
    ///    index files of older generations.
    pub removed: Vec<String>,
}

impl Changes {
    /// The change list as text: one `STEP PATH` line per file, steps in upload order
    /// (`pool`, `indexes`, `plain`, `signed`, then `remove`).
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for (step, list) in [
            ("pool", &self.pool),
            ("indexes", &self.indexes),
            ("plain", &self.plain),
            ("signed", &self.signed),
            ("remove", &self.removed),
        ] {
            for path in list {
                out.push_str(step);
                out.push(' ');
                out.push_str(path);
                out.push('\n');
            }
        }
        out
    }
}

/// Everything a publish needs besides the repository.
pub struct Publish<'a> {
    /// The state to write (its packages and `removing` already set).
    pub state: State,
    /// Every package the new state holds.
    pub records: &'a [Record],
    /// Records to write (new, or changed: rpm copies signed again).
    pub write: &'a [Record],
    /// The keys of this run, and the fingerprints of those that signed last time.
    pub keys: &'a Keys,
    /// The keys the state named before this run.
    pub keys_before: &'a [String],
    /// Pool files written in this run.
    pub pool_written: Vec<String>,
}

/// Renders and writes every index, signature, client file and the state; returns what
/// changed.
pub fn publish(
    dir: &RepoDir,
    job: Publish,
    options: &RepoOptions,
    report: &mut AddReport,
) -> Result<Changes> {
    let Publish {
        mut state,
        records,
        write,
        keys,
        keys_before,
        pool_written,
    } = job;
    let signers = keys.refs();
    let cache = Cache::new(dir);
    let debs = families(records);
    let rpms = rpms(records);
    // The apt indexes are made on another thread while the yum side is.
    let (indexes, data) = std::thread::scope(|scope| -> Result<_> {
        let apt = scope.spawn(|| apt::indexes(&debs, &cache));
        let yum = match rpms.is_empty() {
            true => Ok(Vec::new()),
            false => yum::repodata(&rpms, &cache),
        };
        let indexes = apt
            .join()
            .map_err(|_| anyhow::anyhow!("an index thread panicked"))?;
        Ok((indexes?, yum?))
    })?;
    let dists = format!("{}/dists/{}", apt::APT_DIR, state.suite);
    let old = state.published.clone();

    // What clients read first, all computed before anything is written, so that the state
    // can record it.
    let same_keys = keys_before == keys.fingerprints.as_slice();
    let mut second = Second::new(dir, &state, &signers, same_keys, options)?;
    let old_release = match debs.is_empty() {
        true => None,
        false => Some(second.apt(&dists, &indexes)?),
    };
    let old_repomd = match rpms.is_empty() {
        true => None,
        false => Some(second.yum(&data)?),
    };
    let (release_date, repomd_date) = release::dates(&second);
    let second = second.files;

    // What this run publishes, for the next run to tell what it changes.
    let mut first: Vec<(Vec<String>, &[u8])> = Vec::new();
    for index in &indexes {
        let names = index.by_hash_paths().map(|p| format!("{dists}/{p}"));
        first.push((names.to_vec(), &index.bytes));
    }
    for d in &data {
        first.push((vec![format!("{}/{}", yum::YUM_DIR, d.location())], &d.gz));
    }
    let mut current: BTreeMap<String, String> = BTreeMap::new();
    for (names, bytes) in &first {
        for name in names {
            current.insert(name.clone(), sha256_hex(bytes));
        }
    }
    for f in &second {
        current.insert(f.path.clone(), sha256_hex(&f.bytes));
    }
    // A run that publishes what was published keeps the generation before, as it is.
    let (previous, doomed): (Vec<String>, Vec<String>) = if old.current == current {
        (old.previous.clone(), Vec::new())
    } else {
        let previous: Vec<String> = old
            .current
            .keys()
            .filter(|p| is_generation_path(p, &state.suite) && !current.contains_key(*p))
            .cloned()
            .collect();
        let doomed = old
            .previous
            .iter()
            .filter(|p| !current.contains_key(*p) && !previous.contains(p))
            .cloned()
            .collect();
        (previous, doomed)
    };
    state.published = Published {
        current,
        previous,
        release_date,
        repomd_date,
    };
    state.keys = keys.fingerprints.clone();
    // The records kept keep their hashes; new and changed ones are hashed as written.
    let held: BTreeSet<String> = records.iter().map(Record::pool_path).collect();
    state.packages.retain(|path, _| held.contains(path));

    // 1. What no published file names yet: records, cached chunks, indexes under their
    // hashes, and the state that names the records (last).
    let mut batch = Batch::new(dir)?;
    for record in write {
        let bytes = record.encode();
        let sha = sha256_hex(&bytes);
        batch.write(&record_path(&record.pool_path(), &sha), &bytes)?;
        state.packages.insert(record.pool_path(), sha);
    }
    cache.stage(&mut batch)?;
    for (names, bytes) in &first {
        batch.write_linked(names, bytes)?;
    }
    let existing = dir.read_private(STATE_FILE)?;
    batch.write_last(STATE_FILE, &state.encode(&signers, existing.as_deref())?)?;
    let written_first = batch.commit()?;

    // 2. What clients read first, each replaced by rename, the signed files last. The
    // plain-named indexes are other names of their by-hash files.
    let mut batch = Batch::new(dir)?;
    for f in &second {
        let index = indexes
            .iter()
            .find(|i| format!("{dists}/{}", i.path) == f.path);
        let wrote = match index {
            Some(index) => {
                let [by_hash, _] = index.by_hash_paths();
                batch.link(&format!("{dists}/{by_hash}"), &f.path, &f.bytes)?
            }
            None if f.signed => batch.write_last(&f.path, &f.bytes)?,
            None => batch.write(&f.path, &f.bytes)?,
        };
        let signature = ["InRelease", ".gpg", ".asc"]
            .iter()
            .any(|s| f.path.ends_with(s));
        if wrote && f.signed && signature {
            report.signed.push(f.path.clone());
        }
    }
    if signers.is_empty() {
        // An unsigned repository must not keep signatures of an older Release.
        for sig in [
            format!("{dists}/InRelease"),
            format!("{dists}/Release.gpg"),
            format!("{}/repodata/repomd.xml.asc", yum::YUM_DIR),
        ] {
            dir.remove_file(&sig)?;
        }
    }
    let written_second = batch.commit()?;

    // 3. Index files of older generations go (the previous one stays for clients
    // mid-update), and private files the state no longer names.
    let mut removed = Vec::new();
    for path in &doomed {
        if dir.remove_file(path)? || options.state_only {
            removed.push(path.clone());
        }
    }
    let text_of = |path: &str| {
        second
            .iter()
            .find(|f| f.path == path)
            .map(|f| String::from_utf8_lossy(&f.bytes).into_owned())
            .unwrap_or_default()
    };
    // What the generation before names stays too (a repeated run keeps it as it was).
    let previous = state.published.previous.join("\n");
    if let Some(old) = old_release {
        let release = text_of(&format!("{dists}/Release"));
        let keep = format!("{old}\n{release}\n{previous}");
        removed.extend(files::remove_unreferenced(dir, &dists, "by-hash", &keep)?);
    }
    if let Some(old) = old_repomd {
        let root = format!("{}/repodata", yum::YUM_DIR);
        let repomd = text_of(&format!("{root}/repomd.xml"));
        let keep = format!("{old}\n{repomd}\n{previous}");
        removed.extend(files::remove_unreferenced(dir, &root, "", &keep)?);
    }
    for path in super::state::unnamed_records(dir, &state)? {
        dir.remove_file(&path)?;
    }
    cache.remove_unused()?;

    // What changed, in upload order: files whose bytes the last publish had are not news.
    let unchanged = |p: &String| {
        old.current
            .get(p)
            .is_some_and(|sha| state.published.current.get(p) == Some(sha))
    };
    let mut changes = Changes {
        pool: pool_written,
        ..Changes::default()
    };
    for path in written_first.into_iter().chain(written_second) {
        if path.starts_with(".mm-pkg/") || unchanged(&path) {
            continue;
        }
        let list = if is_generation_path(&path, &state.suite) {
            &mut changes.indexes
        } else if second.iter().any(|f| f.path == path && f.signed) {
            &mut changes.signed
        } else {
            &mut changes.plain
        };
        list.push(path);
    }
    removed.sort();
    removed.dedup();
    changes.removed = removed;
    Ok(changes)
}

/// The apt families of `records`: (component, architecture, packages in index order).
pub fn families(records: &[Record]) -> Vec<(String, String, Vec<&Record>)> {
    let mut map: BTreeMap<(String, String), Vec<&Record>> = BTreeMap::new();
    for r in records.iter().filter(|r| r.format == Format::Deb) {
        let key = (
            r.component.clone().unwrap_or_default(),
            r.package.arch.clone(),
        );
        map.entry(key).or_default().push(r);
    }
    map.into_iter()
        .map(|((component, arch), mut list)| {
            list.sort_by(|a, b| a.key().cmp(&b.key()));
            (component, arch, list)
        })
        .collect()
}

/// The rpms of `records`, in index order.
pub fn rpms(records: &[Record]) -> Vec<&Record> {
    let mut rpms: Vec<&Record> = records.iter().filter(|r| r.format == Format::Rpm).collect();
    rpms.sort_by(|a, b| a.key().cmp(&b.key()));
    rpms
}
