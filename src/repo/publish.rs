//! Writing the indexes, their signatures and the client files from the state, in the order
//! that keeps the repository readable: the new segments, the state and the content-addressed
//! indexes first (one durable batch, the state renamed last), then the plain-named indexes and client files and, only once those are
//! durable, the signed `Release`/`InRelease`/`Release.gpg` and `repomd.xml`/`repomd.xml.asc`
//! by rename (a second batch, its signed files last), then older generations go.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};

use super::apt::IndexFile;
use super::chunks::{ChunkCache, ChunkedText};
use super::files::{self, Batch};
use super::segments::{Family, Format, Store};
use super::state::{State, encode_state, state_path};
use super::yum::RepoData;
use super::{AddReport, RepoOptions, apt, client, yum};
use crate::sign::Signer;

/// Saves `state` and rewrites every index, `Release`, `repomd.xml`, their signatures and the
/// client files from it.
pub(super) fn publish(
    dir: &Path,
    state: &State,
    store: &Store,
    options: &RepoOptions,
    report: &mut AddReport,
) -> Result<()> {
    let signer = options.signer.as_deref();
    report.unsigned = signer.is_none();
    let cache = ChunkCache::load(dir);
    let has_debs = state.of(Format::Deb).next().is_some();
    let rpms = state.of(Format::Rpm).next();
    // The apt indexes are made on another thread while the yum side is.
    let (indexes, data) = std::thread::scope(|scope| -> Result<_> {
        let apt = scope.spawn(|| {
            let texts = state
                .of(Format::Deb)
                .map(|f| {
                    let [text] = texts(store, f)?;
                    Ok((f.component.as_str(), f.arch.as_str(), text))
                })
                .collect::<Result<Vec<_>>>()?;
            apt::indexes(&texts, &cache)
        });
        let yum = match rpms {
            Some(f) => yum::repodata(f.count(), texts(store, f)?, &cache),
            None => Ok(Vec::new()),
        };
        let indexes = apt
            .join()
            .map_err(|_| anyhow::anyhow!("an index thread panicked"))?;
        Ok((indexes?, yum?))
    })?;
    let state_bytes = encode_state(state)?;
    let dists = dir
        .join(apt::APT_DIR)
        .join("dists")
        .join(&state.settings.suite);
    let yum_root = dir.join(yum::YUM_DIR);

    // 1. What no published file names yet: the state, indexes under their hashes.
    let mut batch = Batch::new(dir)?;
    store.stage(&mut batch)?;
    // The state names the segments: it goes into place once they are durable.
    batch.write_last(&state_path(dir), &state_bytes)?;
    for index in &indexes {
        let names = index.by_hash_paths().map(|p| dists.join(p));
        batch.write_linked(&names, &index.bytes)?;
    }
    for d in &data {
        batch.write(&yum_root.join(d.location()), &d.gz)?;
    }
    batch.commit()?;
    // A cache only: written without a sync (a crash costs the next run some compression).
    cache.save(dir)?;

    // 2. What clients read first, each replaced by rename.
    let mut batch = Batch::new(dir)?;
    if let Some(signer) = signer {
        batch.write(
            &dir.join(client::KEY_FILE),
            signer.public_armored()?.as_bytes(),
        )?;
    }
    let old_release = if !has_debs {
        None
    } else {
        Some(stage_apt(
            &mut batch, dir, &dists, state, &indexes, options, report,
        )?)
    };
    let old_repomd = if rpms.is_none() {
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
    // Each is another name of its by-hash file, in place since the batch before.
    for index in indexes {
        let [by_hash, _] = index.by_hash_paths();
        batch.link(&dists.join(by_hash), &dists.join(&index.path), &index.bytes)?;
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
        Some(signer)
            if unchanged && still_signed(signer, &release, &detached, Some(&inrelease)) => {}
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
    let mut components: Vec<&str> = state
        .of(Format::Deb)
        .map(|f| f.component.as_str())
        .collect();
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
        Some(signer) if unchanged && still_signed(signer, &repomd, &asc, None) => {}
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

/// The `N` index texts of `family` (one for apt, three for yum), each segment a chunk.
fn texts<const N: usize>(store: &Store, family: &Family) -> Result<[ChunkedText; N]> {
    let mut out = std::array::from_fn(|_| ChunkedText::new());
    for segment in &family.segments {
        let texts = store.texts(segment)?;
        anyhow::ensure!(
            texts.len() == N,
            "segment {} holds {} index texts, not {N}: restore .mm-pkg from a backup",
            segment.id,
            texts.len()
        );
        for (text, (bytes, sha256)) in out.iter_mut().zip(texts) {
            text.push_chunk(bytes, sha256);
        }
    }
    Ok(out)
}

fn remove_if_present(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// True when the detached signature at `detached` verifies `text` with `signer`'s key and,
/// for apt, the clearsigned `InRelease` at `clearsigned` signs the same text (so an unchanged
/// index keeps its signatures; a new key, or an `InRelease` an interrupted run left behind,
/// re-signs).
fn still_signed(signer: &Signer, text: &str, detached: &Path, clearsigned: Option<&Path>) -> bool {
    let Ok(sig) = fs::read(detached) else {
        return false;
    };
    let Some(verifier) = signer
        .public_binary()
        .ok()
        .and_then(|key| crate::sign::verify::Verifier::from_bytes(&key).ok())
    else {
        return false;
    };
    let clear_ok = clearsigned.is_none_or(|path| {
        fs::read_to_string(path)
            .ok()
            .and_then(|armored| verifier.cleartext(&armored).ok())
            .is_some_and(|signed| super::verify::norm(&signed) == super::verify::norm(text))
    });
    clear_ok && verifier.detached(&sig, text.as_bytes()).is_ok()
}
