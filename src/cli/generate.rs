//! Shell completions and man pages, generated from the same clap definitions as the parser,
//! so that they never disagree with `--help`.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use clap_complete::Shell;

/// Writes the completion script of `command` for `shell` to stdout.
pub fn completions(mut command: clap::Command, shell: Shell) -> Result<()> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command, "mm-pkg", &mut out);
    std::io::stdout()
        .write_all(&out)
        .context("writing the completions to stdout")
}

/// Writes the man pages of `command` into `dir` (created if missing): `mm-pkg.1` and one
/// `mm-pkg-<command>.1` per subcommand; prints their paths.
pub fn man_pages(command: clap::Command, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    clap_mangen::generate_to(command, dir)
        .with_context(|| format!("writing man pages into {}", dir.display()))?;
    let mut pages: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "1"))
        .collect();
    pages.sort();
    for page in pages {
        println!("wrote {}", page.display());
    }
    Ok(())
}
