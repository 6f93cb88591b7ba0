//! Debian roots booted with a real systemd (`systemd-nspawn -b`), for the tests that run the
//! packages the way a host does: enable, start, restart, upgrade while running, stop, mask.
//!
//! The container boots an overlay of a cached root ([`super::boot_root_base`]): what it
//! writes lands in a directory of its own and goes with it, and the 400 MB root is neither
//! copied nor written. It gets a private network (only its loopback: the server may bind
//! port 80 without touching the host's),
//! `--register=no --keep-unit` (the host need not run systemd), and commands run inside it
//! through `nsenter` into the namespaces of its PID 1, with a clean environment.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::{boot_root_base, have, run};

/// A booted container; powered off and removed when dropped.
pub struct Booted {
    /// Holds `root/` (the overlay the container boots), `upper/` and `work/` (overlayfs's),
    /// and the console's log.
    dir: tempfile::TempDir,
    /// `dir/root`, the container's root directory on the host.
    root: PathBuf,
    nspawn: Child,
    /// PID (in the host's namespace) of the container's systemd.
    leader: u32,
    console: PathBuf,
    /// The control groups the container runs in, removed after it.
    cgroups: Vec<PathBuf>,
}

/// How long a boot may take before the test gives up.
const BOOT_TIMEOUT: Duration = Duration::from_secs(120);

impl Booted {
    /// Boots a copy of the cached `suite` root. `None` (the test is skipped, or fails under
    /// MM_PKG_TEST_STRICT=1) without root, debootstrap, systemd-nspawn or nsenter.
    pub fn boot(suite: &str) -> Option<Booted> {
        if !have("systemd-nspawn") || !have("nsenter") {
            return None;
        }
        let base = boot_root_base(suite)?;
        Some(Self::boot_over(&base, suite))
    }

    fn boot_over(base: &Path, suite: &str) -> Booted {
        let dir = tempfile::Builder::new()
            .prefix(&format!("{suite}-booted-"))
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        let root = dir.path().join("root");
        for sub in ["root", "upper", "work"] {
            fs::create_dir(dir.path().join(sub)).unwrap();
        }
        let options = format!(
            "lowerdir={},upperdir={},workdir={}",
            base.display(),
            dir.path().join("upper").display(),
            dir.path().join("work").display()
        );
        let mounted = Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o", &options])
            .arg(&root)
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            // A kernel without overlayfs: a copy does the same, slower.
            eprintln!("no overlay mount; copying {}", base.display());
            run(Command::new("cp")
                .arg("-a")
                .arg(format!("{}/.", base.display()))
                .arg(&root));
        }
        // The root's own machine id is the cached root's: nspawn then derives a random one.
        let _ = fs::remove_file(root.join("etc/machine-id"));
        // The container has a loopback and nothing else: systemd-networkd-wait-online would
        // hold network-online.target (which the unit wants) for its whole 2-minute timeout.
        let wait_online = root.join("etc/systemd/system/systemd-networkd-wait-online.service");
        std::os::unix::fs::symlink("/dev/null", wait_online).unwrap();
        let console = dir.path().join("console.log");
        let log = fs::File::create(&console).unwrap();
        // Each container in a control group of its own: without a systemd on the host,
        // nspawn --keep-unit puts the container's cgroups (payload/, and below it the
        // container's system.slice/...) below its own, and two containers started from one
        // cgroup would create, use and remove the same ones.
        let cgroups = own_cgroups(dir.path());
        let mut enter = String::new();
        for dir in &cgroups {
            enter.push_str(&format!("echo $$ > '{}/cgroup.procs' && ", dir.display()));
        }
        let nspawn = Command::new("sh")
            .arg("-c")
            .arg(format!("{enter}exec \"$@\""))
            .args([
                "sh",
                "systemd-nspawn",
                "--boot",
                "--register=no",
                "--keep-unit",
                "--private-network",
                "--console=read-only",
                "--quiet",
                "-D",
            ])
            .arg(&root)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("systemd-nspawn runs");
        let mut booted = Booted {
            dir,
            root,
            nspawn,
            leader: 0,
            console,
            cgroups,
        };
        booted.leader = booted.wait_for_leader();
        booted.wait_until_running();
        booted
    }

    /// The container's PID 1 as the host sees it: the child of systemd-nspawn.
    fn wait_for_leader(&mut self) -> u32 {
        let start = Instant::now();
        loop {
            if let Some(status) = self.nspawn.try_wait().unwrap() {
                panic!(
                    "systemd-nspawn exited ({status}) before the container booted:\n{}",
                    self.console_log()
                );
            }
            // The container's init runs as systemd once nspawn's child has executed it.
            if let Some(pid) = child_of(self.nspawn.id()) {
                return pid;
            }
            assert!(
                start.elapsed() < BOOT_TIMEOUT,
                "no container process after {BOOT_TIMEOUT:?}:\n{}",
                self.console_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until systemd in the container has finished booting (`running`, or `degraded`
    /// with the failed units shown).
    fn wait_until_running(&self) {
        let start = Instant::now();
        loop {
            let out = self.run(&["systemctl", "is-system-running", "--wait"]);
            let state = String::from_utf8_lossy(&out.stdout).trim().to_string();
            match state.as_str() {
                "running" => return,
                "degraded" => {
                    let failed = self.run(&["systemctl", "--failed", "--no-pager"]);
                    eprintln!(
                        "the container booted degraded:\n{}",
                        String::from_utf8_lossy(&failed.stdout)
                    );
                    return;
                }
                _ => {}
            }
            assert!(
                start.elapsed() < BOOT_TIMEOUT,
                "the container did not finish booting ({state}):\n{}",
                self.console_log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The container's root directory on the host.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// What the container printed on its console so far.
    pub fn console_log(&self) -> String {
        fs::read_to_string(&self.console).unwrap_or_default()
    }

    /// Runs `args` inside the container as root (all its namespaces, a clean environment);
    /// returns the output whatever the status.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new("nsenter")
            .arg("-t")
            .arg(self.leader.to_string())
            .args(["-a", "--", "env", "-i"])
            .args([
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "LANG=C.UTF-8",
                "DEBIAN_FRONTEND=noninteractive",
                "SYSTEMD_PAGER=",
                "SYSTEMD_COLORS=0",
            ])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("nsenter runs")
    }

    /// Runs the shell command line `script` inside the container; returns the output.
    pub fn sh(&self, script: &str) -> Output {
        self.run(&["sh", "-c", script])
    }

    /// Like [`Booted::sh`], panicking with the output and the unit's journal unless it
    /// succeeds; returns stdout and stderr.
    pub fn sh_ok(&self, script: &str) -> String {
        let out = self.sh(script);
        let text = text(&out);
        assert!(
            out.status.success(),
            "in the container, `{script}` failed ({}):\n{text}\njournal of mattermost.service:\n{}",
            out.status,
            self.journal()
        );
        text
    }

    /// stdout of `script`, trimmed, whatever its status.
    pub fn stdout(&self, script: &str) -> String {
        String::from_utf8_lossy(&self.sh(script).stdout)
            .trim()
            .to_string()
    }

    /// The journal of mattermost.service, for failure messages.
    pub fn journal(&self) -> String {
        self.stdout("journalctl -u mattermost.service --no-pager -o short-monotonic | tail -n 40")
    }

    /// Copies `file` into the container's /var/tmp and returns its path there (the
    /// container's /tmp may be a tmpfs the host does not see).
    pub fn copy_in(&self, file: &Path) -> String {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        fs::copy(file, self.root().join("var/tmp").join(&name)).unwrap();
        format!("/var/tmp/{name}")
    }
}

impl Drop for Booted {
    /// Powers the container off (systemd-nspawn turns SIGTERM into a clean shutdown), or
    /// kills it after a grace period.
    fn drop(&mut self) {
        // SAFETY: a plain kill(2) of the child this struct spawned and has not reaped.
        unsafe {
            libc::kill(self.nspawn.id() as libc::pid_t, libc::SIGTERM);
        }
        let start = Instant::now();
        let mut stopped = false;
        while start.elapsed() < Duration::from_secs(20) {
            if let Ok(Some(_)) = self.nspawn.try_wait() {
                stopped = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if !stopped {
            // Killing the container's PID 1 ends every process in its namespace, which
            // killing nspawn alone would leave running.
            // SAFETY: plain kill(2) calls on processes this struct started.
            unsafe {
                if self.leader != 0 {
                    libc::kill(self.leader as libc::pid_t, libc::SIGKILL);
                }
            }
            let _ = self.nspawn.kill();
            let _ = self.nspawn.wait();
        }
        for dir in &self.cgroups {
            remove_cgroup(dir);
        }
        let _ = Command::new("umount").arg(&self.root).status();
    }
}

/// Control groups named after the container's directory, one in each hierarchy where systemd
/// tracks processes: the named v1 hierarchy `systemd` and the cgroup2 one (at
/// /sys/fs/cgroup/unified on a hybrid host, /sys/fs/cgroup on a unified one).
fn own_cgroups(root: &Path) -> Vec<PathBuf> {
    let name = root.file_name().unwrap();
    let mut out = Vec::new();
    for hierarchy in [
        "/sys/fs/cgroup/systemd",
        "/sys/fs/cgroup/unified",
        "/sys/fs/cgroup",
    ] {
        let hierarchy = Path::new(hierarchy);
        if hierarchy.join("cgroup.procs").exists() {
            let dir = hierarchy.join(name);
            fs::create_dir(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
            out.push(dir);
        }
    }
    out
}

/// Removes the control group `dir` and those below it, deepest first (a control group goes
/// once no process is left in it).
fn remove_cgroup(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup(&entry.path());
            }
        }
    }
    let _ = fs::remove_dir(dir);
}

/// stdout and stderr of `out` as text.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The PID of the child process of `parent` that runs systemd, from /proc.
fn child_of(parent: u32) -> Option<u32> {
    for entry in fs::read_dir("/proc").ok()? {
        let name = entry.ok()?.file_name();
        let Ok(pid) = name.to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces, so split after its ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if ppid == Some(parent) && comm.trim() == "systemd" {
            return Some(pid);
        }
    }
    None
}
