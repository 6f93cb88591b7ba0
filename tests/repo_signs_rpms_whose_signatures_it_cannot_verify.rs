//! `repo add --sign-key` keeps an rpm's signature only when the repository key verifiably
//! made it over that rpm's header, and made every signature the rpm carries. A packet that
//! merely names the repository key (its issuer fingerprint and key ID) is a forgery as far as
//! rpm is concerned: such an rpm is signed again, and rpmkeys then accepts the repository's
//! copy with the repository key alone.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::crafted::{rpm_main_header, rpm_with_signatures};
use common::gpg::{GpgKey, gpg};
use common::repo::{packages, repo_add};
use common::{have, output, run};
use mm_pkg::rpm::header::tag;

/// A binary detached signature of `data` by `key`, as rpmsign puts one in RSAHEADER or
/// DSAHEADER.
fn signature_by(key: &GpgKey, data: &[u8]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let (input, sig) = (dir.path().join("data"), dir.path().join("data.sig"));
    fs::write(&input, data).unwrap();
    run(gpg(key.home.path(), key.passphrase.as_deref())
        .args(["--digest-algo", "SHA256", "--local-user", &key.fingerprint])
        .arg("--output")
        .arg(&sig)
        .arg("--detach-sign")
        .arg(&input));
    fs::read(sig).unwrap()
}

/// `rpmkeys --checksig` of `rpm` with only `key` imported: (accepted, what it said).
fn checksig(key: &GpgKey, rpm: &Path) -> (bool, String) {
    let db = tempfile::tempdir().unwrap();
    run(Command::new("rpmkeys")
        .arg("--dbpath")
        .arg(db.path())
        .arg("--import")
        .arg(&key.public_asc));
    let out = output(
        Command::new("rpmkeys")
            .arg("--dbpath")
            .arg(db.path())
            .args(["--checksig", "-v"])
            .arg(rpm),
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.success(), text)
}

#[test]
fn an_rpm_whose_signature_only_names_the_repository_key_is_signed_again() {
    if !have("gpg") || !have("rpmkeys") {
        return;
    }
    let key = GpgKey::generate("ed25519", None, &[], "never");
    let other = GpgKey::generate("rsa3072", None, &[], "never");
    let (_keep, rpms) = packages("rpm", &["9.11.90", "9.11.91", "9.11.92"]);
    let work = tempfile::tempdir().unwrap();
    // The repository key's signature over other bytes: it names the key, but does not verify.
    let forged = work.path().join("mattermost-9.11.90-1.x86_64.rpm");
    let elsewhere = signature_by(&key, b"some other header");
    rpm_with_signatures(&rpms[0], &forged, &[(tag::SIG_DSAHEADER, elsewhere)]);
    // A genuine header signature by the repository key, and one by another key beside it.
    let doubled = work.path().join("mattermost-9.11.91-1.x86_64.rpm");
    let header = rpm_main_header(&rpms[1]);
    let both = [
        (tag::SIG_DSAHEADER, signature_by(&key, &header)),
        (tag::SIG_RSAHEADER, signature_by(&other, &header)),
    ];
    rpm_with_signatures(&rpms[1], &doubled, &both);
    // Signed by the repository key alone: kept as it is.
    let genuine = work.path().join("mattermost-9.11.92-1.x86_64.rpm");
    let header = rpm_main_header(&rpms[2]);
    rpm_with_signatures(
        &rpms[2],
        &genuine,
        &[(tag::SIG_DSAHEADER, signature_by(&key, &header))],
    );
    for input in [&forged, &doubled] {
        let (ok, said) = checksig(&key, input);
        assert!(
            !ok,
            "rpmkeys accepts {} as it came:\n{said}",
            input.display()
        );
    }
    assert!(checksig(&key, &genuine).0);

    let repo = tempfile::tempdir().unwrap();
    let files = [forged.clone(), doubled.clone(), genuine.clone()];
    let json = repo_add(
        repo.path(),
        &files,
        &["--sign-key", key.secret.to_str().unwrap(), "--json"],
    );
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    let signed: Vec<&str> = report["signed"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .filter(|s| s.ends_with(".rpm"))
        .collect();
    assert_eq!(
        signed,
        [
            "yum/Packages/mattermost-9.11.90-1.x86_64.rpm",
            "yum/Packages/mattermost-9.11.91-1.x86_64.rpm"
        ],
        "{json}"
    );
    for input in &files {
        let copy = repo
            .path()
            .join("yum/Packages")
            .join(input.file_name().unwrap());
        let (ok, said) = checksig(&key, &copy);
        assert!(
            ok,
            "rpmkeys refuses the repository's copy {}:\n{said}",
            copy.display()
        );
    }
    let kept = repo
        .path()
        .join("yum/Packages/mattermost-9.11.92-1.x86_64.rpm");
    assert_eq!(fs::read(kept).unwrap(), fs::read(&genuine).unwrap());
}
