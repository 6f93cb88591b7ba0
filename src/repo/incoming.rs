//! The package files given to `repo add`: each read once ([`super::deb`], [`super::rpm`]),
//! turned into a [`Record`] and checked as every record is, compared with what the repository
//! holds (already there, a clash, or new) before anything is written, then copied into the
//! pool (an rpm signed in its copy unless the repository's key signed it already).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::files::Batch;
use super::load::fd_path;
use super::package::{FileDigests, PackageInfo};
use super::record::{Format, Record};
use super::{AddReport, Reported, deb, rpm};
use crate::sign::Signer;

/// A new package file and what the repository will keep of it.
pub struct New {
    /// The file given.
    pub file: PathBuf,
    /// Its record (for an rpm: as read from the input; the copy's digests are filled in when
    /// it is written).
    pub record: Record,
}

/// Reads every file in `files` and decides, against `held`, which are new; fills the
/// report's `added` and `skipped`. Refuses, before anything is written, a file that is no
/// package, a package that fails the checks, and one whose name, version and architecture
/// the repository holds with other contents.
pub fn read_all(
    files: &[PathBuf],
    component: &str,
    held: &[Record],
    report: &mut AddReport,
) -> Result<Vec<New>> {
    let mut by_version: HashMap<(Format, &str, &str, &str), &Record> = HashMap::new();
    let mut by_location: HashMap<String, &Record> = HashMap::new();
    for r in held {
        let p = &r.package;
        by_version.insert((r.format, &p.name, &p.version, &p.arch), r);
        by_location.insert(r.pool_path(), r);
    }
    let mut new: Vec<New> = Vec::new();
    for file in files {
        let digests = FileDigests::of_file(file)?;
        let record = read(file, digests.clone(), component)
            .with_context(|| format!("{} is refused", file.display()))?;
        let p = &record.package;
        let same = |r: &Record| {
            r.format == record.format
                && r.package.name == p.name
                && r.package.version == p.version
                && r.package.arch == p.arch
        };
        let found = by_version
            .get(&(
                record.format,
                p.name.as_str(),
                p.version.as_str(),
                p.arch.as_str(),
            ))
            .copied()
            .or_else(|| new.iter().map(|n| &n.record).find(|r| same(r)));
        let reported = Reported {
            file: file.clone(),
            name: p.name.clone(),
            version: p.version.clone(),
            arch: p.arch.clone(),
            location: found.map_or_else(|| record.pool_path(), Record::pool_path),
            sha256: digests.sha256.clone(),
        };
        if let Some(found) = found {
            let known = [
                Some(&found.package.digests.sha256),
                found.input_sha256.as_ref(),
            ];
            if known.contains(&Some(&digests.sha256)) {
                report.skipped.push(reported);
                continue;
            }
            bail!(
                "{}: the repository already holds {} {} ({}) with other contents (SHA-256 {}); \
                 a published version never changes: raise --revision instead. Nothing was changed.",
                file.display(),
                p.name,
                p.version,
                p.arch,
                found
                    .input_sha256
                    .as_ref()
                    .unwrap_or(&found.package.digests.sha256)
            );
        }
        // apt names pool files without the epoch: 2.0-1 and 1:2.0-1 would share one file.
        let clash = by_location.get(&record.pool_path()).copied().or_else(|| {
            new.iter()
                .map(|n| &n.record)
                .find(|r| r.pool_path() == record.pool_path())
        });
        if let Some(other) = clash {
            bail!(
                "{}: {} {} would be stored as {}, the file of version {} the repository already \
                 holds; versions that differ only in their epoch cannot both be published. \
                 Nothing was changed.",
                file.display(),
                p.name,
                p.version,
                record.pool_path(),
                other.package.version
            );
        }
        report.added.push(reported);
        new.push(New {
            file: file.clone(),
            record,
        });
    }
    Ok(new)
}

/// The record of the package file `file` (digested as `digests`), checked.
fn read(file: &Path, digests: FileDigests, component: &str) -> Result<Record> {
    let record = match file.extension().and_then(|e| e.to_str()) {
        Some("deb") => Record {
            format: Format::Deb,
            component: Some(component.to_string()),
            input_sha256: None,
            package: deb::read(file, digests, component)?,
        },
        Some("rpm") => Record {
            format: Format::Rpm,
            component: None,
            input_sha256: Some(digests.sha256.clone()),
            package: PackageInfo::of_rpm(rpm::read(file)?, digests),
        },
        _ => bail!("only .deb and .rpm files can be added"),
    };
    record.check()?;
    Ok(record)
}

/// Stages in `pool` the repository's copy of each of `new`; rpm copies are signed by
/// `signer` unless it already signed them, and their records describe the copy. Returns the
/// records to publish; notes the signed rpms in `report`.
pub fn copy_all(
    pool: &mut Batch,
    new: Vec<New>,
    signer: Option<&Signer>,
    report: &mut AddReport,
) -> Result<Vec<Record>> {
    let mut out = Vec::with_capacity(new.len());
    for New { file, mut record } in new {
        let to = record.pool_path();
        match record.format {
            Format::Deb => {
                let copy = pool.copy(&file, &to)?;
                if FileDigests::of_file(&copy)? != record.package.digests {
                    bail!(
                        "{} changed while it was copied to {}: try again",
                        file.display(),
                        to
                    );
                }
            }
            Format::Rpm => {
                let (signed, package) = write_rpm_copy(pool, &file, &to, signer)?;
                if signed {
                    report.signed.push(to.clone());
                }
                record.package = package;
                record
                    .check()
                    .with_context(|| format!("{} is refused", file.display()))?;
            }
        }
        out.push(record);
    }
    Ok(out)
}

/// Stages in `batch` the repository's copy of the rpm `from` for `to` (signed by `signer`
/// unless it already is), dated by its build time so that its `time file` is reproducible.
/// Returns whether it signed and what the copy says (read once, from the copy that is
/// published).
pub fn write_rpm_copy(
    batch: &mut Batch,
    from: &Path,
    to: &str,
    signer: Option<&Signer>,
) -> Result<(bool, PackageInfo)> {
    let (mut out, tmp) = batch.create(to)?;
    let signed = rpm::copy_signed(from, &mut out, signer)?;
    let read = rpm::read(&tmp)?;
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(read.2.build_time);
    out.set_modified(time)
        .with_context(|| format!("dating {}", tmp.display()))?;
    let digests = FileDigests::of_file(&tmp)?;
    Ok((signed, PackageInfo::of_rpm(read, digests)))
}

/// Signs every rpm copy of `records` with `signer` (the new key, when a rotation finishes),
/// each read from the pool without following links; returns the records with their new
/// digests.
pub fn resign_rpms(
    dir: &super::dir::RepoDir,
    batch: &mut Batch,
    records: &mut [Record],
    signer: &Signer,
    report: &mut AddReport,
) -> Result<()> {
    for record in records.iter_mut().filter(|r| r.format == Format::Rpm) {
        let to = record.pool_path();
        let shown = dir.join(&to);
        let file = dir.open_owned_file(&to)?.with_context(|| {
            format!(
                "{} is missing: restore it to finish the rotation",
                shown.display()
            )
        })?;
        // The copy signed is the one the state vouches for, byte for byte: a file changed in
        // the pool would otherwise be signed with the new key.
        if FileDigests::of_reader(&file, &shown)? != record.package.digests {
            bail!(
                "{} is not the package the repository published (its digests differ from its \
                 record): it was changed in the pool. Restore it from a backup, then finish the \
                 rotation. Nothing was changed.",
                shown.display()
            );
        }
        let (signed, package) = write_rpm_copy(batch, &fd_path(&file), &to, Some(signer))?;
        if signed {
            report.signed.push(to.clone());
            record.package = package;
            record.check()?;
        }
    }
    Ok(())
}
