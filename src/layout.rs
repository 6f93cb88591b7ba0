//! The one place that knows where Mattermost goes on disk: install paths, owners, modes,
//! the symlinks into the data directory, and which release files move aside as defaults.
//!
//! [`Layout::map`] turns each release entry into the package entries it becomes;
//! [`Layout::finish`] adds what the release does not ship (symlinks, unit, `mmctl` link).
//! The same values feed the maintainer-script templates through [`Layout::template_data`].

use std::collections::HashSet;

use anyhow::{Result, bail};
use serde::Serialize;

use crate::package::{Content, Entry, missing_parents};
use crate::release::archive::{EntryKind, ReleaseEntry};

/// Where the program files go.
pub const PREFIX: &str = "/opt/mattermost";
/// Where config, data, logs and plugins live; never touched by package removal.
pub const DATA_DIR: &str = "/opt/mattermost-daten";
/// The system user and group the server runs as.
pub const USER: &str = "mattermost";
/// The group of [`USER`].
pub const GROUP: &str = "mattermost";
/// Release directories that become symlinks into [`DATA_DIR`].
pub const LINKED_DIRS: [&str; 4] = ["config", "data", "logs", "plugins"];
/// Where files the release ships inside a linked directory are kept as defaults.
pub const DEFAULTS_DIR: &str = "/opt/mattermost/defaults";
/// The server binary that gets `cap_net_bind_service`.
pub const SERVER_BINARY: &str = "/opt/mattermost/bin/mattermost";
/// The capability the server binary needs to bind ports below 1024.
pub const SERVER_CAPABILITIES: &str = "cap_net_bind_service=ep";
/// Mode of the server binary, owned by root and [`GROUP`]: with its capability, only root
/// and the service account may run it (Debian applies it with dpkg-statoverride, RPM with
/// the file's owner and mode).
pub const SERVER_BINARY_MODE: u32 = 0o750;
/// The admin CLI inside the release.
pub const MMCTL: &str = "/opt/mattermost/bin/mmctl";
/// The `mmctl` on the PATH: a wrapper that finds the server's local-mode socket.
pub const MMCTL_LINK: &str = "/usr/bin/mmctl";
/// The unit's `RuntimeDirectory=` below /run, owned by the service account.
pub const RUNTIME_DIR: &str = "mattermost";
/// The server's local-mode socket (`mmctl --local`), in [`RUNTIME_DIR`]: the server's
/// default in /var/tmp is inside its private /tmp (`PrivateTmp=yes`).
pub const LOCAL_SOCKET: &str = "/run/mattermost/mattermost_local.socket";
/// systemd unit name.
pub const UNIT: &str = "mattermost.service";
/// Where the unit is installed.
pub const UNIT_PATH: &str = "/usr/lib/systemd/system/mattermost.service";
/// A file naming the installed upstream version, full package version and package name (one
/// a line), read by the next package's scripts to name the config backup they take before an
/// upgrade, and by the other edition's removal scripts to leave shared things alone.
pub const VERSION_FILE: &str = "/opt/mattermost/mm-pkg-version";
/// The package's own helper programs.
pub const LIBEXEC_DIR: &str = "/usr/libexec/mattermost";
/// Run before every start of the unit: keeps copies of config.json.
pub const CONFIG_SNAPSHOT: &str = "/usr/libexec/mattermost/config-snapshot";
/// How many pre-start copies of config.json are kept.
pub const CONFIG_SNAPSHOTS: u32 = 5;
/// The checksum of config.json as the server left it when it was ready (written by
/// [`CONFIG_SNAPSHOT`] `--started`, as the service account): config.json still equal to it at
/// the next start is the server's own rewrite, not a version the admin made.
pub const CONFIG_STARTED: &str = "/opt/mattermost-daten/config/.config.json.started";
/// The directory of [`ENV_FILE`], root's.
pub const ETC_DIR: &str = "/etc/mattermost";
/// Settings the unit passes to the server as environment variables (`EnvironmentFile=`),
/// which win over config.json, so that no reset of config.json loses them: the database
/// connection, or `MM_CONFIG` (config in the database). A configuration file of the admin
/// (Debian conffile, RPM `%config(noreplace)`), shipped with comments only.
pub const ENV_FILE: &str = "/etc/mattermost/mattermost.env";
/// Mode of [`ENV_FILE`], owned by root and [`GROUP`]: it may hold the database password.
pub const ENV_FILE_MODE: u32 = 0o640;
/// How many pre-upgrade copies of config.json are kept.
pub const CONFIG_BACKUPS: u32 = 10;
/// The account as systemd-sysusers creates it (both formats ship it).
pub const SYSUSERS_FILE: &str = "/usr/lib/sysusers.d/mattermost.conf";
/// Where the server unpacks webapp plugin bundles; it must own this directory.
pub const CLIENT_PLUGINS: &str = "/opt/mattermost/client/plugins";
/// Release files that are documentation (RPM `%doc`).
pub const DOC_FILES: [&str; 2] = ["README.md", "NOTICE.txt"];
/// Mode of the data directories the scripts create.
pub const DATA_DIR_MODE: &str = "0750";
/// Mode of a config file the scripts seed.
pub const CONFIG_FILE_MODE: &str = "0600";

/// Maps release entries to package entries, once each.
#[derive(Debug, Default)]
pub struct Layout {
    emitted: HashSet<String>,
    rewritable: Vec<String>,
}

impl Layout {
    /// A layout that has emitted nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The package entries for one release entry, parent directories first. A directory the
    /// release lists twice (upstream lists `mattermost/` twice) yields nothing the second time;
    /// a file or link listed twice is an error.
    pub fn map(&mut self, entry: &ReleaseEntry) -> Result<Vec<Entry>> {
        let path = install_path(&entry.path);
        let mut out = Vec::new();
        if self.emitted.contains(&path) {
            if entry.kind == EntryKind::Dir {
                return Ok(out);
            }
            bail!("the release lists {} twice", entry.path);
        }
        self.parents(&path, &mut out);
        let mut mapped = match &entry.kind {
            EntryKind::Dir => Entry::dir(&path, 0o755),
            EntryKind::File { size } => {
                let mode = if entry.is_executable() { 0o755 } else { 0o644 };
                Entry::file(&path, *size, mode)
            }
            EntryKind::Symlink { target } => Entry::symlink(&path, target),
        };
        if path == CLIENT_PLUGINS && mapped.is_dir() {
            mapped = mapped.owned_by(USER, GROUP);
        }
        if is_rewritten_for_subpath(&entry.path) && matches!(mapped.content, Content::File { .. }) {
            mapped = mapped.owned_by(USER, GROUP);
            mapped.rewritten_at_runtime = true;
            self.rewritable.push(path.clone());
        }
        mapped.doc = DOC_FILES.contains(&entry.path.as_str());
        if path == SERVER_BINARY {
            mapped.capabilities = Some(SERVER_CAPABILITIES.to_string());
            mapped.mode = SERVER_BINARY_MODE;
            mapped = mapped.owned_by(crate::package::ROOT, GROUP);
        }
        self.emitted.insert(path);
        out.push(mapped);
        Ok(out)
    }

    /// Entries the release does not ship, each with its bytes: the data-directory symlinks,
    /// the webapp plugin directory, the unit and its pre-start script, the environment file,
    /// the `mmctl` wrapper, the sysusers.d entry and the version file.
    pub fn finish(&mut self, generated: &Generated<'_>) -> Vec<(Entry, Vec<u8>)> {
        let mut out: Vec<(Entry, Vec<u8>)> = Vec::new();
        let mut add = |layout: &mut Layout, entry: Entry, bytes: Vec<u8>| {
            if layout.emitted.insert(entry.path.clone()) {
                let mut parents = Vec::new();
                layout.parents(&entry.path, &mut parents);
                out.extend(parents.into_iter().map(|p| (p, Vec::new())));
                out.push((entry, bytes));
            }
        };
        for dir in LINKED_DIRS {
            let link = Entry::symlink(
                format!("{PREFIX}/{dir}"),
                format!("../{}/{dir}", base_name(DATA_DIR)),
            );
            add(self, link, Vec::new());
        }
        add(
            self,
            Entry::dir(CLIENT_PLUGINS, 0o755).owned_by(USER, GROUP),
            Vec::new(),
        );
        let version_line = format!(
            "{}\n{}\n{}\n",
            generated.version, generated.full_version, generated.package
        )
        .into_bytes();
        add(
            self,
            Entry::file(VERSION_FILE, version_line.len() as u64, 0o644),
            version_line,
        );
        let mmctl = generated.mmctl_wrapper.as_bytes().to_vec();
        add(
            self,
            Entry::file(MMCTL_LINK, mmctl.len() as u64, 0o755),
            mmctl,
        );
        let unit = generated.unit.as_bytes().to_vec();
        add(self, Entry::file(UNIT_PATH, unit.len() as u64, 0o644), unit);
        add(self, Entry::dir(ETC_DIR, 0o755), Vec::new());
        let env = generated.env_file.as_bytes().to_vec();
        add(
            self,
            Entry::file(ENV_FILE, env.len() as u64, ENV_FILE_MODE)
                .owned_by(crate::package::ROOT, GROUP)
                .as_config(),
            env,
        );
        let sysusers = sysusers_text().into_bytes();
        add(
            self,
            Entry::file(SYSUSERS_FILE, sysusers.len() as u64, 0o644),
            sysusers,
        );
        add(self, Entry::dir(LIBEXEC_DIR, 0o755), Vec::new());
        let script = generated.snapshot_script.as_bytes().to_vec();
        add(
            self,
            Entry::file(CONFIG_SNAPSHOT, script.len() as u64, 0o755),
            script,
        );
        out
    }

    /// Values the templates use, so that scripts and unit never spell a path themselves.
    pub fn template_data(&self) -> LayoutData {
        LayoutData {
            prefix: PREFIX,
            data_dir: DATA_DIR,
            user: USER,
            group: GROUP,
            linked_dirs: LINKED_DIRS.to_vec(),
            defaults_dir: DEFAULTS_DIR,
            server_binary: SERVER_BINARY,
            unit: UNIT,
            version_file: VERSION_FILE,
            client_plugins: CLIENT_PLUGINS,
            data_dir_mode: DATA_DIR_MODE,
            config_file_mode: CONFIG_FILE_MODE,
            config_snapshot: CONFIG_SNAPSHOT,
            config_snapshots: CONFIG_SNAPSHOTS,
            config_started: CONFIG_STARTED,
            env_file: ENV_FILE,
            env_file_mode: format!("{ENV_FILE_MODE:04o}"),
            config_backups: CONFIG_BACKUPS,
            mmctl: MMCTL,
            runtime_dir: RUNTIME_DIR,
            local_socket: LOCAL_SOCKET,
            server_binary_mode: format!("{SERVER_BINARY_MODE:04o}"),
            sysusers_file: SYSUSERS_FILE,
            sysusers_text: sysusers_text(),
            server_owned_files: self.rewritable.clone(),
        }
    }

    /// Root-owned parent directories of `path` inside [`PREFIX`] not emitted yet.
    fn parents(&mut self, path: &str, out: &mut Vec<Entry>) {
        if !path.starts_with(PREFIX) {
            return; // system directories belong to the distribution
        }
        for dir in missing_parents(path, PREFIX.len(), |p| self.emitted.contains(p)) {
            self.emitted.insert(dir.clone());
            out.push(Entry::dir(dir, 0o755));
        }
    }
}

/// Layout values handed to the templates.
#[derive(Debug, Clone, Serialize)]
pub struct LayoutData {
    /// [`PREFIX`].
    pub prefix: &'static str,
    /// [`DATA_DIR`].
    pub data_dir: &'static str,
    /// [`USER`].
    pub user: &'static str,
    /// [`GROUP`].
    pub group: &'static str,
    /// [`LINKED_DIRS`].
    pub linked_dirs: Vec<&'static str>,
    /// [`DEFAULTS_DIR`].
    pub defaults_dir: &'static str,
    /// [`SERVER_BINARY`].
    pub server_binary: &'static str,
    /// [`UNIT`].
    pub unit: &'static str,
    /// [`VERSION_FILE`].
    pub version_file: &'static str,
    /// [`CLIENT_PLUGINS`].
    pub client_plugins: &'static str,
    /// [`DATA_DIR_MODE`].
    pub data_dir_mode: &'static str,
    /// [`CONFIG_FILE_MODE`].
    pub config_file_mode: &'static str,
    /// [`CONFIG_SNAPSHOT`].
    pub config_snapshot: &'static str,
    /// [`CONFIG_SNAPSHOTS`].
    pub config_snapshots: u32,
    /// [`CONFIG_STARTED`].
    pub config_started: &'static str,
    /// [`ENV_FILE`].
    pub env_file: &'static str,
    /// [`ENV_FILE_MODE`] in octal, e.g. `0640`.
    pub env_file_mode: String,
    /// Files the server rewrites (subpath support), to be owned by [`USER`].
    pub server_owned_files: Vec<String>,
    /// [`CONFIG_BACKUPS`].
    pub config_backups: u32,
    /// [`MMCTL`].
    pub mmctl: &'static str,
    /// [`RUNTIME_DIR`].
    pub runtime_dir: &'static str,
    /// [`LOCAL_SOCKET`].
    pub local_socket: &'static str,
    /// [`SERVER_BINARY_MODE`] in octal, e.g. `0750`.
    pub server_binary_mode: String,
    /// [`SYSUSERS_FILE`].
    pub sysusers_file: &'static str,
    /// The text of [`SYSUSERS_FILE`].
    pub sysusers_text: String,
}

/// Texts rendered from templates and the package identity, for [`Layout::finish`].
#[derive(Debug, Clone, Copy)]
pub struct Generated<'a> {
    /// Upstream version.
    pub version: &'a str,
    /// Full package version (`version-revision`).
    pub full_version: &'a str,
    /// Package name.
    pub package: &'a str,
    /// The systemd unit.
    pub unit: &'a str,
    /// The pre-start config copy script.
    pub snapshot_script: &'a str,
    /// The text of [`ENV_FILE`].
    pub env_file: &'a str,
    /// The `mmctl` wrapper.
    pub mmctl_wrapper: &'a str,
}

/// The sysusers.d entry for the service account: its group, then the user in it, a system
/// account with the data directory as home and no login shell.
pub fn sysusers_text() -> String {
    format!(
        "# The account {USER} runs the Mattermost server as (systemd-sysusers(8)).\n\
         g {GROUP} -\n\
         u {USER} -:{GROUP} \"Mattermost server\" {DATA_DIR} /usr/sbin/nologin\n"
    )
}

/// Where a release path is installed: below [`PREFIX`], except that anything inside a
/// linked directory moves to [`DEFAULTS_DIR`] (the path itself becomes a symlink).
fn install_path(release_path: &str) -> String {
    if release_path.is_empty() {
        return PREFIX.to_string();
    }
    format!("{PREFIX}/{}", install_relative(release_path))
}

/// [`install_path`] relative to [`PREFIX`] (`config/config.json` is installed at
/// `defaults/config/config.json`); empty for the release's top directory.
pub fn install_relative(release_path: &str) -> String {
    let first = release_path.split('/').next().unwrap_or_default();
    if LINKED_DIRS.contains(&first) {
        format!("{}/{release_path}", below_prefix(DEFAULTS_DIR))
    } else {
        release_path.to_string()
    }
}

/// The linked directories a release may ship, as plain directories only: their content is
/// kept in [`DEFAULTS_DIR`] and seeds the data directory. Upstream ships `config/` and
/// `logs/`; the other linked directories (`data`, `plugins`) must not appear in a release.
pub const RELEASE_DEFAULT_DIRS: [&str; 2] = ["config", "logs"];

/// What the packaging makes of a path below [`PREFIX`] that a release must never ship.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserved {
    /// A symlink into [`DATA_DIR`] ([`LINKED_DIRS`]).
    DataLink,
    /// [`CLIENT_PLUGINS`], a directory the service account owns.
    ServiceDir,
    /// [`DEFAULTS_DIR`], where release files of linked directories are kept.
    Defaults,
    /// [`VERSION_FILE`], the marker of a packaged install.
    Marker,
}

impl Reserved {
    /// What the path is, for error messages.
    pub fn describe(self) -> &'static str {
        match self {
            Reserved::DataLink => "a link the packaging makes into the data directory",
            Reserved::ServiceDir => {
                "the webapp plugin directory, which the packaging creates for the service account"
            }
            Reserved::Defaults => "the packaging's directory of default config and logs",
            Reserved::Marker => "the packaging's marker of the installed version",
        }
    }
}

/// Every path below [`PREFIX`] (relative to it) that the packaging owns, with what it is.
/// Release entries may not take over any of them or anything below them (the release's
/// plain `config/` and `logs/` directories are installed below [`DEFAULTS_DIR`] instead).
pub fn reserved_paths() -> Vec<(&'static str, Reserved)> {
    let mut out: Vec<(&'static str, Reserved)> = LINKED_DIRS
        .iter()
        .map(|d| (*d, Reserved::DataLink))
        .collect();
    out.push((below_prefix(CLIENT_PLUGINS), Reserved::ServiceDir));
    out.push((below_prefix(DEFAULTS_DIR), Reserved::Defaults));
    out.push((below_prefix(VERSION_FILE), Reserved::Marker));
    out
}

/// `path` (a constant below [`PREFIX`]) relative to [`PREFIX`].
fn below_prefix(path: &'static str) -> &'static str {
    path.strip_prefix(PREFIX)
        .and_then(|p| p.strip_prefix('/'))
        .expect("a path below PREFIX")
}

/// Files the server rewrites when SiteURL has a subpath (upstream's
/// `UpdateAssetsSubpathInDir`): `client/root.html`, `client/manifest.json` and every `.css`
/// file below `client/`.
fn is_rewritten_for_subpath(release_path: &str) -> bool {
    match release_path.strip_prefix("client/") {
        Some(rest) => rest == "root.html" || rest == "manifest.json" || rest.ends_with(".css"),
        None => false,
    }
}

fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(path: &str, kind: EntryKind) -> ReleaseEntry {
        ReleaseEntry {
            path: path.into(),
            kind,
            mode: 0o644,
            mtime: 0,
        }
    }

    #[test]
    fn linked_dirs_move_to_defaults() {
        assert_eq!(
            install_path("config/config.json"),
            "/opt/mattermost/defaults/config/config.json"
        );
        assert_eq!(install_path("logs"), "/opt/mattermost/defaults/logs");
        assert_eq!(
            install_path("bin/mattermost"),
            "/opt/mattermost/bin/mattermost"
        );
        assert_eq!(
            install_path("configuration.txt"),
            "/opt/mattermost/configuration.txt"
        );
    }

    #[test]
    fn reserved_paths_are_everything_the_packaging_adds_below_the_prefix() {
        let reserved: Vec<_> = reserved_paths().into_iter().map(|(p, _)| p).collect();
        assert_eq!(
            reserved,
            [
                "config",
                "data",
                "logs",
                "plugins",
                "client/plugins",
                "defaults",
                "mm-pkg-version"
            ]
        );
        let mut layout = Layout::new();
        let generated = Generated {
            version: "1.0.0",
            full_version: "1.0.0-1",
            package: "mattermost",
            unit: "",
            snapshot_script: "",
            env_file: "",
            mmctl_wrapper: "",
        };
        for (entry, _) in layout.finish(&generated) {
            if let Some(rel) = entry.path.strip_prefix(&format!("{PREFIX}/")) {
                // Each path is reserved, below a reserved path, or a parent of one.
                assert!(
                    reserved.iter().any(|r| rel == *r
                        || rel.starts_with(&format!("{r}/"))
                        || r.starts_with(&format!("{rel}/"))),
                    "{rel} is added by the layout but not reserved"
                );
            }
        }
        assert_eq!(install_relative("logs/x"), "defaults/logs/x");
        assert_eq!(install_relative("bin/x"), "bin/x");
    }

    #[test]
    fn environment_file_and_start_record_are_where_their_directories_are() {
        assert_eq!(ENV_FILE.rsplit_once('/').unwrap().0, ETC_DIR);
        assert_eq!(
            CONFIG_STARTED.rsplit_once('/').unwrap().0,
            format!("{DATA_DIR}/config")
        );
        let generated = Generated {
            version: "1.0.0",
            full_version: "1.0.0-1",
            package: "mattermost",
            unit: "",
            snapshot_script: "",
            env_file: "# comments\n",
            mmctl_wrapper: "",
        };
        let entries = Layout::new().finish(&generated);
        let (env, bytes) = entries.iter().find(|(e, _)| e.path == ENV_FILE).unwrap();
        assert!(env.config);
        assert_eq!(
            (env.mode, env.user.as_str(), env.group.as_str()),
            (0o640, "root", GROUP)
        );
        assert_eq!(bytes, b"# comments\n");
        assert!(entries.iter().filter(|(e, _)| e.config).count() == 1);
    }

    #[test]
    fn duplicate_dirs_are_skipped_and_parents_come_first() {
        let mut layout = Layout::new();
        let first = layout.map(&rel("", EntryKind::Dir)).unwrap();
        assert_eq!(first.len(), 1);
        assert!(layout.map(&rel("", EntryKind::Dir)).unwrap().is_empty());
        let file = layout
            .map(&rel("config/config.json", EntryKind::File { size: 2 }))
            .unwrap();
        let paths: Vec<_> = file.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/opt/mattermost/defaults",
                "/opt/mattermost/defaults/config",
                "/opt/mattermost/defaults/config/config.json"
            ]
        );
        assert!(
            layout
                .map(&rel("config/config.json", EntryKind::File { size: 2 }))
                .is_err()
        );
    }

    #[test]
    fn subpath_files_are_server_owned() {
        let mut layout = Layout::new();
        let out = layout
            .map(&rel("client/root.html", EntryKind::File { size: 1 }))
            .unwrap();
        let html = out.last().unwrap();
        assert_eq!(html.user, USER);
        assert!(html.rewritten_at_runtime);
        let js = layout
            .map(&rel("client/main.js", EntryKind::File { size: 1 }))
            .unwrap();
        assert_eq!(js.last().unwrap().user, "root");
        assert_eq!(
            layout.template_data().server_owned_files,
            ["/opt/mattermost/client/root.html"]
        );
    }
}
