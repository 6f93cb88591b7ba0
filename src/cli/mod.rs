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

/// The value parser of a flag that also reads an environment variable: `check`, whose error
/// then says the value came from the flag or the variable (a config file's value is checked
/// by the same `check` and blamed on the file).
#[derive(Clone)]
pub struct FlagOrEnv(pub fn(&str) -> Result<String, String>);

impl clap::builder::TypedValueParser for FlagOrEnv {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<String, clap::Error> {
        let check = self.0;
        let whence = arg
            .and_then(|a| {
                let env = a.get_env()?.to_string_lossy().into_owned();
                Some(format!(" (from --{} or {env})", a.get_long()?))
            })
            .unwrap_or_default();
        let parse = move |v: &str| check(v).map_err(|e| format!("{e}{whence}"));
        parse.parse_ref(cmd, arg, value)
    }
}

/// The maintainer when neither `--maintainer`, `MM_PKG_MAINTAINER` nor a config file names
/// one.
pub const DEFAULT_MAINTAINER: &str = "mm-pkg <mm-pkg@example.org>";

/// The maintainer `DEBFULLNAME` and `DEBEMAIL` give, read as `dch` reads them: the address
/// from `DEBEMAIL` (which may be `Name <email>` itself), the name from `DEBFULLNAME`, else
/// from `DEBEMAIL`. `None` when `DEBEMAIL` is not set, or (with a warning) names no one.
pub fn debian_maintainer() -> anyhow::Result<Option<String>> {
    let var = |name: &str| {
        std::env::var(name)
            .ok()
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let Some(debemail) = var("DEBEMAIL") else {
        return Ok(None);
    };
    let (name_in_email, email) = match debemail.strip_suffix('>').and_then(|s| s.rsplit_once('<')) {
        Some((name, email)) => (Some(name.trim().to_string()), email.trim().to_string()),
        None => (None, debemail.clone()),
    };
    let Some(name) = var("DEBFULLNAME").or(name_in_email.filter(|n| !n.is_empty())) else {
        eprintln!(
            "mm-pkg: warning: DEBEMAIL is set but names no one (set DEBFULLNAME, or DEBEMAIL to \
             `Name <email>`): it is not used for the maintainer"
        );
        return Ok(None);
    };
    let maintainer = format!("{name} <{email}>");
    mm_pkg::validate::maintainer(&maintainer).map_err(|e| {
        anyhow::anyhow!(
            "DEBFULLNAME and DEBEMAIL give the maintainer, and {e:#}; fix them, or name the \
             maintainer with --maintainer or MM_PKG_MAINTAINER"
        )
    })?;
    Ok(Some(maintainer))
}

/// `--arch`: `amd64` or `arm64`, also under the names RPM and the kernel use (`x86_64`,
/// `aarch64`).
pub fn arch() -> impl clap::builder::TypedValueParser<Value = String> {
    use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
    PossibleValuesParser::new([
        PossibleValue::new("amd64").alias("x86_64"),
        PossibleValue::new("arm64").alias("aarch64"),
    ])
    .map(|value| {
        match value.as_str() {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        }
        .to_string()
    })
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
/// `build --config FILE` or `sync --config FILE` for flags the command line left at their
/// defaults. A first pass, in which no flag is required yet (the file may give `--repo`),
/// finds the file; the command line with the file's settings is then parsed with every rule.
/// Errors are reported here; the `Err` is the exit status.
pub fn parse_command_line(
    make: impl Fn() -> clap::Command,
) -> Result<clap::ArgMatches, std::process::ExitCode> {
    let mut argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let relaxed = make().mut_subcommands(|c| c.mut_args(|a| a.required(false)));
    // A command line the first pass refuses is refused again, with every rule, below.
    if let Ok(matches) = relaxed.try_get_matches_from(&argv)
        && let Some((name, sub)) = matches.subcommand()
        && config::COMMANDS.contains(&name)
        && let Some(file) = sub.get_one::<std::path::PathBuf>("config")
    {
        match config::arguments(file, &make(), name, sub) {
            Ok(extra) => argv.extend(extra),
            Err(err) => {
                let json = argv.iter().any(|a| a == "--json");
                return Err(failure::report(&err, failure::Kind::Usage, json));
            }
        }
    }
    make()
        .try_get_matches_from(&argv)
        .map_err(failure::report_clap)
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
