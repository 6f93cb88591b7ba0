//! The data every template is rendered with.

use chrono::{DateTime, Datelike, Utc};
use serde::Serialize;

use crate::layout::LayoutData;
use crate::relations::ExtraRelations;
use crate::release::{Edition, Release};

/// The package format a text is rendered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Debian `.deb`.
    Deb,
    /// RPM `.rpm`.
    Rpm,
}

impl Format {
    /// Name as used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Deb => "deb",
            Format::Rpm => "rpm",
        }
    }
}

/// Template data: package identity, dates, licence and layout.
#[derive(Debug, Clone, Serialize)]
pub struct TemplateContext {
    /// Package name (`mattermost` or `mattermost-team`).
    pub package: String,
    /// The other edition's package name, which this one conflicts with and replaces.
    pub other_package: String,
    /// Upstream version, e.g. `9.11.18`.
    pub version: String,
    /// Upstream version as package managers sort it (`9.11.0~rc1`).
    pub package_version: String,
    /// Packaging revision (`1`, `1~deb12u1`; see [`crate::validate::revision`]).
    pub revision: String,
    /// `package_version-revision`.
    pub full_version: String,
    /// `enterprise` or `team`.
    pub edition: &'static str,
    /// `Enterprise` or `Team`.
    pub edition_title: &'static str,
    /// Debian architecture.
    pub deb_arch: &'static str,
    /// RPM architecture.
    pub rpm_arch: &'static str,
    /// Maintainer / packager, `Name <email>`.
    pub maintainer: String,
    /// RPM `Vendor:`; empty (no tag) unless `--vendor` names who built the package.
    pub vendor: String,
    /// Upstream tarball file name.
    pub source_name: String,
    /// Version of mm-pkg.
    pub tool_version: &'static str,
    /// Build date, seconds since 1970 (SOURCE_DATE_EPOCH, or the release's newest file).
    pub date: u64,
    /// Build date in RFC 2822 form (Debian changelog).
    pub date_rfc2822: String,
    /// Build date as `%changelog` writes it (`Wed Nov 25 2026`).
    pub date_rpm: String,
    /// Build year.
    pub year: i32,
    /// Short licence name for the Debian copyright file.
    pub license_short: &'static str,
    /// RPM `License:` value.
    pub license_rpm: &'static str,
    /// The release's licence text, as shipped.
    pub license_text: String,
    /// The licence text indented for a DEP-5 field (blank lines as ` .`).
    pub license_text_indented: String,
    /// Which format is being rendered.
    pub format: Format,
    /// True when rendering for Debian.
    pub deb: bool,
    /// True when rendering for RPM.
    pub rpm: bool,
    /// Paths, owners and modes.
    pub layout: LayoutData,
    /// Debian changelog distribution (`--distribution`, default `unstable`).
    pub distribution: String,
    /// Relations from `--depends`, `--recommends`, `--suggests`, added to both formats.
    pub relations: ExtraRelations,
}

impl TemplateContext {
    /// Context for `release` built at `source_date` (seconds since the epoch).
    pub fn new(
        release: &Release,
        revision: &str,
        maintainer: &str,
        source_date: u64,
        layout: LayoutData,
    ) -> Self {
        let (package, other, title, short, rpm_license) = match release.edition {
            Edition::Enterprise => (
                "mattermost",
                "mattermost-team",
                "Enterprise",
                "Mattermost-Enterprise",
                "LicenseRef-Mattermost-Enterprise",
            ),
            Edition::Team => ("mattermost-team", "mattermost", "Team", "MIT", "MIT"),
        };
        let package_version = release.version.package_version();
        let mut context = TemplateContext {
            package: package.into(),
            other_package: other.into(),
            version: release.version.to_string(),
            full_version: format!("{package_version}-{revision}"),
            package_version,
            revision: revision.into(),
            edition: release.edition.as_str(),
            edition_title: title,
            deb_arch: release.arch.as_str(),
            rpm_arch: release.arch.rpm_name(),
            maintainer: maintainer.into(),
            vendor: String::new(),
            source_name: release.tarball_name(),
            tool_version: env!("CARGO_PKG_VERSION"),
            date: 0,
            date_rfc2822: String::new(),
            date_rpm: String::new(),
            year: 1970,
            license_short: short,
            license_rpm: rpm_license,
            license_text: String::new(),
            license_text_indented: String::new(),
            format: Format::Deb,
            deb: true,
            rpm: false,
            layout,
            distribution: "unstable".into(),
            relations: ExtraRelations::default(),
        };
        context.set_license_text(String::new());
        context.set_date(source_date);
        context
    }

    /// Dates the build `date` (seconds since 1970).
    pub fn set_date(&mut self, date: u64) {
        let time: DateTime<Utc> = i64::try_from(date)
            .ok()
            .and_then(|d| DateTime::from_timestamp(d, 0))
            .unwrap_or_default();
        self.date = date;
        self.date_rfc2822 = time.format("%a, %d %b %Y %H:%M:%S +0000").to_string();
        self.date_rpm = time.format("%a %b %d %Y").to_string();
        self.year = time.year();
    }

    /// Sets the licence text found in the release.
    pub fn set_license_text(&mut self, text: String) {
        self.license_text_indented = text
            .trim_end()
            .lines()
            .map(|l| {
                if l.trim().is_empty() {
                    " .".to_string()
                } else {
                    format!(" {}", l.trim_end())
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        self.license_text = text;
    }

    /// The same context for rendering `format`'s texts.
    pub fn for_format(&self, format: Format) -> Self {
        let mut c = self.clone();
        c.format = format;
        c.deb = format == Format::Deb;
        c.rpm = format == Format::Rpm;
        c
    }
}

/// `value` as an RPM `Vendor:`: one line of printable text (empty for none), refused with the
/// rule otherwise, since it ends up in the package header.
pub fn checked_vendor(value: &str) -> anyhow::Result<String> {
    if value.chars().any(char::is_control) {
        anyhow::bail!(
            "--vendor {value:?} holds a control character; give one line of text such as \
             `Example Packagers`"
        );
    }
    Ok(value.trim().to_string())
}
