//! Downloads take only the published bytes: the identity encoding is asked for and any other
//! is an error that says so, a resumed download continues only where the server says its
//! answer starts, and a failed request says where redirects led.

mod common;

use std::fs;

use common::fixture::Spec;
use common::mirror::{Mirror, fails, ok, packages_in};
use common::server::Fault;
use common::signing::release_key;

#[test]
fn identity_encoding_is_requested_and_any_other_is_refused() {
    let m = Mirror::new();
    let spec = Spec::new("9.11.90");
    m.publish(&spec, Some(release_key()));
    let path = m.tarball_path(&spec);
    m.server
        .fault(&path, Fault::Header("Content-Encoding", "gzip"));
    let a = m.out("a");
    let err = fails(m.build_deb("9.11.90", &a, &[]));
    assert!(
        err.contains("Content-Encoding `gzip`") && !err.contains("BAD signature"),
        "{err}"
    );
    assert!(packages_in(&a).is_empty());
    let hits = m.server.hits_to("/9.11.90/");
    assert!(!hits.is_empty());
    for hit in hits {
        assert_eq!(hit.accept_encoding.as_deref(), Some("identity"), "{hit:?}");
    }
    ok(m.build_deb("9.11.90", &m.out("b"), &[]));
}

#[test]
fn a_partial_answer_for_another_range_restarts_from_zero() {
    let m = Mirror::new();
    let spec = Spec {
        pad: 4 << 20,
        ..Spec::new("9.11.90")
    };
    let bytes = m.publish(&spec, Some(release_key()));
    let path = m.tarball_path(&spec);
    m.server.fault(&path, Fault::DropAfter(bytes.len() / 2));
    // Asked to resume at the .part length, the server answers a range starting elsewhere.
    m.server.fault(&path, Fault::RangeFrom(10));
    ok(m.build_deb("9.11.90", &m.out("a"), &["--timeout", "1"]));
    let gets: Vec<_> = m
        .server
        .hits_to(&path)
        .into_iter()
        .filter(|h| !h.url.ends_with(".sig"))
        .collect();
    assert_eq!(gets.len(), 3, "{gets:?}");
    assert!(gets[1].range.is_some(), "{gets:?}");
    assert_eq!(gets[2].range, None, "restarted from zero: {gets:?}");
    let cached = m.cache().join("9.11.90").join(spec.tarball_name());
    assert!(fs::read(cached).unwrap() == bytes);
}

#[test]
fn a_failed_download_says_where_redirects_led() {
    let m = Mirror::new();
    let spec = Spec::new("9.11.90");
    m.publish(&spec, Some(release_key()));
    let path = m.tarball_path(&spec);
    m.server
        .fault(&path, Fault::Redirect("/moved/elsewhere.tar.gz".into()));
    let err = fails(m.run(&["build", "9.11.90", "-o", m.out("a").to_str().unwrap()]));
    assert!(
        err.contains(&format!(
            "redirected to {}/moved/elsewhere.tar.gz",
            m.server.base
        )),
        "{err}"
    );
}

#[test]
fn a_tarball_announced_over_4_gib_is_not_downloaded() {
    let m = Mirror::new();
    let spec = Spec::new("9.11.90");
    m.publish(&spec, Some(release_key()));
    let path = m.tarball_path(&spec);
    m.server.fault(&path, Fault::ClaimLength(5 << 30));
    let a = m.out("a");
    let err = fails(m.build_deb("9.11.90", &a, &[]));
    assert!(
        err.contains("more than 4294967296 bytes") && err.contains("refusing to download"),
        "{err}"
    );
    assert!(packages_in(&a).is_empty());
    // Nothing of it is kept to resume from: the next build downloads the real one.
    ok(m.build_deb("9.11.90", &m.out("b"), &[]));
    let hits = m.server.hits_to(&path);
    assert!(
        hits.len() >= 2 && hits.iter().all(|h| h.range.is_none()),
        "{hits:?}"
    );
}
