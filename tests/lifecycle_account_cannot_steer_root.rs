//! Ways a `mattermost` account (or whoever owns a directory on the way) could steer the
//! root-run maintainer scripts, each checked with dpkg and with rpm:
//! - its data directory made read-only by itself must not send root's mkdir/chown there;
//! - a faked `mm-pkg-version` in a tree it owns must not skip the migration;
//! - the migration's comparison of two trees compares symlinks as symlinks;
//! - a migration from below a directory it owns stops before moving anything;
//! - a data directory the admin gave to a third user: root hands over the directories it
//!   makes there through a descriptor, so a swap for a hard link wins nothing.
//!
//! Races the attacker would have to win are made certain by a wrapper (`chown`, `mv`) in the
//! root that does the attacker's step first; hard links to root files stand for what the
//! account can make wherever fs.protected_hardlinks is off.
//!
//! The `mattermost` account owns its data directory, so it can take its own write bit away
//! (`chmod 0555`) whenever it likes. That must not make the maintainer scripts believe the
//! directory is "someone else's" and create there as root: root's `mkdir` then `chown -h`
//! in a directory the account controls is a race the account can win (swap the new
//! directory for a hard link to a root file between the two).

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use common::chroot_ok;
use common::debian_root;
use common::lifecycle::*;

/// A root file the attacker wants for the account.
const VICTIM: &str = "etc/mm-victim";

/// `chown` as the attacker wins the race: when root hands over $MM_DATA/logs, the account
/// (its data directory is its own: it can give itself the write bit back) has already
/// replaced the fresh directory with a hard link to the victim.
const RACING_CHOWN: &str = "#!/bin/sh\n\
    case \"$*\" in\n\
    *mattermost-daten/logs*)\n\
        chmod u+w /opt/mattermost-daten\n\
        rmdir /opt/mattermost-daten/logs && ln /etc/mm-victim /opt/mattermost-daten/logs\n\
        ;;\n\
    esac\n\
    exec /usr/bin/chown.real \"$@\"\n";

fn read_only_data_dir_does_not_make_root_work_there(format: Format) {
    let Some(root) = debian_root() else { return };
    let root = root.path();
    format.prepare(root);
    install_service_stubs(root);
    fs::write(root.join(VICTIM), "root's\n").unwrap();
    fs::set_permissions(root.join(VICTIM), fs::Permissions::from_mode(0o644)).unwrap();
    let pkgs = packages();
    ok(
        format.install(root, &pkgs.path(Pkg::Old, format)),
        "install",
    );
    // The account removes its (empty) logs directory and its own write bit.
    chroot_ok(
        root,
        &[
            "setpriv",
            "--reuid=mattermost",
            "--regid=mattermost",
            "--clear-groups",
            "sh",
            "-c",
            "rmdir /opt/mattermost-daten/logs && chmod 0555 /opt/mattermost-daten",
        ],
    );
    fs::rename(root.join("usr/bin/chown"), root.join("usr/bin/chown.real")).unwrap();
    fs::write(root.join("usr/bin/chown"), RACING_CHOWN).unwrap();
    fs::set_permissions(
        root.join("usr/bin/chown"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();

    ok(
        format.install(root, &pkgs.path(Pkg::New, format)),
        "upgrade",
    );
    let victim = fs::metadata(root.join(VICTIM)).unwrap();
    assert_eq!(
        (victim.uid(), victim.gid(), victim.mode() & 0o7777),
        (0, 0, 0o644),
        "the upgrade handed a root file to the account"
    );
    assert!(
        !root.join("opt/mattermost-daten/logs").exists(),
        "root made the directory the account had removed from its read-only data directory"
    );
}

deb_and_rpm_tests!(read_only_data_dir_does_not_make_root_work_there => deb_read_only_data_dir_of_the_account_gets_no_root_mkdir_and_chown, rpm_read_only_data_dir_of_the_account_gets_no_root_mkdir_and_chown);

/// The same race, run by a third user the admin gave the data directory to: root still
/// creates the account's directories there (the admin asked for this layout), but the
/// swap between root's mkdir and the hand-over must not win a root file.
fn third_users_data_dir_cannot_win_a_root_file(format: Format) {
    let Some(root) = debian_root() else { return };
    let root = root.path();
    format.prepare(root);
    install_service_stubs(root);
    fs::write(root.join(VICTIM), "root's\n").unwrap();
    fs::set_permissions(root.join(VICTIM), fs::Permissions::from_mode(0o644)).unwrap();
    chroot_ok(root, &["useradd", "--user-group", "alice"]);
    chroot_ok(root, &["mkdir", "-m", "0755", "/opt/mattermost-daten"]);
    chroot_ok(root, &["chown", "alice:alice", "/opt/mattermost-daten"]);
    // Whatever root creates in alice's directory, alice swaps for a hard link before chown.
    let racing = RACING_CHOWN.replace("chmod u+w /opt/mattermost-daten\n", "");
    fs::rename(root.join("usr/bin/chown"), root.join("usr/bin/chown.real")).unwrap();
    fs::write(root.join("usr/bin/chown"), racing).unwrap();
    fs::set_permissions(
        root.join("usr/bin/chown"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();

    let pkgs = packages();
    let out = format.install(root, &pkgs.path(Pkg::Old, format));
    let log = ok(out, "install");
    let victim = fs::metadata(root.join(VICTIM)).unwrap();
    assert_eq!(
        (victim.uid(), victim.gid(), victim.mode() & 0o7777),
        (0, 0, 0o644),
        "the install handed a root file to the account"
    );
    let logs = fs::symlink_metadata(root.join("opt/mattermost-daten/logs")).unwrap();
    let account = chroot_ok(root, &["id", "-u", "mattermost"]);
    assert!(
        logs.is_dir() && logs.uid().to_string() == account.trim(),
        "logs is not the account's directory:\n{log}"
    );
}

deb_and_rpm_tests!(third_users_data_dir_cannot_win_a_root_file => deb_third_users_data_dir_cannot_win_a_root_file, rpm_third_users_data_dir_cannot_win_a_root_file);

/// Program directories below /opt/mattermost the account owns or anyone can write (the
/// webapp plugin directory is the account's by design).
fn account_writable_program_dirs(root: &std::path::Path) -> String {
    chroot_ok(
        root,
        &[
            "find",
            "-P",
            "/opt/mattermost",
            "-type",
            "d",
            "(",
            "-perm",
            "-0002",
            "-o",
            "-user",
            "mattermost",
            ")",
            "!",
            "-path",
            "/opt/mattermost/client/plugins",
        ],
    )
}

/// Upstream's tarball instructions give /opt/mattermost to the account
/// (`chown -R mattermost:mattermost /opt/mattermost`). The account writes an
/// `mm-pkg-version` there, so that the package believes it is already installed, skips
/// the migration and unpacks its root-run program files into the account's directories.
fn faked_version_file_does_not_skip_the_migration(format: Format) {
    let Some(root) = debian_root() else { return };
    let root = root.path();
    format.prepare(root);
    chroot_ok(root, &["useradd", "--system", "--user-group", "mattermost"]);
    let old = root.join("opt/mattermost");
    for dir in ["bin", "config", "data", "logs", "plugins"] {
        fs::create_dir_all(old.join(dir)).unwrap();
    }
    fs::write(old.join("config/config.json"), "{\"hand\": \"made\"}\n").unwrap();
    fs::write(old.join("bin/mattermost"), "old binary").unwrap();
    chroot_ok(
        root,
        &["chown", "-R", "mattermost:mattermost", "/opt/mattermost"],
    );
    chroot_ok(
        root,
        &[
            "setpriv",
            "--reuid=mattermost",
            "--regid=mattermost",
            "--clear-groups",
            "sh",
            "-c",
            "printf '9.11.90\\n9.11.90-1\\nmattermost\\n' > /opt/mattermost/mm-pkg-version",
        ],
    );

    let log = ok(
        format.install(root, &packages().path(Pkg::Old, format)),
        "install over a hand-made tree with a faked version file",
    );
    assert_eq!(
        account_writable_program_dirs(root),
        "",
        "the package unpacked its program files into the account's directories:\n{log}"
    );
    assert_eq!(
        fs::read_to_string(root.join("opt/mattermost-daten/config/config.json")).unwrap(),
        "{\"hand\": \"made\"}\n",
        "the hand-made config moved into the data directory"
    );
}

deb_and_rpm_tests!(faked_version_file_does_not_skip_the_migration => deb_faked_version_file_in_the_accounts_tree_does_not_skip_the_migration, rpm_faked_version_file_in_the_accounts_tree_does_not_skip_the_migration);

/// Before a migration, root compares the old and the data directory's copy of a directory
/// both hold. Both trees are the account's: a symlink in them must be compared as a
/// symlink, never read through as root (that would tell the account whether a root-only
/// file holds what it guessed: the migration goes on if so, stops if not).
fn migration_compares_links_as_links(format: Format) {
    let Some(root) = debian_root() else { return };
    let root = root.path();
    format.prepare(root);
    fs::write(root.join("etc/mm-secret"), "root only\n").unwrap();
    fs::set_permissions(
        root.join("etc/mm-secret"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let old = root.join("opt/mattermost");
    let data = root.join("opt/mattermost-daten");
    for dir in [old.join("config"), data.join("config")] {
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("config.json"), "{\"hand\": \"made\"}\n").unwrap();
    }
    std::os::unix::fs::symlink("/etc/mm-secret", old.join("config/guess")).unwrap();
    fs::write(data.join("config/guess"), "root only\n").unwrap();

    let log = fails(
        format.install(root, &packages().path(Pkg::Old, format)),
        "install over a link and a file of the same content",
    );
    assert!(
        log.contains("cannot move the existing Mattermost installation"),
        "a link and a file are not the same files: {log}"
    );
}

deb_and_rpm_tests!(migration_compares_links_as_links => deb_migration_compares_links_as_links, rpm_migration_compares_links_as_links);

/// `mv` as the attacker wins the race: when root moves the old installation's config/ into
/// the data directory, the account (it owns /srv/mm, the parent of the versioned directory
/// /opt/mattermost points to) has just swapped that directory for a symlink to /etc/mm-target.
const RACING_MV: &str = "#!/bin/sh\n\
    case \"$*\" in\n\
    *mattermost-9.5/config*)\n\
        /usr/bin/mv.real /srv/mm/mattermost-9.5 /srv/mm/real\n\
        ln -s /etc/mm-target /srv/mm/mattermost-9.5\n\
        ;;\n\
    esac\n\
    exec /usr/bin/mv.real \"$@\"\n";

/// /opt/mattermost points to a versioned directory below a directory the account owns:
/// whatever root moves from there may, by the time of the move, be reached through the
/// account's symlink. The migration must refuse before moving anything.
fn migration_from_below_an_account_directory_stops(format: Format) {
    let Some(root) = debian_root() else { return };
    let root = root.path();
    format.prepare(root);
    chroot_ok(root, &["useradd", "--system", "--user-group", "mattermost"]);
    let versioned = root.join("srv/mm/mattermost-9.5");
    for dir in ["bin", "config", "data"] {
        fs::create_dir_all(versioned.join(dir)).unwrap();
    }
    fs::write(versioned.join("config/config.json"), "{}\n").unwrap();
    chroot_ok(root, &["chown", "-R", "mattermost:mattermost", "/srv/mm"]);
    std::os::unix::fs::symlink("/srv/mm/mattermost-9.5", root.join("opt/mattermost")).unwrap();
    fs::create_dir_all(root.join("etc/mm-target/config")).unwrap();
    fs::write(root.join("etc/mm-target/config/keep"), "root's\n").unwrap();
    fs::rename(root.join("usr/bin/mv"), root.join("usr/bin/mv.real")).unwrap();
    fs::write(root.join("usr/bin/mv"), RACING_MV).unwrap();
    fs::set_permissions(root.join("usr/bin/mv"), fs::Permissions::from_mode(0o755)).unwrap();

    let out = format.install(root, &packages().path(Pkg::Old, format));
    assert!(
        root.join("etc/mm-target/config/keep").exists(),
        "root moved a directory outside the installation into the data directory:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = fails(out, "migrate from below a directory of the account's");
    assert!(log.contains("/srv/mm"), "says why: {log}");
}

deb_and_rpm_tests!(migration_from_below_an_account_directory_stops => deb_migration_from_below_an_account_directory_stops, rpm_migration_from_below_an_account_directory_stops);
