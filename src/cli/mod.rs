//! The command line: one module per command (`source`: resolve and list, `build`, `repo`
//! and `key`, `sync` and `notify`), the flags they share, value parsers that apply
//! [`mm_pkg::validate`] to flags (so that a bad value is a usage error, exit code 2), what
//! kind of failure ended a run and how it is reported, and the generated shell completions
//! and man page. `main.rs` only parses and dispatches.

pub mod build;
pub mod config;
pub mod failure;
pub mod generate;
pub mod repo;
pub mod source;
pub mod sync;
pub mod tarball;
pub mod webhook;

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;

/// `path` made absolute (against the working directory), for `--json` consumers.
pub fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("resolving {}", path.display()))
}

/// `SOURCE_DATE_EPOCH` when set (reproducible builds), else now.
pub fn source_date_epoch() -> anyhow::Result<u64> {
    match source_date_env()? {
        Some(date) => Ok(date),
        None => Ok(SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs()),
    }
}

/// `SOURCE_DATE_EPOCH`, checked, when set and not empty.
pub fn source_date_env() -> anyhow::Result<Option<u64>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.is_empty() => mm_pkg::validate::source_date_epoch(&v).map(Some),
        _ => Ok(None),
    }
}

/// `--maintainer` / `MM_PKG_MAINTAINER`, checked by [`mm_pkg::validate::maintainer`].
pub fn maintainer(value: &str) -> Result<String, String> {
    mm_pkg::validate::maintainer(value)
        .map(|()| value.to_string())
        .map_err(|e| format!("{e:#}"))
}

/// `--revision`, checked by [`mm_pkg::validate::revision`].
pub fn revision(value: &str) -> Result<String, String> {
    mm_pkg::validate::revision(value)
        .map(|()| value.to_string())
        .map_err(|e| format!("{e:#}"))
}

/// Text for the end of `--help`: what the exit status means.
pub const EXIT_STATUS_HELP: &str = "Exit status: 0 success, 1 failure (nothing matched, download, \
verification or build failed), 2 usage error (unknown flag, invalid value). With --json a \
failure also prints {\"error\": \"...\", \"kind\": \"...\"} on stdout.";

/// `--sha256`: 64 hex digits, any case.
pub fn sha256(value: &str) -> Result<String, String> {
    if value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(value.to_ascii_lowercase())
    } else {
        Err("expected a SHA-256: 64 hex digits".into())
    }
}

/// Which source flags the user gave rather than left at their defaults.
#[derive(Debug, Clone, Copy, Default)]
pub struct Given {
    /// `--edition` was on the command line.
    pub edition: bool,
    /// `--arch` was on the command line.
    pub arch: bool,
}

impl Given {
    /// Reads the value sources of a subcommand's matches.
    pub fn from_matches(matches: &clap::ArgMatches) -> Self {
        let given = |id| {
            matches!(
                matches.value_source(id),
                Some(
                    clap::parser::ValueSource::CommandLine | clap::parser::ValueSource::EnvVariable
                )
            )
        };
        Given {
            edition: given("edition"),
            arch: given("arch"),
        }
    }
}

/// Parses the process's command line with `command` (built by `make`), adding the settings of
/// `build --config FILE` for flags the command line left at their defaults. Errors are
/// reported here; the `Err` is the exit status.
pub fn parse_command_line(
    make: impl Fn() -> clap::Command,
) -> Result<clap::ArgMatches, std::process::ExitCode> {
    let mut argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let matches = make()
        .try_get_matches_from(&argv)
        .map_err(failure::report_clap)?;
    let Some(("build", build)) = matches.subcommand() else {
        return Ok(matches);
    };
    let Some(file) = build.get_one::<std::path::PathBuf>("config") else {
        return Ok(matches);
    };
    let command = make();
    let build_command = command
        .find_subcommand("build")
        .expect("the build subcommand exists");
    match config::arguments(file, build_command, build) {
        Ok(extra) => {
            argv.extend(extra);
            make()
                .try_get_matches_from(&argv)
                .map_err(failure::report_clap)
        }
        Err(err) => {
            let json = argv.iter().any(|a| a == "--json");
            Err(failure::report(&err, failure::Kind::Usage, json))
        }
    }
}

fn relation_arg(flag: &str, value: &str) -> Result<String, String> {
    mm_pkg::validate::relation(flag, value)
        .map(|_| value.to_string())
        .map_err(|e| format!("{e:#}"))
}

/// `--depends`, checked by [`mm_pkg::validate::relation`].
pub fn depends(value: &str) -> Result<String, String> {
    relation_arg("--depends", value)
}

/// `--recommends`, checked by [`mm_pkg::validate::relation`].
pub fn recommends(value: &str) -> Result<String, String> {
    relation_arg("--recommends", value)
}

/// `--suggests`, checked by [`mm_pkg::validate::relation`].
pub fn suggests(value: &str) -> Result<String, String> {
    relation_arg("--suggests", value)
}

/// `--distribution`, checked by [`mm_pkg::validate::distribution`].
pub fn distribution(value: &str) -> Result<String, String> {
    mm_pkg::validate::distribution(value)
        .map(|()| value.to_string())
        .map_err(|e| format!("{e:#}"))
}

/// The extra relations of `build`, parsed from the flags' (already checked) values.
pub fn relations(
    depends: &[String],
    recommends: &[String],
    suggests: &[String],
) -> anyhow::Result<mm_pkg::relations::ExtraRelations> {
    let parse = |flag: &str, values: &[String]| -> anyhow::Result<Vec<_>> {
        values
            .iter()
            .map(|v| mm_pkg::validate::relation(flag, v))
            .collect()
    };
    Ok(mm_pkg::relations::ExtraRelations {
        depends: parse("--depends", depends)?,
        recommends: parse("--recommends", recommends)?,
        suggests: parse("--suggests", suggests)?,
    })
}
