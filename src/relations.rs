//! Extra package relations from `--depends`, `--recommends` and `--suggests`: one list for
//! both formats, added to the rendered control file and spec preamble, so they apply with
//! the default templates and with a user's own alike.

use serde::Serialize;

/// A comparison in a versioned relation, spelled the Debian way on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Op {
    /// `<<` (RPM `<`).
    Less,
    /// `<=`.
    LessEqual,
    /// `=`.
    Equal,
    /// `>=`.
    GreaterEqual,
    /// `>>` (RPM `>`).
    Greater,
}

impl Op {
    /// Parses Debian's spelling.
    pub fn parse(text: &str) -> Option<Op> {
        Some(match text {
            "<<" => Op::Less,
            "<=" => Op::LessEqual,
            "=" => Op::Equal,
            ">=" => Op::GreaterEqual,
            ">>" => Op::Greater,
            _ => return None,
        })
    }

    fn deb(self) -> &'static str {
        match self {
            Op::Less => "<<",
            Op::LessEqual => "<=",
            Op::Equal => "=",
            Op::GreaterEqual => ">=",
            Op::Greater => ">>",
        }
    }

    fn rpm(self) -> &'static str {
        match self {
            Op::Less => "<",
            Op::LessEqual => "<=",
            Op::Equal => "=",
            Op::GreaterEqual => ">=",
            Op::Greater => ">",
        }
    }
}

/// One relation: a package name and an optional version constraint, checked by
/// [`crate::validate::relation`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Relation {
    /// Package name.
    pub name: String,
    /// Comparison and version.
    pub constraint: Option<(Op, String)>,
}

impl Relation {
    /// Debian spelling: `name (>= 1.2)`.
    pub fn deb(&self) -> String {
        match &self.constraint {
            Some((op, v)) => format!("{} ({} {v})", self.name, op.deb()),
            None => self.name.clone(),
        }
    }

    /// RPM spelling: `name >= 1.2`.
    pub fn rpm(&self) -> String {
        match &self.constraint {
            Some((op, v)) => format!("{} {} {v}", self.name, op.rpm()),
            None => self.name.clone(),
        }
    }
}

/// The extra relations of one build.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExtraRelations {
    /// `--depends`: Debian `Depends`, RPM `Requires`.
    pub depends: Vec<Relation>,
    /// `--recommends`: `Recommends` in both.
    pub recommends: Vec<Relation>,
    /// `--suggests`: `Suggests` in both.
    pub suggests: Vec<Relation>,
}

impl ExtraRelations {
    fn fields(&self) -> [(&'static str, &'static str, &[Relation]); 3] {
        [
            ("Depends", "Requires", &self.depends),
            ("Recommends", "Recommends", &self.recommends),
            ("Suggests", "Suggests", &self.suggests),
        ]
    }

    /// `control` (a rendered Debian control file) with the relations appended to their
    /// fields; a field the template lacks is added before `Description:`.
    pub fn add_to_control(&self, control: &str) -> String {
        let mut lines: Vec<String> = control.lines().map(str::to_string).collect();
        for (field, _, relations) in self.fields() {
            if relations.is_empty() {
                continue;
            }
            let list: Vec<String> = relations.iter().map(Relation::deb).collect();
            let list = list.join(", ");
            let prefix = format!("{}:", field.to_ascii_lowercase());
            match lines
                .iter()
                .position(|l| l.to_ascii_lowercase().starts_with(&prefix))
            {
                Some(start) => {
                    // The field's last line: continuation lines start with a space or tab.
                    let mut last = start;
                    while lines
                        .get(last + 1)
                        .is_some_and(|l| l.starts_with([' ', '\t']))
                    {
                        last += 1;
                    }
                    let line = &mut lines[last];
                    if line.trim_end().ends_with(':') {
                        line.push(' ');
                    } else {
                        line.push_str(", ");
                    }
                    line.push_str(&list);
                }
                None => {
                    let at = lines
                        .iter()
                        .position(|l| l.to_ascii_lowercase().starts_with("description:"))
                        .unwrap_or(lines.len());
                    lines.insert(at, format!("{field}: {list}"));
                }
            }
        }
        let mut out = lines.join("\n");
        if control.ends_with('\n') {
            out.push('\n');
        }
        out
    }

    /// `spec` (a rendered RPM package template) with one preamble line per relation, before
    /// the first section.
    pub fn add_to_spec(&self, spec: &str) -> String {
        let mut added = String::new();
        for (_, tag, relations) in self.fields() {
            for relation in relations {
                added.push_str(&format!("{tag}: {}\n", relation.rpm()));
            }
        }
        if added.is_empty() {
            return spec.to_string();
        }
        let at = spec
            .match_indices('\n')
            .map(|(i, _)| i + 1)
            .find(|&i| spec[i..].starts_with('%'))
            .unwrap_or(spec.len());
        let mut out = String::with_capacity(spec.len() + added.len());
        out.push_str(&spec[..at]);
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&added);
        out.push_str(&spec[at..]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extra() -> ExtraRelations {
        ExtraRelations {
            depends: vec![Relation {
                name: "postgresql-client".into(),
                constraint: Some((Op::GreaterEqual, "15".into())),
            }],
            recommends: vec![],
            suggests: vec![Relation {
                name: "nginx".into(),
                constraint: None,
            }],
        }
    }

    #[test]
    fn control_fields_are_appended_or_added() {
        let control = "Package: x\nDepends: adduser,\n libcap2-bin\nDescription: d\n long\n";
        assert_eq!(
            extra().add_to_control(control),
            "Package: x\nDepends: adduser,\n libcap2-bin, postgresql-client (>= 15)\n\
             Suggests: nginx\nDescription: d\n long\n"
        );
    }

    #[test]
    fn spec_lines_go_before_the_first_section() {
        let spec = "Name: x\nRequires: a\n\n%description\nd\n";
        assert_eq!(
            extra().add_to_spec(spec),
            "Name: x\nRequires: a\n\nRequires: postgresql-client >= 15\nSuggests: nginx\n\
             %description\nd\n"
        );
    }
}
