//! The packages install for real into Debian 11, 12 and 13 roots: `chroot dpkg -i` for the .deb,
//! `rpm --root -i` for the .rpm. After either, the system account, the data directories,
//! the symlinks, the capability, the seeded config and the unit are in place.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::fixture::{Spec, default_config};
use common::lifecycle::{Format, ok};
use common::{
    build, chroot, chroot_ok, copy_into, deb_data_tar_gz, debian_root, debian_root_of,
    gzip_members, have,
};

/// Owner, group and octal mode of `path` inside `root`.
fn stat(root: &Path, path: &str) -> String {
    chroot_ok(root, &["stat", "-c", "%U:%G %a %F", path])
        .trim()
        .to_string()
}

/// Everything a fresh install must leave behind, whichever package manager did it.
fn assert_fresh_install(root: &Path, version: &str) {
    let passwd = chroot_ok(root, &["getent", "passwd", "mattermost"]);
    let fields: Vec<&str> = passwd.trim().split(':').collect();
    assert_eq!(fields[5], "/opt/mattermost-daten", "home: {passwd}");
    assert!(fields[6].ends_with("nologin"), "shell: {passwd}");
    assert!(
        fields[2].parse::<u32>().unwrap() < 1000,
        "a system user: {passwd}"
    );
    chroot_ok(root, &["getent", "group", "mattermost"]);

    assert_eq!(stat(root, "/opt/mattermost"), "root:root 755 directory");
    assert_eq!(
        stat(root, "/opt/mattermost/bin/mattermost"),
        "root:mattermost 750 regular file",
        "only root and the service account may run the binary with its capability"
    );
    assert_eq!(
        stat(root, "/opt/mattermost/i18n/en.json"),
        "root:root 644 regular file"
    );
    assert_eq!(
        stat(root, "/opt/mattermost-daten"),
        "mattermost:mattermost 750 directory"
    );
    for dir in ["config", "data", "logs", "plugins"] {
        let data = format!("/opt/mattermost-daten/{dir}");
        assert_eq!(
            stat(root, &data),
            "mattermost:mattermost 750 directory",
            "{data}"
        );
        let link = format!("/opt/mattermost/{dir}");
        assert_eq!(
            chroot_ok(root, &["readlink", &link]).trim(),
            format!("../mattermost-daten/{dir}")
        );
        assert_eq!(chroot_ok(root, &["readlink", "-f", &link]).trim(), data);
    }

    let config = "/opt/mattermost-daten/config/config.json";
    assert_eq!(stat(root, config), "mattermost:mattermost 600 regular file");
    assert_eq!(
        fs::read_to_string(root.join(&config[1..])).unwrap(),
        default_config(version)
    );
    assert!(
        root.join("opt/mattermost-daten/config/README.md").exists(),
        "other defaults are seeded too"
    );

    let caps = chroot_ok(root, &["getcap", "/opt/mattermost/bin/mattermost"]);
    assert!(caps.contains("cap_net_bind_service=ep"), "getcap: {caps}");

    assert_eq!(
        stat(root, "/opt/mattermost/client/plugins"),
        "mattermost:mattermost 755 directory"
    );
    for file in [
        "root.html",
        "manifest.json",
        "main.css",
        "files/code_themes/github.css",
    ] {
        let path = format!("/opt/mattermost/client/{file}");
        assert_eq!(
            stat(root, &path),
            "mattermost:mattermost 644 regular file",
            "{path}"
        );
    }
    assert_eq!(
        stat(root, "/opt/mattermost/client/main.js"),
        "root:root 644 regular file"
    );

    let unit = fs::read_to_string(root.join("usr/lib/systemd/system/mattermost.service")).unwrap();
    assert!(unit.contains("ExecStart=/opt/mattermost/bin/mattermost"));
    let mmctl = chroot_ok(root, &["mmctl"]);
    assert!(
        mmctl.contains("synthetic"),
        "mmctl on the PATH runs: {mmctl}"
    );
    assert_local_socket_is_shared(root, &unit);
}

/// `mmctl --local` reaches the server: the unit puts the local-mode socket in its
/// RuntimeDirectory under /run (the default in /var/tmp is private to the service), and the
/// `mmctl` on the PATH looks there unless told otherwise.
fn assert_local_socket_is_shared(root: &Path, unit: &str) {
    let socket = "/run/mattermost/mattermost_local.socket";
    assert!(unit.contains("\nRuntimeDirectory=mattermost\n"), "{unit}");
    assert!(
        unit.contains(&format!(
            "\nEnvironment=MM_SERVICESETTINGS_LOCALMODESOCKETLOCATION={socket}\n"
        )),
        "{unit}"
    );
    assert!(unit.contains("\nPrivateTmp=yes\n"));
    let real = root.join("opt/mattermost/bin/mmctl");
    let saved = real.with_extension("saved");
    fs::rename(&real, &saved).unwrap(); // renamed back below: rpm -V sees the same file
    fs::write(
        &real,
        "#!/bin/sh\necho \"socket=$MMCTL_LOCAL_SOCKET_PATH args=$*\"\n",
    )
    .unwrap();
    fs::set_permissions(&real, fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(
        chroot_ok(root, &["mmctl", "--local", "team", "list"]).trim(),
        format!("socket={socket} args=--local team list")
    );
    assert_eq!(
        chroot_ok(
            root,
            &["env", "MMCTL_LOCAL_SOCKET_PATH=/srv/other.socket", "mmctl"]
        )
        .trim(),
        "socket=/srv/other.socket args=",
        "the caller's choice wins"
    );
    fs::rename(&saved, &real).unwrap();
}

#[test]
fn deb_installs_into_debian_12() {
    deb_install_reinstall_purge("bookworm");
}

/// Debian 13: newer dpkg, apt with sqv, systemd 257.
#[test]
fn deb_installs_into_debian_13() {
    deb_install_reinstall_purge("trixie");
}

/// Debian 11: its dpkg reads no zstd, so the default (gzip) .deb must install there.
#[test]
fn deb_installs_into_debian_11() {
    deb_install_reinstall_purge("bullseye");
}

/// Debian 11's dpkg-deb reads a data.tar.gz of several gzip members (one per run of
/// compressible or incompressible bytes, see docs/performance.md) to its end: the tar it
/// extracts is the whole one GNU gzip decodes, not the first member's.
#[test]
fn debian_11_dpkg_deb_reads_every_gzip_member_of_the_data_tar() {
    if !have("dpkg-deb") || !have("gzip") {
        return;
    }
    let Some(root) = debian_root_of("bullseye") else {
        return;
    };
    let root = root.path();
    let built = build(&Spec::new("9.11.90"), &["--format", "deb"]);
    let deb = built.deb.as_ref().unwrap();
    let gz = deb_data_tar_gz(deb);
    let members = gzip_members(&gz);
    assert!(members > 2, "several gzip members: {members}");
    let gz_path = built.dir.path().join("data.tar.gz");
    fs::write(&gz_path, &gz).unwrap();
    let whole = common::output(Command::new("gzip").arg("-dc").arg(&gz_path));
    assert!(whole.status.success(), "gzip -dc: {whole:?}");

    let inside = copy_into(root, deb);
    let tar = chroot(root, &["dpkg-deb", "--fsys-tarfile", &inside]);
    assert!(tar.status.success(), "dpkg-deb --fsys-tarfile: {tar:?}");
    assert_eq!(tar.stdout.len(), whole.stdout.len(), "the whole data.tar");
    assert!(tar.stdout == whole.stdout, "the same bytes as GNU gzip's");
    let listing = chroot_ok(root, &["dpkg-deb", "--contents", &inside]);
    for path in [
        "./opt/mattermost/bin/mattermost",
        "./opt/mattermost/i18n/en.json",
    ] {
        assert!(listing.contains(path), "{path} in:\n{listing}");
    }
}

fn deb_install_reinstall_purge(suite: &str) {
    if !have("dpkg-deb") {
        return;
    }
    let Some(root) = debian_root_of(suite) else {
        return;
    };
    let root = root.path();
    let built = build(&Spec::new("9.11.90"), &["--format", "deb"]);
    let members = gzip_members(&deb_data_tar_gz(built.deb.as_ref().unwrap()));
    assert!(
        members > 1,
        "data.tar.gz of several gzip members: {members}"
    );
    let deb = copy_into(root, built.deb.as_ref().unwrap());

    let log = chroot_ok(root, &["dpkg", "-i", &deb]);
    assert!(
        log.contains("the service is enabled but not started"),
        "next steps are printed:\n{log}"
    );
    assert_fresh_install(root, "9.11.90");
    assert!(
        root.join("etc/systemd/system/multi-user.target.wants/mattermost.service")
            .is_symlink(),
        "the unit is enabled"
    );
    let status = chroot_ok(
        root,
        &[
            "dpkg-query",
            "-W",
            "-f",
            "${Status} ${Version}",
            "mattermost",
        ],
    );
    assert_eq!(status, "install ok installed 9.11.90-1");

    // Reinstalling the same version: no second account, the admin's config kept, a backup made.
    let config = root.join("opt/mattermost-daten/config/config.json");
    fs::write(&config, "{\"edited\": true}\n").unwrap();
    chroot_ok(root, &["dpkg", "-i", &deb]);
    assert_eq!(fs::read_to_string(&config).unwrap(), "{\"edited\": true}\n");
    let passwd = fs::read_to_string(root.join("etc/passwd")).unwrap();
    assert_eq!(
        passwd
            .lines()
            .filter(|l| l.starts_with("mattermost:"))
            .count(),
        1
    );
    let backups: Vec<_> = fs::read_dir(root.join("opt/mattermost-daten/config"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("config.json.bak-9.11.90-"))
        .collect();
    assert_eq!(
        backups.len(),
        1,
        "one backup of the live config: {backups:?}"
    );
    assert_eq!(
        fs::read_to_string(root.join("opt/mattermost-daten/config").join(&backups[0])).unwrap(),
        "{\"edited\": true}\n"
    );

    // Purge removes the program but never the data directory, and says so.
    let purge = chroot_ok(root, &["dpkg", "--purge", "mattermost"]);
    assert!(
        purge.contains("/opt/mattermost-daten (config, data, logs, plugins) remains"),
        "{purge}"
    );
    assert!(!root.join("opt/mattermost/bin/mattermost").exists());
    assert_eq!(fs::read_to_string(&config).unwrap(), "{\"edited\": true}\n");
    assert!(root.join("opt/mattermost-daten/data").is_dir());
}

#[test]
fn deb_respects_dpkg_statoverride_on_the_binary() {
    if !have("dpkg-deb") {
        return;
    }
    let Some(root) = debian_root() else { return };
    let root = root.path();
    let built = build(&Spec::new("9.11.90"), &["--format", "deb"]);
    let deb = copy_into(root, built.deb.as_ref().unwrap());
    chroot_ok(
        root,
        &[
            "dpkg-statoverride",
            "--add",
            "root",
            "root",
            "0750",
            "/opt/mattermost/bin/mattermost",
        ],
    );
    let log = chroot_ok(root, &["dpkg", "-i", &deb]);
    assert!(
        log.contains("dpkg-statoverride lists /opt/mattermost/bin/mattermost"),
        "{log}"
    );
    assert_eq!(
        stat(root, "/opt/mattermost/bin/mattermost"),
        "root:root 750 regular file"
    );
    let caps = chroot_ok(root, &["getcap", "/opt/mattermost/bin/mattermost"]);
    assert!(caps.trim().is_empty(), "setcap skipped: {caps}");
}

#[test]
fn rpm_installs_into_debian_12_with_rpm_root() {
    if !have("rpm") {
        return;
    }
    let Some(root) = debian_root() else { return };
    let root = root.path();
    let built = build(&Spec::new("9.11.90"), &["--format", "rpm"]);
    // The Debian root's own packages are not in its RPM database, so the helpers pass
    // --nodeps (shadow-utils and setcap are present as Debian packages).
    Format::Rpm.prepare(root);
    let log = ok(
        Format::Rpm.install(root, built.rpm.as_ref().unwrap()),
        "rpm -U",
    );
    // %post enables the unit by the presets through systemctl, which this root lacks.
    assert!(
        log.contains("the service is not enabled and not started"),
        "next steps are printed:\n{log}"
    );
    assert_fresh_install(root, "9.11.90");
    let verify = Command::new("rpm")
        .arg("--root")
        .arg(root)
        .args(["-V", "--nodeps", "mattermost"])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&verify.stdout);
    assert!(
        report.trim().is_empty(),
        "rpm -V reports changes after install:\n{report}"
    );

    let config = root.join("opt/mattermost-daten/config/config.json");
    fs::write(&config, "{\"edited\": true}\n").unwrap();
    let log = ok(Format::Rpm.purge(root, "mattermost"), "rpm -e");
    assert!(
        log.contains("/opt/mattermost-daten (config, data, logs, plugins) remains"),
        "{log}"
    );
    assert!(!root.join("opt/mattermost/bin/mattermost").exists());
    assert_eq!(fs::read_to_string(&config).unwrap(), "{\"edited\": true}\n");
}

/// The sysusers.d entry both packages ship creates the same account with systemd-sysusers
/// (the scripts use it where it exists; RPM >= 4.19 derives `user()` provides from it).
#[test]
fn sysusers_entry_creates_the_account() {
    if !have("dpkg-deb") || !have("systemd-sysusers") {
        return;
    }
    let Some(root) = debian_root() else { return };
    let root = root.path();
    let built = build(&Spec::new("9.11.90"), &["--format", "deb"]);
    let tree = tempfile::tempdir().unwrap();
    common::run(
        Command::new("dpkg-deb")
            .arg("-x")
            .arg(built.deb.as_ref().unwrap())
            .arg(tree.path()),
    );
    let conf = tree.path().join("usr/lib/sysusers.d/mattermost.conf");
    let out = common::run(
        Command::new("systemd-sysusers")
            .arg(format!("--root={}", root.display()))
            .arg(&conf),
    );
    let passwd = chroot_ok(root, &["getent", "passwd", "mattermost"]);
    let fields: Vec<&str> = passwd.trim().split(':').collect();
    assert_eq!(fields[5], "/opt/mattermost-daten", "{passwd} {out}");
    assert_eq!(fields[6], "/usr/sbin/nologin");
    assert!(fields[2].parse::<u32>().unwrap() < 1000, "{passwd}");
    let group = chroot_ok(root, &["getent", "group", "mattermost"]);
    assert_eq!(
        group.split(':').nth(2),
        Some(fields[3]),
        "the user's group is mattermost"
    );
}
