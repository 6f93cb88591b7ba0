//! piuparts, Debian's install/purge tester, passes on the .deb.
//!
//! Options, and why a package in /opt needs them:
//! - `--ignore-regex '^/opt/mattermost-daten(/.*)?$'`: purge deliberately leaves the admin's
//!   config, data, logs and plugins (the whole point of the data directory). The second run
//!   below, without it, proves that this directory is the only thing purge leaves.
//! - `--no-upgrade-test`: the package is not in Debian's archive, so there is no older
//!   version to upgrade from (upgrades are covered by the lifecycle tests).
//! - `-b` a tarball of the cached debootstrap root, `-d bookworm`, `-m` the Debian mirror:
//!   piuparts installs the dependencies (adduser, libcap2-bin) with apt from there.

mod common;

use std::path::Path;
use std::process::Command;

use common::fixture::Spec;
use common::{build, debian_root, have, output, run};

#[test]
fn piuparts_install_and_purge_pass() {
    if !have("piuparts") {
        return;
    }
    let Some(root) = debian_root() else { return };
    let base = root.path().with_extension("tgz");
    run(Command::new("tar")
        .arg("-C")
        .arg(root.path())
        .arg("-czf")
        .arg(&base)
        .arg("."));
    let built = build(&Spec::new("9.11.90"), &["--format", "deb"]);
    let mirror = std::env::var("MM_PKG_DEBIAN_MIRROR")
        .unwrap_or_else(|_| "http://deb.debian.org/debian".into());
    let piuparts = |extra: &[&str]| {
        let mut cmd = Command::new("piuparts");
        cmd.arg("-b")
            .arg(&base)
            .args(["-d", "bookworm", "-m", &mirror, "--no-upgrade-test"])
            .args(extra)
            .arg(built.deb.as_ref().unwrap());
        output(&mut cmd)
    };
    let passed = piuparts(&["--ignore-regex", "^/opt/mattermost-daten(/.*)?$"]);
    let log = String::from_utf8_lossy(&passed.stdout);
    assert!(
        passed.status.success() && log.contains("PASS: All tests."),
        "piuparts failed:\n{log}"
    );

    let strict = piuparts(&[]);
    let log = String::from_utf8_lossy(&strict.stdout);
    assert!(
        !strict.status.success(),
        "purge is expected to leave the data directory"
    );
    let left: Vec<&str> = log
        .lines()
        .skip_while(|l| !l.contains("Package purging left files on system"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert!(!left.is_empty(), "no list of leftovers in:\n{log}");
    assert!(
        left.iter().all(|p| p.starts_with("/opt/mattermost-daten/")),
        "purge left something besides the data directory: {left:?}"
    );
    let _ = std::fs::remove_file(Path::new(&base));
}
