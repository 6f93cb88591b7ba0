//! Synthetic Mattermost releases with upstream's shape, and hostile variants of them.
//!
//! Upstream's tarball: a top `mattermost/` directory (listed twice), `bin/mattermost` and
//! `bin/mmctl` (static Go executables), `config/config.json` (0600), `client/` (the webapp,
//! with `root.html`, `manifest.json`, CSS and JS), `logs/`, `prepackaged_plugins/*.tar.gz`
//! with `.sig` files (amd64 only), `i18n/`, `templates/`, `fonts/`, `NOTICE.txt`,
//! `README.md`, `manifest.txt` and the edition's licence file: `ENTERPRISE-EDITION-LICENSE.txt`
//! and `config/cloud_defaults.json` for enterprise, `MIT-COMPILED-LICENSE.md` for team
//! (server/build/release.mk in mattermost/mattermost). On amd64 the executables are real
//! statically linked, unstripped ELF files compiled with `gcc -static`; on arm64 minimal
//! aarch64 ELF headers. `bin/mattermost` embeds upstream's list of versions, current first
//! (server/public/model/version.go).

#![allow(dead_code)]

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use flate2::write::GzEncoder;

mod hostile;

pub use hostile::Hostile;

/// What to put in a synthetic release.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Upstream version, e.g. `9.11.90`.
    pub version: String,
    /// `enterprise` or `team`.
    pub edition: String,
    /// Bytes appended to each executable (upstream's are ~200 MB; tests keep this small).
    pub pad: usize,
    /// Extra regular files `(path below mattermost/, contents)`.
    pub extra_files: Vec<(String, Vec<u8>)>,
    /// A way to break the release.
    pub hostile: Option<Hostile>,
    /// `amd64` or `arm64`: the machine of the executables and the tarball's name.
    pub arch: String,
    /// The version `bin/mattermost` lists as its own (default: [`Spec::version`]); another
    /// one makes a release built for another version (a replay).
    pub server_version: Option<String>,
    /// Empty files added below `client/filler/` (for releases with absurd entry counts).
    pub filler_files: usize,
    /// Length of each filler file's name (at least 7).
    pub filler_name_len: usize,
    /// Extra links `(path below mattermost/, target, hard)`: a hard link's target is an
    /// archive path (`mattermost/...`), a symlink's is relative to its directory.
    pub extra_links: Vec<(String, String, bool)>,
    /// The executable `bin/mattermost` and `bin/mmctl` start with instead of the fixture's
    /// program (amd64 only): the boot tests' stand-in server, which runs under systemd.
    pub program: Option<Vec<u8>>,
}

impl Spec {
    /// An intact enterprise release of `version`.
    pub fn new(version: &str) -> Self {
        Spec {
            version: version.to_string(),
            edition: "enterprise".to_string(),
            pad: 0,
            extra_files: Vec::new(),
            hostile: None,
            arch: "amd64".to_string(),
            server_version: None,
            filler_files: 0,
            filler_name_len: 7,
            extra_links: Vec::new(),
            program: None,
        }
    }

    /// The same release for `arch` (`amd64`, `arm64`).
    pub fn for_arch(self, arch: &str) -> Self {
        Spec {
            arch: arch.to_string(),
            ..self
        }
    }

    /// The team edition of `version`.
    pub fn team(version: &str) -> Self {
        Spec {
            edition: "team".to_string(),
            ..Spec::new(version)
        }
    }

    /// Upstream's tarball name for this spec.
    pub fn tarball_name(&self) -> String {
        let edition = if self.edition == "team" { "team-" } else { "" };
        format!(
            "mattermost-{edition}{}-linux-{}.tar.gz",
            self.version, self.arch
        )
    }
}

/// A minimal 64-bit little-endian ELF executable header (with one empty `PT_LOAD` program
/// header) for `arch` (`amd64` or `arm64`): what the build checks, not something to run.
pub fn minimal_elf(arch: &str) -> Vec<u8> {
    let machine: u16 = match arch {
        "amd64" => 62,
        "arm64" => 183,
        other => panic!("no ELF machine for {other}"),
    };
    let mut h = vec![0u8; 64 + 56];
    h[..4].copy_from_slice(b"\x7fELF");
    h[4] = 2; // ELFCLASS64
    h[5] = 1; // little endian
    h[6] = 1; // EV_CURRENT
    h[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    h[18..20].copy_from_slice(&machine.to_le_bytes());
    h[20..24].copy_from_slice(&1u32.to_le_bytes());
    h[24..32].copy_from_slice(&0x400078u64.to_le_bytes()); // e_entry
    h[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
    h[52..54].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
    h[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
    h[56..58].copy_from_slice(&1u16.to_le_bytes()); // e_phnum
    h[64..68].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    h[68..72].copy_from_slice(&5u32.to_le_bytes()); // PF_R | PF_X
    h
}

/// The minor releases upstream's version list names below the current line, newest first
/// (server/public/model/version.go, abridged below 7.0).
const UPSTREAM_MINORS: &[&str] = &[
    "11.4.0", "11.3.0", "11.2.0", "11.1.0", "11.0.0", "10.12.0", "10.11.0", "10.10.0", "10.9.0",
    "10.8.0", "10.7.0", "10.6.0", "10.5.0", "10.4.0", "10.3.0", "10.2.0", "10.1.0", "10.0.0",
    "9.11.0", "9.10.0", "9.9.0", "9.8.0", "9.7.0", "9.6.0", "9.5.0", "9.4.0", "9.3.0", "9.2.0",
    "9.1.0", "9.0.0", "8.1.0", "8.0.0", "7.11.0", "7.10.0", "7.9.0", "7.8.0", "7.0.0", "6.0.0",
    "5.0.0", "4.0.0", "3.0.0", "2.0.0", "1.0.0", "0.7.1", "0.7.0", "0.6.0", "0.5.0",
];

fn numbers(version: &str) -> (u64, u64, u64) {
    let mut it = version.split('.').map(|p| p.parse::<u64>().unwrap());
    (it.next().unwrap(), it.next().unwrap(), it.next().unwrap())
}

/// The version list a server binary of `version` embeds, as Go lays out string literals
/// (back to back, no separator): `version`, its line's earlier patch releases, then the
/// older minor releases.
pub fn embedded_versions(version: &str) -> Vec<u8> {
    let (major, minor, patch) = numbers(version);
    let mut list = vec![version.to_string()];
    list.extend((0..patch).rev().map(|p| format!("{major}.{minor}.{p}")));
    list.extend(
        UPSTREAM_MINORS
            .iter()
            .filter(|v| numbers(v) < (major, minor, 0))
            .map(|v| v.to_string()),
    );
    list.concat().into_bytes()
}

/// A static, unstripped ELF executable, compiled once per test process.
pub fn static_elf() -> &'static [u8] {
    static ELF: OnceLock<Vec<u8>> = OnceLock::new();
    ELF.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("main.c");
        fs::write(
            &src,
            "#include <stdio.h>\nint main(int c, char **v) { (void)c; printf(\"synthetic %s\\n\", v[0]); return 0; }\n",
        )
        .unwrap();
        let out = dir.path().join("main");
        let status = Command::new("gcc")
            .args(["-static", "-O1", "-o"])
            .arg(&out)
            .arg(&src)
            .status()
            .expect("gcc is needed to build the fixture's executables");
        assert!(status.success(), "gcc -static failed");
        fs::read(out).unwrap()
    })
}

/// The time stamp the fixture gives `path`: like upstream's, files of one release differ by
/// minutes (they are built one after another), so the newest one is not the first nor the
/// last entry.
pub fn entry_time(path: &str) -> u64 {
    let hash = path.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    1_700_000_000 + hash % 7_200
}

fn header(path: &str, kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    let name = &mut h.as_old_mut().name;
    name.fill(0);
    name[..path.len()].copy_from_slice(path.as_bytes());
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(entry_time(path));
    h.set_uid(1000);
    h.set_gid(1000);
    h.set_username("builder").unwrap();
    h.set_groupname("builder").unwrap();
    h.set_cksum();
    h
}

struct Tar<W: Write> {
    builder: tar::Builder<W>,
}

impl<W: Write> Tar<W> {
    fn dir(&mut self, path: &str) {
        let h = header(path, tar::EntryType::Directory, 0o755, 0);
        self.builder.append(&h, &[][..]).unwrap();
    }

    fn file(&mut self, path: &str, mode: u32, bytes: &[u8]) {
        let h = header(path, tar::EntryType::Regular, mode, bytes.len() as u64);
        self.builder.append(&h, bytes).unwrap();
    }

    fn link(&mut self, path: &str, kind: tar::EntryType, target: &str) {
        let mut h = header(path, kind, 0o777, 0);
        let field = &mut h.as_old_mut().linkname;
        field[..target.len()].copy_from_slice(target.as_bytes());
        h.set_cksum();
        self.builder.append(&h, &[][..]).unwrap();
    }

    fn special(&mut self, path: &str, kind: tar::EntryType) {
        let h = header(path, kind, 0o644, 0);
        self.builder.append(&h, &[][..]).unwrap();
    }

    /// A file whose name may be longer than the header holds (a GNU long-name entry).
    fn long_file(&mut self, path: &str, bytes: &[u8]) {
        let mut h = header("x", tar::EntryType::Regular, 0o644, bytes.len() as u64);
        self.builder.append_data(&mut h, path, bytes).unwrap();
    }

    /// A PAX extended header of `kind` (`x` local, `g` global) holding `records`.
    fn pax(&mut self, name: &str, kind: tar::EntryType, records: &[(&str, &str)]) {
        let mut data = Vec::new();
        for (key, value) in records {
            let body = format!(" {key}={value}\n");
            let mut len = body.len() + 1;
            while format!("{len}{body}").len() != len {
                len += 1;
            }
            data.extend_from_slice(format!("{len}{body}").as_bytes());
        }
        let mut h = tar::Header::new_ustar();
        h.set_path(name).unwrap();
        h.set_entry_type(kind);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_cksum();
        self.builder.append(&h, &data[..]).unwrap();
    }

    /// An old-style GNU sparse file (type `S`): `data` at offset 0 of a file of `real` bytes.
    fn gnu_sparse(&mut self, path: &str, data: &[u8], real: u64) {
        let mut h = header(path, tar::EntryType::GNUSparse, 0o644, data.len() as u64);
        let gnu = h.as_gnu_mut().unwrap();
        octal(&mut gnu.sparse[0].offset, 0);
        octal(&mut gnu.sparse[0].numbytes, data.len() as u64);
        // The map ends with an empty block at the real end of the file.
        octal(&mut gnu.sparse[1].offset, real);
        octal(&mut gnu.sparse[1].numbytes, 0);
        octal(&mut gnu.realsize, real);
        h.set_cksum();
        self.builder.append(&h, data).unwrap();
    }
}

fn octal(field: &mut [u8], value: u64) {
    let text = format!("{value:0width$o}\0", width = field.len() - 1);
    field.copy_from_slice(text.as_bytes());
}

/// A small valid `.tar.gz` standing in for a prepackaged plugin bundle.
fn plugin_bundle(id: &str) -> Vec<u8> {
    let mut t = gz_tar();
    t.dir(&format!("{id}/"));
    t.file(
        &format!("{id}/plugin.json"),
        0o644,
        format!("{{\"id\":\"{id}\",\"version\":\"1.0.0\"}}").as_bytes(),
    );
    t.file(
        &format!("{id}/server/dist/plugin-linux-amd64"),
        0o755,
        static_elf(),
    );
    t.builder.into_inner().unwrap().finish().unwrap()
}

fn gz_tar() -> Tar<GzEncoder<Vec<u8>>> {
    Tar {
        builder: tar::Builder::new(GzEncoder::new(Vec::new(), flate2::Compression::fast())),
    }
}

/// The default config upstream ships (trimmed).
pub fn default_config(version: &str) -> String {
    format!(
        "{{\n  \"ServiceSettings\": {{\n    \"SiteURL\": \"\",\n    \"ListenAddress\": \":8065\"\n  }},\n  \
         \"SqlSettings\": {{\n    \"DriverName\": \"postgres\",\n    \"DataSource\": \"postgres://mmuser:mostest@localhost/mattermost_test?sslmode=disable\"\n  }},\n  \
         \"_synthetic_release\": \"{version}\"\n}}\n"
    )
}

/// Writes the release tarball described by `spec` into `dir` and returns its path.
pub fn write_release(dir: &Path, spec: &Spec) -> PathBuf {
    let mut t = gz_tar();
    let mut exe = match spec.arch.as_str() {
        "amd64" => spec.program.as_deref().unwrap_or(static_elf()).to_vec(),
        other => minimal_elf(other),
    };
    exe.resize(exe.len() + spec.pad, 0);
    let v = &spec.version;

    t.dir("mattermost/");
    t.dir("mattermost/bin/");
    if spec.hostile != Some(Hostile::NoServer) {
        let mut server = exe.clone();
        server.extend_from_slice(&embedded_versions(
            spec.server_version.as_deref().unwrap_or(v),
        ));
        t.file("mattermost/bin/mattermost", 0o755, &server);
    }
    let mut mmctl = exe.clone();
    mmctl.extend_from_slice(b"mmctl");
    t.file("mattermost/bin/mmctl", 0o755, &mmctl);
    t.dir("mattermost/config/");
    t.file(
        "mattermost/config/config.json",
        0o600,
        default_config(v).as_bytes(),
    );
    t.file(
        "mattermost/config/README.md",
        0o644,
        b"Configuration lives in config.json.\n",
    );
    t.dir("mattermost/logs/");
    t.dir("mattermost/client/");
    t.file(
        "mattermost/client/root.html",
        0o644,
        format!("<!DOCTYPE html><html><head><link rel=\"stylesheet\" href=\"/static/main.css\"></head><body>Mattermost {v}</body></html>\n").as_bytes(),
    );
    t.file(
        "mattermost/client/manifest.json",
        0o644,
        b"{\"name\":\"Mattermost\",\"start_url\":\"/\"}\n",
    );
    t.file(
        "mattermost/client/main.css",
        0o644,
        b"body { background: url(/static/bg.svg); }\n",
    );
    t.file(
        "mattermost/client/main.js",
        0o644,
        format!("console.log('mattermost {v}');\n").as_bytes(),
    );
    t.dir("mattermost/client/images/");
    t.file(
        "mattermost/client/images/bg.svg",
        0o644,
        b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>\n",
    );
    t.dir("mattermost/client/files/");
    t.dir("mattermost/client/files/code_themes/");
    t.file(
        "mattermost/client/files/code_themes/github.css",
        0o644,
        b".hljs { color: #333; }\n",
    );
    if spec.edition != "team" {
        t.file(
            "mattermost/config/cloud_defaults.json",
            0o644,
            b"{\n  \"ServiceSettings\": {}\n}\n",
        );
    }
    if spec.arch == "amd64" {
        // Upstream prepackages plugins in the linux-amd64 tarball only.
        t.dir("mattermost/prepackaged_plugins/");
        for id in ["com.mattermost.calls", "playbooks"] {
            let name = format!("mattermost/prepackaged_plugins/{id}-1.0.0-linux-amd64.tar.gz");
            t.file(&name, 0o644, &plugin_bundle(id));
            t.file(
                &format!("{name}.sig"),
                0o644,
                format!("\u{89}\u{1}signature of {id}").as_bytes(),
            );
        }
    }
    t.dir("mattermost/i18n/");
    t.file(
        "mattermost/i18n/en.json",
        0o644,
        b"[{\"id\":\"hello\",\"translation\":\"Hello\"}]\n",
    );
    t.dir("mattermost/templates/");
    t.file(
        "mattermost/templates/welcome_body.html",
        0o644,
        b"{{define \"welcome_body\"}}Welcome{{end}}\n",
    );
    t.dir("mattermost/fonts/");
    t.file(
        "mattermost/fonts/luximbi.ttf",
        0o644,
        b"\0\x01\0\0synthetic font",
    );
    if spec.edition == "team" {
        t.file("mattermost/MIT-COMPILED-LICENSE.md", 0o644, b"Mattermost Team Edition\n\nThe MIT License (MIT)\n\nPermission is hereby granted, free of charge, to any person obtaining a copy.\n");
    } else {
        t.file("mattermost/ENTERPRISE-EDITION-LICENSE.txt", 0o644, b"Mattermost Enterprise Edition License\n\nCopyright (c) 2015-present Mattermost, Inc.\n\nUse of this software requires a valid subscription.\n");
    }
    t.file(
        "mattermost/manifest.txt",
        0o644,
        format!("mattermost {v}\n").as_bytes(),
    );
    t.file(
        "mattermost/NOTICE.txt",
        0o644,
        b"Mattermost uses open source software.\n",
    );
    t.file(
        "mattermost/README.md",
        0o644,
        format!("Mattermost {v}\n").as_bytes(),
    );
    for (path, bytes) in &spec.extra_files {
        t.file(&format!("mattermost/{path}"), 0o644, bytes);
    }
    for (path, target, hard) in &spec.extra_links {
        let kind = if *hard {
            tar::EntryType::Link
        } else {
            tar::EntryType::Symlink
        };
        t.link(&format!("mattermost/{path}"), kind, target);
    }
    for i in 0..spec.filler_files {
        let name = format!("{i:0width$}", width = spec.filler_name_len);
        t.long_file(&format!("mattermost/client/filler/{name}"), b"");
    }
    // Upstream lists the top directory a second time.
    t.dir("mattermost/");

    hostile::append(&mut t, spec.hostile);
    let mut bytes = t.builder.into_inner().unwrap().finish().unwrap();
    match spec.hostile {
        Some(Hostile::NotGzip) => bytes = b"PK\x03\x04 this is a zip, not a tarball".to_vec(),
        Some(Hostile::Truncated) => bytes.truncate(bytes.len() * 2 / 3),
        _ => {}
    }
    fs::create_dir_all(dir).unwrap();
    let path = dir.join(spec.tarball_name());
    File::create(&path).unwrap().write_all(&bytes).unwrap();
    path
}
