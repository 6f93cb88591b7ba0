//! `build --config FILE` (or `MM_PKG_CONFIG`): build flags kept in a TOML file, each under
//! its long name (`maintainer = "..."`, `revision = "1~deb12u1"`, `format = ["deb"]`,
//! `offline = true`). Flags on the command line (and their environment variables) win; a key
//! that is not a build flag is an error naming it.
//!
//! The file is turned into command-line arguments appended for every flag the command line
//! left at its default, and the command line is parsed again: each value goes through the
//! same parser and checks as if it had been typed.

use std::ffi::OsString;
use std::path::Path;

use anyhow::{Context, Result, bail};
use clap::ArgAction;
use clap::parser::ValueSource;

/// Keys that are not flags a file may set.
const NOT_SETTABLE: &[&str] = &["config", "help"];

/// The arguments `file` adds to a `build` command line whose matches are `matches`.
pub fn arguments(
    file: &Path,
    build: &clap::Command,
    matches: &clap::ArgMatches,
) -> Result<Vec<OsString>> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("reading config file {}", file.display()))?;
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("config file {} is not valid TOML", file.display()))?;
    let mut args = Vec::new();
    for (key, value) in &table {
        let arg = build
            .get_arguments()
            .find(|a| a.get_long() == Some(key.as_str()) && !NOT_SETTABLE.contains(&key.as_str()));
        let Some(arg) = arg else {
            let keys: Vec<&str> = build
                .get_arguments()
                .filter_map(|a| a.get_long())
                .filter(|l| !NOT_SETTABLE.contains(l))
                .collect();
            bail!(
                "config file {}: unknown key `{key}`; the keys are build's flags by their long \
                 name: {}",
                file.display(),
                keys.join(", ")
            );
        };
        let given = matches!(
            matches.value_source(arg.get_id().as_str()),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        );
        if given {
            continue;
        }
        let flag = format!("--{key}");
        let wrong = |what: &str| {
            anyhow::anyhow!(
                "config file {}: `{key}` must be {what}, found {}",
                file.display(),
                value.type_str()
            )
        };
        match (arg.get_action(), value) {
            (ArgAction::SetTrue, toml::Value::Boolean(on)) => {
                if *on {
                    args.push(OsString::from(&flag));
                }
            }
            (ArgAction::SetTrue, _) => return Err(wrong("true or false")),
            (ArgAction::Append, toml::Value::Array(items)) => {
                for item in items {
                    args.push(
                        format!(
                            "{flag}={}",
                            scalar(item).ok_or_else(|| wrong("a list of strings"))?
                        )
                        .into(),
                    );
                }
            }
            (ArgAction::Append | ArgAction::Set, item) => {
                let text = scalar(item).ok_or_else(|| wrong("a string or a number"))?;
                args.push(format!("{flag}={text}").into());
            }
            _ => return Err(wrong("a value this flag takes")),
        }
    }
    Ok(args)
}

/// A string or number as the command line would spell it.
fn scalar(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        _ => None,
    }
}
