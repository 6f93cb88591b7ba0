//! The packages under a real systemd: Debian 12 and 13 roots booted with `systemd-nspawn -b`,
//! a stand-in server (tests/common/standin.c) packaged as bin/mattermost, and the admin's
//! steps on a host: install (enabled, not started), configure, start (Type=notify, port 80
//! as the service account, `mmctl --local`), edit and restart, pin settings in the
//! environment file, upgrade while running, config in the database, remove (masked) and
//! reinstall, purge (only the data directory and the account stay). The RPM's scriptlets run
//! in the Debian 12 container with rpm, bash as /bin/sh and Fedora's presets: the closest to
//! an EL host this machine can boot (README "RPM scriptlets and EL").

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use common::boot::{Booted, text};
use common::fixture::Spec;
use common::lifecycle::{config_backups, exposure_level, prestart_copies};
use common::standin::standin;
use common::{build, have};

const CONFIG: &str = "opt/mattermost-daten/config/config.json";
const ENV_FILE: &str = "/etc/mattermost/mattermost.env";
const PING: &str = "curl -sS --fail --max-time 5 http://127.0.0.1:80/api/v4/system/ping";

/// The packages of two versions with the stand-in as their server, built once per run of
/// this test binary: (old deb, new deb, old rpm, new rpm).
fn packages() -> &'static [std::path::PathBuf; 4] {
    static BUILT: std::sync::OnceLock<(Vec<common::Built>, [std::path::PathBuf; 4])> =
        std::sync::OnceLock::new();
    let (_, paths) = BUILT.get_or_init(|| {
        let built: Vec<_> = ["9.11.90", "9.11.91"]
            .iter()
            .map(|v| {
                let spec = Spec {
                    program: Some(standin(v)),
                    ..Spec::new(v)
                };
                build(&spec, &[])
            })
            .collect();
        let paths = [
            built[0].deb.clone().unwrap(),
            built[1].deb.clone().unwrap(),
            built[0].rpm.clone().unwrap(),
            built[1].rpm.clone().unwrap(),
        ];
        (built, paths)
    });
    paths
}

/// Writes the admin's config.json through the host's view of the container's disk (the file
/// keeps its owner and mode, as an editor's save in place does).
fn write_config(host: &Booted, text: &str) {
    fs::write(host.root().join(CONFIG), text).unwrap();
}

fn read_config(host: &Booted) -> String {
    fs::read_to_string(host.root().join(CONFIG)).unwrap()
}

/// The admin's config: port 80, local mode on, a site URL to recognise it by.
fn admin_config(site: &str) -> String {
    format!(
        "{{\n  \"ServiceSettings\": {{\"SiteURL\": \"{site}\", \"ListenAddress\": \":80\", \
         \"EnableLocalMode\": true}},\n  \"SqlSettings\": {{\"DriverName\": \"postgres\", \
         \"DataSource\": \"postgres://mmuser:file@localhost/mattermost\"}}\n}}\n"
    )
}

fn snapshots(host: &Booted) -> Vec<String> {
    prestart_copies(host.root())
}

fn backups(host: &Booted) -> Vec<String> {
    config_backups(host.root())
}

fn unit_state(host: &Booted) -> (String, String) {
    (
        host.stdout("systemctl is-enabled mattermost.service"),
        host.stdout("systemctl is-active mattermost.service"),
    )
}

/// Starts (or restarts) the unit and waits for the server's answer on port 80. The test
/// restarts faster than systemd's start limit allows (five starts in ten seconds, which
/// `assert_start_limit_is_as_documented` proves): the counter is reset first.
fn restart(host: &Booted) -> String {
    host.sh_ok("systemctl reset-failed mattermost.service; systemctl restart mattermost.service");
    assert_eq!(
        host.stdout("systemctl is-active mattermost.service"),
        "active"
    );
    host.sh_ok(PING)
}

/// What the server under systemd sees and does, and where it listens: the assertions
/// every format shares once the service runs with the admin's config.
fn assert_running_server(host: &Booted, version: &str) {
    let uid = host.stdout("id -u mattermost");
    let ping = host.sh_ok(PING);
    assert!(
        ping.contains(&format!("\"version\":\"{version}\"")),
        "{ping}"
    );
    assert!(ping.contains(&format!("\"uid\":{uid},")), "{ping}");
    // Port 80 is bound by the service account (the ambient capability), as the kernel says.
    let tcp = host.stdout("cat /proc/net/tcp");
    let listener = tcp
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() > 7 && f[1].ends_with(":0050") && f[3] == "0A")
        .unwrap_or_else(|| panic!("nothing listens on port 80:\n{tcp}"));
    assert_eq!(listener[7], uid, "port 80 is not bound by mattermost");
    assert!(
        host.stdout("tail -n 1 /opt/mattermost-daten/logs/mattermost.log")
            .contains(&format!("\"version\":\"{version}\"")),
        "no log line of {version}"
    );

    // mmctl --local reaches the socket in /run/mattermost as root, and not as anyone else:
    // neither through mmctl's owner check nor the socket's mode (curl, the kernel's answer).
    let local = host.sh_ok("mmctl --local system ping");
    assert!(local.contains("\"local\":true"), "{local}");
    let denied = host.sh("runuser -u nobody -- mmctl --local system ping");
    assert!(!denied.status.success(), "{}", text(&denied));
    let curl = "curl -sS --unix-socket /run/mattermost/mattermost_local.socket \
                http://localhost/api/v4/system/ping";
    assert!(host.sh_ok(curl).contains("\"local\":true"));
    let denied = host.sh(&format!("runuser -u nobody -- {curl}"));
    // curl's exit code 7: it could not connect (the kernel refused: the socket is 0600).
    assert_eq!(denied.status.code(), Some(7), "{}", text(&denied));
}

/// `systemd-analyze security` of the running unit, online, in the container.
fn assert_exposure_at_most(host: &Booted, limit: f64) {
    let report = host.sh_ok("systemd-analyze security --no-pager mattermost.service");
    let exposure = exposure_level(&report);
    assert!(
        exposure <= limit,
        "exposure {exposure} > {limit}:\n{report}"
    );
}

/// A config edit survives restarts, and the server's own rewrite of config.json while
/// starting takes no pre-start copy: only the admin's versions fill the slots.
fn assert_restarts_keep_the_admins_versions(host: &Booted) {
    let before = snapshots(host);
    // The server rewrote the admin's file at the last start (it adds its version).
    assert!(read_config(host).contains("\"_server_version\""));
    restart(host);
    restart(host);
    assert_eq!(
        snapshots(host),
        before,
        "a restart copied the server's own rewrite of config.json"
    );
    let edited = admin_config("https://chat.example.org/edited");
    write_config(host, &edited);
    restart(host);
    let after = snapshots(host);
    assert_eq!(after.len(), before.len() + 1, "{after:?}");
    let copy = fs::read_to_string(
        host.root()
            .join("opt/mattermost-daten/config")
            .join(after.last().unwrap()),
    )
    .unwrap();
    assert_eq!(copy, edited, "the newest copy is not the admin's edit");
    assert!(read_config(host).contains("https://chat.example.org/edited"));
}

/// With the data source and the port pinned in the environment file, a config.json reset to
/// nothing still gives the server its database (the stand-in reports what it sees).
fn assert_env_file_survives_a_reset(host: &Booted) {
    let env = host.root().join(ENV_FILE.trim_start_matches('/'));
    let shipped = fs::read_to_string(&env).unwrap();
    assert!(
        shipped
            .lines()
            .all(|l| l.trim().is_empty() || l.starts_with('#')),
        "the shipped environment file sets something:\n{shipped}"
    );
    assert!(shipped.contains("MM_SQLSETTINGS_DATASOURCE"), "{shipped}");
    assert_eq!(
        host.stdout(&format!("stat -c '%U:%G %a' {ENV_FILE}")),
        "root:mattermost 640"
    );
    let dsn = "postgres://mmuser:pinned@db.example.org:5432/mattermost?sslmode=require";
    fs::write(
        &env,
        format!(
            "{shipped}MM_SQLSETTINGS_DATASOURCE={dsn}\nMM_SERVICESETTINGS_LISTENADDRESS=:80\n\
             MM_SERVICESETTINGS_ENABLELOCALMODE=true\n"
        ),
    )
    .unwrap();
    write_config(host, "");
    let ping = restart(host);
    assert!(
        ping.contains(&format!("\"datasource\":\"{dsn}\"")),
        "{ping}"
    );
}

/// Config in the database (MM_CONFIG a DSN): the server reads no file, and neither the
/// unit's pre-start copy nor the package's upgrade backup nor its seeding touch config.json.
fn assert_config_in_database(host: &Booted, reinstall: &str) {
    let env = host.root().join(ENV_FILE.trim_start_matches('/'));
    let mut text = fs::read_to_string(&env).unwrap();
    // Quoted, as admins write values: systemd and the scripts both take the quotes off.
    text.push_str("MM_CONFIG=\"postgres://mmuser:pinned@db.example.org:5432/mattermost\"\n");
    fs::write(&env, text).unwrap();
    let (snaps, baks) = (snapshots(host), backups(host));
    let config = host.root().join(CONFIG);
    fs::remove_file(&config).unwrap();
    let ping = restart(host);
    assert!(ping.contains("\"config\":\"database\""), "{ping}");
    let log = host.sh_ok(reinstall);
    assert!(
        log.contains("database"),
        "the package does not say so:\n{log}"
    );
    assert!(!config.exists(), "config.json was seeded:\n{log}");
    // The DSN holds a password: neither the scripts nor the unit's helper print it.
    assert!(!log.contains("pinned"), "{log}");
    assert!(
        host.journal().contains("MM_CONFIG names a database"),
        "{}",
        host.journal()
    );
    assert!(!host.journal().contains("pinned"), "{}", host.journal());
    assert_eq!(snapshots(host), snaps);
    assert_eq!(backups(host), baks);
    assert!(host.sh_ok(PING).contains("\"config\":\"database\""));
    // Back to a file for the rest of the test.
    let text = fs::read_to_string(&env).unwrap();
    fs::write(&env, text.replace("MM_CONFIG=", "#MM_CONFIG=")).unwrap();
    write_config(host, &admin_config("https://chat.example.org/edited"));
    host.sh_ok("chown mattermost:mattermost /opt/mattermost-daten/config/config.json");
    restart(host);
}

/// Five starts within ten seconds are systemd's default limit: a sixth quick manual restart
/// is refused until `systemctl reset-failed` (the README says so).
fn assert_start_limit_is_as_documented(host: &Booted) {
    let mut refused = None;
    for attempt in 1..=8 {
        let out = host.sh("systemctl restart mattermost.service");
        if !out.status.success() {
            refused = Some((attempt, text(&out)));
            break;
        }
    }
    let (attempt, message) = refused.expect("eight restarts in a row were all accepted");
    assert!(attempt <= 6, "refused only at restart {attempt}");
    assert!(
        host.stdout("systemctl show -p Result --value mattermost.service") == "start-limit-hit",
        "{message}"
    );
    host.sh_ok("systemctl reset-failed mattermost.service");
    restart(host);
}

/// Paths below the container's root, without the file systems the container mounts itself.
fn files(root: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if path.is_dir() && !path.is_symlink() {
                stack.push(path);
            }
            out.insert(rel);
        }
    }
    out
}

/// What may differ in a root after an install and a purge besides the data directory and
/// the account: the package managers' and systemd's own records, logs and our copies.
fn is_system_state(path: &str) -> bool {
    [
        "var/lib/dpkg/",
        "var/lib/rpm",
        "var/log/",
        "var/cache/",
        "var/tmp/",
        "var/lib/systemd/",
        "etc/passwd",
        "etc/group",
        "etc/shadow",
        "etc/gshadow",
        "etc/.pwd.lock",
    ]
    .iter()
    .any(|p| path.starts_with(p))
        && !path.contains("deb-systemd-helper")
}

fn assert_only_data_and_account_remain(host: &Booted, before: &BTreeSet<String>) {
    let after = files(host.root());
    let left: Vec<_> = after
        .difference(before)
        .filter(|p| !p.starts_with("opt/mattermost-daten") && !is_system_state(p))
        .collect();
    assert!(left.is_empty(), "left after purge: {left:?}");
    assert!(after.contains("opt/mattermost-daten/config/config.json"));
    host.sh_ok("getent passwd mattermost");
    assert!(!host.root().join("opt/mattermost").exists());
}

fn deb_lifecycle(suite: &str) {
    if !have("gcc") {
        return;
    }
    let [old, new, _, _] = packages();
    let Some(host) = Booted::boot(suite) else {
        return;
    };
    let (old, new) = (host.copy_in(old), host.copy_in(new));
    let before = files(host.root());

    // Install: enabled, not started, the next steps said; the environment file a conffile.
    let log = host.sh_ok(&format!("dpkg -i {old}"));
    assert!(log.contains("enabled but not started"), "{log}");
    assert_eq!(unit_state(&host), ("enabled".into(), "inactive".into()));
    assert!(
        host.stdout("dpkg-query -W -f '${Conffiles}' mattermost")
            .contains(ENV_FILE)
    );

    // Start with the admin's config: Type=notify reaches active, the server answers.
    write_config(&host, &admin_config("https://chat.example.org"));
    restart(&host);
    assert_running_server(&host, "9.11.90");
    assert_exposure_at_most(&host, 2.0);
    assert_restarts_keep_the_admins_versions(&host);
    assert_start_limit_is_as_documented(&host);
    assert_env_file_survives_a_reset(&host);
    write_config(&host, &admin_config("https://chat.example.org/edited"));
    restart(&host);

    // Upgrade while running: restarted onto the new version, config and env file kept.
    let log = host.sh_ok(&format!("dpkg -i {new}"));
    assert_eq!(
        unit_state(&host),
        ("enabled".into(), "active".into()),
        "{log}"
    );
    assert_running_server(&host, "9.11.91");
    let config = read_config(&host);
    assert!(
        config.contains("https://chat.example.org/edited"),
        "{config}"
    );
    assert!(
        config.contains("\"_server_version\": \"9.11.91\""),
        "{config}"
    );
    assert!(backups(&host).iter().any(|b| b.contains("9.11.90-1")));
    assert!(
        fs::read_to_string(host.root().join(ENV_FILE.trim_start_matches('/')))
            .unwrap()
            .contains("MM_SQLSETTINGS_DATASOURCE=postgres://")
    );
    assert_config_in_database(&host, &format!("dpkg -i {new}"));

    // Remove: stopped and masked; the data stays. A reinstall says the server is not started.
    host.sh_ok("dpkg -r mattermost");
    assert_eq!(unit_state(&host), ("masked".into(), "inactive".into()));
    assert!(host.root().join(CONFIG).exists());
    let log = host.sh_ok(&format!("dpkg -i {new}"));
    assert_eq!(unit_state(&host), ("enabled".into(), "inactive".into()));
    assert!(log.contains("not running"), "{log}");
    restart(&host);
    assert_running_server(&host, "9.11.91");

    // Purge: only the data directory and the account remain, and dpkg warns of nothing.
    let log = host.sh_ok("dpkg --purge mattermost");
    assert!(!log.contains("warning"), "{log}");
    assert_eq!(
        host.stdout("systemctl is-active mattermost.service"),
        "inactive"
    );
    assert_only_data_and_account_remain(&host, &before);
}

#[test]
fn deb_runs_under_systemd_on_debian_12() {
    deb_lifecycle("bookworm");
}

#[test]
fn deb_runs_under_systemd_on_debian_13() {
    deb_lifecycle("trixie");
}

/// The RPM's scriptlets under a real systemd (252, EL9's version) with what an EL host
/// differs in for them: /bin/sh is bash, and the presets disable what they do not name
/// (Fedora's and EL's 99-default-disable.preset), so a fresh install is not enabled until a
/// preset or the admin says so.
#[test]
fn rpm_scriptlets_run_under_systemd_with_el_presets() {
    if !have("gcc") {
        return;
    }
    let [_, _, old, new] = packages();
    let Some(host) = Booted::boot("bookworm") else {
        return;
    };
    let (old, new) = (host.copy_in(old), host.copy_in(new));
    // EL's /bin/sh, its presets' last word, and the directory its filesystem package owns
    // (rpm would create it as a parent of the licence and leave it).
    host.sh_ok(
        "ln -sf bash /bin/sh && mkdir -p /usr/lib/systemd/system-preset /usr/share/licenses && \
         echo 'disable *' > /usr/lib/systemd/system-preset/99-default-disable.preset && \
         rpm --initdb",
    );
    let before = files(host.root());
    // The Debian root's own packages are not in the rpm database: --nodeps.
    let rpm = |args: &str| host.sh_ok(&format!("rpm --nodeps {args}"));

    let log = rpm(&format!("-i {old}"));
    assert_eq!(unit_state(&host), ("disabled".into(), "inactive".into()));
    assert!(log.contains("not enabled"), "{log}");
    assert_eq!(
        host.stdout("rpm -V --nodeps mattermost"),
        "",
        "rpm -V after install"
    );
    assert_eq!(
        host.stdout(&format!("stat -c '%U:%G %a' {ENV_FILE}")),
        "root:mattermost 640"
    );
    assert!(host.stdout("rpm -qc mattermost").contains(ENV_FILE));

    write_config(&host, &admin_config("https://chat.example.org"));
    host.sh_ok("systemctl enable --now mattermost.service");
    host.sh_ok(PING);
    assert_running_server(&host, "9.11.90");
    assert_exposure_at_most(&host, 2.0);
    assert_restarts_keep_the_admins_versions(&host);
    assert_env_file_survives_a_reset(&host);
    write_config(&host, &admin_config("https://chat.example.org/edited"));
    restart(&host);

    // Upgrade while running: the old package's %postun restarts onto the new files.
    rpm(&format!("-U {new}"));
    assert_eq!(unit_state(&host), ("enabled".into(), "active".into()));
    assert_running_server(&host, "9.11.91");
    assert!(read_config(&host).contains("https://chat.example.org/edited"));
    assert!(backups(&host).iter().any(|b| b.contains("9.11.90-1")));
    assert_config_in_database(&host, &format!("rpm --nodeps -U --replacepkgs {new}"));

    // Erase: stopped and disabled; the edited environment file is kept as .rpmsave. With a
    // site preset that enables the unit, a new install is enabled (still not started).
    rpm("-e mattermost");
    assert_eq!(unit_state(&host).1, "inactive");
    assert!(
        host.root()
            .join("etc/mattermost/mattermost.env.rpmsave")
            .exists()
    );
    host.sh_ok(
        "mkdir -p /etc/systemd/system-preset && \
         echo 'enable mattermost.service' > /etc/systemd/system-preset/50-mattermost.preset",
    );
    let log = rpm(&format!("-i {new}"));
    assert_eq!(unit_state(&host), ("enabled".into(), "inactive".into()));
    assert!(log.contains("not running"), "{log}");
    rpm("-e mattermost");
    host.sh_ok(
        "rm -f /etc/systemd/system-preset/50-mattermost.preset \
         /etc/mattermost/mattermost.env.rpmsave && rmdir /etc/mattermost /etc/systemd/system-preset",
    );
    assert_only_data_and_account_remain(&host, &before);
}
