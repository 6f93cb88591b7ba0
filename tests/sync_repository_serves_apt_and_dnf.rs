//! What one `mm-pkg sync` publishes is what apt and dnf install: both editions of every
//! followed series, from the repository served over HTTP with the generated client files.

mod common;

use common::lifecycle::install_service_stubs;
use common::repo::{apt_client, dnf, dnf_client};
use common::static_files::StaticServer;
use common::upstream::{FOLLOW_TWO_SERIES, Upstream, text};
use common::{chroot, chroot_ok, debian_root, have};

/// A repository synced from an upstream with 9.11.90 and 12.0.1 in both editions, served
/// over HTTP: (upstream, web root, server).
fn synced() -> (Upstream, tempfile::TempDir, StaticServer) {
    let up = Upstream::new();
    up.publish_both(&["9.11.90", "12.0.1"]);
    let web = tempfile::tempdir().unwrap();
    let server = StaticServer::start(web.path());
    let out = up.sync(
        web.path(),
        &[&FOLLOW_TWO_SERIES[..], &["--base-url", &server.base]].concat(),
    );
    assert!(out.status.success(), "{}", text(&out));
    (up, web, server)
}

#[test]
fn apt_sees_every_synced_release_and_installs_the_newest() {
    let Some(root) = debian_root() else { return };
    let root = root.path();
    let (_up, web, _server) = synced();
    let repo = web.path();
    apt_client(root, repo);
    install_service_stubs(root);
    let update = chroot_ok(root, &["apt-get", "update"]);
    assert!(!update.contains("W:"), "apt-get update warned:\n{update}");
    for package in ["mattermost", "mattermost-team"] {
        let versions = chroot_ok(root, &["apt-cache", "madison", package]);
        for v in ["9.11.90-1", "12.0.1-1"] {
            assert!(versions.contains(v), "{package} {v} not seen:\n{versions}");
        }
    }
    chroot_ok(root, &["apt-get", "install", "-y", "mattermost-team"]);
    let out = chroot(
        root,
        &["dpkg-query", "-W", "-f", "${Version}", "mattermost-team"],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "12.0.1-1");
}

#[test]
fn dnf_sees_every_synced_release_with_signatures_checked() {
    if !have("dnf") {
        return;
    }
    let (_up, web, _server) = synced();
    let root = dnf_client(web.path());
    let root = root.path();
    let (ok, listed) = dnf(
        root,
        &[
            "repoquery",
            "--showduplicates",
            "--queryformat",
            "%{name}-%{version}-%{release}\\n",
            "mattermost",
            "mattermost-team",
        ],
    );
    assert!(ok, "dnf repoquery failed:\n{listed}");
    for name in ["mattermost", "mattermost-team"] {
        for v in ["9.11.90-1", "12.0.1-1"] {
            assert!(
                listed.contains(&format!("{name}-{v}\n")),
                "{name}-{v}:\n{listed}"
            );
        }
    }
    let dest = root.join("downloads");
    let (ok, got) = dnf(
        root,
        &[
            "download",
            "--destdir",
            dest.to_str().unwrap(),
            "mattermost",
        ],
    );
    assert!(ok, "dnf download (gpgcheck, repo_gpgcheck) failed:\n{got}");
    assert!(
        dest.join("mattermost-12.0.1-1.x86_64.rpm").exists(),
        "{got}"
    );
}
