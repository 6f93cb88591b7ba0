//! Every release `sync` publishes says what verified it, as `build` does: the same
//! UNVERIFIED warning, `verified_by` in `--json`, the webhook message and the step summary;
//! and a SHA-256 pinned for a release (`--sha256sums FILE`) verifies it without a signature,
//! in `sync` and in each build its plan names.

mod common;

use std::fs;

use common::fixture::Spec;
use common::mirror::packages_in;
use common::output;
use common::receiver::Receiver;
use common::signing::release_key;
use common::upstream::{Upstream, json, text};

fn entry<'a>(list: &'a serde_json::Value, version: &str, edition: &str) -> &'a serde_json::Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|e| e["version"] == version && e["edition"] == edition)
        .unwrap_or_else(|| panic!("no {version} {edition} in {list:#}"))
}

#[test]
fn an_unsigned_release_sync_publishes_is_called_unverified_everywhere() {
    let up = Upstream::new();
    up.publish(&Spec::new("9.11.90"), None);
    up.publish(&Spec::team("9.11.90"), Some(release_key()));
    let hook = Receiver::start();
    let summary = up.path("step-summary.md");
    let repo = up.path("repo");
    let out = output(
        up.sync_cmd(
            &repo,
            &[
                "--spec",
                "9.11",
                "--edition",
                "enterprise,team",
                "--allow-unsigned",
                "--webhook",
                &hook.url,
                "--json",
            ],
        )
        .env("GITHUB_STEP_SUMMARY", &summary),
    );
    assert!(out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let warning = stderr
        .lines()
        .find(|l| l.contains("UNVERIFIED"))
        .unwrap_or_else(|| panic!("no UNVERIFIED warning:\n{stderr}"));
    assert!(
        warning.contains("mattermost-9.11.90-linux-amd64.tar.gz"),
        "{warning}"
    );
    assert!(
        stderr.contains("mattermost-team-9.11.90-linux-amd64.tar.gz: SHA-256"),
        "the signed one says it was verified:\n{stderr}"
    );

    let report = json(&out);
    let built = &report["built"];
    assert_eq!(
        entry(built, "9.11.90", "enterprise")["verified_by"],
        serde_json::json!([])
    );
    assert_eq!(
        entry(built, "9.11.90", "team")["verified_by"],
        serde_json::json!(["signature"])
    );

    let posts = hook.received();
    assert_eq!(posts.len(), 1);
    let message = posts[0].json()["text"].as_str().unwrap().to_string();
    assert!(
        message.starts_with("#### mm-pkg: mattermost 9.11.90 published to stable, 1 UNVERIFIED\n"),
        "{message}"
    );
    assert!(
        message.contains("| 9.11.90 | enterprise | amd64 | deb, rpm | deb `")
            && message.contains("` | **UNVERIFIED** |\n")
            && message.contains("` | signature |\n"),
        "{message}"
    );
    assert!(
        message.contains(
            "**UNVERIFIED:** nothing vouched for the tarball of mattermost 9.11.90 (enterprise, amd64)"
        ),
        "{message}"
    );
    assert_eq!(
        fs::read_to_string(&summary).unwrap(),
        format!("{message}\n")
    );

    // The plain report says it too.
    up.publish(&Spec::new("9.11.91"), None);
    let out = up.sync(&repo, &["--spec", "9.11", "--allow-unsigned"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("built mattermost 9.11.91 (enterprise, amd64): ")
            && stdout.contains(" (UNVERIFIED)\n"),
        "{stdout}"
    );
}

#[test]
fn a_pinned_release_needs_no_signature_and_its_plan_pins_the_build() {
    let up = Upstream::new();
    let bytes = up.publish(&Spec::new("9.11.90"), None);
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    let pins = up.path("SHA256SUMS");
    fs::write(
        &pins,
        format!(
            "{sha}  mattermost-9.11.90-linux-amd64.tar.gz\n{}  mattermost-12.0.1-linux-amd64.tar.gz\n",
            "ab".repeat(32)
        ),
    )
    .unwrap();
    let pins_flag = ["--sha256sums", pins.to_str().unwrap()];
    let repo = up.path("repo");

    // The plan hands each build its pin.
    let out = up.sync(
        &repo,
        &[&["--spec", "9.11", "--plan", "--json"][..], &pins_flag].concat(),
    );
    assert!(out.status.success(), "{}", text(&out));
    let argv: Vec<String> = json(&out)["include"][0]["argv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let at = argv.iter().position(|a| a == "--sha256").expect("--sha256");
    assert_eq!(argv[at + 1], sha);
    let dist = up.path("planned");
    let planned = output(
        up.cmd()
            .args(&argv)
            .arg("--output")
            .arg(&dist)
            .arg("--cache-dir")
            .arg(up.path("job-cache")),
    );
    assert!(planned.status.success(), "{}", text(&planned));
    assert_eq!(packages_in(&dist).len(), 2);

    // sync itself: verified by the pin, with no signature and no --allow-unsigned.
    let out = up.sync(
        &repo,
        &[&["--spec", "9.11", "--json"][..], &pins_flag].concat(),
    );
    assert!(out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("(SHA-256 from --sha256sums {})", pins.display()))
            && !stderr.contains("UNVERIFIED"),
        "{stderr}"
    );
    let report = json(&out);
    assert_eq!(
        entry(&report["built"], "9.11.90", "enterprise")["verified_by"],
        serde_json::json!(["sha256"])
    );

    // A release whose bytes differ from its pin fails alone, even though it is signed.
    up.publish(&Spec::new("12.0.1"), Some(release_key()));
    let out = up.sync(
        &repo,
        &[
            &["--spec", "9.11", "--spec", "12.x", "--json"][..],
            &pins_flag,
        ]
        .concat(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let failed = entry(&json(&out)["failed"], "12.0.1", "enterprise")["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(failed.contains("SHA-256 mismatch"), "{failed}");

    // A malformed pin file is refused before anything is done.
    fs::write(&pins, "not a checksum line\n").unwrap();
    let out = up.sync(
        &up.path("repo2"),
        &[&["--spec", "9.11"][..], &pins_flag].concat(),
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("line 1") && !up.path("repo2").exists(),
        "{}",
        text(&out)
    );
}
