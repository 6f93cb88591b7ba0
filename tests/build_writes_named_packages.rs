//! `mm-pkg build` writes both packages under their final names, with SHA256SUMS, and
//! leaves nothing behind when it fails.

mod common;

use std::fs;

use common::fixture::Spec;
use common::{build, mm_pkg, output, run};
use sha2::{Digest, Sha256};

#[test]
fn writes_deb_rpm_and_sha256sums() {
    let built = build(&Spec::new("9.11.90"), &[]);
    let deb = built.deb.as_ref().expect("a .deb");
    let rpm = built.rpm.as_ref().expect("an .rpm");
    assert_eq!(deb.file_name().unwrap(), "mattermost_9.11.90-1_amd64.deb");
    assert_eq!(rpm.file_name().unwrap(), "mattermost-9.11.90-1.x86_64.rpm");
    let sums = fs::read_to_string(built.out.join("SHA256SUMS")).unwrap();
    for file in [deb, rpm] {
        let digest = hex::encode(Sha256::digest(fs::read(file).unwrap()));
        let line = format!("{digest}  {}", file.file_name().unwrap().to_string_lossy());
        assert!(
            sums.lines().any(|l| l == line),
            "{line} missing from SHA256SUMS:\n{sums}"
        );
    }
    let names: Vec<_> = fs::read_dir(&built.out)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names.len(),
        3,
        "only the packages and SHA256SUMS: {names:?}"
    );
}

#[test]
fn team_edition_revision_and_single_format() {
    let built = build(
        &Spec::team("9.11.90"),
        &["--format", "rpm", "--revision", "3"],
    );
    assert!(built.deb.is_none());
    assert_eq!(
        built.rpm.unwrap().file_name().unwrap(),
        "mattermost-team-9.11.90-3.x86_64.rpm"
    );
    let built = build(&Spec::team("9.11.90"), &["--format", "deb"]);
    assert_eq!(
        built.deb.unwrap().file_name().unwrap(),
        "mattermost-team_9.11.90-1_amd64.deb"
    );
}

#[test]
fn json_output_describes_each_package() {
    let built = build(&Spec::new("9.11.90"), &["--format", "deb"]);
    let mut cmd = mm_pkg();
    cmd.args([
        "build",
        "v9.11.90",
        "--json",
        "--format",
        "deb,rpm",
        "--tarball",
    ])
    .arg(&built.tarball)
    .arg("--output")
    .arg(&built.out);
    let json: serde_json::Value =
        serde_json::from_str(&run(&mut cmd)).expect("--json prints one JSON object");
    assert_eq!(json["version"], "9.11.90");
    assert_eq!(json["edition"], "enterprise");
    let packages = json["packages"].as_array().unwrap();
    assert_eq!(packages.len(), 2);
    for p in packages {
        let path = p["path"].as_str().unwrap();
        let bytes = fs::read(path).unwrap();
        assert_eq!(p["size"].as_u64().unwrap(), bytes.len() as u64);
        assert_eq!(
            p["sha256"].as_str().unwrap(),
            hex::encode(Sha256::digest(&bytes))
        );
    }
}

#[test]
fn same_input_and_source_date_give_identical_bytes() {
    let spec = Spec::new("9.11.90");
    for compression in ["gzip", "xz", "zstd", "none"] {
        let a = build(&spec, &["--compression", compression]);
        let b = build(&spec, &["--compression", compression]);
        for (x, y) in [(&a.deb, &b.deb), (&a.rpm, &b.rpm)] {
            let (x, y) = (x.as_ref().unwrap(), y.as_ref().unwrap());
            assert!(
                fs::read(x).unwrap() == fs::read(y).unwrap(),
                "{compression}: {} differs between builds",
                x.display()
            );
        }
    }
}

#[test]
fn failed_build_leaves_no_package_names() {
    let built = build(&Spec::new("9.11.90"), &["--format", "deb"]);
    let out = built.dir.path().join("failed");
    let broken = built.dir.path().join("broken.tar.gz");
    let bytes = fs::read(&built.tarball).unwrap();
    fs::write(&broken, &bytes[..bytes.len() / 2]).unwrap();
    let result = output(
        mm_pkg()
            .args(["build", "9.11.90", "--tarball"])
            .arg(&broken)
            .arg("--output")
            .arg(&out),
    );
    assert!(!result.status.success());
    let left: Vec<_> = fs::read_dir(&out)
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "a failed build left {left:?}");
}

#[test]
fn template_override_replaces_a_default_by_file_name() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("mattermost.service"),
        "[Unit]\nDescription=custom {{version}}\n",
    )
    .unwrap();
    let built = build(
        &Spec::new("9.11.90"),
        &[
            "--format",
            "deb",
            "--templates",
            dir.path().to_str().unwrap(),
        ],
    );
    let unit = run(std::process::Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(built.deb.as_ref().unwrap()));
    assert!(unit.contains("Description=custom 9.11.90"));

    fs::write(dir.path().join("postinstt"), "typo").unwrap();
    let result = output(
        mm_pkg()
            .args(["build", "9.11.90", "--templates"])
            .arg(dir.path())
            .arg("--tarball")
            .arg(&built.tarball)
            .arg("--output")
            .arg(built.dir.path().join("x")),
    );
    assert!(
        !result.status.success(),
        "an unknown template name must be refused"
    );
    assert!(String::from_utf8_lossy(&result.stderr).contains("postinstt"));
}

/// Runs `mm-pkg build` of `tarball` into `out` under `umask`.
fn build_with_umask(umask: &str, version: &str, tarball: &std::path::Path, out: &std::path::Path) {
    run(std::process::Command::new("sh")
        .args(["-c", &format!("umask {umask} && exec \"$@\""), "sh"])
        .arg(env!("CARGO_BIN_EXE_mm-pkg"))
        .args(["build", version, "--tarball"])
        .arg(tarball)
        .arg("--output")
        .arg(out)
        .env("SOURCE_DATE_EPOCH", "1764000000"));
}

#[test]
fn packages_and_sums_honour_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let tarball = common::fixture::write_release(&dir.path().join("r"), &Spec::new("9.11.90"));
    for (umask, mode) in [("022", 0o644), ("027", 0o640), ("077", 0o600)] {
        let out = dir.path().join(format!("dist-{umask}"));
        build_with_umask(umask, "9.11.90", &tarball, &out);
        for item in fs::read_dir(&out).unwrap() {
            let item = item.unwrap();
            let actual = item.metadata().unwrap().permissions().mode() & 0o7777;
            assert_eq!(
                actual,
                mode,
                "{} under umask {umask}: {actual:o}",
                item.path().display()
            );
        }
    }
}

#[test]
fn sha256sums_keeps_other_builds_in_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("dist");
    let enterprise = common::fixture::write_release(&dir.path().join("e"), &Spec::new("9.11.90"));
    let team = common::fixture::write_release(&dir.path().join("t"), &Spec::team("9.11.90"));
    build_with_umask("022", "9.11.90", &enterprise, &out);
    run(mm_pkg()
        .args([
            "build",
            "9.11.90",
            "--edition",
            "team",
            "--format",
            "deb",
            "--tarball",
        ])
        .arg(&team)
        .arg("--output")
        .arg(&out));
    let names = |sums: &str| -> Vec<String> {
        sums.lines()
            .map(|l| l.split_once("  ").unwrap().1.to_string())
            .collect()
    };
    let sums = fs::read_to_string(out.join("SHA256SUMS")).unwrap();
    assert_eq!(
        names(&sums),
        [
            "mattermost-9.11.90-1.x86_64.rpm",
            "mattermost-team_9.11.90-1_amd64.deb",
            "mattermost_9.11.90-1_amd64.deb",
        ],
        "{sums}"
    );
    for line in sums.lines() {
        let (hash, name) = line.split_once("  ").unwrap();
        assert_eq!(
            hash,
            hex::encode(Sha256::digest(fs::read(out.join(name)).unwrap()))
        );
    }
    // A package removed from the directory is no longer listed by the next build.
    fs::remove_file(out.join("mattermost-9.11.90-1.x86_64.rpm")).unwrap();
    build_with_umask("022", "9.11.90", &enterprise, &out);
    let sums = fs::read_to_string(out.join("SHA256SUMS")).unwrap();
    assert_eq!(names(&sums).len(), 3, "{sums}");
    assert!(sums.contains("mattermost-9.11.90-1.x86_64.rpm"));
    fs::remove_file(out.join("mattermost-team_9.11.90-1_amd64.deb")).unwrap();
    build_with_umask("022", "9.11.90", &enterprise, &out);
    let sums = fs::read_to_string(out.join("SHA256SUMS")).unwrap();
    assert!(!sums.contains("mattermost-team"), "{sums}");
}

#[test]
fn exported_templates_build_identical_packages() {
    let dir = tempfile::tempdir().unwrap();
    let templates = dir.path().join("tpl");
    run(mm_pkg().args(["templates", "export"]).arg(&templates));
    for file in [
        "deb/control",
        "rpm/rpm-post",
        "systemd/mattermost.service",
        "functions.sh",
    ] {
        assert!(templates.join(file).is_file(), "{file} not exported");
    }
    let spec = Spec::new("9.11.90");
    let plain = build(&spec, &[]);
    let exported = build(&spec, &["--templates", templates.to_str().unwrap()]);
    for (a, b) in [(&plain.deb, &exported.deb), (&plain.rpm, &exported.rpm)] {
        let (a, b) = (a.as_ref().unwrap(), b.as_ref().unwrap());
        assert!(
            fs::read(a).unwrap() == fs::read(b).unwrap(),
            "{} differs when built from the exported templates",
            a.display()
        );
    }
    // Exporting again never replaces the user's files.
    let again = output(mm_pkg().args(["templates", "export"]).arg(&templates));
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("never replaced"));
}

#[test]
fn templates_in_subdirectories_are_used_or_refused_never_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let tpl = dir.path().join("tpl");
    fs::create_dir_all(tpl.join("deb")).unwrap();
    let control = include_str!("../templates/deb/control").replace(
        "Homepage: https://mattermost.com",
        "Homepage: https://chat.example.org",
    );
    fs::write(tpl.join("deb/control"), control).unwrap();
    let built = build(
        &Spec::new("9.11.90"),
        &["--format", "deb", "--templates", tpl.to_str().unwrap()],
    );
    let homepage = run(std::process::Command::new("dpkg-deb")
        .arg("-f")
        .arg(built.deb.as_ref().unwrap())
        .arg("Homepage"));
    assert_eq!(homepage.trim(), "https://chat.example.org");

    let refuse = |setup: &dyn Fn(&std::path::Path), needle: &str| {
        let tpl = tempfile::tempdir().unwrap();
        setup(tpl.path());
        let result = output(
            mm_pkg()
                .args(["build", "9.11.90", "--templates"])
                .arg(tpl.path())
                .arg("--tarball")
                .arg(&built.tarball)
                .arg("--output")
                .arg(dir.path().join("refused")),
        );
        assert!(!result.status.success(), "{needle}: accepted");
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert!(stderr.contains(needle), "{needle}: {stderr}");
    };
    // A template in the other format's directory, an unknown subdirectory, one template twice.
    refuse(
        &|d| {
            fs::create_dir_all(d.join("rpm")).unwrap();
            fs::write(d.join("rpm/control"), "x").unwrap();
        },
        "rpm/control",
    );
    refuse(
        &|d| {
            fs::create_dir_all(d.join("debian")).unwrap();
            fs::write(d.join("debian/control"), "x").unwrap();
        },
        "debian/",
    );
    refuse(
        &|d| {
            fs::create_dir_all(d.join("deb")).unwrap();
            fs::write(d.join("deb/postinst"), "x").unwrap();
            fs::write(d.join("postinst"), "y").unwrap();
        },
        "overridden twice",
    );
}

/// The compressors split their work between the cores (gzip and xz blocks, zstd jobs): the
/// packages must still come out the same whatever the number of cores the build may use.
#[test]
fn packages_do_not_depend_on_the_number_of_cores() {
    let mut spec = Spec::new("9.11.90");
    // Several gzip blocks (1 MiB), xz blocks (6 MiB) and zstd jobs (2 MiB) per binary.
    spec.pad = 7 << 20;
    for compression in ["gzip", "xz", "zstd"] {
        let all = build(&spec, &["--compression", compression]);
        let one_core = all.dir.path().join("one-core");
        let mut cmd = std::process::Command::new("taskset");
        cmd.args(["-c", "0"])
            .arg(env!("CARGO_BIN_EXE_mm-pkg"))
            .args([
                "build",
                &spec.version,
                "--edition",
                &spec.edition,
                "--tarball",
            ])
            .arg(&all.tarball)
            .arg("--output")
            .arg(&one_core)
            .args(["--compression", compression])
            .env("SOURCE_DATE_EPOCH", "1764000000")
            .env("XDG_CACHE_HOME", all.dir.path().join("cache"));
        run(&mut cmd);
        for package in [all.deb.as_ref().unwrap(), all.rpm.as_ref().unwrap()] {
            let again = one_core.join(package.file_name().unwrap());
            assert!(
                fs::read(package).unwrap() == fs::read(&again).unwrap(),
                "{compression}: {} differs when built on one core",
                package.display()
            );
        }
    }
}
