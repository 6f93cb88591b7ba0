//! What a sync did, for `--json`, the terminal and the message to the team.

use std::path::PathBuf;

use serde::Serialize;

use super::plan::{Target, Unresolved};
use crate::notify::{Delivery, Failure, Row, Summary};
use crate::release::Release;
use crate::repo::AddReport;
use crate::repo::held::Held;

/// One release in the report.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// The spec that selected it.
    pub spec: String,
    /// Upstream version (`None` when the spec resolved to nothing).
    pub version: Option<String>,
    /// Edition.
    pub edition: String,
    /// Architecture.
    pub arch: String,
    /// Formats of the files (or of the packages that failed).
    pub formats: Vec<String>,
    /// The files in the repository, as paths inside its directory.
    pub files: Vec<String>,
    /// SHA-256 of each of `files`, in the same order.
    pub sha256: Vec<String>,
    /// For a release built in this run: what verified its tarball (`catalog`, `sha256`,
    /// `signature`), empty when nothing did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified_by: Option<Vec<String>>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Entry {
    /// `target` with the repository files in `held`.
    pub fn of(target: &Target, held: &[Held]) -> Self {
        Entry::new(&target.spec, &target.release, held)
    }

    /// `release`, selected by `spec`, with the repository files in `held`.
    pub fn new(spec: &str, release: &Release, held: &[Held]) -> Self {
        Entry {
            spec: spec.to_string(),
            version: Some(release.version.to_string()),
            edition: release.edition.to_string(),
            arch: release.arch.to_string(),
            formats: held.iter().map(|h| h.format.to_string()).collect(),
            files: held.iter().map(|h| h.location.clone()).collect(),
            sha256: held.iter().map(|h| h.sha256.clone()).collect(),
            verified_by: None,
            reason: None,
        }
    }

    /// The same entry, verified by `checks` (`catalog`, `sha256`, `signature`).
    pub fn verified(mut self, checks: &[&str]) -> Self {
        self.verified_by = Some(checks.iter().map(|c| c.to_string()).collect());
        self
    }

    /// `target`, which failed for `reason`.
    pub fn failed(target: &Target, reason: String) -> Self {
        Entry {
            formats: target.missing.iter().map(|f| f.as_str().into()).collect(),
            files: Vec::new(),
            sha256: Vec::new(),
            reason: Some(reason),
            ..Entry::of(target, &[])
        }
    }

    /// A spec that resolved to nothing.
    pub fn unresolved(u: &Unresolved) -> Self {
        Entry {
            spec: u.spec.clone(),
            version: None,
            edition: u.edition.to_string(),
            arch: u.arch.to_string(),
            formats: Vec::new(),
            files: Vec::new(),
            sha256: Vec::new(),
            verified_by: None,
            reason: Some(u.reason.clone()),
        }
    }

    /// `mattermost 9.11.19 (team, amd64)`, or the spec when there is no version.
    pub fn title(&self) -> String {
        let what = match &self.version {
            Some(v) => v.clone(),
            None => format!("`{}`", self.spec),
        };
        format!("mattermost {what} ({}, {})", self.edition, self.arch)
    }
}

/// What changed in the repository.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RepositoryChange {
    /// The repository directory.
    pub dir: PathBuf,
    /// Its apt suite.
    pub suite: Option<String>,
    /// Files added (paths inside the directory).
    pub added: Vec<String>,
    /// Files removed by `--keep`.
    pub pruned: Vec<String>,
    /// Metadata and packages signed in this run.
    pub signed: Vec<String>,
    /// True when no key signs the repository.
    pub unsigned: bool,
}

impl RepositoryChange {
    /// What `repo add` reported for `dir`.
    pub fn from_add(dir: PathBuf, suite: Option<String>, add: &AddReport) -> Self {
        RepositoryChange {
            dir,
            suite,
            added: add.added.iter().map(|r| r.location.clone()).collect(),
            pruned: add.pruned.iter().map(|r| r.location.clone()).collect(),
            signed: add.signed.clone(),
            unsigned: add.unsigned,
        }
    }
}

/// The outcome of one sync (`--json` prints it).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Releases built and published in this run.
    pub built: Vec<Entry>,
    /// Releases the repository already held.
    pub present: Vec<Entry>,
    /// Releases (or specs) that failed, with the reason.
    pub failed: Vec<Entry>,
    /// What changed in the repository.
    pub repository: RepositoryChange,
    /// What became of the message to the team (never the webhook URL).
    pub notification: Option<Delivery>,
}

impl Report {
    /// The message to the team.
    pub fn summary(&self) -> Summary {
        Summary {
            suite: self.repository.suite.clone(),
            rows: self
                .built
                .iter()
                .map(|e| Row {
                    version: e.version.clone().unwrap_or_default(),
                    edition: e.edition.clone(),
                    arch: e.arch.clone(),
                    packages: e.formats.iter().cloned().zip(e.sha256.clone()).collect(),
                    verified_by: e.verified_by.clone(),
                })
                .collect(),
            failures: self
                .failed
                .iter()
                .map(|e| Failure {
                    what: e.title(),
                    reason: e.reason.clone().unwrap_or_default(),
                })
                .collect(),
            present: self.present.len(),
        }
    }

    /// One plain line per release.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for (what, list) in [("present", &self.present), ("built", &self.built)] {
            for e in list {
                let verified = match e.verified_by.as_deref() {
                    None => String::new(),
                    Some([]) => " (UNVERIFIED)".to_string(),
                    Some(by) => format!(" (verified by {})", by.join(", ")),
                };
                lines.push(format!(
                    "{what} {}: {}{verified}",
                    e.title(),
                    e.files.join(" ")
                ));
            }
        }
        for e in &self.failed {
            lines.push(format!(
                "FAILED {}: {}",
                e.title(),
                e.reason.as_deref().unwrap_or("")
            ));
        }
        for file in &self.repository.pruned {
            lines.push(format!("pruned {file}"));
        }
        for file in &self.repository.signed {
            lines.push(format!("signed {file}"));
        }
        lines
    }
}
