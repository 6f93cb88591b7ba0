//! Handlebars templates for every text the packages carry: the systemd unit, the Debian
//! control files and maintainer scripts, the RPM package description and scriptlets.
//!
//! The defaults are embedded from `templates/` and `systemd/`; `--templates DIR` replaces
//! any of them by file name.

use std::fs;
use std::path::Path;

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

/// The loaded template set.
pub struct Templates {
    registry: Handlebars<'static>,
}

impl Templates {
    /// The embedded defaults, each replaced by a file of the same name in `overrides`.
    ///
    /// A file in `overrides` that matches no template name is an error, so that a typo does
    /// not silently leave the default in place.
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
            let listing = fs::read_dir(dir)
                .with_context(|| format!("reading template directory {}", dir.display()))?;
            for item in listing {
                let item =
                    item.with_context(|| format!("reading template directory {}", dir.display()))?;
                let path = item.path();
                if !path.is_file() {
                    continue;
                }
                let name = item.file_name().to_string_lossy().into_owned();
                if !DEFAULTS.iter().any(|(n, _)| *n == name) {
                    let known: Vec<&str> = DEFAULTS.iter().map(|(n, _)| *n).collect();
                    bail!(
                        "template override {} matches no template; the names are: {}",
                        path.display(),
                        known.join(", ")
                    );
                }
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
