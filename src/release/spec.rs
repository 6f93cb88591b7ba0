//! Version specs: what a user may ask for (`9.x`, `9.11`, `latest`, `esr`, an exact version).

use std::fmt;
use std::str::FromStr;

use anyhow::{Result, bail};

use super::Version;

/// The forms a version spec may take, for error messages and `--help`.
pub const ACCEPTED_FORMS: &str = "9.x, 9, 9.11, 9.11.x, 9.11.18, v9.11.18, latest, esr (newest Extended Support Release), or a release candidate such as 9.11.0-rc1";

/// A request for one release version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionSpec {
    /// The newest final release.
    Latest,
    /// The newest Extended Support Release.
    Esr,
    /// The newest final release of a major version (`9`, `9.x`).
    Major(u32),
    /// The newest final release of a minor version (`9.11`, `9.11.x`).
    Minor(u32, u32),
    /// Exactly this version (a release candidate only this way).
    Exact(Version),
}

impl VersionSpec {
    /// True when `version` satisfies the spec. Ranges never match release candidates; `esr`
    /// is decided by the caller, which knows the ESR flags.
    pub fn matches(&self, version: &Version) -> bool {
        match self {
            VersionSpec::Exact(v) => v == version,
            _ if version.rc.is_some() => false,
            VersionSpec::Latest | VersionSpec::Esr => true,
            VersionSpec::Major(major) => version.major == *major,
            VersionSpec::Minor(major, minor) => version.major == *major && version.minor == *minor,
        }
    }
}

impl FromStr for VersionSpec {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        let text = s.trim();
        match text {
            "latest" => return Ok(VersionSpec::Latest),
            "esr" => return Ok(VersionSpec::Esr),
            _ => {}
        }
        let bare = text.strip_prefix('v').unwrap_or(text);
        let number = |p: &str| -> Option<u32> {
            (!p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                .then(|| p.parse().ok())
                .flatten()
        };
        let parts: Vec<&str> = bare.split('.').collect();
        let spec = match parts.as_slice() {
            [major] | [major, "x"] => number(major).map(VersionSpec::Major),
            [major, minor] | [major, minor, "x"] => number(major)
                .zip(number(minor))
                .map(|(a, b)| VersionSpec::Minor(a, b)),
            [_, _, _] => bare.parse::<Version>().ok().map(VersionSpec::Exact),
            _ => None,
        };
        match spec {
            Some(spec) => Ok(spec),
            None => bail!("`{s}` is not a version spec; accepted: {ACCEPTED_FORMS}"),
        }
    }
}

impl fmt::Display for VersionSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionSpec::Latest => f.write_str("latest"),
            VersionSpec::Esr => f.write_str("esr"),
            VersionSpec::Major(m) => write!(f, "{m}.x"),
            VersionSpec::Minor(m, n) => write!(f, "{m}.{n}.x"),
            VersionSpec::Exact(v) => write!(f, "{v}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(s: &str) -> VersionSpec {
        s.parse().unwrap()
    }

    #[test]
    fn parses_every_accepted_form() {
        assert_eq!(spec("9.x"), VersionSpec::Major(9));
        assert_eq!(spec("9"), VersionSpec::Major(9));
        assert_eq!(spec("9.11"), VersionSpec::Minor(9, 11));
        assert_eq!(spec("9.11.x"), VersionSpec::Minor(9, 11));
        assert_eq!(spec("9.11.18"), VersionSpec::Exact(Version::new(9, 11, 18)));
        assert_eq!(
            spec("v9.11.18"),
            VersionSpec::Exact(Version::new(9, 11, 18))
        );
        assert_eq!(spec("latest"), VersionSpec::Latest);
        assert_eq!(spec("esr"), VersionSpec::Esr);
        assert_eq!(spec("9.11.0-rc1").to_string(), "9.11.0-rc1");
    }

    #[test]
    fn rejects_others_listing_the_accepted_forms() {
        for bad in [
            "9.x.x",
            "x",
            "9.11.18.2",
            "newest",
            "9.-1",
            "",
            "9.11.y",
            "v",
        ] {
            let err = bad.parse::<VersionSpec>().unwrap_err().to_string();
            assert!(err.contains("accepted: 9.x, 9, 9.11"), "{bad}: {err}");
        }
    }

    #[test]
    fn ranges_skip_release_candidates() {
        let rc: Version = "9.11.0-rc1".parse().unwrap();
        assert!(!spec("9.x").matches(&rc));
        assert!(!spec("latest").matches(&rc));
        assert!(spec("9.11.0-rc1").matches(&rc));
        assert!(spec("9.11").matches(&Version::new(9, 11, 3)));
        assert!(!spec("9.11").matches(&Version::new(9, 10, 3)));
    }
}
