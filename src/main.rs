//! The `mm-pkg` command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

use mm_pkg::build::{BuildOptions, build};
use mm_pkg::compress::Compression;
use mm_pkg::context::Format;
use mm_pkg::release::{Arch, DEFAULT_MIRROR, Edition, Release, Version, source};

/// Build Debian and RPM packages of a Mattermost server release.
#[derive(Parser)]
#[command(name = "mm-pkg", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Download (or take) one release and write its packages.
    Build(BuildArgs),
}

#[derive(clap::Args)]
struct BuildArgs {
    /// Release version: X.Y.Z or vX.Y.Z.
    version: String,
    /// Server edition.
    #[arg(long, default_value = "enterprise", value_parser = ["enterprise", "team"])]
    edition: String,
    /// Architecture.
    #[arg(long, default_value = "amd64", value_parser = ["amd64", "arm64"])]
    arch: String,
    /// Package formats, comma-separated.
    #[arg(long, default_value = "deb,rpm", value_delimiter = ',', value_parser = ["deb", "rpm"])]
    format: Vec<String>,
    /// Output directory.
    #[arg(long, short, default_value = "dist")]
    output: PathBuf,
    /// Build from this local tarball instead of downloading.
    #[arg(long)]
    tarball: Option<PathBuf>,
    /// Download server.
    #[arg(long, default_value = DEFAULT_MIRROR)]
    mirror: String,
    /// Download cache [default: $XDG_CACHE_HOME/mm-pkg].
    #[arg(long)]
    cache_dir: Option<PathBuf>,
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
    /// Print the result as one JSON object.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Build(args) => run_build(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("mm-pkg: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_build(args: BuildArgs) -> Result<()> {
    let release = Release {
        version: args.version.parse::<Version>()?,
        edition: args.edition.parse::<Edition>()?,
        arch: args.arch.parse::<Arch>()?,
    };
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
    let tarball = match &args.tarball {
        Some(path) => path.clone(),
        None => {
            let cache = args
                .cache_dir
                .clone()
                .unwrap_or_else(source::default_cache_dir);
            source::download(&release, &args.mirror, &cache)?
        }
    };
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
        source_date: source_date_epoch()?,
    };
    let built = build(&release, &tarball, &options)?;
    if args.json {
        let json = serde_json::json!({
            "version": release.version.to_string(),
            "edition": release.edition,
            "arch": release.arch,
            "tarball": tarball,
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
