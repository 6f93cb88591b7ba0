//! Two Debian lifecycle corners: taking over from Mattermost's own .deb (a stand-in of it is
//! built here: same name, lower revision, everything inside /opt/mattermost), and a failing
//! unpack after the preinst moved a hand-made installation (postrm abort-install puts it
//! back).

mod common;

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;

use common::lifecycle::*;
use common::{chroot_ok, copy_into, debian_root, have, run};

/// Builds a .deb from `tree` (which holds DEBIAN/control and the files) into `out`.
fn dpkg_build(tree: &Path, out: &Path) {
    run(Command::new("dpkg-deb")
        .args(["--root-owner-group", "--build"])
        .arg(tree)
        .arg(out));
}

fn write(path: &Path, text: &str, mode: u32) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// A stand-in of the package in Mattermost's own apt repository: `mattermost` 9.11.90-0,
/// program and data inside /opt/mattermost (config.defaults.json shipped, config.json made
/// by postinst), /usr/bin links, the unit in /lib/systemd/system, no setcap; its postinst
/// creates the account, the data directories and gives /opt/mattermost to the account.
fn official_deb(dir: &Path) -> std::path::PathBuf {
    let tree = dir.join("official");
    write(
        &tree.join("DEBIAN/control"),
        "Package: mattermost\nVersion: 9.11.90-0\nArchitecture: amd64\n\
         Maintainer: Stand-in <x@example.org>\nDescription: stand-in of the official package\n",
        0o644,
    );
    write(
        &tree.join("DEBIAN/postinst"),
        "#!/bin/sh\nset -e\n\
         getent passwd mattermost >/dev/null || useradd --system --user-group mattermost\n\
         mkdir -p /opt/mattermost/data /opt/mattermost/logs /opt/mattermost/plugins\n\
         [ -e /opt/mattermost/config/config.json ] || \
           cp /opt/mattermost/config/config.defaults.json /opt/mattermost/config/config.json\n\
         chown -R mattermost:mattermost /opt/mattermost\n\
         systemctl enable mattermost.service >/dev/null 2>&1 || true\n",
        0o755,
    );
    write(
        &tree.join("DEBIAN/prerm"),
        "#!/bin/sh\nset -e\n\
         if [ \"$1\" = remove ]; then systemctl stop mattermost.service || true; fi\n",
        0o755,
    );
    write(
        &tree.join("opt/mattermost/bin/mattermost"),
        "#!/bin/sh\necho official\n",
        0o755,
    );
    write(
        &tree.join("opt/mattermost/bin/mmctl"),
        "#!/bin/sh\necho official mmctl\n",
        0o755,
    );
    write(
        &tree.join("opt/mattermost/config/config.defaults.json"),
        "{\"defaults\": \"official\"}\n",
        0o644,
    );
    write(
        &tree.join("opt/mattermost/client/old-only.js"),
        "old\n",
        0o644,
    );
    write(
        &tree.join("lib/systemd/system/mattermost.service"),
        "[Service]\nExecStart=/opt/mattermost/bin/mattermost\n",
        0o644,
    );
    fs::create_dir_all(tree.join("usr/bin")).unwrap();
    symlink(
        "/opt/mattermost/bin/mattermost",
        tree.join("usr/bin/mattermost"),
    )
    .unwrap();
    symlink("/opt/mattermost/bin/mmctl", tree.join("usr/bin/mmctl")).unwrap();
    let deb = dir.join("mattermost_9.11.90-0_amd64.deb");
    dpkg_build(&tree, &deb);
    deb
}

/// A Debian root with the service stubs and the official package's stand-in installed, and
/// a scratch directory (which holds the stand-in .deb).
fn official_installed() -> Option<(tempfile::TempDir, tempfile::TempDir)> {
    let root = debian_root()?;
    install_service_stubs(root.path());
    let dir = tempfile::tempdir().unwrap();
    let official = official_deb(dir.path());
    ok(
        Format::Deb.install(root.path(), &official),
        "install the official stand-in",
    );
    Some((root, dir))
}

#[test]
fn deb_takes_over_from_mattermosts_own_package() {
    if !have("dpkg-deb") {
        return;
    }
    let Some(root) = debian_root() else { return };
    let root = root.path();
    install_service_stubs(root);
    let dir = tempfile::tempdir().unwrap();
    let official = official_deb(dir.path());
    let log = ok(
        Format::Deb.install(root, &official),
        "install the official stand-in",
    );
    assert!(!log.contains("error"), "{log}");
    // The admin's config and data, in the official layout.
    let old = root.join("opt/mattermost");
    write(
        &old.join("config/config.json"),
        "{\"edited\": \"by the admin\"}\n",
        0o600,
    );
    write(&old.join("data/users/u1/avatar.png"), "png", 0o644);
    write(
        &old.join("plugins/com.example.poll/plugin.json"),
        "{}",
        0o644,
    );
    chroot_ok(
        root,
        &["chown", "-R", "mattermost:mattermost", "/opt/mattermost"],
    );
    let before = checksums(&old);
    set_service_active(root, true);
    service_actions(root);

    let log = ok(
        Format::Deb.install(root, &packages().path(Pkg::Old, Format::Deb)),
        "upgrade the official package to mm-pkg's",
    );
    assert!(
        log.contains("took over the installation of Mattermost's own package"),
        "{log}"
    );
    assert_eq!(
        Format::Deb.installed(root, "mattermost").as_deref(),
        Some("9.11.90-1")
    );
    let data = root.join("opt/mattermost-daten");
    for (path, hash) in &before {
        if path.starts_with("config/") || path.starts_with("data/") || path.starts_with("plugins/")
        {
            if path == "config/config.defaults.json" {
                continue; // the old package's own file, removed with it
            }
            assert_eq!(
                checksums(&data).get(path),
                Some(hash),
                "{path} moved intact"
            );
        }
    }
    for dir in ["config", "data", "logs", "plugins"] {
        assert_eq!(
            fs::read_link(old.join(dir)).unwrap().to_str().unwrap(),
            format!("../mattermost-daten/{dir}")
        );
    }
    assert_eq!(
        chroot_ok(
            root,
            &[
                "stat",
                "-c",
                "%U:%G %a",
                "/opt/mattermost",
                "/opt/mattermost/bin",
                "/opt/mattermost-daten"
            ]
        ),
        "root:root 755\nroot:root 755\nmattermost:mattermost 750\n",
        "program files are root's again; the data directory as after a fresh install"
    );
    let aside: Vec<String> = fs::read_dir(root.join("opt"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("mattermost.mattermost-deb-"))
        .collect();
    assert_eq!(
        aside.len(),
        1,
        "the old program files moved aside: {aside:?}"
    );
    assert_eq!(
        fs::read_to_string(root.join("opt").join(&aside[0]).join("bin/mattermost")).unwrap(),
        "#!/bin/sh\necho official\n",
        "the old program files untouched in {}",
        aside[0]
    );
    assert!(
        root.join("usr/lib/systemd/system/mattermost.service")
            .exists(),
        "the unit survives the removal of the old package's /lib path"
    );
    assert!(!root.join("usr/bin/mattermost").exists());
    assert!(!root.join("opt/mattermost/client/old-only.js").exists());
    assert!(server_caps(root).contains("cap_net_bind_service=ep"));
    let verify = Format::Deb.verify(root, "mattermost");
    assert!(
        verify.status.success() && verify.stdout.is_empty(),
        "{verify:?}"
    );
    let actions = service_actions(root);
    assert_eq!(
        actions
            .iter()
            .filter(|a| a.contains(" restart ") || a.contains(" stop ") || a.contains(" start "))
            .collect::<Vec<_>>(),
        ["deb-systemd-invoke restart mattermost.service"],
        "the running service is restarted once: {actions:?}"
    );
    assert!(
        !log.contains("enabled but not started"),
        "no fresh-install text: {log}"
    );
}

/// A package that owns /usr/bin/mmctl makes the unpack of mm-pkg's fail after its preinst
/// moved a hand-made /opt/mattermost into the data directory: postrm abort-install puts
/// everything back.
#[test]
fn deb_failed_unpack_after_a_migration_puts_the_installation_back() {
    if !have("dpkg-deb") {
        return;
    }
    let Some(root) = debian_root() else { return };
    let root = root.path();
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("blocker");
    write(
        &tree.join("DEBIAN/control"),
        "Package: blocker\nVersion: 1\nArchitecture: all\nMaintainer: T <t@example.org>\n\
         Description: owns /usr/bin/mmctl\n",
        0o644,
    );
    write(&tree.join("usr/bin/mmctl"), "#!/bin/sh\n", 0o755);
    let blocker = dir.path().join("blocker.deb");
    dpkg_build(&tree, &blocker);
    chroot_ok(root, &["dpkg", "-i", &copy_into(root, &blocker)]);

    let old = root.join("opt/mattermost");
    write(
        &old.join("config/config.json"),
        "{\"hand\": \"made\"}\n",
        0o600,
    );
    write(&old.join("data/users/u1/avatar.png"), "png", 0o644);
    write(&old.join("bin/mattermost"), "old binary", 0o755);
    let before = checksums(&old);

    let log = fails(
        Format::Deb.install(root, &packages().path(Pkg::Old, Format::Deb)),
        "install over a file another package owns",
    );
    assert!(
        log.contains("moved /opt/mattermost/config to /opt/mattermost-daten/config"),
        "the migration ran: {log}"
    );
    assert!(log.contains("put "), "{log}");
    assert_eq!(
        checksums(&old),
        before,
        "the old installation is back:\n{log}"
    );
    assert!(
        fs::symlink_metadata(&old).unwrap().is_dir(),
        "/opt/mattermost is a real directory again"
    );
    assert!(
        !root.join("opt/mattermost-daten").exists(),
        "the data directory the migration made is gone again"
    );
    assert!(
        !fs::read_dir(root.join("opt")).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains("hand-made")),
        "{log}"
    );
    assert!(!root.join("var/lib/mm-pkg").exists());
}

/// Mattermost's own package gives all of /opt/mattermost to the account, so at the takeover
/// the account may have planted anything in the program tree: a hard link to a root file it
/// does not own (possible wherever fs.protected_hardlinks is off; made here by root on its
/// behalf) and a world-writable bin/ (from where a root `mmctl` would run its own program).
/// The takeover must neither give root's files away nor leave the account a way into the
/// program files dpkg unpacks.
#[test]
fn deb_takeover_does_not_act_on_the_accounts_program_tree_as_root() {
    if !have("dpkg-deb") {
        return;
    }
    let Some((root, _dir)) = official_installed() else {
        return;
    };
    let root = root.path();
    write(&root.join("etc/mm-victim"), "root's\n", 0o644);
    chroot_ok(root, &["chown", "nobody:nogroup", "/etc/mm-victim"]);
    chroot_ok(
        root,
        &["ln", "/etc/mm-victim", "/opt/mattermost/client/pwn"],
    );
    chroot_ok(
        root,
        &[
            "setpriv",
            "--reuid=mattermost",
            "--regid=mattermost",
            "--clear-groups",
            "chmod",
            "0777",
            "/opt/mattermost/bin",
            "/opt/mattermost/client",
        ],
    );

    ok(
        Format::Deb.install(root, &packages().path(Pkg::Old, Format::Deb)),
        "upgrade the official package to mm-pkg's",
    );
    assert_eq!(
        chroot_ok(root, &["stat", "-c", "%U:%G %a", "/etc/mm-victim"]),
        "nobody:nogroup 644\n",
        "the takeover changed the owner of a file the account had linked into its tree"
    );
    let writable = chroot_ok(
        root,
        &[
            "find",
            "-P",
            "/opt/mattermost",
            "!",
            "-type",
            "l",
            "(",
            "-perm",
            "-0002",
            "-o",
            "-type",
            "d",
            "-user",
            "mattermost",
            ")",
            "!",
            "-path",
            "/opt/mattermost/client/plugins",
        ],
    );
    assert_eq!(
        writable, "",
        "program directories the account can still change after the takeover (the webapp \
         files the server rewrites are the account's by design)"
    );
}

/// A takeover whose unpack fails (another package owns a file mm-pkg ships): postrm
/// abort-upgrade puts the official package's tree back where it was, data included.
#[test]
fn deb_failed_takeover_puts_the_official_installation_back() {
    if !have("dpkg-deb") {
        return;
    }
    let Some((root, dir)) = official_installed() else {
        return;
    };
    let root = root.path();
    let tree = dir.path().join("blocker");
    write(
        &tree.join("DEBIAN/control"),
        "Package: blocker\nVersion: 1\nArchitecture: all\nMaintainer: T <t@example.org>\n\
         Description: owns the config-snapshot script\n",
        0o644,
    );
    write(
        &tree.join("usr/libexec/mattermost/config-snapshot"),
        "#!/bin/sh\n",
        0o755,
    );
    let blocker = dir.path().join("blocker.deb");
    dpkg_build(&tree, &blocker);
    chroot_ok(root, &["dpkg", "-i", &copy_into(root, &blocker)]);
    let old = root.join("opt/mattermost");
    write(&old.join("data/users/u1/avatar.png"), "png", 0o644);
    chroot_ok(
        root,
        &["chown", "-R", "mattermost:mattermost", "/opt/mattermost"],
    );
    let before = checksums(&old);

    let log = fails(
        Format::Deb.install(root, &packages().path(Pkg::Old, Format::Deb)),
        "take over with a file another package owns",
    );
    assert!(log.contains("took over the installation"), "{log}");
    assert_eq!(checksums(&old), before, "the official tree is back:\n{log}");
    assert_eq!(
        chroot_ok(
            root,
            &["stat", "-c", "%U", "/opt/mattermost/bin/mattermost"]
        ),
        "mattermost\n"
    );
    assert!(
        !fs::read_dir(root.join("opt")).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains("mattermost-deb")),
        "{log}"
    );
    assert_eq!(
        Format::Deb.installed(root, "mattermost").as_deref(),
        Some("9.11.90-0")
    );
}
