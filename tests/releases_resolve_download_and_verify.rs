//! Version specs resolve against the catalog and a (fake) GitHub releases index; releases
//! download once into the cache, survive server faults, and are used only when their
//! SHA-256 and OpenPGP signature check out.

mod common;

use std::fs;
use std::process::Command;
use std::time::Duration;

use common::fixture::{Spec, write_release};
use common::mirror::{Mirror, fails, ok, packages_in};
use common::server::Fault;
use common::signing::{TestKey, release_key};
use common::{mm_pkg, output};

#[test]
fn catalog_alone_resolves_ranges_and_esr() {
    let m = Mirror::new();
    let json = |spec: &str, extra: &[&str]| -> serde_json::Value {
        let mut args = vec!["resolve", spec, "--offline", "--json"];
        args.extend_from_slice(extra);
        serde_json::from_str(
            &ok(m.run(&args))
                .lines()
                .filter(|l| !l.starts_with("mm-pkg:"))
                .collect::<String>(),
        )
        .unwrap()
    };
    let r = json("9.x", &[]);
    assert_eq!(r["version"], "9.11.18");
    assert_eq!(r["edition"], "enterprise");
    assert_eq!(r["arch"], "amd64");
    assert_eq!(r["esr"], true);
    assert_eq!(
        r["url"],
        format!(
            "{}/9.11.18/mattermost-9.11.18-linux-amd64.tar.gz",
            m.server.base
        )
    );
    assert_eq!(r["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(json("esr", &[])["version"], "11.7.9");
    assert_eq!(json("v9.11.18", &[])["version"], "9.11.18");
    assert_eq!(json("9.11", &["--edition", "team"])["version"], "9.11.18");
    let arm = json("9.11.18", &["--arch", "arm64", "--edition", "team"]);
    assert!(
        arm["sha256"].is_null(),
        "the catalog has no arm64 checksums"
    );
    assert_eq!(
        arm["url"],
        format!(
            "{}/9.11.18/mattermost-team-9.11.18-linux-arm64.tar.gz",
            m.server.base
        )
    );
    assert!(m.server.hits().is_empty(), "--offline makes no request");

    let err = fails(m.run(&["resolve", "9.x.1", "--offline"]));
    assert!(
        err.contains("accepted: 9.x, 9, 9.11, 9.11.x, 9.11.18, v9.11.18, latest, esr"),
        "{err}"
    );
    let list = ok(m.run(&["list", "9.11", "--offline"]));
    assert!(list.starts_with("9.11.18  (ESR)\n"), "{list}");
}

#[test]
fn index_pages_are_merged_and_filtered() {
    let m = Mirror::new().with_index();
    let resolved = ok(m.run(&["resolve", "9.x"]));
    assert!(resolved.contains("version  9.11.90\n"), "{resolved}");
    let pages: Vec<String> = m
        .server
        .hits_to("/api/releases")
        .into_iter()
        .map(|h| h.url)
        .collect();
    assert_eq!(
        pages,
        [1, 2, 3].map(|p| format!("/api/releases?per_page=100&page={p}")),
        "every page, each asked once"
    );
    let list = ok(m.run(&["list", "9.11"]));
    let versions: Vec<&str> = list.lines().collect();
    assert_eq!(versions[0], "9.11.90  (from the index)");
    assert_eq!(versions[1], "9.11.18  (ESR)");
    assert!(
        !list.contains("9.11.91") && !list.contains("9.11.92") && !list.contains("9.11.93"),
        "{list}"
    );
    assert!(ok(m.run(&["resolve", "latest"])).contains("version  12.0.1\n"));
    assert!(ok(m.run(&["resolve", "9.11.93-rc1"])).contains("version  9.11.93-rc1\n"));

    let mut cmd = mm_pkg();
    cmd.args(["resolve", "9.x", "--index-url"])
        .arg(format!("{}/api/releases", m.server.base))
        .arg("--cache-dir")
        .arg(m.cache())
        .env("GITHUB_TOKEN", "t0ken");
    ok(output(&mut cmd));
    assert_eq!(
        m.server.hits().last().unwrap().authorization.as_deref(),
        Some("Bearer t0ken")
    );
}

#[test]
fn a_cached_index_answers_only_for_the_index_url_it_was_read_from() {
    let m = Mirror::new().with_index();
    assert!(ok(m.run(&["resolve", "9.x"])).contains("version  9.11.90\n"));
    // The same cache, offline: the mirror's index answers for its own URL ...
    assert!(ok(m.run(&["resolve", "9.x", "--offline"])).contains("version  9.11.90\n"));
    // ... and never for another index (here the default one): the catalog alone answers.
    let mut cmd = mm_pkg();
    cmd.args(["resolve", "9.x", "--offline", "--mirror", &m.server.base])
        .arg("--cache-dir")
        .arg(m.cache());
    let resolved = ok(output(&mut cmd));
    assert!(resolved.contains("version  9.11.18 (ESR)\n"), "{resolved}");
    let mut cmd = mm_pkg();
    cmd.args(["list", "12", "--offline"])
        .arg("--cache-dir")
        .arg(m.cache());
    let listed = output(&mut cmd);
    assert!(
        !String::from_utf8_lossy(&listed.stdout).contains("12.0.1"),
        "{}",
        String::from_utf8_lossy(&listed.stdout)
    );
}

#[test]
fn rate_limited_index_falls_back_to_the_catalog() {
    let m = Mirror::new().with_index();
    m.server
        .fault("/api/releases?per_page=100&page=1", Fault::Status(403));
    let out = m.run(&["resolve", "9.x"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let t = ok(out);
    assert!(t.contains("version  9.11.18"), "{t}");
    assert_eq!(stderr.lines().count(), 1, "one line says so:\n{stderr}");
    assert!(
        stderr.contains("release index unavailable") && stderr.contains("403"),
        "{stderr}"
    );

    m.server
        .fault("/api/releases?per_page=100&page=1", Fault::Status(429));
    let err = fails(m.run(&["resolve", "9.x", "--online"]));
    assert!(err.contains("429"), "{err}");
}

#[test]
fn build_a_range_then_rebuild_offline_from_the_cache() {
    let m = Mirror::new().with_index();
    m.publish(&Spec::new("9.11.90"), Some(release_key()));
    let out = m.out("dist");
    let log = ok(m.run(&[
        "build",
        "9.x",
        "--format",
        "deb,rpm",
        "-o",
        out.to_str().unwrap(),
    ]));
    assert_eq!(
        packages_in(&out),
        [
            "mattermost-9.11.90-1.x86_64.rpm",
            "mattermost_9.11.90-1_amd64.deb"
        ]
    );
    assert!(log.contains("signed by"), "{log}");
    let tarball_hits = m.server.hits_to("/9.11.90/").len();
    assert_eq!(tarball_hits, 2, "the signature and the tarball, once each");

    let before = m.server.hits().len();
    let again = m.out("again");
    ok(m.run(&["build", "9.x", "--offline", "-o", again.to_str().unwrap()]));
    assert_eq!(m.server.hits().len(), before, "--offline made requests");
    assert_eq!(packages_in(&again), packages_in(&out));
    for name in packages_in(&out) {
        assert_eq!(
            fs::read(out.join(&name)).unwrap(),
            fs::read(again.join(&name)).unwrap()
        );
    }
}

#[test]
fn server_errors_drops_and_stalls_are_retried_and_resumed() {
    let m = Mirror::new();
    let spec = Spec {
        pad: 4 << 20,
        ..Spec::new("9.11.90")
    };
    let bytes = m.publish(&spec, Some(release_key()));
    let path = m.tarball_path(&spec);
    m.server.fault(&path, Fault::Status(500));
    m.server.fault(&path, Fault::DropAfter(bytes.len() / 2));
    m.server.fault(&path, Fault::Delay(Duration::from_secs(3)));
    let out = m.out("dist");
    ok(m.build_deb("9.11.90", &out, &["--timeout", "1"]));
    assert_eq!(packages_in(&out), ["mattermost_9.11.90-1_amd64.deb"]);
    let hits = m.server.hits_to(&path);
    let gets: Vec<_> = hits.iter().filter(|h| !h.url.ends_with(".sig")).collect();
    assert!(gets.len() >= 4, "500, drop, stall, success: {gets:?}");
    assert!(
        gets.iter().any(|h| h
            .range
            .as_deref()
            .is_some_and(|r| r.starts_with("bytes=") && r != "bytes=0-")),
        "the dropped download was resumed with a Range request: {gets:?}"
    );
    let cached = m.cache().join("9.11.90").join(spec.tarball_name());
    assert_eq!(fs::read(cached).unwrap(), bytes);
}

#[test]
fn unpublished_release_is_named_with_its_url() {
    let m = Mirror::new();
    let err = fails(m.run(&["build", "9.11.95", "--edition", "team", "--arch", "arm64"]));
    let url = format!(
        "{}/9.11.95/mattermost-team-9.11.95-linux-arm64.tar.gz",
        m.server.base
    );
    assert!(
        err.contains(&format!(
            "Mattermost 9.11.95 (team, arm64) is not published at {url}"
        )),
        "{err}"
    );
}

#[test]
fn wrong_bytes_are_deleted_and_both_hashes_shown() {
    let m = Mirror::new();
    let bytes = m.publish(&Spec::new("9.11.90"), Some(release_key()));
    let expected = "ab".repeat(32);
    let err = fails(m.run(&[
        "build",
        "9.11.90",
        "--sha256",
        &expected,
        "-o",
        m.out("d").to_str().unwrap(),
    ]));
    let actual = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    assert!(err.contains(&expected) && err.contains(&actual), "{err}");
    let dir = m.cache().join("9.11.90");
    let left: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        left.iter().all(|n| {
            let n = n.to_string_lossy();
            n.ends_with(".sig") || n.ends_with(".lock")
        }),
        "download not deleted: {left:?}"
    );
    assert!(packages_in(&m.out("d")).is_empty());
}

#[test]
fn a_sha256_pin_verifies_a_download_that_has_no_signature() {
    let m = Mirror::new();
    let bytes = m.publish(&Spec::new("9.11.90"), None);
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    let out = m.run(&[
        "build",
        "9.11.90",
        "--sha256",
        &sha.to_ascii_uppercase(),
        "--format",
        "deb",
        "--json",
        "-o",
        m.out("pinned").to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", common::mirror::text(&out));
    });
    assert!(out.status.success(), "{stderr}");
    assert_eq!(json["verified_by"], serde_json::json!(["sha256"]));
    assert!(
        stderr.contains("(SHA-256 from --sha256)") && !stderr.contains("UNVERIFIED"),
        "{stderr}"
    );
    assert_eq!(packages_in(&m.out("pinned")).len(), 1);

    // A wrong pin is a mismatch, not a missing signature.
    let m = Mirror::new();
    m.publish(&Spec::new("9.11.90"), None);
    let err = fails(m.run(&[
        "build",
        "9.11.90",
        "--sha256",
        &"ab".repeat(32),
        "-o",
        m.out("wrong").to_str().unwrap(),
    ]));
    assert!(err.contains("SHA-256 mismatch"), "{err}");
    assert!(packages_in(&m.out("wrong")).is_empty());
}

#[test]
fn signatures_must_be_present_good_and_trusted() {
    // Bad: a signature over other bytes.
    let m = Mirror::new();
    let spec = Spec::new("9.11.90");
    m.publish(&spec, None);
    m.server.route(
        &format!("{}.sig", m.tarball_path(&spec)),
        release_key().sign(b"other bytes"),
    );
    let err = fails(m.run(&[
        "build",
        "9.11.90",
        "--allow-unsigned",
        "-o",
        m.out("a").to_str().unwrap(),
    ]));
    assert!(err.contains("BAD signature"), "{err}");
    assert!(packages_in(&m.out("a")).is_empty());

    // Missing: refused unless --allow-unsigned.
    let m = Mirror::new();
    m.publish(&spec, None);
    let err = fails(m.run(&["build", "9.11.90", "-o", m.out("b").to_str().unwrap()]));
    assert!(
        err.contains("no OpenPGP signature")
            && err.contains("--sha256")
            && err.contains("--allow-unsigned"),
        "{err}"
    );
    ok(m.run(&[
        "build",
        "9.11.90",
        "--allow-unsigned",
        "--format",
        "deb",
        "-o",
        m.out("b").to_str().unwrap(),
    ]));
    assert_eq!(packages_in(&m.out("b")), ["mattermost_9.11.90-1_amd64.deb"]);

    // Untrusted: a valid signature by a key nobody trusts.
    let m = Mirror::new();
    m.publish(&spec, Some(&TestKey::generate("Mallory <m@example.org>")));
    let err = fails(m.run(&["build", "9.11.90", "-o", m.out("c").to_str().unwrap()]));
    assert!(
        err.contains("not trusted") && err.contains("--keyring"),
        "{err}"
    );
}

#[test]
fn catalogued_version_with_other_bytes_is_refused_despite_a_valid_signature() {
    let m = Mirror::new();
    m.publish(&Spec::new("9.11.18"), Some(release_key()));
    let err = fails(m.run(&["build", "9.11.18", "-o", m.out("d").to_str().unwrap()]));
    assert!(
        err.contains("SHA-256 mismatch") && err.contains("the release catalog"),
        "{err}"
    );
    assert!(packages_in(&m.out("d")).is_empty());

    // The same applies to a local --tarball, and --insecure-skip-verify says loudly what it skips.
    let tarball = m
        .dir
        .path()
        .join("src")
        .join(Spec::new("9.11.18").tarball_name());
    let mut cmd = mm_pkg();
    cmd.args([
        "build",
        "9.11.18",
        "--format",
        "deb",
        "--offline",
        "--tarball",
    ])
    .arg(&tarball)
    .arg("-o")
    .arg(m.out("e"))
    .arg("--cache-dir")
    .arg(m.cache());
    let err = fails(output(&mut cmd));
    assert!(err.contains("SHA-256 mismatch"), "{err}");
    let log = ok(output(cmd.arg("--insecure-skip-verify")));
    assert!(
        log.contains("WARNING: --insecure-skip-verify: NOT checking"),
        "{log}"
    );
}

#[test]
fn a_tampered_cache_entry_is_verified_again_and_replaced() {
    let m = Mirror::new();
    let spec = Spec::new("9.11.90");
    let bytes = m.publish(&spec, Some(release_key()));
    ok(m.build_deb("9.11.90", &m.out("a"), &[]));
    let cached = m.cache().join("9.11.90").join(spec.tarball_name());
    let mut evil = bytes.clone();
    evil[100] ^= 0xff;
    fs::write(&cached, &evil).unwrap();
    let err = fails(m.run(&[
        "build",
        "9.11.90",
        "--offline",
        "-o",
        m.out("b").to_str().unwrap(),
    ]));
    assert!(
        err.contains("failed verification") && err.contains("--offline"),
        "{err}"
    );
    ok(m.build_deb("9.11.90", &m.out("c"), &[]));
    assert_eq!(fs::read(&cached).unwrap(), bytes);
    let _ = Command::new("true").status();
}

#[test]
fn a_local_tarball_is_verified_by_the_signature_beside_it() {
    let m = Mirror::new();
    let spec = Spec::new("9.11.90");
    let tarball = write_release(&m.dir.path().join("local"), &spec);
    let bytes = fs::read(&tarball).unwrap();
    let sig = tarball.with_file_name(format!("{}.sig", spec.tarball_name()));
    let local = |out: &str| {
        let mut cmd = mm_pkg();
        cmd.args([
            "build",
            "9.11.90",
            "--format",
            "deb",
            "--offline",
            "--tarball",
        ])
        .arg(&tarball)
        .arg("--keyring")
        .arg(m.dir.path().join("test.asc"))
        .arg("--cache-dir")
        .arg(m.cache())
        .arg("-o")
        .arg(m.out(out));
        output(&mut cmd)
    };

    fs::write(&sig, release_key().sign(&bytes)).unwrap();
    let log = ok(local("good"));
    assert!(
        log.contains("signed by") && !log.contains("UNVERIFIED"),
        "{log}"
    );

    fs::write(&sig, release_key().sign(b"something else")).unwrap();
    let err = fails(local("bad"));
    assert!(err.contains("BAD signature"), "{err}");
    assert!(packages_in(&m.out("bad")).is_empty());

    fs::remove_file(&sig).unwrap();
    let log = ok(local("none"));
    assert!(
        log.contains("UNVERIFIED"),
        "an unverifiable input is built with a warning: {log}"
    );
}
