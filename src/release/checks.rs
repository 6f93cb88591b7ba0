//! What a release's bytes must pass before they are used (`Checks`): the SHA-256 values
//! expected of them and where each comes from (the catalog, or a pin given for the release),
//! whether a missing signature is acceptable, and how a verdict is named (`verified_by`).

use super::verify::Verified;

/// What must hold before a download is used.
#[derive(Debug, Clone, Default)]
pub struct Checks {
    /// Expected SHA-256 values with their source: [`CATALOG`], or a pin given for this
    /// release (`--sha256`, a line of `sync --sha256sums FILE`).
    pub sha256: Vec<(String, String)>,
    /// Accept a release that has no signature.
    pub allow_unsigned: bool,
    /// Check nothing (`--insecure-skip-verify`).
    pub skip_verify: bool,
}

/// The source [`Checks::sha256`] names for the embedded catalog's SHA-256.
pub const CATALOG: &str = "the release catalog";

impl Checks {
    /// These checks plus the catalog's SHA-256 of the release, when it lists one.
    pub fn with_catalog(mut self, sha256: Option<&str>) -> Self {
        if let Some(sha) = sha256 {
            self.sha256.push((CATALOG.into(), sha.to_string()));
        }
        self
    }

    /// These checks plus `sha256`, a pin given for this release by `source` (`--sha256`,
    /// `--sha256sums FILE`).
    pub fn with_pin(mut self, source: &str, sha256: &str) -> Self {
        self.sha256
            .push((source.to_string(), sha256.to_ascii_lowercase()));
        self
    }

    /// True when a SHA-256 pinned for this release (not the catalog's) is among the checks:
    /// it proves the bytes on its own, as a signature does, so a release without a
    /// signature is accepted.
    pub fn pinned(&self) -> bool {
        self.sha256.iter().any(|(source, _)| source != CATALOG)
    }

    /// What `verified` (a verdict under these checks) rests on, as `--json` and the message
    /// to the team name it: `catalog`, `sha256` (a pin), `signature`; empty when nothing was
    /// verified (no expectation, or `--insecure-skip-verify`).
    pub fn verified_by(&self, verified: &Verified) -> Vec<&'static str> {
        if verified.verified_by.is_empty() {
            return Vec::new();
        }
        let mut by: Vec<&'static str> = Vec::new();
        for (source, _) in &self.sha256 {
            let kind = if source == CATALOG {
                "catalog"
            } else {
                "sha256"
            };
            if !by.contains(&kind) {
                by.push(kind);
            }
        }
        if verified.signed_by.is_some() {
            by.push("signature");
        }
        by
    }
}
