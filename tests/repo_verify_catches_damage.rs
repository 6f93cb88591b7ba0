//! `mm-pkg repo verify` passes a sound repository and catches a changed pool file, a changed
//! or missing index, a changed rpm and a bad signature, each with exit code 1 and the path.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::gpg::GpgKey;
use common::repo::{packages, repo_add};
use common::{have, mm_pkg, output, run};

/// `repo verify` on `dir` with `key`: (exit code, stderr).
fn verify(dir: &Path, key: &GpgKey) -> (Option<i32>, String) {
    let out = output(
        mm_pkg()
            .args(["repo", "verify"])
            .arg(dir)
            .arg("--key")
            .arg(&key.public_asc),
    );
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn flip_byte(path: &Path) {
    let mut bytes = fs::read(path).unwrap();
    let i = bytes.len() / 2;
    bytes[i] ^= 0x01;
    fs::write(path, bytes).unwrap();
}

/// Something done to a copy of a sound repository.
type Damage = Box<dyn Fn(&Path)>;

#[test]
fn repo_verify_catches_each_kind_of_damage() {
    if !have("gpg") {
        return;
    }
    let key = GpgKey::generate("ed25519", None, &[], "never");
    let (_d, debs) = packages("deb", &["9.11.90"]);
    let (_r, rpms) = packages("rpm", &["9.11.90"]);
    let sound = tempfile::tempdir().unwrap();
    let files = [debs[0].clone(), rpms[0].clone()];
    repo_add(
        sound.path(),
        &files,
        &["--sign-key", key.secret.to_str().unwrap()],
    );
    let (code, err) = verify(sound.path(), &key);
    assert_eq!(
        code,
        Some(0),
        "a sound repository failed verification:\n{err}"
    );

    let binary = "apt/dists/stable/main/binary-amd64";
    let cases: Vec<(&str, Damage, &str)> = vec![
        (
            "changed pool file",
            Box::new(|d: &Path| {
                flip_byte(&d.join("apt/pool/main/m/mattermost/mattermost_9.11.90-1_amd64.deb"))
            }),
            "mattermost_9.11.90-1_amd64.deb",
        ),
        (
            "changed index",
            Box::new(move |d: &Path| flip_byte(&d.join(binary).join("Packages.xz"))),
            "Packages.xz",
        ),
        (
            "missing index",
            Box::new(move |d: &Path| fs::remove_file(d.join(binary).join("Packages.gz")).unwrap()),
            "Packages.gz: missing",
        ),
        (
            "bad InRelease signature",
            Box::new(|d: &Path| {
                let p = d.join("apt/dists/stable/InRelease");
                let t = fs::read_to_string(&p).unwrap();
                fs::write(&p, t.replacen("Label: Mattermost", "Label: Mattermosx", 1)).unwrap();
            }),
            "InRelease",
        ),
        (
            "bad repomd.xml signature",
            Box::new(|d: &Path| {
                let p = d.join("yum/repodata/repomd.xml");
                let t = fs::read_to_string(&p).unwrap();
                fs::write(&p, t.replacen("<revision>", "<revision>9", 1)).unwrap();
            }),
            "repomd.xml.asc",
        ),
        (
            "yum metadata deleted",
            Box::new(|d: &Path| fs::remove_dir_all(d.join("yum/repodata")).unwrap()),
            "mattermost.repo tells dnf",
        ),
        (
            "apt indexes deleted",
            Box::new(|d: &Path| fs::remove_dir_all(d.join("apt/dists")).unwrap()),
            "mattermost.sources tells apt",
        ),
        (
            "changed rpm",
            Box::new(|d: &Path| flip_byte(&d.join("yum/Packages/mattermost-9.11.90-1.x86_64.rpm"))),
            "mattermost-9.11.90-1.x86_64.rpm",
        ),
    ];
    for (what, damage, names) in cases {
        let copy = tempfile::tempdir().unwrap();
        run(Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", sound.path().display()))
            .arg(copy.path()));
        damage(copy.path());
        let (code, err) = verify(copy.path(), &key);
        assert_eq!(code, Some(1), "{what} was not caught:\n{err}");
        assert!(err.contains(names), "{what}: expected `{names}` in:\n{err}");
    }
}
