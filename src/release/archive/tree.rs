//! The release as the installed filesystem will see it, to refuse what could escape it.
//!
//! Every entry is recorded at its installed place below the install prefix, next to the
//! paths the packaging owns ([`crate::layout::reserved_paths`]). While the stream is read,
//! each entry is checked against what came before it (nothing below a link or a file, no
//! path twice, no packaging path taken over); once the whole release is known, every link is
//! resolved through the release's own links, as the kernel will resolve it after install.

use std::collections::HashMap;

use anyhow::{Result, bail};

use super::names::display_path;
use super::{EntryKind, ReleaseEntry};
use crate::layout::{RELEASE_DEFAULT_DIRS, Reserved, install_relative, reserved_paths};

/// Most paths (entries and the directories they imply) a release may have. Real releases
/// have a few thousand; the bound keeps a build of both formats within 128 MiB whatever the
/// input (the package writers keep a record of every path).
pub const MAX_PATHS: usize = 50_000;
/// Most bytes all those paths and link targets may take together (80 bytes each on
/// average).
pub const MAX_PATH_BYTES: usize = 4 << 20;
/// Most bytes of path looked up while resolving all links together: a few links with long
/// targets that lead through each other would otherwise take hours to resolve. Real
/// releases need a tiny fraction of it.
pub const MAX_LINK_WORK: usize = 64 << 20;
/// Most links followed while resolving one path (the kernel's `MAXSYMLINKS`).
pub const MAX_LINK_STEPS: usize = 40;

#[derive(Debug, Clone)]
enum Node {
    Dir,
    File,
    Link(Box<str>),
    Reserved(Reserved),
}

impl Node {
    fn describe(&self) -> &'static str {
        match self {
            Node::Dir => "a directory",
            Node::File => "a file",
            Node::Link(_) => "a link",
            Node::Reserved(_) => "a packaging path",
        }
    }
}

/// Installed paths (relative to the install prefix) and what each is.
#[derive(Debug)]
pub struct Tree {
    nodes: HashMap<Box<str>, Node>,
    bytes: usize,
    reserved: Vec<(&'static str, Reserved)>,
}

impl Default for Tree {
    fn default() -> Self {
        Self::new()
    }
}

impl Tree {
    /// A tree holding only the paths the packaging owns.
    pub fn new() -> Self {
        let mut tree = Tree {
            nodes: HashMap::new(),
            bytes: 0,
            reserved: reserved_paths(),
        };
        for (path, reserved) in tree.reserved.clone() {
            for (i, _) in path.match_indices('/') {
                tree.nodes.insert(path[..i].into(), Node::Dir);
            }
            tree.nodes.insert(path.into(), Node::Reserved(reserved));
        }
        tree
    }

    /// Records `entry`, refusing it when it would take over a packaging path, sit below a
    /// link or a file, or repeat a path. `hard_link_to` is the release path a hard link
    /// names, which must be a file listed before it.
    pub fn insert(&mut self, entry: &ReleaseEntry, hard_link_to: Option<&str>) -> Result<()> {
        let shown = display_path(&entry.path);
        let is_link = matches!(entry.kind, EntryKind::Symlink { .. });
        let first = entry.path.split('/').next().unwrap_or_default();
        if entry.path.is_empty() && entry.kind != EntryKind::Dir {
            bail!("release entry `{shown}` is not a directory: the release's top must be one");
        }
        let remapped = RELEASE_DEFAULT_DIRS.contains(&first);
        if remapped && entry.path == first && entry.kind != EntryKind::Dir {
            bail!(
                "release entry `{shown}` is not a plain directory: the packaging makes `{first}` a \
                 link into the data directory and takes only a plain `{first}/` from a release"
            );
        }
        for (path, reserved) in &self.reserved {
            if remapped && *path == first {
                continue; // config/ and logs/ go to the defaults
            }
            if entry.path == *path {
                bail!(
                    "release entry `{shown}` takes over `{}`, {}",
                    display_path(path),
                    reserved.describe()
                );
            }
            if entry.path.starts_with(path) && entry.path.as_bytes()[path.len()] == b'/' {
                bail!(
                    "release entry `{shown}` is inside `{}`, {}; a release must not ship it",
                    display_path(path),
                    reserved.describe()
                );
            }
        }
        if remapped && is_link {
            bail!(
                "release entry `{shown}` is a link inside `{first}/`, whose content seeds the \
                 admin's data directory: links there are refused"
            );
        }
        if let Some(target) = hard_link_to {
            let target_rel = install_relative(target);
            if !matches!(self.nodes.get(target_rel.as_str()), Some(Node::File)) {
                bail!(
                    "release entry `{shown}` is a hard link to `{}`, which is not a file listed before it",
                    display_path(target)
                );
            }
        }

        let rel = install_relative(&entry.path);
        for (i, _) in rel.match_indices('/') {
            let parent = &rel[..i];
            match self.nodes.get(parent) {
                None => self.add(parent, Node::Dir)?,
                Some(Node::Dir) => {}
                Some(Node::Reserved(Reserved::Defaults)) => {} // only config/ and logs/ reach it
                Some(Node::Reserved(r)) => bail!(
                    "release entry `{shown}` is inside `{}`, {}; a release must not ship it",
                    display_path(parent),
                    r.describe()
                ),
                Some(Node::Link(_)) => bail!(
                    "release entry `{shown}` is below `{}`, a symbolic link of the release \
                     (entries must not be placed through links)",
                    display_path(parent)
                ),
                Some(Node::File) => bail!(
                    "release entry `{shown}` is below `{}`, which is a file (a file and a \
                     directory at the same path)",
                    display_path(parent)
                ),
            }
        }
        let node = match &entry.kind {
            EntryKind::Dir => Node::Dir,
            EntryKind::File { .. } => Node::File,
            EntryKind::Symlink { target } => Node::Link(target.as_str().into()),
        };
        match (self.nodes.get(rel.as_str()), &node) {
            (None, _) => self.add(&rel, node)?,
            (Some(Node::Dir), Node::Dir) => {} // upstream lists its top directory twice
            (Some(Node::Reserved(r)), _) => bail!(
                "release entry `{shown}` takes over `{}`, {}",
                display_path(&rel),
                r.describe()
            ),
            (Some(Node::Dir), _) | (Some(_), Node::Dir) => bail!(
                "release entry `{shown}` is {} where the release has {} (a file and a directory \
                 at the same path)",
                node.describe(),
                self.nodes[rel.as_str()].describe()
            ),
            (Some(_), _) => bail!("the release lists `{shown}` twice"),
        }
        Ok(())
    }

    fn add(&mut self, path: &str, node: Node) -> Result<()> {
        self.bytes += path.len();
        if let Node::Link(target) = &node {
            self.bytes += target.len();
        }
        if self.nodes.len() >= MAX_PATHS || self.bytes > MAX_PATH_BYTES {
            bail!(
                "the release has more than {MAX_PATHS} paths (entries and the directories \
                 they imply) or {} MiB of path names and link targets; real releases have far \
                 fewer, and mm-pkg refuses more to bound its memory",
                MAX_PATH_BYTES >> 20
            );
        }
        self.nodes.insert(path.into(), node);
        Ok(())
    }

    /// Resolves every link of the release through the release's links (chains, links to
    /// links), as the installed filesystem will. Refuses a link that leaves the install
    /// prefix, enters a path the packaging owns as a link into the data directory or as the
    /// service account's directory, or needs more than [`MAX_LINK_STEPS`] links (a loop).
    pub fn check_links(&self) -> Result<()> {
        let mut links: Vec<(&str, &str)> = self
            .nodes
            .iter()
            .filter_map(|(path, node)| match node {
                Node::Link(target) => Some((&**path, &**target)),
                _ => None,
            })
            .collect();
        links.sort_unstable();
        let mut resolved = Vec::with_capacity(links.len());
        let mut work = 0;
        for (path, target) in links {
            resolved.push((path, target, self.resolve(path, target, &mut work)?));
        }
        // dpkg and rpm keep an installed link to a directory when a later package ships a
        // directory there, and write that package's files through the link: a link to a
        // directory that holds a packaging path (the top, `client/`) would let the next
        // release write into the data directory or the service account's directory.
        for (path, target, end) in resolved {
            self.check_link_end(path, target, &end)?;
        }
        Ok(())
    }

    /// Refuses a link whose resolution `end` is a packaging path, is below one, or is a
    /// directory that holds one.
    fn check_link_end(&self, link: &str, target: &str, end: &str) -> Result<()> {
        for (path, reserved) in &self.reserved {
            let holds = end.is_empty() || is_below(path, end);
            let within = end == *path || is_below(end, path);
            if holds || within {
                let relation = match (holds, end == *path) {
                    (true, _) => "the directory that holds",
                    (false, true) => "which is",
                    (false, false) => "inside",
                };
                bail!(
                    "release entry `{}` is a link to `{target}`, which resolves to `{}`, \
                     {relation} `{}`, {}: a later release's files would be written through it",
                    display_path(link),
                    display_path(end),
                    display_path(path),
                    reserved.describe()
                );
            }
        }
        Ok(())
    }

    /// Follows `target` from `link`'s directory through the release's links; returns the
    /// path it ends at (relative to the install prefix). `work` counts the bytes of path
    /// looked up so far, for [`MAX_LINK_WORK`].
    fn resolve(&self, link: &str, target: &str, work: &mut usize) -> Result<String> {
        let shown = display_path(link);
        // The directory reached so far, as a path (kept in step, not joined per component).
        let mut here = String::from(link.rsplit_once('/').map_or("", |(dir, _)| dir));
        let mut pending: Vec<&str> = target.split('/').rev().collect();
        let mut steps = 0;
        while let Some(part) = pending.pop() {
            match part {
                "" | "." => {}
                ".." => {
                    if !pop_component(&mut here) {
                        bail!(
                            "release entry `{shown}` is a symbolic link to `{target}`, which \
                             leaves the release through the release's own links"
                        );
                    }
                }
                name => {
                    if !here.is_empty() {
                        here.push('/');
                    }
                    here.push_str(name);
                    *work += here.len();
                    if *work > MAX_LINK_WORK {
                        bail!(
                            "the release's links take more than {} MiB of path lookups to \
                             resolve (at `{shown}`); real releases have few, short links, and \
                             mm-pkg refuses more to bound its time",
                            MAX_LINK_WORK >> 20
                        );
                    }
                    match self.nodes.get(here.as_str()) {
                        Some(Node::Link(next)) => {
                            steps += 1;
                            if steps > MAX_LINK_STEPS {
                                bail!(
                                    "release entry `{shown}` is a symbolic link to `{target}` that \
                                     does not resolve within {MAX_LINK_STEPS} links (a loop)"
                                );
                            }
                            pop_component(&mut here);
                            pending.extend(next.split('/').rev());
                        }
                        Some(Node::Reserved(r @ (Reserved::DataLink | Reserved::ServiceDir))) => {
                            bail!(
                                "release entry `{shown}` is a link to `{target}`, which resolves \
                                 into `{}`, {}",
                                display_path(&here),
                                r.describe()
                            )
                        }
                        // A missing path or a file is followed lexically: conservative, and
                        // what the path would mean if it appeared later.
                        _ => {}
                    }
                }
            }
        }
        Ok(here)
    }
}

/// Removes the last component of `path`; false when it is empty (already the top).
fn pop_component(path: &mut String) -> bool {
    if path.is_empty() {
        return false;
    }
    let cut = path.rfind('/').unwrap_or(0);
    path.truncate(cut);
    true
}

/// True when `path` is strictly below the directory `dir`.
fn is_below(path: &str, dir: &str) -> bool {
    path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, kind: EntryKind) -> ReleaseEntry {
        ReleaseEntry {
            path: path.into(),
            kind,
            mode: 0o644,
            mtime: 0,
        }
    }

    fn link(path: &str, target: &str) -> ReleaseEntry {
        entry(
            path,
            EntryKind::Symlink {
                target: target.into(),
            },
        )
    }

    fn file(path: &str) -> ReleaseEntry {
        entry(path, EntryKind::File { size: 1 })
    }

    fn refused(entries: &[ReleaseEntry]) -> String {
        let mut tree = Tree::new();
        for e in entries {
            if let Err(err) = tree.insert(e, None) {
                return err.to_string();
            }
        }
        match tree.check_links() {
            Err(err) => err.to_string(),
            Ok(()) => panic!("accepted: {entries:?}"),
        }
    }

    #[test]
    fn chains_of_links_that_leave_are_refused_in_any_order() {
        let top = link("client/static/top", "../..");
        let esc = link("esc", "client/static/top/../../etc");
        for order in [[top.clone(), esc.clone()], [esc, top]] {
            assert!(refused(&order).contains("leaves the release"));
        }
    }

    #[test]
    fn links_that_stay_inside_are_accepted() {
        let mut tree = Tree::new();
        for e in [
            file("bin/mattermost"),
            link("client/static/bin", "../../bin"),
            link("bin/server", "mattermost"),
            link("bin/again", "../client/static/bin/server"),
            entry("config", EntryKind::Dir),
            file("config/config.json"),
        ] {
            tree.insert(&e, None).unwrap();
        }
        tree.check_links().unwrap();
    }

    #[test]
    fn loops_entries_below_links_and_conflicts_are_refused() {
        assert!(refused(&[link("x", "y"), link("y", "x")]).contains("a loop"));
        assert!(refused(&[link("x", "x")]).contains("a loop"));
        assert!(refused(&[link("x", "client"), file("x/evil")]).contains("below `mattermost/x`"));
        assert!(refused(&[file("a"), file("a/b")]).contains("a file and a directory"));
        assert!(
            refused(&[entry("a", EntryKind::Dir), file("a")]).contains("a file and a directory")
        );
        assert!(refused(&[file("a/b"), link("a", "b")]).contains("a file and a directory"));
        assert!(refused(&[file("a"), file("a")]).contains("twice"));
        let below_loop = [link("x", "y"), link("y", "x"), file("x/evil")];
        assert!(refused(&below_loop).contains("below `mattermost/x`"));
    }

    #[test]
    fn hard_links_must_name_a_file_listed_before_them() {
        let mut tree = Tree::new();
        tree.insert(&file("bin/a"), None).unwrap();
        tree.insert(&link("bin/b", "a"), Some("bin/a")).unwrap();
        let later = tree.insert(&link("bin/c", "d"), Some("bin/d")).unwrap_err();
        assert!(later.to_string().contains("not a file listed before it"));
        let to_link = tree.insert(&link("bin/e", "b"), Some("bin/b")).unwrap_err();
        assert!(to_link.to_string().contains("not a file listed before it"));
        tree.check_links().unwrap();
    }

    #[test]
    fn packaging_paths_are_never_taken_over_or_reached() {
        assert!(refused(&[link("client/plugins", "../i18n")]).contains("takes over"));
        assert!(refused(&[file("client/plugins/x/y")]).contains("webapp plugin directory"));
        assert!(refused(&[file("mm-pkg-version")]).contains("takes over"));
        assert!(refused(&[file("defaults/config/config.json")]).contains("inside"));
        assert!(refused(&[file("plugins/evil/plugin.json")]).contains("data directory"));
        assert!(refused(&[entry("data", EntryKind::Dir)]).contains("takes over"));
        assert!(refused(&[link("logs", "bin")]).contains("plain directory"));
        assert!(refused(&[link("config/x", "config.json")]).contains("inside `config/`"));
        assert!(refused(&[link("bin/cfg", "../config/config.json")]).contains("resolves into"));
        assert!(refused(&[link("bin/p", "../client/plugins/x")]).contains("resolves into"));
        assert!(
            refused(&[link("a", "client"), link("bin/p", "../a/plugins")])
                .contains("resolves into")
        );
        assert!(refused(&[file("client")]).contains("a file and a directory"));
    }

    #[test]
    fn long_link_targets_count_towards_the_memory_and_time_bounds() {
        // 1,100 links of 3,981 bytes each: 4.4 MB of targets, over the byte bound.
        let long = format!("{}b", "a/".repeat(1990));
        let mut tree = Tree::new();
        let err = (0..1100)
            .find_map(|i| tree.insert(&link(&format!("l/{i:05}"), &long), None).err())
            .expect("refused");
        assert!(err.to_string().contains("link targets"), "{err}");

        // 900 of them fit, but resolving them all would look up 900 * 4 MB of path.
        let mut tree = Tree::new();
        for i in 0..900 {
            tree.insert(&link(&format!("l/{i:05}"), &long), None)
                .unwrap();
        }
        let err = tree.check_links().unwrap_err().to_string();
        assert!(err.contains("MiB of path lookups"), "{err}");
    }

    #[test]
    fn links_a_later_release_could_write_through_into_packaging_paths_are_refused() {
        let written_through = "a later release's files would be written through it";
        for links in [
            vec![link("cl", "client")],
            vec![link("client/static/top", "../..")],
            vec![link("bin/c", "../client/./")],
            vec![link("i18n/b", "../client"), link("bin/a", "../i18n/b")],
            vec![link("bin/d", "../defaults")],
            vec![link("bin/v", "../mm-pkg-version")],
        ] {
            let err = refused(&links);
            assert!(err.contains(written_through), "{links:?}: {err}");
        }
        // The escape of a chain through the top is what is reported for it.
        let top = link("client/static/top", "../..");
        let esc = link("esc", "client/static/top/../../etc");
        assert!(refused(&[top, esc]).contains("leaves the release"));
    }
}
