//! Mistakes a new packager makes get a message about that mistake: a mistyped `--tarball`
//! path is a missing file, swapped `repo add` arguments are called swapped, `x86_64` and
//! `aarch64` name the architectures, a config file's typo gets a suggestion and its bad value
//! is blamed on the file, `sync` reads a config file too, and the maintainer comes from
//! `DEBFULLNAME`/`DEBEMAIL` as dch reads them (after `--maintainer` and `MM_PKG_MAINTAINER`).
//! `sync` says each failure once and never warns "UNSIGNED" right before refusing.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use common::fixture::{Spec, write_release};
use common::signing::{TestKey, release_key};
use common::upstream::{Upstream, json, text};
use common::{have, mm_pkg, output, package_in, run};

/// `mm-pkg` without any maintainer, config or key from the caller's environment.
fn clean() -> Command {
    let mut cmd = mm_pkg();
    for var in [
        "MM_PKG_MAINTAINER",
        "MM_PKG_CONFIG",
        "DEBEMAIL",
        "DEBFULLNAME",
        "MM_PKG_SIGN_KEY",
        "MM_PKG_WEBHOOK_URL",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

fn usage_error(out: &Output) -> String {
    let t = text(out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    t
}

#[test]
fn a_mistyped_tarball_path_is_called_a_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    for path in [
        dir.path()
            .join("releses/mattermost-9.11.90-linux-amd64.tar.gz"),
        dir.path().join("release.tgz"),
    ] {
        let out = output(
            clean()
                .args(["build", "--tarball"])
                .arg(&path)
                .arg("--output")
                .arg(dir.path().join("dist")),
        );
        let t = usage_error(&out);
        assert!(
            t.contains(&format!("--tarball {}: no such file", path.display())),
            "{t}"
        );
        assert!(!t.contains("not named like upstream"), "{t}");
    }
}

#[test]
fn repo_add_with_swapped_arguments_says_they_are_swapped() {
    let dir = tempfile::tempdir().unwrap();
    let deb = dir.path().join("mattermost_9.11.90-1_amd64.deb");
    fs::write(&deb, b"not read").unwrap();
    let repo = dir.path().join("repo");
    fs::create_dir(&repo).unwrap();
    for (first, second, needle) in [
        (&deb, &repo, "is a file, not a repository directory"),
        (
            &dir.path().join("new"),
            &repo,
            "is a directory, not a package",
        ),
    ] {
        let out = output(clean().args(["repo", "add"]).arg(first).arg(second));
        let t = usage_error(&out);
        assert!(
            t.contains(needle) && t.contains("mm-pkg repo add DIR FILE..."),
            "{t}"
        );
        assert!(!t.contains("os error") && !t.contains("UNSIGNED"), "{t}");
    }
    assert_eq!(fs::read(&deb).unwrap(), b"not read");
    assert!(!dir.path().join("new").exists());
    assert_eq!(fs::read_dir(&repo).unwrap().count(), 0);
}

#[test]
fn x86_64_and_aarch64_name_the_two_architectures() {
    for (alias, arch) in [("x86_64", "amd64"), ("aarch64", "arm64")] {
        let out =
            output(clean().args(["resolve", "9.11.18", "--arch", alias, "--offline", "--json"]));
        assert!(out.status.success(), "{}", text(&out));
        let resolved: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(resolved["arch"], arch);
    }
    let dir = tempfile::tempdir().unwrap();
    let out = output(
        clean()
            .args(["sync", "--spec", "9.11.18", "--arch", "x86_64,aarch64"])
            .args(["--plan", "--json", "--offline", "--repo"])
            .arg(dir.path().join("repo")),
    );
    assert!(out.status.success(), "{}", text(&out));
    let names: Vec<String> = json(&out)["include"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        ["9.11.18-enterprise-amd64", "9.11.18-enterprise-arm64"]
    );
    let t = usage_error(&output(
        clean().args(["resolve", "9.11.18", "--arch", "s390x"]),
    ));
    assert!(t.contains("[possible values: amd64, arm64]"), "{t}");
}

#[test]
fn a_config_file_typo_gets_a_suggestion_and_a_bad_value_is_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let tarball = write_release(&dir.path().join("r"), &Spec::new("9.11.90"));
    let config = dir.path().join("mm-pkg.toml");
    let build = |text: &str| {
        fs::write(&config, text).unwrap();
        output(
            clean()
                .args(["build", "--config"])
                .arg(&config)
                .arg("--tarball")
                .arg(&tarball)
                .arg("--output")
                .arg(dir.path().join("dist")),
        )
    };
    let t = usage_error(&build("maintainr = \"Jane <jane@example.org>\"\n"));
    assert!(
        t.contains("unknown key `maintainr` for `mm-pkg build` (did you mean `maintainer`?)"),
        "{t}"
    );
    let t = usage_error(&build("maintainer = \"Jane\"\n"));
    assert!(
        t.contains(&format!(
            "config file {}: `maintainer = \"Jane\"`: maintainer `Jane`",
            config.display()
        )),
        "{t}"
    );
    assert!(!t.contains("'--maintainer"), "blamed on the flag: {t}");
    let t = usage_error(&build("[build]\nformat = [\"dep\"]\n"));
    assert!(
        t.contains("`format = \"dep\"` in [build]: possible values: deb, rpm"),
        "{t}"
    );
    let t = usage_error(&build("keep = 3\n"));
    assert!(
        t.contains("it is a flag of `mm-pkg sync`: put it in a [sync] table"),
        "{t}"
    );
    let t = usage_error(&build("[bild]\noutput = \"x\"\n"));
    assert!(t.contains("unknown table [bild]"), "{t}");
    assert!(!dir.path().join("dist").exists());
}

#[test]
fn sync_reads_the_config_file_its_table_and_the_shared_keys() {
    let up = Upstream::new();
    up.publish(&Spec::new("9.11.90"), Some(release_key()));
    let config = up.path("mm-pkg.toml");
    fs::write(
        &config,
        format!(
            "maintainer = \"Build Bot <bot@example.org>\"\nrevision = \"1~deb12u1\"\n\n\
             [build]\noutput = \"dist\"\n\n\
             [sync]\nrepo = {:?}\nspec = [\"9.11\"]\nedition = [\"enterprise\", \"team\"]\n\
             format = [\"deb\"]\nrevision = \"2\"\n",
            up.path("repo").display()
        ),
    )
    .unwrap();
    let mut cmd = up.cmd();
    cmd.args(["sync", "--config"])
        .arg(&config)
        .args(["--plan", "--json"])
        .args(["--mirror", &up.server.base, "--index-url"])
        .arg(format!(
            "{}{}",
            up.server.base,
            common::upstream::INDEX_PATH
        ))
        .arg("--cache-dir")
        .arg(up.cache());
    let out = output(&mut cmd);
    assert!(out.status.success(), "{}", text(&out));
    let plan = json(&out);
    let entries = plan["include"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{plan:#}");
    for entry in entries {
        let args = entry["args"].as_str().unwrap();
        assert!(
            args.contains("--format deb")
                && args.contains("--revision 2")
                && args.contains("--maintainer 'Build Bot <bot@example.org>'"),
            "{args}"
        );
    }
}

#[test]
fn debemail_and_debfullname_name_the_maintainer_after_the_flag_and_the_variable() {
    if !have("dpkg-deb") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tarball = write_release(&dir.path().join("r"), &Spec::new("9.11.90"));
    let maintainer = |name: &str, setup: &dyn Fn(&mut Command)| -> String {
        let out_dir = dir.path().join(name);
        let mut cmd = clean();
        cmd.args(["build", "--format", "deb", "--tarball"])
            .arg(&tarball)
            .arg("--output")
            .arg(&out_dir);
        setup(&mut cmd);
        run(&mut cmd);
        let deb = package_in(&out_dir, "deb").unwrap();
        run(Command::new("dpkg-deb")
            .arg("-f")
            .arg(deb)
            .arg("Maintainer"))
        .trim()
        .to_string()
    };
    assert_eq!(maintainer("none", &|_| {}), "mm-pkg <mm-pkg@example.org>");
    assert_eq!(
        maintainer("debemail", &|c| {
            c.env("DEBEMAIL", "Jane Doe <jane@example.org>");
        }),
        "Jane Doe <jane@example.org>"
    );
    assert_eq!(
        maintainer("debfullname", &|c| {
            c.env("DEBEMAIL", "jane@example.org")
                .env("DEBFULLNAME", "Jane Q. Doe");
        }),
        "Jane Q. Doe <jane@example.org>"
    );
    assert_eq!(
        maintainer("variable", &|c| {
            c.env("DEBEMAIL", "jane@example.org")
                .env("DEBFULLNAME", "Jane Doe")
                .env("MM_PKG_MAINTAINER", "Bot <bot@example.org>");
        }),
        "Bot <bot@example.org>"
    );
    assert_eq!(
        maintainer("flag", &|c| {
            c.env("DEBEMAIL", "jane@example.org")
                .env("DEBFULLNAME", "Jane Doe")
                .env("MM_PKG_MAINTAINER", "Bot <bot@example.org>")
                .args(["--maintainer", "Flag <flag@example.org>"]);
        }),
        "Flag <flag@example.org>"
    );
    // A DEBEMAIL that names no one is not used; one that cannot be a maintainer is refused
    // by name, before anything is written.
    assert_eq!(
        maintainer("nameless", &|c| {
            c.env("DEBEMAIL", "jane@example.org");
        }),
        "mm-pkg <mm-pkg@example.org>"
    );
    let out = output(
        clean()
            .args(["build", "--tarball"])
            .arg(&tarball)
            .arg("--output")
            .arg(dir.path().join("bad"))
            .env("DEBEMAIL", "jane")
            .env("DEBFULLNAME", "Jane\nObsoletes: x"),
    );
    let t = usage_error(&out);
    assert!(t.contains("DEBFULLNAME and DEBEMAIL"), "{t}");
    assert!(!dir.path().join("bad").exists());
}

#[test]
fn sync_says_each_failure_once_and_never_warns_unsigned_before_refusing() {
    let up = Upstream::new();
    up.publish(
        &Spec::new("9.11.90"),
        Some(&TestKey::generate("Stranger <x@example.org>")),
    );
    let repo = up.path("repo");
    let out = up.sync(&repo, &["--spec", "9.11"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert_eq!(t.matches("is not trusted").count(), 1, "{t}");

    // A signed repository, and a run that lost its key.
    up.publish(&Spec::new("9.11.91"), Some(release_key()));
    let out = up.sync(&repo, &["--spec", "9.11.91"]);
    assert!(out.status.success(), "{}", text(&out));
    let mut bare = up.command(&["sync", "--repo", repo.to_str().unwrap(), "--spec", "9.11"]);
    let out = output(&mut bare);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("is signed") && !t.contains("UNSIGNED"), "{t}");
    assert!(Path::new(&repo).join("apt/dists/stable/InRelease").exists());
}
