//! Switching between the enterprise and team packages, and moving the two hand-made
//! layouts admins have today into the packaged one: nothing of the admin's is lost, and an
//! unsafe migration stops before anything changes.

mod common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use common::lifecycle::*;
use common::{chroot_ok, debian_root};

fn edition_switch(format: Format) {
    let Some(root) = debian_root() else { return };
    let root = root.path();
    format.prepare(root);
    install_service_stubs(root);
    let pkgs = packages();
    let data = root.join("opt/mattermost-daten");
    ok(
        format.install(root, &pkgs.path(Pkg::Old, format)),
        "install enterprise",
    );
    act_like_an_admin(root);
    let admin = checksums(&data);
    set_service_active(root, true);
    service_actions(root);

    ok(
        format.switch_edition(root, "mattermost", &pkgs.path(Pkg::Team, format)),
        "switch to team",
    );
    assert_eq!(
        format.installed(root, "mattermost-team").as_deref(),
        Some("9.11.91-1")
    );
    assert_eq!(format.installed(root, "mattermost"), None);
    assert_unchanged(&data, &admin, "switch to team");
    assert!(server_caps(root).contains("cap_net_bind_service=ep"));
    let actions = service_actions(root);
    if format == Format::Deb {
        // dpkg replaces the edition in one step: the service is not stopped, only restarted.
        assert!(!actions.iter().any(|a| a.contains(" stop ")), "{actions:?}");
        assert!(
            actions
                .iter()
                .any(|a| a == "deb-systemd-invoke restart mattermost.service"),
            "{actions:?}"
        );
    }

    ok(
        format.switch_edition(root, "mattermost-team", &pkgs.path(Pkg::New, format)),
        "switch back",
    );
    assert_eq!(
        format.installed(root, "mattermost").as_deref(),
        Some("9.11.91-1")
    );
    assert_eq!(format.installed(root, "mattermost-team"), None);
    assert_unchanged(&data, &admin, "switch back");
    assert!(server_caps(root).contains("cap_net_bind_service=ep"));
    assert!(root.join("opt/mattermost/bin/mattermost").exists());
    assert!(
        root.join("usr/lib/systemd/system/mattermost.service")
            .exists()
    );
}

/// The old edition's removal after a switch (Debian: purging it from config-files state;
/// RPM: `dnf swap` erasing it after installing the new one) leaves what the new edition
/// shares alone: the unit's enablement, the running service, client/plugins, the binary's
/// permissions. The new edition prints no fresh-install text over an existing config.
fn switch_then_clean_up(format: Format) {
    let Some(root) = debian_root() else { return };
    let root = root.path();
    format.prepare(root);
    install_service_stubs(root);
    let pkgs = packages();
    let data = root.join("opt/mattermost-daten");
    ok(
        format.install(root, &pkgs.path(Pkg::Old, format)),
        "install enterprise",
    );
    act_like_an_admin(root);
    let admin = checksums(&data);
    set_service_active(root, true);
    service_actions(root);
    let bundle = root.join("opt/mattermost/client/plugins/com.example.poll/main.js");

    let (install, cleanup) =
        format.switch_then_clean_up(root, "mattermost", &pkgs.path(Pkg::Team, format));
    let log = ok(install, "install team");
    assert!(
        !log.contains("enabled but not started"),
        "no fresh-install text over an existing config:\n{log}"
    );
    ok(cleanup, "remove the old edition");
    assert_eq!(
        format.installed(root, "mattermost-team").as_deref(),
        Some("9.11.91-1")
    );
    assert_eq!(format.installed(root, "mattermost"), None);
    assert_unchanged(&data, &admin, "clean-up of the old edition");
    assert!(bundle.exists(), "client/plugins of the new edition kept");
    let actions = service_actions(root);
    assert!(
        !actions
            .iter()
            .any(|a| a.contains(" stop ") || a.contains(" disable ") || a.contains(" mask ")),
        "the old edition's removal left the service alone: {actions:?}"
    );
    if format == Format::Deb {
        // deb-systemd-helper's record that the admin's unit is enabled (`purge` deletes it,
        // and with it the enablement on the next `systemctl preset`).
        assert!(
            root.join("var/lib/systemd/deb-systemd-helper-enabled/mattermost.service.dsh-also")
                .exists(),
            "the unit's enablement state is kept"
        );
    }
    assert!(server_caps(root).contains("cap_net_bind_service=ep"));
    let verify = format.verify(root, "mattermost-team");
    assert!(
        verify.status.success() && verify.stdout.is_empty(),
        "verify of the new edition: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    assert_eq!(
        chroot_ok(
            root,
            &["stat", "-c", "%U:%G %a", "/opt/mattermost/bin/mattermost"]
        )
        .trim(),
        "root:mattermost 750"
    );
}

deb_and_rpm_tests!(switch_then_clean_up => deb_purging_the_old_edition_leaves_the_new_one_whole, rpm_swap_erasing_the_old_edition_leaves_the_new_one_whole);

deb_and_rpm_tests!(edition_switch => deb_edition_switch_keeps_config_and_data, rpm_edition_switch_keeps_config_and_data);

/// Writes an admin's files below `dir` (config/, data/, logs/, plugins/).
fn admin_files(dir: &Path) {
    for (path, text) in [
        ("config/config.json", "{\"hand\": \"made\"}\n"),
        ("data/users/u1/avatar.png", "png"),
        ("logs/mattermost.log", "log line\n"),
        ("plugins/com.example.poll/plugin.json", "{}"),
    ] {
        let file = dir.join(path);
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        fs::write(file, text).unwrap();
    }
}

/// Layout a: everything inside a real /opt/mattermost, as upstream's instructions leave it.
fn migrate_real_directory(format: Format) {
    let Some(root) = debian_root() else { return };
    let root = root.path();
    format.prepare(root);
    let old = root.join("opt/mattermost");
    admin_files(&old);
    fs::create_dir_all(old.join("bin")).unwrap();
    fs::write(old.join("bin/mattermost"), "old binary").unwrap();
    let before = checksums(&old);

    let log = ok(
        format.install(root, &packages().path(Pkg::Old, format)),
        "install over layout a",
    );
    assert!(
        log.contains("moved /opt/mattermost/config to /opt/mattermost-daten/config"),
        "{log}"
    );
    assert!(
        fs::symlink_metadata(&old).unwrap().is_dir(),
        "/opt/mattermost is a real directory"
    );
    for dir in ["config", "data", "logs", "plugins"] {
        assert_eq!(
            fs::read_link(old.join(dir)).unwrap().to_str().unwrap(),
            format!("../mattermost-daten/{dir}")
        );
    }
    let data = root.join("opt/mattermost-daten");
    for (path, hash) in &before {
        if !path.starts_with("bin/") {
            assert_eq!(
                checksums(&data).get(path),
                Some(hash),
                "{path} moved intact"
            );
        }
    }
    let notes: Vec<_> = fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("mm-pkg-migration-"))
        .collect();
    assert_eq!(notes.len(), 1, "a note of what was moved: {notes:?}");
    let aside: Vec<_> = fs::read_dir(root.join("opt"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("mattermost.hand-made-"))
        .collect();
    assert_eq!(aside.len(), 1, "old program files kept aside: {aside:?}");
    assert_eq!(
        chroot_ok(root, &["stat", "-c", "%U:%G %a", "/opt/mattermost-daten"]).trim(),
        "mattermost:mattermost 750",
        "the same owner and mode as after a fresh install"
    );
    assert_eq!(
        fs::read_to_string(root.join("opt").join(&aside[0]).join("bin/mattermost")).unwrap(),
        "old binary"
    );
    assert!(server_caps(root).contains("cap_net_bind_service=ep"));
}

/// Layout b: /opt/mattermost a symlink to a versioned directory whose data dirs are
/// symlinks into /opt/mattermost-daten.
fn migrate_versioned_symlink(format: Format) {
    let Some(root) = debian_root() else { return };
    let root = root.path();
    format.prepare(root);
    let data = root.join("opt/mattermost-daten");
    admin_files(&data);
    let versioned = root.join("opt/mattermost-9.11.90");
    fs::create_dir_all(versioned.join("bin")).unwrap();
    fs::write(versioned.join("bin/mattermost"), "old binary").unwrap();
    for dir in ["config", "data", "logs", "plugins"] {
        symlink(format!("/opt/mattermost-daten/{dir}"), versioned.join(dir)).unwrap();
    }
    symlink("/opt/mattermost-9.11.90", root.join("opt/mattermost")).unwrap();
    let before = checksums(&data);

    let log = ok(
        format.install(root, &packages().path(Pkg::Old, format)),
        "install over layout b",
    );
    assert!(log.contains("removed the symlink /opt/mattermost"), "{log}");
    let meta = fs::symlink_metadata(root.join("opt/mattermost")).unwrap();
    assert!(meta.is_dir(), "/opt/mattermost is now a real directory");
    assert_unchanged(&data, &before, "layout b");
    assert_eq!(
        fs::read_to_string(data.join("config/config.json")).unwrap(),
        "{\"hand\": \"made\"}\n"
    );
    assert_eq!(
        fs::read_to_string(versioned.join("bin/mattermost")).unwrap(),
        "old binary",
        "left for the admin"
    );
    assert!(server_caps(root).contains("cap_net_bind_service=ep"));
    chroot_ok(root, &["test", "-d", "/opt/mattermost/config/"]);
}

/// Both places hold a config.json, and they differ: stop before unpacking, change nothing.
fn migration_conflict_stops(format: Format) {
    let Some(root) = debian_root() else { return };
    let root = root.path();
    format.prepare(root);
    let old = root.join("opt/mattermost");
    admin_files(&old);
    let data = root.join("opt/mattermost-daten");
    fs::create_dir_all(data.join("config")).unwrap();
    fs::write(data.join("config/config.json"), "{\"other\": true}\n").unwrap();
    let before_old = checksums(&old);
    let before_data = checksums(&data);

    let log = fails(
        format.install(root, &packages().path(Pkg::Old, format)),
        "install over a conflict",
    );
    assert!(
        log.contains("cannot move the existing Mattermost installation"),
        "{log}"
    );
    assert!(log.contains("config.json"), "names the file: {log}");
    assert_eq!(format.installed(root, "mattermost"), None);
    assert_eq!(
        checksums(&old),
        before_old,
        "the old installation is as it was"
    );
    assert_eq!(
        checksums(&data),
        before_data,
        "the data directory is as it was"
    );
    assert!(!old.join("mm-pkg-version").exists(), "nothing was unpacked");
}

deb_and_rpm_tests!(migrate_real_directory => deb_migrates_a_real_opt_mattermost, rpm_migrates_a_real_opt_mattermost);

deb_and_rpm_tests!(migrate_versioned_symlink => deb_migrates_a_versioned_symlink_layout, rpm_migrates_a_versioned_symlink_layout);

deb_and_rpm_tests!(migration_conflict_stops => deb_refuses_an_unsafe_migration_before_unpacking, rpm_refuses_an_unsafe_migration_before_unpacking);
