//! `build --tarball FILE`: what upstream's file name says (`mattermost[-team]-X.Y.Z-linux-ARCH
//! .tar.gz`), checked against the SPEC, `--edition` and `--arch`, so that a tarball of one
//! release is never packaged under another release's name.

use std::path::Path;

use anyhow::{Result, bail};

use mm_pkg::release::spec::VersionSpec;
use mm_pkg::release::{Arch, Edition, Version};

/// What an upstream tarball's file name says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamName {
    /// The file name itself.
    pub file_name: String,
    /// `X.Y.Z` (or `X.Y.Z-rcN`).
    pub version: Version,
    /// `mattermost-team-…` is the team edition, `mattermost-…` the enterprise edition.
    pub edition: Edition,
    /// `linux-amd64` or `linux-arm64`.
    pub arch: Arch,
}

/// Fails when there is no file at `path` (`--tarball`), before its name is looked at: a
/// mistyped path is a missing file, not a naming problem.
pub fn check_exists(path: &Path) -> Result<()> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
            match parent {
                Some(dir) if !dir.is_dir() => bail!(
                    "--tarball {}: no such file (and no directory {})",
                    path.display(),
                    dir.display()
                ),
                _ => bail!("--tarball {}: no such file", path.display()),
            }
        }
        // Anything else (a permission, a FIFO) is for the build to report or use.
        _ => Ok(()),
    }
}

/// Parses `path`'s file name if it is upstream's; `None` for any other name.
pub fn upstream_name(path: &Path) -> Option<UpstreamName> {
    let file_name = path.file_name()?.to_str()?;
    let rest = file_name.strip_prefix("mattermost-")?;
    let rest = rest.strip_suffix(".tar.gz")?;
    let (edition, rest) = match rest.strip_prefix("team-") {
        Some(r) => (Edition::Team, r),
        None => (Edition::Enterprise, rest),
    };
    let (version, arch) = rest.rsplit_once("-linux-")?;
    let arch = match arch {
        "amd64" => Arch::Amd64,
        "arm64" => Arch::Arm64,
        _ => return None,
    };
    let version: Version = version.parse().ok()?;
    Some(UpstreamName {
        file_name: file_name.to_string(),
        version,
        edition,
        arch,
    })
}

/// The edition and architecture to build: the file name's, refused when an explicit
/// `--edition` / `--arch` says otherwise; the flags' values (or defaults) when the name is not
/// upstream's.
pub fn edition_and_arch(
    name: Option<&UpstreamName>,
    edition: (Edition, bool),
    arch: (Arch, bool),
) -> Result<(Edition, Arch)> {
    let Some(name) = name else {
        return Ok((edition.0, arch.0));
    };
    if edition.1 && edition.0 != name.edition {
        bail!(
            "--edition {} disagrees with the tarball {}, which is upstream's {} edition; \
             drop --edition or use the {} tarball",
            edition.0,
            name.file_name,
            name.edition,
            edition.0
        );
    }
    if arch.1 && arch.0 != name.arch {
        bail!(
            "--arch {} disagrees with the tarball {}, which is upstream's {} build; drop --arch \
             or use the {} tarball",
            arch.0,
            name.file_name,
            name.arch,
            arch.0
        );
    }
    Ok((name.edition, name.arch))
}

/// The exact spec to resolve for a `--tarball` build: the file name's version when SPEC is
/// omitted; SPEC itself when exact; refused when SPEC is a range and the file name says
/// nothing (a range cannot say which release a file holds).
pub fn spec_for(spec: Option<&str>, name: Option<&UpstreamName>, tarball: &Path) -> Result<String> {
    match (spec, name) {
        (Some(spec), _) => Ok(spec.to_string()),
        (None, Some(name)) => Ok(name.version.to_string()),
        (None, None) => bail!(
            "{} is not named like upstream's tarballs (mattermost[-team]-X.Y.Z-linux-ARCH.tar.gz): \
             give its exact version as SPEC, e.g. `mm-pkg build 9.11.18 --tarball {}`",
            tarball.display(),
            tarball.display()
        ),
    }
}

/// Checks the version `spec` resolved to against the tarball: with an upstream file name the
/// versions must agree; without one the SPEC must be exact.
pub fn check_version(
    spec: &str,
    resolved: &Version,
    name: Option<&UpstreamName>,
    tarball: &Path,
) -> Result<()> {
    let exact = matches!(spec.parse::<VersionSpec>(), Ok(VersionSpec::Exact(_)));
    match name {
        Some(name) if &name.version != resolved => {
            if exact {
                bail!(
                    "SPEC {spec} disagrees with the tarball {}, which is upstream's {}; give \
                     SPEC {} or omit it",
                    name.file_name,
                    name.version,
                    name.version
                )
            }
            bail!(
                "`{spec}` resolved to {resolved}, but the tarball {} is upstream's {}; give SPEC \
                 {} or omit it",
                name.file_name,
                name.version,
                name.version
            )
        }
        None if !exact => bail!(
            "`{spec}` is a range and {} is not named like upstream's tarballs, so its version \
             is unknown: give the exact version as SPEC (`{spec}` resolves to {resolved})",
            tarball.display()
        ),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_names_parse_and_others_do_not() {
        let n = upstream_name(Path::new("/x/mattermost-team-9.11.90-linux-arm64.tar.gz")).unwrap();
        assert_eq!(
            (n.version.to_string().as_str(), n.edition, n.arch),
            ("9.11.90", Edition::Team, Arch::Arm64)
        );
        let n = upstream_name(Path::new("mattermost-10.0.0-rc1-linux-amd64.tar.gz")).unwrap();
        assert_eq!(n.edition, Edition::Enterprise);
        assert_eq!(n.version.to_string(), "10.0.0-rc1");
        for other in [
            "release.tar.gz",
            "mattermost-9.11.90-linux-amd64.tgz",
            "mattermost-9.11.90-linux-s390x.tar.gz",
            "mattermost-nine-linux-amd64.tar.gz",
        ] {
            assert!(upstream_name(Path::new(other)).is_none(), "{other}");
        }
    }
}
