//! Packages for the repository tests and `mm-pkg repo add` on them.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::fixture::Spec;
use super::{Built, build, mm_pkg, output, run};

/// Builds packages of `format` (`deb`, `rpm`) for `versions`: (keep-alive dirs, files).
pub fn packages(format: &str, versions: &[&str]) -> (Vec<Built>, Vec<PathBuf>) {
    let built: Vec<_> = versions
        .iter()
        .map(|v| build(&Spec::new(v), &["--format", format]))
        .collect();
    let files = built
        .iter()
        .map(|b| {
            if format == "deb" { &b.deb } else { &b.rpm }
                .clone()
                .unwrap()
        })
        .collect();
    (built, files)
}

/// A small .deb `name` `version` (amd64) in `dir` whose description ends with `more`, made
/// with dpkg-deb (fast: for tests that need many packages or odd versions).
pub fn tiny_deb(dir: &Path, name: &str, version: &str, more: &str) -> PathBuf {
    let root = dir.join(format!("root-{name}-{version}"));
    fs::create_dir_all(root.join("DEBIAN")).unwrap();
    fs::create_dir_all(root.join("usr/share").join(name)).unwrap();
    fs::write(
        root.join("DEBIAN/control"),
        format!(
            "Package: {name}\nVersion: {version}\nArchitecture: amd64\nMaintainer: Bench \
             <bench@example.org>\nDescription: bench package {name}\n{more}{}",
            if more.is_empty() { "" } else { "\n" }
        ),
    )
    .unwrap();
    fs::write(root.join("usr/share").join(name).join("data"), version).unwrap();
    let file = version.replace(':', "%3a");
    let deb = dir.join(format!("{name}_{file}_amd64.deb"));
    run(Command::new("dpkg-deb")
        .args(["-Znone", "--root-owner-group", "--build"])
        .arg(&root)
        .arg(&deb));
    fs::remove_dir_all(&root).unwrap();
    deb
}

/// `mm-pkg repo add DIR FILES EXTRA` without a key from the environment; returns stdout.
pub fn repo_add(dir: &Path, files: &[PathBuf], extra: &[&str]) -> String {
    run(mm_pkg()
        .args(["repo", "add"])
        .arg(dir)
        .args(files)
        .args(extra)
        .env_remove("MM_PKG_SIGN_KEY")
        .env_remove("MM_PKG_SIGN_PASSPHRASE"))
}

/// The admin's two steps on a Debian host, in `root`: the repository's key and its deb822
/// sources entry from `repo` (and no other apt source).
pub fn apt_client(root: &Path, repo: &Path) {
    fs::remove_file(root.join("etc/apt/sources.list")).ok();
    fs::create_dir_all(root.join("etc/apt/keyrings")).unwrap();
    fs::copy(
        repo.join("mattermost.asc"),
        root.join("etc/apt/keyrings/mattermost.asc"),
    )
    .unwrap();
    fs::copy(
        repo.join("mattermost.sources"),
        root.join("etc/apt/sources.list.d/mattermost.sources"),
    )
    .unwrap();
}

/// The admin's step on a RHEL-family host, in a new install root: the repository's
/// `mattermost.repo` from `repo` (and no other repository), and an empty rpm database.
pub fn dnf_client(repo: &Path) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    fs::create_dir_all(root.path().join("etc/yum.repos.d")).unwrap();
    fs::copy(
        repo.join("mattermost.repo"),
        root.path().join("etc/yum.repos.d/mattermost.repo"),
    )
    .unwrap();
    run(Command::new("rpm")
        .arg("--root")
        .arg(root.path())
        .arg("--initdb"));
    root
}

/// dnf with only the generated `mattermost.repo`, in its own install root and cache.
pub fn dnf(root: &Path, args: &[&str]) -> (bool, String) {
    let out = output(
        Command::new("dnf")
            .arg("--installroot")
            .arg(root)
            .arg(format!(
                "--setopt=reposdir={}/etc/yum.repos.d",
                root.display()
            ))
            .arg(format!(
                "--setopt=cachedir={}/var/cache/dnf",
                root.display()
            ))
            .args(["--releasever=1", "-y", "--setopt=skip_if_unavailable=False"])
            .args(["--disablerepo=*", "--enablerepo=mattermost"])
            .args(args),
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The JSON of the repository state in `repo` (`.mm-pkg/state.json`, clearsigned or not).
pub fn state_json(repo: &Path) -> serde_json::Value {
    let text = fs::read_to_string(repo.join(".mm-pkg/state.json")).unwrap();
    let json = match text.strip_prefix("-----BEGIN PGP SIGNED MESSAGE-----\n") {
        Some(rest) => {
            let body = &rest[rest.find("\n\n").unwrap() + 2..];
            body[..body.find("-----BEGIN PGP SIGNATURE-----").unwrap()].to_string()
        }
        None => text,
    };
    serde_json::from_str(&json).unwrap()
}

/// `apt-get update` in the Debian root `root` from scratch (no cached lists): (success with
/// no error line, output).
pub fn fresh_update(root: &Path) -> (bool, String) {
    let lists = root.join("var/lib/apt/lists");
    for e in fs::read_dir(&lists).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            fs::remove_file(p).unwrap();
        }
    }
    let out = super::chroot(root, &["apt-get", "update"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.status.success() && !text.contains("\nE:") && !text.starts_with("E:"),
        text,
    )
}

/// Small x86_64 rpms `name` `version`-1 in `dir` without dependencies or scripts (dnf can
/// install them into an empty root), made with one rpmbuild run; returns them in the order
/// of `versions`.
pub fn tiny_rpms(dir: &Path, name: &str, versions: &[&str]) -> Vec<PathBuf> {
    versions
        .iter()
        .map(|version| {
            let top = dir.join(format!("rpmbuild-{name}-{version}"));
            let spec = top.join("tiny.spec");
            fs::create_dir_all(&top).unwrap();
            fs::write(
                &spec,
                format!(
                    "Name: {name}\nVersion: {version}\nRelease: 1\nSummary: tiny {name}\n\
                     License: MIT\nBuildArch: x86_64\n%description\ntiny package {name}\n\
                     %install\nmkdir -p %{{buildroot}}/usr/share/{name}\n\
                     echo {version} > %{{buildroot}}/usr/share/{name}/version\n\
                     %files\n/usr/share/{name}/version\n"
                ),
            )
            .unwrap();
            run(Command::new("rpmbuild")
                .arg("-bb")
                .arg("--define")
                .arg(format!("_topdir {}", top.display()))
                .args(["--define", "__spec_install_post %{nil}"])
                .args(["--define", "debug_package %{nil}"])
                .arg(&spec));
            let built = top.join(format!("RPMS/x86_64/{name}-{version}-1.x86_64.rpm"));
            let out = dir.join(format!("{name}-{version}-1.x86_64.rpm"));
            fs::rename(built, &out).unwrap();
            fs::remove_dir_all(&top).unwrap();
            out
        })
        .collect()
}
