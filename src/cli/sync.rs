//! `mm-pkg sync` (keep a repository current with upstream) and `mm-pkg notify` (tell the team
//! what a CI-split sync published).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;

use mm_pkg::release::download::{Checks, Downloader};
use mm_pkg::release::pins::Pins;
use mm_pkg::release::resolve::NetMode;
use mm_pkg::release::spec::ACCEPTED_FORMS;
use mm_pkg::release::verify::Trust;
use mm_pkg::repo::RepoOptions;
use mm_pkg::sync::{self, SyncOptions};

use super::build::{PackagingArgs, formats};
use super::failure::{Kind, tag};
use super::repo::KeyArgs;
use super::source::{NetArgs, Sources, TrustArgs};
use super::webhook::NotifyArgs;
use super::{source_date_env, source_date_epoch};

/// `mm-pkg notify`.
#[derive(Args)]
pub struct NotifyCommandArgs {
    /// Repository directory, after `repo add`.
    #[arg(long)]
    repo: PathBuf,
    /// The plan printed by `mm-pkg sync --plan --json`.
    #[arg(long)]
    plan: PathBuf,
    /// Print one JSON object: built, failed, repository, notification.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    notify: NotifyArgs,
}

/// `mm-pkg sync`.
#[derive(Args)]
pub struct SyncArgs {
    /// Repository directory (created if needed), as for `repo add`.
    #[arg(long)]
    repo: PathBuf,
    #[arg(long = "spec", required = true, help = format!("Version spec to follow, repeatable: {ACCEPTED_FORMS}"))]
    specs: Vec<String>,
    /// Server editions, comma-separated.
    #[arg(long, default_value = "enterprise", value_delimiter = ',', value_parser = ["enterprise", "team"])]
    edition: Vec<String>,
    /// Architectures, comma-separated (`x86_64` and `aarch64` name the same).
    #[arg(long, default_value = "amd64", value_delimiter = ',', value_parser = super::arch())]
    arch: Vec<String>,
    /// Package formats, comma-separated.
    #[arg(long, default_value = "deb,rpm", value_delimiter = ',', value_parser = ["deb", "rpm"])]
    format: Vec<String>,
    #[command(flatten)]
    pub net: NetArgs,
    #[command(flatten)]
    pub trust: TrustArgs,
    /// SHA-256 pins, as `sha256sum` writes them (`HEX  mattermost-9.11.19-linux-amd64.tar.gz`):
    /// a release whose upstream tarball name is listed must have that SHA-256, which verifies
    /// it as `build --sha256` does (no signature needed).
    #[arg(long, value_name = "FILE")]
    sha256sums: Option<PathBuf>,
    #[command(flatten)]
    pub packaging: PackagingArgs,
    #[command(flatten)]
    keys: KeyArgs,
    /// apt suite and codename of a new repository [default: the repository's, else stable].
    #[arg(long)]
    suite: Option<String>,
    /// Public URL of the repository, written into mattermost.sources and mattermost.repo.
    #[arg(long)]
    base_url: Option<String>,
    /// Keep only the newest N versions of each package and architecture [default: all].
    #[arg(long)]
    keep: Option<usize>,
    /// Build nothing: print what is missing (with --json: a GitHub Actions matrix,
    /// `{"include": [...]}`, each entry with its exact `mm-pkg build` arguments).
    #[arg(long)]
    plan: bool,
    /// Print one JSON object: built, present, failed, repository, notification.
    #[arg(long)]
    json: bool,
    /// TOML file of flags by long name (`repo = "/srv/repo"`, `spec = ["esr", "latest"]`;
    /// keys for sync alone in a [sync] table); flags given on the command line win, unknown
    /// keys are an error.
    #[arg(long, env = "MM_PKG_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    notify: NotifyArgs,
}

/// `mm-pkg sync`: builds what the repository lacks and publishes it.
pub fn run_sync(args: SyncArgs) -> Result<()> {
    let date = source_date_epoch()?;
    // The key and the webhook are checked before anything is downloaded or written.
    let keys = args.keys.options(date)?;
    let (webhook, policy) = args.notify.webhook()?;
    // Editions and architectures come from the sync's own lists.
    let sources = Sources::with("enterprise", "amd64", &args.net)?;
    let unique = |list: &[String]| -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for item in list {
            if !out.contains(item) {
                out.push(item.clone());
            }
        }
        out
    };
    let options = SyncOptions {
        dir: args.repo.clone(),
        specs: unique(&args.specs),
        editions: unique(&args.edition)
            .iter()
            .map(|e| e.parse())
            .collect::<Result<_>>()?,
        arches: unique(&args.arch)
            .iter()
            .map(|a| a.parse())
            .collect::<Result<_>>()?,
        formats: formats(&args.format)?,
        pins: match &args.sha256sums {
            Some(path) => Pins::read(path).map_err(tag(Kind::Usage))?,
            None => Pins::default(),
        },
        mirror: args.net.mirror.clone(),
        checks: Checks {
            sha256: Vec::new(),
            allow_unsigned: args.trust.allow_unsigned,
            skip_verify: args.trust.insecure_skip_verify,
        },
        // rpms are signed in the repository's copy, as `repo add` signs CI-built ones.
        build: args
            .packaging
            .options(Vec::new(), PathBuf::new(), source_date_env()?, None)?,
        repo: RepoOptions {
            suite: args.suite.clone(),
            base_url: args.base_url.clone(),
            keep: args.keep,
            ..keys
        },
        notify: policy,
    };
    super::repo::warn_plain_http(options.repo.base_url.as_deref());
    if args.trust.insecure_skip_verify {
        eprintln!(
            "mm-pkg: WARNING: --insecure-skip-verify: NOT checking the SHA-256 or the OpenPGP \
             signature of any release; these packages may contain anything"
        );
    }

    if args.plan {
        let plan = sync::plan(&sources.discovery(), &options)?;
        if args.json {
            let matrix = sync::plan::matrix(
                &plan,
                &args.packaging.revision,
                &planned_build_flags(&args, &options.build.maintainer),
            );
            println!("{}", serde_json::to_string_pretty(&matrix)?);
        } else {
            for t in &plan.present {
                println!("present {}", t.release);
            }
            for t in &plan.missing {
                let formats: Vec<&str> = t.missing.iter().map(|f| f.as_str()).collect();
                println!("missing {}: {}", t.release, formats.join(","));
            }
        }
        for u in &plan.unresolved {
            eprintln!(
                "mm-pkg: `{}` ({}, {}) resolves to nothing: {}",
                u.spec, u.edition, u.arch, u.reason
            );
        }
        if !plan.unresolved.is_empty() {
            bail!("{} spec(s) did not resolve", plan.unresolved.len());
        }
        return Ok(());
    }

    let trust = Trust::new(&args.trust.keyring)?;
    let downloader = Downloader {
        http: &sources.http,
        cache_dir: sources.cache_dir.clone(),
        offline: sources.mode == NetMode::Offline,
        trust: &trust,
    };
    let report = sync::sync(
        &sources.discovery(),
        &downloader,
        &options,
        webhook.as_ref(),
    )?;
    print_sync_report(&report, args.json)
}

/// `mm-pkg notify`.
pub fn run_notify(args: NotifyCommandArgs) -> Result<()> {
    let (webhook, policy) = args.notify.webhook()?;
    let json = std::fs::read(&args.plan)
        .with_context(|| format!("reading the plan {}", args.plan.display()))?;
    let planned = sync::plan::read_matrix(&json)
        .with_context(|| format!("reading the plan {}", args.plan.display()))?;
    let report = sync::settle(&args.repo, &planned, policy, webhook.as_ref())?;
    print_sync_report(&report, args.json)
}

/// Prints a sync report (JSON or one line per release); an error when a release failed.
fn print_sync_report(report: &sync::report::Report, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        for line in report.lines() {
            println!("{line}");
        }
    }
    if !report.failed.is_empty() {
        let titles: Vec<String> = report.failed.iter().map(|e| e.title()).collect();
        bail!(
            "{} release(s) failed and were not published: {}",
            report.failed.len(),
            titles.join("; ")
        );
    }
    Ok(())
}

/// The flags of this `sync` that each planned `mm-pkg build` needs to build the same bytes
/// from the same place with the same checks (`maintainer` as this run resolved it).
fn planned_build_flags(args: &SyncArgs, maintainer: &str) -> Vec<String> {
    let (trust, packaging) = (&args.trust, &args.packaging);
    let mut flags = vec![
        "--mirror".to_string(),
        args.net.mirror.clone(),
        "--revision".into(),
        packaging.revision.clone(),
        "--maintainer".into(),
        maintainer.to_string(),
    ];
    for k in &trust.keyring {
        flags.extend(["--keyring".into(), k.display().to_string()]);
    }
    if let Some(c) = &packaging.compression {
        flags.extend(["--compression".into(), c.clone()]);
    }
    if let Some(t) = &packaging.templates {
        flags.extend(["--templates".into(), t.display().to_string()]);
    }
    if trust.allow_unsigned {
        flags.push("--allow-unsigned".into());
    }
    if trust.insecure_skip_verify {
        flags.push("--insecure-skip-verify".into());
    }
    // `--flag=value`: a value that starts with `-` stays a value.
    if !packaging.vendor.is_empty() {
        flags.push(format!("--vendor={}", packaging.vendor));
    }
    if packaging.strict {
        flags.push("--strict".into());
    }
    for (flag, values) in [
        ("--depends", &packaging.depends),
        ("--recommends", &packaging.recommends),
        ("--suggests", &packaging.suggests),
    ] {
        for value in values {
            flags.push(format!("{flag}={value}"));
        }
    }
    if packaging.distribution != "unstable" {
        flags.push(format!("--distribution={}", packaging.distribution));
    }
    flags
}
