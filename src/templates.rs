//! Handlebars templates for every text the packages carry: the systemd unit, the Debian
//! control files and maintainer scripts, the RPM package description and scriptlets.
//!
//! The defaults are embedded from `templates/` and `systemd/`; `--templates DIR` replaces
//! any of them by file name, either directly in DIR or at its place in the source tree's
//! layout (`deb/control`, `rpm/rpm-post`, `systemd/mattermost.service`), which is also the
//! layout `mm-pkg templates export` writes.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use handlebars::Handlebars;
use serde::Serialize;

/// Shell functions shared by all maintainer scripts, used as the partial `{{> functions.sh}}`.
pub const FUNCTIONS: &str = "functions.sh";
/// The migration functions, a partial of [`FUNCTIONS`].
pub const MIGRATION: &str = "migration.sh";

/// Every template by file name, with its embedded default.
pub const DEFAULTS: &[(&str, &str)] = &[
    (FUNCTIONS, include_str!("../templates/functions.sh")),
    (MIGRATION, include_str!("../templates/migration.sh")),
    (
        "mattermost.service",
        include_str!("../systemd/mattermost.service"),
    ),
    (
        "config-snapshot",
        include_str!("../templates/config-snapshot"),
    ),
    (
        "mattermost.env",
        include_str!("../templates/mattermost.env"),
    ),
    ("mmctl", include_str!("../templates/mmctl")),
    ("control", include_str!("../templates/deb/control")),
    (
        "changelog.Debian",
        include_str!("../templates/deb/changelog.Debian"),
    ),
    ("copyright", include_str!("../templates/deb/copyright")),
    (
        "lintian-overrides",
        include_str!("../templates/deb/lintian-overrides"),
    ),
    ("preinst", include_str!("../templates/deb/preinst")),
    ("postinst", include_str!("../templates/deb/postinst")),
    ("prerm", include_str!("../templates/deb/prerm")),
    ("postrm", include_str!("../templates/deb/postrm")),
    (
        "mattermost.spec",
        include_str!("../templates/rpm/mattermost.spec"),
    ),
    ("rpm-pre", include_str!("../templates/rpm/rpm-pre")),
    ("rpm-post", include_str!("../templates/rpm/rpm-post")),
    ("rpm-preun", include_str!("../templates/rpm/rpm-preun")),
    ("rpm-postun", include_str!("../templates/rpm/rpm-postun")),
];

/// Templates that live in a subdirectory in the source tree (and in an exported set); every
/// other template lives at the top.
pub const SUBDIRECTORIES: &[(&str, &[&str])] = &[
    (
        "deb",
        &[
            "control",
            "changelog.Debian",
            "copyright",
            "lintian-overrides",
            "preinst",
            "postinst",
            "prerm",
            "postrm",
        ],
    ),
    (
        "rpm",
        &[
            "mattermost.spec",
            "rpm-pre",
            "rpm-post",
            "rpm-preun",
            "rpm-postun",
        ],
    ),
    ("systemd", &["mattermost.service"]),
];

/// Where template `name` lives in an exported set, relative to its top: `deb/control`,
/// `functions.sh`.
pub fn relative_path(name: &str) -> String {
    SUBDIRECTORIES
        .iter()
        .find(|(_, names)| names.contains(&name))
        .map(|(dir, _)| format!("{dir}/{name}"))
        .unwrap_or_else(|| name.to_string())
}

/// Writes every embedded default template into `dir` (created if missing) in the source
/// tree's layout; refuses to replace a file that exists. Returns the files written.
pub fn export(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for (name, text) in DEFAULTS {
        let path = dir.join(relative_path(name));
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        let mut file = fs::File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .with_context(|| {
                format!(
                    "creating {} (an existing file is never replaced)",
                    path.display()
                )
            })?;
        std::io::Write::write_all(&mut file, text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// The override files in `dir`, each with the template name it replaces: files named like a
/// template at the top, or at the template's place in the source tree's layout. Anything else
/// (an unknown name, a template in the wrong subdirectory, the same template twice) is an
/// error, so that no file is silently ignored.
fn overrides_in(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let known: Vec<&str> = DEFAULTS.iter().map(|(n, _)| *n).collect();
    let mut found: Vec<(String, PathBuf)> = Vec::new();
    let mut pending = vec![(dir.to_path_buf(), String::new())];
    while let Some((at, prefix)) = pending.pop() {
        let listing = fs::read_dir(&at)
            .with_context(|| format!("reading template directory {}", at.display()))?;
        for item in listing {
            let item =
                item.with_context(|| format!("reading template directory {}", at.display()))?;
            let path = item.path();
            let file_name = item.file_name().to_string_lossy().into_owned();
            let relative = format!("{prefix}{file_name}");
            if path.is_dir() {
                if prefix.is_empty() && SUBDIRECTORIES.iter().any(|(d, _)| *d == file_name) {
                    pending.push((path, format!("{relative}/")));
                    continue;
                }
                bail!(
                    "template directory {}: subdirectory {relative}/ is not part of the layout \
                     (only {} hold templates)",
                    dir.display(),
                    SUBDIRECTORIES
                        .iter()
                        .map(|(d, _)| format!("{d}/"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            let name = known
                .iter()
                .find(|n| relative == **n || relative == relative_path(n))
                .map(|n| n.to_string());
            let Some(name) = name else {
                bail!(
                    "template override {} matches no template; the names are: {}",
                    path.display(),
                    known
                        .iter()
                        .map(|n| relative_path(n))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            };
            if let Some((_, first)) = found.iter().find(|(n, _)| *n == name) {
                bail!(
                    "template {name} is overridden twice, by {} and {}: keep one",
                    first.display(),
                    path.display()
                );
            }
            found.push((name, path));
        }
    }
    found.sort();
    Ok(found)
}

/// The loaded template set.
pub struct Templates {
    registry: Handlebars<'static>,
}

impl Templates {
    /// The embedded defaults, each replaced by a file of the same name in `overrides` (at the
    /// top or in the source tree's layout, see [`SUBDIRECTORIES`]).
    ///
    /// A file in `overrides` that matches no template is an error, so that a typo does not
    /// silently leave the default in place.
    pub fn load(overrides: Option<&Path>) -> Result<Self> {
        let mut registry = Handlebars::new();
        registry.set_strict_mode(true);
        registry.register_escape_fn(handlebars::no_escape);
        for (name, text) in DEFAULTS {
            registry
                .register_template_string(name, *text)
                .with_context(|| format!("embedded template {name}"))?;
        }
        if let Some(dir) = overrides {
            for (name, path) in overrides_in(dir)? {
                let text = fs::read_to_string(&path)
                    .with_context(|| format!("reading template {}", path.display()))?;
                registry
                    .register_template_string(&name, text)
                    .with_context(|| format!("template {} does not parse", path.display()))?;
            }
        }
        Ok(Templates { registry })
    }

    /// Renders template `name` with `data`.
    pub fn render(&self, name: &str, data: &impl Serialize) -> Result<String> {
        self.registry
            .render(name, data)
            .with_context(|| format!("rendering template {name}"))
    }
}
