//! Every relative link in the project's Markdown files leads somewhere: the file or directory
//! exists, and an `#anchor` names a heading of the target file (GitHub's heading slugs).
//! Links to other sites are not fetched (the tests have no network); they are only counted.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The Markdown files a reader of the repository meets: the top level and `docs/`.
fn markdown_files(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in [root.to_path_buf(), root.join("docs"), root.join("data")] {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("read_dir entry").path();
            if path.extension().is_some_and(|e| e == "md") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The text outside fenced code blocks, line by line (code may contain `](` freely).
fn prose_lines(text: &str) -> Vec<(usize, String)> {
    let mut fenced = false;
    let mut lines = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            lines.push((i + 1, strip_code_spans(line)));
        }
    }
    lines
}

/// `line` without its inline code spans (`` `a](b` `` is not a link).
fn strip_code_spans(line: &str) -> String {
    let mut out = String::new();
    let mut parts = line.split('`');
    if let Some(first) = parts.next() {
        out.push_str(first);
    }
    for (i, part) in parts.enumerate() {
        // Pieces alternate: inside a span (replaced by a placeholder), then outside.
        if i % 2 == 1 {
            out.push_str(part);
        } else {
            out.push('x');
        }
    }
    out
}

/// The targets of inline links and images on one line: `[text](target "title")`.
fn link_targets(line: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        let end = after
            .find(|c: char| c == ')' || c.is_whitespace())
            .unwrap_or(after.len());
        targets.push(after[..end].trim_matches(['<', '>']).to_string());
        rest = &after[end..];
    }
    targets
}

/// GitHub's anchor for a heading text: lower case, markup and punctuation dropped, spaces
/// to hyphens; a repeated slug gets `-1`, `-2`, ...
fn slugs(text: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = BTreeSet::new();
    for (_, line) in prose_lines_keep_code(text) {
        let trimmed = line.trim_start();
        if !trimmed.starts_with('#') {
            continue;
        }
        let title = trimmed.trim_start_matches('#');
        if !title.starts_with(' ') {
            continue;
        }
        let base: String = title
            .trim()
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let n = seen.entry(base.clone()).or_insert(0);
        let slug = match *n {
            0 => base.clone(),
            k => format!("{base}-{k}"),
        };
        *n += 1;
        out.insert(slug);
    }
    out
}

/// Lines outside fenced code blocks, code spans kept (headings keep their backticks' text).
fn prose_lines_keep_code(text: &str) -> Vec<(usize, String)> {
    let mut fenced = false;
    let mut lines = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            lines.push((i + 1, line.to_string()));
        }
    }
    lines
}

/// Every broken relative link in `files`, as `file:line: target: why`; and how many
/// external links were seen.
fn broken_links(files: &[PathBuf]) -> (Vec<String>, usize) {
    let mut broken = Vec::new();
    let mut external = 0;
    for file in files {
        let text = fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for (number, line) in prose_lines(&text) {
            for target in link_targets(&line) {
                if target.contains("://") || target.starts_with("mailto:") {
                    external += 1;
                    continue;
                }
                let (path, anchor) = match target.split_once('#') {
                    Some((p, a)) => (p, Some(a)),
                    None => (target.as_str(), None),
                };
                let dest = match path {
                    "" => file.clone(),
                    p => file.parent().expect("a file has a parent").join(p),
                };
                let place = format!("{}:{number}: {target}", file.display());
                if !dest.exists() {
                    broken.push(format!("{place}: {} does not exist", dest.display()));
                    continue;
                }
                let Some(anchor) = anchor else { continue };
                let Ok(dest_text) = fs::read_to_string(&dest) else {
                    broken.push(format!("{place}: an anchor into a file that is not text"));
                    continue;
                };
                if !slugs(&dest_text).contains(anchor) {
                    broken.push(format!(
                        "{place}: no heading of {} has the anchor #{anchor}",
                        dest.display()
                    ));
                }
            }
        }
    }
    (broken, external)
}

#[test]
fn every_relative_link_and_anchor_in_the_docs_resolves() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = markdown_files(root);
    assert!(
        files.len() >= 8,
        "expected README, CHANGELOG, CONTRIBUTING, ARCHITECTURE and docs/: {files:?}"
    );
    let (broken, external) = broken_links(&files);
    eprintln!(
        "{} Markdown files checked; {external} links to other sites not fetched",
        files.len()
    );
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn every_document_in_docs_is_linked_from_the_readme() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = fs::read_to_string(root.join("README.md")).expect("README.md");
    let linked: BTreeSet<String> = prose_lines(&readme)
        .iter()
        .flat_map(|(_, line)| link_targets(line))
        .map(|t| t.split('#').next().unwrap_or_default().to_string())
        .collect();
    let mut missing = Vec::new();
    for file in markdown_files(root) {
        let relative = file.strip_prefix(root).expect("below the root");
        let name = relative.to_string_lossy().to_string();
        if name.starts_with("docs/") && !linked.contains(&name) {
            missing.push(name);
        }
    }
    for top in ["ARCHITECTURE.md", "CONTRIBUTING.md", "CHANGELOG.md"] {
        if !linked.contains(top) {
            missing.push(top.to_string());
        }
    }
    assert!(missing.is_empty(), "not linked from README.md: {missing:?}");
}

#[test]
fn the_checker_finds_a_missing_file_and_a_missing_anchor() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = dir.path().join("a.md");
    let b = dir.path().join("b.md");
    fs::write(
        &b,
        "# Title\n\n## `repo add`\n\n## Taking over from Mattermost's own .deb\n\n```\n# not a heading\n```\n",
    )
    .expect("write b.md");
    fs::write(
        &a,
        "[ok](b.md) [ok](b.md#repo-add) [ok](b.md#taking-over-from-mattermosts-own-deb)\n\
         [ext](https://example.org/x) `[code](nowhere.md)`\n\
         ```\n[fenced](nowhere.md)\n```\n\
         [gone](missing.md) [bad anchor](b.md#not-a-heading) [self](#title)\n",
    )
    .expect("write a.md");
    let (broken, external) = broken_links(&[a, b]);
    assert_eq!(external, 1);
    assert_eq!(broken.len(), 3, "{broken:#?}");
    assert!(broken[0].contains("missing.md"), "{}", broken[0]);
    assert!(broken[1].contains("#not-a-heading"), "{}", broken[1]);
    assert!(broken[2].contains("#title"), "{}", broken[2]);
}
