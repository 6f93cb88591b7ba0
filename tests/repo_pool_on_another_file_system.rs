//! A repository whose pool lives on another file system (a symlink to a bigger disk) is
//! still updated by rename: files for it are staged beside their target, not in `.mm-pkg/`.

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

#[test]
fn a_pool_on_another_file_system_is_updated_through_temporaries_beside_it() {
    if !have("dpkg-deb") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let repo = tempfile::tempdir().unwrap();
    // /dev/shm is a tmpfs: another file system than the temporary directory's.
    let elsewhere = tempfile::tempdir_in("/dev/shm").unwrap();
    let dev = |p: &Path| fs::metadata(p).unwrap().dev();
    assert_ne!(
        dev(repo.path()),
        dev(elsewhere.path()),
        "need two file systems"
    );

    repo_add(repo.path(), &[small_deb(work.path(), "first")], &[]);
    let pool = repo.path().join("apt/pool");
    let moved = elsewhere.path().join("pool");
    run(Command::new("mv").arg(&pool).arg(&moved));
    std::os::unix::fs::symlink(&moved, &pool).unwrap();

    repo_add(repo.path(), &[small_deb(work.path(), "second")], &[]);
    assert!(moved.join("main/s/second/second_1.0-1_amd64.deb").is_file());
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
        .arg(elsewhere.path())
        .args(["-name", ".*.tmp-*"]));
    assert!(
        leftovers.trim().is_empty(),
        "temporary files left: {leftovers}"
    );
}
