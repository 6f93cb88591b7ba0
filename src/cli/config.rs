//! `build --config FILE` and `sync --config FILE` (or `MM_PKG_CONFIG`): flags kept in a TOML
//! file, each under its long name (`maintainer = "..."`, `revision = "1~deb12u1"`,
//! `format = ["deb"]`, `offline = true`). Keys at the top apply to both commands; keys in a
//! `[build]` or `[sync]` table only to that command, and win over the top. Flags on the
//! command line (and their environment variables) win over the file; a key that is not a
//! flag of the command is an error naming it (and the flag it most likely meant).
//!
//! Each value is checked by the flag's own parser, and a bad one is reported as the file's
//! (not the flag's); then the file is turned into command-line arguments appended for every
//! flag the command line left at its default, and the command line is parsed again.

use std::ffi::OsString;
use std::path::Path;

use anyhow::{Result, anyhow, bail};
use clap::ArgAction;
use clap::error::{ContextKind, ContextValue};
use clap::parser::ValueSource;

/// The commands that read a config file; each may have a table of its own.
pub const COMMANDS: &[&str] = &["build", "sync"];

/// Keys that are not flags a file may set.
const NOT_SETTABLE: &[&str] = &["config", "help"];

/// The arguments `file` adds to the command line of `mm-pkg NAME` (a subcommand of `mm_pkg`)
/// whose matches are `matches`.
pub fn arguments(
    file: &Path,
    mm_pkg: &clap::Command,
    name: &str,
    matches: &clap::ArgMatches,
) -> Result<Vec<OsString>> {
    let command = mm_pkg
        .find_subcommand(name)
        .ok_or_else(|| anyhow!("mm-pkg has no subcommand {name}"))?;
    let at = || format!("config file {}", file.display());
    let text = std::fs::read_to_string(file).map_err(|e| anyhow!("reading {}: {e}", at()))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e| anyhow!("{} is not valid TOML: {e}", at()))?;
    let mut args = Vec::new();
    for (key, value, place) in settings(&table, name).map_err(|e| anyhow!("{}: {e}", at()))? {
        let Some(arg) = flag(command, &key) else {
            bail!("{}: {}", at(), unknown(mm_pkg, name, &key, &place));
        };
        let given = matches!(
            matches.value_source(arg.get_id().as_str()),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        );
        if given {
            continue;
        }
        let wrong = |what: &str| {
            anyhow!(
                "{}: `{key}`{place} must be {what}, found {}",
                at(),
                value.type_str()
            )
        };
        let flag = format!("--{key}");
        let mut texts = Vec::new();
        match (arg.get_action(), &value) {
            (ArgAction::SetTrue, toml::Value::Boolean(on)) => {
                if *on {
                    args.push(OsString::from(&flag));
                }
            }
            (ArgAction::SetTrue, _) => return Err(wrong("true or false")),
            (ArgAction::Append, toml::Value::Array(items)) => {
                for item in items {
                    texts.push(scalar(item).ok_or_else(|| wrong("a list of strings"))?);
                }
            }
            (ArgAction::Append | ArgAction::Set, item) => {
                texts.push(scalar(item).ok_or_else(|| wrong("a string or a number"))?);
            }
            _ => return Err(wrong("a value this flag takes")),
        }
        for text in texts {
            check(arg, &text)
                .map_err(|why| anyhow!("{}: `{key} = {text:?}`{place}: {why}", at()))?;
            args.push(format!("{flag}={text}").into());
        }
    }
    Ok(args)
}

/// The `(key, value, place)` settings of `table` for the command `name`: the top-level keys,
/// then the keys of its own table, which replace top-level keys of the same name. `place` is
/// ` in [name]` for a table's key, empty for a top-level one.
fn settings(table: &toml::Table, name: &str) -> Result<Vec<(String, toml::Value, String)>> {
    let mut out: Vec<(String, toml::Value, String)> = Vec::new();
    let mut own = None;
    for (key, value) in table {
        match value {
            toml::Value::Table(inner) if COMMANDS.contains(&key.as_str()) => {
                if key == name {
                    own = Some(inner);
                }
            }
            toml::Value::Table(_) => bail!(
                "unknown table [{key}]: the tables are {}",
                COMMANDS
                    .iter()
                    .map(|c| format!("[{c}]"))
                    .collect::<Vec<_>>()
                    .join(" and ")
            ),
            _ => out.push((key.clone(), value.clone(), String::new())),
        }
    }
    for (key, value) in own.into_iter().flatten() {
        out.retain(|(k, _, _)| k != key);
        out.push((key.clone(), value.clone(), format!(" in [{name}]")));
    }
    Ok(out)
}

/// The flag of `command` a file may set under `key`.
fn flag<'a>(command: &'a clap::Command, key: &str) -> Option<&'a clap::Arg> {
    command
        .get_arguments()
        .find(|a| a.get_long() == Some(key) && !NOT_SETTABLE.contains(&key))
}

/// Why `key` (found at `place`) is no flag of `mm-pkg NAME`, with the likeliest meant one, or
/// the table it belongs in when it is another command's flag.
fn unknown(mm_pkg: &clap::Command, name: &str, key: &str, place: &str) -> String {
    let keys = |command: &str| -> Vec<String> {
        mm_pkg
            .find_subcommand(command)
            .into_iter()
            .flat_map(|c| c.get_arguments())
            .filter_map(|a| a.get_long())
            .filter(|l| !NOT_SETTABLE.contains(l))
            .map(str::to_string)
            .collect()
    };
    let own = keys(name);
    let other = COMMANDS
        .iter()
        .find(|c| **c != name && keys(c).iter().any(|k| k == key));
    let hint = match other {
        Some(other) => format!(" (it is a flag of `mm-pkg {other}`: put it in a [{other}] table)"),
        None => own
            .iter()
            .map(|k| (strsim::jaro(key, k), k))
            .filter(|(score, _)| *score > 0.8)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, k)| format!(" (did you mean `{k}`?)"))
            .unwrap_or_default(),
    };
    format!(
        "unknown key `{key}`{place} for `mm-pkg {name}`{hint}. The keys are its flags by their \
         long name: {}",
        own.join(", ")
    )
}

/// Checks `text` with `arg`'s own parser (each part, when the flag splits its value), in a
/// command of that one flag.
fn check(arg: &clap::Arg, text: &str) -> Result<(), String> {
    let alone = clap::Command::new("config").no_binary_name(true).arg(
        clap::Arg::new("value")
            .long("value")
            .action(ArgAction::Set)
            .value_parser(arg.get_value_parser().clone()),
    );
    let parts: Vec<&str> = match arg.get_value_delimiter() {
        Some(d) => text.split(d).collect(),
        None => vec![text],
    };
    for part in parts {
        let value = OsString::from(format!("--value={part}"));
        alone
            .clone()
            .try_get_matches_from([value])
            .map_err(|e| explain(&e))?;
    }
    Ok(())
}

/// What a parser's error says about the value, without naming the flag (the value came
/// from the file).
fn explain(error: &clap::Error) -> String {
    use std::error::Error;
    if let Some(source) = error.source() {
        return source.to_string();
    }
    if let Some(ContextValue::Strings(valid)) = error.get(ContextKind::ValidValue) {
        return format!("possible values: {}", valid.join(", "));
    }
    error.kind().to_string()
}

/// A string or number as the command line would spell it.
fn scalar(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        _ => None,
    }
}
