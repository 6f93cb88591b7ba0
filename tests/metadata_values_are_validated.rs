//! Values from flags, the environment and the release that reach package metadata or
//! maintainer scripts are checked before anything is written: a newline in `--maintainer`
//! cannot add a field, a quote in a release file name cannot end a shell string, and
//! `--revision` takes a distribution revision used verbatim.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::fixture::{Spec, write_release};
use common::{build, have, mm_pkg, output, run};

/// Runs `mm-pkg build` on a fresh release of `spec` with `args` and `envs`; returns the
/// output and the output directory.
fn try_build(
    spec: &Spec,
    args: &[&str],
    envs: &[(&str, &str)],
) -> (std::process::Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let tarball = write_release(&dir.path().join("release"), spec);
    let mut cmd = mm_pkg();
    cmd.args(["build", &spec.version, "--tarball"])
        .arg(&tarball)
        .arg("--output")
        .arg(dir.path().join("dist"))
        .args(args)
        .envs(envs.iter().copied());
    (output(&mut cmd), dir)
}

/// What the packages in `out` carry in the fields an injection would add, for the failure
/// message when a bad value got through (the old behaviour).
fn injected_fields(out: &Path) -> String {
    let mut found = String::new();
    for entry in fs::read_dir(out).into_iter().flatten() {
        let path = entry.unwrap().path();
        match path.extension().and_then(|e| e.to_str()) {
            Some("deb") => {
                found += &run(Command::new("dpkg-deb").arg("-f").arg(&path));
            }
            Some("rpm") => {
                found += &run(Command::new("rpm")
                    .args(["-qp", "--obsoletes", "--requires", "--provides"])
                    .arg(&path));
            }
            _ => {}
        }
    }
    found
}

/// Asserts the build was refused before writing anything, with `needle` in the message.
fn assert_refused(result: &std::process::Output, dir: &Path, needle: &str) {
    let out = dir.join("dist");
    assert!(
        !result.status.success(),
        "the build succeeded; the packages carry:\n{}",
        injected_fields(&out)
    );
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains(needle), "expected `{needle}` in:\n{stderr}");
    let left: Vec<_> = fs::read_dir(&out)
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "a refused build left {left:?}");
}

#[test]
fn maintainer_with_a_newline_cannot_add_rpm_obsoletes_or_deb_pre_depends() {
    if !have("rpm") || !have("dpkg-deb") {
        return;
    }
    let spec = Spec::new("9.11.90");
    for value in [
        "x <a@b.org>\nObsoletes: postgresql-server",
        "x <a@b.org>\nPre-Depends: evil",
        "x <a@b.org>\r\nProvides: postgresql-server",
    ] {
        let (result, dir) = try_build(&spec, &["--maintainer", value], &[]);
        assert_refused(&result, dir.path(), "control character");
        assert_eq!(result.status.code(), Some(2), "a bad flag is a usage error");
    }
}

#[test]
fn maintainer_from_the_environment_is_checked_too() {
    if !have("rpm") || !have("dpkg-deb") {
        return;
    }
    let (result, dir) = try_build(
        &Spec::new("9.11.90"),
        &[],
        &[(
            "MM_PKG_MAINTAINER",
            "x <a@b.org>\nObsoletes: postgresql-server",
        )],
    );
    assert_refused(&result, dir.path(), "MM_PKG_MAINTAINER");
    let (result, dir) = try_build(
        &Spec::new("9.11.90"),
        &[],
        &[("MM_PKG_MAINTAINER", "just a name")],
    );
    assert_refused(&result, dir.path(), "Name <email>");
}

#[test]
fn valid_maintainer_reaches_both_packages_verbatim() {
    if !have("rpm") || !have("dpkg-deb") {
        return;
    }
    let who = "Jürgen Müller <jm+pkg@example.de>";
    let built = build(&Spec::new("9.11.90"), &["--maintainer", who]);
    let deb = run(Command::new("dpkg-deb")
        .args(["-f"])
        .arg(built.deb.as_ref().unwrap())
        .arg("Maintainer"));
    assert_eq!(deb.trim(), who);
    let rpm = run(Command::new("rpm")
        .args(["-qp", "--qf", "%{PACKAGER}"])
        .arg(built.rpm.as_ref().unwrap()));
    assert_eq!(rpm, who);
}

#[test]
fn release_file_name_that_would_break_out_of_a_shell_string_is_refused() {
    // client/*.css files are chowned by name in the maintainer scripts; a quote in such a
    // name would run `touch /pwned` as root on install.
    let mut spec = Spec::new("9.11.90");
    spec.extra_files.push((
        "client/x'$(touch \"/pwned\")'.css".into(),
        b"body{}".to_vec(),
    ));
    let (result, dir) = try_build(&spec, &["--format", "deb"], &[]);
    let out = dir.path().join("dist");
    if result.status.success() && have("dpkg-deb") {
        let deb = common::package_in(&out, "deb").unwrap();
        let scripts = dir.path().join("control");
        run(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&scripts));
        let postinst = fs::read_to_string(scripts.join("postinst")).unwrap();
        let line = postinst.lines().find(|l| l.contains("pwned")).unwrap_or("");
        panic!("the release was packaged; postinst runs as root:\n{line}");
    }
    assert_refused(&result, dir.path(), "x'$(touch");
}

#[test]
fn revision_takes_distribution_strings_verbatim() {
    if !have("rpm") || !have("dpkg-deb") {
        return;
    }
    for revision in ["1~deb12u1", "0ubuntu1~22.04", "2.el9"] {
        let built = build(&Spec::new("9.11.90"), &["--revision", revision]);
        let deb = built.deb.as_ref().unwrap();
        let rpm = built.rpm.as_ref().unwrap();
        assert_eq!(
            deb.file_name().unwrap().to_string_lossy(),
            format!("mattermost_9.11.90-{revision}_amd64.deb")
        );
        assert_eq!(
            rpm.file_name().unwrap().to_string_lossy(),
            format!("mattermost-9.11.90-{revision}.x86_64.rpm")
        );
        let version = run(Command::new("dpkg-deb").arg("-f").arg(deb).arg("Version"));
        assert_eq!(version.trim(), format!("9.11.90-{revision}"));
        let release = run(Command::new("rpm")
            .args(["-qp", "--qf", "%{RELEASE}"])
            .arg(rpm));
        assert_eq!(release, revision);
        let changelog = run(Command::new("rpm").args(["-qp", "--changelog"]).arg(rpm));
        assert!(
            changelog.contains(&format!("9.11.90-{revision}")),
            "{changelog}"
        );
    }
}

#[test]
fn revision_outside_both_formats_rules_is_refused_with_the_rule() {
    for revision in ["1-2", "1 2", "1_2", "1:2", "1\nObsoletes: x", ""] {
        let (result, dir) = try_build(&Spec::new("9.11.90"), &["--revision", revision], &[]);
        assert_refused(&result, dir.path(), "A-Z a-z 0-9 + . ~");
        assert_eq!(result.status.code(), Some(2));
    }
}

#[test]
fn source_date_epoch_outside_rpms_time_fields_is_refused() {
    for value in ["4294967296", "99999999999", "-5", "yesterday"] {
        let (result, dir) = try_build(&Spec::new("9.11.90"), &[], &[("SOURCE_DATE_EPOCH", value)]);
        assert_refused(&result, dir.path(), "SOURCE_DATE_EPOCH");
        assert_eq!(result.status.code(), Some(2), "{value}");
    }
}
