//! Shared pieces of the lifecycle tests: the packages under test, the two package managers
//! behind one interface, an admin's data with checksums, and a logging stub of systemd.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

use super::fixture::{Spec, write_release};
use super::{chroot_ok, copy_into, mm_pkg, run};

/// The packages the matrix moves between.
pub struct Packages {
    dir: PathBuf,
}

/// Which package file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pkg {
    /// mattermost 9.11.90 (ships client/only-in-90.js).
    Old,
    /// mattermost 9.11.91 (ships client/only-in-91.js).
    New,
    /// mattermost-team 9.11.91.
    Team,
}

impl Pkg {
    /// Package name.
    pub fn name(self) -> &'static str {
        match self {
            Pkg::Team => "mattermost-team",
            _ => "mattermost",
        }
    }

    /// Upstream version.
    pub fn version(self) -> &'static str {
        match self {
            Pkg::Old => "9.11.90",
            _ => "9.11.91",
        }
    }
}

/// Releases with different files, built once per run of the suite: every test binary
/// shares one directory, keyed by the mm-pkg binary under test (its size and time), built
/// by whichever binary comes first while the others wait on a lock file.
pub fn packages() -> &'static Packages {
    static PACKAGES: OnceLock<Packages> = OnceLock::new();
    PACKAGES.get_or_init(|| {
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let exe = fs::metadata(env!("CARGO_BIN_EXE_mm-pkg")).unwrap();
        let built_at = exe
            .modified()
            .unwrap()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let name = format!("lifecycle-packages-{}-{built_at}", exe.len());
        let dir = tmp.join(&name);
        let lock = fs::File::create(tmp.join("lifecycle-packages.lock")).unwrap();
        lock.lock().unwrap();
        if !dir.join(".done").exists() {
            // Packages of an earlier mm-pkg binary are stale.
            for entry in fs::read_dir(tmp).unwrap() {
                let path = entry.unwrap().path();
                let file = path.file_name().unwrap().to_string_lossy().into_owned();
                if file.starts_with("lifecycle-packages-") && path.is_dir() {
                    let _ = fs::remove_dir_all(&path);
                }
            }
            for (spec, only) in [
                (Spec::new("9.11.90"), "client/only-in-90.js"),
                (Spec::new("9.11.91"), "client/only-in-91.js"),
                (Spec::team("9.11.91"), "client/only-in-91.js"),
            ] {
                let spec = Spec {
                    extra_files: vec![(only.to_string(), b"console.log(1);\n".to_vec())],
                    ..spec
                };
                let tarball = write_release(&dir.join("src"), &spec);
                run(mm_pkg()
                    .args([
                        "build",
                        &spec.version,
                        "--edition",
                        &spec.edition,
                        "--tarball",
                    ])
                    .arg(&tarball)
                    .arg("--output")
                    .arg(&dir));
            }
            fs::write(dir.join(".done"), "").unwrap();
        }
        Packages { dir }
    })
}

impl Packages {
    /// Path of a package file.
    pub fn path(&self, pkg: Pkg, format: Format) -> PathBuf {
        let name = match format {
            Format::Deb => format!("{}_{}-1_amd64.deb", pkg.name(), pkg.version()),
            Format::Rpm => format!("{}-{}-1.x86_64.rpm", pkg.name(), pkg.version()),
        };
        self.dir.join(name)
    }

    /// Builds a variant of 9.11.91 with one template replaced.
    pub fn with_template(&self, name: &str, text: &str, format: Format) -> PathBuf {
        let dir = self
            .dir
            .join(format!("override-{name}-{}", std::process::id()));
        let templates = dir.join("templates");
        fs::create_dir_all(&templates).unwrap();
        fs::write(templates.join(name), text).unwrap();
        let tarball = self
            .dir
            .join("src")
            .join(Spec::new("9.11.91").tarball_name());
        run(mm_pkg()
            .args(["build", "9.11.91", "--format", format.as_str(), "--tarball"])
            .arg(&tarball)
            .arg("--templates")
            .arg(&templates)
            .arg("--output")
            .arg(&dir));
        super::package_in(&dir, format.as_str()).expect("the built package")
    }
}

/// A package format and its package manager, driven the way an admin would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// dpkg inside the root.
    Deb,
    /// rpm --root from outside.
    Rpm,
}

impl Format {
    /// True when this format's tool is installed (else the test is skipped, or fails under
    /// MM_PKG_TEST_STRICT).
    pub fn available(self) -> bool {
        super::have(match self {
            Format::Deb => "dpkg-deb",
            Format::Rpm => "rpm",
        })
    }

    /// `deb` or `rpm`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Deb => "deb",
            Format::Rpm => "rpm",
        }
    }

    /// Prepares `root` for this package manager.
    pub fn prepare(self, root: &Path) {
        if self == Format::Rpm {
            run(Command::new("rpm").arg("--root").arg(root).arg("--initdb"));
        }
    }

    fn rpm(root: &Path, args: &[&str], file: Option<&Path>) -> Output {
        let mut cmd = Command::new("rpm");
        // The Debian root's own packages are not in the RPM database: --nodeps.
        cmd.arg("--root").arg(root).args(args).arg("--nodeps");
        if let Some(f) = file {
            cmd.arg(f);
        }
        cmd.output().unwrap()
    }

    fn dpkg(root: &Path, args: &[&str]) -> Output {
        super::chroot(root, &[&["dpkg"], args].concat())
    }

    /// Installs or upgrades to `file`.
    pub fn install(self, root: &Path, file: &Path) -> Output {
        match self {
            Format::Deb => Self::dpkg(root, &["-i", &copy_into(root, file)]),
            Format::Rpm => Self::rpm(root, &["-U"], Some(file)),
        }
    }

    /// Installs an older version over a newer one.
    pub fn downgrade(self, root: &Path, file: &Path) -> Output {
        match self {
            Format::Deb => self.install(root, file),
            Format::Rpm => Self::rpm(root, &["-U", "--oldpackage"], Some(file)),
        }
    }

    /// Installs the same version again.
    pub fn reinstall(self, root: &Path, file: &Path) -> Output {
        match self {
            Format::Deb => self.install(root, file),
            Format::Rpm => Self::rpm(root, &["-U", "--replacepkgs"], Some(file)),
        }
    }

    /// Removes package `name` (keeping Debian conffiles: there are none).
    pub fn remove(self, root: &Path, name: &str) -> Output {
        match self {
            Format::Deb => Self::dpkg(root, &["-r", name]),
            Format::Rpm => Self::rpm(root, &["-e", name], None),
        }
    }

    /// Purges (deb) or erases (rpm) package `name`.
    pub fn purge(self, root: &Path, name: &str) -> Output {
        match self {
            Format::Deb => Self::dpkg(root, &["--purge", name]),
            Format::Rpm => Self::rpm(root, &["-e", name], None),
        }
    }

    /// Replaces the installed edition `from` with `file`: `dpkg -i` does it in one step
    /// (Conflicts + Replaces); RPM as `dnf swap` does, erase then install.
    pub fn switch_edition(self, root: &Path, from: &str, file: &Path) -> Output {
        match self {
            Format::Deb => self.install(root, file),
            Format::Rpm => {
                let erase = Self::rpm(root, &["-e", from], None);
                if !erase.status.success() {
                    return erase;
                }
                let install = Self::rpm(root, &["-i"], Some(file));
                let mut out = install.clone();
                out.stdout = [erase.stdout, install.stdout].concat();
                out.stderr = [erase.stderr, install.stderr].concat();
                out
            }
        }
    }

    /// Replaces the installed edition `from` with `file` the other way round, as `dnf swap`
    /// orders one transaction (RPM: install the new package first, then erase the old one)
    /// and as `dpkg -i` then `dpkg --purge` of the old one in config-files state does on
    /// Debian. Returns the output of the second step (the old package's removal).
    pub fn switch_then_clean_up(self, root: &Path, from: &str, file: &Path) -> (Output, Output) {
        match self {
            Format::Deb => (self.install(root, file), self.purge(root, from)),
            Format::Rpm => {
                // One dnf transaction: the files shared with the package being erased are
                // not conflicts there.
                let install = Self::rpm(root, &["-i", "--replacefiles"], Some(file));
                if !install.status.success() {
                    return (install.clone(), install);
                }
                (install, Self::rpm(root, &["-e", from], None))
            }
        }
    }

    /// Output of `dpkg -V` / `rpm -V` for `name`.
    pub fn verify(self, root: &Path, name: &str) -> Output {
        match self {
            Format::Deb => Self::dpkg(root, &["-V", name]),
            Format::Rpm => Self::rpm(root, &["-V"], Some(Path::new(name))),
        }
    }

    /// The installed version of `name`, if any.
    pub fn installed(self, root: &Path, name: &str) -> Option<String> {
        let out = match self {
            Format::Deb => super::chroot(
                root,
                &[
                    "dpkg-query",
                    "-W",
                    "-f",
                    "${db:Status-Abbrev}${Version}",
                    name,
                ],
            ),
            Format::Rpm => Command::new("rpm")
                .arg("--root")
                .arg(root)
                .args(["-q", "--qf", "ii %{VERSION}-%{RELEASE}", name])
                .output()
                .unwrap(),
        };
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.success() && text.starts_with("ii ")).then(|| text[3..].trim().to_string())
    }
}

/// Output of a command as text, asserting success.
pub fn ok(out: Output, what: &str) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{what} failed:\n{text}");
    text
}

/// Output of a command as text, asserting failure.
pub fn fails(out: Output, what: &str) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !out.status.success(),
        "{what} succeeded but should have failed:\n{text}"
    );
    text
}

/// Replaces systemctl and deb-systemd-invoke in `root` by stubs that log their arguments to
/// /var/log/service-stub.log, and makes the scripts believe systemd runs. `is-active` answers
/// yes while /run/stub-active exists.
pub fn install_service_stubs(root: &Path) {
    fs::create_dir_all(root.join("run/systemd/system")).unwrap();
    for name in ["systemctl", "deb-systemd-invoke"] {
        let path = root.join("usr/bin").join(name);
        fs::write(
            &path,
            format!(
                "#!/bin/sh\necho \"{name} $*\" >> /var/log/service-stub.log\n\
                 if [ \"$1\" = is-active ] || [ \"$2\" = is-active ]; then [ -e /run/stub-active ]; exit $?; fi\nexit 0\n"
            ),
        )
        .unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// Says whether the stubbed service is running.
pub fn set_service_active(root: &Path, active: bool) {
    let flag = root.join("run/stub-active");
    if active {
        fs::write(flag, "").unwrap();
    } else {
        let _ = fs::remove_file(flag);
    }
}

/// Service actions logged since the last call (and clears the log). `is-active` and
/// `is-enabled` queries and daemon-reloads are left out.
pub fn service_actions(root: &Path) -> Vec<String> {
    let log = root.join("var/log/service-stub.log");
    let text = fs::read_to_string(&log).unwrap_or_default();
    let _ = fs::remove_file(&log);
    text.lines()
        .filter(|l| {
            !l.contains("is-active") && !l.contains("is-enabled") && !l.contains("daemon-reload")
        })
        .map(str::to_string)
        .collect()
}

/// What an admin does before the first upgrade: edit the config, put files in data/,
/// plugins/, logs/ and a webapp bundle in client/plugins.
pub fn act_like_an_admin(root: &Path) {
    let data = root.join("opt/mattermost-daten");
    fs::write(
        data.join("config/config.json"),
        "{\n  \"ServiceSettings\": {\"SiteURL\": \"https://chat.example.org\"},\n  \"edited\": \"by the admin\"\n}\n",
    )
    .unwrap();
    for (path, bytes) in [
        ("data/users/abc/profile.png", &b"\x89PNG admin's avatar"[..]),
        ("data/teams/t1/channels/c1/file.pdf", b"%PDF attachment"),
        (
            "plugins/com.example.poll/plugin.json",
            b"{\"id\":\"com.example.poll\"}",
        ),
        (
            "plugins/com.example.poll/server/dist/plugin-linux-amd64",
            b"\x7fELF plugin",
        ),
        (
            "logs/mattermost.log",
            b"{\"level\":\"info\",\"msg\":\"Server is listening\"}\n",
        ),
    ] {
        let file = data.join(path);
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        fs::write(file, bytes).unwrap();
    }
    let bundle = root.join("opt/mattermost/client/plugins/com.example.poll");
    fs::create_dir_all(&bundle).unwrap();
    fs::write(bundle.join("main.js"), "webapp bundle").unwrap();
    chroot_ok(
        root,
        &[
            "chown",
            "-R",
            "mattermost:mattermost",
            "/opt/mattermost-daten",
            "/opt/mattermost/client/plugins",
        ],
    );
}

/// SHA-256 of every file below `dir`, by path relative to it.
pub fn checksums(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() && !p.is_symlink() {
                stack.push(p);
            } else if p.is_file() {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.insert(rel, hex::encode(Sha256::digest(fs::read(&p).unwrap())));
            }
        }
    }
    out
}

/// Asserts every file recorded in `before` is still there, byte for byte.
pub fn assert_unchanged(dir: &Path, before: &BTreeMap<String, String>, step: &str) {
    let now = checksums(dir);
    for (path, hash) in before {
        assert_eq!(
            now.get(path),
            Some(hash),
            "{step}: {path} under {} changed or vanished",
            dir.display()
        );
    }
}

/// Backups of config.json taken before package upgrades, oldest first.
pub fn config_backups(root: &Path) -> Vec<String> {
    config_copies(root, "config.json.bak-")
}

/// Copies of config.json the unit takes before a start, oldest first.
pub fn prestart_copies(root: &Path) -> Vec<String> {
    config_copies(root, "config.json.prestart-")
}

fn config_copies(root: &Path, prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(root.join("opt/mattermost-daten/config"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix))
        .collect();
    names.sort();
    names
}

/// The overall exposure level `systemd-analyze security` reports for mattermost.service.
pub fn exposure_level(report: &str) -> f64 {
    report
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for mattermost.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{report}"))
}

/// `getcap` of the server binary.
pub fn server_caps(root: &Path) -> String {
    chroot_ok(root, &["getcap", "/opt/mattermost/bin/mattermost"])
        .trim()
        .to_string()
}

/// Two tests of one lifecycle check: `$deb` runs `$body(Format::Deb)` with dpkg, `$rpm` runs
/// `$body(Format::Rpm)` with rpm, each only where its tool is installed.
#[macro_export]
macro_rules! deb_and_rpm_tests {
    ($body:ident => $deb:ident, $rpm:ident) => {
        #[test]
        fn $deb() {
            if Format::Deb.available() {
                $body(Format::Deb);
            }
        }

        #[test]
        fn $rpm() {
            if Format::Rpm.available() {
                $body(Format::Rpm);
            }
        }
    };
}
