//! `sync` and `build` tell the team in Mattermost: one webhook post per run, as the
//! `--notify` policy wants, retried through server errors, a warning (never an error) when
//! the webhook is gone, and the secret webhook URL never shown.

mod common;

use std::fs;
use std::process::Output;

use common::fixture::Spec;
use common::output;
use common::receiver::Receiver;
use common::signing::{TestKey, release_key};
use common::upstream::{FOLLOW_TWO_SERIES, INDEX_PATH, Upstream, json, text};

/// The run succeeded and its output does not contain the webhook's secret.
fn ok_without_secret(out: &Output, hook: &Receiver) {
    assert!(out.status.success(), "{}", text(out));
    assert!(
        !text(out).contains(&hook.secret),
        "the webhook URL leaked:\n{}",
        text(out)
    );
}

#[test]
fn one_post_per_run_names_each_version_and_follows_the_notify_policy() {
    let up = Upstream::new();
    up.publish_both(&["9.11.90", "12.0.1"]);
    let hook = Receiver::start();
    let repo = up.path("repo");
    let summary = up.path("step-summary.md");
    let sync = |extra: &[&str]| {
        output(
            up.sync_cmd(
                &repo,
                &[
                    &FOLLOW_TWO_SERIES[..],
                    &[
                        "--webhook",
                        &hook.url,
                        "--webhook-channel",
                        "releases",
                        "--json",
                    ],
                    extra,
                ]
                .concat(),
            )
            .env("GITHUB_STEP_SUMMARY", &summary),
        )
    };

    let out = sync(&[]);
    ok_without_secret(&out, &hook);
    let got = hook.received();
    assert_eq!(got.len(), 1, "{got:#?}");
    let post = &got[0];
    assert_eq!(post.method, "POST");
    assert_eq!(post.path, format!("/hooks/{}", hook.secret));
    assert_eq!(post.content_type.as_deref(), Some("application/json"));
    let body = post.json();
    assert_eq!(body["username"], "mm-pkg");
    assert_eq!(body["channel"], "releases");
    let message = body["text"].as_str().unwrap();
    assert!(
        message.starts_with("#### mm-pkg: mattermost 9.11.90 and 12.0.1 published to stable\n"),
        "{message}"
    );
    for (version, edition) in [
        ("9.11.90", "enterprise"),
        ("9.11.90", "team"),
        ("12.0.1", "enterprise"),
        ("12.0.1", "team"),
    ] {
        let row = format!("| {version} | {edition} | amd64 | deb, rpm | deb `");
        assert!(message.contains(&row), "no row {row} in:\n{message}");
    }
    // The table's SHA-256 prefixes are those of the published files.
    let report = json(&out);
    for entry in report["built"].as_array().unwrap() {
        for sha in entry["sha256"].as_array().unwrap() {
            assert!(message.contains(&sha.as_str().unwrap()[..12]), "{message}");
        }
    }
    let host = hook.url.split('/').nth(2).unwrap();
    assert_eq!(report["notification"]["host"], host);
    assert_eq!(report["notification"]["posted"], true);
    assert_eq!(
        fs::read_to_string(&summary).unwrap(),
        format!("{message}\n")
    );

    // Nothing new: `changes` and `failures` stay quiet, `always` says so.
    for policy in ["changes", "failures"] {
        let out = sync(&["--notify", policy]);
        ok_without_secret(&out, &hook);
        assert_eq!(hook.received().len(), 1, "--notify {policy} posted");
    }
    let out = sync(&["--notify", "always"]);
    ok_without_secret(&out, &hook);
    let got = hook.received();
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[1].json()["text"],
        "#### mm-pkg: nothing new for stable (4 releases already published)\n"
    );
}

#[test]
fn server_errors_are_retried_and_a_deleted_webhook_is_only_a_warning() {
    let up = Upstream::new();
    up.publish(&Spec::new("9.11.90"), Some(release_key()));
    let hook = Receiver::start();
    let repo = up.path("repo");

    // 500, 500, then 200: the third attempt delivers the one message.
    hook.answer(500, "");
    hook.answer(500, "");
    let out = up.sync(&repo, &["--spec", "9.11", "--webhook", &hook.url, "--json"]);
    ok_without_secret(&out, &hook);
    let got = hook.received();
    assert_eq!(got.len(), 3, "{got:#?}");
    assert!(got.iter().all(|r| r.body == got[0].body));
    assert_eq!(json(&out)["notification"]["posted"], true);

    // 404 from Mattermost (the webhook was deleted), URL from the environment: a warning
    // with the status and Mattermost's text, no retry, exit 0, packages published.
    up.publish(&Spec::new("9.11.91"), Some(release_key()));
    hook.answer(
        404,
        r#"{"id":"web.incoming_webhook.invalid.app_error","message":"Invalid webhook.","status_code":404}"#,
    );
    let out = output(
        up.sync_cmd(&repo, &["--spec", "9.11", "--json"])
            .env("MM_PKG_WEBHOOK_URL", &hook.url),
    );
    ok_without_secret(&out, &hook);
    assert_eq!(hook.received().len(), 4, "a 4xx was retried");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: the webhook at 127.0.0.1:")
            && stderr.contains("answered 404 Not Found: Invalid webhook."),
        "{stderr}"
    );
    let report = json(&out);
    assert_eq!(report["built"][0]["version"], "9.11.91");
    assert_eq!(report["notification"]["posted"], false);

    // Nobody listening: three attempts, then a warning; still exit 0.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!(
            "http://{}/hooks/{}",
            listener.local_addr().unwrap(),
            hook.secret
        )
    };
    let out = up.sync(
        &repo,
        &["--spec", "9.11", "--webhook", &closed, "--notify", "always"],
    );
    ok_without_secret(&out, &hook);
    assert!(
        text(&out).contains("cannot post to the webhook at 127.0.0.1:")
            && text(&out).contains("after 3 attempts"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_redirect_is_not_followed_so_neither_message_nor_secret_url_reaches_another_host() {
    let up = Upstream::new();
    up.publish(&Spec::new("9.11.90"), Some(release_key()));
    let hook = Receiver::start();
    let elsewhere = Receiver::start();
    // A 307 keeps the method and body: followed, it would post the message there, with the
    // secret URL as Referer.
    hook.redirect(307, &elsewhere.url);
    let out = up.sync(
        &up.path("repo"),
        &["--spec", "9.11", "--webhook", &hook.url, "--json"],
    );
    ok_without_secret(&out, &hook);
    assert!(
        elsewhere.received().is_empty(),
        "the redirect was followed: {:#?}",
        elsewhere.received()
    );
    let got = hook.received();
    assert_eq!(got.len(), 1, "a redirect was retried: {got:#?}");
    assert_eq!(got[0].referer, None);
    assert_eq!(json(&out)["notification"]["posted"], false);
    assert!(
        text(&out).contains("answered 307 Temporary Redirect (a redirect)"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_failed_release_is_named_in_the_post_and_the_run_exits_1() {
    let up = Upstream::new();
    up.publish(&Spec::new("9.11.90"), Some(release_key()));
    let stranger = TestKey::generate("Stranger <x@example.org>");
    up.publish(&Spec::new("12.0.1"), Some(&stranger));
    let hook = Receiver::start();
    let out = up.sync(
        &up.path("repo"),
        &[
            "--spec",
            "9.11",
            "--spec",
            "12.x",
            "--webhook",
            &hook.url,
            "--notify",
            "failures",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(!text(&out).contains(&hook.secret));
    let got = hook.received();
    assert_eq!(got.len(), 1);
    let message = got[0].json()["text"].as_str().unwrap().to_string();
    assert!(
        message
            .starts_with("#### mm-pkg: mattermost 9.11.90 published to stable, 1 build failed\n"),
        "{message}"
    );
    assert!(
        message.contains("- mattermost 12.0.1 (enterprise, amd64): `")
            && message.contains("signature"),
        "{message}"
    );
}

#[test]
fn build_posts_its_packages_too() {
    let up = Upstream::new();
    up.publish(&Spec::team("9.11.90"), Some(release_key()));
    let hook = Receiver::start();
    let out_dir = up.path("dist");
    let out = output(
        up.cmd()
            .args([
                "build",
                "9.11.90",
                "--edition",
                "team",
                "--mirror",
                &up.server.base,
            ])
            .arg("--index-url")
            .arg(format!("{}{INDEX_PATH}", up.server.base))
            .arg("--cache-dir")
            .arg(up.cache())
            .arg("--keyring")
            .arg(up.keyring())
            .arg("--output")
            .arg(&out_dir)
            .args([
                "--webhook",
                &hook.url,
                "--webhook-icon-url",
                "https://example.org/i.png",
            ]),
    );
    ok_without_secret(&out, &hook);
    let got = hook.received();
    assert_eq!(got.len(), 1);
    let body = got[0].json();
    assert_eq!(body["icon_url"], "https://example.org/i.png");
    let message = body["text"].as_str().unwrap();
    assert!(
        message.starts_with("#### mm-pkg: mattermost 9.11.90 built\n"),
        "{message}"
    );
    let sums = fs::read_to_string(out_dir.join("SHA256SUMS")).unwrap();
    for line in sums.lines() {
        assert!(message.contains(&line[..12]), "{message}\n{sums}");
    }
}

#[test]
fn a_failed_build_posts_its_failure_and_still_exits_1() {
    let up = Upstream::new();
    up.list("9.11.90"); // listed, never published: 404
    let hook = Receiver::start();
    let out = output(
        up.cmd()
            .args(["build", "9.11.90", "--mirror", &up.server.base])
            .arg("--cache-dir")
            .arg(up.cache())
            .arg("--output")
            .arg(up.path("dist"))
            .env("MM_PKG_WEBHOOK_URL", &hook.url),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(!text(&out).contains(&hook.secret));
    let got = hook.received();
    assert_eq!(got.len(), 1);
    let message = got[0].json()["text"].as_str().unwrap().to_string();
    assert!(
        message.starts_with("#### mm-pkg: 1 build failed\n"),
        "{message}"
    );
    assert!(
        message.contains("- mattermost 9.11.90 (enterprise, amd64): `")
            && message.contains("not published"),
        "{message}"
    );
}
