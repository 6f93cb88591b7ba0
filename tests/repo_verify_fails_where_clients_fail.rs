//! `repo verify` fails wherever the clients fail. Each damage below is made to a copy of a
//! sound signed repository, often re-signed by its own key (as a buggy or older writer with
//! the key would leave it), and put to both `repo verify --key` and the real client: apt-get
//! in a Debian 12 root (gpgv), dnf with rpmkeys, gpgv itself. Every one of them passed
//! `repo verify` before (it read the first Filename, ignored by-hash names, SHA512 and the
//! compressed indexes, tried subkeys without their binding, and checked rpms only by file
//! hash); the clients refuse them all. Without `--key`, verify no longer trusts the
//! repository's own `mattermost.asc`.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;

use common::crafted::rpm_with_signatures;
use common::gpg::{GpgKey, gpg};
use common::repo::{apt_client, dnf, dnf_client, packages, repo_add};
use common::signing::{TestKey, armor};
use common::static_files::StaticServer;
use common::{chroot, debian_root_of, have, mm_pkg, output, run};
use mm_pkg::repo::apt::{IndexFile, ReleaseMeta, release};
use pgp::composed::{ArmorOptions, CleartextSignedMessage, SignedPublicKey};
use pgp::ser::Serialize;
use pgp::types::Password;

const BINARY: &str = "apt/dists/stable/main/binary-amd64";

/// `repo verify DIR --key KEY`: (exit code, stderr).
fn verify(dir: &Path, key: &Path) -> (Option<i32>, String) {
    let out = output(
        mm_pkg()
            .args(["repo", "verify"])
            .arg(dir)
            .arg("--key")
            .arg(key),
    );
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Replaces the contents of `web` by those of `sound`.
fn restore(sound: &Path, web: &Path) {
    for e in fs::read_dir(web).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            fs::remove_dir_all(p).unwrap();
        } else {
            fs::remove_file(p).unwrap();
        }
    }
    run(Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", sound.display()))
        .arg(web));
}

/// `apt-get update` from nothing, then `apt-get download mattermost` into an empty directory
/// (apt skips a download it finds there): (both succeeded, what apt said).
fn apt_reads(root: &Path) -> (bool, String) {
    let _ = fs::remove_dir_all(root.join("var/lib/apt/lists"));
    fs::create_dir_all(root.join("var/lib/apt/lists/partial")).unwrap();
    let mut said = String::new();
    let download = "rm -rf /tmp/dl && mkdir /tmp/dl && cd /tmp/dl && apt-get download mattermost";
    for cmd in ["apt-get update", download] {
        let out = chroot(root, &["sh", "-c", cmd]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        said.push_str(&text);
        let failed = !out.status.success() || text.lines().any(|l| l.starts_with("E:"));
        if failed {
            return (false, said);
        }
    }
    (true, said)
}

/// Writes `packages` as the Packages index (plain, .gz, .xz and their by-hash names, each a
/// file of its own) and Release naming them with `sha512` (SHA-512 of each, or a wrong one
/// when false), then signs Release with `key` as `repo add` does (InRelease, Release.gpg).
fn reindex(web: &Path, packages: &str, compressed: Option<&str>, key: &GpgKey, sha512: bool) {
    let dists = web.join("apt/dists/stable");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(compressed.unwrap_or(packages).as_bytes())
        .unwrap();
    let mut xz = Vec::new();
    liblzma::read::XzEncoder::new(compressed.unwrap_or(packages).as_bytes(), 6)
        .read_to_end(&mut xz)
        .unwrap();
    let files = vec![
        IndexFile::new(
            "main/binary-amd64/Packages".into(),
            packages.as_bytes().to_vec(),
        ),
        IndexFile::new("main/binary-amd64/Packages.gz".into(), gz.finish().unwrap()),
        IndexFile::new("main/binary-amd64/Packages.xz".into(), xz),
    ];
    for f in &files {
        let plain = dists.join(&f.path);
        let _ = fs::remove_file(&plain);
        fs::write(&plain, &f.bytes).unwrap();
        for by_hash in f.by_hash_paths() {
            let path = dists.join(by_hash);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            let _ = fs::remove_file(&path);
            fs::write(&path, &f.bytes).unwrap();
        }
    }
    let meta = ReleaseMeta {
        origin: "mm-pkg".into(),
        label: "Mattermost".into(),
        suite: "stable".into(),
        date: 1_764_000_000,
    };
    let mut text = release(&meta, &files);
    if !sha512 {
        // The first hex digit of the first SHA512 line, changed.
        let at = text.find("SHA512:\n").unwrap() + "SHA512:\n ".len();
        let digit = if &text[at..at + 1] == "0" { "1" } else { "0" };
        text.replace_range(at..at + 1, digit);
    }
    fs::write(dists.join("Release"), &text).unwrap();
    for (out, how) in [
        ("InRelease", "--clearsign"),
        ("Release.gpg", "--detach-sign"),
    ] {
        let path = dists.join(out);
        let _ = fs::remove_file(&path);
        run(gpg(key.home.path(), None)
            .args([
                "--armor",
                "--digest-algo",
                "SHA256",
                "--local-user",
                &key.fingerprint,
            ])
            .arg("--output")
            .arg(&path)
            .arg(how)
            .arg(dists.join("Release")));
    }
}

#[test]
fn damage_apt_refuses_is_refused_by_verify_too() {
    if !have("gpg") {
        return;
    }
    let Some(root) = debian_root_of("bookworm") else {
        return;
    };
    let root = root.path();
    let key = GpgKey::generate("ed25519", None, &[], "never");
    let (_keep, debs) = packages("deb", &["9.11.90"]);
    let web = tempfile::tempdir().unwrap();
    let server = StaticServer::start(web.path());
    let args = [
        "--sign-key",
        key.secret.to_str().unwrap(),
        "--base-url",
        &server.base,
    ];
    repo_add(web.path(), &debs, &args);
    let sound = tempfile::tempdir().unwrap();
    restore(web.path(), sound.path());
    apt_client(root, web.path());

    let (code, err) = verify(web.path(), &key.public_asc);
    assert_eq!(code, Some(0), "the sound repository fails verify:\n{err}");
    let (ok, said) = apt_reads(root);
    assert!(ok, "apt refuses the sound repository:\n{said}");

    let packages_text = fs::read_to_string(sound.path().join(BINARY).join("Packages")).unwrap();
    let missing = "Filename: pool/main/m/mattermost/mattermost_9.11.99-1_amd64.deb\n";
    type Damage<'a> = Box<dyn Fn(&Path) + 'a>;
    let cases: Vec<(&str, Damage, &str)> = vec![
        (
            "a second Filename after the first (apt takes the last), re-signed",
            Box::new(|w| {
                let text = packages_text.replacen("\n\n", &format!("\n{missing}\n"), 1);
                reindex(w, &text, None, &key, true);
            }),
            "given twice",
        ),
        (
            "the by-hash copies of every index changed (apt fetches by hash)",
            Box::new(|w| {
                for algo in ["SHA256", "SHA512"] {
                    let dir = w.join(BINARY).join("by-hash").join(algo);
                    for e in fs::read_dir(&dir).unwrap() {
                        let p = e.unwrap().path();
                        let mut bytes = fs::read(&p).unwrap();
                        let i = bytes.len() / 2;
                        bytes[i] ^= 1;
                        fs::remove_file(&p).unwrap();
                        fs::write(&p, bytes).unwrap();
                    }
                }
            }),
            "by-hash",
        ),
        (
            "a wrong SHA512 in Release beside a right SHA256, re-signed",
            Box::new(|w| reindex(w, &packages_text, None, &key, false)),
            "SHA512",
        ),
        (
            "Packages.gz and .xz listing another Filename than Packages, re-signed",
            Box::new(|w| {
                let other = packages_text.replace("Filename: ", "Filename: pool/x/");
                reindex(w, &packages_text, Some(&other), &key, true);
            }),
            "list other packages",
        ),
    ];
    for (case, damage, says) in cases {
        restore(sound.path(), web.path());
        damage(web.path());
        let (code, err) = verify(web.path(), &key.public_asc);
        assert_eq!(code, Some(1), "{case}: verify passed:\n{err}");
        assert!(err.contains(says), "{case}: expected `{says}` in:\n{err}");
        let (ok, said) = apt_reads(root);
        assert!(!ok, "{case}: apt reads it:\n{said}");
    }
}

/// `owner`'s public key also carrying `attacker`'s signing subkey, bound by the attacker
/// only: what an attacker who can write the key file next to the repository would hand out.
fn grafted(owner: &TestKey, attacker: &TestKey) -> SignedPublicKey {
    let mut key = owner.public();
    key.public_subkeys.extend(attacker.public().public_subkeys);
    key
}

#[test]
fn a_signature_by_a_subkey_not_bound_to_the_key_fails_verify_gpgv_apt_and_dnf() {
    if !have("gpgv") || !have("dnf") {
        return;
    }
    let Some(root) = debian_root_of("bookworm") else {
        return;
    };
    let root = root.path();
    let now = common::signing::now() - 100;
    let owner = TestKey::build("Owner <owner@example.org>", now, true);
    let attacker = TestKey::build("Mallory <m@example.org>", now, true);
    let work = tempfile::tempdir().unwrap();
    let secret = work.path().join("owner.secret.asc");
    fs::write(&secret, owner_secret(&owner)).unwrap();
    fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let (_d, debs) = packages("deb", &["9.11.90"]);
    let (_r, rpms) = packages("rpm", &["9.11.90"]);
    let web = tempfile::tempdir().unwrap();
    let server = StaticServer::start(web.path());
    let files = [debs[0].clone(), rpms[0].clone()];
    repo_add(
        web.path(),
        &files,
        &[
            "--sign-key",
            secret.to_str().unwrap(),
            "--base-url",
            &server.base,
        ],
    );
    // The keyring clients and verify are given: the owner's key with the grafted subkey.
    let keyring = work.path().join("keyring.asc");
    fs::write(&keyring, armor(&grafted(&owner, &attacker))).unwrap();
    let keyring_gpg = work.path().join("keyring.gpg");
    fs::write(&keyring_gpg, grafted(&owner, &attacker).to_bytes().unwrap()).unwrap();
    fs::copy(&keyring, web.path().join("mattermost.asc")).unwrap();
    let (code, err) = verify(web.path(), &keyring);
    assert_eq!(code, Some(0), "{err}");

    // The attacker's subkey signs Release, InRelease and repomd.xml.
    let dists = web.path().join("apt/dists/stable");
    let release = fs::read(dists.join("Release")).unwrap();
    fs::write(
        dists.join("Release.gpg"),
        attacker.sign_with_subkey(&release),
    )
    .unwrap();
    let clear = CleartextSignedMessage::sign(
        rand::thread_rng(),
        std::str::from_utf8(&release).unwrap(),
        &attacker_subkey(&attacker),
        &Password::empty(),
    )
    .unwrap()
    .to_armored_string(ArmorOptions::default())
    .unwrap();
    fs::write(dists.join("InRelease"), clear).unwrap();
    let repomd = web.path().join("yum/repodata/repomd.xml");
    let asc = attacker.sign_with_subkey(&fs::read(&repomd).unwrap());
    fs::write(web.path().join("yum/repodata/repomd.xml.asc"), asc).unwrap();

    let (code, err) = verify(web.path(), &keyring);
    assert_eq!(code, Some(1), "verify accepted the grafted subkey:\n{err}");
    assert!(err.contains("no valid binding signature"), "{err}");
    let gpgv = output(
        Command::new("gpgv")
            .arg("--keyring")
            .arg(&keyring_gpg)
            .arg(dists.join("Release.gpg"))
            .arg(dists.join("Release"))
            .env("GNUPGHOME", work.path()),
    );
    assert!(!gpgv.status.success(), "gpgv accepted the grafted subkey");
    apt_client(root, web.path());
    let (ok, said) = apt_reads(root);
    assert!(!ok, "apt accepted the grafted subkey:\n{said}");
    let client = dnf_client(web.path());
    let (ok, said) = dnf(client.path(), &["repoquery", "mattermost"]);
    assert!(!ok, "dnf accepted the grafted subkey:\n{said}");
}

/// The owner's secret key, armored (what `--sign-key` takes).
fn owner_secret(owner: &TestKey) -> String {
    owner
        .secret_key()
        .to_armored_string(ArmorOptions::default())
        .unwrap()
}

/// The attacker's signing subkey.
fn attacker_subkey(attacker: &TestKey) -> pgp::packet::SecretSubkey {
    attacker.secret_key().secret_subkeys[0].key.clone()
}

/// `dnf download mattermost` then `rpmkeys --checksig` of it with `key` alone, as dnf's
/// gpgcheck checks a package before it installs it: (both passed, what they said).
fn dnf_takes(web: &Path, key: &GpgKey) -> (bool, String) {
    let client = dnf_client(web);
    let dest = client.path().join("downloads");
    let (ok, said) = dnf(
        client.path(),
        &[
            "download",
            "--destdir",
            dest.to_str().unwrap(),
            "mattermost",
        ],
    );
    if !ok {
        return (false, said);
    }
    let rpm = fs::read_dir(&dest).unwrap().next().unwrap().unwrap().path();
    let db = tempfile::tempdir().unwrap();
    run(Command::new("rpmkeys")
        .arg("--dbpath")
        .arg(db.path())
        .arg("--import")
        .arg(&key.public_asc));
    let check = output(
        Command::new("rpmkeys")
            .arg("--dbpath")
            .arg(db.path())
            .arg("--checksig")
            .arg(&rpm),
    );
    let text = String::from_utf8_lossy(&check.stdout).into_owned();
    (check.status.success(), said + &text)
}

/// Makes the yum metadata again from the rpms as they are now (createrepo_c) and signs
/// repomd.xml with `key`: what a writer with the key would publish for them.
fn remake_yum_metadata(web: &Path, key: &GpgKey) {
    let yum = web.join("yum");
    fs::remove_dir_all(yum.join("repodata")).unwrap();
    run(Command::new("createrepo_c")
        .args(["--no-database", "--quiet"])
        .arg(&yum));
    let repomd = yum.join("repodata/repomd.xml");
    run(gpg(key.home.path(), None)
        .args([
            "--armor",
            "--digest-algo",
            "SHA256",
            "--local-user",
            &key.fingerprint,
        ])
        .arg("--output")
        .arg(yum.join("repodata/repomd.xml.asc"))
        .arg("--detach-sign")
        .arg(&repomd));
}

#[test]
fn rpms_rpmkeys_refuses_are_refused_by_verify_even_when_the_metadata_names_them() {
    if !have("gpg") || !have("dnf") || !have("rpmkeys") || !have("createrepo_c") {
        return;
    }
    // The repository key signs RSAHEADER; the other key's signature goes beside it in
    // DSAHEADER, which verify read only when there was no RSAHEADER.
    let key = GpgKey::generate("rsa3072", None, &[], "never");
    let other = GpgKey::generate("ed25519", None, &[], "never");
    let (_keep, rpms) = packages("rpm", &["9.11.90"]);
    let web = tempfile::tempdir().unwrap();
    let server = StaticServer::start(web.path());
    let args = [
        "--sign-key",
        key.secret.to_str().unwrap(),
        "--base-url",
        &server.base,
    ];
    repo_add(web.path(), &rpms, &args);
    let sound = tempfile::tempdir().unwrap();
    restore(web.path(), sound.path());
    let rpm = web
        .path()
        .join("yum/Packages/mattermost-9.11.90-1.x86_64.rpm");

    // createrepo_c's metadata for the sound rpm: verify and dnf both take it.
    remake_yum_metadata(web.path(), &key);
    let (code, err) = verify(web.path(), &key.public_asc);
    assert_eq!(code, Some(0), "{err}");
    let (ok, said) = dnf_takes(web.path(), &key);
    assert!(ok, "{said}");

    type Damage<'a> = Box<dyn Fn(&Path) + 'a>;
    let cases: Vec<(&str, Damage, &str)> = vec![
        (
            "a changed byte in the payload, metadata made again",
            Box::new(|rpm| {
                let mut bytes = fs::read(rpm).unwrap();
                let i = bytes.len() - 1000;
                bytes[i] ^= 1;
                fs::write(rpm, bytes).unwrap();
            }),
            "payload",
        ),
        (
            "a second header signature by another key, metadata made again",
            Box::new(|rpm| {
                let header = common::crafted::rpm_main_header(rpm);
                let dir = tempfile::tempdir().unwrap();
                let (data, sig) = (dir.path().join("h"), dir.path().join("h.sig"));
                fs::write(&data, header).unwrap();
                run(gpg(other.home.path(), None)
                    .args([
                        "--digest-algo",
                        "SHA256",
                        "--local-user",
                        &other.fingerprint,
                    ])
                    .arg("--output")
                    .arg(&sig)
                    .arg("--detach-sign")
                    .arg(&data));
                let packet = fs::read(sig).unwrap();
                let copy = dir.path().join("copy.rpm");
                rpm_with_signatures(
                    rpm,
                    &copy,
                    &[(mm_pkg::rpm::header::tag::SIG_DSAHEADER, packet)],
                );
                fs::copy(copy, rpm).unwrap();
            }),
            "not the key given",
        ),
    ];
    for (case, damage, says) in cases {
        restore(sound.path(), web.path());
        damage(&rpm);
        remake_yum_metadata(web.path(), &key);
        let (code, err) = verify(web.path(), &key.public_asc);
        assert_eq!(code, Some(1), "{case}: verify passed:\n{err}");
        assert!(err.contains(says), "{case}: expected `{says}` in:\n{err}");
        let (ok, said) = dnf_takes(web.path(), &key);
        assert!(!ok, "{case}: dnf and rpmkeys take it:\n{said}");
    }
}

#[test]
fn verify_never_trusts_the_repository_own_key() {
    if !have("gpg") || !have("gpgv") {
        return;
    }
    let owner = GpgKey::generate("ed25519", None, &[], "never");
    let attacker = GpgKey::generate("ed25519", None, &[], "never");
    let (_keep, debs) = packages("deb", &["9.11.90"]);
    // What someone who can write the owner's repository directory leaves there: the same
    // packages, signed by their key, with their key as mattermost.asc.
    let repo = tempfile::tempdir().unwrap();
    repo_add(
        repo.path(),
        &debs,
        &["--sign-key", attacker.secret.to_str().unwrap()],
    );

    // Without --key, verify does not answer: it says what it needs.
    let out = output(mm_pkg().args(["repo", "verify"]).arg(repo.path()));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--key"));
    // With the owner's key it fails, as gpgv does with the owner's keyring.
    let (code, err) = verify(repo.path(), &owner.public_asc);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("mattermost.asc: holds"), "{err}");
    let dists = repo.path().join("apt/dists/stable");
    let gpgv = output(
        Command::new("gpgv")
            .arg("--keyring")
            .arg(&owner.public_gpg)
            .arg(dists.join("Release.gpg"))
            .arg(dists.join("Release"))
            .env("GNUPGHOME", owner.home.path()),
    );
    assert!(!gpgv.status.success());
    // --hashes-only checks the rest and says it proved nothing about who signed.
    let out = output(
        mm_pkg()
            .args(["repo", "verify", "--hashes-only"])
            .arg(repo.path()),
    );
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("signatures NOT checked"));
}
