//! Install, upgrade, downgrade, reinstall, remove, reinstall and purge, with dpkg and with
//! rpm, in a Debian 12 root (and with dpkg in Debian 13): the admin's config and data never change by a byte, the
//! capability is always back, and the service actions are the expected ones.

mod common;

use std::fs;

use common::lifecycle::*;
use common::{chroot_ok, debian_root_of, have};

fn matrix(suite: &str, format: Format) {
    let Some(root) = debian_root_of(suite) else {
        return;
    };
    let root = root.path();
    format.prepare(root);
    install_service_stubs(root);
    let pkgs = packages();
    let data = root.join("opt/mattermost-daten");
    let config = data.join("config/config.json");

    // 1. Fresh install: account, seeded config, enabled unit, service not started.
    let log = ok(
        format.install(root, &pkgs.path(Pkg::Old, format)),
        "fresh install",
    );
    // Whether it says enabled depends on the stubbed systemctl (the boot test sees the real
    // answer); never started, it says in every case.
    assert!(
        log.contains("not started,\nbecause it needs a database"),
        "{log}"
    );
    assert_eq!(
        format.installed(root, "mattermost").as_deref(),
        Some("9.11.90-1")
    );
    chroot_ok(root, &["getent", "passwd", "mattermost"]);
    assert!(
        fs::read_to_string(&config)
            .unwrap()
            .contains("\"_synthetic_release\": \"9.11.90\"")
    );
    let actions = service_actions(root);
    // deb-systemd-helper enables through `systemctl preset` when systemctl exists.
    let enable = match format {
        Format::Deb => {
            "systemctl --root=/ --system --preset-mode=enable-only preset mattermost.service"
        }
        // %post follows the presets, as %systemd_post does.
        Format::Rpm => "systemctl --no-reload preset mattermost.service",
    };
    assert_eq!(actions, [enable], "fresh install enables only");
    assert!(server_caps(root).contains("cap_net_bind_service=ep"));

    act_like_an_admin(root);
    let admin = checksums(&data);
    let bundle = root.join("opt/mattermost/client/plugins/com.example.poll/main.js");

    // 2. Upgrade while the service runs.
    set_service_active(root, true);
    ok(
        format.install(root, &pkgs.path(Pkg::New, format)),
        "upgrade",
    );
    assert_eq!(
        format.installed(root, "mattermost").as_deref(),
        Some("9.11.91-1")
    );
    assert_unchanged(&data, &admin, "upgrade");
    let backups = config_backups(root);
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert!(
        backups[0].starts_with("config.json.bak-9.11.90-1-"),
        "named after the full package version replaced: {backups:?}"
    );
    assert!(!backups[0].contains("9.11.91"), "{backups:?}");
    assert_eq!(
        fs::read(data.join("config").join(&backups[0])).unwrap(),
        fs::read(&config).unwrap()
    );
    assert!(bundle.exists(), "client/plugins kept");
    assert!(
        server_caps(root).contains("cap_net_bind_service=ep"),
        "capability on the new binary"
    );
    assert!(root.join("opt/mattermost/client/only-in-91.js").exists());
    assert!(
        !root.join("opt/mattermost/client/only-in-90.js").exists(),
        "dropped files are gone"
    );
    let restart = match format {
        Format::Deb => "deb-systemd-invoke restart mattermost.service",
        Format::Rpm => "systemctl restart mattermost.service",
    };
    assert_eq!(
        service_actions(root),
        [restart],
        "a running service is restarted"
    );

    // 3. Downgrade while the service is stopped: same guarantees, no restart.
    set_service_active(root, false);
    ok(
        format.downgrade(root, &pkgs.path(Pkg::Old, format)),
        "downgrade",
    );
    assert_eq!(
        format.installed(root, "mattermost").as_deref(),
        Some("9.11.90-1")
    );
    assert_unchanged(&data, &admin, "downgrade");
    assert!(
        config_backups(root)
            .iter()
            .any(|b| b.starts_with("config.json.bak-9.11.91-1-"))
    );
    assert!(bundle.exists());
    assert!(server_caps(root).contains("cap_net_bind_service=ep"));
    assert!(!root.join("opt/mattermost/client/only-in-91.js").exists());
    assert!(root.join("opt/mattermost/client/only-in-90.js").exists());
    assert_eq!(
        service_actions(root),
        Vec::<String>::new(),
        "a stopped service stays stopped"
    );

    // 4. Reinstall: idempotent.
    ok(
        format.reinstall(root, &pkgs.path(Pkg::Old, format)),
        "reinstall",
    );
    assert_unchanged(&data, &admin, "reinstall");
    let passwd = fs::read_to_string(root.join("etc/passwd")).unwrap();
    assert_eq!(
        passwd
            .lines()
            .filter(|l| l.starts_with("mattermost:"))
            .count(),
        1
    );
    let group = fs::read_to_string(root.join("etc/group")).unwrap();
    assert_eq!(
        group
            .lines()
            .filter(|l| l.starts_with("mattermost:"))
            .count(),
        1
    );
    service_actions(root);

    // 5. Remove: program files gone, data untouched, service stopped.
    set_service_active(root, true);
    ok(format.remove(root, "mattermost"), "remove");
    assert_eq!(format.installed(root, "mattermost"), None);
    assert!(!root.join("opt/mattermost/bin/mattermost").exists());
    assert!(
        !root
            .join("usr/lib/systemd/system/mattermost.service")
            .exists()
    );
    assert_unchanged(&data, &admin, "remove");
    let actions = service_actions(root);
    let stop = match format {
        Format::Deb => "deb-systemd-invoke stop mattermost.service",
        Format::Rpm => "systemctl stop mattermost.service",
    };
    assert!(actions.iter().any(|a| a == stop), "{actions:?}");
    set_service_active(root, false);

    // ... and installing again picks up the existing config.
    ok(
        format.install(root, &pkgs.path(Pkg::New, format)),
        "install after remove",
    );
    assert_unchanged(&data, &admin, "install after remove");
    assert!(
        fs::read_to_string(&config)
            .unwrap()
            .contains("by the admin")
    );

    // 6. Purge / erase: data untouched, and the scripts say it remains.
    let log = ok(format.purge(root, "mattermost"), "purge");
    assert!(
        log.contains("/opt/mattermost-daten (config, data, logs, plugins) remains"),
        "{log}"
    );
    assert_unchanged(&data, &admin, "purge");
    assert!(
        !root.join("opt/mattermost/client/plugins").exists(),
        "server-made bundles go with the program"
    );
    assert!(
        !root.join("usr/libexec/mattermost").exists(),
        "the package owns its libexec directory, which goes with it"
    );
    assert!(!root.join("usr/lib/sysusers.d/mattermost.conf").exists());
}

#[test]
fn deb_lifecycle_keeps_config_and_data() {
    if have("dpkg-deb") {
        matrix("bookworm", Format::Deb);
    }
}

#[test]
fn deb_lifecycle_keeps_config_and_data_on_debian_13() {
    if have("dpkg-deb") {
        matrix("trixie", Format::Deb);
    }
}

#[test]
fn rpm_lifecycle_keeps_config_and_data() {
    if have("rpm") {
        matrix("bookworm", Format::Rpm);
    }
}
