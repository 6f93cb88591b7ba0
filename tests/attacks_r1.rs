//! Attacks found by an independent review, each refused (or no longer harmful) now.

mod common;

use std::fs;

use common::fixture::Spec;
use common::mirror::{Mirror, ok};
use common::signing::release_key;

/// A mirror that replays the signed 9.11.90 tarball as 9.11.91 *before* mm-pkg has ever seen
/// 9.11.90 gets a warning-only build (the binary does not name 9.11.91), but must not get the
/// replayed bytes recorded as 9.11.91: that record would then refuse the genuine 9.11.90 as a
/// "replay" of 9.11.91, and keep calling 9.11.90's bytes 9.11.91 forever.
#[test]
fn a_replay_seen_first_does_not_poison_the_record_of_verified_tarballs() {
    let m = Mirror::new();
    let bytes = m.publish(&Spec::new("9.11.90"), Some(release_key()));
    let path = m.tarball_path(&Spec::new("9.11.91"));
    m.server.route(&path, bytes.clone());
    m.server
        .route(&format!("{path}.sig"), release_key().sign(&bytes));

    let replayed = ok(m.build_deb("9.11.91", &m.out("a"), &[]));
    assert!(
        replayed.contains("does not contain the version string `9.11.91`"),
        "{replayed}"
    );
    let record = fs::read_to_string(m.cache().join("verified-tarballs.tsv")).unwrap_or_default();
    assert!(!record.contains("9.11.91"), "recorded the replay: {record}");

    // The genuine 9.11.90 builds, and is what the record calls those bytes.
    ok(m.build_deb("9.11.90", &m.out("b"), &[]));
    let record = fs::read_to_string(m.cache().join("verified-tarballs.tsv")).unwrap();
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    assert_eq!(record, format!("9.11.90\tenterprise\tamd64\t{sha}\n"));
}
