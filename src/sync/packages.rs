//! Building the missing packages of one release, exactly as `mm-pkg build` does: download and
//! verification through the cache, then the one-pass build, into a scratch directory that
//! only becomes part of the repository through `repo add`.

use std::path::Path;

use anyhow::Result;

use super::plan::Target;
use crate::build::{BuildOptions, build_checked};
use crate::output::BuiltPackage;
use crate::release::archive::version_missing;
use crate::release::catalog::Catalog;
use crate::release::download::{Checks, Downloader};
use crate::release::known::KnownTarballs;

/// What building one release gave.
#[derive(Debug, Clone)]
pub struct Built {
    /// The packages written.
    pub packages: Vec<BuiltPackage>,
    /// What verified the tarball: `catalog`, `sha256` (a pin), `signature`; empty when
    /// nothing did (`--allow-unsigned`, `--insecure-skip-verify`).
    pub verified_by: Vec<&'static str>,
}

/// Fetches `target`'s tarball with `downloader` under `checks` (plus the catalog's SHA-256,
/// when it lists one, and the target's pin, named by `pin_source`) and writes its missing
/// formats into `output` with `options` (whose formats and output are replaced), verifying
/// the bytes the build reads exactly as `mm-pkg build` does (and refusing a tarball known as
/// another release). Says on stderr, as `build` does, what verified the tarball, or loudly
/// that nothing did.
pub fn build_missing(
    target: &Target,
    downloader: &Downloader,
    catalog: &Catalog,
    checks: &Checks,
    pin_source: &str,
    options: &BuildOptions,
    output: &Path,
) -> Result<Built> {
    let mut checks = checks
        .clone()
        .with_catalog(target.resolved.sha256.as_deref());
    if let Some(pin) = &target.pin {
        checks = checks.with_pin(pin_source, pin);
    }
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
    let verified = report.verified.expect("a verifier was given");
    eprintln!(
        "mm-pkg: {}",
        verified.summary(&fetched.path.display().to_string(), checks.skip_verify)
    );
    if !report.version_in_server {
        eprintln!(
            "mm-pkg: WARNING: {} (pass --strict to refuse such a release)",
            version_missing(&target.release.version.to_string())
        );
    }
    Ok(Built {
        packages: report.packages,
        verified_by: checks.verified_by(&verified),
    })
}
