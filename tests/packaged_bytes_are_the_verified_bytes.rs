//! The bytes that are verified are the bytes that are packaged: a `--tarball` is read once
//! (a FIFO serving other bytes on a second read cannot slip them in), builds sharing a cache
//! never write the same download at once, and the cache's odd states (a `.sig` that is not
//! a signature, nothing cached with `--offline`) say what to do.

mod common;

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::process::Command;
use std::thread;
use std::time::Duration;

use common::fixture::{Spec, write_release};
use common::mirror::{Mirror, build_local, fails, ok, packages_in, text};
use common::server::Fault;
use common::signing::{TestKey, release_key};
use common::{have, run};

/// `O_NONBLOCK` on Linux (x86-64 and arm64).
const O_NONBLOCK: i32 = 0o4000;

#[test]
fn a_fifo_tarball_is_read_once_and_the_signed_bytes_are_packaged() {
    if !have("mkfifo") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let keyring = dir.path().join("test.asc");
    fs::write(&keyring, &release_key().armored_public).unwrap();
    let good = fs::read(write_release(
        &dir.path().join("good"),
        &Spec::new("9.11.90"),
    ))
    .unwrap();
    let evil_spec = Spec {
        pad: 70_000,
        ..Spec::new("9.11.90")
    };
    let evil = fs::read(write_release(&dir.path().join("evil"), &evil_spec)).unwrap();
    assert_ne!(good, evil);

    // Reference: the signed bytes from a plain file.
    let plain = dir
        .path()
        .join("plain")
        .join(Spec::new("9.11.90").tarball_name());
    fs::create_dir_all(plain.parent().unwrap()).unwrap();
    fs::write(&plain, &good).unwrap();
    fs::write(plain.with_extension("gz.sig"), release_key().sign(&good)).unwrap();
    let reference = dir.path().join("reference");
    ok(build_local(&plain, &keyring, &reference));

    // The FIFO serves the signed bytes to the first reader and other bytes to the second.
    let fifo = dir
        .path()
        .join("fifo")
        .join(Spec::new("9.11.90").tarball_name());
    fs::create_dir_all(fifo.parent().unwrap()).unwrap();
    run(Command::new("mkfifo").arg(&fifo));
    fs::write(fifo.with_extension("gz.sig"), release_key().sign(&good)).unwrap();
    let writer_path = fifo.clone();
    // Left blocked on a second open when mm-pkg reads once; the test process ends it.
    thread::spawn(move || {
        let mut pipe = OpenOptions::new().write(true).open(&writer_path).unwrap();
        let _ = pipe.write_all(&good);
        drop(pipe);
        // Wait until that reader is gone (a non-blocking open for writing fails with ENXIO
        // when nobody reads), so the other bytes go to a second reader, not after the first.
        while OpenOptions::new()
            .write(true)
            .custom_flags(O_NONBLOCK)
            .open(&writer_path)
            .is_ok()
        {
            thread::sleep(Duration::from_millis(10));
        }
        let mut pipe = OpenOptions::new().write(true).open(&writer_path).unwrap();
        let _ = pipe.write_all(&evil);
    });
    let out = dir.path().join("from-fifo");
    let result = build_local(&fifo, &keyring, &out);
    let log = text(&result);
    assert!(result.status.success(), "{log}");
    assert!(log.contains("signed by"), "{log}");
    let name = "mattermost_9.11.90-1_amd64.deb";
    assert_eq!(packages_in(&out), [name]);
    assert!(
        fs::read(out.join(name)).unwrap() == fs::read(reference.join(name)).unwrap(),
        "the package from the FIFO is not the package of the signed bytes"
    );
}

#[test]
fn two_builds_sharing_a_cache_both_succeed_and_download_once() {
    let m = Mirror::new();
    let spec = Spec {
        pad: 4 << 20,
        ..Spec::new("9.11.90")
    };
    let bytes = m.publish(&spec, Some(release_key()));
    let path = m.tarball_path(&spec);
    // The first answer is slow, so the second build starts while the first downloads.
    m.server.fault(&path, Fault::Delay(Duration::from_secs(2)));
    m.server.fault(&path, Fault::Delay(Duration::from_secs(2)));
    let spawn = |name: &str| {
        m.command(&[
            "build",
            "9.11.90",
            "--format",
            "deb",
            "-o",
            m.out(name).to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
    };
    let first = spawn("a");
    thread::sleep(Duration::from_millis(300));
    let second = spawn("b");
    for child in [first, second] {
        ok(child.wait_with_output().unwrap());
    }
    for name in ["a", "b"] {
        assert_eq!(
            packages_in(&m.out(name)),
            ["mattermost_9.11.90-1_amd64.deb"]
        );
    }
    let gets = m
        .server
        .hits_to(&path)
        .into_iter()
        .filter(|h| !h.url.ends_with(".sig"))
        .count();
    assert_eq!(gets, 1, "the second build reuses the first one's download");
    let cached = m.cache().join("9.11.90").join(spec.tarball_name());
    assert!(fs::read(cached).unwrap() == bytes);
}

/// `build 9.11.90 --format deb` from the mirror into `m.out(name)`.
fn build_deb(m: &Mirror, name: &str, offline: bool) -> std::process::Output {
    let out = m.out(name);
    let mut args = vec!["build", "9.11.90", "--format", "deb", "-o"];
    args.push(out.to_str().unwrap());
    if offline {
        args.push("--offline");
    }
    m.run(&args)
}

/// Where the cache keeps `spec`'s signature.
fn cached_sig(m: &Mirror, spec: &Spec) -> std::path::PathBuf {
    m.cache()
        .join(&spec.version)
        .join(format!("{}.sig", spec.tarball_name()))
}

#[test]
fn a_cached_sig_that_is_not_a_signature_is_fetched_again() {
    let m = Mirror::new();
    let spec = Spec::new("9.11.90");
    m.publish(&spec, Some(release_key()));
    let build = |name: &str, offline: bool| build_deb(&m, name, offline);
    ok(build("a", false));
    let sig = cached_sig(&m, &spec);
    let served = fs::read(&sig).unwrap();
    fs::write(&sig, "<html>502 Bad Gateway</html>").unwrap();

    let out = build("b", true);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let err = fails(out);
    assert!(
        err.contains(&sig.display().to_string())
            && err.contains("delete it or run without --offline"),
        "{err}"
    );
    assert_eq!(stderr.lines().count(), 1, "one line:\n{stderr}");

    let log = ok(build("c", false));
    assert!(log.contains("fetching it again"), "{log}");
    assert_eq!(fs::read(&sig).unwrap(), served);
    assert_eq!(packages_in(&m.out("c")), ["mattermost_9.11.90-1_amd64.deb"]);
}

#[test]
fn offline_with_an_empty_cache_says_to_run_once_online() {
    let m = Mirror::new();
    let out = m.run(&["build", "9.11.90", "--offline"]);
    let err = fails(out);
    assert!(
        err.contains("not in the cache") && err.contains("run once without --offline"),
        "{err}"
    );
    assert!(!err.contains("--allow-unsigned"), "{err}");
    assert!(m.server.hits().is_empty());
}

#[test]
fn a_cached_sig_by_a_key_that_cannot_count_is_fetched_again_online() {
    let m = Mirror::new();
    let spec = Spec::new("9.11.90");
    let bytes = m.publish(&spec, Some(release_key()));
    let build = |name: &str, offline: bool| build_deb(&m, name, offline);
    ok(build("a", false));
    let sig = cached_sig(&m, &spec);
    let served = fs::read(&sig).unwrap();
    // What the cache holds after upstream re-signed with another key, or after a run that
    // fetched from a mirror signing with its own key: a good signature by an untrusted key.
    let stranger = TestKey::generate("Stranger <s@example.org>");
    fs::write(&sig, stranger.sign(&bytes)).unwrap();

    let err = fails(build("b", true));
    assert!(err.contains("which is not trusted"), "{err}");
    assert!(packages_in(&m.out("b")).is_empty());

    let log = ok(build("c", false));
    assert!(log.contains("fetching it again"), "{log}");
    assert_eq!(fs::read(&sig).unwrap(), served);
    assert_eq!(packages_in(&m.out("c")), ["mattermost_9.11.90-1_amd64.deb"]);
}
