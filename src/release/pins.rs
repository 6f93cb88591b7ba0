//! SHA-256 pins for releases a command does not name one by one (`sync --sha256sums FILE`):
//! a file in `sha256sum`'s format whose lines name upstream tarballs. A pin names its
//! release by the tarball's file name (`mattermost-team-9.11.19-linux-arm64.tar.gz`), which
//! says version, edition and architecture at once, exactly as the download URL does.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};

/// Pinned SHA-256 values by tarball file name.
#[derive(Debug, Clone, Default)]
pub struct Pins {
    /// Where the pins come from, as messages name it (`--sha256sums FILE`).
    pub source: String,
    by_name: BTreeMap<String, String>,
}

impl Pins {
    /// Reads the `sha256sum`-format file at `path`.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the SHA-256 pins {}", path.display()))?;
        Self::parse(&text, &format!("--sha256sums {}", path.display()))
    }

    /// Parses `text`: one `HEX  NAME` (or `HEX *NAME`) per line, as `sha256sum` writes it;
    /// blank lines and `#` comments are skipped. A NAME with directories counts by its file
    /// name. Every NAME must be an upstream tarball name (`mattermost[-...]-X.Y.Z-linux-ARCH
    /// .tar.gz`) and may be pinned to one SHA-256 only.
    pub fn parse(text: &str, source: &str) -> Result<Self> {
        let mut by_name: BTreeMap<String, String> = BTreeMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_end();
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let at = || format!("{source}, line {}: `{line}`", n + 1);
            let (hex, name) = parse_line(line).with_context(at)?;
            if let Some(other) = by_name.get(&name)
                && *other != hex
            {
                bail!(
                    "{}: {name} is pinned twice, to different SHA-256 values",
                    at()
                );
            }
            by_name.insert(name, hex);
        }
        Ok(Pins {
            source: source.to_string(),
            by_name,
        })
    }

    /// The SHA-256 pinned for the tarball at `url` (by its file name), if any.
    pub fn for_url(&self, url: &str) -> Option<&str> {
        let name = url.rsplit('/').next().unwrap_or(url);
        self.by_name.get(name).map(String::as_str)
    }

    /// True when nothing is pinned.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

/// `(hex, file name)` of one `sha256sum` line.
fn parse_line(line: &str) -> Result<(String, String)> {
    let Some((hex, rest)) = line.split_once(' ') else {
        bail!("expected `SHA256  FILE` as sha256sum writes it");
    };
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("`{hex}` is not a SHA-256 (64 hex digits)");
    }
    // sha256sum separates with two spaces (text mode) or ` *` (binary mode).
    let path = rest
        .strip_prefix(' ')
        .or_else(|| rest.strip_prefix('*'))
        .unwrap_or(rest);
    let name = path.rsplit('/').next().unwrap_or(path);
    let upstream = name.starts_with("mattermost-")
        && name.ends_with(".tar.gz")
        && (name.contains("-linux-amd64") || name.contains("-linux-arm64"));
    if !upstream {
        bail!(
            "`{name}` is not an upstream tarball name (mattermost[-team]-X.Y.Z-linux-ARCH.tar.gz)"
        );
    }
    Ok((hex.to_ascii_lowercase(), name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "a3f1c0a9b2e47d1c0a9b2e47d1c0a9b2e47d1c0a9b2e47d1c0a9b2e47d1c0a9b";

    #[test]
    fn sha256sum_lines_pin_the_tarball_they_name() {
        let text = format!(
            "# pinned by hand\n{}  mattermost-9.11.19-linux-amd64.tar.gz\n\n{A} *dl/mattermost-team-9.11.19-linux-arm64.tar.gz\n",
            A.to_ascii_uppercase().replace('A', "B")
        );
        let pins = Pins::parse(&text, "test").unwrap();
        assert_eq!(
            pins.for_url(
                "https://releases.mattermost.com/9.11.19/mattermost-team-9.11.19-linux-arm64.tar.gz"
            ),
            Some(A)
        );
        assert!(
            pins.for_url("https://x/9.11.19/mattermost-9.11.19-linux-amd64.tar.gz")
                .is_some_and(|h| h.starts_with("b3f1"))
        );
        assert_eq!(
            pins.for_url("https://x/9.11.19/mattermost-team-9.11.19-linux-amd64.tar.gz"),
            None
        );
    }

    #[test]
    fn malformed_foreign_and_conflicting_lines_are_refused_by_line() {
        for (text, needle) in [
            (
                "abc  mattermost-9.11.19-linux-amd64.tar.gz",
                "not a SHA-256",
            ),
            (
                &format!("{A}  README.md") as &str,
                "not an upstream tarball",
            ),
            (A, "expected `SHA256  FILE`"),
            (
                &format!(
                    "{A}  mattermost-9.11.19-linux-amd64.tar.gz\n{}  mattermost-9.11.19-linux-amd64.tar.gz",
                    "0".repeat(64)
                ) as &str,
                "line 2",
            ),
        ] {
            let err = format!("{:#}", Pins::parse(text, "pins.txt").unwrap_err());
            assert!(
                err.contains(needle) && err.contains("pins.txt"),
                "{text}: {err}"
            );
        }
    }
}
