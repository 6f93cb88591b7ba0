//! The build pipeline: one pass over the release feeds every requested package writer.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use flate2::write::GzEncoder;

use crate::compress::Compression;
use crate::context::{Format, TemplateContext};
use crate::deb::{ControlFiles, DebWriter};
use crate::layout::Layout;
use crate::output::{Assembled, BuiltPackage, PendingFile, scratch_file, write_sha256sums};
use crate::package::{EntrySink, ThreadedSink, add_bytes, add_entry};
use crate::relations::ExtraRelations;
use crate::release::archive::{EntryKind, Expected, ReleaseEntry, read_release};
use crate::release::known::{self, KnownTarballs};
use crate::release::verify::{Expectations, StreamVerifier, Trust, Verified, VerifyingReader};
use crate::release::{Edition, Release};
use crate::rpm::spec::SpecHeader;
use crate::rpm::{RpmMeta, RpmWriter, Scriptlets};
use crate::scratch::OutputDir;
use crate::sign::Signer;
use crate::templates::Templates;
use crate::validate;

/// How to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Formats to write, each once.
    pub formats: Vec<Format>,
    /// Output directory (created if missing).
    pub output: PathBuf,
    /// Packaging revision (`1`, `1~deb12u1`), checked by [`crate::validate::revision`].
    pub revision: String,
    /// Payload compression; `None` picks each format's default.
    pub compression: Option<Compression>,
    /// Directory of template overrides.
    pub templates: Option<PathBuf>,
    /// Maintainer / packager, `Name <email>`.
    pub maintainer: String,
    /// RPM `Vendor:`; empty for none.
    pub vendor: String,
    /// SOURCE_DATE_EPOCH: when set, the time stamp of every file and date in the packages.
    /// When not, files keep the release's own time stamps and every other date (generated
    /// files, changelog, build time, signatures) is the release's newest time stamp, so two
    /// builds of one tarball are byte-identical either way.
    pub source_date: Option<u64>,
    /// Refuse a release whose `bin/mattermost` does not contain the version being built.
    pub strict: bool,
    /// Debian changelog distribution (`unstable`).
    pub distribution: String,
    /// Extra relations for both formats.
    pub relations: ExtraRelations,
    /// Key that signs the .rpm's header (`--sign-key`); the .deb is never signed itself.
    pub signer: Option<Arc<Signer>>,
}

/// What a build wrote, and what it learnt about the release.
#[derive(Debug)]
pub struct BuildReport {
    /// The packages, under their final names.
    pub packages: Vec<BuiltPackage>,
    /// `bin/mattermost` contains the version string being packaged (see docs/packagers.md).
    pub version_in_server: bool,
    /// What verified the bytes the build read, when a verifier was given.
    pub verified: Option<Verified>,
}

/// Default codec of each format (see docs/performance.md: the fastest one every supported release reads).
pub fn default_compression(format: Format) -> Compression {
    match format {
        Format::Deb => Compression::Gzip,
        Format::Rpm => Compression::Zstd,
    }
}

/// Final file name of `format`'s package for `release`.
pub fn package_file_name(format: Format, context: &TemplateContext) -> String {
    match format {
        Format::Deb => format!(
            "{}_{}_{}.deb",
            context.package, context.full_version, context.deb_arch
        ),
        Format::Rpm => format!(
            "{}-{}.{}.rpm",
            context.package, context.full_version, context.rpm_arch
        ),
    }
}

/// Builds the requested packages of `release` from the tarball at `tarball`, reading it once.
///
/// Nothing appears under a package's final name unless every package was built.
pub fn build(
    release: &Release,
    tarball: &Path,
    options: &BuildOptions,
) -> Result<Vec<BuiltPackage>> {
    build_verified(release, tarball, options, None).map(|report| report.packages)
}

/// What `mm-pkg build` and `mm-pkg sync` both do: builds `release` from `tarball`, checking
/// the very bytes the build reads against `expect` (hashes, signature, trusted by `trust`)
/// and refusing a tarball `known` as another release. A tarball that passed any check, whose
/// server binary names the release and that is not in the record yet is added to the record
/// of verified tarballs in `cache_dir`.
pub fn build_checked(
    release: &Release,
    tarball: &Path,
    expect: Expectations,
    known: KnownTarballs,
    trust: &Trust,
    cache_dir: &Path,
    options: &BuildOptions,
) -> Result<BuildReport> {
    let expect = Expectations {
        identity: Some((release.clone(), known)),
        ..expect
    };
    let verifier = StreamVerifier::new(&expect, trust)?;
    let report = build_verified(release, tarball, options, Some(verifier))?;
    let verified = report.verified.as_ref().expect("a verifier was given");
    let recorded = expect
        .identity
        .as_ref()
        .is_some_and(|(_, known)| known.knows(release, &verified.sha256));
    // A tarball whose server binary does not name the release is most likely another
    // release replayed under this name: recording it would make the genuine release look
    // like a replay of this one.
    if !verified.verified_by.is_empty()
        && report.version_in_server
        && !recorded
        && let Err(err) = known::record(cache_dir, release, &verified.sha256)
    {
        eprintln!("mm-pkg: warning: cannot record the verified tarball: {err:#}");
    }
    Ok(report)
}

/// Like [`build`], and `verifier` checks the very bytes the build reads, in the same pass:
/// the packages are kept (renamed to their final names) only when its verdict is good. The
/// report also says what was learnt about the release.
pub fn build_verified(
    release: &Release,
    tarball: &Path,
    options: &BuildOptions,
    verifier: Option<StreamVerifier>,
) -> Result<BuildReport> {
    if options.formats.is_empty() {
        bail!("no package format requested");
    }
    let templates = Templates::load(options.templates.as_deref())?;
    let mut layout = Layout::new();
    let mut context = TemplateContext::new(
        release,
        &options.revision,
        &options.maintainer,
        options.source_date.unwrap_or(0),
        layout.template_data(),
    );
    context.vendor = options.vendor.clone();
    context.distribution = options.distribution.clone();
    context.relations = options.relations.clone();
    validate::template_data(&context)?;
    let input = File::open(tarball)
        .with_context(|| format!("opening release tarball {}", tarball.display()))?;
    // Held to the end: no other build removes this one's temporary files meanwhile.
    let _output_dir = OutputDir::open(&options.output)?;

    let codec = |format| {
        options
            .compression
            .unwrap_or_else(|| default_compression(format))
    };
    // Each writer stages its compressed payload in a scratch file beside the outputs (its
    // open handle keeps the bytes; the name goes when the scratch file is dropped).
    let wants = |format| options.formats.contains(&format);
    let deb_scratch = wants(Format::Deb)
        .then(|| scratch_file(&options.output))
        .transpose()?;
    let rpm_scratch = wants(Format::Rpm)
        .then(|| scratch_file(&options.output))
        .transpose()?;
    let mut deb = deb_scratch
        .as_ref()
        .map(|s| DebWriter::new(s.path(), codec(Format::Deb)))
        .transpose()?
        .map(|w| ThreadedSink::spawn("mm-pkg-deb", w))
        .transpose()?;
    let mut rpm = rpm_scratch
        .as_ref()
        .map(|s| RpmWriter::new(s.path(), codec(Format::Rpm)))
        .transpose()?
        .map(|w| match &options.signer {
            Some(signer) => w.with_signer(signer.clone()),
            None => w,
        })
        .map(|w| ThreadedSink::spawn("mm-pkg-rpm", w))
        .transpose()?;

    let mut licenses = LicenseFinder::new(release.edition);
    let expected = Expected {
        version: release.version.to_string(),
        arch: release.arch,
        require_version: options.strict,
    };
    let mut input = VerifyingReader::new(input, verifier);
    let mut newest = 0;
    let read = read_release(&mut input, &expected, |entry, data| {
        let mut sinks = sinks(&mut deb, &mut rpm);
        let time = match options.source_date {
            Some(date) => date,
            None => release_time(entry)?,
        };
        newest = newest.max(time);
        let mut mapped: Vec<_> = layout.map(entry)?.into_iter().map(|e| e.at(time)).collect();
        let Some(last) = mapped.pop() else {
            return Ok(());
        };
        for parent in &mapped {
            add_bytes(&mut sinks, parent, &[])?;
        }
        licenses.refuse_other_edition(&entry.path)?;
        if licenses.wants(entry)? {
            let mut text = Vec::new();
            data.read_to_end(&mut text)?;
            add_bytes(&mut sinks, &last, &text)?;
            licenses.found(text);
            Ok(())
        } else {
            add_entry(&mut sinks, &last, data)
        }
    })
    .with_context(|| format!("reading {}", tarball.display()));
    // The verdict on the bytes just read decides first: bytes that fail verification are
    // reported as such even when they also fail to unpack.
    let verified = input.finish(&tarball.display().to_string())?;
    let summary = read?;

    context.set_date(options.source_date.unwrap_or(newest));
    context.layout = layout.template_data();
    context.set_license_text(licenses.take()?);
    validate::template_data(&context)?;
    let unit = templates.render("mattermost.service", &context)?;
    let snapshot = templates.render("config-snapshot", &context)?;
    let env_file = templates.render("mattermost.env", &context)?;
    let mmctl = templates.render("mmctl", &context)?;
    let generated = crate::layout::Generated {
        version: &context.version,
        full_version: &context.full_version,
        package: &context.package,
        unit: &unit,
        snapshot_script: &snapshot,
        env_file: &env_file,
        mmctl_wrapper: &mmctl,
    };
    for (entry, bytes) in layout.finish(&generated) {
        let entry = entry.at(context.date);
        add_bytes(&mut sinks(&mut deb, &mut rpm), &entry, &bytes)?;
    }

    // Both packages are assembled at once, each on its own thread.
    let (deb_file, rpm_file) = std::thread::scope(|scope| {
        let (context, templates) = (&context, &templates);
        let deb = deb.map(|sink| {
            scope.spawn(move || {
                assemble(Format::Deb, context, &options.output, |ctx| {
                    finish_deb(sink.join()?, templates, ctx)
                })
            })
        });
        let rpm = rpm.map(|sink| {
            scope.spawn(move || {
                assemble(Format::Rpm, context, &options.output, |ctx| {
                    finish_rpm(sink.join()?, templates, ctx)
                })
            })
        });
        let join = |h: std::thread::ScopedJoinHandle<'_, Result<PendingFile>>| {
            h.join()
                .map_err(|_| anyhow::anyhow!("a package writer thread panicked"))?
        };
        (deb.map(join), rpm.map(join))
    });
    let mut pending = Vec::new();
    for file in [deb_file, rpm_file].into_iter().flatten() {
        pending.push(file?);
    }
    drop((deb_scratch, rpm_scratch));
    let built = pending
        .into_iter()
        .map(PendingFile::keep)
        .collect::<Result<Vec<_>>>()?;
    write_sha256sums(&options.output, &built)?;
    Ok(BuildReport {
        packages: built,
        version_in_server: summary.version_in_server,
        verified,
    })
}

type DebSink = ThreadedSink<DebWriter>;
type RpmSink = ThreadedSink<RpmWriter>;

fn sinks<'a>(
    deb: &'a mut Option<DebSink>,
    rpm: &'a mut Option<RpmSink>,
) -> Vec<&'a mut dyn EntrySink> {
    let mut sinks: Vec<&mut dyn EntrySink> = Vec::new();
    if let Some(d) = deb {
        sinks.push(d);
    }
    if let Some(r) = rpm {
        sinks.push(r);
    }
    sinks
}

/// Writes `format`'s package under a temporary name in `output` with `job`.
fn assemble(
    format: Format,
    context: &TemplateContext,
    output: &Path,
    job: impl FnOnce(&TemplateContext) -> Result<Assembled>,
) -> Result<PendingFile> {
    let ctx = context.for_format(format);
    let mut file = PendingFile::create(output, &package_file_name(format, &ctx), format)?;
    file.write(job(&ctx)?)?;
    Ok(file)
}

/// Adds Debian's documentation files and completes the `.deb`.
fn finish_deb(
    mut deb: DebWriter,
    templates: &Templates,
    ctx: &TemplateContext,
) -> Result<Assembled> {
    let doc = format!("/usr/share/doc/{}", ctx.package);
    deb.add_file(
        &format!("{doc}/copyright"),
        templates.render("copyright", ctx)?.as_bytes(),
        0o644,
        ctx.date,
    )?;
    let changelog = templates.render("changelog.Debian", ctx)?;
    deb.add_file(
        &format!("{doc}/changelog.Debian.gz"),
        &gzip_best(changelog.as_bytes())?,
        0o644,
        ctx.date,
    )?;
    let overrides = templates.render("lintian-overrides", ctx)?;
    deb.add_file(
        &format!("/usr/share/lintian/overrides/{}", ctx.package),
        overrides.as_bytes(),
        0o644,
        ctx.date,
    )?;
    let mut scripts = Vec::new();
    for name in ["preinst", "postinst", "prerm", "postrm"] {
        scripts.push((name.to_string(), templates.render(name, ctx)?));
    }
    let control = ControlFiles {
        control: ctx
            .relations
            .add_to_control(&templates.render("control", ctx)?),
        scripts,
        mtime: ctx.date,
    };
    deb.finish(&control)
}

/// Completes the `.rpm`.
fn finish_rpm(rpm: RpmWriter, templates: &Templates, ctx: &TemplateContext) -> Result<Assembled> {
    let spec = SpecHeader::parse(
        &ctx.relations
            .add_to_spec(&templates.render("mattermost.spec", ctx)?),
    )?;
    let script = |name| templates.render(name, ctx).map(Some);
    let meta = RpmMeta {
        spec,
        version: ctx.package_version.clone(),
        release: ctx.revision.clone(),
        arch: ctx.rpm_arch.to_string(),
        scripts: Scriptlets {
            pre: script("rpm-pre")?,
            post: script("rpm-post")?,
            preun: script("rpm-preun")?,
            postun: script("rpm-postun")?,
        },
        license_text: ctx.license_text.clone(),
        build_time: ctx.date,
    };
    rpm.finish(&meta)
}

/// The time stamp of a release entry, which must fit the packages' time fields.
fn release_time(entry: &ReleaseEntry) -> Result<u64> {
    if entry.mtime > u64::from(u32::MAX) {
        bail!(
            "release entry `{}` is dated {}, after the year 2106 that RPM's 32-bit time fields \
             end at: the tarball's time stamps are broken; set SOURCE_DATE_EPOCH to date every \
             file instead",
            entry.path,
            entry.mtime
        );
    }
    Ok(entry.mtime)
}

/// gzip at maximum compression with no name or time stamp (what dh_compress does).
fn gzip_best(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(bytes)?;
    Ok(gz.finish()?)
}

/// Largest licence file read (into the copyright file and the RPM header).
pub const MAX_LICENSE_BYTES: u64 = 1 << 20;

/// Picks the edition's licence file out of the release stream, and refuses a release of the
/// other edition (an enterprise tarball must not be published under the MIT licence).
struct LicenseFinder {
    edition: Edition,
    text: Option<Vec<u8>>,
}

/// The licence file upstream ships with `edition` (server/build/release.mk).
fn license_file(edition: Edition) -> &'static str {
    match edition {
        Edition::Enterprise => "ENTERPRISE-EDITION-LICENSE.txt",
        Edition::Team => "MIT-COMPILED-LICENSE.md",
    }
}

impl LicenseFinder {
    fn new(edition: Edition) -> Self {
        LicenseFinder {
            edition,
            text: None,
        }
    }

    fn other(&self) -> Edition {
        match self.edition {
            Edition::Enterprise => Edition::Team,
            Edition::Team => Edition::Enterprise,
        }
    }

    /// Fails when `path` is the other edition's licence file.
    fn refuse_other_edition(&self, path: &str) -> Result<()> {
        let other = self.other();
        if path == license_file(other) {
            bail!(
                "this is {} edition release (it ships {path}), not {}: build it with \
                 --edition {other}",
                match other {
                    Edition::Enterprise => "an enterprise",
                    Edition::Team => "a team",
                },
                self.edition
            );
        }
        Ok(())
    }

    /// True for the edition's licence file (a regular file: a link names no text). Fails
    /// when it is larger than [`MAX_LICENSE_BYTES`]: its text is held in memory.
    fn wants(&self, entry: &ReleaseEntry) -> Result<bool> {
        if entry.path != license_file(self.edition) {
            return Ok(false);
        }
        match entry.kind {
            EntryKind::File { size } if size > MAX_LICENSE_BYTES => bail!(
                "the release's licence file `{}` is {size} bytes (at most {MAX_LICENSE_BYTES} \
                 are read; upstream's are a few kilobytes): it is not a release",
                entry.path
            ),
            EntryKind::File { .. } => Ok(true),
            _ => Ok(false),
        }
    }

    fn found(&mut self, text: Vec<u8>) {
        self.text = Some(text);
    }

    /// The licence text.
    fn take(&mut self) -> Result<String> {
        match self.text.take() {
            Some(text) => Ok(String::from_utf8_lossy(&text).into_owned()),
            None => bail!(
                "the release has no {} (upstream's {} edition licence file); cannot write the \
                 package's copyright",
                license_file(self.edition),
                self.edition
            ),
        }
    }
}
