//! Hosts that are not fresh (an existing account with other ids, a data directory owned by
//! someone else, a failing new preinst) and service restarts that rewrite config.json.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::process::Command;

use common::fixture::default_config;
use common::lifecycle::*;
use common::{chroot, chroot_ok, debian_root, have};

fn existing_account_and_foreign_data_dir(format: Format) {
    let Some(root) = debian_root() else { return };
    let root = root.path();
    format.prepare(root);
    chroot_ok(root, &["groupadd", "--gid", "4242", "mattermost"]);
    chroot_ok(
        root,
        &[
            "useradd",
            "--uid",
            "4343",
            "--gid",
            "4242",
            "--home-dir",
            "/srv/mm",
            "--shell",
            "/bin/bash",
            "mattermost",
        ],
    );
    fs::create_dir_all(root.join("opt/mattermost-daten")).unwrap();
    chroot_ok(root, &["chown", "daemon:daemon", "/opt/mattermost-daten"]);
    chroot_ok(root, &["chmod", "0711", "/opt/mattermost-daten"]);

    ok(
        format.install(root, &packages().path(Pkg::Old, format)),
        "install on an odd host",
    );
    let passwd = chroot_ok(root, &["getent", "passwd", "mattermost"]);
    assert_eq!(
        passwd.trim(),
        "mattermost:x:4343:4242::/srv/mm:/bin/bash",
        "the existing account is kept"
    );
    let data = fs::metadata(root.join("opt/mattermost-daten")).unwrap();
    assert_eq!(
        (data.uid(), data.mode() & 0o7777),
        (1, 0o711),
        "the admin's data dir owner and mode kept"
    );
    let config = fs::metadata(root.join("opt/mattermost-daten/config/config.json")).unwrap();
    assert_eq!(
        (config.uid(), config.gid()),
        (4343, 4242),
        "new files belong to the existing account"
    );
    assert!(server_caps(root).contains("cap_net_bind_service=ep"));
}

deb_and_rpm_tests!(existing_account_and_foreign_data_dir => deb_respects_an_existing_account_and_data_dir, rpm_respects_an_existing_account_and_data_dir);

#[test]
fn deb_failed_preinst_leaves_the_old_version_working() {
    if !have("dpkg-deb") {
        return;
    }
    let Some(root) = debian_root() else { return };
    let root = root.path();
    install_service_stubs(root);
    let pkgs = packages();
    ok(
        Format::Deb.install(root, &pkgs.path(Pkg::Old, Format::Deb)),
        "install",
    );
    act_like_an_admin(root);
    let data = root.join("opt/mattermost-daten");
    let admin = checksums(&data);
    set_service_active(root, true);
    service_actions(root);

    let broken = pkgs.with_template(
        "preinst",
        "#!/bin/sh\necho 'preinst: simulated failure' >&2\nexit 1\n",
        Format::Deb,
    );
    let log = fails(
        Format::Deb.install(root, &broken),
        "upgrade with a failing preinst",
    );
    assert!(log.contains("simulated failure"), "{log}");
    // dpkg ran the old postinst with abort-upgrade: the old version is configured and whole.
    assert_eq!(
        Format::Deb.installed(root, "mattermost").as_deref(),
        Some("9.11.90-1")
    );
    assert!(root.join("opt/mattermost/client/only-in-90.js").exists());
    assert_eq!(
        fs::read_to_string(root.join("opt/mattermost/mm-pkg-version")).unwrap(),
        "9.11.90\n9.11.90-1\nmattermost\n"
    );
    assert!(server_caps(root).contains("cap_net_bind_service=ep"));
    assert_unchanged(&data, &admin, "failed upgrade");
    let actions = service_actions(root);
    assert!(
        !actions.iter().any(|a| a.contains(" stop ")),
        "the running service was not stopped: {actions:?}"
    );
}

#[test]
fn rpm_verify_reports_nothing_after_install_and_upgrade() {
    if !have("rpm") {
        return;
    }
    let Some(root) = debian_root() else { return };
    let root = root.path();
    Format::Rpm.prepare(root);
    let pkgs = packages();
    for (step, pkg) in [("install", Pkg::Old), ("upgrade", Pkg::New)] {
        ok(
            Format::Rpm.install(root, &pkgs.path(pkg, Format::Rpm)),
            step,
        );
        // The server rewrites root.html for subpath setups: rpm -V must not call that tampering.
        fs::write(
            root.join("opt/mattermost/client/root.html"),
            "<html>rewritten for /chat</html>",
        )
        .unwrap();
        let out = Command::new("rpm")
            .arg("--root")
            .arg(root)
            .args(["-V", "--nodeps", "mattermost"])
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(report.trim().is_empty(), "rpm -V after {step}:\n{report}");
    }
    // ... while a change to a program file is reported.
    fs::write(root.join("opt/mattermost/i18n/en.json"), "tampered").unwrap();
    let out = Command::new("rpm")
        .arg("--root")
        .arg(root)
        .args(["-V", "--nodeps", "mattermost"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("/opt/mattermost/i18n/en.json"));
}

/// Admins report restarts resetting config.json. The unit's ExecStartPre keeps a copy taken
/// just before each start: here a start-command stub overwrites config.json with defaults,
/// and the admin's version is in the newest pre-start copy. Only the last 5 are kept.
#[test]
fn pre_start_copies_keep_the_admins_config() {
    if !have("dpkg-deb") {
        return;
    }
    let Some(root) = debian_root() else { return };
    let root = root.path();
    ok(
        Format::Deb.install(root, &packages().path(Pkg::Old, Format::Deb)),
        "install",
    );
    let unit = fs::read_to_string(root.join("usr/lib/systemd/system/mattermost.service")).unwrap();
    let pre = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStartPre="))
        .expect("the unit has an ExecStartPre");
    let config = root.join("opt/mattermost-daten/config/config.json");
    let config_dir = config.parent().unwrap().to_path_buf();
    let copies = || prestart_copies(root);
    for start in 1..=7 {
        let admins = format!("{{\"edited\": \"by the admin before start {start}\"}}\n");
        fs::write(&config, &admins).unwrap();
        // systemd runs ExecStartPre as User=mattermost, then the server.
        let out = Command::new("chroot")
            .args(["--userspec=mattermost:mattermost"])
            .arg(root)
            .arg(pre)
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{pre}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        fs::write(&config, default_config("9.11.90")).unwrap(); // the start-command stub resets it
        let newest = copies().pop().expect("a pre-start copy");
        assert_eq!(
            fs::read_to_string(config_dir.join(newest)).unwrap(),
            admins,
            "start {start}"
        );
    }
    assert_eq!(
        copies().len(),
        5,
        "the last 5 copies are kept: {:?}",
        copies()
    );

    // A crash loop: Restart=always starts it again and again with the same config.json.
    // Only the first of those starts takes a copy, so the admin's versions stay.
    let admins_versions = copies();
    fs::write(&config, "{\"crashing\": true}\n").unwrap();
    for _ in 0..6 {
        let out = Command::new("chroot")
            .args(["--userspec=mattermost:mattermost"])
            .arg(root)
            .arg(pre)
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .output()
            .unwrap();
        assert!(out.status.success());
    }
    let now = copies();
    assert_eq!(now.len(), 5, "{now:?}");
    assert_eq!(
        now[..4],
        admins_versions[1..],
        "a crash loop keeps the admin's last versions"
    );
    assert_eq!(
        fs::read_to_string(config_dir.join(&now[4])).unwrap(),
        "{\"crashing\": true}\n"
    );
    let _ = chroot(root, &["true"]);
}

/// Backups taken before package upgrades carry the full package version they replace, and
/// only the newest 10 are kept (by their time stamp); files of other names stay.
#[test]
fn upgrade_backups_keep_the_newest_ten() {
    if !have("dpkg-deb") {
        return;
    }
    let Some(root) = debian_root() else { return };
    let root = root.path();
    let pkgs = packages();
    ok(
        Format::Deb.install(root, &pkgs.path(Pkg::Old, Format::Deb)),
        "install",
    );
    let config_dir = root.join("opt/mattermost-daten/config");
    for n in 0..12 {
        fs::write(
            config_dir.join(format!(
                "config.json.bak-9.11.80-1-202501{:02}T000000Z",
                n + 1
            )),
            "old",
        )
        .unwrap();
    }
    fs::write(config_dir.join("config.json.bak-by-hand"), "mine").unwrap();
    ok(
        Format::Deb.install(root, &pkgs.path(Pkg::New, Format::Deb)),
        "upgrade",
    );
    let backups = config_backups(root);
    assert_eq!(backups.len(), 11, "{backups:?}");
    assert!(backups.contains(&"config.json.bak-by-hand".to_string()));
    assert!(
        backups
            .iter()
            .any(|b| b.starts_with("config.json.bak-9.11.90-1-2")),
        "{backups:?}"
    );
    for gone in ["01", "02", "03"] {
        assert!(
            !backups.contains(&format!("config.json.bak-9.11.80-1-202501{gone}T000000Z")),
            "the oldest go first: {backups:?}"
        );
    }
    assert!(backups.contains(&"config.json.bak-9.11.80-1-20250104T000000Z".to_string()));
}
