//! A build stopped by SIGINT or SIGTERM removes its `.mm-pkg-*.tmp` files; one killed
//! outright (SIGKILL) has them removed by the next build into that directory, but never
//! while another build is still using them.

mod common;

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::fixture::{Spec, write_release};
use common::{mm_pkg, run};
use rand::{RngCore, SeedableRng};

/// A release with 160 MB of incompressible data, so that building it takes long enough
/// to be interrupted in the middle.
fn large_release(dir: &Path, version: &str) -> PathBuf {
    let mut spec = Spec::new(version);
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    for n in 0..4 {
        let mut bytes = vec![0u8; 40 << 20];
        rng.fill_bytes(&mut bytes);
        spec.extra_files
            .push((format!("prepackaged_plugins/big-{n}.tar.gz"), bytes));
    }
    write_release(&dir.join(format!("release-{version}")), &spec)
}

/// Starts `mm-pkg build` of `tarball` into `out` (both formats, gzip).
fn start_build(version: &str, tarball: &Path, out: &Path) -> Child {
    mm_pkg()
        .args(["build", version, "--compression", "gzip", "--tarball"])
        .arg(tarball)
        .arg("--output")
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mm-pkg")
}

/// mm-pkg's temporary files in `out`.
fn temporary_files(out: &Path) -> Vec<PathBuf> {
    fs::read_dir(out)
        .map(|d| {
            d.map(|e| e.unwrap().path())
                .filter(|p| {
                    let name = p.file_name().unwrap().to_string_lossy();
                    name.starts_with(".mm-pkg-") && name.ends_with(".tmp")
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until `child` has created temporary files in `out` and returns them; panics if it
/// exits first.
fn wait_for_temporary_files(child: &mut Child, out: &Path) -> Vec<PathBuf> {
    let start = Instant::now();
    loop {
        let files = temporary_files(out);
        if !files.is_empty() {
            return files;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the build ended ({status}) before it wrote a temporary file");
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no temporary file appeared"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn kill(child: &Child, signal: &str) {
    run(Command::new("kill")
        .args(["-s", signal])
        .arg(child.id().to_string()));
}

#[test]
fn sigint_and_sigterm_mid_build_remove_the_temporary_files() {
    let dir = tempfile::tempdir().unwrap();
    let tarball = large_release(dir.path(), "9.11.90");
    for (signal, number) in [("INT", 2), ("TERM", 15)] {
        let out = dir.path().join(format!("dist-{signal}"));
        let mut child = start_build("9.11.90", &tarball, &out);
        wait_for_temporary_files(&mut child, &out);
        kill(&child, signal);
        let status = child.wait().unwrap();
        assert_eq!(
            status.signal(),
            Some(number),
            "SIG{signal}: expected the build to end by the signal, got {status} (did it finish \
             before the signal? then the release is too small)"
        );
        let left: Vec<_> = fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(
            left.is_empty(),
            "SIG{signal} left {left:?} in {}",
            out.display()
        );
    }
}

#[test]
fn leftovers_of_a_killed_build_are_removed_by_the_next_build() {
    let dir = tempfile::tempdir().unwrap();
    let tarball = large_release(dir.path(), "9.11.90");
    let out = dir.path().join("dist");
    let mut child = start_build("9.11.90", &tarball, &out);
    wait_for_temporary_files(&mut child, &out);
    kill(&child, "KILL");
    child.wait().unwrap();
    let stale = temporary_files(&out);
    assert!(!stale.is_empty(), "SIGKILL cannot clean up; files expected");
    // Someone else's file with a similar name is not mm-pkg's to remove.
    fs::write(out.join(".mm-pkg-notes.txt"), "mine").unwrap();

    let small = write_release(&dir.path().join("small"), &Spec::new("9.11.91"));
    let result = common::output(
        mm_pkg()
            .args(["build", "9.11.91", "--tarball"])
            .arg(&small)
            .arg("--output")
            .arg(&out),
    );
    assert!(result.status.success(), "{result:?}");
    assert!(
        String::from_utf8_lossy(&result.stderr).contains("interrupted build"),
        "the removal is reported"
    );
    assert_eq!(temporary_files(&out), Vec::<PathBuf>::new());
    assert!(out.join(".mm-pkg-notes.txt").exists());
}

#[test]
fn two_builds_into_one_directory_keep_each_others_files_and_sums() {
    let dir = tempfile::tempdir().unwrap();
    let tarball = large_release(dir.path(), "9.11.90");
    let out = dir.path().join("dist");
    let mut first = start_build("9.11.90", &tarball, &out);
    let first_files = wait_for_temporary_files(&mut first, &out);

    // A second build runs to its end while the first is still writing.
    let small = write_release(&dir.path().join("small"), &Spec::team("9.11.90"));
    run(mm_pkg()
        .args(["build", "9.11.90", "--edition", "team", "--tarball"])
        .arg(&small)
        .arg("--output")
        .arg(&out));
    if first.try_wait().unwrap().is_none() {
        for f in &first_files {
            assert!(f.exists(), "the second build removed {}", f.display());
        }
    }
    let status = first.wait_with_output().unwrap();
    assert!(
        status.status.success(),
        "the first build failed: {}",
        String::from_utf8_lossy(&status.stderr)
    );

    let sums = fs::read_to_string(out.join("SHA256SUMS")).unwrap();
    let listed: Vec<&str> = sums.lines().filter_map(|l| l.split("  ").nth(1)).collect();
    assert_eq!(
        listed,
        [
            "mattermost-9.11.90-1.x86_64.rpm",
            "mattermost-team-9.11.90-1.x86_64.rpm",
            "mattermost-team_9.11.90-1_amd64.deb",
            "mattermost_9.11.90-1_amd64.deb",
        ],
        "SHA256SUMS lists both builds' packages:\n{sums}"
    );
    for line in sums.lines() {
        let (hash, name) = line.split_once("  ").unwrap();
        let bytes = fs::read(out.join(name)).unwrap();
        assert_eq!(
            hash,
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes))
        );
    }
}
