//! The `mm-pkg` command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};

use mm_pkg::build::{BuildOptions, build};
use mm_pkg::compress::Compression;
use mm_pkg::context::Format;
use mm_pkg::notify::{self, Notify, Webhook};
use mm_pkg::release::catalog::Catalog;
use mm_pkg::release::download::{Checks, Downloader, default_cache_dir, verify_local};
use mm_pkg::release::http::Http;
use mm_pkg::release::index::DEFAULT_INDEX_URL;
use mm_pkg::release::resolve::{Discovery, NetMode, Resolved};
use mm_pkg::release::spec::{ACCEPTED_FORMS, VersionSpec};
use mm_pkg::release::verify::Trust;
use mm_pkg::release::{Arch, DEFAULT_MIRROR, Edition, Release};
use mm_pkg::repo::{self, RepoOptions};
use mm_pkg::sign::Signer;
use mm_pkg::sign::generate::generate;
use mm_pkg::sync::{self, SyncOptions};

/// Build Debian and RPM packages of a Mattermost server release.
#[derive(Parser)]
#[command(name = "mm-pkg", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Resolve, download, verify and package one release.
    Build(Box<BuildArgs>),
    /// Print the release a spec resolves to: version, URL, SHA-256.
    Resolve(ResolveArgs),
    /// List the releases a spec matches, newest first.
    List(ListArgs),
    /// Make an OpenPGP signing key for packages and repositories.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Publish packages in a signed apt and yum repository.
    #[command(subcommand)]
    Repo(RepoCommand),
    /// Keep a repository current: resolve every spec, build only what the repository lacks,
    /// publish it as `repo add` does, and tell the team through a Mattermost webhook.
    Sync(Box<SyncArgs>),
    /// After CI built a `sync --plan --json` plan in separate jobs and `repo add` published
    /// them: tell the team which planned releases the repository now holds and which it lacks
    /// (exit code 1 when one is missing).
    Notify(NotifyCommandArgs),
}

#[derive(Args)]
struct NotifyCommandArgs {
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

#[derive(Subcommand)]
enum RepoCommand {
    /// Add .deb and .rpm files to the repository in DIR (created if needed), then rewrite its
    /// indexes and signatures (apt: Release, InRelease, Release.gpg; yum: repodata, repomd.xml,
    /// repomd.xml.asc) and mattermost.asc, mattermost.sources, mattermost.repo.
    Add(RepoAddArgs),
    /// Check every signature, every hash Release and repomd.xml name, and every package file
    /// against its index; exit code 1 and a list of what is wrong.
    Verify(RepoVerifyArgs),
}

#[derive(Args)]
struct RepoVerifyArgs {
    /// Repository directory.
    dir: PathBuf,
    /// Public key to check signatures with [default: DIR/mattermost.asc].
    #[arg(long)]
    key: Option<PathBuf>,
}

#[derive(Args)]
struct RepoAddArgs {
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

#[derive(Subcommand)]
enum KeyCommand {
    /// Write a new Ed25519 secret key (mode 0600) and its public key, armored and binary.
    /// The secret key is protected by MM_PKG_SIGN_PASSPHRASE when that is set.
    Generate(KeyGenerateArgs),
}

#[derive(Args)]
struct KeyGenerateArgs {
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

/// Where releases are found.
#[derive(Args)]
struct SourceArgs {
    /// Server edition.
    #[arg(long, default_value = "enterprise", value_parser = ["enterprise", "team"])]
    edition: String,
    /// Architecture.
    #[arg(long, default_value = "amd64", value_parser = ["amd64", "arm64"])]
    arch: String,
    /// Download server.
    #[arg(long, default_value = DEFAULT_MIRROR)]
    mirror: String,
    /// Releases API to discover versions newer than the catalog (mm-pkg appends per_page and page).
    #[arg(long, default_value = DEFAULT_INDEX_URL)]
    index_url: String,
    /// Download and index cache [default: $XDG_CACHE_HOME/mm-pkg].
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// No network at all: the catalog and the cache only.
    #[arg(long, conflicts_with = "online")]
    offline: bool,
    /// Fail when the release index cannot be read (instead of using the catalog alone).
    #[arg(long)]
    online: bool,
    /// Seconds before a connection attempt or a stalled read is given up (then retried).
    #[arg(long, default_value_t = 30)]
    timeout: u64,
}

#[derive(Args)]
struct ResolveArgs {
    #[arg(help = format!("Version spec: {ACCEPTED_FORMS}"))]
    spec: String,
    #[command(flatten)]
    source: SourceArgs,
    /// Print one JSON object (version, edition, arch, url, sha256, esr).
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ListArgs {
    #[arg(default_value = "latest", help = format!("Version spec: {ACCEPTED_FORMS}"))]
    spec: String,
    #[command(flatten)]
    source: SourceArgs,
    /// Print a JSON array.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct BuildArgs {
    #[arg(help = format!("Version spec: {ACCEPTED_FORMS}"))]
    spec: String,
    #[command(flatten)]
    source: SourceArgs,
    /// Package formats, comma-separated.
    #[arg(long, default_value = "deb,rpm", value_delimiter = ',', value_parser = ["deb", "rpm"])]
    format: Vec<String>,
    /// Output directory.
    #[arg(long, short, default_value = "dist")]
    output: PathBuf,
    /// Build from this local tarball instead of downloading.
    #[arg(long)]
    tarball: Option<PathBuf>,
    /// Expected SHA-256 of the tarball (checked in addition to the catalog).
    #[arg(long)]
    sha256: Option<String>,
    /// Armored OpenPGP keys to trust besides Mattermost's (mirrors that re-sign); repeatable.
    #[arg(long)]
    keyring: Vec<PathBuf>,
    /// Build a release that has no signature.
    #[arg(long)]
    allow_unsigned: bool,
    /// Check neither SHA-256 nor signature (deliberately patched releases).
    #[arg(long)]
    insecure_skip_verify: bool,
    /// Packaging revision.
    #[arg(long, default_value_t = 1)]
    revision: u32,
    /// Payload compression for both formats [default: gzip for .deb, zstd for .rpm].
    #[arg(long, value_parser = ["gzip", "xz", "zstd", "none"])]
    compression: Option<String>,
    /// Directory of template overrides (files named like the templates in templates/).
    #[arg(long)]
    templates: Option<PathBuf>,
    /// Maintainer and packager of the packages, `Name <email>`.
    #[arg(
        long,
        env = "MM_PKG_MAINTAINER",
        default_value = "mm-pkg <mm-pkg@example.org>"
    )]
    maintainer: String,
    /// Armored OpenPGP secret key (RSA 3072+ or Ed25519) that signs the .rpm's header
    /// [default: the key in $MM_PKG_SIGN_KEY, if set; passphrase in $MM_PKG_SIGN_PASSPHRASE].
    #[arg(long)]
    sign_key: Option<PathBuf>,
    /// Print the result as one JSON object.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    notify: NotifyArgs,
}

/// Telling the team through a Mattermost incoming webhook (`build` and `sync`).
#[derive(Args)]
struct NotifyArgs {
    /// Mattermost incoming webhook that gets one message per run. The URL is a secret: it is
    /// never printed, only its host [env: MM_PKG_WEBHOOK_URL].
    #[arg(
        long,
        env = "MM_PKG_WEBHOOK_URL",
        hide_env_values = true,
        hide_env = true
    )]
    webhook: Option<String>,
    /// Channel to post in instead of the webhook's own (`town-square`, `@user`).
    #[arg(long, requires = "webhook")]
    webhook_channel: Option<String>,
    /// Icon of the post (an http:// or https:// URL).
    #[arg(long, requires = "webhook")]
    webhook_icon_url: Option<String>,
    /// When to post: `changes` (something was built or failed), `always` (also "nothing
    /// new"), `failures` (only when something failed).
    #[arg(long, default_value = "changes", value_parser = ["changes", "always", "failures"])]
    notify: String,
}

impl NotifyArgs {
    /// The checked webhook (before any work is done), and the policy.
    fn webhook(&self) -> Result<(Option<Webhook>, Notify)> {
        let hook = match self.webhook.as_deref().map(str::trim) {
            Some(url) if !url.is_empty() => Some(Webhook::new(
                url,
                self.webhook_channel.as_deref(),
                self.webhook_icon_url.as_deref(),
            )?),
            _ => None,
        };
        Ok((hook, self.notify.parse()?))
    }
}

#[derive(Args)]
struct SyncArgs {
    /// Repository directory (created if needed), as for `repo add`.
    #[arg(long)]
    repo: PathBuf,
    #[arg(long = "spec", required = true, help = format!("Version spec to follow, repeatable: {ACCEPTED_FORMS}"))]
    specs: Vec<String>,
    /// Server editions, comma-separated.
    #[arg(long, default_value = "enterprise", value_delimiter = ',', value_parser = ["enterprise", "team"])]
    edition: Vec<String>,
    /// Architectures, comma-separated.
    #[arg(long, default_value = "amd64", value_delimiter = ',', value_parser = ["amd64", "arm64"])]
    arch: Vec<String>,
    /// Package formats, comma-separated.
    #[arg(long, default_value = "deb,rpm", value_delimiter = ',', value_parser = ["deb", "rpm"])]
    format: Vec<String>,
    /// Download server.
    #[arg(long, default_value = DEFAULT_MIRROR)]
    mirror: String,
    /// Releases API to discover versions newer than the catalog (mm-pkg appends per_page and page).
    #[arg(long, default_value = DEFAULT_INDEX_URL)]
    index_url: String,
    /// Download and index cache [default: $XDG_CACHE_HOME/mm-pkg].
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// No network at all: the catalog and the cache only.
    #[arg(long, conflicts_with = "online")]
    offline: bool,
    /// Fail when the release index cannot be read (instead of using the catalog alone).
    #[arg(long)]
    online: bool,
    /// Seconds before a connection attempt or a stalled read is given up (then retried).
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// Armored OpenPGP keys to trust besides Mattermost's (mirrors that re-sign); repeatable.
    #[arg(long)]
    keyring: Vec<PathBuf>,
    /// Build releases that have no signature.
    #[arg(long)]
    allow_unsigned: bool,
    /// Check neither SHA-256 nor signature (deliberately patched releases).
    #[arg(long)]
    insecure_skip_verify: bool,
    /// Packaging revision.
    #[arg(long, default_value_t = 1)]
    revision: u32,
    /// Payload compression for both formats [default: gzip for .deb, zstd for .rpm].
    #[arg(long, value_parser = ["gzip", "xz", "zstd", "none"])]
    compression: Option<String>,
    /// Directory of template overrides (files named like the templates in templates/).
    #[arg(long)]
    templates: Option<PathBuf>,
    /// Maintainer and packager of the packages, `Name <email>`.
    #[arg(
        long,
        env = "MM_PKG_MAINTAINER",
        default_value = "mm-pkg <mm-pkg@example.org>"
    )]
    maintainer: String,
    /// Armored OpenPGP secret key that signs the repository and its rpms
    /// [default: $MM_PKG_SIGN_KEY, if set; passphrase in $MM_PKG_SIGN_PASSPHRASE].
    #[arg(long)]
    sign_key: Option<PathBuf>,
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
    #[command(flatten)]
    notify: NotifyArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Build(args) => run_build_and_tell(*args),
        Command::Resolve(args) => run_resolve(args),
        Command::List(args) => run_list(args),
        Command::Key(KeyCommand::Generate(args)) => run_key_generate(args),
        Command::Repo(RepoCommand::Add(args)) => run_repo_add(args),
        Command::Repo(RepoCommand::Verify(args)) => run_repo_verify(args),
        Command::Sync(args) => run_sync(*args),
        Command::Notify(args) => run_notify(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("mm-pkg: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Everything discovery needs, built from the shared flags.
struct Sources {
    catalog: Catalog,
    http: Http,
    edition: Edition,
    arch: Arch,
    mirror: String,
    index_url: String,
    cache_dir: PathBuf,
    mode: NetMode,
}

impl Sources {
    fn new(args: &SourceArgs) -> Result<Self> {
        Ok(Sources {
            catalog: Catalog::embedded()?,
            http: Http::new(Duration::from_secs(args.timeout.max(1)))?,
            edition: args.edition.parse()?,
            arch: args.arch.parse()?,
            mirror: args.mirror.clone(),
            index_url: args.index_url.clone(),
            cache_dir: args.cache_dir.clone().unwrap_or_else(default_cache_dir),
            mode: match (args.offline, args.online) {
                (true, _) => NetMode::Offline,
                (_, true) => NetMode::Online,
                _ => NetMode::Auto,
            },
        })
    }

    fn discovery(&self) -> Discovery<'_> {
        Discovery {
            catalog: &self.catalog,
            http: &self.http,
            index_url: self.index_url.clone(),
            cache_dir: self.cache_dir.clone(),
            mode: self.mode,
            token: std::env::var("GITHUB_TOKEN").ok().filter(|t| !t.is_empty()),
        }
    }

    fn resolve(&self, spec: &str) -> Result<Resolved> {
        let spec: VersionSpec = spec.parse()?;
        self.discovery()
            .resolve(&spec, self.edition, self.arch, &self.mirror)
    }
}

fn run_resolve(args: ResolveArgs) -> Result<()> {
    let sources = Sources::new(&args.source)?;
    let resolved = sources.resolve(&args.spec)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&resolved)?);
    } else {
        println!(
            "version  {}{}",
            resolved.version,
            if resolved.esr { " (ESR)" } else { "" }
        );
        println!("edition  {}", resolved.edition);
        println!("arch     {}", resolved.arch);
        println!("url      {}", resolved.url);
        println!(
            "sha256   {}",
            resolved
                .sha256
                .as_deref()
                .unwrap_or("unknown (not in the catalog)")
        );
    }
    Ok(())
}

fn run_list(args: ListArgs) -> Result<()> {
    let sources = Sources::new(&args.source)?;
    let spec: VersionSpec = args.spec.parse()?;
    let list = sources.discovery().list(&spec, sources.edition)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    if list.is_empty() {
        bail!("no {} release matches `{spec}`", sources.edition);
    }
    for c in list {
        let mut notes = Vec::new();
        if c.esr {
            notes.push("ESR");
        }
        if !c.catalogued {
            notes.push("from the index");
        }
        println!(
            "{}{}",
            c.version,
            if notes.is_empty() {
                String::new()
            } else {
                format!("  ({})", notes.join(", "))
            }
        );
    }
    Ok(())
}

fn run_build(args: BuildArgs) -> Result<notify::Row> {
    let source_date = source_date_epoch()?;
    // The key is checked before anything is downloaded or written.
    let signer = Signer::from_flag_or_env(args.sign_key.as_deref(), source_date)?.map(Arc::new);
    let sources = Sources::new(&args.source)?;
    let resolved = sources.resolve(&args.spec)?;
    let release = Release {
        version: resolved.version.parse()?,
        edition: sources.edition,
        arch: sources.arch,
    };
    let mut checks = Checks {
        sha256: Vec::new(),
        allow_unsigned: args.allow_unsigned,
        skip_verify: args.insecure_skip_verify,
    };
    if let Some(sha) = &resolved.sha256 {
        checks
            .sha256
            .push(("the release catalog".into(), sha.clone()));
    }
    if let Some(sha) = &args.sha256 {
        if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!("--sha256 {sha}: expected 64 hex digits");
        }
        checks
            .sha256
            .push(("--sha256".into(), sha.to_ascii_lowercase()));
    }
    if checks.skip_verify {
        eprintln!(
            "mm-pkg: WARNING: --insecure-skip-verify: NOT checking the SHA-256 (catalog, --sha256) or the \
             OpenPGP signature of {release}; these packages may contain anything"
        );
    }
    let trust = Trust::new(&args.keyring)?;
    let (tarball, verified) = match &args.tarball {
        Some(path) => (path.clone(), verify_local(path, &checks, &trust)?),
        None => {
            let downloader = Downloader {
                http: &sources.http,
                cache_dir: sources.cache_dir.clone(),
                offline: sources.mode == NetMode::Offline,
                trust: &trust,
            };
            let fetched = downloader.fetch(&release, &resolved.url, &checks)?;
            (fetched.path, fetched.verified)
        }
    };
    if let Some(v) = &verified {
        let signer = v
            .signed_by
            .as_deref()
            .map(|f| format!(", signed by {f}"))
            .unwrap_or_default();
        eprintln!(
            "mm-pkg: verified {}: SHA-256 {}{signer}",
            tarball.display(),
            v.sha256
        );
    }

    let mut formats = Vec::new();
    for f in &args.format {
        let format = match f.as_str() {
            "deb" => Format::Deb,
            "rpm" => Format::Rpm,
            other => bail!("unknown format `{other}`: use deb, rpm or deb,rpm"),
        };
        if !formats.contains(&format) {
            formats.push(format);
        }
    }
    let options = BuildOptions {
        formats,
        output: args.output.clone(),
        revision: args.revision,
        compression: args
            .compression
            .as_deref()
            .map(str::parse::<Compression>)
            .transpose()?,
        templates: args.templates.clone(),
        maintainer: args.maintainer.clone(),
        source_date,
        signer,
    };
    let built = build(&release, &tarball, &options)?;
    if args.json {
        let json = serde_json::json!({
            "version": release.version.to_string(),
            "edition": release.edition,
            "arch": release.arch,
            "tarball": tarball,
            "tarball_sha256": verified.as_ref().map(|v| v.sha256.clone()),
            "signed_by": verified.as_ref().and_then(|v| v.signed_by.clone()),
            "packages": built,
            "sha256sums": args.output.join("SHA256SUMS"),
        });
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        for p in &built {
            println!(
                "wrote {} ({} bytes, sha256 {})",
                p.path.display(),
                p.size,
                p.sha256
            );
        }
        println!("wrote {}", args.output.join("SHA256SUMS").display());
    }
    Ok(notify::Row {
        version: release.version.to_string(),
        edition: release.edition.to_string(),
        arch: release.arch.to_string(),
        packages: built
            .iter()
            .map(|p| (p.format.as_str().to_string(), p.sha256.clone()))
            .collect(),
    })
}

fn run_key_generate(args: KeyGenerateArgs) -> Result<()> {
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

fn run_repo_add(args: RepoAddArgs) -> Result<()> {
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

fn run_repo_verify(args: RepoVerifyArgs) -> Result<()> {
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

/// `SOURCE_DATE_EPOCH` when set (reproducible builds), else now.
fn source_date_epoch() -> Result<u64> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.is_empty() => v
            .trim()
            .parse()
            .with_context(|| format!("SOURCE_DATE_EPOCH=`{v}` is not a number of seconds")),
        _ => Ok(SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs()),
    }
}

/// `build`, then one message to the team about it (success or failure).
fn run_build_and_tell(args: BuildArgs) -> Result<()> {
    let (webhook, policy) = args.notify.webhook()?;
    let what = format!(
        "mattermost {} ({}, {})",
        args.spec, args.source.edition, args.source.arch
    );
    let result = run_build(args);
    let mut summary = notify::Summary::default();
    match &result {
        Ok(row) => summary.rows.push(row.clone()),
        Err(err) => summary.failures.push(notify::Failure {
            what,
            reason: format!("{err:#}"),
        }),
    }
    notify::tell(&summary, policy, webhook.as_ref());
    result.map(|_| ())
}

fn run_sync(args: SyncArgs) -> Result<()> {
    let date = source_date_epoch()?;
    // The key and the webhook are checked before anything is downloaded or written.
    let signer = Signer::from_flag_or_env(args.sign_key.as_deref(), date)?.map(Arc::new);
    let (webhook, policy) = args.notify.webhook()?;
    if signer.is_none() && !args.plan {
        eprintln!(
            "mm-pkg: WARNING: no --sign-key (or MM_PKG_SIGN_KEY): the repository is UNSIGNED; \
             clients must mark it trusted=yes"
        );
    }
    let sources = Sources::new(&SourceArgs {
        edition: "enterprise".into(),
        arch: "amd64".into(),
        mirror: args.mirror.clone(),
        index_url: args.index_url.clone(),
        cache_dir: args.cache_dir.clone(),
        offline: args.offline,
        online: args.online,
        timeout: args.timeout,
    })?;
    let mut formats = Vec::new();
    for f in &args.format {
        let format = if f == "deb" { Format::Deb } else { Format::Rpm };
        if !formats.contains(&format) {
            formats.push(format);
        }
    }
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
        formats,
        mirror: args.mirror.clone(),
        checks: Checks {
            sha256: Vec::new(),
            allow_unsigned: args.allow_unsigned,
            skip_verify: args.insecure_skip_verify,
        },
        build: BuildOptions {
            formats: Vec::new(),
            output: PathBuf::new(),
            revision: args.revision,
            compression: args
                .compression
                .as_deref()
                .map(str::parse::<Compression>)
                .transpose()?,
            templates: args.templates.clone(),
            maintainer: args.maintainer.clone(),
            source_date: date,
            // rpms are signed in the repository's copy, as `repo add` signs CI-built ones.
            signer: None,
        },
        repo: RepoOptions {
            suite: args.suite.clone(),
            base_url: args.base_url.clone(),
            signer,
            date,
            keep: args.keep,
            ..RepoOptions::default()
        },
        notify: policy,
    };
    if args.insecure_skip_verify {
        eprintln!(
            "mm-pkg: WARNING: --insecure-skip-verify: NOT checking the SHA-256 or the OpenPGP \
             signature of any release; these packages may contain anything"
        );
    }

    if args.plan {
        let plan = sync::plan(&sources.discovery(), &options)?;
        if args.json {
            let matrix = sync::plan::matrix(&plan, args.revision, &planned_build_flags(&args));
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

    let trust = Trust::new(&args.keyring)?;
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

fn run_notify(args: NotifyCommandArgs) -> Result<()> {
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
/// from the same place with the same checks.
fn planned_build_flags(args: &SyncArgs) -> Vec<String> {
    let mut flags = vec![
        "--mirror".to_string(),
        args.mirror.clone(),
        "--revision".into(),
        args.revision.to_string(),
        "--maintainer".into(),
        args.maintainer.clone(),
    ];
    for k in &args.keyring {
        flags.extend(["--keyring".into(), k.display().to_string()]);
    }
    if let Some(c) = &args.compression {
        flags.extend(["--compression".into(), c.clone()]);
    }
    if let Some(t) = &args.templates {
        flags.extend(["--templates".into(), t.display().to_string()]);
    }
    if args.allow_unsigned {
        flags.push("--allow-unsigned".into());
    }
    if args.insecure_skip_verify {
        flags.push("--insecure-skip-verify".into());
    }
    flags
}
