//! The `mm-pkg` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

mod cli;

use cli::build::{BuildArgs, run_build_and_tell};
use cli::failure;
use cli::repo::{
    KeyCommand, RepoCommand, run_key_generate, run_repo_add, run_repo_list, run_repo_remove,
    run_repo_verify,
};
use cli::source::{ListArgs, ResolveArgs, run_list, run_resolve};
use cli::sync::{NotifyCommandArgs, SyncArgs, run_notify, run_sync};

/// Build Debian and RPM packages of a Mattermost server release.
#[derive(Parser)]
#[command(name = "mm-pkg", version, about, after_help = cli::EXIT_STATUS_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per run: the size of the build variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Resolve, download, verify and package one release.
    Build(Box<BuildArgs>),
    /// Print the release a spec resolves to: version, URL, SHA-256.
    Resolve(ResolveArgs),
    /// List the releases a spec matches, newest first.
    List(ListArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(CompletionsArgs),
    /// Write the man pages (mm-pkg.1, mm-pkg-build.1, ...) into a directory.
    Man(ManArgs),
    /// Work with the package templates.
    #[command(subcommand)]
    Templates(TemplatesCommand),
    /// Make an OpenPGP signing key for packages and repositories.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Publish packages in a signed apt and yum repository.
    #[command(subcommand)]
    Repo(RepoCommand),
    /// Keep a repository current: resolve every spec, build only what the repository lacks,
    /// publish it as `repo add` does, and tell the team through a Mattermost webhook.
    Sync(Box<SyncArgs>),
    /// After CI built a `sync --plan --json` plan in separate jobs and `repo add` published
    /// them: tell the team which planned releases the repository now holds and which it lacks
    /// (exit code 1 when one is missing).
    Notify(NotifyCommandArgs),
}

#[derive(Subcommand)]
enum TemplatesCommand {
    /// Write every default template into DIR (deb/, rpm/, systemd/ and the shared files), a
    /// starting point for --templates DIR; existing files are never replaced.
    Export {
        /// Directory to write into (created if missing).
        dir: PathBuf,
    },
}

#[derive(Args)]
struct CompletionsArgs {
    /// The shell to complete for.
    shell: clap_complete::Shell,
}

#[derive(Args)]
struct ManArgs {
    /// Directory to write the pages into (created if missing).
    dir: PathBuf,
}

fn main() -> ExitCode {
    let matches = match cli::parse_command_line(command) {
        Ok(matches) => matches,
        Err(code) => return code,
    };
    let mut cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(err) => return failure::report_clap(err),
    };
    if let (Command::Build(args), Some(("build", m))) = (&mut cli.command, matches.subcommand()) {
        args.given = cli::Given::from_matches(m);
    }
    let json = match &cli.command {
        Command::Build(args) => args.json,
        Command::Resolve(args) => args.json,
        Command::List(args) => args.json,
        _ => false,
    };
    let result = match cli.command {
        Command::Build(args) => run_build_and_tell(*args),
        Command::Resolve(args) => run_resolve(args),
        Command::List(args) => run_list(args),
        Command::Completions(args) => cli::generate::completions(command(), args.shell),
        Command::Man(args) => cli::generate::man_pages(command(), &args.dir),
        Command::Templates(TemplatesCommand::Export { dir }) => mm_pkg::templates::export(&dir)
            .map(|written| {
                for path in written {
                    println!("wrote {}", path.display());
                }
            }),
        Command::Key(KeyCommand::Generate(args)) => run_key_generate(args),
        Command::Repo(RepoCommand::Add(args)) => run_repo_add(args),
        Command::Repo(RepoCommand::Remove(args)) => run_repo_remove(args),
        Command::Repo(RepoCommand::List(args)) => run_repo_list(args),
        Command::Repo(RepoCommand::Verify(args)) => run_repo_verify(args),
        Command::Sync(args) => run_sync(*args),
        Command::Notify(args) => run_notify(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => failure::report(&err, failure::kind_of(&err), json),
    }
}

/// The clap definition of the command line, with the exit status on every `--help`.
fn command() -> clap::Command {
    Cli::command().mut_subcommands(|s| s.after_help(cli::EXIT_STATUS_HELP))
}
