//! Writing the indexes, their signatures and the client files from the state, in the order
//! that keeps the repository readable: the state and the content-addressed indexes first (one
//! durable batch), then the plain-named indexes and client files and, only once those are
//! durable, the signed `Release`/`InRelease`/`Release.gpg` and `repomd.xml`/`repomd.xml.asc`
//! by rename (a second batch, its signed files last), then older generations go.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};

use super::apt::IndexFile;
use super::chunks::ChunkCache;
use super::files::{self, Batch};
use super::package::PackageInfo;
use super::state::{State, encode_state, state_path};
use super::yum::RepoData;
use super::{AddReport, RepoOptions, apt, client, yum};
use crate::sign::Signer;

/// Saves `state` and rewrites every index, `Release`, `repomd.xml`, their signatures and the
/// client files from it.
pub(super) fn publish(
    dir: &Path,
    state: &State,
    options: &RepoOptions,
    report: &mut AddReport,
) -> Result<()> {
    let signer = options.signer.as_deref();
    report.unsigned = signer.is_none();
    let cache = ChunkCache::load(dir);
    let debs: Vec<(&str, &PackageInfo)> = state
        .deb
        .iter()
        .map(|e| (e.component.as_str(), &e.info))
        .collect();
    let rpms: Vec<&PackageInfo> = state.rpm.iter().map(|e| &e.info).collect();
    // The apt indexes and the state file are made on other threads while the yum side is.
    let (indexes, data, state_bytes) = std::thread::scope(|scope| -> Result<_> {
        let apt = scope.spawn(|| apt::indexes(&debs, &cache));
        let encoded = scope.spawn(|| encode_state(state));
        let yum = yum::repodata(&rpms, &cache);
        let panicked = |_| anyhow::anyhow!("an index thread panicked");
        let indexes = apt.join().map_err(panicked)?;
        let encoded = encoded.join().map_err(panicked)?;
        Ok((indexes?, yum?, encoded?))
    })?;
    let dists = dir
        .join(apt::APT_DIR)
        .join("dists")
        .join(&state.settings.suite);
    let yum_root = dir.join(yum::YUM_DIR);

    // 1. What no published file names yet: the state, indexes under their hashes.
    let mut batch = Batch::new(dir)?;
    batch.write(&state_path(dir), &state_bytes)?;
    if !state.deb.is_empty() {
        for index in &indexes {
            for by_hash in index.by_hash_paths() {
                batch.write(&dists.join(by_hash), &index.bytes)?;
            }
        }
    }
    if !state.rpm.is_empty() {
        for d in &data {
            batch.write(&yum_root.join(d.location()), &d.gz)?;
        }
    }
    cache.save(&mut batch)?;
    batch.commit()?;

    // 2. What clients read first, each replaced by rename.
    let mut batch = Batch::new(dir)?;
    if let Some(signer) = signer {
        batch.write(
            &dir.join(client::KEY_FILE),
            signer.public_armored()?.as_bytes(),
        )?;
    }
    let old_release = if state.deb.is_empty() {
        None
    } else {
        Some(stage_apt(
            &mut batch, dir, &dists, state, &indexes, options, report,
        )?)
    };
    let old_repomd = if state.rpm.is_empty() {
        None
    } else {
        Some(stage_yum(&mut batch, dir, state, &data, options, report)?)
    };
    batch.commit()?;

    // 3. Index files of older generations go; the previous one stays for clients mid-update.
    if let Some(keep) = old_release {
        files::remove_unreferenced(&dists, "by-hash", &keep)?;
    }
    if let Some(keep) = old_repomd {
        files::remove_unreferenced(&yum_root.join("repodata"), "", &keep)?;
    }
    Ok(())
}

/// Stages the plain-named indexes, `Release` and its signatures, and `mattermost.sources`;
/// returns the previous and the new `Release` (what the by-hash files to keep are named in).
fn stage_apt(
    batch: &mut Batch,
    dir: &Path,
    dists: &Path,
    state: &State,
    indexes: &[IndexFile],
    options: &RepoOptions,
    report: &mut AddReport,
) -> Result<String> {
    let signer = options.signer.as_deref();
    // The plain-named indexes are renamed together with Release, right before it.
    for index in indexes {
        batch.write(&dists.join(&index.path), &index.bytes)?;
    }
    let meta = apt::ReleaseMeta {
        origin: state.settings.origin.clone(),
        label: state.settings.label.clone(),
        suite: state.settings.suite.clone(),
        date: options.date,
    };
    let mut release = apt::release(&meta, indexes);
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
        // Nothing changed and this key signed it: no new signature, no changed byte.
        Some(signer) if unchanged && still_signed(signer, &release, &detached, &inrelease) => {}
        Some(signer) => {
            let clear = signer.clearsign(&release)?;
            let sig = signer.detached_armored(release.as_bytes())?;
            batch.write_last(&release_path, release.as_bytes())?;
            if batch.write_last(&detached, sig.as_bytes())? {
                report.signed.push(rel("Release.gpg"));
            }
            if batch.write_last(&inrelease, clear.as_bytes())? {
                report.signed.push(rel("InRelease"));
            }
        }
        None => {
            // An unsigned repository must not keep signatures of an older Release.
            remove_if_present(&inrelease)?;
            remove_if_present(&detached)?;
            batch.write_last(&release_path, release.as_bytes())?;
        }
    }
    let mut components: Vec<&str> = state.deb.iter().map(|e| e.component.as_str()).collect();
    components.sort();
    components.dedup();
    client::write_client_files(
        batch,
        dir,
        &state.settings.suite,
        state.settings.base_url.as_deref(),
        &components,
        signer,
    )?;
    Ok(format!("{old}\n{release}"))
}

/// Stages `repomd.xml`, `repomd.xml.asc` and `mattermost.repo`; returns the previous and the
/// new `repomd.xml` (what the repodata files to keep are named in).
fn stage_yum(
    batch: &mut Batch,
    dir: &Path,
    state: &State,
    data: &[RepoData],
    options: &RepoOptions,
    report: &mut AddReport,
) -> Result<String> {
    let root = dir.join(yum::YUM_DIR);
    let mut repomd = yum::repomd(data, options.date);
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
            batch.write_last(&path, repomd.as_bytes())?;
            if batch.write_last(&asc, sig.as_bytes())? {
                report
                    .signed
                    .push(format!("{}/repodata/repomd.xml.asc", yum::YUM_DIR));
            }
        }
        None => {
            remove_if_present(&asc)?;
            batch.write_last(&path, repomd.as_bytes())?;
        }
    }
    client::write_yum_repo_file(
        batch,
        dir,
        state.settings.base_url.as_deref(),
        options.signer.is_some(),
    )?;
    Ok(format!("{old}\n{repomd}"))
}

fn remove_if_present(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
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
