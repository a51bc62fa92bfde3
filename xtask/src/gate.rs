//! `cargo xtask gate`: fail unless one copier passes the installer
//! scenario (and its upgrade).

use std::path::PathBuf;

use anyhow::bail;
use harness::{report, table, Copier, DEFAULT_SCENARIO, DEFAULT_TOLERANCE};
use testbed::FsKind;

use crate::scenario::{parse_state_fs, prepare};

/// Arguments of `cargo xtask gate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The copier: a command line with {src} and {dst}, or a builtin name.
    #[arg(long, value_name = "CMD")]
    copier: String,
    /// Scenario name: a file stem in fixtures/scenarios/.
    #[arg(long, default_value = DEFAULT_SCENARIO)]
    scenario: String,
    /// Multiply every size by this factor (0 < F <= 1).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Filesystem of COS_STATE.
    #[arg(long, value_parser = parse_state_fs)]
    fs: Option<FsKind>,
    /// Most passive.img may allocate, relative to active.img.
    #[arg(long, default_value_t = DEFAULT_TOLERANCE)]
    tolerance: f64,
    /// Where to write the report (default: target/gate/<scenario>-<fs>).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Runs `cargo xtask gate`.
pub fn run(args: Args) -> anyhow::Result<()> {
    if args.tolerance.is_nan() || args.tolerance < 1.0 {
        bail!("--tolerance must be at least 1.0, got {}", args.tolerance);
    }
    let scenario = prepare(&args.scenario, args.scale, args.fs)?;
    let copier = Copier::from_name_or_command(&args.copier)?;
    let report = harness::run_scenario(&scenario, &[copier], args.tolerance, &mut |line| {
        eprintln!("{line}")
    })?;
    println!("{}", table::render_text(&report, table::FreeSpace::Figures));
    let dir = args
        .out
        .unwrap_or_else(|| report::default_dir("gate", &report));
    let path = report::write_report(&report, &dir)?;
    println!("report: {}", path.canonicalize().unwrap_or(path).display());
    let run = &report.runs[0];
    if !run.verdict.passed {
        bail!(
            "gate FAILED for {} on {}:\n{}",
            run.description,
            scenario.tag(),
            table::failures(run).trim_end()
        );
    }
    println!("gate passed: {} on {}", run.description, scenario.tag());
    Ok(())
}
