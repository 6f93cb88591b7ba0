//! Where releases come from: the flags every command that finds releases shares (upstream,
//! cache, network, which signatures count), and `resolve` and `list`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, anyhow};
use clap::Args;

use mm_pkg::release::catalog::Catalog;
use mm_pkg::release::download::default_cache_dir;
use mm_pkg::release::http::Http;
use mm_pkg::release::index::DEFAULT_INDEX_URL;
use mm_pkg::release::resolve::{Discovery, NetMode, Resolved};
use mm_pkg::release::spec::{ACCEPTED_FORMS, VersionSpec};
use mm_pkg::release::{Arch, DEFAULT_MIRROR, Edition};

use super::failure::{Kind, tag};

/// How upstream is reached: mirror, release index, cache and network (`build`, `resolve`,
/// `list`, `sync`).
#[derive(Args)]
pub struct NetArgs {
    /// Download server.
    #[arg(long, default_value = DEFAULT_MIRROR)]
    pub mirror: String,
    /// Releases API to discover versions newer than the catalog (mm-pkg appends per_page and page).
    #[arg(long, default_value = DEFAULT_INDEX_URL)]
    pub index_url: String,
    /// Download and index cache [default: $XDG_CACHE_HOME/mm-pkg].
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// No network at all: the catalog and the cache only.
    #[arg(long, conflicts_with = "online")]
    pub offline: bool,
    /// Fail when the release index cannot be read (instead of using the catalog alone).
    #[arg(long)]
    pub online: bool,
    /// Seconds before a connection attempt or a stalled read is given up (then retried).
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
}

/// Which release is meant, and where it is found.
#[derive(Args)]
pub struct SourceArgs {
    /// Server edition.
    #[arg(long, default_value = "enterprise", value_parser = ["enterprise", "team"])]
    pub edition: String,
    /// Architecture (`x86_64` and `aarch64` name the same).
    #[arg(long, default_value = "amd64", value_parser = super::arch())]
    pub arch: String,
    #[command(flatten)]
    pub net: NetArgs,
}

/// Which tarballs count as Mattermost's (`build`, `sync`).
#[derive(Args)]
pub struct TrustArgs {
    /// Armored OpenPGP keys to trust besides Mattermost's (mirrors that re-sign); repeatable.
    #[arg(long)]
    pub keyring: Vec<PathBuf>,
    /// Build a release that has no signature.
    #[arg(long)]
    pub allow_unsigned: bool,
    /// Check neither SHA-256 nor signature (deliberately patched releases).
    #[arg(long)]
    pub insecure_skip_verify: bool,
}

/// `mm-pkg resolve`.
#[derive(Args)]
pub struct ResolveArgs {
    #[arg(help = format!("Version spec: {ACCEPTED_FORMS}"))]
    spec: String,
    #[command(flatten)]
    pub source: SourceArgs,
    /// Print one JSON object (version, edition, arch, url, sha256, esr, catalogued).
    #[arg(long)]
    pub json: bool,
}

/// `mm-pkg list`.
#[derive(Args)]
pub struct ListArgs {
    #[arg(help = format!(
        "Version spec: {ACCEPTED_FORMS}. A range lists its releases; latest and esr list \
         the one release they pick; without SPEC every release is listed"
    ))]
    spec: Option<String>,
    #[command(flatten)]
    pub source: SourceArgs,
    /// Print a JSON array.
    #[arg(long)]
    pub json: bool,
}

/// Everything discovery needs, built from the shared flags.
pub struct Sources {
    pub catalog: Catalog,
    pub http: Http,
    pub edition: Edition,
    pub arch: Arch,
    pub mirror: String,
    pub index_url: String,
    pub cache_dir: PathBuf,
    pub mode: NetMode,
}

impl Sources {
    /// From `build`'s, `resolve`'s and `list`'s flags.
    pub fn new(args: &SourceArgs) -> Result<Self> {
        Self::with(&args.edition, &args.arch, &args.net)
    }

    /// For `edition` and `arch` (the defaults of commands that span several), through `net`.
    pub fn with(edition: &str, arch: &str, net: &NetArgs) -> Result<Self> {
        Ok(Sources {
            catalog: Catalog::embedded()?,
            http: Http::new(Duration::from_secs(net.timeout.max(1)))?,
            edition: edition.parse()?,
            arch: arch.parse()?,
            mirror: net.mirror.clone(),
            index_url: net.index_url.clone(),
            cache_dir: net.cache_dir.clone().unwrap_or_else(default_cache_dir),
            mode: match (net.offline, net.online) {
                (true, _) => NetMode::Offline,
                (_, true) => NetMode::Online,
                _ => NetMode::Auto,
            },
        })
    }

    /// Discovery over the catalog, the index and the cache.
    pub fn discovery(&self) -> Discovery<'_> {
        Discovery {
            catalog: &self.catalog,
            http: &self.http,
            index_url: self.index_url.clone(),
            cache_dir: self.cache_dir.clone(),
            mode: self.mode,
            token: std::env::var("GITHUB_TOKEN").ok().filter(|t| !t.is_empty()),
        }
    }

    /// The release `spec` names for this edition and architecture.
    pub fn resolve(&self, spec: &str) -> Result<Resolved> {
        let spec: VersionSpec = spec.parse().map_err(tag(Kind::Usage))?;
        self.discovery()
            .resolve(&spec, self.edition, self.arch, &self.mirror)
            .map_err(tag(Kind::Resolve))
    }
}

/// `mm-pkg resolve`.
pub fn run_resolve(args: ResolveArgs) -> Result<()> {
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

/// `mm-pkg list`.
pub fn run_list(args: ListArgs) -> Result<()> {
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
