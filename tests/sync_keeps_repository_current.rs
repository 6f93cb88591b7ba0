//! `mm-pkg sync` keeps a repository current with upstream: it builds and publishes what is
//! missing, nothing more; a second run downloads nothing and changes no byte; a release that
//! fails (bad signature, hostile tarball, 404) fails alone and never reaches the repository.

mod common;

use std::path::Path;

use common::fixture::{Hostile, Spec};
use common::signing::{TestKey, release_key};
use common::upstream::{FOLLOW_TWO_SERIES, Upstream, json, text, tree};
use common::{output, run};

/// `(version, edition)` of each entry of a report list, sorted.
fn releases(list: &serde_json::Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["version"].as_str().unwrap_or("").to_string(),
                e["edition"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut out: Vec<_> = list
        .iter()
        .map(|(v, e)| (v.to_string(), e.to_string()))
        .collect();
    out.sort();
    out
}

fn repo_verifies(up: &Upstream, repo: &Path) {
    run(up
        .cmd()
        .args(["repo", "verify"])
        .arg(repo)
        .arg("--key")
        .arg(up.path("keys/signing-key.asc")));
}

#[test]
fn sync_builds_only_what_is_missing_and_a_rerun_changes_nothing() {
    let up = Upstream::new();
    up.publish_both(&["9.11.90", "12.0.1"]);
    let repo = up.path("repo");
    let specs = FOLLOW_TWO_SERIES;

    // First run: four releases, each as .deb and .rpm, in one signed repository.
    let out = up.sync(&repo, &[&specs[..], &["--json"]].concat());
    assert!(out.status.success(), "{}", text(&out));
    let report = json(&out);
    let all = pairs(&[
        ("9.11.90", "enterprise"),
        ("9.11.90", "team"),
        ("12.0.1", "enterprise"),
        ("12.0.1", "team"),
    ]);
    assert_eq!(releases(&report["built"]), all);
    assert!(report["present"].as_array().unwrap().is_empty());
    assert!(report["failed"].as_array().unwrap().is_empty());
    for entry in report["built"].as_array().unwrap() {
        assert_eq!(entry["formats"], serde_json::json!(["deb", "rpm"]));
        for (file, sha) in entry["files"]
            .as_array()
            .unwrap()
            .iter()
            .zip(entry["sha256"].as_array().unwrap())
        {
            let bytes = std::fs::read(repo.join(file.as_str().unwrap())).unwrap();
            use sha2::Digest;
            assert_eq!(
                hex::encode(sha2::Sha256::digest(&bytes)),
                sha.as_str().unwrap()
            );
        }
    }
    assert_eq!(report["repository"]["added"].as_array().unwrap().len(), 8);
    assert_eq!(report["repository"]["unsigned"], false);
    assert_eq!(up.tarball_requests().len(), 4);
    repo_verifies(&up, &repo);

    // Second run: nothing new, no tarball asked for, not one byte of the repository changed.
    let before = tree(&repo);
    let out = up.sync(&repo, &[&specs[..], &["--json"]].concat());
    assert!(out.status.success(), "{}", text(&out));
    let report = json(&out);
    assert!(report["built"].as_array().unwrap().is_empty());
    assert_eq!(releases(&report["present"]), all);
    assert_eq!(
        up.tarball_requests().len(),
        4,
        "the second run downloaded a tarball"
    );
    assert!(
        tree(&repo) == before,
        "the second run changed the repository"
    );

    // A new release upstream: the third run builds that one only.
    up.publish_both(&["12.0.2"]);
    let out = up.sync(&repo, &[&specs[..], &["--json"]].concat());
    assert!(out.status.success(), "{}", text(&out));
    let report = json(&out);
    assert_eq!(
        releases(&report["built"]),
        pairs(&[("12.0.2", "enterprise"), ("12.0.2", "team")])
    );
    // `12.x` now means 12.0.2; 9.11.90 is still what `9.11` means.
    assert_eq!(
        releases(&report["present"]),
        pairs(&[("9.11.90", "enterprise"), ("9.11.90", "team")])
    );
    let new: Vec<String> = up.tarball_requests().split_off(4);
    assert_eq!(new.len(), 2, "{new:?}");
    assert!(new.iter().all(|u| u.contains("12.0.2")), "{new:?}");
    repo_verifies(&up, &repo);

    // --keep 2 keeps 12.0.2 and 12.0.1 of each package, which would drop the 9.11.90 that
    // `9.11` follows (and rebuild it on every run): refused before anything changes.
    let before = tree(&repo);
    let out = up.sync(&repo, &[&specs[..], &["--keep", "2"]].concat());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("--keep 2 would remove Mattermost 9.11.90"),
        "{}",
        text(&out)
    );
    assert!(tree(&repo) == before);
    // Following `12.x` alone, --keep 2 prunes 9.11.90, which no spec asks for any more.
    let out = up.sync(
        &repo,
        &[
            "--spec",
            "12.x",
            "--edition",
            "enterprise,team",
            "--keep",
            "2",
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let pruned = json(&out)["repository"]["pruned"].clone();
    assert_eq!(pruned.as_array().unwrap().len(), 4, "{pruned:#}");
    assert!(
        pruned
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p.as_str().unwrap().contains("9.11.90"))
    );
    repo_verifies(&up, &repo);
}

#[test]
fn a_failing_release_fails_alone_and_never_touches_the_repository() {
    let up = Upstream::new();
    up.publish_both(&["9.11.90"]);
    let repo = up.path("repo");
    let out = up.sync(&repo, &["--spec", "9.11", "--edition", "enterprise,team"]);
    assert!(out.status.success(), "{}", text(&out));
    let before = tree(&repo);

    // 12.0.1 enterprise: signed by a key nobody trusts. 12.0.1 team: a hostile tarball with a
    // good signature. 12.0.2: listed in the index, but its files are missing (404).
    let stranger = TestKey::generate("Stranger <x@example.org>");
    up.publish(&Spec::new("12.0.1"), Some(&stranger));
    let hostile = Spec {
        hostile: Some(Hostile::DotDot),
        ..Spec::team("12.0.1")
    };
    up.publish(&hostile, Some(release_key()));
    let out = up.sync(
        &repo,
        &[
            "--spec",
            "9.11",
            "--spec",
            "12.0.1",
            "--edition",
            "enterprise,team",
            "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report = json(&out);
    let failed = report["failed"].as_array().unwrap();
    assert_eq!(
        releases(&report["failed"]),
        pairs(&[("12.0.1", "enterprise"), ("12.0.1", "team")])
    );
    let reason = |edition: &str| {
        failed.iter().find(|e| e["edition"] == edition).unwrap()["reason"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(
        reason("enterprise").contains("signature"),
        "{}",
        reason("enterprise")
    );
    assert!(reason("team").contains(".."), "{}", reason("team"));
    assert_eq!(
        releases(&report["present"]),
        pairs(&[("9.11.90", "enterprise"), ("9.11.90", "team")])
    );
    assert!(text(&out).contains("2 release(s) failed"), "{}", text(&out));
    assert!(
        tree(&repo) == before,
        "a failed release changed the repository"
    );

    // A missing file (404) next to a good new release: the good one is published.
    up.list("12.0.2");
    up.publish(&Spec::new("12.0.3"), Some(release_key()));
    let out = up.sync(
        &repo,
        &[
            "--spec", "9.11", "--spec", "12.0.2", "--spec", "12.0.3", "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report = json(&out);
    assert_eq!(
        releases(&report["built"]),
        pairs(&[("12.0.3", "enterprise")])
    );
    assert_eq!(
        releases(&report["failed"]),
        pairs(&[("12.0.2", "enterprise")])
    );
    assert!(
        report["failed"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("not published"),
        "{report:#}"
    );
    repo_verifies(&up, &repo);
}

#[test]
fn plan_json_is_a_github_actions_matrix_of_exact_build_commands() {
    let up = Upstream::new();
    up.publish_both(&["9.11.90"]);
    let repo = up.path("repo");
    let args = [
        "--spec",
        "9.11",
        "--edition",
        "enterprise,team",
        "--plan",
        "--json",
    ];
    let out = up.sync(&repo, &args);
    assert!(out.status.success(), "{}", text(&out));
    let plan = json(&out);
    let include = plan["include"].as_array().unwrap();
    assert_eq!(include.len(), 2, "{plan:#}");
    for entry in include {
        let argv: Vec<&str> = entry["argv"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(&argv[..2], ["build", "9.11.90"]);
        assert!(
            argv.windows(2)
                .any(|w| w == ["--edition", entry["edition"].as_str().unwrap()])
        );
        assert!(argv.windows(2).any(|w| w == ["--format", "deb,rpm"]));
        assert_eq!(entry["formats"], "deb,rpm");
    }
    assert!(
        up.tarball_requests().is_empty(),
        "--plan downloaded a tarball"
    );
    assert!(!repo.exists(), "--plan created the repository");

    // Once everything is published the plan is empty, and that is not an error.
    let out = up.sync(&repo, &["--spec", "9.11", "--edition", "enterprise,team"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = up.sync(&repo, &args);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(json(&out), serde_json::json!({ "include": [] }));

    // Only the format the repository lacks is planned.
    let rpm_only = up.path("rpm-only");
    let out = up.sync(&rpm_only, &["--spec", "9.11", "--format", "rpm"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = up.sync(&rpm_only, &["--spec", "9.11", "--plan", "--json"]);
    assert_eq!(json(&out)["include"][0]["formats"], "deb", "{}", text(&out));
}

#[test]
fn an_interrupted_publish_is_completed_and_a_signed_repository_needs_its_key() {
    let up = Upstream::new();
    up.publish(&Spec::new("9.11.90"), Some(release_key()));
    let repo = up.path("repo");
    let out = up.sync(&repo, &["--spec", "9.11"]);
    assert!(out.status.success(), "{}", text(&out));
    let complete = tree(&repo);

    // As if killed after the state was saved and before Release and repomd.xml were written.
    let dists = repo.join("apt/dists/stable");
    for name in ["Release", "InRelease", "Release.gpg"] {
        std::fs::remove_file(dists.join(name)).unwrap();
    }
    std::fs::remove_file(repo.join("yum/repodata/repomd.xml")).unwrap();
    std::fs::remove_file(repo.join("yum/repodata/repomd.xml.asc")).unwrap();
    let out = up.sync(&repo, &["--spec", "9.11", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(json(&out)["built"].as_array().unwrap().is_empty());
    let now = tree(&repo);
    let differ: Vec<&String> = complete
        .keys()
        .chain(now.keys())
        .filter(|k| complete.get(*k) != now.get(*k))
        .collect();
    assert!(
        differ.is_empty(),
        "the next sync did not complete the repository: {differ:?}"
    );
    repo_verifies(&up, &repo);

    // Without the key the signed repository is left alone, not rewritten unsigned.
    up.publish(&Spec::new("9.11.91"), Some(release_key()));
    let cmd = up.sync_cmd(&repo, &["--spec", "9.11"]);
    let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
    let at = args.iter().position(|a| a == "--sign-key").unwrap();
    let mut bare = up.cmd();
    bare.args(&args[..at]).args(&args[at + 2..]);
    let out = output(&mut bare);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("is signed"), "{}", text(&out));
    assert!(tree(&repo) == complete);
    assert_eq!(
        up.tarball_requests().len(),
        1,
        "it downloaded before refusing"
    );
}
