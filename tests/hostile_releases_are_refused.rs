//! A release that could escape its directory (directly or through its own links), take over
//! a path the packaging owns, reach the admin's data through the data-directory links,
//! carries names, special or sparse files that dpkg and rpm cannot install, is not gzip, is
//! cut short or is not a server release is refused with one line naming the problem, and
//! nothing is written to the output directory.

mod common;

use std::fs;

use sha2::{Digest, Sha256};

use common::fixture::{Hostile, Spec, write_release};
use common::{mm_pkg, output};

fn expected_message(h: Hostile) -> &'static str {
    match h {
        Hostile::AbsolutePath => "`/etc/cron.d/evil` has an absolute path",
        Hostile::DotDot => "`mattermost/../../etc/evil` has a `..` component",
        Hostile::SymlinkOutside => {
            "`mattermost/client/escape` is a symbolic link to `../../../etc`, outside the release"
        }
        Hostile::HardlinkOutside => {
            "`mattermost/bin/shadow` is a hard link to `etc/shadow`, outside the release"
        }
        Hostile::Device => "`mattermost/bin/sda` is a block device",
        Hostile::Fifo => "`mattermost/logs/pipe` is a fifo",
        Hostile::NotGzip => "is not a gzip file",
        Hostile::Truncated => "truncated or corrupt",
        Hostile::NoServer => "has no bin/mattermost",
        Hostile::LinkChainEscape => {
            "`mattermost/esc` is a symbolic link to `client/static/top/../../etc`, which leaves the release"
        }
        Hostile::EntryBelowLink => {
            "`mattermost/esc/cron.d/x` is below `mattermost/esc`, a symbolic link of the release"
        }
        Hostile::LinkToLiveConfig | Hostile::HardlinkToLiveConfig => {
            "`mattermost/bin/cfg` is a link to `../config/config.json`, which resolves into `mattermost/config`, a link the packaging makes into the data directory"
        }
        Hostile::LinkIntoClientPlugins => {
            "`mattermost/bin/helper` is a link to `../client/plugins/x/run`, which resolves into `mattermost/client/plugins`"
        }
        Hostile::ClientPluginsTakeover => {
            "`mattermost/client/plugins` takes over `mattermost/client/plugins`, the webapp plugin directory"
        }
        Hostile::VersionFileTakeover => {
            "`mattermost/mm-pkg-version` takes over `mattermost/mm-pkg-version`, the packaging's marker"
        }
        Hostile::DefaultsTakeover => {
            "`mattermost/defaults/config/config.json` is inside `mattermost/defaults`, the packaging's directory"
        }
        Hostile::LogsNotDir => "`mattermost/logs` is not a plain directory",
        Hostile::PluginsContent => {
            "`mattermost/plugins/evil/server/dist/plugin-linux-amd64` is inside `mattermost/plugins`, a link the packaging makes into the data directory"
        }
        Hostile::DataDir => "`mattermost/data` takes over `mattermost/data`",
        Hostile::LinkLoop => {
            "`mattermost/x` is a symbolic link to `y` that does not resolve within 40 links (a loop)"
        }
        Hostile::ControlCharName => {
            "`mattermost/client/a\\nb.js` has a control character in its name"
        }
        Hostile::LongComponent => "has a name component of 256 bytes",
        Hostile::FileThenDir => {
            "`mattermost/client/x/y` is below `mattermost/client/x`, which is a file (a file and a directory at the same path)"
        }
        Hostile::DirThenFile => {
            "`mattermost/client/y` is a file where the release has a directory (a file and a directory at the same path)"
        }
        Hostile::PaxSparse => "is a sparse file (PAX format)",
        Hostile::GnuSparse => "`mattermost/bin/sparse` is a sparse file (GNU format)",
        Hostile::PaxGlobalHeader => "has a PAX global header",
        Hostile::HugePaxHeader => "has a PAX extended header of",
        Hostile::DatedAfter2106 => "after the year 2106",
    }
}

/// Builds the release broken by `hostile`; returns what went wrong, if anything.
fn problem_with(hostile: Hostile) -> Option<String> {
    let dir = tempfile::tempdir().unwrap();
    let spec = Spec {
        hostile: Some(hostile),
        ..Spec::new("9.11.90")
    };
    let tarball = write_release(&dir.path().join("release"), &spec);
    let out_dir = dir.path().join("dist");
    // The bytes are vouched for, so what is refused is their content.
    let sha = hex::encode(Sha256::digest(fs::read(&tarball).unwrap()));
    let result = output(
        mm_pkg()
            .args(["build", "9.11.90", "--sha256", &sha, "--tarball"])
            .arg(&tarball)
            .arg("--output")
            .arg(&out_dir),
    );
    let stderr = String::from_utf8_lossy(&result.stderr);
    if result.status.success() {
        return Some("was accepted".into());
    }
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
    if errors.len() != 1 || !errors[0].contains(expected_message(hostile)) {
        return Some(format!(
            "expected one error line with `{}`, got:\n{stderr}",
            expected_message(hostile)
        ));
    }
    let left: Vec<_> = fs::read_dir(&out_dir)
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    if !left.is_empty() {
        return Some(format!("left {left:?} in the output directory"));
    }
    None
}

#[test]
fn each_hostile_variant_is_refused_and_nothing_is_written() {
    // Every variant is tried, and every one that is not refused as expected is reported.
    let problems: Vec<String> = Hostile::ALL
        .into_iter()
        .filter_map(|h| problem_with(h).map(|p| format!("{h:?}: {p}")))
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn intact_release_with_internal_links_is_accepted() {
    // The checks refuse escapes, not links as such: chains that stay inside and a hard link
    // are fine (a link to the top or to client/ is not: see tests/attacks_r1.rs).
    let dir = tempfile::tempdir().unwrap();
    let link = |path: &str, target: &str, hard| (path.to_string(), target.to_string(), hard);
    let spec = Spec {
        extra_links: vec![
            link("client/static/bin", "../../bin", false),
            link("bin/server", "mattermost", false),
            link("bin/again", "../client/static/bin/server", false),
            link("bin/ctl", "mattermost/bin/mmctl", true),
            link("i18n/default.json", "en.json", false),
        ],
        ..Spec::new("9.11.90")
    };
    let tarball = write_release(&dir.path().join("release"), &spec);
    let result = output(
        mm_pkg()
            .args(["build", "9.11.90", "--format", "deb", "--tarball"])
            .arg(&tarball)
            .arg("--output")
            .arg(dir.path().join("dist")),
    );
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
}
