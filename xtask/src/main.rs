//! `cargo xtask`: the project's automation, one subcommand per module.
//!
//! Thin by design: what a subcommand measures or checks lives in the
//! `harness` crate, so tests can use it too; here are only arguments,
//! printing, and the order of steps.

mod bench;
mod dist;
mod gate;
mod matrix;
mod scenario;
mod test;
mod tidy;

use clap::{Parser, Subcommand};

/// Project automation (`cargo xtask <command> --help`).
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Replays an installer scenario with copiers; prints the table and
    /// writes a report folder under target/scenario/.
    Scenario(harness::cli::ScenarioCmdArgs),
    /// Fails unless a copier keeps passive.img as sparse as active.img,
    /// identical, labelled, clean, and the upgrade fitting.
    Gate(harness::cli::GateArgs),
    /// Everything CI runs: fmt, clippy, all tests with snapshot checks,
    /// and a check that no loop device was left behind.
    Test(test::Args),
    /// Benchmarks sparsecp against GNU cp and friends (release build);
    /// writes target/bench/report.md, report.json and a plot.
    Bench(bench::Args),
    /// Release artefacts in target/dist/: stripped binaries, man pages,
    /// completions, a .tar.gz, a .deb, an .rpm and SHA256SUMS.
    Dist(dist::Args),
    /// The loop-device tests and the gate on other kernels, each booted
    /// under QEMU (KVM when it works, else TCG), plus the host kernel
    /// natively; writes target/matrix/report.md and report.json.
    Matrix(matrix::Args),
    /// House rules: module docs, unsafe only where allowed, no pending
    /// snapshots, no cleanup that hits others' devices.
    Tidy,
}

fn main() {
    let cli = Cli::parse();
    if matches!(
        cli.command,
        Command::Scenario(_) | Command::Gate(_) | Command::Test(_) | Command::Matrix(_)
    ) {
        harness::cli::reclaim_leftovers("xtask");
    }
    let result = match cli.command {
        Command::Scenario(args) => scenario::run(args),
        Command::Gate(args) => gate::run(args),
        Command::Test(args) => test::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Dist(args) => dist::run(args),
        Command::Matrix(args) => matrix::run(args),
        Command::Tidy => tidy::run(&test::workspace_root()),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
