//! sparsecp's command-line definition, as a library.
//!
//! The binary parses its arguments with [`cli::Cli`]; `cargo xtask dist`
//! generates the man pages and shell completions from [`command`], the same
//! clap definition, so they never drift from `--help`. A library beats a
//! hidden `sparsecp generate` subcommand: the generator needs no built
//! binary (it works when cross-compiling), and the shipped command line
//! gets no subcommand users could stumble on.

#![forbid(unsafe_code)]

pub mod cli;

/// The clap command of `sparsecp`, with every subcommand and option.
pub fn command() -> clap::Command {
    <cli::Cli as clap::CommandFactory>::command()
}
