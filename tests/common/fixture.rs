//! Synthetic Mattermost releases with upstream's shape, and hostile variants of them.
//!
//! Upstream's tarball: a top `mattermost/` directory (listed twice), `bin/mattermost` and
//! `bin/mmctl` (static Go executables), `config/config.json` (0600), `client/` (the webapp,
//! with `root.html`, `manifest.json`, CSS and JS), `logs/`, `prepackaged_plugins/*.tar.gz`
//! with `.sig` files, `i18n/`, `templates/`, licence files. The executables here are real
//! statically linked, unstripped ELF files compiled with `gcc -static`.

#![allow(dead_code)]

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use flate2::write::GzEncoder;

/// How a release should be broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hostile {
    /// An entry with an absolute path.
    AbsolutePath,
    /// An entry with a `..` component.
    DotDot,
    /// A symlink pointing outside the release.
    SymlinkOutside,
    /// A hard link to a file outside the release.
    HardlinkOutside,
    /// A character device.
    Device,
    /// A fifo.
    Fifo,
    /// Not gzip at all.
    NotGzip,
    /// Cut off in the middle.
    Truncated,
    /// No `bin/mattermost`.
    NoServer,
}

impl Hostile {
    /// Every variant.
    pub const ALL: [Hostile; 9] = [
        Hostile::AbsolutePath,
        Hostile::DotDot,
        Hostile::SymlinkOutside,
        Hostile::HardlinkOutside,
        Hostile::Device,
        Hostile::Fifo,
        Hostile::NotGzip,
        Hostile::Truncated,
        Hostile::NoServer,
    ];
}

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
        format!("mattermost-{edition}{}-linux-amd64.tar.gz", self.version)
    }
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

fn header(path: &str, kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    let name = &mut h.as_old_mut().name;
    name.fill(0);
    name[..path.len()].copy_from_slice(path.as_bytes());
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(1_700_000_000);
    h.set_uid(1000);
    h.set_gid(1000);
    h.set_username("builder").unwrap();
    h.set_groupname("builder").unwrap();
    h.set_cksum();
    h
}

struct Tar {
    builder: tar::Builder<Vec<u8>>,
}

impl Tar {
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
}

/// A small valid `.tar.gz` standing in for a prepackaged plugin bundle.
fn plugin_bundle(id: &str) -> Vec<u8> {
    let mut t = Tar {
        builder: tar::Builder::new(Vec::new()),
    };
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
    let tar = t.builder.into_inner().unwrap();
    gzip(&tar)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
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
    let mut t = Tar {
        builder: tar::Builder::new(Vec::new()),
    };
    let mut exe = static_elf().to_vec();
    exe.resize(exe.len() + spec.pad, 0);
    let v = &spec.version;

    t.dir("mattermost/");
    t.dir("mattermost/bin/");
    if spec.hostile != Some(Hostile::NoServer) {
        t.file("mattermost/bin/mattermost", 0o755, &exe);
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
        t.file("mattermost/LICENSE.txt", 0o644, b"Mattermost Team Edition\n\nThe MIT License (MIT)\n\nPermission is hereby granted, free of charge, to any person obtaining a copy.\n");
    } else {
        t.file("mattermost/ENTERPRISE-EDITION-LICENSE.txt", 0o644, b"Mattermost Enterprise Edition License\n\nCopyright (c) 2015-present Mattermost, Inc.\n\nUse of this software requires a valid subscription.\n");
        t.file(
            "mattermost/LICENSE.txt",
            0o644,
            b"See ENTERPRISE-EDITION-LICENSE.txt.\n",
        );
    }
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
    // Upstream lists the top directory a second time.
    t.dir("mattermost/");

    match spec.hostile {
        Some(Hostile::AbsolutePath) => t.file("/etc/cron.d/evil", 0o644, b"* * * * * root true\n"),
        Some(Hostile::DotDot) => t.file("mattermost/../../etc/evil", 0o644, b"x\n"),
        Some(Hostile::SymlinkOutside) => t.link(
            "mattermost/client/escape",
            tar::EntryType::Symlink,
            "../../../etc",
        ),
        Some(Hostile::HardlinkOutside) => {
            t.link("mattermost/bin/shadow", tar::EntryType::Link, "etc/shadow")
        }
        Some(Hostile::Device) => t.special("mattermost/bin/sda", tar::EntryType::Block),
        Some(Hostile::Fifo) => t.special("mattermost/logs/pipe", tar::EntryType::Fifo),
        _ => {}
    }
    let mut bytes = gzip(&t.builder.into_inner().unwrap());
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
