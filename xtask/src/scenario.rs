//! `cargo xtask scenario`: replay an installer scenario with copiers, print
//! the table, write the report folder.

use std::path::PathBuf;

use anyhow::bail;
use harness::{report, table, Copier, Scenario, DEFAULT_SCENARIO, DEFAULT_TOLERANCE};
use testbed::FsKind;

/// Arguments of `cargo xtask scenario`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Scenario name: a file stem in fixtures/scenarios/.
    #[arg(long, default_value = DEFAULT_SCENARIO)]
    scenario: String,
    /// Multiply every size by this factor (0 < F <= 1) for a quick run.
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Filesystem of COS_STATE (active.img stays ext2).
    #[arg(long, value_parser = parse_state_fs)]
    fs: Option<FsKind>,
    /// A builtin copier to run, or a command with {src} and {dst}
    /// (repeatable; default: every builtin).
    #[arg(long = "copier", value_name = "NAME")]
    copiers: Vec<String>,
    /// An extra copier: a command line with {src} and {dst} (repeatable).
    #[arg(long = "external", value_name = "CMD")]
    externals: Vec<String>,
    /// Where to write the report (default: target/scenario/<scenario>-<fs>).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Parses `ext4`, `xfs` or `btrfs`.
pub fn parse_state_fs(s: &str) -> Result<FsKind, String> {
    match s.parse::<FsKind>() {
        Ok(FsKind::Ext2) | Err(_) => Err(format!("{s:?}: expected ext4, xfs or btrfs")),
        Ok(kind) => Ok(kind),
    }
}

/// Loads, scales and re-filesystems a scenario; fails if it cannot run here.
pub fn prepare(name: &str, scale: f64, fs: Option<FsKind>) -> anyhow::Result<Scenario> {
    let mut scenario = Scenario::load(name)?;
    if let Some(fs) = fs {
        scenario = scenario.with_state_fs(fs)?;
    }
    if scale != 1.0 {
        scenario = scenario.scaled(scale)?;
    }
    if let Some(reason) = harness::skip_reason(scenario.state.fs) {
        bail!("cannot run scenarios here: {reason}");
    }
    Ok(scenario)
}

/// Runs `cargo xtask scenario`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let scenario = prepare(&args.scenario, args.scale, args.fs)?;
    let mut copiers = if args.copiers.is_empty() {
        Copier::builtins()
    } else {
        args.copiers
            .iter()
            .map(|name| Copier::from_name_or_command(name))
            .collect::<anyhow::Result<Vec<_>>>()?
    };
    for (i, template) in args.externals.iter().enumerate() {
        let name = match i {
            0 => "external".to_owned(),
            _ => format!("external-{}", i + 1),
        };
        copiers.push(Copier::external(name, template)?);
    }
    let started = std::time::Instant::now();
    let report = harness::run_scenario(&scenario, &copiers, DEFAULT_TOLERANCE, &mut |line| {
        eprintln!("[{:>6.1}s] {line}", started.elapsed().as_secs_f64())
    })?;
    println!("{}", table::render_text(&report, table::FreeSpace::Figures));
    for run in report.runs.iter().filter(|r| !r.verdict.passed) {
        println!("{} fails the gate:\n{}", run.copier, table::failures(run));
    }
    let dir = args
        .out
        .unwrap_or_else(|| report::default_dir("scenario", &report));
    let path = report::write_report(&report, &dir)?;
    let path = path.canonicalize().unwrap_or(path);
    println!(
        "took {:.0} s; report: {} (open {} in a browser for the maps)",
        started.elapsed().as_secs_f64(),
        path.display(),
        path.with_extension("html").display()
    );
    Ok(())
}
