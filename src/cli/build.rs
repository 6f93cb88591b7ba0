//! `mm-pkg build`: one release from upstream (or a local tarball) to verified packages, and
//! the packaging flags `sync` shares with it.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Result, bail};
use clap::Args;

use mm_pkg::build::{BuildOptions, build_checked};
use mm_pkg::compress::Compression;
use mm_pkg::context::Format;
use mm_pkg::notify;
use mm_pkg::release::Release;
use mm_pkg::release::archive::version_missing;
use mm_pkg::release::download::{Checks, Downloader, local_expectations};
use mm_pkg::release::known::KnownTarballs;
use mm_pkg::release::resolve::NetMode;
use mm_pkg::release::spec::ACCEPTED_FORMS;
use mm_pkg::release::verify::Trust;
use mm_pkg::sign::Signer;

use super::failure::{Kind, tag};
use super::source::{SourceArgs, Sources, TrustArgs};
use super::webhook::NotifyArgs;
use super::{absolute, source_date_env};

/// `mm-pkg build`.
#[derive(Args)]
pub struct BuildArgs {
    #[arg(
        required_unless_present = "tarball",
        help = format!(
            "Version spec: {ACCEPTED_FORMS}. Optional with --tarball when the file has \
             upstream's name (mattermost[-team]-X.Y.Z-linux-ARCH.tar.gz)"
        )
    )]
    pub spec: Option<String>,
    #[command(flatten)]
    pub source: SourceArgs,
    /// Package formats, comma-separated.
    #[arg(long, default_value = "deb,rpm", value_delimiter = ',', value_parser = ["deb", "rpm"])]
    format: Vec<String>,
    /// Output directory.
    #[arg(long, short, default_value = "dist")]
    output: PathBuf,
    /// Build from this local tarball instead of downloading.
    #[arg(long)]
    tarball: Option<PathBuf>,
    /// Expected SHA-256 of the tarball (checked in addition to the catalog): a pin that
    /// verifies the bytes on its own, so a download without a signature is accepted.
    #[arg(long, value_name = "HEX", value_parser = super::sha256)]
    sha256: Option<String>,
    #[command(flatten)]
    pub trust: TrustArgs,
    #[command(flatten)]
    pub packaging: PackagingArgs,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// TOML file of flags by long name (`revision = "2"`, `format = ["deb"]`; keys for build
    /// alone in a [build] table); flags given on the command line win, unknown keys are an
    /// error.
    #[arg(long, env = "MM_PKG_CONFIG")]
    config: Option<PathBuf>,
    /// Whether --edition / --arch were given (not defaulted): set after parsing.
    #[arg(skip)]
    pub given: super::Given,
    /// Armored OpenPGP secret key (RSA 3072+ or Ed25519) that signs the .rpm's header
    /// [default: the key in $MM_PKG_SIGN_KEY, if set; passphrase in $MM_PKG_SIGN_PASSPHRASE].
    #[arg(long)]
    sign_key: Option<PathBuf>,
    #[command(flatten)]
    pub notify: NotifyArgs,
}

/// How the packages are made (`build`, `sync`): every value is checked as it is parsed.
#[derive(Args)]
pub struct PackagingArgs {
    /// Packaging revision, used verbatim (`1`, `1~deb12u1`, `0ubuntu1~22.04`, `2.el9`):
    /// A-Z a-z 0-9 + . ~
    #[arg(long, default_value = "1", value_parser = super::revision)]
    pub revision: String,
    /// Payload compression for both formats [default: gzip for .deb, zstd for .rpm].
    #[arg(long, value_parser = ["gzip", "xz", "zstd", "none"])]
    pub compression: Option<String>,
    /// Directory of template overrides: files named like a template, at the top or in the
    /// layout `mm-pkg templates export` writes (deb/, rpm/, systemd/).
    #[arg(long)]
    pub templates: Option<PathBuf>,
    /// Maintainer and packager of the packages, `Name <email>` [default: `$DEBFULLNAME
    /// <$DEBEMAIL>` when DEBEMAIL is set, read as dch reads them, else `mm-pkg
    /// <mm-pkg@example.org>`].
    #[arg(long, env = "MM_PKG_MAINTAINER", value_parser = super::FlagOrEnv(super::maintainer))]
    pub maintainer: Option<String>,
    /// RPM `Vendor:` (who built the package); none by default, since Mattermost did not.
    #[arg(long, default_value = "")]
    pub vendor: String,
    /// Refuse a release whose bin/mattermost does not contain the version being built
    /// (otherwise a loud warning).
    #[arg(long)]
    pub strict: bool,
    /// Add a dependency to both packages (`name` or `name (>= 1.2)`); repeatable.
    #[arg(long, value_name = "RELATION", value_parser = super::depends)]
    pub depends: Vec<String>,
    /// Add a recommendation to both packages (`name` or `name (>= 1.2)`); repeatable.
    #[arg(long, value_name = "RELATION", value_parser = super::recommends)]
    pub recommends: Vec<String>,
    /// Add a suggestion to both packages (`name` or `name (>= 1.2)`); repeatable.
    #[arg(long, value_name = "RELATION", value_parser = super::suggests)]
    pub suggests: Vec<String>,
    /// Distribution of the Debian changelog entry (`bookworm`, `UNRELEASED`).
    #[arg(long, default_value = "unstable", value_parser = super::distribution)]
    pub distribution: String,
}

impl PackagingArgs {
    /// The maintainer: `--maintainer`, `MM_PKG_MAINTAINER` or the config file, else
    /// `DEBFULLNAME` and `DEBEMAIL` (as dch reads them), else [`super::DEFAULT_MAINTAINER`].
    pub fn maintainer(&self) -> Result<String> {
        if let Some(m) = &self.maintainer {
            return Ok(m.clone());
        }
        Ok(super::debian_maintainer()
            .map_err(tag(Kind::Usage))?
            .unwrap_or_else(|| super::DEFAULT_MAINTAINER.to_string()))
    }

    /// The build options these flags give for `formats` written into `output`.
    pub fn options(
        &self,
        formats: Vec<Format>,
        output: PathBuf,
        source_date: Option<u64>,
        signer: Option<Arc<Signer>>,
    ) -> Result<BuildOptions> {
        Ok(BuildOptions {
            formats,
            output,
            revision: self.revision.clone(),
            compression: self
                .compression
                .as_deref()
                .map(str::parse::<Compression>)
                .transpose()?,
            templates: self.templates.clone(),
            maintainer: self.maintainer()?,
            vendor: mm_pkg::context::checked_vendor(&self.vendor).map_err(tag(Kind::Usage))?,
            source_date,
            strict: self.strict,
            distribution: self.distribution.clone(),
            relations: super::relations(&self.depends, &self.recommends, &self.suggests)
                .map_err(tag(Kind::Usage))?,
            signer,
        })
    }
}

/// The formats of `--format`, each once, in the order given.
pub fn formats(list: &[String]) -> Result<Vec<Format>> {
    let mut formats = Vec::new();
    for f in list {
        let format = match f.as_str() {
            "deb" => Format::Deb,
            "rpm" => Format::Rpm,
            other => bail!("unknown format `{other}`: use deb, rpm or deb,rpm"),
        };
        if !formats.contains(&format) {
            formats.push(format);
        }
    }
    Ok(formats)
}

/// `build`, then one message to the team about it (success or failure).
pub fn run_build_and_tell(args: BuildArgs) -> Result<()> {
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

/// `mm-pkg build`: resolves, fetches and verifies one release, then packages it.
fn run_build(args: BuildArgs) -> Result<notify::Row> {
    if let Some(tarball) = &args.tarball {
        super::tarball::check_exists(tarball).map_err(tag(Kind::Usage))?;
    }
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
        .and_then(super::tarball::upstream_name);
    let spec = match &args.tarball {
        Some(tarball) => {
            (sources.edition, sources.arch) = super::tarball::edition_and_arch(
                named.as_ref(),
                (sources.edition, args.given.edition),
                (sources.arch, args.given.arch),
            )
            .map_err(tag(Kind::Usage))?;
            super::tarball::spec_for(args.spec.as_deref(), named.as_ref(), tarball)
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
        super::tarball::check_version(&spec, &release.version, named.as_ref(), tarball)
            .map_err(tag(Kind::Usage))?;
    }
    let mut checks = Checks {
        sha256: Vec::new(),
        allow_unsigned: args.trust.allow_unsigned,
        skip_verify: args.trust.insecure_skip_verify,
    }
    .with_catalog(resolved.sha256.as_deref());
    if let Some(sha) = &args.sha256 {
        checks = checks.with_pin("--sha256", sha);
    }
    if checks.skip_verify {
        eprintln!(
            "mm-pkg: WARNING: --insecure-skip-verify: NOT checking the SHA-256 (catalog, --sha256) or the \
             OpenPGP signature of {release}; these packages may contain anything"
        );
    }
    // Refuse a cache another user could plant links in before writing anything there.
    mm_pkg::release::download::check_cache_dir(&sources.cache_dir).map_err(tag(Kind::Fetch))?;
    let trust = Trust::new(&args.trust.keyring)?;
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

    let options = args.packaging.options(
        formats(&args.format)?,
        absolute(&args.output)?,
        source_date,
        signer,
    )?;
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
    let verified_by = checks.verified_by(&verified);
    if args.json {
        let tarball = absolute(&tarball)?;
        let json = serde_json::json!({
            "version": release.version.to_string(),
            "edition": release.edition,
            "arch": release.arch,
            "tarball_sha256": verified.sha256,
            "verified_by": verified_by,
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
        verified_by: Some(verified_by.iter().map(|c| c.to_string()).collect()),
    })
}
