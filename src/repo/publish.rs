//! Writing the indexes, their signatures and the client files from the state, in the order
//! that keeps the repository readable: content-addressed files first, then the signed
//! `Release`/`InRelease`/`Release.gpg` and `repomd.xml`/`repomd.xml.asc` by rename.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};

use super::files::{self, write_atomic};
use super::package::PackageInfo;
use super::state::State;
use super::{AddReport, RepoOptions, apt, client, yum};
use crate::sign::Signer;

/// Rewrites every index, `Release` and its signatures from `state`, and the client files.
pub(super) fn publish(
    dir: &Path,
    state: &State,
    options: &RepoOptions,
    report: &mut AddReport,
) -> Result<()> {
    let signer = options.signer.as_deref();
    report.unsigned = signer.is_none();
    if let Some(signer) = signer {
        write_atomic(
            &dir.join(client::KEY_FILE),
            signer.public_armored()?.as_bytes(),
        )?;
    }
    let debs: Vec<(String, PackageInfo)> = state
        .deb
        .iter()
        .map(|e| (e.component.clone(), e.info.clone()))
        .collect();
    // The apt indexes (xz dominates) are compressed while the yum side is written.
    let indexes = std::thread::scope(|scope| -> Result<_> {
        let apt = scope.spawn(|| apt::indexes(&debs));
        let yum = if state.rpm.is_empty() {
            Ok(())
        } else {
            publish_yum(dir, state, options, report)
        };
        let indexes = apt
            .join()
            .map_err(|_| anyhow::anyhow!("the apt index thread panicked"))?;
        yum?;
        indexes
    })?;
    if state.deb.is_empty() {
        return Ok(());
    }
    let dists = dir
        .join(apt::APT_DIR)
        .join("dists")
        .join(&state.settings.suite);
    for index in &indexes {
        for by_hash in index.by_hash_paths() {
            write_atomic(&dists.join(by_hash), &index.bytes)?;
        }
    }
    // The plain-named indexes are renamed together with Release, right before it.
    let plain: Vec<(std::path::PathBuf, &[u8])> = indexes
        .iter()
        .map(|i| (dists.join(&i.path), i.bytes.as_slice()))
        .collect();
    let mut batch: Vec<(&Path, &[u8])> = plain.iter().map(|(p, b)| (p.as_path(), *b)).collect();
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
            // Nothing changed and this key signed it: no new signature, no changed byte
            // (plain-named indexes restored if an interrupted run left them behind).
            files::write_all_atomic(&batch)?;
        }
        Some(signer) => {
            let clear = signer.clearsign(&release)?;
            let sig = signer.detached_armored(release.as_bytes())?;
            batch.extend([
                (release_path.as_path(), release.as_bytes()),
                (detached.as_path(), sig.as_bytes()),
                (inrelease.as_path(), clear.as_bytes()),
            ]);
            let written = files::write_all_atomic(&batch)?;
            let n = written.len();
            if written[n - 2] {
                report.signed.push(rel("Release.gpg"));
            }
            if written[n - 1] {
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
            batch.push((release_path.as_path(), release.as_bytes()));
            files::write_all_atomic(&batch)?;
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
            let written =
                files::write_all_atomic(&[(&path, repomd.as_bytes()), (&asc, sig.as_bytes())])?;
            if written[1] {
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
