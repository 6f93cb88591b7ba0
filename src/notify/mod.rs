//! Telling the team: the one place that knows the message mm-pkg posts to a Mattermost
//! incoming webhook and appends to a GitHub Actions step summary.
//!
//! `build` and `sync` describe their run as a [`Summary`] (what was built or published, what
//! failed); [`Summary::markdown`] turns it into the text, [`Notify`] decides whether it is
//! worth a post, and [`webhook`] delivers it. A delivery failure is a warning, never an
//! error: the packages are what matters.

pub mod webhook;

use std::io::Write;

use anyhow::{Context, Result};
use serde::Serialize;

pub use webhook::Webhook;

/// `username` of every post.
pub const USERNAME: &str = "mm-pkg";
/// Start of every headline.
pub const HEADLINE_PREFIX: &str = "mm-pkg:";
/// Columns of the table of packages.
pub const TABLE_HEADER: [&str; 5] = ["Version", "Edition", "Arch", "Formats", "SHA-256"];
/// The last column, when the run knows how each release was verified.
pub const VERIFIED_HEADER: &str = "Verified by";
/// What the table and the headline say of a release nothing verified.
pub const UNVERIFIED: &str = "UNVERIFIED";
/// Hex digits of each SHA-256 the table shows.
pub const SHA256_PREFIX_LEN: usize = 12;
/// Heading above the list of failures.
pub const FAILURES_HEADING: &str = "Failed:";
/// Longest failure reason shown (in characters); longer ones are cut with `…`.
pub const MAX_REASON_LEN: usize = 400;
/// Environment variable naming the file GitHub Actions shows as the job's summary.
pub const STEP_SUMMARY_VAR: &str = "GITHUB_STEP_SUMMARY";

/// When a run posts its message (`--notify`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Notify {
    /// When something was built or failed.
    #[default]
    Changes,
    /// Every run, "nothing new" too.
    Always,
    /// Only when something failed.
    Failures,
}

impl std::str::FromStr for Notify {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "changes" => Ok(Notify::Changes),
            "always" => Ok(Notify::Always),
            "failures" => Ok(Notify::Failures),
            _ => anyhow::bail!("unknown --notify `{s}`: use changes, always or failures"),
        }
    }
}

impl Notify {
    /// True when `summary` is worth a post under this policy.
    pub fn wants(self, summary: &Summary) -> bool {
        match self {
            Notify::Always => true,
            Notify::Changes => !summary.rows.is_empty() || !summary.failures.is_empty(),
            Notify::Failures => !summary.failures.is_empty(),
        }
    }
}

/// One release that was built (and published): a row of the table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Upstream version.
    pub version: String,
    /// `enterprise` or `team`.
    pub edition: String,
    /// `amd64` or `arm64`.
    pub arch: String,
    /// `(format, SHA-256 of its package)`, one per package file.
    pub packages: Vec<(String, String)>,
    /// What verified the release's tarball in this run (`catalog`, `sha256`, `signature`;
    /// empty: nothing did); `None` when the run does not know (`notify` after CI builds).
    pub verified_by: Option<Vec<String>>,
}

impl Row {
    /// True when the run knows nothing vouched for this release's tarball.
    pub fn unverified(&self) -> bool {
        self.verified_by.as_ref().is_some_and(Vec::is_empty)
    }
}

/// One release (or spec) that failed, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// What failed, e.g. `mattermost 9.11.19 (team, amd64)`.
    pub what: String,
    /// The error, one line.
    pub reason: String,
}

/// What one run did, as the message tells it.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// The apt suite the packages were published to; `None` for a plain `build`.
    pub suite: Option<String>,
    /// Releases built (and published).
    pub rows: Vec<Row>,
    /// Releases that failed.
    pub failures: Vec<Failure>,
    /// Releases that were already published (counted in the "nothing new" headline).
    pub present: usize,
}

impl Summary {
    /// The one-line headline, e.g. `mm-pkg: mattermost 9.11.19 and 10.5.3 published to stable`.
    pub fn headline(&self) -> String {
        let mut versions: Vec<crate::release::Version> = self
            .rows
            .iter()
            .filter_map(|r| r.version.parse().ok())
            .collect();
        versions.sort();
        versions.dedup();
        let versions: Vec<String> = versions.iter().map(|v| v.to_string()).collect();
        let failed = match self.failures.len() {
            0 => None,
            1 => Some("1 build failed".to_string()),
            n => Some(format!("{n} builds failed")),
        };
        let unverified = self.rows.iter().filter(|r| r.unverified()).count();
        let done = (!versions.is_empty()).then(|| {
            let verb = match &self.suite {
                Some(suite) => format!("published to {suite}"),
                None => "built".to_string(),
            };
            let mut done = format!("mattermost {} {verb}", join_and(&versions));
            if unverified > 0 {
                done.push_str(&format!(", {unverified} {UNVERIFIED}"));
            }
            done
        });
        let text = match (done, failed) {
            (Some(done), Some(failed)) => format!("{done}, {failed}"),
            (Some(done), None) => done,
            (None, Some(failed)) => failed,
            (None, None) => match &self.suite {
                Some(suite) => format!(
                    "nothing new for {suite} ({} release{} already published)",
                    self.present,
                    if self.present == 1 { "" } else { "s" }
                ),
                None => "nothing built".to_string(),
            },
        };
        format!("{HEADLINE_PREFIX} {text}")
    }

    /// The whole message: headline, table of packages, failure reasons.
    pub fn markdown(&self) -> String {
        let mut text = format!("#### {}\n", self.headline());
        if !self.rows.is_empty() {
            let mut header = TABLE_HEADER.to_vec();
            let known = self.rows.iter().any(|r| r.verified_by.is_some());
            if known {
                header.push(VERIFIED_HEADER);
            }
            text.push('\n');
            text.push_str(&format!("| {} |\n", header.join(" | ")));
            text.push_str(&format!("|{}\n", "---|".repeat(header.len())));
            for row in &self.rows {
                let formats: Vec<&str> = row.packages.iter().map(|(f, _)| f.as_str()).collect();
                let sums: Vec<String> = row
                    .packages
                    .iter()
                    .map(|(f, sha)| format!("{f} `{}`", &sha[..sha.len().min(SHA256_PREFIX_LEN)]))
                    .collect();
                let mut cells = vec![
                    row.version.clone(),
                    row.edition.clone(),
                    row.arch.clone(),
                    formats.join(", "),
                    sums.join(", "),
                ];
                if known {
                    cells.push(match row.verified_by.as_deref() {
                        None => "?".to_string(),
                        Some([]) => format!("**{UNVERIFIED}**"),
                        Some(by) => by.join(", "),
                    });
                }
                text.push_str(&format!("| {} |\n", cells.join(" | ")));
            }
            let unverified: Vec<String> = self
                .rows
                .iter()
                .filter(|r| r.unverified())
                .map(|r| format!("mattermost {} ({}, {})", r.version, r.edition, r.arch))
                .collect();
            if !unverified.is_empty() {
                text.push_str(&format!(
                    "\n**{UNVERIFIED}:** nothing vouched for the tarball of {} (no catalog \
                     hash, no SHA-256 pin, no signature): these packages may contain anything.\n",
                    join_and(&unverified)
                ));
            }
        }
        if !self.failures.is_empty() {
            text.push_str(&format!("\n{FAILURES_HEADING}\n"));
            for f in &self.failures {
                text.push_str(&format!("- {}: {}\n", f.what, code_span(&f.reason)));
            }
        }
        text
    }
}

/// `a`, `a and b`, `a, b and c`.
fn join_and(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// `text` as one inline code span, so that nothing in an error (file names from a hostile
/// tarball, `@channel`, links) is read as Markdown or a mention: one line, no backticks, cut
/// at [`MAX_REASON_LEN`].
fn code_span(text: &str) -> String {
    let mut line: String = text
        .chars()
        .map(|c| match c {
            '`' => '\'',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect();
    if line.chars().count() > MAX_REASON_LEN {
        line = line.chars().take(MAX_REASON_LEN).collect::<String>() + "…";
    }
    format!("`{line}`")
}

/// What happened to the message, for `--json` and the warnings (never the webhook URL).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Delivery {
    /// Host of the webhook, when one was given.
    pub host: Option<String>,
    /// True when the webhook accepted the post.
    pub posted: bool,
    /// Why it was not posted, when it should have been.
    pub warning: Option<String>,
    /// True when the message was appended to `$GITHUB_STEP_SUMMARY`.
    pub step_summary: bool,
}

/// Tells the team about `summary`: appends it to `$GITHUB_STEP_SUMMARY` when that is set, and
/// posts it to `webhook` when `policy` wants it. Problems are printed as warnings and
/// returned in the [`Delivery`], never as errors.
pub fn tell(summary: &Summary, policy: Notify, webhook: Option<&Webhook>) -> Delivery {
    let text = summary.markdown();
    let mut delivery = Delivery {
        host: webhook.map(Webhook::host),
        ..Delivery::default()
    };
    if let Some(path) = std::env::var_os(STEP_SUMMARY_VAR).filter(|p| !p.is_empty()) {
        match append(std::path::Path::new(&path), &text) {
            Ok(()) => delivery.step_summary = true,
            Err(err) => eprintln!("mm-pkg: warning: {err:#}"),
        }
    }
    if let Some(hook) = webhook.filter(|_| policy.wants(summary)) {
        match hook.post(&text) {
            Ok(()) => delivery.posted = true,
            Err(warning) => {
                eprintln!("mm-pkg: warning: {warning}; the packages are not affected");
                delivery.warning = Some(warning);
            }
        }
    }
    delivery
}

fn append(path: &std::path::Path, text: &str) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening ${STEP_SUMMARY_VAR} {}", path.display()))?;
    writeln!(file, "{text}")
        .with_context(|| format!("appending to ${STEP_SUMMARY_VAR} {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(version: &str, edition: &str) -> Row {
        Row {
            version: version.into(),
            edition: edition.into(),
            arch: "amd64".into(),
            packages: vec![
                ("deb".into(), "a".repeat(64)),
                ("rpm".into(), "b".repeat(64)),
            ],
            verified_by: Some(vec!["catalog".into(), "signature".into()]),
        }
    }

    #[test]
    fn headline_names_each_version_once_oldest_first() {
        let s = Summary {
            suite: Some("stable".into()),
            rows: vec![
                row("10.5.3", "enterprise"),
                row("9.11.19", "enterprise"),
                row("9.11.19", "team"),
            ],
            ..Summary::default()
        };
        assert_eq!(
            s.headline(),
            "mm-pkg: mattermost 9.11.19 and 10.5.3 published to stable"
        );
        let md = s.markdown();
        assert!(md.contains(
            "| 9.11.19 | team | amd64 | deb, rpm | deb `aaaaaaaaaaaa`, rpm `bbbbbbbbbbbb` | catalog, signature |"
        ));
        assert!(!md.contains(UNVERIFIED));
    }

    #[test]
    fn an_unverified_release_is_named_in_the_headline_the_table_and_a_warning() {
        let mut unsigned = row("9.11.90", "team");
        unsigned.verified_by = Some(Vec::new());
        let s = Summary {
            suite: Some("stable".into()),
            rows: vec![row("9.11.90", "enterprise"), unsigned],
            ..Summary::default()
        };
        assert_eq!(
            s.headline(),
            "mm-pkg: mattermost 9.11.90 published to stable, 1 UNVERIFIED"
        );
        let md = s.markdown();
        assert!(md.contains("| Version | Edition | Arch | Formats | SHA-256 | Verified by |"));
        assert!(md.contains("| 9.11.90 | team | amd64 | deb, rpm | deb `aaaaaaaaaaaa`, rpm `bbbbbbbbbbbb` | **UNVERIFIED** |"), "{md}");
        assert!(md.contains("**UNVERIFIED:** nothing vouched for the tarball of mattermost 9.11.90 (team, amd64)"), "{md}");
    }

    #[test]
    fn a_run_that_does_not_know_the_verification_has_no_such_column() {
        let mut r = row("9.11.90", "team");
        r.verified_by = None;
        let md = Summary {
            rows: vec![r],
            ..Summary::default()
        }
        .markdown();
        assert!(
            !md.contains(VERIFIED_HEADER) && !md.contains(UNVERIFIED),
            "{md}"
        );
    }

    #[test]
    fn failures_are_counted_and_quoted_inertly() {
        let s = Summary {
            suite: Some("stable".into()),
            rows: vec![row("9.11.19", "enterprise")],
            failures: vec![Failure {
                what: "mattermost 10.5.3 (team, amd64)".into(),
                reason: "bad `name` @channel\n[x](http://evil)".into(),
            }],
            present: 0,
        };
        assert_eq!(
            s.headline(),
            "mm-pkg: mattermost 9.11.19 published to stable, 1 build failed"
        );
        assert!(s.markdown().contains(
            "- mattermost 10.5.3 (team, amd64): `bad 'name' @channel [x](http://evil)`\n"
        ));
    }

    #[test]
    fn policy_decides_which_runs_post() {
        let nothing = Summary {
            suite: Some("stable".into()),
            present: 4,
            ..Summary::default()
        };
        assert_eq!(
            nothing.headline(),
            "mm-pkg: nothing new for stable (4 releases already published)"
        );
        assert!(!Notify::Changes.wants(&nothing));
        assert!(Notify::Always.wants(&nothing));
        let built = Summary {
            rows: vec![row("9.11.19", "team")],
            ..Summary::default()
        };
        assert!(Notify::Changes.wants(&built));
        assert!(!Notify::Failures.wants(&built));
        assert_eq!(built.headline(), "mm-pkg: mattermost 9.11.19 built");
    }
}
