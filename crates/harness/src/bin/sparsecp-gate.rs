//! `sparsecp-gate`: the gate, installable (`cargo install --path
//! crates/harness`) and runnable from any directory. See [`harness::cli`].

use std::path::Path;

use clap::Parser;
use harness::cli::{GateCli, GateCommand};

fn main() {
    let cli = GateCli::parse();
    // Images go to a disk-backed directory of our own (never tmpfs), not
    // into whatever checkout the binary was built from, unless
    // SPARSECP_SCRATCH says where.
    if std::env::var_os("SPARSECP_SCRATCH").is_none() {
        // Single-threaded here: nothing else reads the environment yet.
        std::env::set_var("SPARSECP_SCRATCH", "/var/tmp/sparsecp-gate");
    }
    if !matches!(cli.command, GateCommand::List) {
        harness::cli::reclaim_leftovers("sparsecp-gate");
    }
    let result = match &cli.command {
        GateCommand::Gate(args) => harness::cli::gate(args, Path::new("sparsecp-gate"))
            .map(|passed| if passed { 0 } else { 1 }),
        GateCommand::Scenario(args) => {
            harness::cli::scenario(args, Path::new("sparsecp-scenario")).map(|()| 0)
        }
        GateCommand::List => harness::cli::list().map(|()| 0),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("sparsecp-gate: error: {e:#}");
            std::process::exit(2);
        }
    }
}
