//! Writes an RPM package from a stream of [`Entry`]s, in bounded memory.
//!
//! The payload (a cpio archive) is compressed into a temporary file as entries arrive, while
//! the per-file SHA-256 digests and both payload digests are computed in the same pass. At the
//! end the header is built from the collected file metadata and the package is written as
//! lead, signature header, header, payload. The package description comes from a spec-style
//! template ([`spec::SpecHeader`]).

pub mod cpio;
pub mod header;
pub mod read;
pub mod signature;
pub mod spec;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use crate::compress::{Compression, Encoder, Framing};
use crate::output::{Assembled, HashingWriter};
use crate::package::{Content, Entry, EntrySink};
use cpio::{CpioWriter, Member};
use header::{Header, Value, tag};
pub use signature::HeaderSigner;
use spec::{Relation, RelationKind, SpecHeader};

/// Scriptlets of an RPM package.
#[derive(Debug, Clone, Default)]
pub struct Scriptlets {
    /// `%pre`.
    pub pre: Option<String>,
    /// `%post`.
    pub post: Option<String>,
    /// `%preun`.
    pub preun: Option<String>,
    /// `%postun`.
    pub postun: Option<String>,
}

/// Everything besides the files that goes into the header.
#[derive(Debug, Clone)]
pub struct RpmMeta {
    /// Parsed package template.
    pub spec: SpecHeader,
    /// `Version:`.
    pub version: String,
    /// `Release:`.
    pub release: String,
    /// RPM architecture (`x86_64`, `aarch64`).
    pub arch: String,
    /// Scriptlets, run by `/bin/sh`.
    pub scripts: Scriptlets,
    /// Text of the licence, installed as `%license` under `/usr/share/licenses/<name>/`.
    pub license_text: String,
    /// `BUILDTIME`, the licence files' time stamp and the signature's date, seconds since 1970.
    pub build_time: u64,
}

/// RPM dependency flags.
mod flags {
    pub const LESS: u32 = 0x02;
    pub const GREATER: u32 = 0x04;
    pub const EQUAL: u32 = 0x08;
    pub const INTERP: u32 = 0x100;
    pub const SCRIPT_PRE: u32 = 0x200;
    pub const SCRIPT_POST: u32 = 0x400;
    pub const SCRIPT_PREUN: u32 = 0x800;
    pub const SCRIPT_POSTUN: u32 = 0x1000;
    pub const RPMLIB: u32 = 0x0100_0000;
}

/// RPM file flags.
const FILE_CONFIG: u32 = 1;
const FILE_DOC: u32 = 1 << 1;
const FILE_NOREPLACE: u32 = 1 << 4;
const FILE_LICENSE: u32 = 1 << 7;
/// Verify flags: digest, size, mtime.
const VERIFY_DIGEST_SIZE_MTIME: u32 = 1 | 2 | 32;
/// SHA-256, as RPM numbers digest algorithms.
const SHA256_ALGO: u32 = 8;

/// Bytes gathered before a write into the staged payload.
const STAGE_BUFFER: usize = 64 * 1024;

type PayloadSink = CpioWriter<HashingWriter<Encoder<HashingWriter<BufWriter<File>>>>>;

/// What the header records about one file.
#[derive(Debug, Clone)]
struct FileRecord {
    path: String,
    size: u32,
    mode: u16,
    digest: String,
    link: String,
    flags: u32,
    verify: u32,
    user: String,
    group: String,
    caps: String,
    ino: u32,
    mtime: u32,
}

/// Streams entries into a compressed cpio payload and writes the package when finished.
pub struct RpmWriter {
    payload: Option<PayloadSink>,
    scratch: PathBuf,
    compression: Compression,
    files: Vec<FileRecord>,
    current: Option<(FileRecord, Sha256)>,
    signer: Option<Arc<dyn HeaderSigner>>,
}

impl RpmWriter {
    /// A writer that stages the compressed payload in `scratch` (a file it truncates); every
    /// file is dated by its entry's [`Entry::mtime`].
    pub fn new(scratch: &Path, compression: Compression) -> Result<Self> {
        let file = crate::output::open_scratch(scratch)?;
        // Writes of a buffer's size or more go straight to the file (the codecs hand over
        // their output in blocks of 128 KiB and more); cpio headers are gathered.
        let compressed = HashingWriter::new(BufWriter::with_capacity(STAGE_BUFFER, file));
        // One gzip member: the `rpm` crate reads only the first member of a payload.
        let encoder = compression.encoder(compressed, Framing::OneMember)?;
        let payload = CpioWriter::new(HashingWriter::new(encoder));
        Ok(RpmWriter {
            payload: Some(payload),
            scratch: scratch.to_path_buf(),
            compression,
            files: Vec::new(),
            current: None,
            signer: None,
        })
    }

    /// Signs the package's header with `signer` (an OpenPGP signature in the signature
    /// header, as rpmsign writes it).
    pub fn with_signer(mut self, signer: Arc<dyn HeaderSigner>) -> Self {
        self.signer = Some(signer);
        self
    }

    fn payload(&mut self) -> &mut PayloadSink {
        self.payload.as_mut().expect("payload open until finish")
    }

    /// Adds the licence file, builds the header and returns the package: lead, signature
    /// header and header, then the staged payload.
    pub fn finish(mut self, meta: &RpmMeta) -> Result<Assembled> {
        let spec = &meta.spec;
        let license_dir = format!("/usr/share/licenses/{}", spec.name);
        let build_time = rpm_time(meta.build_time)?;
        self.begin(&Entry::dir(&license_dir, 0o755).at(meta.build_time))?;
        self.end()?;
        let mut license = Entry::file(
            format!("{license_dir}/LICENSE.txt"),
            meta.license_text.len() as u64,
            0o644,
        )
        .at(meta.build_time);
        license.license = true;
        self.begin(&license)?;
        self.data(meta.license_text.as_bytes())?;
        self.end()?;

        let cpio = self
            .payload
            .take()
            .expect("payload open until finish")
            .finish()?;
        let (encoder, _payload_size, payload_alt_digest) = cpio.finish();
        let compressed = encoder
            .finish()
            .with_context(|| format!("compressing into {}", self.scratch.display()))?;
        let (buffered, compressed_size, payload_digest) = compressed.finish();
        let staged = buffered
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("writing {}", self.scratch.display()))?;

        let header = self
            .header(meta, build_time, &payload_digest, &payload_alt_digest)?
            .to_bytes(tag::HEADERIMMUTABLE);
        let total = header.len() as u64 + compressed_size;
        let Ok(total) = u32::try_from(total) else {
            bail!("the RPM would be {total} bytes; packages over 4 GiB are not supported");
        };
        let signature =
            signature::signature_header(&header, total, self.signer.as_deref(), build_time)?;

        let nvr = format!("{}-{}-{}", spec.name, meta.version, meta.release);
        let mut head = header::lead(&nvr).to_vec();
        head.extend_from_slice(&signature);
        head.resize(head.len() + header::signature_padding(signature.len()), 0);
        head.extend_from_slice(&header);
        Ok(Assembled {
            head,
            staged,
            staged_len: compressed_size,
            tail: Vec::new(),
        })
    }

    /// The main header: package description, dependencies, file list, payload description.
    fn header(
        &self,
        meta: &RpmMeta,
        build_time: u32,
        digest: &str,
        alt_digest: &str,
    ) -> Result<Header> {
        let spec = &meta.spec;
        let mut h = Header::new();
        let text = |s: &str| Value::Str(s.to_string());
        h.set(tag::HEADERI18NTABLE, Value::StrArray(vec!["C".into()]))
            .set(tag::NAME, text(&spec.name))
            .set(tag::VERSION, text(&meta.version))
            .set(tag::RELEASE, text(&meta.release))
            .set(tag::SUMMARY, Value::I18n(spec.summary.clone()))
            .set(tag::DESCRIPTION, Value::I18n(spec.description.clone()))
            .set(tag::BUILDTIME, Value::Int32(vec![build_time]))
            .set(tag::BUILDHOST, text("mm-pkg"))
            .set(tag::LICENSE, text(&spec.license))
            .set(tag::OS, text("linux"))
            .set(tag::ARCH, text(&meta.arch))
            // rpm takes a header without SOURCERPM for a source package; rpmbuild names the
            // source package it would have built from, as here.
            .set(
                tag::SOURCERPM,
                text(&format!(
                    "{}-{}-{}.src.rpm",
                    spec.name, meta.version, meta.release
                )),
            )
            .set(
                tag::RPMVERSION,
                text(concat!("mm-pkg ", env!("CARGO_PKG_VERSION"))),
            )
            .set(tag::ENCODING, text("utf-8"))
            .set(tag::PAYLOADFORMAT, text("cpio"))
            .set(tag::PAYLOADCOMPRESSOR, text(self.compression.rpm_name()))
            .set(
                tag::PAYLOADFLAGS,
                text(&self.compression.level().to_string()),
            )
            .set(
                tag::PAYLOADDIGEST,
                Value::StrArray(vec![digest.to_string()]),
            )
            .set(
                tag::PAYLOADDIGESTALT,
                Value::StrArray(vec![alt_digest.to_string()]),
            )
            .set(tag::PAYLOADDIGESTALGO, Value::Int32(vec![SHA256_ALGO]))
            .set(tag::FILEDIGESTALGO, Value::Int32(vec![SHA256_ALGO]));
        for (t, v) in [
            (tag::URL, &spec.url),
            (tag::VENDOR, &spec.vendor),
            (tag::PACKAGER, &spec.packager),
        ] {
            if let Some(v) = v {
                h.set(t, text(v));
            }
        }
        if let Some(group) = &spec.group {
            h.set(tag::GROUP, Value::I18n(group.clone()));
        }
        self.scripts(&mut h, &meta.scripts);
        self.relations(&mut h, meta);
        self.file_list(&mut h);
        if !spec.changelog.is_empty() {
            h.set(
                tag::CHANGELOGTIME,
                Value::Int32(spec.changelog.iter().map(|c| c.time).collect()),
            )
            .set(
                tag::CHANGELOGNAME,
                Value::StrArray(spec.changelog.iter().map(|c| c.author.clone()).collect()),
            )
            .set(
                tag::CHANGELOGTEXT,
                Value::StrArray(spec.changelog.iter().map(|c| c.text.clone()).collect()),
            );
        }
        Ok(h)
    }

    fn scripts(&self, h: &mut Header, scripts: &Scriptlets) {
        for (script, body_tag, prog_tag) in [
            (&scripts.pre, tag::PREIN, tag::PREINPROG),
            (&scripts.post, tag::POSTIN, tag::POSTINPROG),
            (&scripts.preun, tag::PREUN, tag::PREUNPROG),
            (&scripts.postun, tag::POSTUN, tag::POSTUNPROG),
        ] {
            if let Some(body) = script {
                h.set(body_tag, Value::Str(body.clone()));
                h.set(prog_tag, Value::Str("/bin/sh".into()));
            }
        }
    }

    fn relations(&self, h: &mut Header, meta: &RpmMeta) {
        let spec = &meta.spec;
        let evr = format!("{}-{}", meta.version, meta.release);
        let mut requires: Vec<(String, u32, String)> = Vec::new();
        for (script, flag) in [
            (&meta.scripts.pre, flags::SCRIPT_PRE),
            (&meta.scripts.post, flags::SCRIPT_POST),
            (&meta.scripts.preun, flags::SCRIPT_PREUN),
            (&meta.scripts.postun, flags::SCRIPT_POSTUN),
        ] {
            if script.is_some() {
                requires.push(("/bin/sh".into(), flags::INTERP | flag, String::new()));
            }
        }
        let mut provides = vec![
            (spec.name.clone(), flags::EQUAL, evr.clone()),
            (
                format!("{}({})", spec.name, isa(&meta.arch)),
                flags::EQUAL,
                evr,
            ),
        ];
        let (mut conflicts, mut obsoletes, mut recommends, mut suggests) =
            (vec![], vec![], vec![], vec![]);
        for rel in &spec.relations {
            let (flag, version) = relation_flags(rel);
            let item = (rel.name.clone(), flag, version);
            match rel.kind {
                RelationKind::Requires => requires.push(item),
                RelationKind::RequiresPre => {
                    requires.push((item.0, item.1 | flags::SCRIPT_PRE, item.2))
                }
                RelationKind::RequiresPost => {
                    requires.push((item.0, item.1 | flags::SCRIPT_POST, item.2))
                }
                RelationKind::RequiresPreun => {
                    requires.push((item.0, item.1 | flags::SCRIPT_PREUN, item.2))
                }
                RelationKind::RequiresPostun => {
                    requires.push((item.0, item.1 | flags::SCRIPT_POSTUN, item.2))
                }
                RelationKind::Provides => provides.push(item),
                RelationKind::Conflicts => conflicts.push(item),
                RelationKind::Obsoletes => obsoletes.push(item),
                RelationKind::Recommends => recommends.push(item),
                RelationKind::Suggests => suggests.push(item),
            }
        }
        let rpmlib = flags::RPMLIB | flags::LESS | flags::EQUAL;
        let mut features = vec![
            ("CompressedFileNames", "3.0.4-1"),
            ("FileDigests", "4.6.0-1"),
            ("PayloadFilesHavePrefix", "4.0-1"),
        ];
        if self.files.iter().any(|f| !f.caps.is_empty()) {
            features.push(("FileCaps", "4.6.1-1"));
        }
        match self.compression {
            Compression::Zstd => features.push(("PayloadIsZstd", "5.4.18-1")),
            Compression::Xz => features.push(("PayloadIsXz", "5.2-1")),
            _ => {}
        }
        for (feature, version) in features {
            requires.push((format!("rpmlib({feature})"), rpmlib, version.to_string()));
        }
        for (items, name, flag, version) in [
            (
                &requires,
                tag::REQUIRENAME,
                tag::REQUIREFLAGS,
                tag::REQUIREVERSION,
            ),
            (
                &provides,
                tag::PROVIDENAME,
                tag::PROVIDEFLAGS,
                tag::PROVIDEVERSION,
            ),
            (
                &conflicts,
                tag::CONFLICTNAME,
                tag::CONFLICTFLAGS,
                tag::CONFLICTVERSION,
            ),
            (
                &obsoletes,
                tag::OBSOLETENAME,
                tag::OBSOLETEFLAGS,
                tag::OBSOLETEVERSION,
            ),
            (
                &recommends,
                tag::RECOMMENDNAME,
                tag::RECOMMENDFLAGS,
                tag::RECOMMENDVERSION,
            ),
            (
                &suggests,
                tag::SUGGESTNAME,
                tag::SUGGESTFLAGS,
                tag::SUGGESTVERSION,
            ),
        ] {
            if !items.is_empty() {
                h.set(
                    name,
                    Value::StrArray(items.iter().map(|i| i.0.clone()).collect()),
                )
                .set(flag, Value::Int32(items.iter().map(|i| i.1).collect()))
                .set(
                    version,
                    Value::StrArray(items.iter().map(|i| i.2.clone()).collect()),
                );
            }
        }
    }

    /// File arrays in path order (rpm looks files up by binary search).
    fn file_list(&self, h: &mut Header) {
        let mut files: Vec<&FileRecord> = self.files.iter().collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let mut dirs: BTreeMap<&str, u32> = BTreeMap::new();
        for f in &files {
            let cut = f.path.rfind('/').map_or(0, |i| i + 1);
            dirs.insert(&f.path[..cut], 0);
        }
        for (i, idx) in dirs.values_mut().enumerate() {
            *idx = i as u32;
        }
        let split = |f: &&FileRecord| {
            let cut = f.path.rfind('/').map_or(0, |i| i + 1);
            (dirs[&f.path[..cut]], f.path[cut..].to_string())
        };
        let strings = |get: fn(&FileRecord) -> String| {
            Value::StrArray(files.iter().map(|f| get(f)).collect())
        };
        let ints =
            |get: fn(&FileRecord) -> u32| Value::Int32(files.iter().map(|f| get(f)).collect());
        h.set(
            tag::SIZE,
            Value::Int32(vec![files.iter().map(|f| f.size).sum()]),
        )
        .set(tag::FILESIZES, ints(|f| f.size))
        .set(
            tag::FILEMODES,
            Value::Int16(files.iter().map(|f| f.mode).collect()),
        )
        .set(tag::FILERDEVS, Value::Int16(vec![0; files.len()]))
        .set(tag::FILEMTIMES, ints(|f| f.mtime))
        .set(tag::FILEDIGESTS, strings(|f| f.digest.clone()))
        .set(tag::FILELINKTOS, strings(|f| f.link.clone()))
        .set(tag::FILEFLAGS, ints(|f| f.flags))
        .set(tag::FILEUSERNAME, strings(|f| f.user.clone()))
        .set(tag::FILEGROUPNAME, strings(|f| f.group.clone()))
        .set(tag::FILEVERIFYFLAGS, ints(|f| f.verify))
        .set(tag::FILEDEVICES, Value::Int32(vec![1; files.len()]))
        .set(tag::FILEINODES, ints(|f| f.ino))
        .set(
            tag::FILELANGS,
            Value::StrArray(vec![String::new(); files.len()]),
        )
        .set(
            tag::DIRINDEXES,
            Value::Int32(files.iter().map(|f| split(f).0).collect()),
        )
        .set(
            tag::BASENAMES,
            Value::StrArray(files.iter().map(|f| split(f).1).collect()),
        )
        .set(
            tag::DIRNAMES,
            Value::StrArray(dirs.keys().map(|d| d.to_string()).collect()),
        );
        if files.iter().any(|f| !f.caps.is_empty()) {
            h.set(tag::FILECAPS, strings(|f| f.caps.clone()));
        }
    }
}

/// The ISA name RPM uses in `name(isa)` provides.
fn isa(arch: &str) -> &str {
    match arch {
        "x86_64" => "x86-64",
        "aarch64" => "aarch-64",
        other => other,
    }
}

/// `time` as RPM's 32-bit time fields hold it.
fn rpm_time(time: u64) -> Result<u32> {
    u32::try_from(time).map_err(|_| {
        anyhow::anyhow!("time stamp {time} is after 2106, beyond RPM's 32-bit time fields")
    })
}

fn relation_flags(rel: &Relation) -> (u32, String) {
    match &rel.version {
        None => (0, String::new()),
        Some((op, v)) => {
            let flag = match op.as_str() {
                "<" => flags::LESS,
                "<=" => flags::LESS | flags::EQUAL,
                "=" => flags::EQUAL,
                ">" => flags::GREATER,
                _ => flags::GREATER | flags::EQUAL,
            };
            (flag, v.clone())
        }
    }
}

impl EntrySink for RpmWriter {
    fn begin(&mut self, entry: &Entry) -> Result<()> {
        let ino = self.files.len() as u32 + 1;
        let (kind, size, link) = match &entry.content {
            Content::Dir => (0o040000, 0u64, String::new()),
            Content::File { size } => (0o100000, *size, String::new()),
            Content::Symlink { target } => (0o120000, target.len() as u64, target.clone()),
        };
        let perms = if link.is_empty() {
            entry.mode & 0o7777
        } else {
            0o777
        };
        let mode = kind | perms;
        let mut flags = 0;
        if entry.doc {
            flags |= FILE_DOC;
        }
        if entry.license {
            flags |= FILE_LICENSE;
        }
        if entry.config {
            flags |= FILE_CONFIG | FILE_NOREPLACE;
        }
        let record = FileRecord {
            path: entry.path.clone(),
            size: u32::try_from(size)
                .with_context(|| format!("{} is larger than 4 GiB", entry.path))?,
            mode: mode as u16,
            digest: String::new(),
            link: link.clone(),
            flags,
            verify: if entry.rewritten_at_runtime {
                !VERIFY_DIGEST_SIZE_MTIME
            } else {
                u32::MAX
            },
            user: entry.user.clone(),
            group: entry.group.clone(),
            caps: entry.capabilities.clone().unwrap_or_default(),
            ino,
            mtime: rpm_time(entry.mtime).with_context(|| entry.path.clone())?,
        };
        let name = format!(".{}", entry.path);
        let mtime = record.mtime;
        self.payload().begin(&Member {
            name: &name,
            ino,
            mode,
            mtime,
            size,
        })?;
        if !link.is_empty() {
            self.payload().data(link.as_bytes())?;
        }
        self.current = Some((record, Sha256::new()));
        Ok(())
    }

    fn data(&mut self, chunk: &[u8]) -> Result<()> {
        if let Some((_, hasher)) = &mut self.current {
            hasher.update(chunk);
        }
        self.payload().data(chunk)
    }

    fn end(&mut self) -> Result<()> {
        if let Some((mut record, hasher)) = self.current.take() {
            if record.mode & 0o170000 == 0o100000 {
                record.digest = hex::encode(hasher.finalize());
            }
            self.files.push(record);
        }
        self.payload().end()
    }
}
