//! Parses the RPM package template: the preamble and `%description` / `%changelog`
//! sections of a spec file, the part of a spec that describes a binary package.

use anyhow::{Context, Result, anyhow, bail};
use chrono::{NaiveDate, NaiveTime};

/// A dependency relation kind, as a spec file spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelationKind {
    /// `Requires:`.
    Requires,
    /// `Requires(pre):`.
    RequiresPre,
    /// `Requires(post):`.
    RequiresPost,
    /// `Requires(preun):`.
    RequiresPreun,
    /// `Requires(postun):`.
    RequiresPostun,
    /// `Recommends:`.
    Recommends,
    /// `Suggests:`.
    Suggests,
    /// `Conflicts:`.
    Conflicts,
    /// `Provides:`.
    Provides,
    /// `Obsoletes:`.
    Obsoletes,
}

/// One dependency: `name [op version]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    /// Kind of relation.
    pub kind: RelationKind,
    /// Package or capability name.
    pub name: String,
    /// Comparison and version, e.g. (`>=`, `1.2`).
    pub version: Option<(String, String)>,
}

/// One `%changelog` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangelogEntry {
    /// Seconds since the epoch (noon UTC of the entry's day, as rpmbuild stores it).
    pub time: u32,
    /// `Name <email> - version`.
    pub author: String,
    /// The entry's lines.
    pub text: String,
}

/// The package-describing part of a spec file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpecHeader {
    /// `Name:`.
    pub name: String,
    /// `Summary:`.
    pub summary: String,
    /// `License:`.
    pub license: String,
    /// `URL:`.
    pub url: Option<String>,
    /// `Group:`.
    pub group: Option<String>,
    /// `Vendor:`.
    pub vendor: Option<String>,
    /// `Packager:`.
    pub packager: Option<String>,
    /// Dependencies in template order.
    pub relations: Vec<Relation>,
    /// `%description` text.
    pub description: String,
    /// `%changelog` entries, newest first.
    pub changelog: Vec<ChangelogEntry>,
}

impl SpecHeader {
    /// Parses the rendered template.
    pub fn parse(text: &str) -> Result<Self> {
        let mut spec = SpecHeader::default();
        let mut section = "";
        let mut description = Vec::new();
        let mut changelog_lines: Vec<&str> = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let context = || format!("RPM package template, line {}: `{line}`", n + 1);
            if line.starts_with('%') {
                section = line.split_whitespace().next().unwrap_or_default();
                if !matches!(section, "%description" | "%changelog") {
                    bail!(
                        "{}: only %description and %changelog sections are understood",
                        context()
                    );
                }
                continue;
            }
            match section {
                "%description" => description.push(line),
                "%changelog" => changelog_lines.push(line),
                _ => {
                    if line.trim().is_empty() || line.starts_with('#') {
                        continue;
                    }
                    spec.preamble(line).with_context(context)?;
                }
            }
        }
        spec.description = description.join("\n").trim().to_string();
        spec.changelog = parse_changelog(&changelog_lines)?;
        for (field, value) in [
            ("Name", &spec.name),
            ("Summary", &spec.summary),
            ("License", &spec.license),
        ] {
            if value.is_empty() {
                bail!("RPM package template: `{field}:` is missing");
            }
        }
        if spec.description.is_empty() {
            bail!("RPM package template: `%description` is missing");
        }
        Ok(spec)
    }

    fn preamble(&mut self, line: &str) -> Result<()> {
        let (key, value) = line
            .split_once(':')
            .ok_or_else(|| anyhow!("expected `Tag: value`"))?;
        let value = value.trim().to_string();
        let kind = match key.trim().to_ascii_lowercase().as_str() {
            "name" => return set(&mut self.name, value),
            "summary" => return set(&mut self.summary, value),
            "license" => return set(&mut self.license, value),
            "url" => return set_opt(&mut self.url, value),
            "group" => return set_opt(&mut self.group, value),
            "vendor" => return set_opt(&mut self.vendor, value),
            "packager" => return set_opt(&mut self.packager, value),
            "requires" => RelationKind::Requires,
            "requires(pre)" => RelationKind::RequiresPre,
            "requires(post)" => RelationKind::RequiresPost,
            "requires(preun)" => RelationKind::RequiresPreun,
            "requires(postun)" => RelationKind::RequiresPostun,
            "recommends" => RelationKind::Recommends,
            "suggests" => RelationKind::Suggests,
            "conflicts" => RelationKind::Conflicts,
            "provides" => RelationKind::Provides,
            "obsoletes" => RelationKind::Obsoletes,
            other => bail!("unknown tag `{other}`"),
        };
        for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let words: Vec<&str> = item.split_whitespace().collect();
            let version = match words.as_slice() {
                [_] => None,
                [_, op @ ("<" | "<=" | "=" | ">=" | ">"), version] => {
                    Some((op.to_string(), version.to_string()))
                }
                _ => bail!("cannot read dependency `{item}`: expected `name` or `name OP version`"),
            };
            self.relations.push(Relation {
                kind,
                name: words[0].to_string(),
                version,
            });
        }
        Ok(())
    }
}

fn set(field: &mut String, value: String) -> Result<()> {
    *field = value;
    Ok(())
}

fn set_opt(field: &mut Option<String>, value: String) -> Result<()> {
    *field = Some(value);
    Ok(())
}

fn parse_changelog(lines: &[&str]) -> Result<Vec<ChangelogEntry>> {
    let mut entries: Vec<ChangelogEntry> = Vec::new();
    for line in lines {
        if let Some(head) = line.strip_prefix("* ") {
            let words: Vec<&str> = head.splitn(5, ' ').collect();
            if words.len() < 5 {
                bail!(
                    "changelog line `{line}`: expected `* Www Mmm DD YYYY Name <email> - version`"
                );
            }
            let date = NaiveDate::parse_from_str(&words[..4].join(" "), "%a %b %d %Y")
                .with_context(|| format!("changelog line `{line}`: bad date"))?;
            let time = date
                .and_time(NaiveTime::from_hms_opt(12, 0, 0).unwrap())
                .and_utc()
                .timestamp();
            entries.push(ChangelogEntry {
                time: u32::try_from(time).context("changelog date out of range")?,
                author: words[4].to_string(),
                text: String::new(),
            });
        } else if let Some(entry) = entries.last_mut() {
            if !line.trim().is_empty() {
                if !entry.text.is_empty() {
                    entry.text.push('\n');
                }
                entry.text.push_str(line);
            }
        } else if !line.trim().is_empty() {
            bail!("changelog line `{line}` comes before any `* date author` line");
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_preamble_sections_and_relations() {
        let spec = SpecHeader::parse(
            "Name: app\nSummary: An app\nLicense: MIT\nURL: https://x\nRequires(pre): shadow-utils\n\
             Conflicts: other, old < 2\n%description\nLong text.\n\n%changelog\n\
             * Wed Nov 25 2026 A <a@b> - 1-1\n- first\n",
        )
        .unwrap();
        assert_eq!(spec.name, "app");
        assert_eq!(spec.relations.len(), 3);
        assert_eq!(spec.relations[2].version, Some(("<".into(), "2".into())));
        assert_eq!(spec.description, "Long text.");
        assert_eq!(spec.changelog[0].author, "A <a@b> - 1-1");
        assert_eq!(spec.changelog[0].text, "- first");
    }

    #[test]
    fn rejects_unknown_tags() {
        assert!(SpecHeader::parse("Name: a\nBogus: b\n").is_err());
    }
}
