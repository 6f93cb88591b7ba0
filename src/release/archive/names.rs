//! Entry names as dpkg, rpm and the filesystem will take them: paths below the release's
//! top directory, without control characters, with components a filesystem can hold.

use anyhow::{Result, bail};

use super::TOP_DIR;

/// Longest name component a Linux filesystem holds (`NAME_MAX`).
pub const MAX_COMPONENT: usize = 255;
/// Longest path or link target the kernel resolves (`PATH_MAX` less the final NUL).
pub const MAX_PATH: usize = 4095;

/// `text` with control characters escaped, so that a message stays on one line.
pub fn shown(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().collect()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// `mattermost/<path>` as the archive names it (for messages).
pub fn display_path(path: &str) -> String {
    if path.is_empty() {
        format!("{TOP_DIR}/")
    } else {
        format!("{TOP_DIR}/{path}")
    }
}

/// Refuses a name (`what` is "name" or "link target") that no package manager can install:
/// control characters (a newline breaks dpkg's file lists), a component longer than
/// [`MAX_COMPONENT`] bytes, or more than [`MAX_PATH`] bytes in all.
pub fn check_text(raw: &str, text: &str, what: &str) -> Result<()> {
    if text.chars().any(char::is_control) {
        bail!(
            "release entry `{}` has a control character in its {what} `{}`; dpkg and rpm cannot install it",
            shown(raw),
            shown(text)
        );
    }
    // The installed path is longer than the archive path by the install prefix.
    let limit = MAX_PATH - crate::layout::DEFAULTS_DIR.len();
    if text.len() > limit {
        bail!(
            "release entry `{}...` has a {what} of {} bytes; installed paths are limited to {MAX_PATH} bytes",
            shown(prefix(raw, 80)),
            text.len()
        );
    }
    if let Some(long) = text.split('/').find(|c| c.len() > MAX_COMPONENT) {
        bail!(
            "release entry `{}` has a {what} component of {} bytes (`{}...`); file names are limited to {MAX_COMPONENT} bytes",
            shown(prefix(raw, 80)),
            long.len(),
            prefix(long, 20)
        );
    }
    Ok(())
}

/// At most the first `chars` characters of `text`.
fn prefix(text: &str, chars: usize) -> &str {
    &text[..text
        .char_indices()
        .nth(chars)
        .map_or(text.len(), |(i, _)| i)]
}

/// Turns an archive path into a path below the top directory, refusing escapes.
pub fn release_path(raw: &str) -> Result<String> {
    if raw.starts_with('/') {
        bail!("release entry `{raw}` has an absolute path");
    }
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => bail!("release entry `{raw}` has a `..` component"),
            _ => parts.push(part),
        }
    }
    match parts.split_first() {
        Some((&TOP_DIR, rest)) => Ok(rest.join("/")),
        _ => bail!("release entry `{raw}` is outside the `{TOP_DIR}/` directory"),
    }
}

/// Refuses a symbolic link whose own text leaves the release (lexically, before any of the
/// release's other links are taken into account; see the tree for those).
pub fn check_symlink(raw: &str, path: &str, target: &str) -> Result<()> {
    if target.is_empty() {
        bail!("release entry `{raw}` is a symbolic link with an empty target");
    }
    if target.starts_with('/') {
        bail!(
            "release entry `{raw}` is a symbolic link to the absolute path `{target}`, outside the release"
        );
    }
    let mut depth = path.split('/').count() - 1; // the link's directory
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." if depth == 0 => {
                bail!("release entry `{raw}` is a symbolic link to `{target}`, outside the release")
            }
            ".." => depth -= 1,
            _ => depth += 1,
        }
    }
    Ok(())
}

/// A relative path from the directory of `from` to `to` (both below the top directory).
pub fn relative_link(from: &str, to: &str) -> String {
    let from_dir: Vec<&str> = from.split('/').filter(|p| !p.is_empty()).collect();
    let from_dir = &from_dir[..from_dir.len().saturating_sub(1)];
    let to_parts: Vec<&str> = to.split('/').filter(|p| !p.is_empty()).collect();
    let common = from_dir
        .iter()
        .zip(&to_parts)
        .take_while(|(a, b)| a == b)
        .count();
    let mut out: Vec<&str> = vec![".."; from_dir.len() - common];
    out.extend(&to_parts[common..]);
    out.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_stripped_and_escapes_refused() {
        assert_eq!(release_path("mattermost/").unwrap(), "");
        assert_eq!(
            release_path("./mattermost/bin/mattermost").unwrap(),
            "bin/mattermost"
        );
        assert!(release_path("/etc/passwd").is_err());
        assert!(release_path("mattermost/../x").is_err());
        assert!(release_path("other/x").is_err());
    }

    #[test]
    fn symlinks_must_stay_inside() {
        assert!(check_symlink("x", "bin/a", "b").is_ok());
        assert!(check_symlink("x", "bin/a", "../client/x").is_ok());
        assert!(check_symlink("x", "bin/a", "../../etc").is_err());
        assert!(check_symlink("x", "a", "..").is_err());
        assert!(check_symlink("x", "bin/a", "/etc").is_err());
    }

    #[test]
    fn hard_links_become_relative_symlinks() {
        assert_eq!(relative_link("bin/b", "bin/a"), "a");
        assert_eq!(relative_link("client/x/y", "bin/a"), "../../bin/a");
        assert_eq!(relative_link("top", "bin/a"), "bin/a");
    }

    #[test]
    fn names_package_managers_cannot_install_are_refused() {
        assert!(check_text("a", "mattermost/a.js", "name").is_ok());
        let newline = check_text("x", "mattermost/a\nb", "name").unwrap_err();
        assert!(newline.to_string().contains("a\\nb"), "{newline}");
        assert!(!newline.to_string().contains('\n'));
        assert!(check_text("x", "mattermost/a\u{7f}", "name").is_err());
        let long = format!("mattermost/{}", "a".repeat(256));
        assert!(check_text(&long, &long, "name").is_err());
        let ok = format!("mattermost/{}", "a".repeat(255));
        assert!(check_text(&ok, &ok, "name").is_ok());
        let deep = "a/".repeat(2100);
        assert!(check_text("x", &deep, "name").is_err());
        // Messages cut long names on character boundaries.
        let wide = format!("mattermost/{}", "é".repeat(200));
        assert!(check_text(&wide, &wide, "name").is_err());
        let deep_wide = "é/".repeat(1500);
        assert!(check_text(&deep_wide, &deep_wide, "name").is_err());
    }
}
