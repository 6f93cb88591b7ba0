//! `--depends`, `--recommends`, `--suggests` add relations to both formats without replacing
//! templates, and `--distribution` names the Debian changelog's distribution.

mod common;

use std::io::Read;
use std::process::Command;

use common::fixture::Spec;
use common::{build, have, mm_pkg, output, run};

#[test]
fn relations_reach_both_formats_and_distribution_the_changelog() {
    if !have("dpkg-deb") || !have("rpm") {
        return;
    }
    let built = build(
        &Spec::new("9.11.90"),
        &[
            "--depends",
            "postgresql-client (>= 15)",
            "--depends",
            "jq",
            "--recommends",
            "nginx",
            "--suggests",
            "certbot (<< 3)",
            "--distribution",
            "bookworm",
        ],
    );
    let deb = built.deb.as_ref().unwrap();
    let field = |name: &str| {
        run(Command::new("dpkg-deb").arg("-f").arg(deb).arg(name))
            .trim()
            .to_string()
    };
    let depends = field("Depends");
    assert!(
        depends.starts_with("libcap2-bin") && depends.ends_with(", postgresql-client (>= 15), jq"),
        "the template's dependencies stay, the flags' follow: {depends}"
    );
    assert!(field("Recommends").ends_with("nginx"));
    assert!(field("Suggests").ends_with("certbot (<< 3)"));

    let rpm = built.rpm.as_ref().unwrap();
    let query = |what: &str| run(Command::new("rpm").args(["-qp", what]).arg(rpm));
    let requires = query("--requires");
    assert!(
        requires.lines().any(|l| l == "postgresql-client >= 15"),
        "{requires}"
    );
    assert!(requires.lines().any(|l| l == "jq"), "{requires}");
    assert!(query("--recommends").lines().any(|l| l == "nginx"));
    assert!(query("--suggests").lines().any(|l| l == "certbot < 3"));

    let root = built.dir.path().join("x");
    run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(&root));
    let gz = std::fs::read(root.join("usr/share/doc/mattermost/changelog.Debian.gz")).unwrap();
    let mut changelog = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut changelog)
        .unwrap();
    assert!(
        changelog.starts_with("mattermost (9.11.90-1) bookworm; urgency=medium"),
        "{changelog}"
    );
    // dpkg-parsechangelog reads it as such where available.
    if have("dpkg-parsechangelog") {
        let file = built.dir.path().join("changelog");
        std::fs::write(&file, &changelog).unwrap();
        let parsed = run(Command::new("dpkg-parsechangelog")
            .arg("-l")
            .arg(&file)
            .args(["-S", "Distribution"]));
        assert_eq!(parsed.trim(), "bookworm");
    }
}

#[test]
fn relations_and_distribution_outside_the_rules_are_refused() {
    let built = build(&Spec::new("9.11.90"), &["--format", "deb"]);
    for args in [
        ["--depends", "jq\nObsoletes: postgresql-server"],
        ["--depends", "a | b"],
        ["--recommends", "Nginx"],
        ["--suggests", "x (>= 1) y"],
        ["--distribution", "bookworm\nX: y"],
        ["--distribution", "a b"],
    ] {
        let out = built.dir.path().join("refused");
        let result = output(
            mm_pkg()
                .args(["build", "9.11.90", "--tarball"])
                .arg(&built.tarball)
                .arg("--output")
                .arg(&out)
                .args(args),
        );
        assert_eq!(result.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert!(
            stderr.contains("a relation is") || stderr.contains("a distribution is"),
            "{args:?}: the rule is named: {stderr}"
        );
        assert!(!out.exists());
    }
}
