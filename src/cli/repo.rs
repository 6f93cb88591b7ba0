//! `mm-pkg repo` (add packages to a signed apt and yum repository, verify one) and
//! `mm-pkg key generate` (a key to sign them with).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};

use mm_pkg::repo::{self, RepoOptions};
use mm_pkg::sign::generate::generate;
use mm_pkg::sign::{Signer, multi};

use super::failure::{Kind, tag};
use super::source_date_epoch;

/// `mm-pkg repo`.
#[derive(Subcommand)]
pub enum RepoCommand {
    /// Add .deb and .rpm files to the repository in DIR (created if needed), then rewrite its
    /// indexes and signatures (apt: Release, InRelease, Release.gpg; yum: repodata, repomd.xml,
    /// repomd.xml.asc) and mattermost.asc, mattermost.sources, mattermost.repo.
    Add(RepoAddArgs),
    /// Withdraw published versions (NAME=VERSION: every architecture and format of it): their
    /// pool files are removed and the indexes rendered and signed again.
    Remove(RepoRemoveArgs),
    /// List the packages the repository in DIR holds, from its state.
    List(RepoListArgs),
    /// Check the repository in DIR as apt, dnf, gpgv and rpmkeys check it: every signature
    /// against --key, every index under every hash and by-hash name, every package file
    /// against its index and as dpkg and rpm read it; exit code 1 and a list of what is wrong.
    Verify(RepoVerifyArgs),
}

/// `mm-pkg repo verify`.
#[derive(Args)]
pub struct RepoVerifyArgs {
    /// Repository directory.
    dir: PathBuf,
    /// The public key (or keyring) you trust, armored or binary; signatures by it must
    /// verify. Never taken from DIR: DIR/mattermost.asc is part of what is checked, so
    /// `--key DIR/mattermost.asc` proves only that the repository agrees with itself.
    #[arg(long, required_unless_present = "hashes_only")]
    key: Option<PathBuf>,
    /// Check indexes, hashes and packages only, not who signed them (an unsigned repository,
    /// or no key at hand).
    #[arg(long, conflicts_with = "key")]
    hashes_only: bool,
}

/// `mm-pkg repo list`.
#[derive(Args)]
pub struct RepoListArgs {
    /// Repository directory.
    dir: PathBuf,
    /// Print the suite, the keys and the packages as one JSON object.
    #[arg(long)]
    json: bool,
}

/// The keys that sign a repository (`repo add`, `repo remove`, `sync`).
#[derive(Args)]
pub struct KeyArgs {
    /// Armored OpenPGP secret key that signs the metadata and the rpm copies [default:
    /// $MM_PKG_SIGN_KEY, if set; passphrase in $MM_PKG_SIGN_PASSPHRASE]. A signed
    /// repository is refused without its key, or with another one.
    #[arg(long)]
    sign_key: Option<PathBuf>,
    /// Rotate the repository's key: FILE is its current (old) secret key, --sign-key the new
    /// one. Until --finish-rotation, the metadata is signed with both, mattermost.asc holds
    /// both and rpm copies carry the old key's signature. `env` takes the old key from
    /// $MM_PKG_ROTATE_FROM_KEY (its passphrase from $MM_PKG_ROTATE_FROM_PASSPHRASE).
    #[arg(long, value_name = "FILE")]
    rotate_from: Option<PathBuf>,
    /// End a rotation: retire the old key (sign with --sign-key alone) and sign every rpm
    /// copy with the new key. Needs the whole repository (not --state-only).
    #[arg(long, conflicts_with = "rotate_from")]
    finish_rotation: bool,
    /// Sign, for the first time, a repository that already holds packages no key signed
    /// (each is checked against its pool file first). Refused without it, since a signed
    /// repository whose signatures someone removed looks the same.
    #[arg(long, conflicts_with_all = ["rotate_from", "finish_rotation"])]
    first_signing: bool,
}

impl KeyArgs {
    /// The key, the old key of a rotation and whether it finishes, as [`RepoOptions`]
    /// (signatures dated `date`), each key checked before anything is done.
    pub fn options(&self, date: u64) -> Result<RepoOptions> {
        check_not_future(date)?;
        Ok(RepoOptions {
            signer: Signer::from_flag_or_env(self.sign_key.as_deref(), date)?.map(Arc::new),
            rotate_from: multi::rotation_key(self.rotate_from.as_deref(), date)?.map(Arc::new),
            finish_rotation: self.finish_rotation,
            first_signing: self.first_signing,
            date,
            ..RepoOptions::default()
        })
    }
}

/// Refuses, before the repository changes, a `--changes` path the list could not be written
/// to (a directory, or in a directory that does not exist): the list of a run that changed
/// the repository must not be lost, as the next run's would not name its files.
fn check_changes_path(path: &Path) -> Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if path.file_name().is_none() || path.is_dir() {
        bail!("--changes {} is a directory: name a file", path.display());
    }
    if !parent.is_dir() {
        bail!(
            "--changes {}: {} is not a directory. Nothing was changed.",
            path.display(),
            parent.display()
        );
    }
    Ok(())
}

/// Refuses a `Date:` (and signature time) `date` more than an hour ahead of this machine's
/// clock: apt refuses a Release that is not valid yet, and sqv a signature made in the future.
fn check_not_future(date: u64) -> Result<()> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    if date > now + 3600 {
        bail!(
            "SOURCE_DATE_EPOCH={date} is {} s ahead of this machine's clock: apt would refuse \
             the Release as not valid yet and sqv its signatures as made in the future. Unset \
             it (or fix the clock). Nothing was changed.",
            date - now
        );
    }
    Ok(())
}

/// Warns that a base URL `url` over plain http sends the key file, which clients import,
/// without protection (apt's signature checks still hold for the indexes).
pub fn warn_plain_http(url: Option<&str>) {
    if let Some(url) = url.filter(|u| u.starts_with("http://")) {
        eprintln!(
            "mm-pkg: WARNING: --base-url {url} is plain http: the Release signatures still \
             protect the packages, but clients that fetch mattermost.asc or mattermost.repo \
             from it (dnf's gpgkey=) can be handed another key on the way. Prefer https://."
        );
    }
}

/// How a change of a repository is signed and written (`repo add`, `repo remove`).
#[derive(Args)]
pub struct ChangeArgs {
    #[command(flatten)]
    keys: KeyArgs,
    /// Publish from the private state alone: DIR holds .mm-pkg/ (and whatever else), not
    /// necessarily the pool files of earlier adds. Their records are trusted as far as the
    /// state's signature vouches for them. See --changes for what to upload.
    #[arg(long)]
    state_only: bool,
    /// Write the files this run changed to FILE, one `STEP PATH` line each, in the order an
    /// upload must copy them (steps pool, indexes, plain, signed) and then those to delete
    /// (step remove).
    #[arg(long, value_name = "FILE")]
    changes: Option<PathBuf>,
    /// Keep only the newest N versions of each package and architecture [default: all].
    #[arg(long)]
    keep: Option<usize>,
    /// Print what was added, skipped, pruned, removed and signed, and the changes, as one
    /// JSON object.
    #[arg(long)]
    json: bool,
}

/// `mm-pkg repo add`.
#[derive(Args)]
pub struct RepoAddArgs {
    /// Repository directory.
    dir: PathBuf,
    /// Package files to add.
    #[arg(required = true)]
    files: Vec<PathBuf>,
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
    #[command(flatten)]
    change: ChangeArgs,
}

/// `mm-pkg repo remove`.
#[derive(Args)]
pub struct RepoRemoveArgs {
    /// Repository directory.
    dir: PathBuf,
    /// Versions to withdraw, NAME=VERSION (as `repo list` shows them).
    #[arg(required = true, value_name = "NAME=VERSION")]
    versions: Vec<String>,
    #[command(flatten)]
    change: ChangeArgs,
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

impl ChangeArgs {
    /// The options these flags give (the settings left to the repository).
    fn options(&self) -> Result<RepoOptions> {
        if let Some(path) = &self.changes {
            check_changes_path(path)?;
        }
        Ok(RepoOptions {
            keep: self.keep,
            state_only: self.state_only,
            ..self.keys.options(source_date_epoch()?)?
        })
    }

    /// Prints `report` (or writes it as JSON), and the change list when asked.
    fn finish(&self, report: &repo::AddReport) -> Result<()> {
        if let Some(path) = &self.changes {
            repo::files::write_outside(path, report.changes.to_text().as_bytes())?;
        }
        if self.json {
            println!("{}", serde_json::to_string_pretty(report)?);
        } else {
            for (what, list) in [
                ("added", &report.added),
                ("already present", &report.skipped),
                ("pruned", &report.pruned),
                ("removed", &report.removed),
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
        if report.unsigned {
            eprintln!(
                "mm-pkg: WARNING: no --sign-key (or MM_PKG_SIGN_KEY): the repository is UNSIGNED; \
                 clients must mark it trusted=yes"
            );
        }
        Ok(())
    }
}

/// `mm-pkg repo add`.
pub fn run_repo_add(args: RepoAddArgs) -> Result<()> {
    check_order(&args.dir, &args.files).map_err(tag(Kind::Usage))?;
    let options = RepoOptions {
        suite: args.suite,
        component: args.component,
        origin: args.origin,
        label: args.label,
        base_url: args.base_url,
        ..args.change.options()?
    };
    warn_plain_http(options.base_url.as_deref());
    let report = repo::add(&args.dir, &args.files, &options)?;
    args.change.finish(&report)
}

/// `mm-pkg repo remove`.
pub fn run_repo_remove(args: RepoRemoveArgs) -> Result<()> {
    let options = args.change.options()?;
    let report = repo::remove(&args.dir, &args.versions, &options)?;
    args.change.finish(&report)
}

/// `mm-pkg repo list`.
pub fn run_repo_list(args: RepoListArgs) -> Result<()> {
    if !args.dir.is_dir() {
        bail!("{} is not a repository directory", args.dir.display());
    }
    let held = repo::held::holdings(&args.dir)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&held)?);
        return Ok(());
    }
    if held.suite.is_none() {
        bail!(
            "{} holds no repository made by mm-pkg repo add",
            args.dir.display()
        );
    }
    for p in &held.packages {
        println!(
            "{} {} {} {} {}",
            p.format, p.name, p.version, p.arch, p.location
        );
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
        None => None,
    };
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
    match &args.key {
        Some(key) => println!(
            "{}: every index and package checks, signed by the key in {}",
            args.dir.display(),
            key.display()
        ),
        None => println!(
            "{}: every index and package matches its hashes; signatures NOT checked \
             (--hashes-only: this proves nothing about who made the repository)",
            args.dir.display()
        ),
    }
    Ok(())
}
