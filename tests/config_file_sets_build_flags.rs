//! `build --config FILE` / `MM_PKG_CONFIG`: a pipeline keeps its build flags in a TOML file;
//! flags on the command line win, unknown keys and bad values are refused.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::fixture::{Spec, write_release};
use common::{have, mm_pkg, output, package_in, run};

const CONFIG: &str = r#"
maintainer = "Build Bot <bot@example.org>"
revision = "1~deb12u1"
format = ["deb"]
compression = "xz"
"#;

fn field(deb: &Path, name: &str) -> String {
    run(Command::new("dpkg-deb").arg("-f").arg(deb).arg(name))
        .trim()
        .to_string()
}

#[test]
fn config_file_sets_flags_and_the_command_line_wins() {
    if !have("dpkg-deb") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tarball = write_release(&dir.path().join("r"), &Spec::new("9.11.90"));
    let config = dir.path().join("mm-pkg.toml");
    fs::write(&config, CONFIG).unwrap();

    let out = dir.path().join("from-file");
    run(mm_pkg()
        .args(["build", "--config"])
        .arg(&config)
        .arg("--tarball")
        .arg(&tarball)
        .arg("--output")
        .arg(&out));
    assert!(
        package_in(&out, "rpm").is_none(),
        "format = [\"deb\"] applies"
    );
    let deb = package_in(&out, "deb").unwrap();
    assert_eq!(
        deb.file_name().unwrap(),
        "mattermost_9.11.90-1~deb12u1_amd64.deb"
    );
    assert_eq!(field(&deb, "Maintainer"), "Build Bot <bot@example.org>");
    let members = run(Command::new("ar").arg("t").arg(&deb));
    assert!(
        members.contains("data.tar.xz"),
        "compression = \"xz\": {members}"
    );

    // Through the environment, with a flag overriding one key.
    let out = dir.path().join("overridden");
    run(mm_pkg()
        .env("MM_PKG_CONFIG", &config)
        .args(["build", "--revision", "7", "--tarball"])
        .arg(&tarball)
        .arg("--output")
        .arg(&out));
    let deb = package_in(&out, "deb").unwrap();
    assert_eq!(deb.file_name().unwrap(), "mattermost_9.11.90-7_amd64.deb");
    assert_eq!(field(&deb, "Maintainer"), "Build Bot <bot@example.org>");
}

#[test]
fn unknown_keys_and_bad_values_in_the_config_file_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let tarball = write_release(&dir.path().join("r"), &Spec::new("9.11.90"));
    for (text, needle) in [
        ("maintainr = \"x <a@b.org>\"\n", "unknown key `maintainr`"),
        ("revision = \"1-2\"\n", "A-Z a-z 0-9 + . ~"),
        (
            "maintainer = \"x <a@b.org>\\nObsoletes: postgresql-server\"\n",
            "control character",
        ),
        ("offline = \"yes\"\n", "`offline` must be true or false"),
        ("revision = [\n", "not valid TOML"),
    ] {
        let config = dir.path().join("bad.toml");
        fs::write(&config, text).unwrap();
        let out = dir.path().join("dist");
        let result = output(
            mm_pkg()
                .args(["build", "--config"])
                .arg(&config)
                .arg("--tarball")
                .arg(&tarball)
                .arg("--output")
                .arg(&out),
        );
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert_eq!(result.status.code(), Some(2), "{text}: {stderr}");
        assert!(
            stderr.contains(needle),
            "{text}: expected `{needle}` in {stderr}"
        );
        assert!(!out.exists(), "{text}: something was written");
    }
}
