//! Every shell script the packages carry, as rendered into the .deb and the .rpm (maintainer
//! scripts, scriptlets, the unit's config-snapshot, the mmctl wrapper), passes
//! `shellcheck -s sh` and `checkbashisms --posix`; each exception left is a
//! `# shellcheck disable=` with its reason on the line above (the project's bash scripts
//! pass shellcheck too). And no function's variables leak into its caller: a function that
//! assigns variables of its own runs in a subshell (`name() ( ... )`), so one function's
//! `dir` or `path` can never clobber another's.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::fixture::Spec;
use common::{build, have, output, run};

/// The one variable functions share on purpose: set by mm_configure_files, read by
/// mm_after_configure.
const SHARED_GLOBALS: &[&str] = &["MM_HAD_CONFIG"];

/// Every script of both packages, as installed or run: (name, text), built once per run of
/// this test binary.
fn rendered_scripts() -> Option<&'static [(String, String)]> {
    if !have("dpkg-deb") || !have("rpm") {
        return None;
    }
    static SCRIPTS: std::sync::OnceLock<Vec<(String, String)>> = std::sync::OnceLock::new();
    Some(SCRIPTS.get_or_init(extract_scripts))
}

fn extract_scripts() -> Vec<(String, String)> {
    let built = build(&Spec::new("9.11.90"), &[]);
    let dir = tempfile::tempdir().unwrap();
    let deb = built.deb.as_ref().unwrap();
    let control = dir.path().join("control");
    run(Command::new("dpkg-deb").arg("-e").arg(deb).arg(&control));
    let data = dir.path().join("data");
    run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(&data));
    let mut scripts = Vec::new();
    for name in ["preinst", "postinst", "prerm", "postrm"] {
        let text = fs::read_to_string(control.join(name)).unwrap();
        scripts.push((format!("deb {name}"), text));
    }
    for path in ["usr/libexec/mattermost/config-snapshot", "usr/bin/mmctl"] {
        let text = fs::read_to_string(data.join(path)).unwrap();
        scripts.push((format!("/{path}"), text));
    }
    let rpm = built.rpm.as_ref().unwrap();
    for tag in ["PREIN", "POSTIN", "PREUN", "POSTUN"] {
        let query = |field: String| run(Command::new("rpm").args(["-qp", "--qf", &field]).arg(rpm));
        // rpm runs each scriptlet with the interpreter its header names.
        let program = query(format!("%{{{tag}PROG}}"));
        assert_eq!(program, "/bin/sh", "{tag} runs with {program}");
        let text = query(format!("%{{{tag}}}"));
        scripts.push((format!("rpm %{tag}"), format!("#!/bin/sh\n{text}\n")));
    }
    scripts
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name.replace(['/', ' ', '%'], "_"));
    fs::write(&path, text).unwrap();
    path
}

#[test]
fn every_rendered_script_passes_shellcheck_and_checkbashisms() {
    if !have("shellcheck") || !have("checkbashisms") {
        return;
    }
    let Some(scripts) = rendered_scripts() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    // Every check at once (checkbashisms takes a second or two a script).
    let mut running = Vec::new();
    for (name, text) in scripts {
        assert!(
            text.starts_with("#!/bin/sh\n"),
            "{name} is not a /bin/sh script"
        );
        let path = write(dir.path(), name, text);
        for (tool, args) in [
            ("shellcheck", &["-s", "sh", "--severity=style"][..]),
            ("checkbashisms", &["--posix"][..]),
        ] {
            let child = Command::new(tool)
                .args(args)
                .arg(&path)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {tool}: {e}"));
            running.push((tool, name, child));
        }
        // Every exception says why, on the comment line just above it.
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if line.trim_start().starts_with("# shellcheck disable=") {
                let above = i
                    .checked_sub(1)
                    .map(|j| lines[j].trim_start())
                    .unwrap_or("");
                if !above.starts_with('#') || above.starts_with("# shellcheck") {
                    failures.push(format!(
                        "{name} line {}: `{}` has no reason on the line above",
                        i + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    for (tool, name, child) in running {
        let out = child.wait_with_output().unwrap();
        if !out.status.success() {
            failures.push(format!(
                "{tool} on {name}:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The project's own bash scripts: the test runner and the EL smoke test users run.
#[test]
fn the_projects_bash_scripts_pass_shellcheck() {
    if !have("shellcheck") {
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts");
    for name in ["test", "el-smoke-test"] {
        let out = output(
            Command::new("shellcheck")
                .args(["-s", "bash", "--severity=style"])
                .arg(dir.join(name)),
        );
        assert!(
            out.status.success(),
            "shellcheck on scripts/{name}:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

#[test]
fn no_function_leaks_a_variable_into_its_caller() {
    let Some(scripts) = rendered_scripts() else {
        return;
    };
    for (name, text) in scripts {
        let leaks = leaking_functions(text);
        assert!(leaks.is_empty(), "{name}: {leaks:?}");
    }
}

#[test]
fn the_leak_check_sees_a_leak() {
    let script = "#!/bin/sh\n\
                  a() {\n    dir=/tmp # clobbers\n    echo \"$dir\"\n}\n\
                  b() (\n    dir=/var\n)\n\
                  c() {\n    sh -c 'x=1; echo $x' sh\n    cat <<EOF\ny=2\nEOF\n}\n\
                  d() {\n    for f in 1 2; do :; done\n}\n\
                  e() {\n    IFS= read -r line rest\n}\n\
                  g() {\n    MM_HAD_CONFIG=yes\n    MM_OTHER=1\n}\n";
    assert_eq!(
        leaking_functions(script),
        [
            "a assigns dir",
            "d assigns f",
            "e assigns line",
            "e assigns rest",
            "g assigns MM_OTHER"
        ]
    );
}

/// "NAME assigns VAR" for each function NAME whose body runs in the caller's shell
/// (`NAME() {`) and assigns VAR (see [`assigned`]), unless VAR is one of [`SHARED_GLOBALS`].
/// Quoted text and here-documents are not code here: `sh -c '...'` runs in its own
/// process. Functions start at the beginning of a line and end at a `}` or `)` alone there.
fn leaking_functions(script: &str) -> Vec<String> {
    let code = without_quotes_and_heredocs(script);
    let mut leaks = Vec::new();
    let mut current: Option<(String, bool)> = None; // (name, runs in the caller's shell)
    for line in code.lines() {
        if let Some((name, brace)) = &current {
            if line == "}" || line == ")" {
                current = None;
                continue;
            }
            if !brace {
                continue;
            }
            for var in assigned(line) {
                if !SHARED_GLOBALS.contains(&var.as_str()) {
                    leaks.push(format!("{name} assigns {var}"));
                }
            }
        } else if let Some((name, rest)) = line.split_once("() ")
            && !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            current = Some((name.to_string(), rest.trim() == "{"));
        }
    }
    leaks
}

/// Words that start a command anew after them.
const KEYWORDS: &[&str] = &[
    "if", "then", "else", "elif", "fi", "while", "until", "do", "done", "!", "case", "esac",
];

/// Variables a line of code assigns in the shell running it: `NAME=value` alone (before a
/// command it is that command's environment only), `for NAME in`, `read NAME...`.
fn assigned(line: &str) -> Vec<String> {
    fn is_name(w: &str) -> bool {
        !w.is_empty()
            && !w.starts_with(|c: char| c.is_ascii_digit())
            && w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    }
    fn assignment(w: &str) -> Option<&str> {
        w.split_once('=').map(|(n, _)| n).filter(|n| is_name(n))
    }
    let mut out = Vec::new();
    for segment in line.split(|c: char| ";&|(){}".contains(c)) {
        let words: Vec<&str> = segment.split_whitespace().collect();
        let mut i = 0;
        while i < words.len() && KEYWORDS.contains(&words[i]) {
            i += 1;
        }
        if words.get(i) == Some(&"for") {
            if words.get(i + 2) == Some(&"in") {
                out.push(words[i + 1].to_string());
            }
            continue;
        }
        let first = i;
        while i < words.len() && assignment(words[i]).is_some() {
            i += 1;
        }
        if i == words.len() {
            out.extend(
                words[first..]
                    .iter()
                    .filter_map(|w| assignment(w))
                    .map(String::from),
            );
        } else if words[i] == "read" {
            out.extend(
                words[i + 1..]
                    .iter()
                    .filter(|w| !w.starts_with('-'))
                    .take_while(|w| is_name(w))
                    .map(|w| w.to_string()),
            );
        }
    }
    out
}

/// The script with the text inside quotes removed (the quotes stay), comments removed, and
/// here-document bodies replaced by empty lines.
fn without_quotes_and_heredocs(script: &str) -> String {
    let mut out = String::new();
    let mut single = false;
    let mut double = false;
    let mut heredoc: Option<String> = None;
    let mut pending: Option<String> = None;
    for line in script.lines() {
        if let Some(end) = &heredoc {
            if line.trim_start_matches('\t') == end {
                heredoc = None;
            }
            out.push('\n');
            continue;
        }
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if single {
                if c == '\'' {
                    single = false;
                    out.push(c);
                }
            } else if c == '\\' {
                i += 1; // the escaped character is text
            } else if double {
                if c == '"' {
                    double = false;
                    out.push(c);
                }
            } else if c == '\'' {
                single = true;
                out.push(c);
            } else if c == '"' {
                double = true;
                out.push(c);
            } else if c == '#' && (i == 0 || chars[i - 1].is_whitespace()) {
                break;
            } else if c == '<' && chars.get(i + 1) == Some(&'<') {
                let rest: String = chars[i + 2..].iter().collect();
                let word = rest
                    .trim_start_matches('-')
                    .trim_start()
                    .split(|c: char| c.is_whitespace() || c == ';' || c == '|')
                    .next()
                    .unwrap_or("")
                    .trim_matches(|c| c == '\'' || c == '"')
                    .to_string();
                pending = Some(word);
                out.push_str("<<");
                break;
            } else {
                out.push(c);
            }
            i += 1;
        }
        out.push('\n');
        if let Some(word) = pending.take() {
            heredoc = Some(word);
        }
    }
    out
}
