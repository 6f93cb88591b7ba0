//! The one place that decides which values may reach package metadata and maintainer
//! scripts.
//!
//! Templates are trusted (they are the user's own files), the data rendered into them is
//! not: command-line flags, environment variables and names taken from the release all end
//! up in the control file, the spec, the changelogs or the shell scripts that run as root.
//! A newline in `--maintainer` would add a field (`Obsoletes: postgresql-server`), a quote
//! in a release's file name would end a shell string. Every such value is checked here,
//! before anything is written, and refused with the rule it breaks.

use anyhow::{Result, bail};
use serde_json::Value;

use crate::context::TemplateContext;
use crate::relations::{Op, Relation};

/// Template data fields that hold several lines on purpose: the release's licence text,
/// placed in the copyright file and the RPM header, never in a field or a script line; and
/// the sysusers.d entry, which the layout writes from its own constants.
const MULTI_LINE_FIELDS: &[&str] = &[
    "license_text",
    "license_text_indented",
    "layout.sysusers_text",
];

/// Longest value accepted for a single-line field.
const MAX_FIELD_LEN: usize = 256;

/// Longest packaging revision accepted.
const MAX_REVISION_LEN: usize = 64;

/// The rule for `--revision`, quoted in its error.
pub const REVISION_RULE: &str = "a packaging revision is 1 to 64 characters from A-Z a-z 0-9 \
    + . ~ (what both a Debian revision and an RPM Release allow), for example 1, 1~deb12u1, \
    0ubuntu1~22.04 or 2.el9";

/// Checks a maintainer (`--maintainer`, `MM_PKG_MAINTAINER`, a config file, `DEBEMAIL`):
/// `Name <email>` on one
/// line, a name without `<`, `>` or control characters and an address `local@domain`
/// without spaces.
pub fn maintainer(value: &str) -> Result<()> {
    let refuse = |why: &str| -> Result<()> {
        bail!(
            "maintainer {}: {why}; expected `Name <email>`, e.g. `Jane Doe <jane@example.org>`",
            quoted(value)
        )
    };
    if let Some(c) = value.chars().find(|c| is_line_break_or_control(*c)) {
        return refuse(&format!(
            "contains the control character {}",
            c.escape_unicode()
        ));
    }
    if value.len() > MAX_FIELD_LEN {
        return refuse(&format!("longer than {MAX_FIELD_LEN} bytes"));
    }
    let Some(inner) = value.strip_suffix('>') else {
        return refuse("does not end with `>`");
    };
    let Some((name, email)) = inner.rsplit_once(" <") else {
        return refuse("has no ` <` before the address");
    };
    let name = name.trim();
    if name.is_empty() {
        return refuse("the name is empty");
    }
    if name.contains(['<', '>']) {
        return refuse("the name contains `<` or `>`");
    }
    if value.starts_with(char::is_whitespace) {
        return refuse("starts with a space");
    }
    let Some((local, domain)) = email.split_once('@') else {
        return refuse("the address has no `@`");
    };
    if local.is_empty() || domain.is_empty() || domain.contains('@') {
        return refuse("the address is not `local@domain`");
    }
    if let Some(c) = email
        .chars()
        .find(|c| !c.is_ascii_graphic() || matches!(c, '<' | '>' | '(' | ')' | ',' | ';' | '"'))
    {
        return refuse(&format!("the address contains `{c}`"));
    }
    Ok(())
}

/// Checks a packaging revision against [`REVISION_RULE`].
pub fn revision(value: &str) -> Result<()> {
    if value.is_empty()
        || value.len() > MAX_REVISION_LEN
        || !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '~'))
    {
        bail!("--revision {}: {REVISION_RULE}", quoted(value));
    }
    Ok(())
}

/// The rule for `--depends`, `--recommends` and `--suggests`, quoted in their errors.
pub const RELATION_RULE: &str = "a relation is a package name (a-z 0-9 + . -, starting with a \
    letter or digit, at least 2 characters) optionally followed by one version constraint in \
    Debian's spelling, e.g. `postgresql-client` or `postgresql-client (>= 15)` with << <= = \
    >= >>, the version starting with a digit and made of A-Z a-z 0-9 . + ~ : -; alternatives \
    (`a | b`) and lists are not accepted (repeat the flag)";

/// Parses and checks one relation flag value against [`RELATION_RULE`]; `flag` names it in
/// the error.
pub fn relation(flag: &str, value: &str) -> Result<Relation> {
    let refuse = || anyhow::anyhow!("{flag} {}: {RELATION_RULE}", quoted(value));
    let (name, constraint) = match value.split_once('(') {
        None => (value.trim(), None),
        Some((name, rest)) => {
            let inner = rest.strip_suffix(')').ok_or_else(refuse)?;
            let (op, version) = inner.trim().split_once(' ').ok_or_else(refuse)?;
            let op = Op::parse(op.trim()).ok_or_else(refuse)?;
            let version = version.trim();
            let version_ok = version.starts_with(|c: char| c.is_ascii_digit())
                && version
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '~' | ':' | '-'));
            if !version_ok {
                return Err(refuse());
            }
            (name.trim(), Some((op, version.to_string())))
        }
    };
    let name_ok = name.len() >= 2
        && name.len() <= 128
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '+' | '.' | '-'));
    if !name_ok {
        return Err(refuse());
    }
    Ok(Relation {
        name: name.to_string(),
        constraint,
    })
}

/// The rule for `--distribution`, quoted in its error.
pub const DISTRIBUTION_RULE: &str = "a distribution is 1 to 64 characters from A-Z a-z 0-9 . + -, \
    starting with a letter or digit, e.g. unstable, bookworm, bookworm-backports or UNRELEASED";

/// Checks the Debian changelog distribution against [`DISTRIBUTION_RULE`].
pub fn distribution(value: &str) -> Result<()> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value.starts_with(|c: char| c.is_ascii_alphanumeric())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-'));
    if !ok {
        bail!("--distribution {}: {DISTRIBUTION_RULE}", quoted(value));
    }
    Ok(())
}

/// Parses `SOURCE_DATE_EPOCH`: whole seconds since 1970 that RPM's 32-bit time fields can
/// hold (up to 4294967295, in 2106).
pub fn source_date_epoch(value: &str) -> Result<u64> {
    match value.trim().parse::<u64>() {
        Ok(seconds) if seconds <= u64::from(u32::MAX) => Ok(seconds),
        _ => bail!(
            "SOURCE_DATE_EPOCH={}: expected whole seconds since 1970, at most 4294967295 (what \
             RPM's time fields hold)",
            quoted(value)
        ),
    }
}

/// Checks a path that maintainer scripts name inside single quotes: an absolute path of
/// characters that mean nothing to the shell (`A-Z a-z 0-9 / . _ - + @ , : = ~ %`).
pub fn script_path(path: &str) -> Result<()> {
    let safe = |c: char| {
        c.is_ascii_alphanumeric()
            || matches!(
                c,
                '/' | '.' | '_' | '-' | '+' | '@' | ',' | ':' | '=' | '~' | '%'
            )
    };
    if !path.starts_with('/') || !path.chars().all(safe) {
        bail!(
            "{}: the maintainer scripts would have to name this path, and it contains \
             characters other than A-Z a-z 0-9 / . _ - + @ , : = ~ %; refusing the release",
            quoted(path)
        );
    }
    Ok(())
}

/// Checks every value in the template data before anything is rendered or written.
///
/// Each string the templates can reach is single-line and free of control characters
/// (except the [`MULTI_LINE_FIELDS`]); on top of that the maintainer,
/// the revision and the versions follow their own rules, and paths that scripts name are
/// shell-safe. A field added to [`TemplateContext`] later is covered by the first rule
/// without being listed here.
pub fn template_data(context: &TemplateContext) -> Result<()> {
    maintainer(&context.maintainer)?;
    revision(&context.revision)?;
    distribution(&context.distribution)?;
    for (flag, list) in [
        ("--depends", &context.relations.depends),
        ("--recommends", &context.relations.recommends),
        ("--suggests", &context.relations.suggests),
    ] {
        for r in list {
            relation(flag, &r.deb())?;
        }
    }
    for (field, value) in [
        ("version", &context.version),
        ("package_version", &context.package_version),
        ("full_version", &context.full_version),
    ] {
        if value.is_empty()
            || !value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '~' | '-'))
        {
            bail!("{field} {}: not a package version", quoted(value));
        }
    }
    for path in &context.layout.server_owned_files {
        script_path(path)?;
    }
    let data = serde_json::to_value(context)?;
    check_strings(&data, "")
}

/// Walks the serialised template data: no string (outside [`MULTI_LINE_FIELDS`]) holds a
/// control character or is longer than [`MAX_FIELD_LEN`] bytes.
fn check_strings(value: &Value, at: &str) -> Result<()> {
    match value {
        Value::String(s) => {
            if let Some(c) = s.chars().find(|c| is_line_break_or_control(*c)) {
                bail!(
                    "template value `{at}` {} contains the control character {}; refusing to \
                     write it into package metadata or scripts",
                    quoted(s),
                    c.escape_unicode()
                );
            }
            if s.len() > MAX_FIELD_LEN {
                bail!("template value `{at}` is longer than {MAX_FIELD_LEN} bytes");
            }
            Ok(())
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, v)| check_strings(v, &format!("{at}[{i}]"))),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| {
                let at = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                (at, v)
            })
            .filter(|(at, _)| !MULTI_LINE_FIELDS.contains(&at.as_str()))
            .try_for_each(|(at, v)| check_strings(v, &at)),
        _ => Ok(()),
    }
}

/// Control characters (C0, DEL, C1) and the Unicode line and paragraph separators.
fn is_line_break_or_control(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

/// `value` quoted for an error message, with control characters made visible.
fn quoted(value: &str) -> String {
    let visible: String = value
        .chars()
        .map(|c| {
            if is_line_break_or_control(c) {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect();
    format!("`{visible}`")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maintainer_accepts_name_and_address() {
        for ok in [
            "mm-pkg <mm-pkg@example.org>",
            "Jane Q. Doe <jane.doe+pkg@example.org>",
            "Jürgen Müller <jm@example.de>",
        ] {
            maintainer(ok).unwrap_or_else(|e| panic!("{ok}: {e:#}"));
        }
    }

    #[test]
    fn maintainer_refuses_injection_and_malformed_values() {
        for bad in [
            "x <a@b>\nObsoletes: postgresql-server",
            "x <a@b>\rPre-Depends: evil",
            "x <a@b>\u{85}",
            "x\t<a@b>",
            "x <a@b>\u{2028}Provides: y",
            "nobody",
            "<a@b>",
            "x <a@b",
            "x <ab>",
            "x <a b@c>",
            "x <a@b> y",
            "x <y> <a@b>",
            " x <a@b>",
        ] {
            let err = maintainer(bad).expect_err(bad).to_string();
            assert!(err.contains("Name <email>"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn revision_accepts_distro_revisions_only() {
        for ok in ["1", "12", "1~deb12u1", "0ubuntu1~22.04", "2.el9", "1+b1"] {
            revision(ok).unwrap_or_else(|e| panic!("{ok}: {e:#}"));
        }
        for bad in [
            "",
            "1-2",
            "1 2",
            "1\n",
            "1_2",
            "1:2",
            "1%{x}",
            &"1".repeat(65),
        ] {
            let err = revision(bad).expect_err(bad).to_string();
            assert!(err.contains("A-Z a-z 0-9"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn relations_take_a_name_and_one_debian_constraint() {
        let r = relation("--depends", "postgresql-client (>= 15)").unwrap();
        assert_eq!(r.deb(), "postgresql-client (>= 15)");
        assert_eq!(r.rpm(), "postgresql-client >= 15");
        assert_eq!(relation("--suggests", "nginx").unwrap().rpm(), "nginx");
        assert_eq!(
            relation("--depends", "xy (<< 1:2.0-1)").unwrap().rpm(),
            "xy < 1:2.0-1"
        );
        for bad in [
            "a",
            "Foo",
            "a | b",
            "a, b",
            "a (>= )",
            "a (> 1)",
            "a (>= 1",
            "a\nObsoletes: b",
            "a (>= 1)\nX: y",
            "a (>= x1)",
            "/usr/bin/x",
        ] {
            let err = relation("--depends", bad).expect_err(bad).to_string();
            assert!(err.contains("a relation is"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn source_date_epoch_fits_rpm_time_fields() {
        assert_eq!(source_date_epoch("1764000000").unwrap(), 1_764_000_000);
        for bad in ["-1", "1.5", "4294967296", "now", "1\n2"] {
            assert!(source_date_epoch(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn distribution_is_one_suite_name() {
        for ok in ["unstable", "bookworm-backports", "UNRELEASED", "jammy"] {
            distribution(ok).unwrap();
        }
        for bad in ["", "a b", "x;", "-x", "unstable\nX: y", "a/b"] {
            assert!(distribution(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn script_paths_are_shell_safe() {
        script_path("/opt/mattermost/client/css/main.1a2b.css").unwrap();
        for bad in [
            "/opt/mattermost/client/x'$(id)'.css",
            "/opt/mattermost/client/a b.css",
            "/opt/mattermost/client/`id`.css",
            "/opt/mattermost/client/a\nb.css",
            "relative.css",
        ] {
            assert!(script_path(bad).is_err(), "{bad:?}");
        }
    }
}
