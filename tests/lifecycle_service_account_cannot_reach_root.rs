//! A compromised `mattermost` account plants symlinks in the data directory it owns (named
//! like the next config backups, a symlinked `config/`, `config.json` itself a link to a
//! root-only file, links in client/plugins), then the admin upgrades, reinstalls,
//! downgrades, removes and purges: with dpkg and with rpm, no file outside the data
//! directory changes content, owner or mode, and root never leaves a file of its own in the
//! data directory. An admin's own symlink (logs/ on another disk) keeps working.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use common::lifecycle::*;
use common::{chroot, chroot_ok, debian_root, debian_root_of, have};

/// Files and directories outside the data directory the planted links point at.
const CANARY: &str = "etc/mm-canary";
const SECRET: &str = "etc/mm-secret";
const TARGET_DIR: &str = "etc/mm-target";

/// Content, owner, group and mode of a file, or the listing of a directory with its owner
/// and mode.
fn state(path: &Path) -> String {
    let meta = fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let what = if meta.is_dir() {
        let mut names: Vec<String> = fs::read_dir(path)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names.join(",")
    } else {
        String::from_utf8_lossy(&fs::read(path).unwrap()).into_owned()
    };
    format!(
        "{}:{} {:o} {what}",
        meta.uid(),
        meta.gid(),
        meta.mode() & 0o7777
    )
}

fn targets(root: &Path) -> Vec<PathBuf> {
    [CANARY, SECRET, TARGET_DIR, "etc/passwd", "etc/shadow"]
        .iter()
        .map(|p| root.join(p))
        .collect()
}

/// Runs a shell command as the service account inside the root.
fn as_account(root: &Path, script: &str) {
    let out = common::output(
        std::process::Command::new("chroot")
            .args(["--userspec=mattermost:mattermost"])
            .arg(root)
            .args(["/bin/sh", "-c", script])
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
    );
    assert!(
        out.status.success(),
        "as mattermost: {script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Symlinks named like every backup the next minutes could produce (both naming schemes:
/// upstream version only, and full package version), pointing at the canary.
fn plant_backup_links(root: &Path) {
    as_account(
        root,
        "cd /opt/mattermost-daten/config && now=$(date -u +%s) && i=0 && \
         while [ $i -lt 400 ]; do \
           ts=$(date -u -d @$((now + i)) +%Y%m%dT%H%M%SZ); \
           for v in 9.11.90 9.11.91 9.11.90-1 9.11.91-1; do \
             ln -sf /etc/mm-canary config.json.bak-$v-$ts; done; \
           i=$((i + 1)); done",
    );
}

/// Every path below the data directory that root owns (none may appear: root never
/// creates anything there), besides the admin's own logs link.
fn root_owned_in_data(root: &Path) -> Vec<String> {
    let out = chroot_ok(
        root,
        &[
            "find",
            "-P",
            "/opt/mattermost-daten",
            "-mindepth",
            "1",
            "-uid",
            "0",
            "!",
            "-path",
            "/opt/mattermost-daten/logs",
        ],
    );
    out.lines().map(str::to_string).collect()
}

fn attack(suite: &str, format: Format) {
    let Some(root) = debian_root_of(suite) else {
        return;
    };
    let root = root.path();
    format.prepare(root);
    install_service_stubs(root);
    let pkgs = packages();
    fs::write(root.join(CANARY), "canary: root's file\n").unwrap();
    fs::write(root.join(SECRET), "secret: root only\n").unwrap();
    fs::set_permissions(root.join(SECRET), fs::Permissions::from_mode(0o600)).unwrap();
    fs::create_dir_all(root.join(TARGET_DIR)).unwrap();

    ok(
        format.install(root, &pkgs.path(Pkg::Old, format)),
        "install",
    );
    act_like_an_admin(root);
    // The admin keeps logs on another disk: a symlink the account's operations follow.
    fs::create_dir_all(root.join("srv/disk")).unwrap();
    chroot_ok(
        root,
        &[
            "mv",
            "-T",
            "/opt/mattermost-daten/logs",
            "/srv/disk/mattermost-logs",
        ],
    );
    symlink(
        "/srv/disk/mattermost-logs",
        root.join("opt/mattermost-daten/logs"),
    )
    .unwrap();
    let logs = checksums(&root.join("srv/disk/mattermost-logs"));
    let before: Vec<String> = targets(root).iter().map(|p| state(p)).collect();
    let check = |step: &str| {
        for (path, was) in targets(root).iter().zip(&before) {
            assert_eq!(&state(path), was, "{step}: {} changed", path.display());
        }
        assert_eq!(
            root_owned_in_data(root),
            Vec::<String>::new(),
            "{step}: root made files in the data directory"
        );
        assert!(
            fs::symlink_metadata(root.join("opt/mattermost-daten/logs"))
                .unwrap()
                .is_symlink(),
            "{step}: the admin's logs link stays"
        );
        assert_unchanged(&root.join("srv/disk/mattermost-logs"), &logs, step);
    };

    // 1. Links named like the next backups, then upgrade.
    plant_backup_links(root);
    ok(
        format.install(root, &pkgs.path(Pkg::New, format)),
        "upgrade",
    );
    check("upgrade over planted backup names");

    // 2. config.json itself a link to a root-only file, then reinstall.
    as_account(
        root,
        "cd /opt/mattermost-daten/config && mv config.json config.json.real && \
         ln -s /etc/mm-secret config.json",
    );
    ok(
        format.reinstall(root, &pkgs.path(Pkg::New, format)),
        "reinstall",
    );
    check("reinstall over a config.json link");
    let leaked = chroot(
        root,
        &[
            "grep",
            "-rl",
            "--no-messages",
            "secret: root only",
            "/opt/mattermost-daten/config/",
        ],
    );
    assert!(
        String::from_utf8_lossy(&leaked.stdout).trim().is_empty(),
        "the root-only file was copied into the data directory: {}",
        String::from_utf8_lossy(&leaked.stdout)
    );

    // 3. config/ itself a link to a root-owned directory, then downgrade.
    as_account(
        root,
        "cd /opt/mattermost-daten && mv config config.moved && ln -s /etc/mm-target config",
    );
    ok(
        format.downgrade(root, &pkgs.path(Pkg::Old, format)),
        "downgrade",
    );
    check("downgrade over a config/ link");

    // 4. A link in the webapp plugin directory the account owns, then remove and purge.
    as_account(
        root,
        "ln -s /etc/mm-target /opt/mattermost/client/plugins/evil && \
         ln -s /etc/mm-canary /opt/mattermost/client/plugins/evil-file",
    );
    ok(format.remove(root, "mattermost"), "remove");
    check("remove");
    ok(
        format.install(root, &pkgs.path(Pkg::New, format)),
        "install again",
    );
    check("install again over the links");
    ok(format.purge(root, "mattermost"), "purge");
    check("purge");
}

#[test]
fn deb_scripts_never_follow_the_service_accounts_links() {
    if have("dpkg-deb") {
        attack("bookworm", Format::Deb);
    }
}

#[test]
fn deb_scripts_never_follow_the_service_accounts_links_on_debian_13() {
    if have("dpkg-deb") {
        attack("trixie", Format::Deb);
    }
}

#[test]
fn rpm_scriptlets_never_follow_the_service_accounts_links() {
    if have("rpm") {
        attack("bookworm", Format::Rpm);
    }
}

/// The binary that can bind ports below 1024 is root:mattermost 0750 after install and
/// upgrade (Debian: through the package's own dpkg-statoverride entry, dropped on purge),
/// and `dpkg -V` / `rpm -V` have nothing to report.
fn binary_permissions(format: Format) {
    let Some(root) = debian_root() else { return };
    let root = root.path();
    format.prepare(root);
    let pkgs = packages();
    let binary = "/opt/mattermost/bin/mattermost";
    for (step, pkg) in [("install", Pkg::Old), ("upgrade", Pkg::New)] {
        ok(format.install(root, &pkgs.path(pkg, format)), step);
        assert_eq!(
            chroot_ok(root, &["stat", "-c", "%U:%G %a", binary]).trim(),
            "root:mattermost 750",
            "{step}"
        );
        assert!(
            server_caps(root).contains("cap_net_bind_service=ep"),
            "{step}"
        );
        let nobody = common::output(
            std::process::Command::new("chroot")
                .arg("--userspec=nobody:nogroup")
                .arg(root)
                .arg(binary),
        );
        assert!(
            String::from_utf8_lossy(&nobody.stderr).contains("Permission denied"),
            "{step}: another user must not run the binary: {nobody:?}"
        );
        let verify = match format {
            Format::Deb => chroot(root, &["dpkg", "-V", "mattermost"]),
            Format::Rpm => common::output(
                std::process::Command::new("rpm")
                    .arg("--root")
                    .arg(root)
                    .args(["-V", "--nodeps", "mattermost"]),
            ),
        };
        assert!(
            verify.status.success() && verify.stdout.is_empty(),
            "{step}: verify reports {}",
            String::from_utf8_lossy(&verify.stdout)
        );
    }
    if format == Format::Deb {
        assert_eq!(
            chroot_ok(root, &["dpkg-statoverride", "--list", binary]).trim(),
            format!("root mattermost 750 {binary}")
        );
        ok(format.purge(root, "mattermost"), "purge");
        let left = chroot(root, &["dpkg-statoverride", "--list", binary]);
        assert!(
            left.stdout.is_empty(),
            "the package's override goes with the purge: {}",
            String::from_utf8_lossy(&left.stdout)
        );
    }
}

deb_and_rpm_tests!(binary_permissions => deb_binary_is_root_mattermost_0750_with_the_capability, rpm_binary_is_root_mattermost_0750_with_the_capability);
