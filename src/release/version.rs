//! Mattermost release versions (`X.Y.Z`, optionally `vX.Y.Z` or `X.Y.Z-rcN`).

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use anyhow::{Context, Result, bail};

/// One exact Mattermost release version.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Version {
    /// Major number (the `9` of `9.11.18`).
    pub major: u32,
    /// Minor number (the `11` of `9.11.18`).
    pub minor: u32,
    /// Patch number (the `18` of `9.11.18`).
    pub patch: u32,
    /// Release-candidate number, for `9.11.0-rc1`.
    pub rc: Option<u32>,
}

impl Version {
    /// A final (non-rc) version.
    pub fn new(major: u32, minor: u32, patch: u32) -> Self {
        Version {
            major,
            minor,
            patch,
            rc: None,
        }
    }

    /// The version as Debian and RPM spell it: `9.11.0~rc1` sorts before `9.11.0` in both
    /// dpkg and rpm (>= 4.10).
    pub fn package_version(&self) -> String {
        match self.rc {
            Some(rc) => format!("{}.{}.{}~rc{}", self.major, self.minor, self.patch, rc),
            None => format!("{}.{}.{}", self.major, self.minor, self.patch),
        }
    }
}

impl FromStr for Version {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        let text = s.strip_prefix('v').unwrap_or(s);
        let (core, rc) = match text.split_once("-rc") {
            Some((core, rc)) => {
                let rc = rc
                    .parse::<u32>()
                    .with_context(|| format!("`{s}`: release candidate number is not a number"))?;
                (core, Some(rc))
            }
            None => (text, None),
        };
        let parts: Vec<&str> = core.split('.').collect();
        if parts.len() != 3
            || parts
                .iter()
                .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
        {
            bail!("`{s}` is not a Mattermost version: expected X.Y.Z, vX.Y.Z or X.Y.Z-rcN");
        }
        let num = |p: &str| {
            p.parse::<u32>()
                .with_context(|| format!("`{s}`: number `{p}` is too large"))
        };
        Ok(Version {
            major: num(parts[0])?,
            minor: num(parts[1])?,
            patch: num(parts[2])?,
            rc,
        })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if let Some(rc) = self.rc {
            write!(f, "-rc{rc}")?;
        }
        Ok(())
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            // A release candidate sorts before the final release.
            .then_with(|| match (self.rc, other.rc) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Greater,
                (Some(_), None) => Ordering::Less,
                (Some(a), Some(b)) => a.cmp(&b),
            })
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_prefixed_and_rc() {
        assert_eq!(
            "9.11.18".parse::<Version>().unwrap(),
            Version::new(9, 11, 18)
        );
        assert_eq!(
            "v9.11.18".parse::<Version>().unwrap(),
            Version::new(9, 11, 18)
        );
        let rc: Version = "9.11.0-rc1".parse().unwrap();
        assert_eq!(rc.rc, Some(1));
        assert_eq!(rc.to_string(), "9.11.0-rc1");
        assert_eq!(rc.package_version(), "9.11.0~rc1");
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "9.11",
            "9.x",
            "9.11.18.1",
            "a.b.c",
            "9..1",
            "9.11.18-rc",
            "",
            "9.11.-1",
        ] {
            assert!(bad.parse::<Version>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn orders_numerically_with_rc_first() {
        let v = |s: &str| s.parse::<Version>().unwrap();
        assert!(v("9.11.18") > v("9.11.9"));
        assert!(v("10.0.0") > v("9.11.18"));
        assert!(v("9.11.0-rc2") < v("9.11.0"));
        assert!(v("9.11.0-rc2") > v("9.11.0-rc1"));
    }
}
