//! mm-pkg writes RPMs with its own streaming writer; the `rpm` crate reads them back here and
//! every header field, file digest and payload digest is checked against what went in (and
//! against the .deb built from the same release in the same run).

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::process::Command;

use common::fixture::Spec;
use common::{build, have, run};
use sha2::{Digest, Sha256};

#[test]
fn rpm_crate_reads_back_every_field_and_digest() {
    for compression in ["zstd", "gzip", "xz"] {
        let built = build(
            &Spec::new("9.11.90"),
            &[
                "--compression",
                compression,
                "--vendor",
                "Example Packagers",
            ],
        );
        let pkg = rpm::Package::open(built.rpm.as_ref().unwrap()).unwrap();
        let m = &pkg.metadata;
        assert_eq!(m.get_name().unwrap(), "mattermost");
        assert_eq!(m.get_version().unwrap(), "9.11.90");
        assert_eq!(m.get_release().unwrap(), "1");
        assert_eq!(m.get_arch().unwrap(), "x86_64");
        assert_eq!(m.get_license().unwrap(), "LicenseRef-Mattermost-Enterprise");
        assert_eq!(
            m.get_summary().unwrap(),
            "Self-hosted team messaging server (Enterprise Edition)"
        );
        assert!(
            m.get_description()
                .unwrap()
                .starts_with("Mattermost is a self-hosted collaboration platform")
        );
        assert_eq!(m.get_url().unwrap(), "https://mattermost.com");
        assert_eq!(m.get_vendor().unwrap(), "Example Packagers");
        assert!(m.get_group().is_err(), "no deprecated Group:");
        assert_eq!(m.get_source_rpm().unwrap(), "mattermost-9.11.90-1.src.rpm");
        assert_eq!(m.get_packager().unwrap(), "mm-pkg <mm-pkg@example.org>");
        assert_eq!(m.get_build_time().unwrap(), 1_764_000_000);
        assert_eq!(m.get_payload_compressor().unwrap().to_string(), compression);
        assert!(
            m.get_pre_install_script()
                .unwrap()
                .script
                .contains("mm_create_account")
        );
        assert!(
            m.get_post_uninstall_script()
                .unwrap()
                .script
                .contains("mm_remove_leftovers")
        );
        let names =
            |deps: Vec<rpm::Dependency>| deps.into_iter().map(|d| d.name).collect::<Vec<_>>();
        let requires = names(m.get_requires().unwrap());
        for name in [
            "shadow-utils",
            "/usr/sbin/setcap",
            "rpmlib(FileCaps)",
            "rpmlib(FileDigests)",
        ] {
            assert!(
                requires.iter().any(|r| r == name),
                "{name} not in {requires:?}"
            );
        }
        assert_eq!(names(m.get_conflicts().unwrap()), ["mattermost-team"]);
        assert!(names(m.get_recommends().unwrap()).is_empty());
        assert_eq!(names(m.get_suggests().unwrap()), ["postgresql-server"]);
        assert!(names(m.get_provides().unwrap()).contains(&"mattermost-team".to_string()));
        assert_eq!(m.get_changelog_entries().unwrap().len(), 1);

        // Header digests (signature header) and payload digests (main header) all verify.
        let report = pkg.check_digests().unwrap();
        assert!(
            report.has_header_digest() && report.has_payload_digest(),
            "{report:?}"
        );
        assert!(report.is_ok(), "{report:?}");

        // Every file's recorded digest is the SHA-256 of its payload bytes.
        let mut rpm_files = BTreeMap::new();
        for file in pkg.files().unwrap() {
            let file = file.unwrap();
            let path = file.metadata.path().to_string_lossy().into_owned();
            if let (Some(digest), Some(content)) = (file.metadata.digest(), file.content()) {
                assert_eq!(
                    digest.as_hex(),
                    hex::encode(Sha256::digest(content)),
                    "{path}"
                );
                rpm_files.insert(path, digest.as_hex().to_string());
            }
        }
        let caps = m.get_file_entries().unwrap();
        let server = caps
            .iter()
            .find(|e| e.path().to_str() == Some("/opt/mattermost/bin/mattermost"))
            .unwrap();
        assert_eq!(server.caps(), Some("cap_net_bind_service=ep"));

        // The same bytes as the .deb of the same run.
        if have("dpkg-deb") {
            let dir = tempfile::tempdir().unwrap();
            run(Command::new("dpkg-deb")
                .arg("-x")
                .arg(built.deb.as_ref().unwrap())
                .arg(dir.path()));
            for (path, digest) in &rpm_files {
                if path.starts_with("/usr/share/licenses/") {
                    continue;
                }
                let bytes = fs::read(dir.path().join(&path[1..])).unwrap();
                assert_eq!(
                    &hex::encode(Sha256::digest(bytes)),
                    digest,
                    "{path} differs between .deb and .rpm"
                );
            }
        }
    }
}

/// `--vendor` ends up in the RPM header: a value with a newline (which could smuggle in other
/// tags) is refused before anything is written.
#[test]
fn vendor_with_a_control_character_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let spec = Spec::new("9.11.90");
    let tarball = common::fixture::write_release(&dir.path().join("release"), &spec);
    let out = dir.path().join("dist");
    let result = common::output(
        common::mm_pkg()
            .args(["build", "9.11.90", "--format", "rpm", "--tarball"])
            .arg(&tarball)
            .args([
                "--vendor",
                "Example\nObsoletes: postgresql-server",
                "--output",
            ])
            .arg(&out),
    );
    assert!(!result.status.success());
    assert!(
        String::from_utf8_lossy(&result.stderr).contains("--vendor"),
        "{result:?}"
    );
    assert!(
        !out.exists() || fs::read_dir(&out).unwrap().next().is_none(),
        "nothing written"
    );
}
