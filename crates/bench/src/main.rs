//! sparsecp-bench: the command line of the benchmarks (`cargo xtask bench`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// Times sparsecp against cp, rsync, qemu-img and io.Copy on loop-mounted
/// filesystems and writes markdown, JSON and a chart (needs root).
#[derive(Debug, Parser)]
#[command(name = "sparsecp-bench", version, max_term_width = 100)]
struct Cli {
    /// Timed runs per tool and cache mode, after one warm-up. Seven: on
    /// the 2-vCPU CI VM, rounds of the same code vary up to 1.8x, and the
    /// medians of five moved the install ratio from 0.75x to 0.90x between
    /// two full runs; seven gave 0.69x with rounds 0.59-0.82x.
    #[arg(long, default_value_t = 7, value_name = "N")]
    runs: usize,
    /// Scale the images down to a tenth, for a fast smoke run.
    #[arg(long)]
    quick: bool,
    /// Run only this case (repeatable); see --list.
    #[arg(long = "case", value_name = "NAME")]
    cases: Vec<String>,
    /// Where report.md, report.json and bench.svg go [default: target/bench].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// The sparsecp binary to measure [default: the one next to this binary].
    #[arg(long, value_name = "PATH")]
    sparsecp: Option<PathBuf>,
    /// List the cases and exit.
    #[arg(long)]
    list: bool,
    #[command(subcommand)]
    helper: Option<Helper>,
}

/// The read-once-write-once limits, run as children so they are timed
/// like every other tool.
#[derive(Debug, Subcommand)]
enum Helper {
    /// copy_file_range the data extents of SRC into a new DST.
    #[command(name = "limit-copy", hide = true)]
    Copy { src: PathBuf, dst: PathBuf },
    /// Read the data extents of SRC once, on THREADS threads.
    #[command(name = "limit-read", hide = true)]
    Read {
        src: PathBuf,
        #[arg(long, default_value_t = 1)]
        threads: usize,
    },
    /// Write as many bytes as SRC's data extents hold, at the same offsets,
    /// into a new DST from one buffer in memory.
    #[command(name = "limit-write", hide = true)]
    Write { src: PathBuf, dst: PathBuf },
}

fn main() -> ExitCode {
    // The spawner first, before anything grows its memory (see `child`).
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if args.first().is_some_and(|a| a == bench::child::SPAWN_ARG) {
        return bench::child::spawner(&args[1..]);
    }
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sparsecp-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.helper {
        Some(Helper::Copy { src, dst }) => {
            bench::limit::copy_extents(&src, &dst)?;
            return Ok(ExitCode::SUCCESS);
        }
        Some(Helper::Read { src, threads }) => {
            bench::limit::read_extents(&src, threads)?;
            return Ok(ExitCode::SUCCESS);
        }
        Some(Helper::Write { src, dst }) => {
            bench::limit::write_extents(&src, &dst)?;
            return Ok(ExitCode::SUCCESS);
        }
        None => {}
    }
    if cli.list {
        for (name, what) in bench::cases::CASES {
            println!("{name:<14} {what}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let config = bench::Config::new(cli.runs, cli.quick, &cli.cases, cli.out, cli.sparsecp)?;
    // Ctrl-C stops after the current run, so the guards unmount and detach
    // and the report keeps what was measured.
    let cancel = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&cancel))
            .context("cannot install a signal handler")?;
    }
    let report = bench::run(&config, &cancel)?;
    let markdown = bench::report::write(&report, &config.out)?;
    println!("{markdown}");
    eprintln!(
        "bench: wrote report.md, report.json and bench.svg to {} in {}",
        config.out.display(),
        bench::report::minutes(report.wall_seconds)
    );
    Ok(ExitCode::SUCCESS)
}
