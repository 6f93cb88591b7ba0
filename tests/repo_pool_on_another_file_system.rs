//! A repository whose pool lives on another file system (a bigger disk mounted there) is
//! still updated by rename: files for it are staged beside their target, not in `.mm-pkg/`.
//! A pool that is a symbolic link to elsewhere is refused: no link inside a repository is
//! followed.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::repo::repo_add;
use common::{have, mm_pkg, run};

/// A small .deb named `name` in `dir`.
fn small_deb(dir: &Path, name: &str) -> PathBuf {
    let root = dir.join(format!("root-{name}"));
    fs::create_dir_all(root.join("DEBIAN")).unwrap();
    fs::write(
        root.join("DEBIAN/control"),
        format!(
            "Package: {name}\nVersion: 1.0-1\nArchitecture: amd64\n\
             Maintainer: Test <test@example.org>\nDescription: test package {name}\n"
        ),
    )
    .unwrap();
    let deb = dir.join(format!("{name}_1.0-1_amd64.deb"));
    run(Command::new("dpkg-deb")
        .args(["--root-owner-group", "--build"])
        .arg(&root)
        .arg(&deb));
    deb
}

/// Unmounts a file system mounted for a test.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_pool_on_another_file_system_is_updated_through_temporaries_beside_it() {
    if !have("dpkg-deb") || !common::have_root() || !have("mount") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let repo = tempfile::tempdir().unwrap();
    repo_add(repo.path(), &[small_deb(work.path(), "first")], &[]);
    // The pool moves to a tmpfs mounted where it was: another file system.
    let pool = repo.path().join("apt/pool");
    let saved = work.path().join("pool");
    run(Command::new("mv").arg(&pool).arg(&saved));
    fs::create_dir(&pool).unwrap();
    run(Command::new("mount")
        .args(["-t", "tmpfs", "-o", "mode=0755", "tmpfs"])
        .arg(&pool));
    let _mounted = Mounted(pool.clone());
    run(Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", saved.display()))
        .arg(&pool));
    let dev = |p: &Path| fs::metadata(p).unwrap().dev();
    assert_ne!(dev(repo.path()), dev(&pool), "need two file systems");

    repo_add(repo.path(), &[small_deb(work.path(), "second")], &[]);
    assert!(pool.join("main/s/second/second_1.0-1_amd64.deb").is_file());
    let out = common::output(
        mm_pkg()
            .args(["repo", "verify", "--hashes-only"])
            .arg(repo.path()),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let leftovers = run(Command::new("find")
        .arg(repo.path())
        .args(["-name", ".*.tmp-*"]));
    assert!(
        leftovers.trim().is_empty(),
        "temporary files left: {leftovers}"
    );
}

#[test]
fn a_pool_that_is_a_link_to_elsewhere_is_refused_and_nothing_is_written_there() {
    if !have("dpkg-deb") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let repo = tempfile::tempdir().unwrap();
    repo_add(repo.path(), &[small_deb(work.path(), "first")], &[]);
    let pool = repo.path().join("apt/pool");
    let elsewhere = tempfile::tempdir().unwrap();
    let moved = elsewhere.path().join("pool");
    run(Command::new("mv").arg(&pool).arg(&moved));
    std::os::unix::fs::symlink(&moved, &pool).unwrap();
    let before = run(Command::new("find").arg(elsewhere.path()).arg("-ls"));

    let out = common::output(
        mm_pkg()
            .args(["repo", "add"])
            .arg(repo.path())
            .arg(small_deb(work.path(), "second")),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("apt/pool") && stderr.contains("symbolic link"),
        "{stderr}"
    );
    assert_eq!(
        run(Command::new("find").arg(elsewhere.path()).arg("-ls")),
        before,
        "the add wrote through the link"
    );
}
