//! Repository updates: the same inputs give byte-identical repositories, and two `repo add`
//! runs at once both land (a lock), neither losing the other's packages.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::gpg::GpgKey;
use common::repo::{packages, repo_add, state_json, tiny_deb};
use common::{have, mm_pkg, run};

/// `sha256sum` of every file under `dir` except the lock, sorted by path.
fn tree(dir: &Path) -> String {
    run(Command::new("sh").arg("-c").arg(format!(
        "cd {} && find . -type f ! -path ./.mm-pkg/lock -exec sha256sum {{}} + | sort -k2",
        dir.display()
    )))
}

#[test]
fn same_inputs_and_source_date_epoch_give_byte_identical_repositories() {
    if !have("gpg") {
        return;
    }
    let key = GpgKey::generate("ed25519", None, &[], "never");
    let (_d, debs) = packages("deb", &["9.11.90", "9.11.91"]);
    let (_r, rpms) = packages("rpm", &["9.11.90", "9.11.91"]);
    let files: Vec<_> = debs.iter().chain(&rpms).cloned().collect();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let args = ["--sign-key", key.secret.to_str().unwrap()];
    for repo in [a.path(), b.path()] {
        repo_add(repo, &[files[3].clone(), files[0].clone()], &args);
        repo_add(repo, &[files[2].clone(), files[1].clone()], &args);
    }
    let (ta, tb) = (tree(a.path()), tree(b.path()));
    assert!(
        ta.contains("InRelease") && ta.contains("repomd.xml.asc"),
        "{ta}"
    );
    assert_eq!(ta, tb, "two repositories of the same runs differ");

    // In one run, in another order: the same packages, indexes, records and signatures;
    // only the previous generation of indexes (kept for clients mid-update) is missing, and
    // the state that names it.
    let c = tempfile::tempdir().unwrap();
    let mut reversed = files.clone();
    reversed.reverse();
    repo_add(c.path(), &reversed, &args);
    let tc = tree(c.path());
    let mut grown = state_json(a.path());
    let mut once = state_json(c.path());
    assert!(
        !grown["published"]["previous"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    grown["published"]["previous"] = serde_json::json!([]);
    once["published"]["previous"] = serde_json::json!([]);
    assert_eq!(
        grown, once,
        "the states differ beyond the previous generation"
    );
    let state = |l: &&str| !l.ends_with("./.mm-pkg/state.json");
    let (ta, tc): (String, String) = (
        ta.lines().filter(state).map(|l| format!("{l}\n")).collect(),
        tc.lines().filter(state).map(|l| format!("{l}\n")).collect(),
    );
    let missing: Vec<&str> = ta
        .lines()
        .filter(|l| !tc.lines().any(|m| m == *l))
        .collect();
    assert!(
        missing
            .iter()
            .all(|l| l.contains("/by-hash/") || l.ends_with(".xml.gz")),
        "more than an older index generation differs: {missing:#?}"
    );
    assert!(
        !missing.is_empty(),
        "the previous index generation was not kept"
    );
    assert!(tc.lines().all(|l| ta.lines().any(|m| m == l)), "{tc}\n{ta}");
}

#[test]
fn two_concurrent_repo_adds_both_keep_their_packages() {
    let (_d, debs) = packages("deb", &["9.11.90", "9.11.91", "10.5.1", "10.5.2"]);
    let (_r, rpms) = packages("rpm", &["9.11.90", "9.11.91"]);
    let repo = tempfile::tempdir().unwrap();
    let spawn = |files: Vec<&Path>| {
        mm_pkg()
            .args(["repo", "add"])
            .arg(repo.path())
            .args(files)
            .env_remove("MM_PKG_SIGN_KEY")
            .spawn()
            .unwrap()
    };
    let mut one = spawn(vec![&debs[0], &debs[1], &rpms[0]]);
    let mut two = spawn(vec![&debs[2], &debs[3], &rpms[1]]);
    assert!(one.wait().unwrap().success());
    assert!(two.wait().unwrap().success());
    let packages = fs::read_to_string(
        repo.path()
            .join("apt/dists/stable/main/binary-amd64/Packages"),
    )
    .unwrap();
    for v in ["9.11.90-1", "9.11.91-1", "10.5.1-1", "10.5.2-1"] {
        assert!(
            packages.contains(&format!("Version: {v}\n")),
            "{v} lost from Packages:\n{packages}"
        );
    }
    let repomd = fs::read_to_string(repo.path().join("yum/repodata/repomd.xml")).unwrap();
    assert!(repomd.contains("primary"));
    let verify = common::output(
        mm_pkg()
            .args(["repo", "add"])
            .arg(repo.path())
            .arg(&rpms[1]),
    );
    assert!(verify.status.success(), "re-adding after the race failed");
    for rpm in [
        "mattermost-9.11.90-1.x86_64.rpm",
        "mattermost-9.11.91-1.x86_64.rpm",
    ] {
        assert!(
            repo.path().join("yum/Packages").join(rpm).exists(),
            "{rpm} lost"
        );
    }
}

#[test]
fn re_adding_without_source_date_epoch_changes_no_byte_of_a_signed_repository() {
    if !have("gpg") {
        return;
    }
    let key = GpgKey::generate("rsa3072", None, &[], "never");
    let (_d, debs) = packages("deb", &["9.11.90"]);
    let (_r, rpms) = packages("rpm", &["9.11.90"]);
    let files = [debs[0].clone(), rpms[0].clone()];
    let repo = tempfile::tempdir().unwrap();
    let args = ["--sign-key", key.secret.to_str().unwrap()];
    repo_add(repo.path(), &files, &args);
    let before = tree(repo.path());
    std::thread::sleep(std::time::Duration::from_millis(1100));
    run(mm_pkg()
        .env_remove("SOURCE_DATE_EPOCH")
        .args(["repo", "add"])
        .arg(repo.path())
        .args(&files)
        .args(args));
    assert_eq!(
        tree(repo.path()),
        before,
        "a no-op re-add changed the repository"
    );
}

#[test]
fn keep_prunes_all_but_the_newest_versions_in_version_order() {
    let (_d, debs) = packages("deb", &["9.11.90", "10.5.1", "9.11.91"]);
    let (_r, rpms) = packages("rpm", &["9.11.90", "10.5.1", "9.11.91"]);
    let repo = tempfile::tempdir().unwrap();
    repo_add(repo.path(), &debs[..2], &[]);
    repo_add(repo.path(), &rpms[..2], &[]);
    let json = repo_add(
        repo.path(),
        &[debs[2].clone(), rpms[2].clone()],
        &["--keep", "2", "--json"],
    );
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    let pruned: Vec<&str> = report["pruned"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["version"].as_str().unwrap())
        .collect();
    assert_eq!(pruned, ["9.11.90-1", "9.11.90-1"], "{json}");
    let packages = fs::read_to_string(
        repo.path()
            .join("apt/dists/stable/main/binary-amd64/Packages"),
    )
    .unwrap();
    assert!(packages.contains("Version: 10.5.1-1\n") && packages.contains("Version: 9.11.91-1\n"));
    assert!(!packages.contains("9.11.90"), "{packages}");
    assert!(
        !repo
            .path()
            .join("apt/pool/main/m/mattermost/mattermost_9.11.90-1_amd64.deb")
            .exists()
    );
    assert!(
        !repo
            .path()
            .join("yum/Packages/mattermost-9.11.90-1.x86_64.rpm")
            .exists()
    );
    assert!(
        repo.path()
            .join("yum/Packages/mattermost-10.5.1-1.x86_64.rpm")
            .exists()
    );
    let verify = common::output(
        mm_pkg()
            .args(["repo", "verify", "--hashes-only"])
            .arg(repo.path()),
    );
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
}

/// What an apt client reads: each index by hash. Replaces the plain-named indexes of a copy
/// of `repo` by the by-hash files its Release names, so `repo verify` checks what clients see.
fn as_apt_client_sees_it(repo: &Path) -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    run(Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", repo.display()))
        .arg(copy.path()));
    let dists = copy.path().join("apt/dists/stable");
    if let Ok(release) = fs::read_to_string(dists.join("Release")) {
        let section = release.split("SHA256:\n").nth(1).unwrap_or("");
        for line in section.lines().take_while(|l| l.starts_with(' ')) {
            let parts: Vec<&str> = line.split_whitespace().collect();
            let (hash, name) = (parts[0], parts[2]);
            let dir = Path::new(name).parent().unwrap();
            let by_hash = dists.join(dir).join("by-hash/SHA256").join(hash);
            if by_hash.exists() {
                // A new file, not a write through the old name: the plain indexes are hard
                // links of by-hash files.
                let _ = fs::remove_file(dists.join(name));
                fs::copy(&by_hash, dists.join(name)).unwrap();
            }
        }
    }
    copy
}

#[test]
fn a_repo_add_killed_at_any_point_leaves_a_readable_repository_the_next_add_completes() {
    if !have("gpg") {
        return;
    }
    let key = GpgKey::generate("ed25519", None, &[], "never");
    let (_d, debs) = packages("deb", &["9.11.90", "9.11.91", "10.5.1"]);
    let (_r, rpms) = packages("rpm", &["9.11.90", "9.11.91", "10.5.1"]);
    let args = ["--sign-key", key.secret.to_str().unwrap()];
    let base = tempfile::tempdir().unwrap();
    repo_add(base.path(), &[debs[0].clone(), rpms[0].clone()], &args);
    let new = [&debs[1], &debs[2], &rpms[1], &rpms[2]];
    let mut interrupted = 0;
    for delay_ms in [0u64, 2, 5, 10, 15, 20, 30, 40, 60, 80, 120, 160, 240] {
        let repo = tempfile::tempdir().unwrap();
        run(Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", base.path().display()))
            .arg(repo.path()));
        let mut child = mm_pkg()
            .args(["repo", "add"])
            .arg(repo.path())
            .args(new)
            .args(args)
            .env_remove("MM_PKG_SIGN_KEY")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        let status = child.wait().unwrap();
        if !status.success() {
            interrupted += 1;
        }
        // What clients read is signed and consistent at this point.
        let seen = as_apt_client_sees_it(repo.path());
        let out = common::output(
            mm_pkg()
                .args(["repo", "verify", "--key", key.public_asc.to_str().unwrap()])
                .arg(seen.path()),
        );
        assert!(
            out.status.success(),
            "killed after {delay_ms} ms: clients would see a broken repository:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The next run completes the work.
        repo_add(repo.path(), &[debs[1].clone(), rpms[1].clone()], &args);
        repo_add(repo.path(), &[debs[2].clone(), rpms[2].clone()], &args);
        let out = common::output(
            mm_pkg()
                .args(["repo", "verify", "--key", key.public_asc.to_str().unwrap()])
                .arg(repo.path()),
        );
        assert!(
            out.status.success(),
            "after a run killed at {delay_ms} ms the next add did not repair:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let leftovers = run(Command::new("find")
            .arg(repo.path())
            .args(["-name", ".*.tmp-*"]));
        assert!(
            leftovers.trim().is_empty(),
            "temporary files left: {leftovers}"
        );
        let packages = fs::read_to_string(
            repo.path()
                .join("apt/dists/stable/main/binary-amd64/Packages"),
        )
        .unwrap();
        assert_eq!(packages.matches("Package: mattermost\n").count(), 3);
    }
    assert!(
        interrupted >= 3,
        "too few runs were actually interrupted ({interrupted})"
    );
}

#[test]
fn an_inrelease_an_interrupted_run_left_behind_is_signed_again() {
    if !have("gpg") || !have("dpkg-deb") {
        return;
    }
    // A run killed between renaming Release.gpg and InRelease leaves the new Release, its
    // detached signature and the old InRelease (which apt reads first). The next run, with
    // nothing new, must sign InRelease again rather than keep it.
    let key = GpgKey::generate("ed25519", None, &[], "never");
    let args = ["--sign-key", key.secret.to_str().unwrap()];
    let work = tempfile::tempdir().unwrap();
    let one = tiny_deb(work.path(), "one", "1.0-1", "");
    let two = tiny_deb(work.path(), "two", "1.0-1", "");
    let repo = tempfile::tempdir().unwrap();
    repo_add(repo.path(), std::slice::from_ref(&one), &args);
    let inrelease = repo.path().join("apt/dists/stable/InRelease");
    let old = fs::read(&inrelease).unwrap();
    repo_add(repo.path(), std::slice::from_ref(&two), &args);
    fs::write(&inrelease, &old).unwrap();
    let verify = common::output(
        mm_pkg()
            .args(["repo", "verify", "--key", key.public_asc.to_str().unwrap()])
            .arg(repo.path()),
    );
    assert!(
        !verify.status.success(),
        "the stale InRelease went unnoticed"
    );

    repo_add(repo.path(), &[two], &args);
    let verify = common::output(
        mm_pkg()
            .args(["repo", "verify", "--key", key.public_asc.to_str().unwrap()])
            .arg(repo.path()),
    );
    assert!(
        verify.status.success(),
        "InRelease was not signed again:\n{}",
        String::from_utf8_lossy(&verify.stderr)
    );
}

#[test]
fn a_first_add_killed_before_its_state_landed_does_not_block_the_directory() {
    if !have("dpkg-deb") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let deb = tiny_deb(work.path(), "one", "1.0-1", "");
    // What the first run left: its pool file and a content-addressed index, no state.
    let repo = tempfile::tempdir().unwrap();
    let pool = repo.path().join("apt/pool/main/o/one");
    fs::create_dir_all(&pool).unwrap();
    fs::copy(&deb, pool.join("one_1.0-1_amd64.deb")).unwrap();
    let by_hash = repo
        .path()
        .join("apt/dists/stable/main/binary-amd64/by-hash/SHA256");
    fs::create_dir_all(&by_hash).unwrap();
    fs::write(by_hash.join("0".repeat(64)), "partial").unwrap();
    repo_add(repo.path(), std::slice::from_ref(&deb), &[]);
    run(mm_pkg()
        .args(["repo", "verify", "--hashes-only"])
        .arg(repo.path()));

    // A published Release without a state is another tool's repository: refused.
    let foreign = tempfile::tempdir().unwrap();
    let dists = foreign.path().join("apt/dists/bookworm");
    fs::create_dir_all(&dists).unwrap();
    fs::write(dists.join("Release"), "Origin: elsewhere\n").unwrap();
    let stderr = refused(foreign.path(), &[deb]);
    assert!(stderr.contains("not made by mm-pkg repo add"), "{stderr}");
}

/// `mm-pkg repo add DIR FILES`, which must exit 1; returns what it printed on stderr.
fn refused(dir: &Path, files: &[std::path::PathBuf]) -> String {
    let out = common::output(mm_pkg().args(["repo", "add"]).arg(dir).args(files));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    stderr
}

#[test]
fn versions_that_differ_only_in_their_epoch_cannot_share_a_pool_file() {
    if !have("dpkg-deb") {
        return;
    }
    // apt names pool files without the epoch: 2.0-1 and 1:2.0-1 would be one file.
    let work = tempfile::tempdir().unwrap();
    let plain = tiny_deb(work.path(), "e", "2.0-1", "");
    let epoch = tiny_deb(work.path(), "e", "1:2.0-1", "");
    let repo = tempfile::tempdir().unwrap();
    repo_add(repo.path(), std::slice::from_ref(&plain), &[]);
    let before = tree(repo.path());
    let stderr = refused(repo.path(), std::slice::from_ref(&epoch));
    assert!(stderr.contains("differ only in their epoch"), "{stderr}");
    assert_eq!(
        tree(repo.path()),
        before,
        "a refused add changed the repository"
    );
    // Both in one run: refused too.
    let fresh = tempfile::tempdir().unwrap();
    refused(fresh.path(), &[plain, epoch]);
}

#[test]
fn pool_files_an_interrupted_prune_left_are_removed_by_the_next_add() {
    if !have("dpkg-deb") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let old = tiny_deb(work.path(), "p", "1.0-1", "");
    let new = tiny_deb(work.path(), "p", "2.0-1", "");
    let repo = tempfile::tempdir().unwrap();
    repo_add(repo.path(), std::slice::from_ref(&old), &[]);
    repo_add(repo.path(), std::slice::from_ref(&new), &["--keep", "1"]);
    let pruned = repo.path().join("apt/pool/main/p/p/p_1.0-1_amd64.deb");
    assert!(!pruned.exists());
    // As if the run had stopped after publishing the indexes, before removing the file.
    fs::copy(&old, &pruned).unwrap();
    repo_add(repo.path(), std::slice::from_ref(&new), &[]);
    assert!(!pruned.exists(), "the pruned file stayed in the pool");
    assert!(
        repo.path()
            .join("apt/pool/main/p/p/p_2.0-1_amd64.deb")
            .exists()
    );
    run(mm_pkg()
        .args(["repo", "verify", "--hashes-only"])
        .arg(repo.path()));
}

/// An honest operator's repeated add is a no-op after several generations too: the
/// generation before stays for clients mid-update, the state keeps its bytes. And a
/// `SOURCE_DATE_EPOCH` older than the last publish (an older branch's fix) never moves
/// `Date:` back, which would make apt keep its newer lists and never see the change.
#[test]
fn a_repeated_add_keeps_the_generation_before_and_dates_never_go_back() {
    if !have("gpg") {
        return;
    }
    let key = GpgKey::generate("ed25519", None, &[], "never");
    let (_d, debs) = packages("deb", &["9.11.90", "9.11.91", "9.11.92"]);
    let (_r, rpms) = packages("rpm", &["9.11.90", "9.11.91"]);
    let repo = tempfile::tempdir().unwrap();
    let args = ["--sign-key", key.secret.to_str().unwrap()];
    repo_add(repo.path(), &[debs[0].clone(), rpms[0].clone()], &args);
    let second = [debs[1].clone(), rpms[1].clone()];
    repo_add(repo.path(), &second, &args);
    let before = tree(repo.path());
    let previous = state_json(repo.path())["published"]["previous"].clone();
    assert!(!previous.as_array().unwrap().is_empty(), "{previous}");
    let out = run(mm_pkg()
        .args(["repo", "add"])
        .arg(repo.path())
        .args(&second)
        .args(args)
        .args(["--json"]));
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["changes"]["removed"], serde_json::json!([]), "{out}");
    assert_eq!(
        tree(repo.path()),
        before,
        "a repeated add changed the repository"
    );

    let date = |repo: &Path| {
        state_json(repo)["published"]["release_date"]
            .as_u64()
            .unwrap()
    };
    let published = date(repo.path());
    run(mm_pkg()
        .env("SOURCE_DATE_EPOCH", "1000000000")
        .args(["repo", "add"])
        .arg(repo.path())
        .arg(&debs[2])
        .args(args));
    assert_eq!(date(repo.path()), published);
    let release = fs::read_to_string(repo.path().join("apt/dists/stable/Release")).unwrap();
    assert!(!release.contains("2001"), "{release}");
    assert!(packages_list(repo.path()).contains("Version: 9.11.92"));
}

/// The apt `Packages` index of `repo`.
fn packages_list(repo: &Path) -> String {
    fs::read_to_string(repo.join("apt/dists/stable/main/binary-amd64/Packages")).unwrap()
}
