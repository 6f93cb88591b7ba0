//! Writes an RPM package from a stream of [`Entry`]s, with the `rpm` crate.
//!
//! The package description comes from a spec-style template ([`spec::SpecHeader`]); the
//! files come from the same entry stream the Debian writer gets.

pub mod spec;

use std::io::Write;

use anyhow::{Context, Result, anyhow};
use rpm::{Dependency, FileOptions, FileVerifyFlags, Scriptlet};

use crate::compress::Compression;
use crate::package::{Content, Entry, EntrySink};
use spec::{RelationKind, SpecHeader};

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
}

/// One entry waiting for the builder.
struct Pending {
    path: String,
    options: FileOptions,
    kind: PendingKind,
}

enum PendingKind {
    Dir,
    Symlink,
    File(Vec<u8>),
}

/// Collects entries and builds the package when finished.
pub struct RpmWriter {
    compression: Compression,
    mtime: u32,
    files: Vec<Pending>,
    current: Option<(Entry, Vec<u8>)>,
}

impl RpmWriter {
    /// A writer producing a payload with `compression`; every time stamp is `mtime`.
    pub fn new(compression: Compression, mtime: u64) -> Result<Self> {
        Ok(RpmWriter {
            compression,
            mtime: u32::try_from(mtime)
                .context("SOURCE_DATE_EPOCH does not fit RPM's 32-bit time")?,
            files: Vec::new(),
            current: None,
        })
    }

    /// Builds the package and writes it to `out`.
    pub fn finish(mut self, meta: &RpmMeta, out: &mut impl Write) -> Result<()> {
        let spec = &meta.spec;
        let level = match self.compression {
            Compression::Gzip => rpm::CompressionWithLevel::Gzip(Compression::GZIP_LEVEL),
            Compression::Xz => rpm::CompressionWithLevel::Xz(Compression::XZ_LEVEL),
            Compression::Zstd => rpm::CompressionWithLevel::Zstd(Compression::ZSTD_LEVEL),
            Compression::None => rpm::CompressionWithLevel::None,
        };
        let config = rpm::BuildConfig::v4()
            .compression(level)
            .source_date(self.mtime);
        let mut builder = rpm::PackageBuilder::new(
            &spec.name,
            &meta.version,
            &spec.license,
            &meta.arch,
            &spec.summary,
        );
        builder
            .using_config(config)
            .release(&meta.release)
            .description(&spec.description)
            .build_host("mm-pkg");
        if let Some(url) = &spec.url {
            builder.url(url);
        }
        if let Some(group) = &spec.group {
            builder.group(group);
        }
        if let Some(vendor) = &spec.vendor {
            builder.vendor(vendor);
        }
        if let Some(packager) = &spec.packager {
            builder.packager(packager);
        }
        for rel in &spec.relations {
            let dep = dependency(rel.kind, &rel.name, rel.version.as_ref());
            match rel.kind {
                RelationKind::Requires
                | RelationKind::RequiresPre
                | RelationKind::RequiresPost
                | RelationKind::RequiresPreun
                | RelationKind::RequiresPostun => builder.requires(dep),
                RelationKind::Recommends => builder.recommends(dep),
                RelationKind::Suggests => builder.suggests(dep),
                RelationKind::Conflicts => builder.conflicts(dep),
                RelationKind::Provides => builder.provides(dep),
                RelationKind::Obsoletes => builder.obsoletes(dep),
            };
        }
        for entry in &spec.changelog {
            builder.add_changelog_entry(&entry.author, &entry.text, entry.time);
        }
        let sh = |text: &String| Scriptlet::new(text.clone()).prog(vec!["/bin/sh"]);
        if let Some(s) = &meta.scripts.pre {
            builder.pre_install_script(sh(s));
        }
        if let Some(s) = &meta.scripts.post {
            builder.post_install_script(sh(s));
        }
        if let Some(s) = &meta.scripts.preun {
            builder.pre_uninstall_script(sh(s));
        }
        if let Some(s) = &meta.scripts.postun {
            builder.post_uninstall_script(sh(s));
        }

        let license_dir = format!("/usr/share/licenses/{}", spec.name);
        let license_file = format!("{license_dir}/LICENSE.txt");
        self.files.push(Pending {
            options: FileOptions::dir(&license_dir)
                .permissions(0o755)
                .modified_at(self.mtime.into())
                .into(),
            path: license_dir,
            kind: PendingKind::Dir,
        });
        self.files.push(Pending {
            options: FileOptions::new(&license_file)
                .permissions(0o644)
                .modified_at(self.mtime.into())
                .license()
                .into(),
            path: license_file,
            kind: PendingKind::File(meta.license_text.clone().into_bytes()),
        });

        for Pending {
            path,
            options,
            kind,
        } in self.files
        {
            let added = match kind {
                PendingKind::File(bytes) => builder.with_file_contents(bytes, options),
                PendingKind::Dir => builder.with_dir_entry(options),
                PendingKind::Symlink => builder.with_symlink(options),
            };
            added.map_err(|e| anyhow!("adding {path} to the RPM: {e}"))?;
        }
        let package = builder
            .build()
            .map_err(|e| anyhow!("building the RPM: {e}"))?;
        package
            .write(out)
            .map_err(|e| anyhow!("writing the RPM: {e}"))?;
        Ok(())
    }

    fn options(&self, entry: &Entry) -> Result<FileOptions> {
        let builder = match &entry.content {
            Content::Dir => FileOptions::dir(&entry.path),
            Content::File { .. } => FileOptions::new(&entry.path),
            Content::Symlink { target } => FileOptions::symlink(&entry.path, target),
        };
        let mut builder = builder
            .user(&entry.user)
            .group(&entry.group)
            .modified_at(self.mtime.into());
        if !matches!(entry.content, Content::Symlink { .. }) {
            builder = builder.permissions(entry.mode as u16);
        }
        if let Some(caps) = &entry.capabilities {
            builder = builder.caps(caps.as_str())?;
        }
        if entry.doc {
            builder = builder.doc();
        }
        if entry.rewritten_at_runtime {
            builder = builder.verify(
                FileVerifyFlags::ALL_FLAGS
                    - FileVerifyFlags::FILEDIGEST
                    - FileVerifyFlags::FILESIZE
                    - FileVerifyFlags::MTIME,
            );
        }
        Ok(builder.into())
    }
}

fn dependency(kind: RelationKind, name: &str, version: Option<&(String, String)>) -> Dependency {
    let mut dep = match version {
        None => Dependency::any(name),
        Some((op, v)) => match op.as_str() {
            "<" => Dependency::less(name, v),
            "<=" => Dependency::less_eq(name, v),
            "=" => Dependency::eq(name, v),
            ">" => Dependency::greater(name, v),
            _ => Dependency::greater_eq(name, v),
        },
    };
    let script_flag = match kind {
        RelationKind::RequiresPre => Some(rpm::DependencyFlags::SCRIPT_PRE),
        RelationKind::RequiresPost => Some(rpm::DependencyFlags::SCRIPT_POST),
        RelationKind::RequiresPreun => Some(rpm::DependencyFlags::SCRIPT_PREUN),
        RelationKind::RequiresPostun => Some(rpm::DependencyFlags::SCRIPT_POSTUN),
        _ => None,
    };
    if let Some(flag) = script_flag {
        dep.flags |= flag;
    }
    dep
}

impl EntrySink for RpmWriter {
    fn begin(&mut self, entry: &Entry) -> Result<()> {
        self.current = Some((entry.clone(), Vec::with_capacity(entry.size() as usize)));
        Ok(())
    }

    fn data(&mut self, chunk: &[u8]) -> Result<()> {
        if let Some((_, bytes)) = &mut self.current {
            bytes.extend_from_slice(chunk);
        }
        Ok(())
    }

    fn end(&mut self) -> Result<()> {
        if let Some((entry, bytes)) = self.current.take() {
            let options = self.options(&entry)?;
            let kind = match entry.content {
                Content::Dir => PendingKind::Dir,
                Content::Symlink { .. } => PendingKind::Symlink,
                Content::File { .. } => PendingKind::File(bytes),
            };
            self.files.push(Pending {
                path: entry.path,
                options,
                kind,
            });
        }
        Ok(())
    }
}
