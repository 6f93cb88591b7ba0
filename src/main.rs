//! The `mm-pkg` command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use mm_pkg::build::{BuildOptions, build_checked};
use mm_pkg::compress::Compression;
use mm_pkg::context::Format;
use mm_pkg::notify::{self, Notify, Webhook};
use mm_pkg::release::archive::version_missing;
use mm_pkg::release::catalog::Catalog;
use mm_pkg::release::download::{Checks, Downloader, default_cache_dir, local_expectations};
use mm_pkg::release::http::Http;
use mm_pkg::release::index::DEFAULT_INDEX_URL;
use mm_pkg::release::known::KnownTarballs;
use mm_pkg::release::resolve::{Discovery, NetMode, Resolved};
use mm_pkg::release::spec::{ACCEPTED_FORMS, VersionSpec};
use mm_pkg::release::verify::Trust;
use mm_pkg::release::{Arch, DEFAULT_MIRROR, Edition, Release};
use mm_pkg::repo::{self, RepoOptions};
use mm_pkg::sign::Signer;
use mm_pkg::sign::generate::generate;
use mm_pkg::sync::{self, SyncOptions};

mod cli;

use cli::failure::{self, Kind, tag};

/// Build Debian and RPM packages of a Mattermost server release.
#[derive(Parser)]
#[command(name = "mm-pkg", version, about, after_help = cli::EXIT_STATUS_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per run: the size of the build variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Resolve, download, verify and package one release.
    Build(Box<BuildArgs>),
    /// Print the release a spec resolves to: version, URL, SHA-256.
    Resolve(ResolveArgs),
    /// List the releases a spec matches, newest first.
    List(ListArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(CompletionsArgs),
    /// Write the man pages (mm-pkg.1, mm-pkg-build.1, ...) into a directory.
    Man(ManArgs),
    /// Work with the package templates.
    #[command(subcommand)]
    Templates(TemplatesCommand),
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

#[derive(Subcommand)]
enum TemplatesCommand {
    /// Write every default template into DIR (deb/, rpm/, systemd/ and the shared files), a
    /// starting point for --templates DIR; existing files are never replaced.
    Export {
        /// Directory to write into (created if missing).
        dir: PathBuf,
    },
}

#[derive(Args)]
struct CompletionsArgs {
    /// The shell to complete for.
    shell: clap_complete::Shell,
}

#[derive(Args)]
struct ManArgs {
    /// Directory to write the pages into (created if missing).
    dir: PathBuf,
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
    /// Print one JSON object (version, edition, arch, url, sha256, esr, catalogued).
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ListArgs {
    #[arg(help = format!(
        "Version spec: {ACCEPTED_FORMS}. A range lists its releases; latest and esr list \
         the one release they pick; without SPEC every release is listed"
    ))]
    spec: Option<String>,
    #[command(flatten)]
    source: SourceArgs,
    /// Print a JSON array.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct BuildArgs {
    #[arg(
        required_unless_present = "tarball",
        help = format!(
            "Version spec: {ACCEPTED_FORMS}. Optional with --tarball when the file has \
             upstream's name (mattermost[-team]-X.Y.Z-linux-ARCH.tar.gz)"
        )
    )]
    spec: Option<String>,
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
    /// Packaging revision, used verbatim (`1`, `1~deb12u1`, `0ubuntu1~22.04`, `2.el9`):
    /// A-Z a-z 0-9 + . ~
    #[arg(long, default_value = "1", value_parser = cli::revision)]
    revision: String,
    /// Payload compression for both formats [default: gzip for .deb, zstd for .rpm].
    #[arg(long, value_parser = ["gzip", "xz", "zstd", "none"])]
    compression: Option<String>,
    /// Directory of template overrides: files named like a template, at the top or in the
    /// layout `mm-pkg templates export` writes (deb/, rpm/, systemd/).
    #[arg(long)]
    templates: Option<PathBuf>,
    /// Maintainer and packager of the packages, `Name <email>`.
    #[arg(
        long,
        env = "MM_PKG_MAINTAINER",
        default_value = "mm-pkg <mm-pkg@example.org>",
        value_parser = cli::maintainer
    )]
    maintainer: String,
    /// RPM `Vendor:` (who built the package); none by default, since Mattermost did not.
    #[arg(long, default_value = "")]
    vendor: String,
    /// Print the result as one JSON object.
    #[arg(long)]
    json: bool,
    /// Refuse a release whose bin/mattermost does not contain the version being built
    /// (otherwise a loud warning).
    #[arg(long)]
    strict: bool,
    /// Add a dependency to both packages (`name` or `name (>= 1.2)`); repeatable.
    #[arg(long, value_name = "RELATION", value_parser = cli::depends)]
    depends: Vec<String>,
    /// Add a recommendation to both packages (`name` or `name (>= 1.2)`); repeatable.
    #[arg(long, value_name = "RELATION", value_parser = cli::recommends)]
    recommends: Vec<String>,
    /// Add a suggestion to both packages (`name` or `name (>= 1.2)`); repeatable.
    #[arg(long, value_name = "RELATION", value_parser = cli::suggests)]
    suggests: Vec<String>,
    /// Distribution of the Debian changelog entry (`bookworm`, `UNRELEASED`).
    #[arg(long, default_value = "unstable", value_parser = cli::distribution)]
    distribution: String,
    /// TOML file of build flags by long name (`revision = "2"`, `format = ["deb"]`); flags
    /// given on the command line win, unknown keys are an error.
    #[arg(long, env = "MM_PKG_CONFIG")]
    config: Option<PathBuf>,
    /// Whether --edition / --arch were given (not defaulted): set after parsing.
    #[arg(skip)]
    given: cli::Given,
    /// Armored OpenPGP secret key (RSA 3072+ or Ed25519) that signs the .rpm's header
    /// [default: the key in $MM_PKG_SIGN_KEY, if set; passphrase in $MM_PKG_SIGN_PASSPHRASE].
    #[arg(long)]
    sign_key: Option<PathBuf>,
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
    /// Packaging revision, used verbatim (`1`, `1~deb12u1`), as for `build`.
    #[arg(long, default_value = "1", value_parser = cli::revision)]
    revision: String,
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
    let matches = match cli::parse_command_line(command) {
        Ok(matches) => matches,
        Err(code) => return code,
    };
    let mut cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(err) => return failure::report_clap(err),
    };
    if let (Command::Build(args), Some(("build", m))) = (&mut cli.command, matches.subcommand()) {
        args.given = cli::Given::from_matches(m);
    }
    let json = match &cli.command {
        Command::Build(args) => args.json,
        Command::Resolve(args) => args.json,
        Command::List(args) => args.json,
        _ => false,
    };
    let result = match cli.command {
        Command::Build(args) => run_build_and_tell(*args),
        Command::Resolve(args) => run_resolve(args),
        Command::List(args) => run_list(args),
        Command::Completions(args) => cli::generate::completions(command(), args.shell),
        Command::Man(args) => cli::generate::man_pages(command(), &args.dir),
        Command::Templates(TemplatesCommand::Export { dir }) => mm_pkg::templates::export(&dir)
            .map(|written| {
                for path in written {
                    println!("wrote {}", path.display());
                }
            }),
        Command::Key(KeyCommand::Generate(args)) => run_key_generate(args),
        Command::Repo(RepoCommand::Add(args)) => run_repo_add(args),
        Command::Repo(RepoCommand::Verify(args)) => run_repo_verify(args),
        Command::Sync(args) => run_sync(*args),
        Command::Notify(args) => run_notify(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => failure::report(&err, failure::kind_of(&err), json),
    }
}

/// The clap definition of the command line, with the exit status on every `--help`.
fn command() -> clap::Command {
    Cli::command().mut_subcommands(|s| s.after_help(cli::EXIT_STATUS_HELP))
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
        let spec: VersionSpec = spec.parse().map_err(tag(Kind::Usage))?;
        self.discovery()
            .resolve(&spec, self.edition, self.arch, &self.mirror)
            .map_err(tag(Kind::Resolve))
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
        let sha256 = match (&resolved.sha256, resolved.arch) {
            (Some(sha), _) => sha.clone(),
            (None, Arch::Arm64) if resolved.catalogued => "none: upstream publishes no arm64 \
                 checksum; only the OpenPGP signature will be checked"
                .into(),
            (None, _) => {
                "unknown (not in the catalog); only the OpenPGP signature will be checked".into()
            }
        };
        println!("sha256   {sha256}");
    }
    Ok(())
}

fn run_list(args: ListArgs) -> Result<()> {
    let sources = Sources::new(&args.source)?;
    let spec: Option<VersionSpec> = args
        .spec
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(tag(Kind::Usage))?;
    let mut list = sources
        .discovery()
        .list(
            spec.as_ref().unwrap_or(&VersionSpec::Latest),
            sources.edition,
        )
        .map_err(tag(Kind::Resolve))?;
    // `latest` and `esr` name one release: list exactly what resolve and build pick.
    match &spec {
        Some(VersionSpec::Latest) => list.truncate(1),
        Some(VersionSpec::Esr) => {
            let picked = sources.resolve("esr")?.version;
            list.retain(|c| c.version == picked);
        }
        _ => {}
    }
    if list.is_empty() {
        // The same with and without --json: nothing matching is a failure (exit status 1).
        let what = spec.map_or("is known".to_string(), |s| format!("matches `{s}`"));
        return Err(anyhow!("no {} release {what}", sources.edition)).map_err(tag(Kind::NoMatch));
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
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
    mm_pkg::scratch::remove_on_signals()?;
    // Checked before anything is downloaded or written.
    let source_date = source_date_env().map_err(tag(Kind::Usage))?;
    // The key is checked before anything is downloaded or written; the package's signature
    // is dated like the package.
    let signer = Signer::from_flag_or_env(args.sign_key.as_deref(), source_date.unwrap_or(0))
        .map_err(tag(Kind::Usage))?
        .map(Arc::new);
    let mut sources = Sources::new(&args.source).map_err(tag(Kind::Usage))?;
    let named = args
        .tarball
        .as_deref()
        .and_then(cli::tarball::upstream_name);
    let spec = match &args.tarball {
        Some(tarball) => {
            (sources.edition, sources.arch) = cli::tarball::edition_and_arch(
                named.as_ref(),
                (sources.edition, args.given.edition),
                (sources.arch, args.given.arch),
            )
            .map_err(tag(Kind::Usage))?;
            cli::tarball::spec_for(args.spec.as_deref(), named.as_ref(), tarball)
                .map_err(tag(Kind::Usage))?
        }
        None => args.spec.clone().unwrap_or_default(),
    };
    let resolved = sources.resolve(&spec)?;
    let release = Release {
        version: resolved.version.parse()?,
        edition: sources.edition,
        arch: sources.arch,
    };
    if let Some(tarball) = &args.tarball {
        cli::tarball::check_version(&spec, &release.version, named.as_ref(), tarball)
            .map_err(tag(Kind::Usage))?;
    }
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
            return Err(anyhow!("--sha256 {sha}: expected 64 hex digits"))
                .map_err(tag(Kind::Usage));
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
    // Refuse a cache another user could plant links in before writing anything there.
    mm_pkg::release::download::check_cache_dir(&sources.cache_dir).map_err(tag(Kind::Fetch))?;
    let trust = Trust::new(&args.keyring)?;
    let (tarball, expect) = match &args.tarball {
        Some(path) => (
            path.clone(),
            local_expectations(path, &checks).map_err(tag(Kind::Verify))?,
        ),
        None => {
            let downloader = Downloader {
                http: &sources.http,
                cache_dir: sources.cache_dir.clone(),
                offline: sources.mode == NetMode::Offline,
                trust: &trust,
            };
            let fetched = downloader
                .fetch(&release, &resolved.url, &checks)
                .map_err(tag(Kind::Fetch))?;
            (fetched.path, fetched.expect)
        }
    };
    // The build checks the bytes it packages, in its one pass over the tarball, and refuses
    // a tarball known to be another release.
    let known = KnownTarballs::load(&sources.catalog, &sources.cache_dir)?;

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
        output: absolute(&args.output)?,
        revision: args.revision.clone(),
        compression: args
            .compression
            .as_deref()
            .map(str::parse::<Compression>)
            .transpose()?,
        templates: args.templates.clone(),
        maintainer: args.maintainer.clone(),
        vendor: mm_pkg::context::checked_vendor(&args.vendor).map_err(tag(Kind::Usage))?,
        source_date,
        strict: args.strict,
        distribution: args.distribution.clone(),
        relations: cli::relations(&args.depends, &args.recommends, &args.suggests)
            .map_err(tag(Kind::Usage))?,
        signer,
    };
    let report = build_checked(
        &release,
        &tarball,
        expect,
        known,
        &trust,
        &sources.cache_dir,
        &options,
    )
    .map_err(tag(Kind::Build))?;
    let verified = report.verified.expect("a verifier was given");
    eprintln!(
        "mm-pkg: {}",
        verified.summary(&tarball.display().to_string(), checks.skip_verify)
    );
    if !report.version_in_server {
        eprintln!(
            "mm-pkg: WARNING: {} (pass --strict to refuse such a release)",
            version_missing(&release.version.to_string())
        );
    }
    let built = report.packages;
    if args.json {
        let tarball = absolute(&tarball)?;
        let json = serde_json::json!({
            "version": release.version.to_string(),
            "edition": release.edition,
            "arch": release.arch,
            "tarball_sha256": verified.sha256,
            "verified_by": cli::verified_by(&checks, &verified),
            "tarball": tarball,
            "signed_by": verified.signed_by,
            "packages": built,
            "version_in_server_binary": report.version_in_server,
            "sha256sums": options.output.join("SHA256SUMS"),
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
        println!("wrote {}", options.output.join("SHA256SUMS").display());
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

/// `path` made absolute (against the working directory), for `--json` consumers.
fn absolute(path: &std::path::Path) -> Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("resolving {}", path.display()))
}

/// `SOURCE_DATE_EPOCH` when set (reproducible builds), else now.
fn source_date_epoch() -> Result<u64> {
    match source_date_env()? {
        Some(date) => Ok(date),
        None => Ok(SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs()),
    }
}

/// `SOURCE_DATE_EPOCH`, checked, when set and not empty.
fn source_date_env() -> Result<Option<u64>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.is_empty() => mm_pkg::validate::source_date_epoch(&v).map(Some),
        _ => Ok(None),
    }
}

/// `build`, then one message to the team about it (success or failure).
fn run_build_and_tell(args: BuildArgs) -> Result<()> {
    let (webhook, policy) = args.notify.webhook()?;
    let what = format!(
        "mattermost {} ({}, {})",
        args.spec
            .as_deref()
            .or(args.tarball.as_ref().and_then(|t| t.file_name()?.to_str()))
            .unwrap_or("?"),
        args.source.edition,
        args.source.arch
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
            revision: args.revision.clone(),
            compression: args
                .compression
                .as_deref()
                .map(str::parse::<Compression>)
                .transpose()?,
            templates: args.templates.clone(),
            maintainer: args.maintainer.clone(),
            source_date: source_date_env()?,
            vendor: String::new(),
            strict: false,
            distribution: "unstable".into(),
            relations: Default::default(),
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
            let matrix = sync::plan::matrix(&plan, &args.revision, &planned_build_flags(&args));
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
        args.revision.clone(),
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
