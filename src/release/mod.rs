//! Which Mattermost release to package and where its tarball comes from.
//!
//! The pipeline starts here: a [`spec::VersionSpec`] is resolved against the [`catalog`]
//! and the online [`index`] ([`resolve`]) to a [`Release`]; [`download`] fetches it into the
//! cache and [`verify`] proves its bytes; [`archive`] reads the tarball as one checked
//! stream of entries.

pub mod archive;
pub mod catalog;
pub mod checks;
pub mod download;
pub mod http;
pub mod index;
pub mod known;
pub mod openpgp;
pub mod pins;
pub mod resolve;
pub mod sigfile;
pub mod spec;
pub mod verify;
pub mod version;

use std::fmt;
use std::str::FromStr;

use anyhow::{Result, bail};
use serde::Serialize;

pub use version::Version;

/// Upstream's default download server.
pub const DEFAULT_MIRROR: &str = "https://releases.mattermost.com";

/// The two server editions Mattermost publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Edition {
    /// Enterprise edition: upstream's recommended build; runs without a licence as the free tier.
    Enterprise,
    /// Team edition: the MIT-licensed build without enterprise code.
    Team,
}

impl Edition {
    /// Lower-case name as used on the command line and in the catalog.
    pub fn as_str(self) -> &'static str {
        match self {
            Edition::Enterprise => "enterprise",
            Edition::Team => "team",
        }
    }
}

impl FromStr for Edition {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "enterprise" => Ok(Edition::Enterprise),
            "team" => Ok(Edition::Team),
            _ => bail!("unknown edition `{s}`: use enterprise or team"),
        }
    }
}

impl fmt::Display for Edition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// CPU architectures upstream publishes Linux builds for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// x86-64.
    Amd64,
    /// 64-bit ARM.
    Arm64,
}

impl Arch {
    /// The name upstream and Debian use (`amd64`, `arm64`).
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
        }
    }

    /// The name RPM uses (`x86_64`, `aarch64`).
    pub fn rpm_name(self) -> &'static str {
        match self {
            Arch::Amd64 => "x86_64",
            Arch::Arm64 => "aarch64",
        }
    }
}

impl FromStr for Arch {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "amd64" | "x86_64" => Ok(Arch::Amd64),
            "arm64" | "aarch64" => Ok(Arch::Arm64),
            _ => bail!("unknown architecture `{s}`: use amd64 or arm64"),
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One published server tarball: version, edition and architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// Upstream version.
    pub version: Version,
    /// Edition.
    pub edition: Edition,
    /// Architecture.
    pub arch: Arch,
}

impl Release {
    /// Upstream's file name, e.g. `mattermost-team-9.11.18-linux-arm64.tar.gz`.
    pub fn tarball_name(&self) -> String {
        let edition = match self.edition {
            Edition::Enterprise => "",
            Edition::Team => "team-",
        };
        format!(
            "mattermost-{edition}{}-linux-{}.tar.gz",
            self.version, self.arch
        )
    }

    /// Download URL below `mirror` (`<mirror>/X.Y.Z/<tarball>`).
    pub fn url(&self, mirror: &str) -> String {
        format!(
            "{}/{}/{}",
            mirror.trim_end_matches('/'),
            self.version,
            self.tarball_name()
        )
    }
}

impl fmt::Display for Release {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Mattermost {} ({}, {})",
            self.version, self.edition, self.arch
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_follow_upstream_naming() {
        let mut r = Release {
            version: Version::new(9, 11, 18),
            edition: Edition::Enterprise,
            arch: Arch::Amd64,
        };
        assert_eq!(
            r.url("https://releases.mattermost.com/"),
            "https://releases.mattermost.com/9.11.18/mattermost-9.11.18-linux-amd64.tar.gz"
        );
        r.edition = Edition::Team;
        r.arch = Arch::Arm64;
        assert_eq!(
            r.tarball_name(),
            "mattermost-team-9.11.18-linux-arm64.tar.gz"
        );
    }
}
