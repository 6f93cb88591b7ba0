//! What dpkg-deb, rpm and systemd-analyze read back from the packages: the same layout in
//! both formats, the relations, the scripts and a hardened unit.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::process::Command;

use common::fixture::Spec;
use common::{build, have, run};

/// One installed path as a package lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Item {
    kind: char,
    mode: u32,
    owner: String,
    target: Option<String>,
}

/// Paths of the .deb from `dpkg-deb --contents`.
fn deb_items(deb: &Path) -> BTreeMap<String, Item> {
    let listing = run(Command::new("dpkg-deb").arg("--contents").arg(deb));
    let mut items = BTreeMap::new();
    for line in listing.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let perms = fields[0];
        let name_at = 5;
        let path = fields[name_at]
            .trim_start_matches('.')
            .trim_end_matches('/')
            .to_string();
        let target = (fields.len() > name_at + 2 && fields[name_at + 1] == "->")
            .then(|| fields[name_at + 2].to_string());
        let path = if path.is_empty() {
            "/".to_string()
        } else {
            path
        };
        items.insert(
            path,
            Item {
                kind: perms.chars().next().unwrap(),
                mode: mode_bits(&perms[1..]),
                owner: fields[1].to_string(),
                target,
            },
        );
    }
    items
}

fn mode_bits(rwx: &str) -> u32 {
    rwx.chars()
        .fold(0, |acc, c| (acc << 1) | u32::from(c != '-'))
}

/// Paths of the .rpm from `rpm -qp --dump`.
fn rpm_items(rpm: &Path) -> BTreeMap<String, Item> {
    let dump = run(Command::new("rpm").args(["-qp", "--dump"]).arg(rpm));
    dump.lines()
        .map(|line| {
            let f: Vec<&str> = line.split(' ').collect();
            let mode = u32::from_str_radix(f[4], 8).unwrap();
            let kind = match mode & 0o170000 {
                0o040000 => 'd',
                0o120000 => 'l',
                _ => '-',
            };
            let target = (kind == 'l').then(|| f[10].to_string());
            (
                f[0].to_string(),
                Item {
                    kind,
                    mode: if kind == 'l' { 0o777 } else { mode & 0o7777 },
                    owner: format!("{}/{}", f[5], f[6]),
                    target,
                },
            )
        })
        .collect()
}

#[test]
fn deb_and_rpm_install_the_same_layout() {
    if !have("dpkg-deb") || !have("rpm") {
        return;
    }
    let built = build(&Spec::new("9.11.90"), &[]);
    let deb = deb_items(built.deb.as_ref().unwrap());
    let rpm = rpm_items(built.rpm.as_ref().unwrap());

    // Program files: root-owned, 0755 dirs and executables, 0644 files.
    let server = &deb["/opt/mattermost/bin/mattermost"];
    assert_eq!(
        (server.kind, server.mode, server.owner.as_str()),
        ('-', 0o750, "root/root"),
        "the .deb stores it root-owned; postinst's dpkg-statoverride adds the group"
    );
    assert_eq!(deb["/opt/mattermost/bin"].mode, 0o755);
    assert_eq!(deb["/opt/mattermost/i18n/en.json"].mode, 0o644);
    assert_eq!(rpm["/opt/mattermost/bin/mattermost"].mode, 0o750);
    assert_eq!(
        rpm["/opt/mattermost/bin/mattermost"].owner,
        "root/mattermost"
    );

    // The data directories are symlinks, and nothing upstream ships lands below them.
    for dir in ["config", "data", "logs", "plugins"] {
        let path = format!("/opt/mattermost/{dir}");
        let want = Some(format!("../mattermost-daten/{dir}"));
        assert_eq!(deb[&path].kind, 'l', "{path} in the .deb");
        assert_eq!(deb[&path].target, want, "{path} in the .deb");
        assert_eq!(rpm[&path].target, want, "{path} in the .rpm");
        for items in [&deb, &rpm] {
            assert!(
                !items.keys().any(|p| p.starts_with(&format!("{path}/"))),
                "something below {path}"
            );
        }
    }
    assert!(deb.contains_key("/opt/mattermost/defaults/config/config.json"));
    assert!(rpm.contains_key("/opt/mattermost/defaults/config/config.json"));
    assert!(
        !deb.keys().any(|p| p.starts_with("/opt/mattermost-daten")),
        "the data dir is made by scripts"
    );

    // mmctl on the PATH (a wrapper), the unit in the systemd system directory.
    assert_eq!(
        (deb["/usr/bin/mmctl"].kind, deb["/usr/bin/mmctl"].mode),
        ('-', 0o755)
    );
    assert_eq!(
        (rpm["/usr/bin/mmctl"].kind, rpm["/usr/bin/mmctl"].mode),
        ('-', 0o755)
    );
    assert!(deb.contains_key("/usr/lib/systemd/system/mattermost.service"));
    assert!(rpm.contains_key("/usr/lib/systemd/system/mattermost.service"));

    // The server's own files: RPM records the owner; the .deb stores root and lists them for postinst.
    for path in [
        "/opt/mattermost/client/plugins",
        "/opt/mattermost/client/root.html",
        "/opt/mattermost/client/manifest.json",
        "/opt/mattermost/client/main.css",
        "/opt/mattermost/client/files/code_themes/github.css",
    ] {
        assert_eq!(rpm[path].owner, "mattermost/mattermost", "{path}");
        assert_eq!(deb[path].owner, "root/root", "{path}");
    }
    assert_eq!(rpm["/opt/mattermost/client/main.js"].owner, "root/root");
    let postinst = control_file(built.deb.as_ref().unwrap(), "postinst");
    for path in [
        "/opt/mattermost/client/root.html",
        "/opt/mattermost/client/main.css",
        "/opt/mattermost/client/plugins",
    ] {
        assert!(
            postinst.contains(&format!("'{path}'")),
            "postinst does not chown {path}"
        );
    }

    // Same program files in both formats, with the same modes.
    let program = |items: &BTreeMap<String, Item>| -> BTreeMap<String, (char, u32)> {
        items
            .iter()
            .filter(|(p, _)| {
                p.starts_with("/opt/")
                    || p.as_str() == "/usr/bin/mmctl"
                    || p.starts_with("/usr/lib/systemd/")
            })
            .filter(|(p, i)| i.kind != 'd' || p.starts_with("/opt/mattermost"))
            .map(|(p, i)| (p.clone(), (i.kind, i.mode)))
            .collect()
    };
    assert_eq!(program(&deb), program(&rpm));

    // Every parent directory has an entry, as dpkg-deb makes them, except /opt: base-files
    // creates it without listing it, and a package listing it would be its only owner, whose
    // purge warns that /opt is not empty (the data directory stays there).
    assert!(!deb.contains_key("/opt"), "the .deb lists /opt as its own");
    for path in deb.keys() {
        let mut parent = Path::new(path).parent();
        while let Some(p) = parent {
            let p = p.to_str().unwrap();
            assert!(
                p == "/opt" || deb.get(p).is_some_and(|i| i.kind == 'd'),
                "{p} (parent of {path}) missing from the .deb"
            );
            parent = Path::new(p).parent();
        }
    }
}

/// /etc/mattermost/mattermost.env is the admin's file in both formats: a Debian conffile, an
/// RPM `%config(noreplace)`, root's and readable by the group mattermost only (the .deb
/// stores root's group; postinst gives it to mattermost), shipped with comments only.
#[test]
fn environment_file_is_a_config_file_of_the_admin() {
    if !have("dpkg-deb") || !have("rpm") {
        return;
    }
    let built = build(&Spec::new("9.11.90"), &[]);
    let (deb, rpm) = (built.deb.as_ref().unwrap(), built.rpm.as_ref().unwrap());
    let path = "/etc/mattermost/mattermost.env";
    assert_eq!(control_file(deb, "conffiles"), format!("{path}\n"));
    let deb_items = deb_items(deb);
    assert_eq!(
        (deb_items[path].mode, deb_items[path].owner.as_str()),
        (0o640, "root/root")
    );
    assert_eq!(deb_items["/etc/mattermost"].mode, 0o755);
    let flags = run(Command::new("rpm")
        .args(["-qp", "--qf", "[%{FILENAMES} %{FILEFLAGS:fflags}\n]"])
        .arg(rpm));
    assert!(flags.lines().any(|l| l == format!("{path} cn")), "{flags}");
    assert_eq!(
        flags.lines().filter(|l| l.ends_with(" cn")).count(),
        1,
        "{flags}"
    );
    let rpm_items = rpm_items(rpm);
    assert_eq!(
        (rpm_items[path].mode, rpm_items[path].owner.as_str()),
        (0o640, "root/mattermost")
    );
    let dir = tempfile::tempdir().unwrap();
    run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(dir.path()));
    let text = fs::read_to_string(dir.path().join(&path[1..])).unwrap();
    assert!(
        text.lines().all(|l| l.is_empty() || l.starts_with('#')),
        "{text}"
    );
    for setting in ["MM_SQLSETTINGS_DATASOURCE=", "MM_CONFIG="] {
        assert!(text.contains(&format!("#{setting}")), "{text}");
    }
    // No version in it: an admin who edited it gets no conffile question on upgrades.
    assert!(!text.contains("9.11.90"), "{text}");
}

fn control_file(deb: &Path, name: &str) -> String {
    run(Command::new("dpkg-deb").args(["--info"]).arg(deb).arg(name))
}

#[test]
fn deb_structure_control_and_md5sums() {
    if !have("dpkg-deb") || !have("ar") || !have("md5sum") {
        return;
    }
    let built = build(&Spec::new("9.11.90"), &["--format", "deb"]);
    let deb = built.deb.as_ref().unwrap();
    let members = run(Command::new("ar").arg("t").arg(deb));
    let members: Vec<&str> = members.lines().collect();
    assert_eq!(members, ["debian-binary", "control.tar.gz", "data.tar.gz"]);
    assert!(members.iter().all(|m| m.len() <= 15));

    let control = control_file(deb, "control");
    for field in [
        "Package: mattermost\n",
        "Version: 9.11.90-1\n",
        "Architecture: amd64\n",
        "Pre-Depends: adduser\n",
        "Depends: libcap2-bin, ca-certificates\n",
        "Suggests: postgresql\n",
        "Conflicts: mattermost-team\n",
        "Replaces: mattermost-team\n",
        "Provides: mattermost-team\n",
    ] {
        assert!(
            control.contains(field),
            "control lacks {field:?}:\n{control}"
        );
    }
    assert!(control.contains("\nInstalled-Size: "));
    let description_lines = control
        .lines()
        .skip_while(|l| !l.starts_with("Description:"))
        .count();
    assert!(description_lines > 3, "extended description expected");

    // GNU tar without PAX headers, which dpkg refuses.
    let tar = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(deb)
        .output()
        .unwrap()
        .stdout;
    let mut archive = tar::Archive::new(&tar[..]);
    for entry in archive.entries().unwrap().raw(true) {
        let entry = entry.unwrap();
        let kind = entry.header().entry_type();
        assert!(
            !kind.is_pax_global_extensions() && !kind.is_pax_local_extensions(),
            "PAX header in data.tar"
        );
    }

    // md5sums agree with the unpacked files.
    let dir = tempfile::tempdir().unwrap();
    run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(dir.path()));
    let md5sums = control_file(deb, "md5sums");
    assert!(md5sums.contains("  opt/mattermost/bin/mattermost\n"));
    fs::write(dir.path().join("md5sums"), &md5sums).unwrap();
    run(Command::new("md5sum")
        .args(["--check", "--quiet", "md5sums"])
        .current_dir(dir.path()));

    // Documentation Debian expects.
    let docs = dir.path().join("usr/share/doc/mattermost");
    let copyright = fs::read_to_string(docs.join("copyright")).unwrap();
    assert!(
        copyright.contains("Mattermost Enterprise Edition License"),
        "the edition's licence text"
    );
    assert!(docs.join("changelog.Debian.gz").exists());
    assert!(
        dir.path()
            .join("usr/share/lintian/overrides/mattermost")
            .exists()
    );
}

#[test]
fn team_edition_carries_its_own_licence_and_relations() {
    if !have("dpkg-deb") || !have("rpm") {
        return;
    }
    let built = build(&Spec::team("9.11.90"), &[]);
    let deb = built.deb.as_ref().unwrap();
    let control = control_file(deb, "control");
    assert!(control.contains("Package: mattermost-team\n"));
    assert!(
        control.contains("Conflicts: mattermost\n") && control.contains("Replaces: mattermost\n")
    );
    let dir = tempfile::tempdir().unwrap();
    run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(dir.path()));
    let copyright =
        fs::read_to_string(dir.path().join("usr/share/doc/mattermost-team/copyright")).unwrap();
    assert!(copyright.contains("The MIT License"));
    let rpm = built.rpm.as_ref().unwrap();
    let info = run(Command::new("rpm")
        .args(["-qp", "--qf", "%{NAME} %{LICENSE}\\n"])
        .arg(rpm));
    assert_eq!(info, "mattermost-team MIT\n");
    let conflicts = run(Command::new("rpm").args(["-qp", "--conflicts"]).arg(rpm));
    assert_eq!(conflicts.trim(), "mattermost");
    let provides = run(Command::new("rpm").args(["-qp", "--provides"]).arg(rpm));
    assert!(provides.lines().any(|l| l == "mattermost"));
}

#[test]
fn rpm_metadata_requires_scripts_and_digests() {
    if !have("rpm") {
        return;
    }
    let built = build(&Spec::new("9.11.90"), &["--format", "rpm"]);
    let rpm = built.rpm.as_ref().unwrap();
    let checked = run(Command::new("rpm").arg("-K").arg(rpm));
    assert!(checked.trim_end().ends_with("digests OK"), "{checked}");

    let info = run(Command::new("rpm")
        .args([
            "-qp",
            "--qf",
            "%{NAME}|%{VERSION}|%{RELEASE}|%{ARCH}|%{LICENSE}|%{URL}|%{SUMMARY}\\n",
        ])
        .arg(rpm));
    assert_eq!(
        info,
        "mattermost|9.11.90|1|x86_64|LicenseRef-Mattermost-Enterprise|https://mattermost.com|Self-hosted team messaging server (Enterprise Edition)\n"
    );
    let requires = run(Command::new("rpm")
        .args(["-qp", "--qf", "[%{REQUIREFLAGS:deptype} %{REQUIRENAME}\\n]"])
        .arg(rpm));
    let requires: BTreeSet<&str> = requires.lines().collect();
    assert!(requires.contains("pre shadow-utils"), "{requires:?}");
    for dep in [
        "pre util-linux",
        "pre diffutils",
        "post findutils",
        "post /usr/sbin/setcap",
        "post systemd",
        "post util-linux",
        "preun systemd",
        "postun systemd",
        "manual ca-certificates",
    ] {
        assert!(requires.contains(dep), "{dep} not in {requires:?}");
    }
    let recommends = run(Command::new("rpm").args(["-qp", "--recommends"]).arg(rpm));
    assert!(recommends.trim().is_empty(), "{recommends}");
    let suggests = run(Command::new("rpm").args(["-qp", "--suggests"]).arg(rpm));
    assert!(suggests.lines().any(|l| l == "postgresql-server"));
    let meta = run(Command::new("rpm")
        .args(["-qp", "--qf", "%{VENDOR}|%{GROUP}|%{SOURCERPM}"])
        .arg(rpm));
    assert_eq!(meta, "(none)|(none)|mattermost-9.11.90-1.src.rpm");
    let changelog = run(Command::new("rpm").args(["-qp", "--changelog"]).arg(rpm));
    assert!(changelog.contains("9.11.90-1"));
    let licence = run(Command::new("rpm").args(["-qp", "--licensefiles"]).arg(rpm));
    assert_eq!(licence.trim(), "/usr/share/licenses/mattermost/LICENSE.txt");

    let caps = run(Command::new("rpm").args(["-qp", "--filecaps"]).arg(rpm));
    assert!(
        caps.lines()
            .any(|l| l == "/opt/mattermost/bin/mattermost\tcap_net_bind_service=ep"),
        "the RPM records the capability itself:\n{caps}"
    );
    let scripts = run(Command::new("rpm").args(["-qp", "--scripts"]).arg(rpm));
    for section in [
        "preinstall scriptlet",
        "postinstall scriptlet",
        "preuninstall scriptlet",
        "postuninstall scriptlet",
    ] {
        assert!(scripts.contains(section), "no {section}");
    }
    let verify = run(Command::new("rpm")
        .args(["-qp", "--qf", "[%{FILENAMES} %{FILEVERIFYFLAGS}\\n]"])
        .arg(rpm));
    let flags = |path: &str| {
        verify
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{path} ")))
            .and_then(|f| f.parse::<i64>().ok())
            .unwrap()
    };
    // The files the server rewrites are exempt from digest, size and mtime checks.
    assert_eq!(flags("/opt/mattermost/client/root.html") & 0b100011, 0);
    assert_eq!(flags("/opt/mattermost/client/main.js") & 0b100011, 0b100011);
}

#[test]
fn every_maintainer_script_is_valid_shell() {
    if !have("dpkg-deb") || !have("rpm") || !have("dash") {
        return;
    }
    let built = build(&Spec::new("9.11.90"), &[]);
    let dir = tempfile::tempdir().unwrap();
    run(Command::new("dpkg-deb")
        .arg("-e")
        .arg(built.deb.as_ref().unwrap())
        .arg(dir.path()));
    for name in ["preinst", "postinst", "prerm", "postrm"] {
        let path = dir.path().join(name);
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("#!/bin/sh\n"), "{name} has no #!/bin/sh");
        run(Command::new("dash").arg("-n").arg(&path));
    }
    let rpm = built.rpm.as_ref().unwrap();
    for tag in ["PREIN", "POSTIN", "PREUN", "POSTUN"] {
        let script = run(Command::new("rpm")
            .args(["-qp", "--qf", &format!("%{{{tag}}}")])
            .arg(rpm));
        let path = dir.path().join(tag);
        fs::write(&path, script).unwrap();
        run(Command::new("dash").arg("-n").arg(&path));
    }
}

#[test]
fn unit_is_hardened_and_complete() {
    if !have("dpkg-deb") || !have("systemd-analyze") {
        return;
    }
    let built = build(&Spec::new("9.11.90"), &["--format", "deb"]);
    let dir = tempfile::tempdir().unwrap();
    run(Command::new("dpkg-deb")
        .arg("-x")
        .arg(built.deb.as_ref().unwrap())
        .arg(dir.path()));
    let unit_path = dir.path().join("usr/lib/systemd/system/mattermost.service");
    let unit = fs::read_to_string(&unit_path).unwrap();
    for line in [
        "Type=notify",
        "ExecStart=/opt/mattermost/bin/mattermost",
        "WorkingDirectory=/opt/mattermost",
        "User=mattermost",
        "Group=mattermost",
        "TimeoutStartSec=3600",
        "KillMode=mixed",
        "Restart=always",
        "RestartSec=10",
        "LimitNOFILE=49152",
        "Wants=network-online.target",
        "After=network-online.target postgresql.service mysql.service",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "ReadWritePaths=/opt/mattermost-daten /opt/mattermost/client",
        "WantedBy=multi-user.target",
    ] {
        assert!(unit.lines().any(|l| l == line), "unit lacks `{line}`");
    }
    // Plugins are executables under the data directory: nothing may forbid running them.
    assert!(!unit.contains("NoExecPaths"));
    let report = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&unit_path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&report.stdout);
    let exposure = common::lifecycle::exposure_level(&text);
    assert!(exposure <= 4.0, "exposure {exposure} > 4.0:\n{text}");
}
