//! One deb822 paragraph (a `.deb`'s control file, a stanza of a `Packages` index), parsed and
//! checked as dpkg parses a control file, and stricter where apt and dpkg would read the same
//! bytes differently: a field given twice (dpkg refuses it, apt takes the last), a blank line
//! inside a value (dpkg refuses it, apt would start a new stanza there), a second paragraph,
//! a field the index writer sets itself, control characters.

use anyhow::{Result, anyhow, bail};

use super::super::apt::INDEX_FIELDS;

/// Largest control file accepted: far above any real package's (Mattermost's is about 1 KiB),
/// far below what would weigh on every client that downloads the index.
pub const MAX_CONTROL_BYTES: usize = 1 << 20;

/// Fields of one paragraph in order (name, value; a multi-line value keeps its continuation
/// lines, each starting with its space or tab). Refuses what dpkg refuses in a control file
/// (a field given twice in any case, a blank line inside a value, a second paragraph, a
/// line that is neither a field nor a continuation) and control characters but tab.
pub fn parse_control(text: &str) -> Result<Vec<(String, String)>> {
    let (fields, problem) = read_paragraph(text);
    match problem {
        Some(e) => Err(e),
        None => Ok(fields),
    }
}

/// [`parse_control`] for a reader that wants to go on: the fields read (every occurrence of a
/// field given twice, in order, as apt reads them: the last one counts) and the first thing
/// dpkg would refuse. After anything but a field given twice, the fields stop where it is.
pub fn read_paragraph(text: &str) -> (Vec<(String, String)>, Option<anyhow::Error>) {
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut twice = None;
    let mut ended = false;
    for (i, line) in text.split('\n').enumerate() {
        let number = i + 1;
        let stop = |e: anyhow::Error, fields| (fields, Some(e));
        if let Some(c) = line.chars().find(|c| is_forbidden(*c)) {
            let e = anyhow!(
                "line {number} holds the control character U+{:04X}, which no field may carry",
                c as u32
            );
            return stop(e, fields);
        }
        if line.trim().is_empty() {
            match fields.last() {
                Some((name, _)) if line.starts_with([' ', '\t']) && !line.is_empty() => {
                    let e = anyhow!("line {number}: a blank line in the value of field {name}");
                    return stop(e, fields);
                }
                Some(_) => ended = true,
                None => {}
            }
            continue;
        }
        if ended {
            let e = anyhow!("line {number}: a second paragraph; a control file holds one");
            return stop(e, fields);
        }
        if line.starts_with([' ', '\t']) {
            let Some((_, value)) = fields.last_mut() else {
                return stop(
                    anyhow!("line {number}: a continuation line before any field"),
                    fields,
                );
            };
            value.push('\n');
            value.push_str(line.trim_end());
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return stop(anyhow!("line {number} is not `Field: value`"), fields);
        };
        if let Err(e) = check_field_name(name) {
            return stop(anyhow!("line {number}: {e}"), fields);
        }
        if let Some((first, _)) = fields.iter().find(|(n, _)| n.eq_ignore_ascii_case(name))
            && twice.is_none()
        {
            twice = Some(anyhow!(
                "line {number}: field {name} is given twice (also as {first}); dpkg refuses \
                 such a package, and apt reads the last value"
            ));
        }
        fields.push((name.to_string(), value.trim().to_string()));
    }
    (fields, twice)
}

/// C0 controls but tab (newlines separate lines before this is asked), and DEL.
fn is_forbidden(c: char) -> bool {
    (c.is_ascii_control() && c != '\t') || c == '\u{7f}'
}

/// Refuses a field name Debian Policy (5.1) does not allow: printable US-ASCII but colon and
/// space, not starting with `#` or `-`.
pub fn check_field_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && !name.starts_with(['#', '-'])
        && name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
    if !ok {
        bail!(
            "`{}` is not a field name (printable ASCII but colon and space, not starting \
             with # or -)",
            name.escape_debug()
        );
    }
    Ok(())
}

/// Checks the fields of a package's control file for the index: parsed as
/// [`parse_control`] parses them, none of the fields the index writer sets itself
/// ([`INDEX_FIELDS`]), and no larger than [`MAX_CONTROL_BYTES`]. Also re-checks fields read
/// back from the repository's own records.
pub fn check_package_fields(fields: &[(String, String)]) -> Result<()> {
    let size: usize = fields.iter().map(|(n, v)| n.len() + v.len() + 3).sum();
    if size > MAX_CONTROL_BYTES {
        bail!("the control file is {size} bytes; more than {MAX_CONTROL_BYTES} is refused");
    }
    for (i, (name, value)) in fields.iter().enumerate() {
        check_field_name(name)?;
        if let Some(own) = INDEX_FIELDS.iter().find(|f| f.eq_ignore_ascii_case(name)) {
            bail!(
                "the control file sets {own}, which the repository index writes itself \
                 (where the file is and what its digests are): a package cannot choose it"
            );
        }
        if fields[..i]
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            bail!("field {name} is given twice");
        }
        let mut lines = value.split('\n');
        let first = lines.next().unwrap_or("");
        let bad_first = first != first.trim();
        let bad_rest = lines.any(|l| !l.starts_with([' ', '\t']) || l.trim().is_empty());
        if bad_first || bad_rest || value.chars().any(|c| c != '\n' && is_forbidden(c)) {
            bail!(
                "field {name} has a value that would not read back as one field: `{}`",
                value.escape_debug()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "Package: t\nVersion: 1.0\nArchitecture: amd64\n";

    #[test]
    fn a_control_file_reads_with_continuation_lines() {
        let text = format!("{BASE}Description: t\n more\n .\n\tend\n");
        let fields = parse_control(&text).unwrap();
        assert_eq!(
            fields[3],
            ("Description".into(), "t\n more\n .\n\tend".into())
        );
        check_package_fields(&fields).unwrap();
    }

    #[test]
    fn what_dpkg_refuses_is_refused() {
        for (text, why) in [
            (format!("{BASE}Version: 2.0\n"), "twice"),
            (format!("{BASE}version: 2.0\n"), "twice"),
            (format!("{BASE}Description: t\n  \n more\n"), "blank line"),
            (format!("{BASE}\nPackage: u\n"), "second paragraph"),
            (format!("# comment\n{BASE}"), "line 1"),
            (format!("#X: 1\n{BASE}"), "not a field name"),
            (format!(" x\n{BASE}"), "before any field"),
            (format!("{BASE}no colon\n"), "not `Field: value`"),
        ] {
            let err = format!("{:#}", parse_control(&text).unwrap_err());
            assert!(err.contains(why), "{text:?}: {err}");
        }
    }

    #[test]
    fn fields_the_index_sets_and_control_characters_are_refused() {
        for (text, why) in [
            (format!("{BASE}Filename: pool/other.deb\n"), "Filename"),
            (format!("{BASE}sha256: 00\n"), "SHA256"),
            (format!("{BASE}Size: 1\n"), "Size"),
            (format!("{BASE}MD5sum: 00\n"), "MD5sum"),
        ] {
            let fields = parse_control(&text).unwrap();
            let err = format!("{:#}", check_package_fields(&fields).unwrap_err());
            assert!(err.contains(why), "{text:?}: {err}");
        }
        for bad in ["a\rb", "a\0b", "a\u{1}b", "a\u{7f}", "a\r"] {
            let text = format!("{BASE}X-A: {bad}\n");
            assert!(parse_control(&text).is_err(), "{bad:?}");
        }
        let huge = format!("{BASE}Description: {}\n", "x".repeat(MAX_CONTROL_BYTES));
        let fields = parse_control(&huge).unwrap();
        assert!(check_package_fields(&fields).is_err());
    }

    #[test]
    fn fields_that_would_not_read_back_are_refused() {
        for value in ["a\nFilename: x", "a\n ", " a", "a\n\n b"] {
            let fields = vec![("X-A".to_string(), value.to_string())];
            assert!(check_package_fields(&fields).is_err(), "{value:?}");
        }
    }
}
