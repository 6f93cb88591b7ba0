//! `mm-pkg sync`: keep a repository current with upstream.
//!
//! Reads like [`crate::build`]: resolve and plan ([`plan`]), build what is missing
//! ([`packages`], the normal one-pass build through the download cache), publish it with
//! [`crate::repo::add`] (the same code as `repo add`: one add, one signing of the indexes),
//! and tell the team ([`crate::notify`]). A release that fails is reported and skipped; it
//! never reaches the repository.

pub mod packages;
pub mod plan;
pub mod report;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::build::BuildOptions;
use crate::context::Format;
use crate::notify::{self, Notify, Webhook};
use crate::release::download::{Checks, Downloader};
use crate::release::pins::Pins;
use crate::release::resolve::Discovery;
use crate::release::{Arch, Edition};
use crate::repo::held::{Holdings, holdings};
use crate::repo::{self, RepoOptions};
use plan::{Plan, Planned, Target, Wanted};
use report::{Entry, Report, RepositoryChange};

/// What to keep current, and how.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// The repository directory.
    pub dir: PathBuf,
    /// Version specs (`esr`, `latest`, `9.11`, `10.x`, ...).
    pub specs: Vec<String>,
    /// Editions to publish.
    pub editions: Vec<Edition>,
    /// Architectures to publish.
    pub arches: Vec<Arch>,
    /// Formats to publish.
    pub formats: Vec<Format>,
    /// Download server.
    pub mirror: String,
    /// Verification of each download (the catalog's SHA-256 and a pin are added per release).
    pub checks: Checks,
    /// SHA-256 pins by tarball name (`--sha256sums FILE`).
    pub pins: Pins,
    /// How each package is built (`formats` and `output` are set per release).
    pub build: BuildOptions,
    /// How the repository is updated (`--sign-key`, `--keep`, ...).
    pub repo: RepoOptions,
    /// When the team hears about the run.
    pub notify: Notify,
}

impl SyncOptions {
    fn wanted(&self) -> Wanted<'_> {
        Wanted {
            specs: &self.specs,
            editions: &self.editions,
            arches: &self.arches,
            formats: &self.formats,
            mirror: &self.mirror,
            revision: &self.build.revision,
            pins: &self.pins,
        }
    }
}

/// Resolves every spec and compares with the repository: what a sync would build.
pub fn plan(discovery: &Discovery, options: &SyncOptions) -> Result<Plan> {
    checked_plan(discovery, options, &holdings(&options.dir)?)
}

/// The plan, refused when `--keep` would prune a release the specs ask for (each run would
/// build it again).
fn checked_plan(discovery: &Discovery, options: &SyncOptions, held: &Holdings) -> Result<Plan> {
    let plan = plan::plan(discovery, &options.wanted(), &held.packages)?;
    if let Some(keep) = options.repo.keep {
        let doomed = plan::pruned_by_keep(&plan, &options.wanted(), &held.packages, keep);
        if !doomed.is_empty() {
            bail!(
                "--keep {keep} would remove {} right after publishing (newer versions of the same \
                 package are kept instead), and every sync would build it again: raise --keep or \
                 drop the spec that selects it. Nothing was built.",
                doomed.join(", ")
            );
        }
    }
    Ok(plan)
}

/// Builds what the repository lacks, publishes it, prunes, signs once and tells the team.
/// Failed releases are in the report; the caller decides the exit code.
pub fn sync(
    discovery: &Discovery,
    downloader: &Downloader,
    options: &SyncOptions,
    webhook: Option<&Webhook>,
) -> Result<Report> {
    // 1. Resolve and 2. plan.
    let held = holdings(&options.dir)?;
    // A signed repository stays signed by its key: a run without it (or with another one)
    // stops before anything is downloaded or built, as `repo add` would refuse it after.
    repo::check_keys(&options.dir, &options.repo)?;
    if options.repo.signer.is_none() {
        eprintln!(
            "mm-pkg: WARNING: no --sign-key (or MM_PKG_SIGN_KEY): the repository is UNSIGNED; \
             clients must mark it trusted=yes"
        );
    }
    let plan = checked_plan(discovery, options, &held)?;
    let mut report = Report {
        present: plan.present.iter().map(|t| Entry::of(t, &t.held)).collect(),
        failed: plan.unresolved.iter().map(Entry::unresolved).collect(),
        repository: RepositoryChange {
            dir: options.dir.clone(),
            suite: held.suite.clone(),
            ..RepositoryChange::default()
        },
        ..Report::default()
    };

    // 3. Build each missing release on its own; a failure skips only that one.
    let work = tempfile::Builder::new()
        .prefix("mm-pkg-sync-")
        .tempdir()
        .context("creating a scratch directory for the builds (set TMPDIR to move it)")?;
    let mut built: Vec<(&Target, Vec<&'static str>)> = Vec::new();
    let mut files = Vec::new();
    for (i, target) in plan.missing.iter().enumerate() {
        progress(i + 1, plan.missing.len(), target);
        let output = work.path().join(i.to_string());
        let result = packages::build_missing(
            target,
            downloader,
            discovery.catalog,
            &options.checks,
            &options.pins.source,
            &options.build,
            &output,
        );
        match result {
            Ok(done) => {
                files.extend(done.packages.into_iter().map(|p| p.path));
                built.push((target, done.verified_by));
            }
            // Said once, in the report (and the message to the team).
            Err(err) => report
                .failed
                .push(Entry::failed(target, format!("{err:#}"))),
        }
    }

    // 4. Publish in one `repo add`: pool files, indexes, one signing, prune. A repository
    //    left incomplete by a killed run is completed even when nothing is new.
    if !files.is_empty() || !held.packages.is_empty() {
        match repo::add(&options.dir, &files, &options.repo) {
            Ok(added) => {
                let now = holdings(&options.dir)?;
                report.repository =
                    RepositoryChange::from_add(options.dir.clone(), now.suite.clone(), &added);
                for (target, verified_by) in built {
                    let (_, files) =
                        plan::compare(&target.release, &options.wanted(), &now.packages);
                    report
                        .built
                        .push(Entry::of(target, &files).verified(&verified_by));
                }
            }
            Err(err) => {
                let reason = format!("publishing to {} failed: {err:#}", options.dir.display());
                for (target, _) in built {
                    report.failed.push(Entry::failed(target, reason.clone()));
                }
            }
        }
    }
    drop(work);

    // 5. Tell the team.
    report.notification = Some(notify::tell(&report.summary(), options.notify, webhook));
    Ok(report)
}

/// After CI built the releases of a plan (`sync --plan --json`) in separate jobs and one
/// `repo add` published them: which of `planned` the repository at `dir` now holds (built)
/// and which it lacks (failed: its build job produced nothing), told to the team as `sync`
/// tells it.
pub fn settle(
    dir: &Path,
    planned: &[Planned],
    policy: Notify,
    webhook: Option<&Webhook>,
) -> Result<Report> {
    let held = holdings(dir)?;
    let mut report = Report {
        repository: RepositoryChange {
            dir: dir.to_path_buf(),
            suite: held.suite.clone(),
            ..RepositoryChange::default()
        },
        ..Report::default()
    };
    for p in planned {
        let (release, formats) = p.release()?;
        let wanted = Wanted {
            specs: &[],
            editions: &[],
            arches: &[],
            formats: &formats,
            mirror: "",
            revision: &p.revision,
            pins: &Pins::default(),
        };
        let (missing, files) = plan::compare(&release, &wanted, &held.packages);
        let mut entry = Entry::new(&p.version, &release, &files);
        if !missing.is_empty() {
            let missing: Vec<&str> = missing.iter().map(|f| f.as_str()).collect();
            entry.formats = missing.iter().map(|f| f.to_string()).collect();
            entry.reason = Some(format!(
                "the repository has no {} package of it: its build job failed or its artifact \
                 was not added",
                missing.join(" or ")
            ));
            report.failed.push(entry);
        } else {
            report.built.push(entry);
        }
    }
    report.notification = Some(notify::tell(&report.summary(), policy, webhook));
    Ok(report)
}

/// One line per release: a counter on a terminal, plain otherwise.
fn progress(n: usize, of: usize, target: &Target) {
    let formats: Vec<&str> = target.missing.iter().map(|f| f.as_str()).collect();
    if std::io::stderr().is_terminal() {
        eprintln!(
            "mm-pkg: [{n}/{of}] building {}: {}",
            target.release,
            formats.join(", ")
        );
    } else {
        eprintln!(
            "mm-pkg: building {}: {}",
            target.release,
            formats.join(", ")
        );
    }
}
