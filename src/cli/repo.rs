//! `mm-pkg repo` (add packages to a signed apt and yum repository, verify one) and
//! `mm-pkg key generate` (a key to sign them with).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};

use mm_pkg::repo::{self, RepoOptions};
use mm_pkg::sign::Signer;
use mm_pkg::sign::generate::generate;

use super::failure::{Kind, tag};
use super::source_date_epoch;

/// `mm-pkg repo`.
#[derive(Subcommand)]
pub enum RepoCommand {
    /// Add .deb and .rpm files to the repository in DIR (created if needed), then rewrite its
    /// indexes and signatures (apt: Release, InRelease, Release.gpg; yum: repodata, repomd.xml,
    /// repomd.xml.asc) and mattermost.asc, mattermost.sources, mattermost.repo.
    Add(RepoAddArgs),
    /// Check every signature, every hash Release and repomd.xml name, and every package file
    /// against its index; exit code 1 and a list of what is wrong.
    Verify(RepoVerifyArgs),
}

/// `mm-pkg repo verify`.
#[derive(Args)]
pub struct RepoVerifyArgs {
    /// Repository directory.
    dir: PathBuf,
    /// Public key to check signatures with [default: DIR/mattermost.asc].
    #[arg(long)]
    key: Option<PathBuf>,
}

/// `mm-pkg repo add`.
#[derive(Args)]
pub struct RepoAddArgs {
    /// Repository directory.
    dir: PathBuf,
    /// Package files to add.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Armored OpenPGP secret key that signs the metadata [default: $MM_PKG_SIGN_KEY, if set].
    #[arg(long)]
    sign_key: Option<PathBuf>,
    /// apt suite and codename [default: the repository's, else stable].
    #[arg(long)]
    suite: Option<String>,
    /// apt component of the added packages [default: main].
    #[arg(long)]
    component: Option<String>,
    /// Origin field of Release [default: the repository's, else mm-pkg].
    #[arg(long)]
    origin: Option<String>,
    /// Label field of Release [default: the repository's, else Mattermost].
    #[arg(long)]
    label: Option<String>,
    /// Public URL of DIR, written into mattermost.sources [default: the repository's].
    #[arg(long)]
    base_url: Option<String>,
    /// Keep only the newest N versions of each package and architecture [default: all].
    #[arg(long)]
    keep: Option<usize>,
    /// Print what was added, skipped, pruned and signed as one JSON object.
    #[arg(long)]
    json: bool,
}

/// `mm-pkg key`.
#[derive(Subcommand)]
pub enum KeyCommand {
    /// Write a new Ed25519 secret key (mode 0600) and its public key, armored and binary.
    /// The secret key is protected by MM_PKG_SIGN_PASSPHRASE when that is set.
    Generate(KeyGenerateArgs),
}

/// `mm-pkg key generate`.
#[derive(Args)]
pub struct KeyGenerateArgs {
    /// The key's user id, `Name <email>`.
    #[arg(long)]
    name: String,
    /// Directory for signing-key.secret.asc, signing-key.asc and signing-key.gpg.
    #[arg(long, short)]
    output: PathBuf,
    /// Print the written paths and the fingerprint as one JSON object.
    #[arg(long)]
    json: bool,
}

/// `mm-pkg key generate`.
pub fn run_key_generate(args: KeyGenerateArgs) -> Result<()> {
    let passphrase = std::env::var(mm_pkg::sign::PASSPHRASE_VAR).ok();
    let key = generate(&args.name, &args.output, passphrase.as_deref())?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&key)?);
    } else {
        println!("fingerprint {}", key.fingerprint);
        println!(
            "wrote {} (secret: keep it off the web server)",
            key.secret.display()
        );
        println!("wrote {}", key.public_armored.display());
        println!("wrote {}", key.public_binary.display());
    }
    Ok(())
}

/// `mm-pkg repo add`.
pub fn run_repo_add(args: RepoAddArgs) -> Result<()> {
    check_order(&args.dir, &args.files).map_err(tag(Kind::Usage))?;
    let date = source_date_epoch()?;
    let signer = Signer::from_flag_or_env(args.sign_key.as_deref(), date)?.map(Arc::new);
    if signer.is_none() {
        eprintln!(
            "mm-pkg: WARNING: no --sign-key (or MM_PKG_SIGN_KEY): the repository is UNSIGNED; \
             clients must mark it trusted=yes"
        );
    }
    let options = RepoOptions {
        suite: args.suite,
        component: args.component,
        origin: args.origin,
        label: args.label,
        base_url: args.base_url,
        signer,
        date,
        keep: args.keep,
    };
    let report = repo::add(&args.dir, &args.files, &options)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for (what, list) in [
            ("added", &report.added),
            ("already present", &report.skipped),
            ("pruned", &report.pruned),
        ] {
            for p in list {
                println!(
                    "{what} {} {} {} ({})",
                    p.name, p.version, p.arch, p.location
                );
            }
        }
        for file in &report.signed {
            println!("signed {file}");
        }
    }
    Ok(())
}

/// Fails when `repo add DIR FILE...` was given its arguments the other way round: DIR is a
/// file, or a FILE is a directory.
fn check_order(dir: &Path, files: &[PathBuf]) -> Result<()> {
    const USAGE: &str = "`repo add` takes the repository directory first, then the .deb and \
                         .rpm files: mm-pkg repo add DIR FILE...";
    if fs::metadata(dir).is_ok_and(|m| !m.is_dir()) {
        bail!(
            "{} is a file, not a repository directory; {USAGE}",
            dir.display()
        );
    }
    if let Some(d) = files.iter().find(|f| f.is_dir()) {
        bail!("{} is a directory, not a package; {USAGE}", d.display());
    }
    Ok(())
}

/// `mm-pkg repo verify`.
pub fn run_repo_verify(args: RepoVerifyArgs) -> Result<()> {
    let key = match &args.key {
        Some(path) => {
            Some(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?)
        }
        None => repo::verify::default_key(&args.dir),
    };
    if key.is_none() {
        eprintln!(
            "mm-pkg: WARNING: no --key and no {}/mattermost.asc: checking hashes only, not signatures",
            args.dir.display()
        );
    }
    let problems = repo::verify::verify(&args.dir, key.as_deref());
    for p in &problems {
        eprintln!("mm-pkg: {}: {p}", args.dir.display());
    }
    if !problems.is_empty() {
        bail!(
            "{} problem(s) in the repository {}",
            problems.len(),
            args.dir.display()
        );
    }
    println!(
        "{}: every signature, index and package checks",
        args.dir.display()
    );
    Ok(())
}
