//! Attacks found by an independent review, each refused (or no longer harmful) now.

mod common;

use std::fs;

use common::fixture::{Spec, write_release};
use common::mirror::{Mirror, fails, ok, packages_in};
use common::signing::release_key;
use common::{mm_pkg, output};

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

/// dpkg and rpm keep a symbolic link to a directory that a later package ships as a
/// directory, and write that package's files through it. A release whose link resolves to
/// the directory holding a packaging path (the top, where the data-directory links are, or
/// `client/`, where the service account's `client/plugins` is) lets the next release write
/// into the admin's data or the service account's directory as root (`cl -> client`, then
/// `cl/plugins/x/...`): such a link is refused, whichever spelling or chain reaches it.
#[test]
fn links_to_directories_holding_packaging_paths_are_refused() {
    let cases: [(&[(&str, &str)], &str); 4] = [
        (&[("cl", "client")], "`mattermost/cl` is a link to `client`"),
        (
            &[("bin/top", "..")],
            "`mattermost/bin/top` is a link to `..`",
        ),
        (
            &[("bin/c", "../client/./")],
            "`mattermost/bin/c` is a link to `../client/./`",
        ),
        (
            &[("i18n/b", "../client"), ("bin/a", "../i18n/b")],
            "`mattermost/bin/a` is a link to `../i18n/b`",
        ),
    ];
    for (links, needle) in cases {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = Spec::new("9.11.90");
        spec.extra_links = links
            .iter()
            .map(|(p, t)| (p.to_string(), t.to_string(), false))
            .collect();
        let tarball = write_release(&dir.path().join("src"), &spec);
        let out = dir.path().join("out");
        let result = build_unverified(&tarball, &out);
        let text = fails(result);
        assert!(text.contains(needle), "expected `{needle}` in:\n{text}");
        assert!(
            text.contains("a later release's files would be written through it"),
            "{text}"
        );
        assert!(packages_in(&out).is_empty());
    }
}

/// Builds the intact 9.11.90 from a local tarball pinned by `--sha256` (so it is verified and
/// recorded), with `cache` as the cache directory and `env` added; returns the output.
fn build_with_cache(
    dir: &std::path::Path,
    cache: Option<&std::path::Path>,
    env: &[(&str, Option<&std::path::Path>)],
) -> std::process::Output {
    let tarball = write_release(&dir.join("src"), &Spec::new("9.11.90"));
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
        fs::read(&tarball).unwrap(),
    ));
    let mut cmd = mm_pkg();
    cmd.args(["build", "9.11.90", "--format", "deb", "--sha256", &sha])
        .arg("--tarball")
        .arg(&tarball)
        .arg("-o")
        .arg(dir.join("out"));
    if let Some(cache) = cache {
        cmd.arg("--cache-dir").arg(cache);
    }
    for (name, value) in env {
        match value {
            Some(v) => cmd.env(name, v),
            None => cmd.env_remove(name),
        };
    }
    output(&mut cmd)
}

/// Another local user who owns the cache directory (say, the one created in /tmp when
/// there is no HOME) plants symlinks named like the cache's files: mm-pkg running as root
/// appended its record to, wrote its signature over, or truncated whatever they point at.
/// A cache directory that another user owns, or that others may write to, is refused, and
/// the target is untouched.
#[test]
fn a_cache_directory_another_user_controls_is_refused() {
    if !common::have_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    fs::write(&victim, "").unwrap();
    let cache = dir.path().join("cache");
    fs::create_dir(&cache).unwrap();
    std::os::unix::fs::symlink(&victim, cache.join("verified-tarballs.tsv")).unwrap();
    common::run(
        std::process::Command::new("chown")
            .args(["-h", "nobody"])
            .arg(&cache),
    );
    let err = fails(build_with_cache(dir.path(), Some(&cache), &[]));
    assert!(err.contains("is owned by another user"), "{err}");
    assert_eq!(fs::read_to_string(&victim).unwrap(), "", "written through");

    // Owned by root but writable by everyone, like /tmp itself.
    common::run(
        std::process::Command::new("chown")
            .args(["-h", "root"])
            .arg(&cache),
    );
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&cache, fs::Permissions::from_mode(0o1777)).unwrap();
    let err = fails(build_with_cache(dir.path(), Some(&cache), &[]));
    assert!(err.contains("other users can write to it"), "{err}");
    assert_eq!(fs::read_to_string(&victim).unwrap(), "", "written through");

    // A link to the cache planted by another user is refused even when it leads to a
    // directory of ours.
    let ours = dir.path().join("ours");
    fs::create_dir(&ours).unwrap();
    let planted = dir.path().join("planted");
    std::os::unix::fs::symlink(&ours, &planted).unwrap();
    common::run(
        std::process::Command::new("chown")
            .args(["-h", "nobody"])
            .arg(&planted),
    );
    let err = fails(build_with_cache(dir.path(), Some(&planted), &[]));
    assert!(err.contains("is owned by another user"), "{err}");
}

/// Without HOME and XDG_CACHE_HOME the cache is created for this user alone (mode 0700),
/// so that nobody else can plant files in it later.
#[test]
fn a_cache_directory_mm_pkg_creates_is_private() {
    let dir = tempfile::tempdir().unwrap();
    let xdg = dir.path().join("xdg");
    ok(build_with_cache(
        dir.path(),
        None,
        &[("XDG_CACHE_HOME", Some(&xdg))],
    ));
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(xdg.join("mm-pkg"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700, "{mode:o}");
}

/// `tarball` rewritten with the entry at `path` holding `size` zero bytes instead.
/// `build 9.11.90 --format deb --insecure-skip-verify` of `tarball` into `out`: these
/// releases are refused for what they are, not for their signature.
fn build_unverified(tarball: &std::path::Path, out: &std::path::Path) -> std::process::Output {
    output(
        mm_pkg()
            .args([
                "build",
                "9.11.90",
                "--format",
                "deb",
                "--insecure-skip-verify",
            ])
            .arg("--tarball")
            .arg(tarball)
            .arg("-o")
            .arg(out),
    )
}

fn with_zero_filled(tarball: &std::path::Path, path: &str, size: u64) -> std::path::PathBuf {
    rewritten(tarball, Some((path, size)), &[])
}

/// `tarball` rewritten: the entry at `zeros.0` (if any) holds `zeros.1` zero bytes instead,
/// and the symbolic links `links` (archive path, target of any length) are added at the end.
fn rewritten(
    tarball: &std::path::Path,
    zeros: Option<(&str, u64)>,
    links: &[(String, String)],
) -> std::path::PathBuf {
    let (path, size) = zeros.unwrap_or(("", 0));
    let input = flate2::read::GzDecoder::new(fs::File::open(tarball).unwrap());
    let out = tarball.with_file_name(format!(
        "zeros-{}",
        tarball.file_name().unwrap().to_string_lossy()
    ));
    let gz =
        flate2::write::GzEncoder::new(fs::File::create(&out).unwrap(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(gz);
    let mut archive = tar::Archive::new(input);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut header = entry.header().clone();
        if zeros.is_some() && entry.path().unwrap().to_str() == Some(path) {
            header.set_size(size);
            header.set_cksum();
            builder
                .append(&header, std::io::Read::take(std::io::repeat(0), size))
                .unwrap();
        } else {
            let name = entry.path().unwrap().into_owned();
            let link = entry.link_name().unwrap().map(|l| l.into_owned());
            match link {
                Some(link) => builder.append_link(&mut header, &name, &link).unwrap(),
                None => builder.append_data(&mut header, &name, &mut entry).unwrap(),
            }
        }
    }
    for (name, target) in links {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_mode(0o777);
        header.set_size(0);
        builder.append_link(&mut header, name, target).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap();
    out
}

/// The licence text is read into memory (for the copyright file and the RPM header): a
/// release whose licence file is 1 GiB of zeros (4.7 MB compressed) took 8.4 GB of memory
/// to build. A licence file over the documented limit is refused before it is read.
#[test]
fn an_absurd_licence_file_is_refused_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let tarball = write_release(&dir.path().join("src"), &Spec::new("9.11.90"));
    let huge = with_zero_filled(
        &tarball,
        "mattermost/ENTERPRISE-EDITION-LICENSE.txt",
        64 << 20,
    );
    let out = dir.path().join("out");
    let err = fails(build_unverified(&huge, &out));
    assert!(
        err.contains("ENTERPRISE-EDITION-LICENSE.txt` is 67108864 bytes"),
        "{err}"
    );
    assert!(packages_in(&out).is_empty());
}

/// An output directory another user controls (say `dist` in /tmp, created first by someone
/// else) is refused: that user could plant a package and a `SHA256SUMS` line that mm-pkg's
/// merged `SHA256SUMS` would vouch for, or swap the packages after the build.
#[test]
fn an_output_directory_another_user_controls_is_refused() {
    if !common::have_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tarball = write_release(&dir.path().join("src"), &Spec::new("9.11.90"));
    let out = dir.path().join("out");
    fs::create_dir(&out).unwrap();
    common::run(
        std::process::Command::new("chown")
            .args(["-h", "nobody"])
            .arg(&out),
    );
    let build = |out: &std::path::Path| {
        output(
            mm_pkg()
                .args([
                    "build",
                    "9.11.90",
                    "--format",
                    "deb",
                    "--insecure-skip-verify",
                ])
                .arg("--tarball")
                .arg(&tarball)
                .arg("--cache-dir")
                .arg(dir.path().join("cache"))
                .arg("-o")
                .arg(out),
        )
    };
    let err = fails(build(&out));
    assert!(err.contains("output directory"), "{err}");
    assert!(err.contains("is owned by another user"), "{err}");
    assert!(packages_in(&out).is_empty());
    assert!(!out.join("SHA256SUMS").exists());

    let planted = dir.path().join("planted");
    let ours = dir.path().join("ours");
    fs::create_dir(&ours).unwrap();
    std::os::unix::fs::symlink(&ours, &planted).unwrap();
    common::run(
        std::process::Command::new("chown")
            .args(["-h", "nobody"])
            .arg(&planted),
    );
    let err = fails(build(&planted));
    assert!(err.contains("is owned by another user"), "{err}");
    assert!(packages_in(&ours).is_empty());
}

/// Link targets cost memory and every link is resolved through the others: 40,000 links
/// with 4 KB targets (a 750 KB tarball) kept a build busy for over ten minutes. Link targets
/// count towards the bound on path bytes, and resolving all links has a bound of its own.
#[test]
fn many_long_link_targets_are_refused_before_they_cost_memory_or_hours() {
    let long = format!("{}b", "a/".repeat(1990));
    for (count, needle) in [(1100, "link targets"), (900, "MiB of path lookups")] {
        let dir = tempfile::tempdir().unwrap();
        let intact = write_release(&dir.path().join("src"), &Spec::new("9.11.90"));
        let links: Vec<(String, String)> = (0..count)
            .map(|i| (format!("mattermost/client/l/{i:05}"), long.clone()))
            .collect();
        let tarball = rewritten(&intact, None, &links);
        let out = dir.path().join("out");
        let err = fails(build_unverified(&tarball, &out));
        assert!(err.contains(needle), "{count} links: {err}");
        assert!(packages_in(&out).is_empty());
    }
}

/// An index server (`--index-url`, or whoever answers for it) that sends an endless page
/// made mm-pkg hold all of it in memory: a page is read up to a bound and refused beyond.
#[test]
fn an_oversized_index_page_is_refused_not_held_in_memory() {
    let server = common::server::Server::start();
    let release = br#"{"tag_name":"v1.0.0","draft":false,"prerelease":false},"#;
    let mut page = b"[".to_vec();
    while page.len() < (33 << 20) {
        page.extend_from_slice(release);
    }
    page.extend_from_slice(br#"{"tag_name":"v1.0.1","draft":false,"prerelease":false}]"#);
    server.route("/big?per_page=100&page=1", page);
    let dir = tempfile::tempdir().unwrap();
    let err = fails(output(
        mm_pkg()
            .args(["resolve", "9.x", "--online", "--index-url"])
            .arg(format!("{}/big", server.base))
            .arg("--cache-dir")
            .arg(dir.path().join("cache")),
    ));
    assert!(err.contains("larger than 33554432 bytes"), "{err}");
}
