//! Everything `repo add` reads back from the repository directory is untrusted input. A
//! symbolic link planted anywhere inside (the private state, the pool, dists/, repodata/) is
//! refused and nothing outside the directory is read, written or removed; a directory
//! another user owns or may write is refused; a hand-written state never gets a package the
//! key holder did not add published under the key (apt in a Debian root sees none), whether
//! it is written in the current format or in the one the previous version read; and a
//! repository the previous version made (state.json with segments, or inline) moves into
//! records on its next add, its published indexes unchanged.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::gpg::GpgKey;
use common::repo::{apt_client, fresh_update, repo_add, state_json, tiny_deb, tiny_rpms};
use common::static_files::StaticServer;
use common::{chroot, debian_root_of, have, have_root, mm_pkg, output, run};

/// `sha256sum` and metadata of every file and link under `dir`, sorted.
fn snapshot(dir: &Path) -> String {
    run(Command::new("sh").arg("-c").arg(format!(
        "cd {} && find . ! -path ./.mm-pkg/lock -printf '%p %y %m %s\\n' | sort && \
         find . -type f ! -path ./.mm-pkg/lock -exec sha256sum {{}} + | sort -k2",
        dir.display()
    )))
}

/// `mm-pkg repo add DIR FILES ARGS`, which must exit 1; returns stderr.
fn refused(dir: &Path, files: &[PathBuf], args: &[&str]) -> String {
    let out = output(
        mm_pkg()
            .args(["repo", "add"])
            .arg(dir)
            .args(files)
            .args(args)
            .env_remove("MM_PKG_SIGN_KEY"),
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "not refused:\n{stderr}");
    stderr
}

/// A copy of `from` (cp -a) in a new directory.
fn copy_of(from: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    run(Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", from.display()))
        .arg(to.path()));
    to
}

/// Small packages: `tiny` 1.0 and 2.0 as .deb and .rpm.
struct Tiny {
    work: tempfile::TempDir,
    debs: Vec<PathBuf>,
    rpms: Vec<PathBuf>,
}

fn tiny() -> Tiny {
    let work = tempfile::tempdir().unwrap();
    let debs = ["1.0-1", "2.0-1"]
        .iter()
        .map(|v| tiny_deb(work.path(), "tiny", v, ""))
        .collect();
    let rpms = tiny_rpms(work.path(), "tiny", &["1.0", "2.0"]);
    Tiny { work, debs, rpms }
}

#[test]
fn links_planted_anywhere_in_the_repository_are_refused_and_nothing_outside_changes() {
    for tool in ["dpkg-deb", "rpmbuild"] {
        if !have(tool) {
            return;
        }
    }
    let t = tiny();
    let base = tempfile::tempdir().unwrap();
    repo_add(base.path(), &[t.debs[0].clone(), t.rpms[0].clone()], &[]);
    // Each place a link can be planted, as a file or a directory of the repository.
    for planted in [
        ".mm-pkg/state.json",
        ".mm-pkg/lock",
        ".mm-pkg/tmp",
        ".mm-pkg/packages",
        ".mm-pkg/cache",
        "apt/pool/main/t",
        "apt/pool/main/t/tiny/tiny_1.0-1_amd64.deb",
        "apt/dists/stable",
        "apt/dists/stable/main/binary-amd64/by-hash",
        "apt/dists/stable/Release",
        "yum/repodata",
        "yum/Packages",
        "mattermost.sources",
    ] {
        let repo = copy_of(base.path());
        let outside = tempfile::tempdir().unwrap();
        // What the link leads to: a copy of what was there (so that a run following it would
        // find what it expects), next to a file of the victim's.
        let target = outside.path().join("target");
        let path = repo.path().join(planted);
        run(Command::new("cp").arg("-a").arg(&path).arg(&target));
        fs::write(outside.path().join("victim"), "the victim's file").unwrap();
        if path.is_dir() {
            fs::remove_dir_all(&path).unwrap();
            fs::write(target.join(".tmp-victim"), "the victim's file").unwrap();
        } else {
            fs::remove_file(&path).unwrap();
        }
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let before = snapshot(outside.path());

        let stderr = refused(repo.path(), &[t.debs[1].clone(), t.rpms[1].clone()], &[]);
        assert!(
            stderr.contains(planted) && stderr.contains("symbolic link"),
            "{planted}: {stderr}"
        );
        assert_eq!(
            snapshot(outside.path()),
            before,
            "a link at {planted} made the add change files outside the repository"
        );
    }
}

#[test]
fn a_repository_directory_another_user_could_write_is_refused() {
    if !have("dpkg-deb") || !have_root() {
        return;
    }
    let t = tiny();
    let base = tempfile::tempdir().unwrap();
    repo_add(base.path(), &t.debs[..1], &[]);
    type Plant = fn(&Path);
    let cases: [(&str, &str, Plant); 5] = [
        ("DIR writable by others", "mode 0777", |d| {
            fs::set_permissions(d, fs::Permissions::from_mode(0o777)).unwrap()
        }),
        ("DIR writable by its group", "mode 0775", |d| {
            fs::set_permissions(d, fs::Permissions::from_mode(0o775)).unwrap()
        }),
        ("DIR owned by another user", "uid 65534", |d| {
            std::os::unix::fs::chown(d, Some(65534), None).unwrap()
        }),
        (".mm-pkg writable by its group", "mode 0775", |d| {
            fs::set_permissions(d.join(".mm-pkg"), fs::Permissions::from_mode(0o775)).unwrap()
        }),
        ("the pool owned by another user", "uid 65534", |d| {
            std::os::unix::fs::chown(d.join("apt/pool"), Some(65534), None).unwrap()
        }),
    ];
    for (what, says, plant) in cases {
        let repo = copy_of(base.path());
        plant(repo.path());
        let before = snapshot(repo.path());
        let stderr = refused(repo.path(), &t.debs[1..], &[]);
        assert!(stderr.contains(says), "{what}: {stderr}");
        assert_eq!(
            snapshot(repo.path()),
            before,
            "{what}: the add changed files"
        );
    }
}

/// The record files of the repository in `dir`.
fn records(dir: &Path) -> Vec<PathBuf> {
    let out = run(Command::new("find")
        .arg(dir.join(".mm-pkg/packages"))
        .args(["-type", "f", "-name", "*.json"]));
    let mut list: Vec<PathBuf> = out.lines().map(PathBuf::from).collect();
    list.sort();
    list
}

/// The packages apt in `root` knows by the name `name` (`apt-cache policy`).
fn apt_knows(root: &Path, name: &str) -> bool {
    let out = chroot(root, &["apt-cache", "show", name]);
    out.status.success()
        && String::from_utf8_lossy(&out.stdout).contains(&format!("Package: {name}"))
}

/// Plants in the repository `repo` the pool file `deb` and a record of it, as someone who can
/// write the directory but holds no key would: the record is one the reader would make, the
/// state names it (and so can no longer carry the key's signature).
fn plant_record(repo: &Path, deb: &Path, name: &str) {
    let pool = repo.join(format!("apt/pool/main/e/{name}"));
    fs::create_dir_all(&pool).unwrap();
    let file = pool.join(deb.file_name().unwrap());
    fs::copy(deb, &file).unwrap();
    // A record made from a genuine one: the planted package's fields.
    let template = records(repo)
        .into_iter()
        .find(|p| p.to_string_lossy().contains(".deb."))
        .unwrap();
    let mut record: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(template).unwrap()).unwrap();
    let bytes = fs::read(&file).unwrap();
    let hex = |d: &[u8]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
    use sha2::Digest;
    let package = &mut record["package"];
    package["name"] = name.into();
    package["version"] = "6.6-6".into();
    let location = format!(
        "pool/main/e/{name}/{}",
        deb.file_name().unwrap().to_string_lossy()
    );
    package["location"] = location.clone().into();
    package["digests"] = serde_json::json!({
        "size": bytes.len(),
        "md5": hex(&md5::Md5::digest(&bytes)),
        "sha256": hex(&sha2::Sha256::digest(&bytes)),
        "sha512": hex(&sha2::Sha512::digest(&bytes)),
    });
    package["control"] = serde_json::json!([
        ["Package", name],
        ["Version", "6.6-6"],
        ["Architecture", "amd64"],
        ["Maintainer", "Mallory <m@example.org>"],
        ["Description", "planted"],
    ]);
    let text = serde_json::to_string_pretty(&record).unwrap() + "\n";
    let sha = hex(&sha2::Sha256::digest(text.as_bytes()));
    let pool_path = format!("apt/{location}");
    let rel = format!(".mm-pkg/packages/{pool_path}.{}.json", &sha[..16]);
    fs::create_dir_all(repo.join(&rel).parent().unwrap()).unwrap();
    fs::write(repo.join(&rel), &text).unwrap();
    let mut state = state_json(repo);
    state["packages"][&pool_path] = sha.into();
    fs::write(
        repo.join(".mm-pkg/state.json"),
        serde_json::to_string_pretty(&state).unwrap() + "\n",
    )
    .unwrap();
}

/// The previous version's state (every package inline) for the repository `repo`, from its
/// records, with `extra` packages (record JSON) added.
fn inline_legacy_state(repo: &Path, extra: &[serde_json::Value]) -> serde_json::Value {
    let state = state_json(repo);
    let (mut deb, mut rpm) = (Vec::new(), Vec::new());
    let all = records(repo)
        .into_iter()
        .map(|p| {
            serde_json::from_str::<serde_json::Value>(&fs::read_to_string(p).unwrap()).unwrap()
        })
        .chain(extra.iter().cloned());
    for record in all {
        let mut stored = serde_json::json!({ "info": record["package"] });
        for field in ["component", "input_sha256"] {
            if let Some(v) = record.get(field) {
                stored[field] = v.clone();
            }
        }
        match record["format"].as_str().unwrap() {
            "deb" => deb.push(stored),
            _ => rpm.push(stored),
        }
    }
    serde_json::json!({
        "settings": {
            "suite": state["suite"], "origin": state["origin"],
            "label": state["label"], "base_url": state["base_url"],
        },
        "deb": deb,
        "rpm": rpm,
    })
}

/// Replaces the state of `repo` by `legacy` (the previous version's state.json), with no
/// records.
fn write_legacy(repo: &Path, legacy: &serde_json::Value) {
    fs::remove_dir_all(repo.join(".mm-pkg")).unwrap();
    fs::create_dir_all(repo.join(".mm-pkg")).unwrap();
    fs::write(
        repo.join(".mm-pkg/state.json"),
        serde_json::to_vec(legacy).unwrap(),
    )
    .unwrap();
}

#[test]
fn a_hand_written_state_never_gets_a_package_published_under_the_key() {
    for tool in ["gpg", "dpkg-deb", "rpmbuild"] {
        if !have(tool) {
            return;
        }
    }
    let Some(root) = debian_root_of("bookworm") else {
        return;
    };
    let root = root.path();
    let key = GpgKey::generate("ed25519", None, &[], "never");
    let t = tiny();
    let work = tempfile::tempdir().unwrap();
    let evil = tiny_deb(work.path(), "evil", "6.6-6", "");
    let web = tempfile::tempdir().unwrap();
    let server = StaticServer::start(web.path());
    let signed = [
        "--sign-key",
        key.secret.to_str().unwrap(),
        "--base-url",
        &server.base,
    ];
    let sound = tempfile::tempdir().unwrap();
    repo_add(
        sound.path(),
        &[t.debs[0].clone(), t.rpms[0].clone()],
        &signed,
    );
    let serve = |repo: &Path| {
        let _ = fs::remove_dir_all(web.path());
        run(Command::new("cp").arg("-a").arg(repo).arg(web.path()));
    };
    serve(sound.path());
    apt_client(root, web.path());
    let (ok, text) = fresh_update(root);
    assert!(
        ok && apt_knows(root, "tiny") && !apt_knows(root, "evil"),
        "{text}"
    );

    // 1. A record planted and named in the state (which the planter cannot sign): the
    // honest signed add refuses, and apt never sees the package.
    let repo = copy_of(sound.path());
    plant_record(repo.path(), &evil, "evil");
    let stderr = refused(repo.path(), &t.debs[1..], &signed);
    assert!(
        stderr.contains("not signed by the repository's key"),
        "{stderr}"
    );
    serve(repo.path());
    let (ok, text) = fresh_update(root);
    assert!(ok && !apt_knows(root, "evil"), "{text}");

    // 2. A record planted but not named in the signed state: ignored, removed, unpublished.
    let repo = copy_of(sound.path());
    let state = fs::read(repo.path().join(".mm-pkg/state.json")).unwrap();
    plant_record(repo.path(), &evil, "evil");
    fs::write(repo.path().join(".mm-pkg/state.json"), &state).unwrap();
    repo_add(repo.path(), &t.debs[1..], &signed);
    assert!(
        !records(repo.path())
            .iter()
            .any(|p| p.to_string_lossy().contains("evil"))
    );
    serve(repo.path());
    let (ok, text) = fresh_update(root);
    assert!(
        ok && apt_knows(root, "tiny") && !apt_knows(root, "evil"),
        "{text}"
    );

    // 3. The state in the form the previous version wrote (every package inline), with the
    // planted package: its packages must be what the signed indexes list, so it is refused.
    let repo = copy_of(sound.path());
    plant_record(repo.path(), &evil, "evil");
    let planted = records(repo.path())
        .into_iter()
        .find(|p| p.to_string_lossy().contains("evil"))
        .map(|p| serde_json::from_str(&fs::read_to_string(p).unwrap()).unwrap())
        .unwrap();
    let genuine = copy_of(sound.path());
    write_legacy(
        repo.path(),
        &inline_legacy_state(genuine.path(), &[planted]),
    );
    let stderr = refused(repo.path(), &t.debs[1..], &signed);
    assert!(
        stderr.contains("names other .deb packages than apt/dists/stable/InRelease"),
        "{stderr}"
    );
    serve(repo.path());
    let (ok, text) = fresh_update(root);
    assert!(ok && !apt_knows(root, "evil"), "{text}");
}

#[test]
fn a_record_that_breaks_a_stanza_is_refused_in_an_unsigned_repository_too() {
    if !have("dpkg-deb") {
        return;
    }
    let t = tiny();
    let repo = tempfile::tempdir().unwrap();
    repo_add(repo.path(), &t.debs[..1], &[]);
    // Whoever can write .mm-pkg edits the record (and the state's hash of it) so that its
    // description ends the stanza and starts another.
    let path = records(repo.path()).remove(0);
    let mut record: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    record["package"]["control"][4][1] =
        "tiny\n\nPackage: evil\nVersion: 6.6-6\nArchitecture: amd64\nFilename: x.deb".into();
    let text = serde_json::to_string_pretty(&record).unwrap();
    use sha2::Digest;
    let sha: String = sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    fs::write(&path, &text).unwrap();
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let stem = &name[..name.len() - ".0123456789abcdef.json".len()];
    fs::rename(
        &path,
        path.with_file_name(format!("{stem}.{}.json", &sha[..16])),
    )
    .unwrap();
    let mut state = state_json(repo.path());
    let key = state["packages"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    state["packages"][&key] = sha.into();
    fs::write(
        repo.path().join(".mm-pkg/state.json"),
        serde_json::to_string_pretty(&state).unwrap(),
    )
    .unwrap();
    let stderr = refused(repo.path(), &t.debs[1..], &[]);
    assert!(
        stderr.contains("would not read back as one field"),
        "{stderr}"
    );
    let packages = fs::read_to_string(
        repo.path()
            .join("apt/dists/stable/main/binary-amd64/Packages"),
    )
    .unwrap();
    assert!(!packages.contains("evil"));
}

#[test]
fn a_replaced_pool_file_is_refused_before_it_is_signed_again() {
    if !have("dpkg-deb") || !have("gpg") {
        return;
    }
    let key = GpgKey::generate("ed25519", None, &[], "never");
    let signed = ["--sign-key", key.secret.to_str().unwrap()];
    let t = tiny();
    let work = tempfile::tempdir().unwrap();
    let other = tiny_deb(work.path(), "tiny", "1.0-1", " with other contents");
    // Unsigned first: signing it later checks every record against its pool file, whose
    // package here is another one than the state says.
    let repo = tempfile::tempdir().unwrap();
    repo_add(repo.path(), &t.debs[..1], &[]);
    let pool = repo
        .path()
        .join("apt/pool/main/t/tiny/tiny_1.0-1_amd64.deb");
    fs::copy(&other, &pool).unwrap();
    // Signing packages no key signed takes the operator's word, once.
    let stderr = refused(repo.path(), &t.debs[1..], &signed);
    assert!(stderr.contains("pass --first-signing once"), "{stderr}");
    let first = [signed[0], signed[1], "--first-signing"];
    let stderr = refused(repo.path(), &t.debs[1..], &first);
    assert!(
        stderr.contains("is not the package the repository's state says"),
        "{stderr}"
    );
    // With its own file back, the repository is signed.
    fs::copy(&t.debs[0], &pool).unwrap();
    repo_add(repo.path(), &t.debs[1..], &first);
    run(mm_pkg()
        .args(["repo", "verify"])
        .arg(repo.path())
        .arg("--key")
        .arg(&key.public_asc));
    // The flag is for that one time: kept in a pipeline, it is refused.
    let stderr = refused(repo.path(), &t.rpms[..1], &first);
    assert!(stderr.contains("drop the flag"), "{stderr}");
}

/// A signed repository whose signatures someone removed, with an unsigned state naming a
/// planted package: the next signed add refuses, with the key file there (the state lies)
/// and without it (it looks unsigned: signing it takes --first-signing).
#[test]
fn a_repository_stripped_of_its_signatures_is_not_signed_again_blindly() {
    if !have("dpkg-deb") || !have("gpg") || !have("rpmbuild") {
        return;
    }
    let key = GpgKey::generate("ed25519", None, &[], "never");
    let signed = ["--sign-key", key.secret.to_str().unwrap()];
    let t = tiny();
    let work = tempfile::tempdir().unwrap();
    let evil = tiny_deb(work.path(), "evil", "6.6-6", "");
    let repo = tempfile::tempdir().unwrap();
    repo_add(
        repo.path(),
        &[t.debs[0].clone(), t.rpms[0].clone()],
        &signed,
    );
    plant_record(repo.path(), &evil, "evil");
    let mut state = state_json(repo.path());
    state["keys"] = serde_json::json!([]);
    fs::write(
        repo.path().join(".mm-pkg/state.json"),
        serde_json::to_string_pretty(&state).unwrap() + "\n",
    )
    .unwrap();
    for sig in [
        "apt/dists/stable/InRelease",
        "apt/dists/stable/Release.gpg",
        "yum/repodata/repomd.xml.asc",
    ] {
        fs::remove_file(repo.path().join(sig)).unwrap();
    }
    let before = snapshot(repo.path());
    let stderr = refused(repo.path(), &t.debs[1..], &signed);
    assert!(
        stderr.contains("says the repository is unsigned, but mattermost.asc is there"),
        "{stderr}"
    );
    fs::remove_file(repo.path().join("mattermost.asc")).unwrap();
    let before_key = snapshot(repo.path());
    let stderr = refused(repo.path(), &t.debs[1..], &signed);
    assert!(stderr.contains("pass --first-signing once"), "{stderr}");
    assert_eq!(
        snapshot(repo.path()),
        before_key,
        "a refused add changed files"
    );
    assert_ne!(before, before_key);
}

/// A repository signed by a new key holding `tiny` 1.0 as .deb and .rpm, its base URL
/// https://packages.example.org/mm (None when gpg, dpkg-deb or rpmbuild is missing).
fn signed_mixed_repo() -> Option<(GpgKey, Tiny, tempfile::TempDir)> {
    for tool in ["gpg", "dpkg-deb", "rpmbuild"] {
        if !have(tool) {
            return None;
        }
    }
    let key = GpgKey::generate("ed25519", None, &[], "never");
    let t = tiny();
    let repo = tempfile::tempdir().unwrap();
    repo_add(
        repo.path(),
        &[t.debs[0].clone(), t.rpms[0].clone()],
        &[
            "--sign-key",
            key.secret.to_str().unwrap(),
            "--base-url",
            "https://packages.example.org/mm",
        ],
    );
    Some((key, t, repo))
}

/// The state of the previous version is unsigned: whoever can write the directory can write
/// one. In a signed repository it must describe exactly what the signed indexes list, under
/// the signed Release's settings; it cannot withdraw packages, move the suite, remove live
/// pool files or send clients to another host.
#[test]
fn a_previous_version_state_cannot_withdraw_move_remove_or_redirect() {
    let Some((key, t, sound)) = signed_mixed_repo() else {
        return;
    };
    let signed = ["--sign-key", key.secret.to_str().unwrap()];
    let genuine = inline_legacy_state(sound.path(), &[]);
    type Change = fn(&mut serde_json::Value);
    let cases: [(&str, Change, &str); 5] = [
        (
            "every package withdrawn",
            |s| {
                s["deb"] = serde_json::json!([]);
                s["rpm"] = serde_json::json!([]);
            },
            "names other .deb packages",
        ),
        (
            "the rpm withdrawn",
            |s| s["rpm"] = serde_json::json!([]),
            "names other .rpm packages",
        ),
        (
            "another suite",
            |s| s["settings"]["suite"] = "evil".into(),
            "but the repository publishes suite `stable`",
        ),
        (
            "another label",
            |s| s["settings"]["label"] = "Evil".into(),
            "says `Label: Evil`",
        ),
        (
            "another host",
            |s| s["settings"]["base_url"] = "https://evil.example.net".into(),
            "confirm it once with --base-url https://evil.example.net",
        ),
    ];
    for (what, change, says) in cases {
        let repo = copy_of(sound.path());
        let mut legacy = genuine.clone();
        change(&mut legacy);
        write_legacy(repo.path(), &legacy);
        let before = snapshot(repo.path());
        eprintln!("case: {what}");
        let stderr = refused(repo.path(), &t.debs[1..], &signed);
        assert!(stderr.contains(says), "{what}: {stderr}");
        assert_eq!(snapshot(repo.path()), before, "{what}: files changed");
    }

    // The signed index of one format deleted, and a state naming none of its packages: the
    // pool files that format still has are what the index vouched for.
    for (gone, keep, format) in [("yum/repodata", "deb", "rpm"), ("apt/dists", "rpm", "deb")] {
        let repo = copy_of(sound.path());
        let mut legacy = genuine.clone();
        legacy[format] = serde_json::json!([]);
        write_legacy(repo.path(), &legacy);
        fs::remove_dir_all(repo.path().join(gone)).unwrap();
        let before = snapshot(repo.path());
        let stderr = refused(repo.path(), &t.debs[1..], &signed);
        assert!(
            stderr.contains(&format!("though the repository holds .{format} files")),
            "{gone} deleted, only .{keep} named: {stderr}"
        );
        assert_eq!(snapshot(repo.path()), before, "{gone}: files changed");
    }

    // A segmented state whose interrupted run was to remove a live pool file.
    let repo = copy_of(sound.path());
    write_segmented_legacy(repo.path());
    let path = repo.path().join(".mm-pkg/state.json");
    let mut state: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    let live = "apt/pool/main/t/tiny/tiny_1.0-1_amd64.deb";
    state["removing"] = serde_json::json!([live]);
    fs::write(&path, serde_json::to_vec(&state).unwrap()).unwrap();
    let stderr = refused(repo.path(), &t.debs[1..], &signed);
    assert!(
        stderr.contains("both as a package and as a pool file to remove"),
        "{stderr}"
    );
    assert!(repo.path().join(live).exists());

    // The genuine state, its base URL confirmed, moves into records.
    let repo = copy_of(sound.path());
    write_legacy(repo.path(), &genuine);
    repo_add(
        repo.path(),
        &t.debs[1..],
        &[
            signed[0],
            signed[1],
            "--base-url",
            "https://packages.example.org/mm",
        ],
    );
    assert_eq!(
        state_json(repo.path())["packages"]
            .as_object()
            .unwrap()
            .len(),
        3
    );
}

/// A state in the current format, unsigned but naming the repository's key, that holds no
/// package, names every pool file to remove and points at another host is refused before
/// anything changes: whether the state holds packages or not, it is checked against the
/// repository's signed indexes.
#[test]
fn an_unsigned_state_naming_the_key_withdraws_and_redirects_nothing() {
    let Some((key, t, repo)) = signed_mixed_repo() else {
        return;
    };
    let signed = ["--sign-key", key.secret.to_str().unwrap()];
    let mut state = state_json(repo.path());
    let pool: Vec<String> = state["packages"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(pool.len(), 2);
    state["removing"] = serde_json::json!(pool);
    state["packages"] = serde_json::json!({});
    state["published"] = serde_json::json!({});
    state["base_url"] = "https://evil.example.net/mm".into();
    fs::write(
        repo.path().join(".mm-pkg/state.json"),
        serde_json::to_string_pretty(&state).unwrap() + "\n",
    )
    .unwrap();
    let before = snapshot(repo.path());
    // Refused both with a package to add and with a file that is no package.
    let junk = t.work.path().join("junk.deb");
    fs::write(&junk, b"junk\n").unwrap();
    for input in [&t.debs[1], &junk] {
        let stderr = refused(repo.path(), std::slice::from_ref(input), &signed);
        assert!(stderr.contains("state.json"), "{stderr}");
        assert_eq!(
            snapshot(repo.path()),
            before,
            "{}: files changed",
            input.display()
        );
    }
    for path in &pool {
        assert!(repo.path().join(path).is_file(), "{path} was removed");
    }
}

/// In an unsigned repository the state is the only record of what was published before: what
/// it names as the previous generation's index files is removed, so it may name nothing else
/// (not the state, not the key file, not a live pool file). Pool files and the lock another
/// user could write are refused.
#[test]
fn a_state_or_pool_file_others_could_change_never_removes_or_publishes() {
    if !have("dpkg-deb") || !have("rpmbuild") {
        return;
    }
    let t = tiny();
    let sound = tempfile::tempdir().unwrap();
    repo_add(sound.path(), &[t.debs[0].clone(), t.rpms[0].clone()], &[]);
    let live = "apt/pool/main/t/tiny/tiny_1.0-1_amd64.deb";
    for doomed in [
        ".mm-pkg/state.json",
        "mattermost.sources",
        live,
        "../outside",
    ] {
        let repo = copy_of(sound.path());
        let mut state = state_json(repo.path());
        state["published"]["previous"] = serde_json::json!([doomed]);
        fs::write(
            repo.path().join(".mm-pkg/state.json"),
            serde_json::to_string_pretty(&state).unwrap() + "\n",
        )
        .unwrap();
        let before = snapshot(repo.path());
        let stderr = refused(repo.path(), &t.debs[1..], &[]);
        assert!(
            stderr.contains("no index file mm-pkg writes"),
            "{doomed}: {stderr}"
        );
        assert_eq!(snapshot(repo.path()), before, "{doomed}: files changed");
    }
    for (what, rel) in [("a pool file", live), ("the lock", ".mm-pkg/lock")] {
        let repo = copy_of(sound.path());
        let path = repo.path().join(rel);
        if !path.exists() {
            fs::write(&path, b"").unwrap();
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
        let stderr = refused(repo.path(), &t.debs[1..], &[]);
        assert!(
            stderr.contains("other users can write to it"),
            "{what}: {stderr}"
        );
    }
}

/// `--changes FILE` replaces a link at FILE instead of writing through it; a
/// SOURCE_DATE_EPOCH ahead of the clock (a Release apt calls not valid yet) is refused.
#[test]
fn the_change_list_never_writes_through_a_link_and_future_dates_are_refused() {
    if !have("dpkg-deb") {
        return;
    }
    let t = tiny();
    let repo = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim");
    fs::write(&victim, b"precious\n").unwrap();
    let list = outside.path().join("changes.txt");
    std::os::unix::fs::symlink(&victim, &list).unwrap();
    repo_add(
        repo.path(),
        &t.debs[..1],
        &["--changes", list.to_str().unwrap()],
    );
    assert_eq!(fs::read(&victim).unwrap(), b"precious\n");
    assert!(!fs::symlink_metadata(&list).unwrap().is_symlink());
    assert!(fs::read_to_string(&list).unwrap().contains("pool "));

    // A change list that could not be written is refused before the repository changes: the
    // next run's list would not name what this one published.
    let before = snapshot(repo.path());
    for (what, path) in [
        ("a directory", outside.path().to_path_buf()),
        (
            "in a missing directory",
            outside.path().join("missing/changes.txt"),
        ),
    ] {
        let stderr = refused(
            repo.path(),
            &t.debs[1..],
            &["--changes", path.to_str().unwrap()],
        );
        assert!(stderr.contains("--changes"), "{what}: {stderr}");
        assert_eq!(
            snapshot(repo.path()),
            before,
            "{what}: the repository changed"
        );
    }

    let future = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 86_400;
    let out = output(
        mm_pkg()
            .args(["repo", "add"])
            .arg(repo.path())
            .args(&t.debs[1..])
            .env("SOURCE_DATE_EPOCH", future.to_string())
            .env_remove("MM_PKG_SIGN_KEY"),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("ahead of this machine's clock"),
        "{stderr}"
    );
}

/// Writes the previous version's segmented state for the repository `repo` (from its
/// records): state.json naming, per index, segment files of its packages, in the format that
/// version wrote (magic, the index texts' lengths and SHA-256, the packages' length, a CRC-32,
/// the texts, the packages as JSON).
fn write_segmented_legacy(repo: &Path) {
    use sha2::Digest;
    let inline = inline_legacy_state(repo, &[]);
    let dir = repo.join(".mm-pkg/segments");
    let mut families = Vec::new();
    fs::remove_dir_all(repo.join(".mm-pkg")).unwrap();
    fs::create_dir_all(&dir).unwrap();
    for (format, texts) in [("deb", 1u8), ("rpm", 3u8)] {
        let packages = inline[format].as_array().unwrap();
        if packages.is_empty() {
            continue;
        }
        let json = serde_json::to_vec(packages).unwrap();
        let text: Vec<u8> = format!("index text of {format}\n").into_bytes();
        let mut bytes = b"mm-pkg segment 1\n".to_vec();
        bytes.push(texts);
        for _ in 0..texts {
            bytes.extend_from_slice(&(text.len() as u64).to_le_bytes());
            bytes.extend_from_slice(&sha2::Sha256::digest(&text));
        }
        bytes.extend_from_slice(&(json.len() as u64).to_le_bytes());
        let mut crc = crc32fast::Hasher::new();
        crc.update(&bytes);
        for _ in 0..texts {
            crc.update(&text);
        }
        bytes.extend_from_slice(&crc.finalize().to_le_bytes());
        for _ in 0..texts {
            bytes.extend_from_slice(&text);
        }
        bytes.extend_from_slice(&json);
        let id: String = sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        fs::write(dir.join(&id), &bytes).unwrap();
        let key =
            |p: &serde_json::Value| serde_json::json!([p["info"]["name"], p["info"]["location"]]);
        families.push(serde_json::json!({
            "format": format,
            "component": if format == "deb" { "main" } else { "" },
            "arch": if format == "deb" { "amd64" } else { "" },
            "segments": [{
                "id": id,
                "first": key(&packages[0]),
                "last": key(&packages[packages.len() - 1]),
                "count": packages.len(),
            }],
        }));
    }
    let state = serde_json::json!({
        "settings": inline["settings"],
        "renderer": "0123456789abcdef0123456789abcdef",
        "families": families,
    });
    fs::write(
        repo.join(".mm-pkg/state.json"),
        serde_json::to_vec(&state).unwrap(),
    )
    .unwrap();
    fs::write(repo.join(".mm-pkg/index-chunks"), b"an old cache").unwrap();
}

#[test]
fn a_repository_the_previous_version_made_moves_into_records_on_its_next_add() {
    for tool in ["gpg", "dpkg-deb", "rpmbuild"] {
        if !have(tool) {
            return;
        }
    }
    let key = GpgKey::generate("rsa3072", None, &[], "never");
    let signed = ["--sign-key", key.secret.to_str().unwrap()];
    let t = tiny();
    let made = tempfile::tempdir().unwrap();
    repo_add(
        made.path(),
        &[t.debs[0].clone(), t.rpms[0].clone()],
        &signed,
    );
    let grown = copy_of(made.path());
    repo_add(
        grown.path(),
        &[t.debs[1].clone(), t.rpms[1].clone()],
        &signed,
    );

    type Write = fn(&Path);
    let forms: [(&str, Write); 2] = [
        ("segments", write_segmented_legacy),
        ("inline", |repo| {
            write_legacy(repo, &inline_legacy_state(repo, &[]))
        }),
    ];
    for (form, write) in forms {
        for sign in [true, false] {
            let (base, args): (&Path, &[&str]) = match sign {
                true => (made.path(), &signed),
                false => (made.path(), &[]),
            };
            let repo = copy_of(base);
            if !sign {
                // An unsigned repository of the previous version.
                repo_add_unsigned_copy(repo.path(), &t);
            }
            write(repo.path());
            repo_add(repo.path(), &[t.debs[1].clone(), t.rpms[1].clone()], args);
            let state = state_json(repo.path());
            assert_eq!(
                state["packages"].as_object().unwrap().len(),
                4,
                "{form}: {state:#}"
            );
            assert!(!repo.path().join(".mm-pkg/segments").exists(), "{form}");
            assert!(!repo.path().join(".mm-pkg/index-chunks").exists(), "{form}");
            let trust: Vec<&std::ffi::OsStr> = match sign {
                true => vec!["--key".as_ref(), key.public_asc.as_os_str()],
                false => vec!["--hashes-only".as_ref()],
            };
            run(mm_pkg()
                .args(["repo", "verify"])
                .arg(repo.path())
                .args(trust));
            if sign {
                // The same published files as a repository that never left this version.
                for index in [
                    "apt/dists/stable/main/binary-amd64/Packages",
                    "apt/dists/stable/InRelease",
                    "yum/repodata/repomd.xml",
                ] {
                    assert!(
                        fs::read(repo.path().join(index)).unwrap()
                            == fs::read(grown.path().join(index)).unwrap(),
                        "{form}: {index} differs"
                    );
                }
            }
        }
    }
}

/// Replaces the signed repository at `repo` by an unsigned one of the same packages.
fn repo_add_unsigned_copy(repo: &Path, t: &Tiny) {
    for entry in fs::read_dir(repo).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            fs::remove_dir_all(path).unwrap();
        } else {
            fs::remove_file(path).unwrap();
        }
    }
    repo_add(repo, &[t.debs[0].clone(), t.rpms[0].clone()], &[]);
}
