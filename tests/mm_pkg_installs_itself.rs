//! mm-pkg as its users install it. `scripts/release-assets --quick` makes the release's files
//! from a quick static build: a tarball with one static binary, its man pages, completions
//! and licences, and a .deb and an .rpm of mm-pkg written by mm-pkg's own writers
//! (examples/package-mm-pkg.rs). The binary does real work (build, key generation, a signed
//! repository) in a root holding nothing else and writes the same bytes as the usual build;
//! the CI examples' install line fetches and checks that tarball; the packages pass lintian
//! and rpmlint and install and run, the .deb in a bare Debian root and the .rpm in an empty
//! one; and the `sync` examples the .deb installs (systemd unit and timer, cron file,
//! config) run there as the documented user and keep a repository current.
//!
//! The static build is the musl target (what releases ship) where rustup has it, else the
//! glibc target linked with +crt-static (MM_PKG_STATIC_GLIBC=1 forces that fallback); the
//! test says which it proved (and writes it to target/tmp/static-build.txt, which
//! scripts/test prints).

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use common::fixture::{Spec, write_release};
use common::lifecycle::ok;
use common::signing::release_key;
use common::static_files::StaticServer;
use common::upstream::{INDEX_PATH, Upstream};
use common::{chroot_ok, debian_root, have, have_root, mm_pkg, output, run};

/// The version being released.
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Where the .deb installs the `sync` examples.
const EXAMPLES_DIR: &str = "/usr/share/doc/mm-pkg/examples";

/// What `scripts/release-assets --quick amd64` wrote.
struct Assets {
    /// Holds the files.
    _dir: tempfile::TempDir,
    /// `musl` or `glibc-static`.
    kind: String,
    /// The Rust target, e.g. `x86_64-unknown-linux-musl`.
    target: String,
    /// `mm-pkg-VERSION-TARGET.tar.gz`.
    tarball: PathBuf,
    /// The static binary, unpacked from the tarball.
    binary: PathBuf,
    /// `mm-pkg_VERSION-1_amd64.deb`.
    deb: PathBuf,
    /// `mm-pkg-VERSION-1.x86_64.rpm`.
    rpm: PathBuf,
}

/// The release's files, made once per run.
fn assets() -> &'static Assets {
    static BUILT: OnceLock<Assets> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = tempfile::tempdir().unwrap();
        let dist = dir.path().join("dist");
        let out = output(
            Command::new(root.join("scripts/release-assets"))
                .args(["--quick", "amd64"])
                .arg(&dist)
                .env("CARGO", env!("CARGO"))
                .env("SOURCE_DATE_EPOCH", "1764000000"),
        );
        assert!(
            out.status.success(),
            "scripts/release-assets failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let tarball = only(&dist, ".tar.gz");
        let name = tarball.file_name().unwrap().to_string_lossy().into_owned();
        let target = name
            .strip_prefix(&format!("mm-pkg-{VERSION}-"))
            .and_then(|t| t.strip_suffix(".tar.gz"))
            .unwrap_or_else(|| panic!("tarball {name}"))
            .to_string();
        let kind = if target.ends_with("-musl") {
            "musl"
        } else {
            "glibc-static"
        };
        eprintln!("mm_pkg_installs_itself: proving a {kind} static build ({target})");
        fs::write(
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("static-build.txt"),
            format!("{kind} {target}\n"),
        )
        .unwrap();
        run(Command::new("tar")
            .arg("-xzf")
            .arg(&tarball)
            .arg("-C")
            .arg(dir.path()));
        let binary = dir.path().join(format!("mm-pkg-{VERSION}-{target}/mm-pkg"));
        Assets {
            kind: kind.to_string(),
            target,
            binary,
            deb: only(&dist, "_amd64.deb"),
            rpm: only(&dist, ".x86_64.rpm"),
            tarball,
            _dir: dir,
        }
    })
}

/// The one file in `dir` whose name ends with `suffix`.
fn only(dir: &Path, suffix: &str) -> PathBuf {
    let found: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    assert_eq!(found.len(), 1, "{suffix} in {}: {found:?}", dir.display());
    found[0].clone()
}

/// Runs `args` in the chroot `root` with an empty environment (plus `env`).
fn in_empty_root(root: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    // Found on this machine's PATH: the child's environment has none.
    let chroot = run(Command::new("sh").args(["-c", "command -v chroot"]));
    let mut cmd = Command::new(chroot.trim());
    cmd.arg(root)
        .args(args)
        .env_clear()
        .envs(env.iter().copied());
    output(&mut cmd)
}

#[test]
fn the_static_binary_works_in_a_root_that_holds_nothing_else() {
    if !have_root() || !have("readelf") || !have("dpkg-deb") {
        return;
    }
    let Assets {
        kind,
        target,
        binary,
        ..
    } = assets();
    for (tool, flag, refused) in [("readelf", "-lW", "INTERP"), ("readelf", "-dW", "(NEEDED)")] {
        let shown = run(Command::new(tool).arg(flag).arg(binary));
        assert!(!shown.contains(refused), "{kind} {target}: {shown}");
    }

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    fs::create_dir(&root).unwrap();
    fs::copy(binary, root.join("mm-pkg")).unwrap();
    let tarball = write_release(&root.join("release"), &Spec::new("9.11.90"));
    let inside = format!(
        "/release/{}",
        tarball.file_name().unwrap().to_string_lossy()
    );
    let env = [("SOURCE_DATE_EPOCH", "1764000000")];
    ok(
        in_empty_root(
            &root,
            &[
                "/mm-pkg",
                "build",
                "--tarball",
                &inside,
                "--offline",
                "--output",
                "/out",
            ],
            &env,
        ),
        "build in the empty root",
    );
    ok(
        in_empty_root(
            &root,
            &[
                "/mm-pkg",
                "key",
                "generate",
                "--name",
                "Empty Root <root@example.org>",
                "--output",
                "/keys",
            ],
            &env,
        ),
        "key generate in the empty root",
    );
    let deb = "/out/mattermost_9.11.90-1_amd64.deb";
    let rpm = "/out/mattermost-9.11.90-1.x86_64.rpm";
    ok(
        in_empty_root(
            &root,
            &[
                "/mm-pkg",
                "repo",
                "add",
                "/repo",
                deb,
                rpm,
                "--sign-key",
                "/keys/signing-key.secret.asc",
            ],
            &env,
        ),
        "repo add in the empty root",
    );
    ok(
        in_empty_root(
            &root,
            &[
                "/mm-pkg",
                "repo",
                "verify",
                "/repo",
                "--key",
                "/keys/signing-key.asc",
            ],
            &env,
        ),
        "repo verify in the empty root",
    );

    // The same bytes as the usual (dynamically linked) build of the same release.
    let usual = dir.path().join("usual");
    run(mm_pkg()
        .args(["build", "--tarball"])
        .arg(&tarball)
        .args(["--offline", "--output"])
        .arg(&usual));
    for name in [
        "mattermost_9.11.90-1_amd64.deb",
        "mattermost-9.11.90-1.x86_64.rpm",
    ] {
        assert!(
            fs::read(root.join("out").join(name)).unwrap() == fs::read(usual.join(name)).unwrap(),
            "{name} differs between the static ({kind}) and the usual build"
        );
    }
    run(Command::new("dpkg-deb")
        .arg("--info")
        .arg(root.join(&deb[1..])));
}

#[test]
fn the_ci_examples_install_the_released_tarball_and_check_it_first() {
    if !have("curl") || !have("sha256sum") {
        return;
    }
    let Assets {
        tarball, target, ..
    } = assets();
    let listed = run(Command::new("tar").arg("-tzf").arg(tarball));
    let top = format!("mm-pkg-{VERSION}-{target}");
    for path in [
        "mm-pkg",
        "README.md",
        "LICENSE-MIT",
        "LICENSE-APACHE",
        "man/mm-pkg.1",
        "man/mm-pkg-sync.1",
        "complete/mm-pkg.bash",
        "complete/_mm-pkg",
        "complete/mm-pkg.fish",
    ] {
        assert!(
            listed.lines().any(|l| l == format!("{top}/{path}")),
            "no {top}/{path} in the tarball:\n{listed}"
        );
    }

    // The release's download path, served here.
    let dir = tempfile::tempdir().unwrap();
    let download = dir
        .path()
        .join(format!("srv/example/mm-pkg/releases/download/v{VERSION}"));
    fs::create_dir_all(&download).unwrap();
    fs::copy(tarball, download.join(tarball.file_name().unwrap())).unwrap();
    let server = StaticServer::start(&dir.path().join("srv"));
    let sha256 = run(Command::new("sha256sum").arg(tarball));
    let sha256 = sha256.split(' ').next().unwrap();

    for example in ["github-actions.yml", "gitlab-ci.yml"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples")
            .join(example);
        let yaml: serde_norway::Value =
            serde_norway::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        let vars = if yaml["env"].is_mapping() {
            &yaml["env"]
        } else {
            &yaml["variables"]
        };
        assert_eq!(vars["MM_PKG_VERSION"].as_str(), Some(VERSION), "{example}");
        // The job's install line, pointed at this server and a scratch bin directory.
        let bin = dir.path().join(format!("bin-{example}"));
        fs::create_dir(&bin).unwrap();
        let install = vars["MM_PKG_INSTALL"]
            .as_str()
            .unwrap()
            .replace("https://github.com", &server.base)
            .replace("sudo ", "")
            .replace("/usr/local/bin", bin.to_str().unwrap())
            .replace("x86_64-unknown-linux-musl", target);
        let job = |sha: &str| {
            output(
                Command::new("bash")
                    .args(["-ec", "eval \"$MM_PKG_INSTALL\""])
                    .current_dir(dir.path())
                    .env("MM_PKG_INSTALL", &install)
                    .env("MM_PKG_VERSION", VERSION)
                    .env("MM_PKG_SHA256", sha),
            )
        };
        let refused = job(&"0".repeat(64));
        assert!(
            !refused.status.success() && !bin.join("mm-pkg").exists(),
            "{example}: a wrong SHA-256 installed mm-pkg"
        );
        ok(job(sha256), example);
        let said = run(Command::new(bin.join("mm-pkg")).arg("--version"));
        assert_eq!(said.trim(), format!("mm-pkg {VERSION}"), "{example}");
    }
}

#[test]
fn mm_pkg_packages_itself_for_lintian_rpmlint_dpkg_and_rpm() {
    if !have_root() || !have("lintian") || !have("rpmlint") || !have("rpm") {
        return;
    }
    let Assets { deb, rpm, .. } = assets();
    assert_eq!(
        [deb, rpm].map(|p| p.file_name().unwrap().to_string_lossy().into_owned()),
        [
            format!("mm-pkg_{VERSION}-1_amd64.deb"),
            format!("mm-pkg-{VERSION}-1.x86_64.rpm")
        ]
    );
    let listed = run(Command::new("dpkg-deb").arg("-c").arg(deb));
    for path in [
        "./usr/bin/mm-pkg",
        "./usr/share/man/man1/mm-pkg.1.gz",
        "./usr/share/man/man1/mm-pkg-sync.1.gz",
        "./usr/share/bash-completion/completions/mm-pkg",
        "./usr/share/zsh/vendor-completions/_mm-pkg",
        "./usr/share/fish/vendor_completions.d/mm-pkg.fish",
        "./usr/share/doc/mm-pkg/copyright",
        "./usr/share/doc/mm-pkg/examples/mm-pkg-sync.service",
    ] {
        assert!(listed.contains(path), "no {path} in the .deb:\n{listed}");
    }
    let lintian = output(
        Command::new("lintian")
            .args(["--display-level", ">=warning", "--no-tag-display-limit"])
            .arg(deb),
    );
    let tags = String::from_utf8_lossy(&lintian.stdout);
    assert!(
        !tags
            .lines()
            .any(|l| l.starts_with("E: ") || l.starts_with("W: ")),
        "lintian:\n{tags}"
    );
    let rc = Path::new(env!("CARGO_MANIFEST_DIR")).join("lint/mm-pkg.rpmlintrc");
    let rpmlint = output(Command::new("rpmlint").arg("-r").arg(&rc).arg(rpm));
    let text = String::from_utf8_lossy(&rpmlint.stdout);
    assert!(text.contains("0 errors, 0 warnings"), "rpmlint:\n{text}");

    // The .rpm installs into an empty root, and what it installed runs there.
    let empty = tempfile::tempdir().unwrap();
    run(Command::new("rpm")
        .arg("--root")
        .arg(empty.path())
        .arg("--initdb"));
    run(Command::new("rpm")
        .arg("--root")
        .arg(empty.path())
        .args(["-i", "--nodeps"])
        .arg(rpm));
    let version = ok(
        in_empty_root(empty.path(), &["/usr/bin/mm-pkg", "--version"], &[]),
        "the rpm's mm-pkg",
    );
    assert_eq!(
        version.trim(),
        format!("mm-pkg {}", env!("CARGO_PKG_VERSION"))
    );
    let files = run(Command::new("rpm").args(["-qlp", "--docfiles"]).arg(rpm));
    assert!(files.contains("/usr/share/man/man1/mm-pkg.1.gz"), "{files}");
}

/// `args` run as `user` with the environment cron and systemd give a job of a system
/// account: its home (`adduser --home` in the set-up) and a plain PATH, nothing else.
fn as_account<'a>(user: &'a str, args: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    ["runuser", "-u", user, "--", "env", "-i"]
        .into_iter()
        .chain(["HOME=/var/lib/mm-pkg", "PATH=/usr/bin:/bin"])
        .chain(args)
        .collect()
}

/// `KEY=value` settings of the unit file `text` (the last of each key; every ExecStart).
fn unit_setting<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
    text.lines()
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .collect()
}

#[test]
fn the_installed_sync_examples_run_as_the_documented_user() {
    if !have("dpkg-deb") || !have("systemd-analyze") {
        return;
    }
    let Some(root) = debian_root() else { return };
    let root = root.path();
    let deb = &assets().deb;
    chroot_ok(root, &["dpkg", "-i", &common::copy_into(root, deb)]);
    let examples = root.join(&EXAMPLES_DIR[1..]);

    // The set-up docs/repository.md gives ("On one machine").
    let setup: &[&[&str]] = &[
        &[
            "adduser",
            "--system",
            "--group",
            "--home",
            "/var/lib/mm-pkg",
            "mm-pkg",
        ],
        &[
            "install",
            "-d",
            "-o",
            "mm-pkg",
            "-g",
            "mm-pkg",
            "/srv/mattermost-repo",
        ],
        &[
            "runuser",
            "-u",
            "mm-pkg",
            "--",
            "mm-pkg",
            "key",
            "generate",
            "--name",
            "Example Packagers <packages@example.org>",
            "--output",
            "/var/lib/mm-pkg/keys",
        ],
        &["install", "-d", "-m", "0750", "-g", "mm-pkg", "/etc/mm-pkg"],
        &[
            "install",
            "-m",
            "0640",
            "-g",
            "mm-pkg",
            "/usr/share/doc/mm-pkg/examples/sync.toml",
            "/usr/share/doc/mm-pkg/examples/sync.env",
            "/etc/mm-pkg/",
        ],
        &[
            "cp",
            "/usr/share/doc/mm-pkg/examples/mm-pkg-sync.service",
            "/usr/share/doc/mm-pkg/examples/mm-pkg-sync.timer",
            "/etc/systemd/system/",
        ],
        &[
            "cp",
            "/usr/share/doc/mm-pkg/examples/mm-pkg.cron",
            "/etc/cron.d/mm-pkg",
        ],
    ];
    for step in setup {
        chroot_ok(root, step);
    }
    // systemd-analyze checks the installed unit and timer (every key known, ExecStart's
    // binary there and executable) with this machine's systemd: the root has none, so the
    // binary's path is the root's.
    let units = tempfile::tempdir().unwrap();
    for name in ["mm-pkg-sync.service", "mm-pkg-sync.timer"] {
        let text = fs::read_to_string(root.join("etc/systemd/system").join(name)).unwrap();
        let text = text.replace(
            "ExecStart=/usr/bin/",
            &format!("ExecStart={}/usr/bin/", root.display()),
        );
        fs::write(units.path().join(name), text).unwrap();
    }
    let verify = output(
        Command::new("systemd-analyze")
            // The man page is in the root, not on this machine: checked in the .deb above.
            .args(["--man=no", "verify"])
            .arg(units.path().join("mm-pkg-sync.timer"))
            .arg(units.path().join("mm-pkg-sync.service")),
    );
    let said = String::from_utf8_lossy(&verify.stderr);
    assert!(
        verify.status.success() && said.trim().is_empty(),
        "systemd-analyze verify:\n{said}"
    );

    // The admin's edit of sync.toml: this test's upstream instead of Mattermost's.
    let up = Upstream::new();
    up.publish(&Spec::new("9.11.90"), Some(release_key()));
    fs::copy(up.keyring(), root.join("etc/mm-pkg/upstream.asc")).unwrap();
    let example = fs::read_to_string(examples.join("sync.toml")).unwrap();
    let kept: Vec<&str> = example
        .lines()
        .filter(|l| {
            ["[sync]", "repo ", "sign-key ", "maintainer "]
                .iter()
                .any(|k| l.starts_with(k))
        })
        .collect();
    let config = format!(
        "{}\nspec = [\"9.11\"]\nmirror = \"{base}\"\nindex-url = \"{base}{INDEX_PATH}\"\n\
         keyring = [\"/etc/mm-pkg/upstream.asc\"]\n",
        kept.join("\n"),
        base = up.server.base
    );
    fs::write(root.join("etc/mm-pkg/sync.toml"), config).unwrap();

    // The service as systemd would start it: its User=, its EnvironmentFile=, its ExecStart=.
    let unit = fs::read_to_string(root.join("etc/systemd/system/mm-pkg-sync.service")).unwrap();
    let user = unit_setting(&unit, "User")[0];
    let exec = unit_setting(&unit, "ExecStart")[0];
    let writable = unit_setting(&unit, "ReadWritePaths")[0];
    for dir in ["/srv/mattermost-repo", "/var/lib/mm-pkg"] {
        assert!(
            writable.split(' ').any(|d| d == dir),
            "ReadWritePaths={writable}"
        );
    }
    let env_file = unit_setting(&unit, "EnvironmentFile")[0].trim_start_matches('-');
    assert!(root.join(&env_file[1..]).is_file(), "{env_file}");
    let settings = fs::read_to_string(root.join(&env_file[1..])).unwrap();
    let settings = settings
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains('='));
    let said = chroot_ok(root, &as_account(user, settings.chain(exec.split(' '))));
    assert!(
        said.contains("built mattermost 9.11.90 (enterprise, amd64)"),
        "{said}"
    );

    // The cron line: its user, its command through /bin/sh, cron's environment.
    up.publish(&Spec::new("9.11.91"), Some(release_key()));
    let cron = fs::read_to_string(root.join("etc/cron.d/mm-pkg")).unwrap();
    let line = cron
        .lines()
        .find(|l| l.starts_with(|c: char| c.is_ascii_digit()))
        .unwrap();
    let fields: Vec<&str> = line.splitn(7, ' ').collect();
    let (user, command) = (fields[5], fields[6]);
    let said = chroot_ok(
        root,
        &as_account(user, ["SHELL=/bin/sh", "/bin/sh", "-c", command]),
    );
    assert!(
        said.contains("built mattermost 9.11.91 (enterprise, amd64)"),
        "{said}"
    );
    chroot_ok(
        root,
        &[
            "runuser",
            "-u",
            user,
            "--",
            "mm-pkg",
            "repo",
            "verify",
            "/srv/mattermost-repo",
            "--key",
            "/var/lib/mm-pkg/keys/signing-key.asc",
        ],
    );
    let owner = chroot_ok(
        root,
        &[
            "stat",
            "-c",
            "%U",
            "/srv/mattermost-repo/apt/dists/stable/InRelease",
        ],
    );
    assert_eq!(owner.trim(), "mm-pkg");
}
