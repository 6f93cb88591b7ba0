//! A signature proves who made the bytes, not which release they are: a signed tarball of
//! one release served under another release's name is refused by name, using the catalog
//! and mm-pkg's record of every tarball it verified.

mod common;

use std::fs;

use common::fixture::Spec;
use common::mirror::{Mirror, fails, ok, packages_in};
use common::signing::release_key;

#[test]
fn replayed_release_is_refused() {
    let m = Mirror::new();
    let bytes = m.publish(&Spec::new("9.11.90"), Some(release_key()));
    let a = m.out("a");
    ok(m.build_deb("9.11.90", &a, &[]));

    // The mirror now serves the signed 9.11.90 tarball as 9.11.91 (no catalog hash pins it).
    let path = m.tarball_path(&Spec::new("9.11.91"));
    m.server.route(&path, bytes.clone());
    m.server
        .route(&format!("{path}.sig"), release_key().sign(&bytes));
    let b = m.out("b");
    let err = fails(m.build_deb("9.11.91", &b, &[]));
    assert!(
        err.contains("is Mattermost 9.11.90 (enterprise, amd64) according to mm-pkg's record"),
        "{err}"
    );
    assert!(packages_in(&b).is_empty());

    // The genuine 9.11.90 still builds, and the record holds it once.
    ok(m.build_deb("9.11.90", &m.out("c"), &["--offline"]));
    let record = fs::read_to_string(m.cache().join("verified-tarballs.tsv")).unwrap();
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    assert_eq!(record, format!("9.11.90\tenterprise\tamd64\t{sha}\n"));
}
