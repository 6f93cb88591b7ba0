//! Building the missing packages of one release, exactly as `mm-pkg build` does: download and
//! verification through the cache, then the one-pass build, into a scratch directory that
//! only becomes part of the repository through `repo add`.

use std::path::Path;

use anyhow::Result;

use super::plan::Target;
use crate::build::{BuildOptions, build_checked};
use crate::output::BuiltPackage;
use crate::release::catalog::Catalog;
use crate::release::download::{Checks, Downloader};
use crate::release::known::KnownTarballs;

/// Fetches `target`'s tarball with `downloader` under `checks` (plus the catalog's SHA-256,
/// when it lists one) and writes its missing formats into `output` with `options` (whose
/// formats and output are replaced), verifying the bytes the build reads exactly as
/// `mm-pkg build` does (and refusing a tarball known as another release).
pub fn build_missing(
    target: &Target,
    downloader: &Downloader,
    catalog: &Catalog,
    checks: &Checks,
    options: &BuildOptions,
    output: &Path,
) -> Result<Vec<BuiltPackage>> {
    let checks = checks
        .clone()
        .with_catalog(target.resolved.sha256.as_deref());
    let fetched = downloader.fetch(&target.release, &target.resolved.url, &checks)?;
    let options = BuildOptions {
        formats: target.missing.clone(),
        output: output.to_path_buf(),
        ..options.clone()
    };
    let known = KnownTarballs::load(catalog, &downloader.cache_dir)?;
    let report = build_checked(
        &target.release,
        &fetched.path,
        fetched.expect,
        known,
        downloader.trust,
        &downloader.cache_dir,
        &options,
    )?;
    Ok(report.packages)
}
