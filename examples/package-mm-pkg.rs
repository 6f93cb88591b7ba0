//! Packages mm-pkg itself: a static `mm-pkg` binary (from `scripts/static-build`) becomes
//! `mm-pkg_VERSION-REV_ARCH.deb` and `mm-pkg-VERSION-REV.ARCH.rpm`, written by mm-pkg's own
//! writers (the same `DebWriter` and `RpmWriter` that package Mattermost), with the man pages,
//! shell completions, licences and the `sync` examples (unit, timer, cron file, config).
//!
//! ```sh
//! cargo run --example package-mm-pkg -- --binary target/static/x86_64-unknown-linux-musl/release/mm-pkg \
//!     --arch amd64 --output dist
//! ```
//!
//! The man pages and completions are printed by running a binary of the same version: the
//! packaged one, or `--docs-from` when the packaged one cannot run here (cross-built). The
//! release workflow (.github/workflows/release.yml) runs this on each architecture's runner.

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::Parser;

use mm_pkg::build::default_compression;
use mm_pkg::context::Format;
use mm_pkg::deb::{ControlFiles, DebWriter};
use mm_pkg::output::{BuiltPackage, PendingFile, scratch_file, write_sha256sums};
use mm_pkg::package::{Entry, EntrySink, add_bytes};
use mm_pkg::rpm::spec::SpecHeader;
use mm_pkg::rpm::{RpmMeta, RpmWriter, Scriptlets};

/// The package's name, its command's name.
pub const NAME: &str = "mm-pkg";
/// One line saying what it is.
pub const SUMMARY: &str = "Build Debian and RPM packages of Mattermost server releases";
/// Where the `sync` examples are installed.
pub const EXAMPLES_DIR: &str = "/usr/share/doc/mm-pkg/examples";

/// The examples of running `mm-pkg sync` on a schedule, as installed below [`EXAMPLES_DIR`].
pub const SYNC_EXAMPLES: &[(&str, &str)] = &[
    (
        "mm-pkg-sync.service",
        include_str!("sync/mm-pkg-sync.service"),
    ),
    ("mm-pkg-sync.timer", include_str!("sync/mm-pkg-sync.timer")),
    ("mm-pkg.cron", include_str!("sync/mm-pkg.cron")),
    ("sync.toml", include_str!("sync/sync.toml")),
    ("sync.env", include_str!("sync/sync.env")),
    ("github-actions.yml", include_str!("github-actions.yml")),
    ("gitlab-ci.yml", include_str!("gitlab-ci.yml")),
];

/// Package mm-pkg itself as a .deb and an .rpm.
#[derive(Parser, Debug, Clone)]
pub struct Options {
    /// The static mm-pkg binary to package.
    #[arg(long)]
    pub binary: PathBuf,
    /// Its architecture: amd64 or arm64.
    #[arg(long, value_parser = ["amd64", "arm64"])]
    pub arch: String,
    /// A binary of the same version that runs here, to print the man pages and completions
    /// [default: the packaged binary].
    #[arg(long)]
    pub docs_from: Option<PathBuf>,
    /// Output directory (created if missing); SHA256SUMS there lists the packages.
    #[arg(long)]
    pub output: PathBuf,
    /// Packaging revision.
    #[arg(long, default_value = "1")]
    pub revision: String,
    /// Maintainer, `Name <email>`.
    #[arg(long, default_value = "mm-pkg maintainers <mm-pkg@example.org>")]
    pub maintainer: String,
    /// Date of every file and of the changelogs, seconds since 1970
    /// [default: $SOURCE_DATE_EPOCH, else the binary's modification time].
    #[arg(long)]
    pub date: Option<u64>,
}

/// One file of the package: install path, mode, bytes, and whether RPM marks it `%doc`.
#[derive(Clone)]
struct File {
    path: String,
    mode: u32,
    bytes: Vec<u8>,
    doc: bool,
}

impl File {
    fn new(path: impl Into<String>, mode: u32, bytes: impl Into<Vec<u8>>) -> Self {
        File {
            path: path.into(),
            mode,
            bytes: bytes.into(),
            doc: false,
        }
    }

    fn doc(mut self) -> Self {
        self.doc = true;
        self
    }
}

/// Writes both packages into `options.output` and adds them to its SHA256SUMS.
pub fn package(options: &Options) -> Result<Vec<BuiltPackage>> {
    mm_pkg::validate::maintainer(&options.maintainer)?;
    mm_pkg::validate::revision(&options.revision)?;
    let binary = fs::read(&options.binary)
        .with_context(|| format!("reading {}", options.binary.display()))?;
    check_elf(&binary, &options.arch, &options.binary)?;
    let date = match options.date {
        Some(date) => date,
        None => match std::env::var("SOURCE_DATE_EPOCH") {
            Ok(v) if !v.is_empty() => mm_pkg::validate::source_date_epoch(&v)?,
            _ => fs::metadata(&options.binary)?
                .modified()?
                .duration_since(std::time::UNIX_EPOCH)?
                .as_secs(),
        },
    };
    let docs_from = options.docs_from.as_deref().unwrap_or(&options.binary);
    let version = env!("CARGO_PKG_VERSION");
    let said = run(docs_from, &["--version"])?;
    if String::from_utf8_lossy(&said).trim() != format!("{NAME} {version}") {
        bail!(
            "{} says it is `{}`, not {NAME} {version}: package the binary built from this tree",
            docs_from.display(),
            String::from_utf8_lossy(&said).trim()
        );
    }
    fs::create_dir_all(&options.output)
        .with_context(|| format!("creating {}", options.output.display()))?;

    let mut common = vec![File::new(format!("/usr/bin/{NAME}"), 0o755, binary)];
    common.extend(man_pages(docs_from, &options.output)?);
    for (shell, path) in [
        (
            "bash",
            format!("/usr/share/bash-completion/completions/{NAME}"),
        ),
        (
            "fish",
            format!("/usr/share/fish/vendor_completions.d/{NAME}.fish"),
        ),
    ] {
        common.push(File::new(
            path,
            0o644,
            run(docs_from, &["completions", shell])?,
        ));
    }
    let zsh = run(docs_from, &["completions", "zsh"])?;
    for (name, text) in SYNC_EXAMPLES {
        common.push(File::new(format!("{EXAMPLES_DIR}/{name}"), 0o644, *text).doc());
    }
    common.push(
        File::new(
            format!("/usr/share/doc/{NAME}/README.md"),
            0o644,
            include_str!("../README.md"),
        )
        .doc(),
    );

    let full_version = format!("{version}-{}", options.revision);
    let mut built = Vec::new();

    // Debian: zsh's vendor directory, the copyright file, a changelog, lintian overrides.
    let mut deb_files = common.clone();
    deb_files.push(File::new(
        format!("/usr/share/zsh/vendor-completions/_{NAME}"),
        0o644,
        zsh.clone(),
    ));
    let doc = format!("/usr/share/doc/{NAME}");
    deb_files.push(File::new(format!("{doc}/copyright"), 0o644, copyright()));
    let changelog = format!(
        "{NAME} ({full_version}) unstable; urgency=medium\n\n  * {NAME} {version}.\n\n -- {}  {}\n",
        options.maintainer,
        rfc2822(date)?
    );
    deb_files.push(File::new(
        format!("{doc}/changelog.Debian.gz"),
        0o644,
        gzip_best(changelog.as_bytes())?,
    ));
    deb_files.push(File::new(
        format!("/usr/share/lintian/overrides/{NAME}"),
        0o644,
        LINTIAN_OVERRIDES,
    ));
    let control = format!(
        "Package: {NAME}\nVersion: {full_version}\nArchitecture: {}\nMaintainer: {}\n\
         Section: devel\nPriority: optional\nDescription: {}\n{}",
        options.arch,
        options.maintainer,
        SUMMARY,
        DESCRIPTION
            .lines()
            .map(|l| if l.is_empty() {
                " .\n".to_string()
            } else {
                format!(" {l}\n")
            })
            .collect::<String>()
    );
    let scratch = scratch_file(&options.output)?;
    let mut deb = DebWriter::new(scratch.path(), default_compression(Format::Deb))?;
    feed(&mut deb, &deb_files, date)?;
    let name = format!("{NAME}_{full_version}_{}.deb", options.arch);
    let mut file = PendingFile::create(&options.output, &name, Format::Deb)?;
    file.write(deb.finish(&ControlFiles {
        control,
        scripts: Vec::new(),
        mtime: date,
    })?)?;
    built.push(file.keep()?);

    // RPM: zsh's site-functions, %doc and %license (the writer adds the licence file).
    let rpm_arch = match options.arch.as_str() {
        "amd64" => "x86_64",
        _ => "aarch64",
    };
    let mut rpm_files = common;
    rpm_files.push(File::new(
        format!("/usr/share/zsh/site-functions/_{NAME}"),
        0o644,
        zsh,
    ));
    let spec = SpecHeader::parse(&format!(
        "Name: {NAME}\nSummary: {SUMMARY}\nLicense: MIT OR Apache-2.0\nPackager: {}\n\n\
         %description\n{DESCRIPTION}\n%changelog\n* {} {} - {full_version}\n- {NAME} {version}.\n",
        options.maintainer,
        rpm_date(date)?,
        options.maintainer,
    ))?;
    let scratch = scratch_file(&options.output)?;
    let mut rpm = RpmWriter::new(scratch.path(), default_compression(Format::Rpm))?;
    rpm.begin(&Entry::dir(doc.clone(), 0o755).at(date))?;
    rpm.end()?;
    rpm.begin(&Entry::dir(EXAMPLES_DIR, 0o755).at(date))?;
    rpm.end()?;
    feed(&mut rpm, &rpm_files, date)?;
    let name = format!("{NAME}-{full_version}.{rpm_arch}.rpm");
    let mut file = PendingFile::create(&options.output, &name, Format::Rpm)?;
    file.write(rpm.finish(&RpmMeta {
        spec,
        version: version.to_string(),
        release: options.revision.clone(),
        arch: rpm_arch.to_string(),
        scripts: Scriptlets::default(),
        license_text: license_text(),
        build_time: date,
    })?)?;
    built.push(file.keep()?);
    write_sha256sums(&options.output, &built)?;
    Ok(built)
}

/// Sends `files` (dated `date`) to `sink`.
fn feed(sink: &mut dyn EntrySink, files: &[File], date: u64) -> Result<()> {
    for f in files {
        let mut entry = Entry::file(f.path.clone(), f.bytes.len() as u64, f.mode).at(date);
        entry.doc = f.doc;
        add_bytes(&mut [sink], &entry, &f.bytes)?;
    }
    Ok(())
}

/// The man pages `mm-pkg man` writes, gzipped into /usr/share/man/man1.
fn man_pages(binary: &Path, scratch: &Path) -> Result<Vec<File>> {
    let dir = tempfile::Builder::new()
        .prefix(".mm-pkg-man-")
        .tempdir_in(scratch)
        .context("creating a directory for the man pages")?;
    run(binary, &[OsStr::new("man"), dir.path().as_os_str()])?;
    let mut pages = Vec::new();
    let mut names: Vec<PathBuf> = fs::read_dir(dir.path())?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    names.sort();
    for path in names {
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let text = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        pages.push(
            File::new(
                format!("/usr/share/man/man1/{name}.gz"),
                0o644,
                gzip_best(&text)?,
            )
            .doc(),
        );
    }
    if pages.is_empty() {
        bail!("{} man wrote no page", binary.display());
    }
    Ok(pages)
}

/// Runs `binary` with `args`; its stdout.
fn run(binary: &Path, args: &[impl AsRef<OsStr>]) -> Result<Vec<u8>> {
    let out = Command::new(binary)
        .args(args)
        .env_clear()
        .output()
        .with_context(|| {
            format!(
                "running {} (pass --docs-from for a binary that runs here)",
                binary.display()
            )
        })?;
    if !out.status.success() {
        bail!(
            "{} failed: {}",
            binary.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out.stdout)
}

/// Refuses a file that is no ELF executable of `arch`.
fn check_elf(bytes: &[u8], arch: &str, path: &Path) -> Result<()> {
    let machine = match arch {
        "amd64" => 62u16,
        _ => 183,
    };
    if bytes.len() < 20 || &bytes[..4] != b"\x7fELF" {
        bail!("{} is not an ELF executable", path.display());
    }
    if u16::from_le_bytes([bytes[18], bytes[19]]) != machine {
        bail!("{} is not an {arch} executable", path.display());
    }
    Ok(())
}

/// gzip -9n: no name, no time stamp.
fn gzip_best(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(bytes)?;
    Ok(gz.finish()?)
}

fn datetime(date: u64) -> Result<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp(i64::try_from(date)?, 0)
        .with_context(|| format!("date {date} is out of range"))
}

/// `Thu, 04 Dec 2025 12:00:00 +0000`.
fn rfc2822(date: u64) -> Result<String> {
    Ok(datetime(date)?
        .format("%a, %d %b %Y %H:%M:%S +0000")
        .to_string())
}

/// `Thu Dec 04 2025`.
fn rpm_date(date: u64) -> Result<String> {
    Ok(datetime(date)?.format("%a %b %d %Y").to_string())
}

/// The long description (Debian's extended description, RPM's %description).
const DESCRIPTION: &str = "\
mm-pkg turns an upstream Mattermost server release into a Debian package
and an RPM package that install a working Mattermost and keep it working
across upgrades, downgrades and removals. It downloads a release once,
proves it is Mattermost's own bytes, and can keep signed apt and yum
repositories current (mm-pkg sync) and tell a team about new releases.

The binary is statically linked: it needs nothing else installed.";

/// mm-pkg's own licence, as the RPM's `%license` file.
fn license_text() -> String {
    format!(
        "mm-pkg is licensed under either of the MIT licence or the Apache License 2.0, at\n\
         your option.\n\n{}\n\n{}",
        include_str!("../LICENSE-MIT"),
        include_str!("../LICENSE-APACHE")
    )
}

/// Debian's machine-readable copyright file.
fn copyright() -> String {
    let mit: String = include_str!("../LICENSE-MIT")
        .lines()
        .map(|l| {
            if l.trim().is_empty() {
                " .\n".to_string()
            } else {
                format!(" {l}\n")
            }
        })
        .collect();
    format!(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\
         Upstream-Name: mm-pkg\n\n\
         Files: *\n\
         Copyright: mm-pkg authors\n\
         License: MIT or Apache-2.0\n\
         Comment: /usr/bin/mm-pkg is statically linked with the Rust crates listed in\n \
         mm-pkg's Cargo.lock and with the C libraries liblzma and zstd, each under its own\n \
         licence (MIT, Apache-2.0, BSD-style, ISC, 0BSD).\n\n\
         License: MIT\n{mit}\n\
         License: Apache-2.0\n \
         On Debian systems the full text of the Apache License 2.0 is in\n \
         /usr/share/common-licenses/Apache-2.0.\n"
    )
}

/// Why lintian's remaining tags are deliberate.
const LINTIAN_OVERRIDES: &str = "\
# One static binary that runs on any Linux of its architecture with nothing else installed,
# the point of this package (and of the release's tarball). It is a static PIE: an ELF of
# type DYN with no DT_NEEDED, which lintian takes for a shared library without its libc;
# and it carries what it needs, zlib-rs (a Rust port of zlib, behind flate2) among it.
mm-pkg: shared-library-lacks-prerequisites [usr/bin/mm-pkg]
mm-pkg: embedded-library zlib [usr/bin/mm-pkg]
# Built outside Debian's archive: there is no ITP bug for the changelog to close.
mm-pkg: initial-upload-closes-no-bugs
";

fn main() -> std::process::ExitCode {
    let options = Options::parse();
    match package(&options) {
        Ok(built) => {
            for p in built {
                println!("wrote {} (sha256 {})", p.path.display(), p.sha256);
            }
            std::process::ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("package-mm-pkg: error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
