//! lintian and rpmlint find nothing the package does not deliberately override with a
//! reason (the lintian overrides ship in the .deb; the rpmlint filters are lint/).

mod common;

use std::path::Path;
use std::process::Command;

use common::fixture::Spec;
use common::{build, have, mm_pkg, output, run};

fn lintian_tags(deb: &Path) -> Vec<String> {
    let out = output(
        Command::new("lintian")
            .args(["--display-level", ">=warning", "--no-tag-display-limit"])
            .arg(deb),
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() || !text.is_empty(),
        "lintian failed without reporting tags:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .filter(|l| l.starts_with("E: ") || l.starts_with("W: "))
        .map(str::to_string)
        .collect()
}

#[test]
fn lintian_reports_no_error_or_warning() {
    if !have("lintian") {
        return;
    }
    for spec in [Spec::new("9.11.90"), Spec::team("10.5.90")] {
        let built = build(&spec, &["--format", "deb"]);
        let tags = lintian_tags(built.deb.as_ref().unwrap());
        assert!(
            tags.is_empty(),
            "lintian on the {} edition:\n{}",
            spec.edition,
            tags.join("\n")
        );
    }
}

#[test]
fn lintian_still_sees_what_the_overrides_hide() {
    // The overrides must be what silences lintian, not a broken run: without them the
    // deliberate tags appear.
    if !have("lintian") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("lintian-overrides"), "# none\n").unwrap();
    let built = build(
        &Spec::new("9.11.90"),
        &[
            "--format",
            "deb",
            "--templates",
            dir.path().to_str().unwrap(),
        ],
    );
    let tags = lintian_tags(built.deb.as_ref().unwrap());
    assert!(
        tags.iter().any(|t| t.contains("dir-or-file-in-opt")),
        "{tags:?}"
    );
    assert!(
        tags.iter().any(|t| t.contains("statically-linked-binary")),
        "{tags:?}"
    );
}

#[test]
fn rpmlint_reports_no_error_or_warning_outside_the_filters() {
    if !have("rpmlint") {
        return;
    }
    let rc = Path::new(env!("CARGO_MANIFEST_DIR")).join("lint/mattermost.rpmlintrc");
    for spec in [Spec::new("9.11.90"), Spec::team("10.5.90")] {
        let built = build(&spec, &["--format", "rpm"]);
        let out = output(
            Command::new("rpmlint")
                .arg("-r")
                .arg(&rc)
                .arg(built.rpm.as_ref().unwrap()),
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("0 errors, 0 warnings"),
            "rpmlint on the {} edition:\n{text}\n{}",
            spec.edition,
            String::from_utf8_lossy(&out.stderr)
        );
        let bare = output(Command::new("rpmlint").arg(built.rpm.as_ref().unwrap()));
        let bare = String::from_utf8_lossy(&bare.stdout);
        assert!(
            bare.contains("dir-or-file-in-opt") && bare.contains("no-signature"),
            "without the filters rpmlint must see the deliberate choices:\n{bare}"
        );
    }
}

#[test]
fn a_signed_rpm_needs_no_no_signature_filter() {
    // The rpmlintrc says only an rpm built without --sign-key is unsigned; a signed one is
    // reported only for its key, which this machine's rpm database does not hold.
    if !have("rpmlint") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    run(mm_pkg()
        .args([
            "key",
            "generate",
            "--name",
            "Lint <lint@example.org>",
            "--output",
        ])
        .arg(dir.path())
        .env_remove("MM_PKG_SIGN_PASSPHRASE"));
    let key = dir.path().join("signing-key.secret.asc");
    let built = build(
        &Spec::new("9.11.90"),
        &["--format", "rpm", "--sign-key", key.to_str().unwrap()],
    );
    let filters = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("lint/mattermost.rpmlintrc"),
    )
    .unwrap();
    let unsigned_filter = "addFilter(r\"no-signature\")\n";
    assert!(filters.contains(unsigned_filter));
    let rc = dir.path().join("signed.rpmlintrc");
    std::fs::write(&rc, filters.replace(unsigned_filter, "")).unwrap();
    let out = output(
        Command::new("rpmlint")
            .arg("-r")
            .arg(&rc)
            .arg(built.rpm.as_ref().unwrap()),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let tags: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(": E: ") || l.contains(": W: "))
        .collect();
    assert!(
        tags.len() == 1 && tags[0].contains("E: unknown-key"),
        "{text}"
    );
    assert!(text.contains("1 errors, 0 warnings"), "{text}");
}
