//! Helpers shared by the integration tests: the fixture generator, running mm-pkg and the
//! packaging tools, and Debian roots (11, 12, 13) to install into.

#![allow(dead_code)]

pub mod boot;
pub mod crafted;
pub mod fixture;
pub mod gpg;
pub mod lifecycle;
pub mod mirror;
pub mod receiver;
pub mod repo;
pub mod server;
pub mod signing;
pub mod standin;
pub mod static_files;
pub mod upstream;

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Set by `.ci/run`: a test that cannot run (missing tool, not root) fails instead of skipping.
pub const STRICT_VAR: &str = "MM_PKG_TEST_STRICT";

/// True when `tool` is on the PATH. Without it the test is skipped, or fails under
/// [`STRICT_VAR`].
pub fn have(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found {
        skip(&format!("{tool} is not installed"));
    }
    found
}

/// True when running as root. Otherwise skipped, or fails under [`STRICT_VAR`].
pub fn have_root() -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if !root {
        skip("this test needs root");
    }
    root
}

fn skip(why: &str) {
    if std::env::var_os(STRICT_VAR).is_some_and(|v| v == "1") {
        panic!("{why}, and {STRICT_VAR}=1 forbids skipping");
    }
    eprintln!("SKIPPED: {why}");
}

/// Runs `cmd`, panicking with its output unless it succeeds; returns stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `cmd` and returns its full output whatever the exit status.
pub fn output(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Runs `cmd` to its end; returns whether it succeeded, its stderr and its peak RSS in KiB.
// The child is reaped by wait4 (which std does not offer), not by Child::wait.
#[allow(clippy::zombie_processes)]
pub fn run_measured(cmd: &mut Command, dir: &Path) -> (bool, String, i64) {
    let err_path = dir.join("stderr");
    let child = cmd
        .stdout(File::create(dir.join("stdout")).unwrap())
        .stderr(File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value, and wait4 reaps our own child exactly once.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as libc::pid_t, "wait4 failed");
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    (ok, fs::read_to_string(err_path).unwrap(), usage.ru_maxrss)
}

/// The mm-pkg binary under test, with a fixed SOURCE_DATE_EPOCH and a cache of its own
/// (`XDG_CACHE_HOME`): runs never share the user's cache, nor mm-pkg's record of verified
/// tarballs, unless a test passes `--cache-dir` itself.
pub fn mm_pkg() -> Command {
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("xdg-cache")
        .join(format!("{}-{run}", std::process::id()));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mm-pkg"));
    cmd.env("SOURCE_DATE_EPOCH", "1764000000")
        .env("XDG_CACHE_HOME", cache);
    cmd
}

/// Packages built from a synthetic release.
pub struct Built {
    /// Keeps the directories alive.
    pub dir: tempfile::TempDir,
    /// The release tarball.
    pub tarball: PathBuf,
    /// Output directory.
    pub out: PathBuf,
    /// The `.deb`, if built.
    pub deb: Option<PathBuf>,
    /// The `.rpm`, if built.
    pub rpm: Option<PathBuf>,
}

/// The package file with extension `ext` (`deb`, `rpm`) in `dir`, if any.
pub fn package_in(dir: &Path, ext: &str) -> Option<PathBuf> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == ext))
}

/// Writes the release of `spec` and runs `mm-pkg build --tarball` on it with `args`.
pub fn build(spec: &fixture::Spec, args: &[&str]) -> Built {
    let dir = tempfile::tempdir().unwrap();
    let tarball = fixture::write_release(&dir.path().join("release"), spec);
    let out = dir.path().join("dist");
    let mut cmd = mm_pkg();
    cmd.args([
        "build",
        &spec.version,
        "--edition",
        &spec.edition,
        "--tarball",
    ])
    .arg(&tarball)
    .arg("--output")
    .arg(&out)
    .args(args);
    run(&mut cmd);
    let deb = package_in(&out, "deb");
    let rpm = package_in(&out, "rpm");
    Built {
        dir,
        tarball,
        out,
        deb,
        rpm,
    }
}

/// Packages every cached root gets besides debootstrap's minbase: the dependencies of the
/// packages under test that minbase lacks (trixie's minbase has no adduser).
pub const ROOT_PACKAGES: &str = "libcap2-bin,ca-certificates,adduser";

/// What the roots that boot under systemd-nspawn (tests/common/boot.rs) get on top of
/// [`ROOT_PACKAGES`]: systemd as init and its bus, curl to talk to the server, and rpm to
/// run the RPM's scriptlets under a real systemd.
pub const BOOT_ROOT_PACKAGES: &str = "systemd,systemd-sysv,dbus,curl,rpm";

/// A fresh Debian 12 (bookworm) root; see [`debian_root_of`].
pub fn debian_root() -> Option<tempfile::TempDir> {
    debian_root_of("bookworm")
}

/// A fresh Debian root of `suite` (`bullseye`, `bookworm`, `trixie`): debootstrap minbase
/// plus [`ROOT_PACKAGES`], debootstrapped once per suite into the target directory (each
/// test binary waits for it under a lock file, so one run builds each root once) and copied
/// per test. `None` (skip) when root or debootstrap is missing.
pub fn debian_root_of(suite: &str) -> Option<tempfile::TempDir> {
    cached_root(suite, "root", ROOT_PACKAGES)
}

/// The cached Debian root of `suite` that boots with systemd: like [`debian_root_of`]'s,
/// plus [`BOOT_ROOT_PACKAGES`], cached as `target/tmp/<suite>-boot-root`. Shared by every
/// test: never write to it (tests/common/boot.rs lays an overlay over it).
pub fn boot_root_base(suite: &str) -> Option<PathBuf> {
    cached_base(
        suite,
        "boot-root",
        &format!("{ROOT_PACKAGES},{BOOT_ROOT_PACKAGES}"),
    )
}

/// A copy of the root `target/tmp/<suite>-<kind>` (see [`cached_base`]).
fn cached_root(suite: &str, kind: &str, packages: &str) -> Option<tempfile::TempDir> {
    let base = cached_base(suite, kind, packages)?;
    let root = tempfile::Builder::new()
        .prefix(&format!("{suite}-{kind}-"))
        .tempdir_in(Path::new(env!("CARGO_TARGET_TMPDIR")))
        .unwrap();
    run(Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", base.display()))
        .arg(root.path()));
    Some(root)
}

/// The root `target/tmp/<suite>-<kind>`: debootstrap minbase of `suite` with `packages`,
/// made once per run of the suite (test binaries wait for it under a lock file). `None`
/// (skip) when root or debootstrap is missing.
fn cached_base(suite: &str, kind: &str, packages: &str) -> Option<PathBuf> {
    if !have_root() || !have("debootstrap") {
        return None;
    }
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let base = tmp.join(format!("{suite}-{kind}"));
    let done = base.with_extension("done");
    // Test binaries run in parallel: a lock file shared between them (flock, which also
    // orders the threads of one binary: each opens the file anew).
    let lock = fs::File::create(base.with_extension("lock")).unwrap();
    lock.lock().unwrap();
    if fs::read_to_string(&done).ok().as_deref() != Some(packages) {
        let _ = fs::remove_dir_all(&base);
        let mirror = std::env::var("MM_PKG_DEBIAN_MIRROR")
            .unwrap_or_else(|_| "http://deb.debian.org/debian".into());
        run(Command::new("debootstrap")
            .args(["--variant=minbase", &format!("--include={packages}"), suite])
            .arg(&base)
            .arg(mirror));
        fs::write(&done, packages).unwrap();
    }
    Some(base)
}

/// Runs `args` inside the chroot `root`; returns the output whatever the status.
pub fn chroot(root: &Path, args: &[&str]) -> Output {
    output(
        Command::new("chroot")
            .arg(root)
            .args(args)
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

/// Like [`chroot`], panicking with the output unless it succeeds; returns stdout and stderr.
pub fn chroot_ok(root: &Path, args: &[&str]) -> String {
    let out = chroot(root, args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "chroot {args:?} failed ({}):\n{text}",
        out.status
    );
    text
}

/// Copies `file` into `root`'s /tmp and returns its path inside the root.
pub fn copy_into(root: &Path, file: &Path) -> String {
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    fs::copy(file, root.join("tmp").join(&name)).unwrap();
    format!("/tmp/{name}")
}

/// The `data.tar.gz` member of `deb`, as `ar p` prints it.
pub fn deb_data_tar_gz(deb: &Path) -> Vec<u8> {
    let out = output(Command::new("ar").arg("p").arg(deb).arg("data.tar.gz"));
    assert!(out.status.success(), "ar p {}: {out:?}", deb.display());
    out.stdout
}

/// How many gzip members `gz` holds, decoded one by one with a decoder that stops after one.
pub fn gzip_members(mut gz: &[u8]) -> usize {
    use std::io::Read;
    let mut count = 0;
    while !gz.is_empty() {
        let mut member = flate2::bufread::GzDecoder::new(gz);
        std::io::copy(&mut member.by_ref(), &mut std::io::sink()).unwrap();
        gz = member.into_inner();
        count += 1;
    }
    count
}
