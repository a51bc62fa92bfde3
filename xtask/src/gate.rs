//! `cargo xtask gate`: fail unless one copier passes the installer
//! scenario, and its upgrade (under the chosen strategies) does not come
//! out corrupted.

use anyhow::bail;
use harness::{report, table, Copier, Strategy};

use crate::scenario::ScenarioArgs;

/// Arguments of `cargo xtask gate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The copier: a command line with {src} and {dst}, or a builtin name.
    #[arg(long, value_name = "CMD")]
    copier: String,
    #[command(flatten)]
    common: ScenarioArgs,
}

/// Runs `cargo xtask gate`: the `elemental` strategy unless told.
pub fn run(args: Args) -> anyhow::Result<()> {
    let scenario = args.common.scenario()?;
    let options = args.common.options(vec![Strategy::Elemental])?;
    let copier = Copier::from_name_or_command(&args.copier)?;
    let report = harness::run_scenario(&scenario, &[copier], &options, &mut |line| {
        eprintln!("{line}")
    })?;
    println!("{}", table::render_text(&report, table::FreeSpace::Figures));
    let dir = args
        .common
        .out
        .unwrap_or_else(|| report::default_dir("gate", &report));
    let path = report::write_report(&report, &dir)?;
    println!("report: {}", path.canonicalize().unwrap_or(path).display());
    let run = &report.runs[0];
    let upgrades: Vec<String> = run
        .upgrades
        .iter()
        .map(|u| format!("{}: {}", u.strategy, u.verdict))
        .collect();
    let upgrades = match upgrades.is_empty() {
        true => String::new(),
        false => format!(" (upgrade {})", upgrades.join(", ")),
    };
    if !run.passed() {
        bail!(
            "gate FAILED for {} on {}{upgrades}:\n{}",
            run.description,
            scenario.tag(),
            table::failures(run).trim_end()
        );
    }
    println!(
        "gate passed: {} on {}{upgrades}",
        run.description,
        scenario.tag()
    );
    Ok(())
}
