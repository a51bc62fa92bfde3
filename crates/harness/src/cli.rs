//! The gate's command line, shared by the installable `sparsecp-gate`
//! binary and `cargo xtask gate | scenario` (thin wrappers over it).
//!
//! - `gate`: one copier through a scenario (and its upgrade, under the
//!   chosen strategies); fails unless the copy keeps passive.img as sparse
//!   as active.img and no upgrade comes out corrupted.
//! - `scenario`: every copier (and every strategy) through a scenario, the
//!   tables printed and the report folder written.
//! - `list`: the scenarios, copiers and strategies that ship.
//!
//! Scenarios and the Go copiers' sources are compiled into the binary, so
//! it runs from any directory; `--scenario FILE.toml` runs a scenario of
//! your own.

use std::path::{Path, PathBuf};

use anyhow::bail;
use testbed::FsKind;

use crate::upgrade::PREFLIGHT_ENV;
use crate::{
    report, table, Copier, RunOptions, Scenario, ScenarioReport, Strategy, DEFAULT_SCENARIO,
    DEFAULT_TOLERANCE,
};

/// What to run and how: the arguments `scenario` and `gate` share.
#[derive(Debug, Clone, clap::Args)]
pub struct ScenarioArgs {
    /// A builtin scenario (see `list`) or the path of a scenario TOML file.
    #[arg(long, default_value = DEFAULT_SCENARIO)]
    pub scenario: String,
    /// Multiply every size by this factor (0 < F <= 1) for a quick run.
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// Filesystem of COS_STATE (the images stay ext2).
    #[arg(long, value_parser = parse_state_fs)]
    pub fs: Option<FsKind>,
    /// Most passive.img may allocate, relative to active.img.
    #[arg(long, default_value_t = DEFAULT_TOLERANCE)]
    pub tolerance: f64,
    /// Upgrade strategy for upgrade scenarios: elemental, dig-passive,
    /// preflight or drop-passive (repeatable; `gate` runs elemental and
    /// `scenario` all four unless told).
    #[arg(long = "upgrade", value_name = "NAME")]
    pub upgrades: Vec<String>,
    /// A preflight command run with `sh -c` before transition.img is built,
    /// with COS_STATE_DIR, UPGRADE_BYTES_NEEDED, COS_STATE_BYTES_FREE,
    /// TRANSITION_IMG, ACTIVE_IMG and PASSIVE_IMG in its environment; a
    /// non-zero exit refuses the upgrade (the strategy `external`).
    #[arg(long, value_name = "CMD")]
    pub upgrade_preflight: Option<String>,
    /// Where to write the report (default: sparsecp-<command>/<scenario>-<fs>
    /// in the current directory; target/<command>/... for cargo xtask).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Arguments of `gate`.
#[derive(Debug, Clone, clap::Args)]
pub struct GateArgs {
    /// The copier: a command line with {src} and {dst} (run with `sh -c`),
    /// or a builtin name (see `list`).
    #[arg(long, value_name = "CMD")]
    pub copier: String,
    /// The scenario and how to run it.
    #[command(flatten)]
    pub common: ScenarioArgs,
}

/// Arguments of `scenario`.
#[derive(Debug, Clone, clap::Args)]
pub struct ScenarioCmdArgs {
    /// The scenario and how to run it.
    #[command(flatten)]
    pub common: ScenarioArgs,
    /// A builtin copier to run, or a command with {src} and {dst}
    /// (repeatable; default: every builtin).
    #[arg(long = "copier", value_name = "NAME")]
    pub copiers: Vec<String>,
    /// An extra copier: a command line with {src} and {dst} (repeatable).
    #[arg(long = "external", value_name = "CMD")]
    pub externals: Vec<String>,
}

/// The `sparsecp-gate` command line.
#[derive(Debug, clap::Parser)]
#[command(
    name = "sparsecp-gate",
    version,
    about = "Replays the Harvester/Elemental install and upgrade on real loop-mounted \
             COS_STATE partitions and gates a copier (and an upgrade strategy) against \
             wasting space or corrupting the upgraded image. Needs root."
)]
pub struct GateCli {
    /// What to do.
    #[command(subcommand)]
    pub command: GateCommand,
}

/// The subcommands of `sparsecp-gate`.
#[derive(Debug, clap::Subcommand)]
pub enum GateCommand {
    /// Fails (exit 1) unless the copier keeps passive.img as sparse as
    /// active.img, identical, labelled and clean, and no upgrade comes out
    /// corrupted.
    Gate(GateArgs),
    /// Runs copiers (and upgrade strategies) through a scenario; prints
    /// the tables and writes the report folder.
    Scenario(ScenarioCmdArgs),
    /// Lists the builtin scenarios, copiers and upgrade strategies, and
    /// the environment of a preflight command.
    List,
}

/// The clap definition of `sparsecp-gate` (for man pages and completions).
pub fn command() -> clap::Command {
    <GateCli as clap::CommandFactory>::command()
}

/// Parses `ext4`, `xfs` or `btrfs`.
pub fn parse_state_fs(s: &str) -> Result<FsKind, String> {
    match s.parse::<FsKind>() {
        Ok(FsKind::Ext2) | Err(_) => Err(format!("{s:?}: expected ext4, xfs or btrfs")),
        Ok(kind) => Ok(kind),
    }
}

impl ScenarioArgs {
    /// Loads, scales and re-filesystems the scenario; fails if it cannot
    /// run here.
    pub fn scenario(&self) -> anyhow::Result<Scenario> {
        let mut scenario = Scenario::load(&self.scenario)?;
        if let Some(fs) = self.fs {
            scenario = scenario.with_state_fs(fs)?;
        }
        if self.scale != 1.0 {
            scenario = scenario.scaled(self.scale)?;
        }
        if let Some(reason) = crate::skip_reason(scenario.state.fs) {
            bail!("cannot run scenarios here: {reason}");
        }
        Ok(scenario)
    }

    /// The tolerance and strategies; `default` are the strategies when
    /// neither --upgrade nor --upgrade-preflight is given.
    pub fn options(&self, default: Vec<Strategy>) -> anyhow::Result<RunOptions> {
        if self.tolerance.is_nan() || self.tolerance < 1.0 {
            bail!("--tolerance must be at least 1.0, got {}", self.tolerance);
        }
        let mut strategies = self
            .upgrades
            .iter()
            .map(|name| Strategy::builtin(name))
            .collect::<anyhow::Result<Vec<_>>>()?;
        if let Some(command) = &self.upgrade_preflight {
            strategies.push(Strategy::External {
                command: command.clone(),
            });
        }
        if strategies.is_empty() {
            strategies = default;
        }
        Ok(RunOptions {
            tolerance: self.tolerance,
            strategies,
        })
    }

    /// `--out`, else `<reports>/<scenario>-<fs>`.
    fn report_dir(&self, reports: &Path, report: &ScenarioReport) -> PathBuf {
        self.out
            .clone()
            .unwrap_or_else(|| reports.join(report.scenario.tag()))
    }
}

/// Runs `gate`, with reports under `reports` unless `--out` says;
/// `Ok(false)` when the gate failed (it says why on stderr).
pub fn gate(args: &GateArgs, reports: &Path) -> anyhow::Result<bool> {
    let scenario = args.common.scenario()?;
    let options = args.common.options(vec![Strategy::Elemental])?;
    let copier = Copier::from_name_or_command(&args.copier)?;
    let report = crate::run_scenario(&scenario, &[copier], &options, &mut |line| {
        eprintln!("{line}")
    })?;
    println!("{}", table::render_text(&report, table::FreeSpace::Figures));
    let path = report::write_report(&report, &args.common.report_dir(reports, &report))?;
    println!("report: {}", path.canonicalize().unwrap_or(path).display());
    let run = &report.runs[0];
    let upgrades: Vec<String> = run
        .upgrades
        .iter()
        .map(|u| format!("{}: {}", u.strategy, u.verdict))
        .collect();
    let upgrades = if upgrades.is_empty() {
        String::new()
    } else {
        format!(" (upgrade {})", upgrades.join(", "))
    };
    if !run.passed() {
        eprintln!(
            "gate FAILED for {} on {}{upgrades}:\n{}",
            run.description,
            scenario.tag(),
            table::failures(run).trim_end()
        );
        return Ok(false);
    }
    println!(
        "gate passed: {} on {}{upgrades}",
        run.description,
        scenario.tag()
    );
    Ok(true)
}

/// Runs `scenario`, with reports under `reports` unless `--out` says:
/// every builtin strategy unless told.
pub fn scenario(args: &ScenarioCmdArgs, reports: &Path) -> anyhow::Result<()> {
    let scenario = args.common.scenario()?;
    let options = args.common.options(Strategy::builtins())?;
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
    let report = crate::run_scenario(&scenario, &copiers, &options, &mut |line| {
        eprintln!("[{:>6.1}s] {line}", started.elapsed().as_secs_f64())
    })?;
    println!("{}", table::render_text(&report, table::FreeSpace::Figures));
    for run in report.runs.iter().filter(|r| !r.passed()) {
        println!("{} fails the gate:\n{}", run.copier, table::failures(run));
    }
    let path = report::write_report(&report, &args.common.report_dir(reports, &report))?;
    let path = path.canonicalize().unwrap_or(path);
    println!(
        "took {:.0} s; report: {} (open {} in a browser for the maps)",
        started.elapsed().as_secs_f64(),
        path.display(),
        path.with_extension("html").display()
    );
    Ok(())
}

/// Prints the builtin scenarios, copiers and strategies.
pub fn list() -> anyhow::Result<()> {
    println!("scenarios:");
    for name in Scenario::names()? {
        let scenario = Scenario::load(&name)?;
        println!("  {name:<26} {}", scenario.description);
    }
    println!("copiers:");
    for copier in Copier::builtins() {
        println!("  {:<26} {}", copier.name(), copier.describe());
    }
    println!("upgrade strategies:");
    for strategy in Strategy::builtins() {
        println!("  {:<26} {}", strategy.name(), strategy.describe());
    }
    println!("a preflight command's environment (--upgrade-preflight):");
    for (name, meaning) in PREFLIGHT_ENV {
        println!("  {name:<26} {meaning}");
    }
    Ok(())
}

/// Releases the loop devices and mounts of a run that was killed (only
/// ours, whose owner process is gone), saying what it did.
pub fn reclaim_leftovers(who: &str) {
    for action in testbed::leaks::reclaim_leaked() {
        eprintln!("{who}: cleaning up after a killed run: {action}");
    }
}

/// The `target/` directory of the sparsecp checkout this was built from,
/// if it is still there (the Go copiers are built under it).
pub fn checkout_target() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.join("Cargo.toml")
        .is_file()
        .then(|| root.canonicalize().unwrap_or(root).join("target"))
}
