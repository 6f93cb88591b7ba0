//! What a sync has to do: every spec x edition x arch resolved as `build` resolves it, and
//! compared with what the repository holds (both formats). The plan is also the CI matrix.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::context::{Format, TemplateContext};
use crate::layout::Layout;
use crate::release::pins::Pins;
use crate::release::resolve::{Discovery, NetMode, Resolved};
use crate::release::spec::VersionSpec;
use crate::release::{Arch, Edition, Release};
use crate::repo::held::Held;

/// One release the sync is about.
#[derive(Debug, Clone)]
pub struct Target {
    /// The spec that selected it (the first, when several did).
    pub spec: String,
    /// What resolving found: version, URL, catalogued SHA-256.
    pub resolved: Resolved,
    /// The SHA-256 pinned for its tarball (`--sha256sums`), which verifies it like a
    /// signature.
    pub pin: Option<String>,
    /// The release.
    pub release: Release,
    /// Formats the repository lacks (empty: fully present).
    pub missing: Vec<Format>,
    /// The repository's files of this release.
    pub held: Vec<Held>,
}

/// A spec that did not resolve, and why.
#[derive(Debug, Clone)]
pub struct Unresolved {
    /// The spec.
    pub spec: String,
    /// Edition asked for.
    pub edition: Edition,
    /// Architecture asked for.
    pub arch: Arch,
    /// The error, one line.
    pub reason: String,
}

/// Everything a sync would do.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Releases with at least one format missing from the repository.
    pub missing: Vec<Target>,
    /// Releases the repository holds in every requested format.
    pub present: Vec<Target>,
    /// Specs that resolved to nothing.
    pub unresolved: Vec<Unresolved>,
}

/// What to plan for.
#[derive(Debug, Clone)]
pub struct Wanted<'a> {
    /// Version specs, as given.
    pub specs: &'a [String],
    /// Editions.
    pub editions: &'a [Edition],
    /// Architectures.
    pub arches: &'a [Arch],
    /// Formats the repository must hold.
    pub formats: &'a [Format],
    /// Download server.
    pub mirror: &'a str,
    /// Packaging revision.
    pub revision: &'a str,
    /// SHA-256 pins by tarball name.
    pub pins: &'a Pins,
}

/// Resolves every spec x edition x arch of `wanted` and sorts the releases into missing and
/// present by what `held` lists. The release index is read at most once per run.
pub fn plan(discovery: &Discovery, wanted: &Wanted, held: &[Held]) -> Result<Plan> {
    let mut specs = Vec::new();
    for text in wanted.specs {
        specs.push((text.clone(), text.parse::<VersionSpec>()?));
    }
    let needs_index = specs
        .iter()
        .any(|(_, s)| !matches!(s, VersionSpec::Exact(_) | VersionSpec::Esr));
    if needs_index && discovery.mode != NetMode::Offline {
        // Reads (and caches) the index once; every spec below resolves from that snapshot.
        discovery.candidates(Edition::Enterprise)?;
    }
    let snapshot = Discovery {
        catalog: discovery.catalog,
        http: discovery.http,
        index_url: discovery.index_url.clone(),
        cache_dir: discovery.cache_dir.clone(),
        mode: NetMode::Offline,
        token: None,
    };
    let mut plan = Plan::default();
    for (text, spec) in &specs {
        for &edition in wanted.editions {
            for &arch in wanted.arches {
                let resolved = match snapshot.resolve(spec, edition, arch, wanted.mirror) {
                    Ok(r) => r,
                    Err(err) => {
                        plan.unresolved.push(Unresolved {
                            spec: text.clone(),
                            edition,
                            arch,
                            reason: format!("{err:#}"),
                        });
                        continue;
                    }
                };
                let release = Release {
                    version: resolved.version.parse()?,
                    edition,
                    arch,
                };
                let known = plan.missing.iter().chain(&plan.present);
                if known.into_iter().any(|t| t.release == release) {
                    continue;
                }
                let (missing, held) = compare(&release, wanted, held);
                let target = Target {
                    spec: text.clone(),
                    pin: wanted.pins.for_url(&resolved.url).map(str::to_string),
                    resolved,
                    release,
                    missing,
                    held,
                };
                if target.missing.is_empty() {
                    plan.present.push(target);
                } else {
                    plan.missing.push(target);
                }
            }
        }
    }
    Ok(plan)
}

/// The formats of `wanted` the repository lacks for `release`, and the files it has.
pub fn compare(release: &Release, wanted: &Wanted, held: &[Held]) -> (Vec<Format>, Vec<Held>) {
    let mut missing = Vec::new();
    let mut have = Vec::new();
    for &format in wanted.formats {
        let id = identity(release, wanted.revision, format);
        match held.iter().find(|h| id.matches(h)) {
            Some(h) => have.push(h.clone()),
            None => missing.push(format),
        }
    }
    (missing, have)
}

/// Name, version and architecture of a package as the repository records them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Identity {
    format: Format,
    name: String,
    version: String,
    arch: &'static str,
}

impl Identity {
    fn matches(&self, h: &Held) -> bool {
        h.format == self.format.as_str()
            && h.name == self.name
            && h.version == self.version
            && h.arch == self.arch
    }
}

fn identity(release: &Release, revision: &str, format: Format) -> Identity {
    let ctx = TemplateContext::new(release, revision, "", 0, Layout::new().template_data());
    Identity {
        format,
        arch: match format {
            Format::Deb => ctx.deb_arch,
            Format::Rpm => ctx.rpm_arch,
        },
        name: ctx.package,
        version: ctx.full_version,
    }
}

/// The planned releases that `--keep keep` would prune right after publishing them (because
/// the repository holds `keep` newer versions of the same package), as `mattermost 9.11.90
/// (enterprise, amd64)`: following them with `keep` would rebuild them on every run.
pub fn pruned_by_keep(plan: &Plan, wanted: &Wanted, held: &[Held], keep: usize) -> Vec<String> {
    let targets: Vec<&Target> = plan.missing.iter().chain(&plan.present).collect();
    let mut doomed = Vec::new();
    for t in &targets {
        for &format in wanted.formats {
            let id = identity(&t.release, wanted.revision, format);
            let mut versions: Vec<String> = held
                .iter()
                .filter(|h| {
                    h.format == id.format.as_str() && h.name == id.name && h.arch == id.arch
                })
                .map(|h| h.version.clone())
                .chain(
                    targets
                        .iter()
                        .map(|o| identity(&o.release, wanted.revision, format))
                        .filter(|o| o.name == id.name && o.arch == id.arch)
                        .map(|o| o.version),
                )
                .collect();
            versions.sort_by(|a, b| version_cmp(format, b, a));
            versions.dedup();
            let newer = versions.iter().take_while(|v| **v != id.version).count();
            if newer >= keep && !doomed.contains(&t.release.to_string()) {
                doomed.push(t.release.to_string());
            }
        }
    }
    doomed
}

/// Orders two `version-release` strings as the format's package manager does.
fn version_cmp(format: Format, a: &str, b: &str) -> std::cmp::Ordering {
    match format {
        Format::Deb => crate::repo::version::cmp_deb(a, b),
        Format::Rpm => {
            let (av, ar) = a.rsplit_once('-').unwrap_or((a, ""));
            let (bv, br) = b.rsplit_once('-').unwrap_or((b, ""));
            crate::repo::version::cmp_rpm(("", av, ar), ("", bv, br))
        }
    }
}

/// One entry of the CI matrix: a build job.
#[derive(Debug, Clone, Serialize)]
pub struct MatrixEntry {
    /// A name for the job and its artifact, e.g. `9.11.19-enterprise-amd64`.
    pub name: String,
    /// Upstream version.
    pub version: String,
    /// Edition.
    pub edition: Edition,
    /// Architecture.
    pub arch: Arch,
    /// Formats to build, comma-separated.
    pub formats: String,
    /// Packaging revision.
    pub revision: String,
    /// The exact `mm-pkg` arguments (`build VERSION ...`), one string each.
    pub argv: Vec<String>,
    /// The same arguments quoted for a POSIX shell.
    pub args: String,
}

/// The plan as a GitHub Actions matrix (`strategy.matrix: ${{ fromJSON(...) }}`):
/// `{"include": [...]}`, one entry per missing release, with `build_flags` (the source,
/// verification and packaging flags of this run, `--revision revision` among them) after the
/// release's own (and its `--sha256` pin).
pub fn matrix(plan: &Plan, revision: &str, build_flags: &[String]) -> serde_json::Value {
    let include: Vec<MatrixEntry> = plan
        .missing
        .iter()
        .map(|t| {
            let formats: Vec<&str> = t.missing.iter().map(|f| f.as_str()).collect();
            let formats = formats.join(",");
            let mut argv: Vec<String> = [
                "build",
                &t.resolved.version,
                "--edition",
                t.release.edition.as_str(),
                "--arch",
                t.release.arch.as_str(),
                "--format",
                &formats,
            ]
            .map(str::to_string)
            .to_vec();
            if let Some(pin) = &t.pin {
                argv.extend(["--sha256".to_string(), pin.clone()]);
            }
            argv.extend(build_flags.iter().cloned());
            MatrixEntry {
                name: format!(
                    "{}-{}-{}",
                    t.resolved.version, t.release.edition, t.release.arch
                ),
                version: t.resolved.version.clone(),
                edition: t.release.edition,
                arch: t.release.arch,
                formats,
                revision: revision.to_string(),
                args: argv
                    .iter()
                    .map(|a| shell_quote(a))
                    .collect::<Vec<_>>()
                    .join(" "),
                argv,
            }
        })
        .collect();
    serde_json::json!({ "include": include })
}

/// What a later step needs to know of one matrix entry (read back from the plan's JSON).
#[derive(Debug, Clone, Deserialize)]
pub struct Planned {
    /// Upstream version.
    pub version: String,
    /// Edition.
    pub edition: String,
    /// Architecture.
    pub arch: String,
    /// Formats, comma-separated.
    pub formats: String,
    /// Packaging revision.
    pub revision: String,
}

impl Planned {
    /// The release and its formats.
    pub fn release(&self) -> Result<(Release, Vec<Format>)> {
        let what = || format!("plan entry {} {} {}", self.version, self.edition, self.arch);
        let release = Release {
            version: self.version.parse().with_context(what)?,
            edition: self.edition.parse().with_context(what)?,
            arch: self.arch.parse().with_context(what)?,
        };
        let mut formats = Vec::new();
        for f in self.formats.split(',') {
            formats.push(match f {
                "deb" => Format::Deb,
                "rpm" => Format::Rpm,
                other => anyhow::bail!("{}: unknown format `{other}`", what()),
            });
        }
        Ok((release, formats))
    }
}

/// The entries of a plan printed by `sync --plan --json`.
pub fn read_matrix(json: &[u8]) -> Result<Vec<Planned>> {
    #[derive(Deserialize)]
    struct Matrix {
        include: Vec<Planned>,
    }
    let m: Matrix = serde_json::from_slice(json)
        .context("not a plan printed by `mm-pkg sync --plan --json` ({\"include\": [...]})")?;
    Ok(m.include)
}

/// `arg` as one word of a POSIX shell command line.
fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_./:=,@+-%".contains(&b));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting_keeps_each_argument_one_word() {
        assert_eq!(shell_quote("--edition"), "--edition");
        assert_eq!(shell_quote("A B <a@b>"), "'A B <a@b>'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn a_release_is_missing_only_in_the_formats_the_repository_lacks() {
        let release = Release {
            version: "9.11.19".parse().unwrap(),
            edition: Edition::Team,
            arch: Arch::Amd64,
        };
        let wanted = Wanted {
            specs: &[],
            editions: &[],
            arches: &[],
            formats: &[Format::Deb, Format::Rpm],
            mirror: "",
            revision: "1",
            pins: &Pins::default(),
        };
        let held = |format, name: &str, version: &str, arch: &str| Held {
            format,
            name: name.into(),
            version: version.into(),
            arch: arch.into(),
            location: String::new(),
            sha256: String::new(),
        };
        let repo = vec![
            held("deb", "mattermost-team", "9.11.19-1", "amd64"),
            held("rpm", "mattermost", "9.11.19-1", "x86_64"),
            held("rpm", "mattermost-team", "9.11.19-2", "x86_64"),
        ];
        let (missing, have) = compare(&release, &wanted, &repo);
        assert_eq!(missing, vec![Format::Rpm]);
        assert_eq!(have, vec![repo[0].clone()]);
    }
}
