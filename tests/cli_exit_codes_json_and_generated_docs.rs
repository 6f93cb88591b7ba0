//! The command line's contract: exit status 0 / 1 / 2, one JSON object on stdout for every
//! `--json` outcome, absolute paths and the computed hash in `build --json`, and shell
//! completions and man pages generated from the same definitions as `--help`.

mod common;

use std::fs;
use std::process::{Command, Output};

use common::fixture::{Spec, write_release};
use common::{have, mm_pkg, output, run};
use sha2::{Digest, Sha256};

fn stdout_json(out: &Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("stdout is not one JSON value ({e}):\n{text}"))
}

#[test]
fn usage_errors_exit_2_and_report_json_when_asked() {
    let out = output(mm_pkg().args(["build", "9.11.18", "--no-such-flag"]));
    assert_eq!(out.status.code(), Some(2));
    let out = output(mm_pkg().args(["build", "9.11.18", "--no-such-flag", "--json"]));
    assert_eq!(out.status.code(), Some(2));
    let json = stdout_json(&out);
    assert_eq!(json["kind"], "usage");
    assert!(
        json["error"].as_str().unwrap().contains("--no-such-flag"),
        "{json}"
    );

    let out = output(mm_pkg().args(["resolve", "nine", "--offline", "--json"]));
    assert_eq!(
        out.status.code(),
        Some(2),
        "an invalid SPEC is a usage error"
    );
    assert_eq!(stdout_json(&out)["kind"], "usage");
    assert!(String::from_utf8_lossy(&out.stderr).contains("nine"));
}

#[test]
fn list_without_a_match_fails_the_same_with_and_without_json() {
    let plain = output(mm_pkg().args(["list", "99", "--offline"]));
    let json = output(mm_pkg().args(["list", "99", "--offline", "--json"]));
    assert_eq!(plain.status.code(), Some(1));
    assert_eq!(json.status.code(), Some(1));
    let object = stdout_json(&json);
    assert_eq!(object["kind"], "no-match");
    let message = object["error"].as_str().unwrap();
    assert!(
        message.contains("no enterprise release matches `99"),
        "{message}"
    );
    assert!(String::from_utf8_lossy(&plain.stderr).contains(message));
    assert!(plain.stdout.is_empty());

    let ok = output(mm_pkg().args(["list", "9.11", "--offline", "--json"]));
    assert_eq!(ok.status.code(), Some(0));
    assert!(stdout_json(&ok).as_array().is_some_and(|a| !a.is_empty()));
}

#[test]
fn failed_build_with_json_prints_one_error_object() {
    let dir = tempfile::tempdir().unwrap();
    let tarball = dir.path().join("mattermost-9.11.90-linux-amd64.tar.gz");
    fs::write(&tarball, b"not gzip").unwrap();
    let out = output(
        mm_pkg()
            .args(["build", "--json", "--tarball"])
            .arg(&tarball)
            .arg("--output")
            .arg(dir.path().join("dist")),
    );
    assert_eq!(out.status.code(), Some(1));
    let json = stdout_json(&out);
    assert_eq!(json["kind"], "build");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(json["error"].as_str().unwrap()),
        "the same message on stderr:\n{stderr}"
    );
}

#[test]
fn help_documents_the_exit_status() {
    for args in [&["--help"][..], &["build", "--help"], &["list", "--help"]] {
        let help = run(mm_pkg().args(args));
        assert!(
            help.contains("Exit status: 0 success, 1 failure"),
            "{args:?}: {help}"
        );
    }
}

#[test]
fn build_json_has_absolute_paths_and_the_computed_hash() {
    let dir = tempfile::tempdir().unwrap();
    let tarball = write_release(&dir.path().join("r"), &Spec::new("9.11.90"));
    let relative = tarball.strip_prefix(dir.path()).unwrap();
    let hash = hex::encode(Sha256::digest(fs::read(&tarball).unwrap()));

    // Unverified (the catalog does not list 9.11.90): the hash is still the computed one.
    let out = run(mm_pkg()
        .current_dir(dir.path())
        .args([
            "build",
            "--json",
            "--format",
            "deb",
            "--output",
            "dist",
            "--tarball",
        ])
        .arg(relative));
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["tarball_sha256"], hash.as_str());
    assert_eq!(json["verified_by"], serde_json::json!([]));
    assert_eq!(json["tarball"], tarball.to_str().unwrap());
    assert_eq!(
        json["sha256sums"],
        dir.path().join("dist/SHA256SUMS").to_str().unwrap()
    );
    for p in json["packages"].as_array().unwrap() {
        assert!(p["path"].as_str().unwrap().starts_with('/'), "{p}");
    }

    let out = run(mm_pkg()
        .current_dir(dir.path())
        .args([
            "build", "--json", "--format", "deb", "--output", "dist", "--sha256", &hash,
        ])
        .arg("--tarball")
        .arg(relative));
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["tarball_sha256"], hash.as_str());
    assert_eq!(json["verified_by"], serde_json::json!(["sha256"]));
}

#[test]
fn completions_are_valid_shell_and_know_the_flags() {
    let bash = run(mm_pkg().args(["completions", "bash"]));
    assert!(bash.contains("--revision") && bash.contains("--maintainer"));
    if have("bash") {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("mm-pkg.bash");
        fs::write(&script, &bash).unwrap();
        run(Command::new("bash").arg("-n").arg(&script));
        // Sourcing defines the completion function and registers it.
        let registered = run(Command::new("bash")
            .arg("-c")
            .arg(format!("source {} && complete -p mm-pkg", script.display())));
        assert!(registered.contains("mm-pkg"), "{registered}");
    }
    for shell in ["zsh", "fish"] {
        let text = run(mm_pkg().args(["completions", shell]));
        assert!(text.contains("revision"), "{shell}: {text}");
    }
    let out = output(mm_pkg().args(["completions", "tcsh"]));
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn man_pages_render_with_man() {
    let dir = tempfile::tempdir().unwrap();
    run(mm_pkg().arg("man").arg(dir.path()));
    for page in [
        "mm-pkg.1",
        "mm-pkg-build.1",
        "mm-pkg-list.1",
        "mm-pkg-resolve.1",
    ] {
        assert!(dir.path().join(page).exists(), "{page} missing");
    }
    if have("man") {
        let text = run(Command::new("man")
            .arg("-l")
            .arg(dir.path().join("mm-pkg-build.1"))
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100"));
        assert!(text.contains("--revision"), "{text}");
        assert!(text.contains("--maintainer"), "{text}");
    }
}

#[test]
fn list_filters_by_the_specs_range_and_agrees_with_resolve() {
    let lines = |args: &[&str]| -> Vec<String> {
        run(mm_pkg().arg("list").args(args).arg("--offline"))
            .lines()
            .map(str::to_string)
            .collect()
    };
    let resolved = |spec: &str| -> String {
        let out = run(mm_pkg().args(["resolve", spec, "--offline", "--json"]));
        let json: serde_json::Value = serde_json::from_str(&out).unwrap();
        json["version"].as_str().unwrap().to_string()
    };
    let every = lines(&[]);
    assert!(every.len() > 20, "without SPEC every release: {every:?}");
    let latest = lines(&["latest"]);
    assert_eq!(latest.len(), 1, "{latest:?}");
    assert!(latest[0].starts_with(&resolved("latest")));
    let esr = lines(&["esr"]);
    assert_eq!(esr.len(), 1, "{esr:?}");
    assert!(esr[0].starts_with(&resolved("esr")) && esr[0].contains("ESR"));
    let minor = lines(&["9.11"]);
    assert!(!minor.is_empty() && minor.iter().all(|l| l.starts_with("9.11.")));
    assert!(minor[0].starts_with(&resolved("9.11")));

    let help = run(mm_pkg().args(["list", "--help"]));
    assert!(
        help.contains("Usage: mm-pkg list [OPTIONS] [SPEC]"),
        "{help}"
    );
    let help = run(mm_pkg().args(["build", "--help"]));
    assert!(
        help.contains("Usage: mm-pkg build [OPTIONS] [SPEC]"),
        "{help}"
    );
}
