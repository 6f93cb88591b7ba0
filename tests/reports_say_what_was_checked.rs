//! mm-pkg says what it checked and where things came from: UNVERIFIED when nothing vouches
//! for a tarball (terminal and `--json`), that arm64 tarballs have no upstream checksum, a
//! cached signature by its cache path, and the catalog's own URL for early releases.

mod common;

use std::fs;

use common::fixture::Spec;
use common::mirror::{Mirror, fails, ok};
use common::signing::{TestKey, release_key};

fn json_of(stdout: &[u8]) -> serde_json::Value {
    serde_json::from_slice(stdout).unwrap_or_else(|e| {
        panic!("not JSON ({e}): {}", String::from_utf8_lossy(stdout));
    })
}

#[test]
fn an_unsigned_uncatalogued_build_says_unverified() {
    let m = Mirror::new();
    m.publish(&Spec::new("9.11.90"), None);
    let out = m.run(&[
        "build",
        "9.11.90",
        "--allow-unsigned",
        "--format",
        "deb",
        "--json",
        "-o",
        m.out("a").to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("UNVERIFIED"), "{stderr}");
    assert!(!stderr.contains("mm-pkg: verified"), "{stderr}");
    let json = json_of(&out.stdout);
    assert_eq!(json["verified_by"], serde_json::json!([]), "{json}");

    // Signed: the JSON names the signature that was checked.
    let m = Mirror::new();
    m.publish(&Spec::new("9.11.90"), Some(release_key()));
    let out = m.build_deb("9.11.90", &m.out("b"), &["--json"]);
    let json = json_of(&out.stdout);
    let fingerprint = release_key().fingerprint();
    assert_eq!(json["verified_by"], serde_json::json!(["signature"]));
    assert_eq!(json["signed_by"], fingerprint);
}

#[test]
fn arm64_resolve_says_only_the_signature_is_checked() {
    let m = Mirror::new();
    let arm = ok(m.run(&["resolve", "9.11.18", "--arch", "arm64", "--offline"]));
    assert!(
        arm.contains(
            "upstream publishes no arm64 checksum; only the OpenPGP signature will be checked"
        ),
        "{arm}"
    );
    let amd = ok(m.run(&["resolve", "9.11.18", "--offline"]));
    assert!(!amd.contains("only the OpenPGP signature"), "{amd}");
}

#[test]
fn a_cached_signature_is_named_by_its_cache_path() {
    let m = Mirror::new();
    let spec = Spec::new("9.11.90");
    let bytes = m.publish(&spec, Some(release_key()));
    ok(m.build_deb("9.11.90", &m.out("a"), &[]));
    let sig = m
        .cache()
        .join("9.11.90")
        .join(format!("{}.sig", spec.tarball_name()));
    fs::write(
        &sig,
        TestKey::generate("Mallory <m@example.org>").sign(&bytes),
    )
    .unwrap();
    let err = fails(m.run(&[
        "build",
        "9.11.90",
        "--offline",
        "-o",
        m.out("b").to_str().unwrap(),
    ]));
    assert!(
        err.contains(&format!("the signature {} was made by key", sig.display())),
        "{err}"
    );
    assert!(!err.contains("http://"), "{err}");
    // The tarball is not to blame for an untrusted signature: it stays in the cache.
    assert!(
        m.cache()
            .join("9.11.90")
            .join(spec.tarball_name())
            .is_file()
    );
}

#[test]
fn the_catalog_url_is_used_where_it_has_one() {
    let m = Mirror::new();
    let url = |version: &str, edition: &str| -> String {
        let out = m.run(&[
            "resolve",
            version,
            "--edition",
            edition,
            "--offline",
            "--json",
        ]);
        json_of(&out.stdout)["url"].as_str().unwrap().to_string()
    };
    for version in ["2.1.0", "2.2.0", "3.0.3"] {
        assert_eq!(
            url(version, "enterprise"),
            format!(
                "{}/{version}/mattermost-enterprise-{version}-linux-amd64.tar.gz",
                m.server.base
            )
        );
    }
    assert_eq!(
        url("9.11.18", "enterprise"),
        format!(
            "{}/9.11.18/mattermost-9.11.18-linux-amd64.tar.gz",
            m.server.base
        )
    );
    assert_eq!(
        url("3.0.3", "team"),
        format!(
            "{}/3.0.3/mattermost-team-3.0.3-linux-amd64.tar.gz",
            m.server.base
        )
    );
}
