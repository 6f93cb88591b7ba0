//! What ended a run: the exit status it maps to and the JSON object `--json` prints for it.

use std::fmt;
use std::process::ExitCode;

use serde::Serialize;

/// The phase a failure happened in; `kind` in the JSON error object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// The command line is wrong: unknown flag, invalid value or spec (exit status 2).
    Usage,
    /// No release matches the spec (exit status 1).
    NoMatch,
    /// Resolving the spec failed: catalog, index, network (exit status 1).
    Resolve,
    /// Downloading or verifying the release failed (exit status 1).
    Fetch,
    /// Verifying a local `--tarball` failed (exit status 1).
    Verify,
    /// Reading the release or writing the packages failed (exit status 1).
    Build,
    /// Anything else (exit status 1).
    Error,
}

impl Kind {
    /// The process exit status for this kind: 2 for usage errors, else 1.
    pub fn exit_code(self) -> ExitCode {
        match self {
            Kind::Usage => ExitCode::from(2),
            _ => ExitCode::FAILURE,
        }
    }
}

/// An error tagged with its [`Kind`]; displays (and chains) exactly as the error it wraps.
pub struct Tagged {
    kind: Kind,
    error: anyhow::Error,
}

impl fmt::Display for Tagged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl fmt::Debug for Tagged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.error, f)
    }
}

impl std::error::Error for Tagged {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.source()
    }
}

/// `.map_err(tag(Kind::Resolve))`: tags an error unless it already carries a kind.
pub fn tag(kind: Kind) -> impl FnOnce(anyhow::Error) -> anyhow::Error {
    move |error| {
        if error.downcast_ref::<Tagged>().is_some() {
            error
        } else {
            anyhow::Error::new(Tagged { kind, error })
        }
    }
}

/// The kind `error` was tagged with, [`Kind::Error`] when none.
pub fn kind_of(error: &anyhow::Error) -> Kind {
    error
        .downcast_ref::<Tagged>()
        .map(|t| t.kind)
        .unwrap_or(Kind::Error)
}

/// Reports `error`: one line on stderr, and with `json` one object `{"error", "kind"}` on
/// stdout. Returns the exit status.
pub fn report(error: &anyhow::Error, kind: Kind, json: bool) -> ExitCode {
    let message = format!("{error:#}");
    eprintln!("mm-pkg: error: {message}");
    if json {
        println!("{}", serde_json::json!({ "error": message, "kind": kind }));
    }
    kind.exit_code()
}

/// Reports a command line clap refused (exit status 2 for usage errors, 0 for `--help` and
/// `--version`); with `--json` among the arguments also the JSON object.
pub fn report_clap(error: clap::Error) -> ExitCode {
    if !error.use_stderr() {
        let _ = error.print();
        return ExitCode::SUCCESS;
    }
    let _ = error.print();
    if std::env::args_os().any(|a| a == "--json") {
        let message = error.kind().to_string();
        let detail = error.render().to_string();
        let first = detail
            .lines()
            .next()
            .unwrap_or(&message)
            .trim_start_matches("error: ");
        println!(
            "{}",
            serde_json::json!({ "error": first, "kind": Kind::Usage })
        );
    }
    Kind::Usage.exit_code()
}
